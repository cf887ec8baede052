#!/usr/bin/env bash
# Reproduces the figures in docs/linkemu.md with one command, on loopback:
#   1. `noloco ping` round trips through a 50 ms one-way link (target 100 ms, at most +10%)
#   2. a plain TCP bulk stream through a 100 Mbit/s link (target 12.5 MB/s, within 10%)
#   3. the same through our stack (TCP + Noise + yamux, tools/bench/p2p_throughput), whose
#      figure includes the handshake and the yamux window growth
# Needs build/release (linkemu, noloco, p2p_throughput). Usage: measure.sh [BUILD_DIR] [PORT]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
PORT=${2:-47311}
LINKEMU=$BUILD/tools/linkemu/linkemu
NOLOCO=$BUILD/cli/noloco
P2P=$BUILD/tools/bench/p2p_throughput
for b in "$LINKEMU" "$NOLOCO" "$P2P"; do [ -x "$b" ] || { echo "missing $b (build first)" >&2; exit 1; }; done

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Waits until file $1 has a line matching $2 (up to 20 s).
wait_line() {
  for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

# Two nodes, n0 (dials from 127.0.1.1) and n1 (listens on 127.0.1.2, dialed at 127.0.2.2).
python3 tools/linkemu/make_topology.py --nodes 2 --profile uniform --port "$PORT" --out "$work/topo.json"
"$LINKEMU" --topology "$work/topo.json" >"$work/linkemu.out" 2>"$work/linkemu.log" &
pids+=($!)
wait_line "$work/linkemu.out" "linkemu ready"

# 1. ping: n1 runs `noloco listen`, n0 pings it through the proxy address.
"$NOLOCO" listen --listen "/ip4/127.0.1.2/tcp/$PORT" >"$work/listen.out" 2>"$work/listen.log" &
pids+=($!)
wait_line "$work/listen.out" "/p2p/"
addr=$(head -1 "$work/listen.out" | sed 's#/ip4/127.0.1.2/#/ip4/127.0.2.2/#')
"$NOLOCO" ping "$addr" --dial-from 127.0.1.1 --count 20 >"$work/ping.out" 2>"$work/ping.log"
echo "ping through a 50 ms one-way link (20 pings, ms):"
sed -n 's/.*time=\([0-9.]*\) ms/\1/p' "$work/ping.out" | sort -n |
  awk '{v[NR]=$1; s+=$1} END {printf "  min %.2f median %.2f max %.2f mean %.2f\n", v[1], v[int((NR+1)/2)], v[NR], s/NR}'
kill "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true

# 2. bulk: a plain TCP sink on n1's address, 60 MB sent from n0's source IP through the proxy.
python3 tools/linkemu/bulk_tcp.py sink "127.0.1.2:$PORT" >"$work/sink.out" &
pids+=($!)
wait_line "$work/sink.out" "listening"
python3 tools/linkemu/bulk_tcp.py send "127.0.2.2:$PORT" --from 127.0.1.1 --mb 60
wait_line "$work/sink.out" "rate"
echo "bulk TCP through a 100 Mbit/s link:"
sed -n 's/^bytes/  bytes/p' "$work/sink.out"

# 3. our stack: a p2p_throughput sink on n1's address, 60 MB sent from n0 through the proxy.
"$P2P" --serve-once --listen "/ip4/127.0.1.2/tcp/$PORT" >"$work/p2p_sink.out" 2>&1 &
pids+=($!)
wait_line "$work/p2p_sink.out" "/p2p/"
addr=$(head -1 "$work/p2p_sink.out" | sed 's#/ip4/127.0.1.2/#/ip4/127.0.2.2/#')
echo "TCP + Noise + yamux (one stream) through a 100 Mbit/s, 50 ms link, from dial to last byte:"
"$P2P" --mb 60 --send-to "$addr" --dial-from 127.0.1.1 | sed 's/^/  /'
echo "linkemu log:"
sed 's/^/  /' "$work/linkemu.log"
