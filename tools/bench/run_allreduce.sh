#!/usr/bin/env bash
# All-reduce on loopback: ours (TCP + Noise + yamux, /noloco/allreduce/1.0.0) and gloo's ring
# (plain TCP), N processes each, same vector, side by side. Prints one line per (impl, N).
#   tools/bench/run_allreduce.sh [FLOATS=2500000] [ITERS=10] [NS="4 8"]
set -euo pipefail
FLOATS=${1:-2500000}
ITERS=${2:-10}
NS=${3:-"4 8"}
BIN=${BIN:-"$(dirname "$0")/../../build/release/tools/bench"}
export OMP_WAIT_POLICY=PASSIVE
# PIN=1: member r runs on CPU r % nproc (both programs). Without it, loopback TCP's wake-ups
# tend to pull our single-threaded members onto one CPU (docs/benchmarks.md).
read -r -a EXTRA <<<"${ALLREDUCE_ARGS:-}"  # e.g. ALLREDUCE_ARGS="--chunk 65536" (ours only)

run() {  # run IMPL N: starts N members, waits for all, fails if one fails
  local prog=$1 n=$2 dir pids=() rc=0 extra=()
  [ "$prog" = allreduce_bench ] && extra=("${EXTRA[@]}")
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
  run allreduce_bench "$n"
  if [ -x "$BIN/gloo_allreduce" ]; then run gloo_allreduce "$n"; else echo "gloo_allreduce not built (libgloo-dev)"; fi
done
