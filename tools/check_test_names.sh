#!/usr/bin/env bash
# Fails when a Catch2 TEST_CASE name contains ';'. catch_discover_tests hands the names to CMake
# as a list, which splits them at ';' into two ctest entries that match nothing and "pass"
# without running anything, so such a test silently never runs under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(git ls-files 'tests/*.cc' | xargs -r python3 -c '
import re, sys
pat = re.compile(r"TEST_CASE\(\s*(\"(?:[^\"\\\\]|\\\\.)*\"(?:\s*\"(?:[^\"\\\\]|\\\\.)*\")*)")
for f in sys.argv[1:]:
    for m in pat.finditer(open(f).read()):
        if ";" in m.group(1):
            print(f + ": " + m.group(1))
')
if [ -n "$hits" ]; then
  echo "test names with ';' (ctest would not run them):"; echo "$hits"; exit 1
fi
echo "test names: ok"
