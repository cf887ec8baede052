#!/usr/bin/env bash
# Prints every loopback bulk-transfer figure for one stream: the ChaCha20-Poly1305 single-core
# limit, plain TCP, our host (TCP+Noise+yamux, with and without pnet), and a js-libp2p pair doing
# the same transfer over TCP+Noise+yamux, then the ratios the issue asks about.
#
#   tools/bench/run_p2p_throughput.sh [MB]        (default 1000 MB per transfer)
#
# Builds p2p_throughput in $BUILD_DIR (default build/release, configured with the release preset
# if missing) and needs tools/interop's node_modules (tools/interop/install.sh).
# Loopback only. The figures are noisy on a shared machine: MB per cpu-s is the steadier one.
set -euo pipefail
cd "$(dirname "$0")/../.."

mb=${1:-1000}
build=${BUILD_DIR:-build/release}
[ -f "$build/build.ninja" ] || cmake --preset release >/dev/null
cmake --build "$build" --target p2p_throughput -j2 >/dev/null
bash tools/interop/install.sh >/dev/null

out=$(mktemp -d)
listener_pid=""
cleanup() {
  if [ -n "$listener_pid" ]; then kill "$listener_pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

echo "== native (one process, both ends) =="
"$build/tools/bench/p2p_throughput" --mb "$mb" | tee "$out/native.txt"

echo "== js-libp2p $(node -p 'require("./tools/interop/node_modules/libp2p/package.json").version') pair (two node processes, TCP+Noise+yamux) =="
js=(node --import ./tools/interop/polyfill.mjs tools/interop/node.mjs)
"${js[@]}" listen --exit-after 600 --no-monitor 1 >"$out/listen.txt" 2>"$out/listen.err" &
listener_pid=$!
for _ in $(seq 200); do
  [ -s "$out/listen.txt" ] && break
  sleep 0.1
done
addr=$(head -n1 "$out/listen.txt")
[ -n "$addr" ] || { echo "js listener gave no address"; cat "$out/listen.err"; exit 1; }
"${js[@]}" bench-send "$addr" --bytes $((mb * 1000000)) --timeout 600 --no-monitor 1 >"$out/send.txt"
for _ in $(seq 100); do
  grep -q '^bench-recv' "$out/listen.txt" && break
  sleep 0.1
done
send_line=$(grep '^bench ' "$out/send.txt")
recv_line=$(grep '^bench-recv' "$out/listen.txt" || echo "bench-recv cpu_s=nan")
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; }
js_mbps=$(field MBps "$send_line")
js_cpu=$(awk -v a="$(field sender_cpu_s "$send_line")" -v b="$(field cpu_s "$recv_line")" 'BEGIN { print a + b }')
printf '%-18s %8.1f MB/s  cpu %6.2f s/GB = %7.1f MB per cpu-s  (sender+receiver processes)\n' \
  js-libp2p "$js_mbps" "$(awk -v c="$js_cpu" -v m="$mb" 'BEGIN { print c / (m / 1000) }')" \
  "$(awk -v c="$js_cpu" -v m="$mb" 'BEGIN { print m / c }')"

echo "== ratios =="
ours=$(awk '$1 == "noloco" { print $2 }' "$out/native.txt")
chacha=$(awk '$1 == "chacha20poly1305" { print $2 }' "$out/native.txt")
ours_cpu=$(awk '$1 == "noloco" { for (i = 1; i <= NF; i++) if ($i == "per") print $(i - 2) }' "$out/native.txt")
chacha_cpu=$(awk '$1 == "chacha20poly1305" { for (i = 1; i <= NF; i++) if ($i == "per") print $(i - 2) }' "$out/native.txt")
if [ -n "$ours" ]; then
  awk -v o="$ours" -v j="$js_mbps" 'BEGIN { printf "noloco / js-libp2p (wall MB/s):              %.2fx  (target >= 2x)\n", o / j }'
  awk -v o="$ours" -v c="$chacha" 'BEGIN { printf "chacha20poly1305 limit / noloco (wall MB/s): %.2fx  (target <= 2x)\n", c / o }'
  # noloco's cpu covers both ends, so its floor is one encrypt plus one decrypt of every byte
  # (decrypt costs what encrypt does: the same ChaCha20 keystream and Poly1305 pass).
  awk -v o="$ours_cpu" -v c="$chacha_cpu" 'BEGIN { printf "noloco cpu / (chacha20poly1305 encrypt + decrypt) cpu: %.2fx  (target <= 2x; MB per cpu-s %.0f vs %.0f)\n", c / (2 * o), o, c / 2 }'
else
  echo "no noloco figure (p2p_throughput printed none)"
fi
