#!/usr/bin/env bash
# The reference comparison of docs/algorithm.md §8 (results in docs/experiments.md):
# SYNC, DiLoCo (H = 2h), NoLoCo (H = h), NO-SYNC, NoLoCo with γ = 0, NoLoCo with H = 2h, all with
# the same replicas, global batch, inner steps, data, seed and learning-rate schedule, then one PNG
# and one table (tools/plot_experiment.py).
#
#   tools/experiment.sh [--steps 600] [--h 25] [--replicas 8] [--preset tiny] [--batch 16]
#                       [--lr 3e-3] [--warmup 50] [--eval-every 50] [--seed 1] [--jobs 2]
#                       [--out out/experiment] [--noloco PATH] [--only NAME,...] [-- extra simulate flags]
#
# Every method is one `noloco simulate` run writing <out>/<name>.jsonl; --jobs runs that many
# methods at once, each with 2/jobs torch threads (tiny models scale badly with threads, so on 2
# cores two single-threaded runs finish sooner than two two-threaded ones in a row).
# Files: <out>/*.jsonl, <out>/*.log, <out>/comparison.png, <out>/table.md, <out>/command.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

steps=600 h=25 replicas=8 preset=tiny batch=16 lr=3e-3 warmup=50 eval_every=50 seed=1 jobs=2
out=out/experiment noloco="" only="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --h) h=$2; shift 2 ;;
    --replicas) replicas=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --lr) lr=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --eval-every) eval_every=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --noloco) noloco=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "experiment: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$noloco" ]; then
  for cand in build/release/cli/noloco build/*/cli/noloco; do
    if [ -x "$cand" ]; then noloco=$cand; break; fi
  done
fi
if [ -z "$noloco" ] || [ ! -x "$noloco" ]; then
  echo "experiment: no noloco binary; build it (cmake --preset release && cmake --build --preset release --target noloco) or pass --noloco PATH" >&2
  exit 1
fi
h2=$((2 * h))
if [ $((eval_every % h2)) -ne 0 ]; then
  echo "experiment: --eval-every $eval_every is not a multiple of 2h = $h2; evaluation points would fall mid-phase" >&2
  exit 2
fi
threads=$(( $(env -u OMP_NUM_THREADS nproc) / jobs )); [ "$threads" -ge 1 ] || threads=1

# name | simulate flags that differ between the runs
runs=(
  "sync|--method sync"
  "diloco_H${h2}|--method diloco --H $h2"
  "noloco_H${h}|--method noloco --H $h"
  "nosync|--method none"
  "noloco_H${h}_gamma0|--method noloco --H $h --gamma 0"
  "noloco_H${h2}|--method noloco --H $h2"
)

mkdir -p "$out"
common=(--replicas "$replicas" --steps "$steps" --preset "$preset" --batch "$batch" --lr "$lr"
        --warmup "$warmup" --eval-every "$eval_every" --seed "$seed" --threads "$threads" "${extra[@]}")
{
  echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "tools/experiment.sh --steps $steps --h $h --replicas $replicas --preset $preset --batch $batch --lr $lr --warmup $warmup --eval-every $eval_every --seed $seed --jobs $jobs${extra:+ -- ${extra[*]}}"
} > "$out/command.txt"

files=()
pids=()
start=$(date +%s)
for r in "${runs[@]}"; do
  name=${r%%|*}
  flags=${r#*|}
  files+=("$out/$name.jsonl")
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
  # Keep at most $jobs runs going.
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  echo "experiment: $name: $noloco simulate $flags ${common[*]}" >&2
  # shellcheck disable=SC2086  # $flags is a list of words on purpose
  "$noloco" simulate $flags "${common[@]}" --out "$out/$name.jsonl" > "$out/$name.log" 2>&1 &
  pids+=("$!:$name")
done
wait || true
# A run finished when its file ends with the "done" line (docs/simulate.md).
failed=0
for p in "${pids[@]}"; do
  name=${p#*:}
  if ! tail -n 1 "$out/$name.jsonl" 2>/dev/null | grep -q '"type": *"done"'; then
    echo "experiment: $name did not finish; last lines of $out/$name.log:" >&2
    tail -5 "$out/$name.log" >&2
    failed=1
  fi
done
echo "experiment: runs took $(( $(date +%s) - start )) s" >&2
[ "$failed" -eq 0 ] || exit 1

PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
"$PY" tools/plot_experiment.py "${files[@]}" --png "$out/comparison.png" --table "$out/table.md"
