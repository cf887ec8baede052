#!/usr/bin/env bash
# State sync of a gpt-125m state cut by a real kill -9 of the serving process halfway, then
# resumed from a second server with the same snapshot. Usage: state_resume.sh BUILD_DIR [PRESET]
set -euo pipefail
bin="$1/tools/bench/state_resume_bench"
preset="${2:-gpt-125m}"
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" serve "$preset" 0 > "$dir/s1" & s1=$!
"$bin" serve "$preset" 0 > "$dir/s2" & s2=$!
until grep -q ADDR "$dir/s1" && grep -q ADDR "$dir/s2"; do sleep 0.5; done
bytes=$(awk '/^SHA/ {print $4}' "$dir/s1")
echo "server 1: $(grep SHA "$dir/s1")"
echo "server 2: $(grep SHA "$dir/s2")"
"$bin" fetch "$(awk '/ADDR/ {print $2}' "$dir/s1")" "$(awk '/ADDR/ {print $2}' "$dir/s2")" "$bytes" > "$dir/c" & c=$!
until grep -q HALF "$dir/c" || ! kill -0 $c 2>/dev/null; do sleep 0.05; done
kill -9 $s1 && echo "killed server 1 (kill -9) at half"
wait $c || true
cat "$dir/c"
