#!/usr/bin/env bash
# The chaos harness (issue 12, docs/chaos.md): a clean run and a faulted run of the same swarm
# (same seed, same steps), then the faulted run's checks against the clean one. Each run is bounded
# by chaos.py itself (2 x minutes + 5 min) and always cleans up its processes and tmpfs.
#
#   sudo tools/chaos/chaos.sh [--nodes 8] [--minutes 10] [--seed 1] [--out out/chaos] [--only clean|faulted]
#                             [other chaos.py flags, e.g. --faults kill,partition]
# Needs root for the full-disk fault (a tmpfs mount); leave it out with --faults to run without.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=out/chaos only="" pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) pass+=("$1"); shift ;;
  esac
done
for b in build/release/cli/noloco build/release/tools/linkemu/linkemu build/release/tools/chaos/chaos_chart; do
  [ -x "$b" ] || { echo "chaos.sh: $b missing: cmake --build --preset release --target noloco linkemu chaos_chart" >&2; exit 1; }
done
export OMP_WAIT_POLICY=PASSIVE
if [ "$only" != faulted ]; then
  echo "== clean run -> $out/clean"
  /usr/bin/python3 tools/chaos/chaos.py --clean --out "$out/clean" "${pass[@]}" || true
fi
if [ "$only" != clean ]; then
  echo "== faulted run -> $out/faulted"
  /usr/bin/python3 tools/chaos/chaos.py --out "$out/faulted" --compare "$out/clean" "${pass[@]}"
fi
