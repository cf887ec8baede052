#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/<name>_fuzz.cc, "fuzz" CMake preset: clang + ASan/UBSan) and
# runs each one in turn for SECONDS (default 60), one process at a time, then prints one line per
# target: executions, corpus size, and ok or the crash artifact. Exits 1 if any target failed.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]      e.g. tools/fuzz.sh 300 yamux_frame_fuzz
#
# Corpora persist under out/fuzz/<target>/corpus (so later runs start from what earlier ones
# found); fuzz/corpus/<target>/ seeds it when present. Crash inputs land in
# out/fuzz/<target>/artifacts/, the full log in out/fuzz/<target>/log.txt. See docs/fuzzing.md.
#   FUZZ_KEEP=1        after each run, merge the inputs that add coverage into fuzz/corpus/<target>/
#                      (libFuzzer -merge=1: the committed corpus, minimal for its coverage)
#   FUZZ_SKIP_BUILD=1  use build/fuzz as it is (e.g. a second tools/fuzz.sh beside a first)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: tools/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in fuzz/*_fuzz.cc; do
    [ -e "$src" ] || continue
    targets+=("$(basename "$src" .cc)")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz/*_fuzz.cc targets" >&2
  exit 1
fi

# Only the fuzz targets are built: the preset instruments every library they link.
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j"${FUZZ_BUILD_JOBS:-2}" --target "${targets[@]}"
fi

status=0
summary=()
for t in "${targets[@]}"; do
  bin=$(find build/fuzz -type f -name "$t" -perm -u+x | head -n1)
  if [ -z "$bin" ]; then
    summary+=("$(printf '%-28s %s' "$t" 'NOT BUILT')")
    status=1
    continue
  fi
  dir=out/fuzz/$t
  mkdir -p "$dir/corpus" "$dir/artifacts"
  seeds=()
  [ -d "fuzz/corpus/$t" ] && seeds+=("fuzz/corpus/$t")
  echo "fuzz: $t for ${seconds}s"
  set +e
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" "${seeds[@]}" >"$dir/log.txt" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log.txt" | grep -o '[0-9]*$' | tail -n1 || true)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log.txt" | tail -n1 | grep -o '[0-9]*' || true)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    artifact=$(grep -o "Test unit written to .*" "$dir/log.txt" | tail -n1 | sed 's/Test unit written to //' || true)
    reason=$(grep -m1 -E '^==[0-9]+==ERROR|runtime error|deadly signal|out-of-memory|timeout' "$dir/log.txt" || true)
    result="FAILED rc=$rc ${reason:+($reason) }${artifact:+artifact=$artifact}"
    status=1
  fi
  kept=''
  if [ "${FUZZ_KEEP:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
    mkdir -p "fuzz/corpus/$t"
    "$bin" -merge=1 "fuzz/corpus/$t" "$dir/corpus" >"$dir/merge.txt" 2>&1 || true
    kept=" kept=$(find "fuzz/corpus/$t" -type f | wc -l)"
  fi
  summary+=("$(printf '%-28s execs=%-10s cov=%-6s corpus=%-6s %s%s' "$t" "${execs:-?}" "${cov:-?}" "$corpus" "$result" "$kept")")
done

echo
echo "fuzz summary (${seconds}s per target, logs under out/fuzz/<target>/log.txt):"
printf '  %s\n' "${summary[@]}"
exit $status
