#!/usr/bin/env bash
# Learning quality on text nobody tuned for (issue 10): NoLoCo (H = h) against heavy-ball DiLoCo
# (H = 2h) at equal inner steps, on three corpora from Debian packages and several init seeds,
# with ONE fixed set of hyperparameters for every corpus (the reference experiment's,
# docs/experiments.md). Prints one line per run and a table; a program that prints figures,
# not a test.
#
#   tools/quality_bench.sh [--seeds 3] [--steps 300] [--jobs 2] [--out out/quality] [-- extra simulate flags]
#
# Corpora (installed here if missing; none is the default corpus's directory, so the demo's
# corpus hash is unchanged):
#   fortunes  /usr/share/games/fortunes (package fortunes): quotations, English
#   jargon    the Jargon File 4.4.7 (package jargon-text), gunzipped: a glossary, English
#   kjv       the King James Bible (package bible-kjv), every verse through `bible -f`
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=3 steps=300 jobs=2 out=out/quality extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "quality_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
bin=${NOLOCO_BIN:-build/release/cli/noloco}
[ -x "$bin" ] || { echo "quality_bench: build first (cmake --preset release && cmake --build --preset release)" >&2; exit 1; }

need=()
for p in fortunes jargon-text bible-kjv; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p "$out/corpora"
[ -s "$out/corpora/jargon.txt" ] || zcat /usr/share/doc/jargon-text/jargon.txt.gz >"$out/corpora/jargon.txt"
[ -s "$out/corpora/kjv.txt" ] || bible -f "Gen1:1-Rev22:21" >"$out/corpora/kjv.txt"
declare -A corpus=([fortunes]=/usr/share/games/fortunes [jargon]="$out/corpora/jargon.txt" [kjv]="$out/corpora/kjv.txt")

# The reference experiment's settings, for every corpus (no per-corpus tuning).
h=10
common=(--replicas 8 --steps "$steps" --batch 8 --lr 5e-3 --warmup 30 --eval-every "$steps" --eval-batches 8
        --preset tiny --threads 1)
export OMP_WAIT_POLICY=PASSIVE
echo "quality_bench: $bin, ${common[*]} ${extra[*]}, NoLoCo H=$h vs DiLoCo H=$((2 * h)), $seeds seeds, $jobs at a time" \
  | tee "$out/command.txt"

jobs_list=()
for name in fortunes jargon kjv; do
  for ((s = 1; s <= seeds; s++)); do
    jobs_list+=("$name noloco $s --method noloco --H $h" "$name diloco $s --method diloco --H $((2 * h))")
  done
done
run_one() {  # name method seed flags...
  local name=$1 method=$2 seed=$3; shift 3
  local file="$out/${name}_${method}_s${seed}.jsonl"
  [ -s "$file" ] && grep -q '"type":"done"' "$file" && return 0  # already there: rerun by deleting it
  "$bin" simulate "$@" "${common[@]}" --seed "$seed" --data "${corpus[$name]}" "${extra[@]}" \
    --out "$file" 2>"$out/${name}_${method}_s${seed}.log"
}
running=0
for j in "${jobs_list[@]}"; do
  # shellcheck disable=SC2086
  run_one $j &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

python3 - "$out" "$seeds" <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], int(sys.argv[2])
def final(name, method, seed):
    rows = [json.loads(l) for l in open(f"{out}/{name}_{method}_s{seed}.jsonl")]
    return [r for r in rows if r.get("type") == "eval"][-1]["val_loss_mean"]
print("| corpus | seed | NoLoCo H=10 | DiLoCo H=20 | NoLoCo vs DiLoCo |")
print("|---|---|---|---|---|")
gaps = []
for name in ("fortunes", "jargon", "kjv"):
    n_all, d_all = [], []
    for s in range(1, seeds + 1):
        n, d = final(name, "noloco", s), final(name, "diloco", s)
        n_all.append(n); d_all.append(d)
        print(f"| {name} | {s} | {n:.4f} | {d:.4f} | {100 * (n - d) / d:+.2f} % |")
    nm, dm = statistics.mean(n_all), statistics.mean(d_all)
    gaps.append(100 * (nm - dm) / dm)
    print(f"| {name} | mean | {nm:.4f} | {dm:.4f} | {gaps[-1]:+.2f} % |")
print(f"\nmean over corpora of NoLoCo vs DiLoCo: {statistics.mean(gaps):+.2f} % (bar: at most +1 %)")
PY
