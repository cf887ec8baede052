#!/usr/bin/env bash
# The wide-area comparison (issue 10): NoLoCo against the DiLoCo baseline with real node
# processes behind the link emulator (`noloco demo --net`), side by side on the same work.
# A program that prints figures, not a test.
#
#   tools/bench/wan_bench.sh [--nodes "8 16"] [--profiles "uniform hetero"] [--steps 200] [--h 10]
#                            [--preset small] [--batch 2] [--repeats 1] [--out out/wan]
#                            [--eval-steps 2h] [--eval-windows 32] [--first-repeat 1]
#                            [--variants "NAME:METHOD:DEMO FLAGS;..."]
#
# Variants (default below): each is a name, a method (noloco | diloco) and extra demo flags.
# NoLoCo runs with H = h, DiLoCo with H = 2h and α 0.3 (the paper's baseline setting). The
# first variant is the one the others are compared with. `hetero` also gives the nodes speed
# factors 1,1,2,4 (`--slowdowns`: a slow node sleeps, so the others get its share of the cores).
# Every node runs one torch thread; on a machine with fewer cores than nodes they share the
# cores evenly (the kernel's fair scheduler), which keeps compute the same for every variant.
# Every variant evaluates every --eval-steps inner steps (default 2h, DiLoCo's outer step) on
# --eval-windows held-out windows: an evaluation costs about eval-windows / (3 x batch) inner
# steps of compute, so evaluating at each outer step would charge NoLoCo (H = h) twice what it
# charges DiLoCo (H = 2h) on the shared cores.
# Repeats run the variants in turn (variant order inside a repeat is fixed), each with the
# same data seed; a repeat differs only by timing. Reported per variant: final mean validation
# loss (equal inner steps), wall-clock and bytes sent per node until the swarm's mean
# validation loss first reaches the target (the worst of the variants' final means in that
# repeat, so all reach it), blocked time per outer step (p50, p99 over all nodes and outer steps
# but the first), and a PNG per profile and size (loss against wall-clock and against bytes).
# Files: <out>/<profile>_<n>_<variant>_r<k>/ (the demo's folder), <out>/<profile>_<n>.png,
# <out>/table.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

nodes="8 16" profiles="uniform hetero" steps=200 h=10 preset=small batch=2 repeats=1 out=out/wan
eval_steps="" eval_windows=32 first=1
variants="noloco:noloco:--codec int8 --wire theta;diloco:diloco:--codec fp32;diloco-int8:diloco:--codec int8"
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --profiles) profiles=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --h) h=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --eval-steps) eval_steps=$2; shift 2 ;;
    --eval-windows) eval_windows=$2; shift 2 ;;
    --first-repeat) first=$2; shift 2 ;;  # add repeats to an earlier run's folder
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "wan_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
bin=${NOLOCO_BIN:-build/release/cli/noloco}
[ -x "$bin" ] || { echo "wan_bench: build first (cmake --preset release && cmake --build --preset release)" >&2; exit 1; }
mkdir -p "$out"
[ -n "$eval_steps" ] || eval_steps=$((2 * h))
export OMP_WAIT_POLICY=PASSIVE

names=()
IFS=';' read -r -a specs <<<"$variants"
for spec in "${specs[@]}"; do
  name=${spec%%:*} rest=${spec#*:}
  method=${rest%%:*}
  case "$method" in noloco|diloco) ;; *) echo "wan_bench: variant '$spec': method must be noloco or diloco" >&2; exit 2 ;; esac
  names+=("$name")
done

last=$((first + repeats - 1))
for rep in $(seq "$first" "$last"); do
  for profile in $profiles; do
    speed=()
    [ "$profile" = hetero ] && speed=(--slowdowns 1,1,2,4)
    for n in $nodes; do
      for spec in "${specs[@]}"; do
        name=${spec%%:*} rest=${spec#*:}
        method=${rest%%:*} extra_text=${rest#*:}
        # shellcheck disable=SC2206
        extra=($extra_text)
        H=$h
        [ "$method" = diloco ] && H=$((2 * h))
        dir="$out/${profile}_${n}_${name}_r${rep}"
        echo "== repeat $rep, $profile, $n nodes, $name ($method, H=$H, ${extra_text:-defaults})"
        "$bin" demo --peers "$n" --steps "$steps" --H "$H" --preset "$preset" --batch "$batch" --method "$method" \
          --eval-steps "$eval_steps" --eval-windows "$eval_windows" \
          --net "$profile" "${speed[@]}" "${extra[@]}" --dir "$dir" >"$dir.txt" 2>&1 ||
          echo "wan_bench: the $name demo failed, see $dir.txt" >&2
        tail -n 4 "$dir.txt" | head -n 1
      done
    done
  done
done

/usr/bin/python3 tools/bench/wan_report.py "$out" "$profiles" "$nodes" "${names[*]}" "$last" | tee "$out/table.md"
