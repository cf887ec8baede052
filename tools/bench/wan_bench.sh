#!/usr/bin/env bash
# The wide-area comparison (issue 10): NoLoCo against the DiLoCo baseline with real node
# processes behind the link emulator (`noloco demo --net`), side by side on the same work.
# A program that prints figures, not a test.
#
#   tools/bench/wan_bench.sh [--nodes "8 16"] [--profiles "uniform hetero"] [--steps 300] [--h 10]
#                            [--preset tiny] [--out out/wan] [--noloco-args "--codec int8 --wire theta"]
#                            [--diloco-args "--codec int8"]
#
# Per profile and swarm size, two demos: NoLoCo with H = h (bf16+zstd payloads, the demo's
# default) and DiLoCo with H = 2h and α 0.3 (the paper's baseline setting; its ring sends fp32
# unless --diloco-args gives it a --codec: docs/protocols/allreduce.md).
# `hetero` also gives the nodes speed factors 1,1,2,4 (`--slowdowns`: a slow node sleeps, so the
# others get its share of the cores). Every node runs one torch thread; on a machine with fewer
# cores than nodes they share the cores evenly (the kernel's fair scheduler), which keeps compute
# fair between the methods. Reported per method: final mean validation loss (equal inner steps),
# wall-clock and bytes sent per node until the swarm's mean validation loss first reaches the
# target (the worse of the two methods' final means, so both reach it), blocked time per outer
# step (p50, p99 over all nodes and steps), and a PNG per run pair (loss against wall-clock and
# against bytes). Files: <out>/<profile>_<n>_<method>/ (the demo's folder), <out>/<profile>_<n>.png,
# <out>/table.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

nodes="8 16" profiles="uniform hetero" steps=300 h=10 preset=tiny out=out/wan noloco_args="" diloco_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --profiles) profiles=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --h) h=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --noloco-args) noloco_args=$2; shift 2 ;;  # extra demo flags for the NoLoCo side (codec, wire form)
    --diloco-args) diloco_args=$2; shift 2 ;;  # extra demo flags for the DiLoCo side (codec)
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "wan_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
bin=${NOLOCO_BIN:-build/release/cli/noloco}
[ -x "$bin" ] || { echo "wan_bench: build first (cmake --preset release && cmake --build --preset release)" >&2; exit 1; }
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE

for profile in $profiles; do
  speed=()
  [ "$profile" = hetero ] && speed=(--slowdowns 1,1,2,4)
  for n in $nodes; do
    for method in noloco diloco; do
      H=$h extra=()
      [ "$method" = diloco ] && H=$((2 * h))
      # shellcheck disable=SC2206
      [ "$method" = noloco ] && extra=($noloco_args)
      # shellcheck disable=SC2206
      [ "$method" = diloco ] && extra=($diloco_args)
      dir="$out/${profile}_${n}_${method}"
      echo "== $profile, $n nodes, $method (H=$H)"
      "$bin" demo --peers "$n" --steps "$steps" --H "$H" --preset "$preset" --method "$method" --net "$profile" \
        "${speed[@]}" "${extra[@]}" --dir "$dir" >"$dir.txt" 2>&1 || echo "wan_bench: the $method demo failed, see $dir.txt" >&2
      tail -n 4 "$dir.txt" | head -n 1
    done
  done
done

/usr/bin/python3 tools/bench/wan_report.py "$out" "$profiles" "$nodes" | tee "$out/table.md"
