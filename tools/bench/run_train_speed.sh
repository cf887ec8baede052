#!/usr/bin/env bash
# Training speed of the C++ trainer against the same model and step in Python PyTorch
# (docs/benchmarks.md). Installs Debian's python3-torch if it is missing (big, so not part of
# tools/setup.sh), builds noloco_bench_train_speed, runs both side by side (interleaved rounds,
# same batch, same threads, warm-up excluded) and prints per side tokens/s, MFU, peak RSS, minor
# page faults and user/system CPU time per step, and the ratios C++/Python.
#
#   tools/bench/run_train_speed.sh [--presets tiny,small] [--batch 8] [--threads 2] [--steps 20]
#                                  [--warmup 3] [--rounds 3] [--build build/release]
#                                  [--sides cpp,python,python-tuned] [--results FILE]  (keep the JSON lines; the report reads them:
#                                  tools/bench/train_speed_report.py < FILE)
# Environment: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are set to --threads for every side.
# Three sides per round:
#   cpp           the C++ trainer with the settings `noloco` gives itself: OMP_WAIT_POLICY=PASSIVE and
#                 OPENBLAS_THREAD_TIMEOUT=4 (cli/openmp_policy.cc) and its malloc thresholds
#                 (common/process_defaults.cc)
#   python        the Python twin as a user would start it: the environment as given
#   python-tuned  the Python twin with the same settings through the environment
#                 (OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 MALLOC_MMAP_MAX_=0 MALLOC_MMAP_THRESHOLD_=33554432
#                 and the MALLOC_TRIM_THRESHOLD_ a replica of that preset and batch sets for
#                 itself), so the code alone is compared
# A value of OMP_WAIT_POLICY you set yourself is used for every side.
set -euo pipefail
cd "$(dirname "$0")/../.."

presets=tiny,small batch=8 threads=2 steps=20 warmup=3 rounds=3 build=build/release keep="" sides=cpp,python,python-tuned
while [ $# -gt 0 ]; do
  case "$1" in
    --presets) presets=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --results) keep=$2; shift 2 ;;
    --sides) sides=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run_train_speed: unknown argument $1" >&2; exit 2 ;;
  esac
done

PY=/usr/bin/python3  # Debian's interpreter: python3-torch installs there, not into other pythons
if ! dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "run_train_speed: installing python3-torch" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends python3-torch
fi

if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target noloco_bench_train_speed -j"$(nproc)" >&2
bench=$build/tools/bench/noloco_bench_train_speed

cpus=$(env -u OMP_NUM_THREADS nproc)  # GNU nproc reports OMP_NUM_THREADS when it is set
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
echo "run_train_speed: $cpus cpus, threads $threads, batch $batch, warm-up $warmup, timed steps $steps, rounds $rounds, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
common=(--batch "$batch" --threads "$threads" --warmup "$warmup" --steps "$steps")
if [ -n "$keep" ]; then results=$keep; : > "$results"; else results=$(mktemp); trap 'rm -f "$results"' EXIT; fi
for p in ${presets//,/ }; do
  # The malloc settings noloco gives itself: no mmap (common/process_defaults.cc) and a trim
  # threshold fitted to the step (trainer/core/heap_policy.cc), which the bench prints.
  trim=$("$bench" --preset "$p" --batch "$batch" --print-trim-threshold)
  tuned_env=(OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"
             MALLOC_TRIM_THRESHOLD_="$trim"
             MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_MMAP_MAX_=0)
  echo "run_train_speed: $p: python-tuned gets ${tuned_env[*]}" >&2
  for ((r = 1; r <= rounds; r++)); do
    # Alternate which side goes first so drifting background load hits both alike.
    order=${sides//,/ }
    if [ $((r % 2)) -eq 0 ]; then order=$(echo "$order" | tr ' ' '\n' | tac | tr '\n' ' '); fi
    for impl in $order; do
      case "$impl" in
        cpp) env OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}" "$bench" --preset "$p" "${common[@]}" --matmul 1024 ;;
        python) "$PY" tools/bench/train_speed.py --preset "$p" "${common[@]}" ;;
        python-tuned) env "${tuned_env[@]}" "$PY" tools/bench/train_speed.py --preset "$p" "${common[@]}" --impl-name python-tuned ;;
        *) echo "run_train_speed: unknown side $impl" >&2; exit 2 ;;
      esac | tee -a "$results" >&2
    done
  done
done
"$PY" tools/bench/train_speed_report.py < "$results"
