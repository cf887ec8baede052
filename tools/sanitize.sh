#!/usr/bin/env bash
# Runs the test suite under the sanitizers (docs/sanitizers.md):
#   asan  the whole ctest suite built with ASan + UBSan ("asan" preset, build/asan)
#   tsan  the p2p, node and storage tests (test_p2p:*, test_node:*, test_storage:*: the storage
#         tests run the checkpoint writer thread) built with TSan ("tsan" preset, build/tsan)
# and ends with one summary line per sanitizer: tests run, passed, failed, tests whose output holds a
# sanitizer report, build and test wall time. Exits 1 if any test failed.
#
#   tools/sanitize.sh [asan|tsan|all] [extra ctest args...]   default: all
#   tools/sanitize.sh tsan -R 'test_p2p:yamux'                 one selection, one sanitizer
#
# Too slow for CI (figures in docs/sanitizers.md): run it before every resolve. Sanitizer options
# and the suppression files (tools/sanitizers/*.supp, third-party code only) live in the test
# presets of CMakePresets.json, so `ctest --preset asan|tsan` alone behaves the same.
# SANITIZE_JOBS (default 2) sets both build and ctest parallelism; builds run under
# nice -n SANITIZE_NICE (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

which=${1:-all}
shift || true
case "$which" in
  asan|tsan|all) ;;
  *) echo "usage: tools/sanitize.sh [asan|tsan|all] [extra ctest args...]" >&2; exit 2 ;;
esac
jobs=${SANITIZE_JOBS:-2}
niceness=${SANITIZE_NICE:-10}
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
# Torch tests share 2 cores: OpenMP workers sleep instead of spinning (as tools/test.sh).
export OMP_WAIT_POLICY=PASSIVE
mkdir -p out/sanitize
summary=()
status=0

# TSan: tests left out, each with its reason (docs/sanitizers.md#exclusions). Empty when none.
tsan_exclude=''

run_one() {  # $1 = preset; rest = extra ctest args
  local preset=$1
  shift
  local log=out/sanitize/$preset.log t0 t1 t2 rc=0
  t0=$(date +%s)
  cmake --preset "$preset" >/dev/null
  if [ "$preset" = tsan ]; then
    # Only what these tests need (test_node runs the real `noloco` binary).
    nice -n "$niceness" cmake --build --preset tsan -j"$jobs" --target test_p2p test_storage test_node noloco
  else
    nice -n "$niceness" cmake --build --preset asan -j"$jobs"
    bash tools/interop/install.sh   # js-libp2p peer for the interop tests, as tools/test.sh
  fi
  t1=$(date +%s)
  local extra=()
  if [ "$preset" = tsan ] && [ -n "$tsan_exclude" ]; then
    extra=(-E "$tsan_exclude")
  fi
  ctest --preset "$preset" -j"$jobs" --no-tests=error "${extra[@]}" "$@" 2>&1 | tee "$log" || rc=$?
  t2=$(date +%s)
  local line reports
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
  reports=$(grep -cE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer' "$log" || true)
  summary+=("$(printf '%-5s %s; sanitizer reports: %s; build %ss, tests %ss; log %s' \
    "$preset" "${line:-no ctest summary}" "$reports" $((t1 - t0)) $((t2 - t1)) "$log")")
  if [ "$rc" -ne 0 ] || [ "$reports" -ne 0 ]; then status=1; fi
}

if [ "$which" = asan ] || [ "$which" = all ]; then run_one asan "$@"; fi
if [ "$which" = tsan ] || [ "$which" = all ]; then run_one tsan "$@"; fi

echo
echo "sanitize summary:"
printf '  %s\n' "${summary[@]}"
exit "$status"
