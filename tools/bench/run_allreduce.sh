#!/usr/bin/env bash
# All-reduce on loopback: ours (TCP + Noise + yamux, /noloco/allreduce/1.0.0) and gloo's ring
# (plain TCP), N processes each, same vector, side by side. Prints one line per (impl, codec, N).
#   tools/bench/run_allreduce.sh [FLOATS=2500000] [ITERS=10] [NS="4 8"] [CODECS="fp32"]
# CODECS: the value encodings of our ring to time, e.g. "fp32 bf16 int8" (gloo is always fp32).
set -euo pipefail
FLOATS=${1:-2500000}
ITERS=${2:-10}
NS=${3:-"4 8"}
CODECS=${4:-fp32}
BIN=${BIN:-"$(dirname "$0")/../../build/release/tools/bench"}
export OMP_WAIT_POLICY=PASSIVE
# PIN=1: member r runs on CPU r % nproc (both programs). Without it, loopback TCP's wake-ups
# tend to pull our single-threaded members onto one CPU (docs/benchmarks.md).
read -r -a EXTRA <<<"${ALLREDUCE_ARGS:-}"  # e.g. ALLREDUCE_ARGS="--chunk 65536" (ours only)

run() {  # run IMPL N [CODEC]: starts N members, waits for all, fails if one fails
  local prog=$1 n=$2 dir pids=() rc=0 extra=()
  [ "$prog" = allreduce_bench ] && extra=("${EXTRA[@]}" --codec "$3")
  dir=$(mktemp -d)
  for ((r = 0; r < n; r++)); do
    ${PIN:+taskset -c $((r % $(nproc)))} "$BIN/$prog" --rank "$r" --n "$n" --dir "$dir" --floats "$FLOATS" --iters "$ITERS" "${extra[@]}" >"$dir/out.$r" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  # The figures line of rank 0, then the CPU seconds of all members per all-reduce.
  grep -hv '^cpu ' "$dir/out.0" | tr -d '\n'
  awk '/^cpu /{s+=$3} END{printf "  cpu %.3f s/allreduce (all members)\n", s}' "$dir"/out.*
  rm -rf "$dir"
  return $rc
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $FLOATS floats, $ITERS iterations"
for n in $NS; do
  for codec in $CODECS; do run allreduce_bench "$n" "$codec"; done
  if [ -x "$BIN/gloo_allreduce" ]; then run gloo_allreduce "$n"; else echo "gloo_allreduce not built (libgloo-dev)"; fi
done
