#!/usr/bin/env bash
# One outer step's exchange between two processes (tools/bench/exchange_bench) on plain loopback
# and through linkemu links, for each codec: prints exchange_bench's lines (encode, transfer,
# verify, apply seconds, bytes, peak memory) per link.
#
#   tools/bench/exchange_wan.sh [--preset gpt-125m] [--links "loopback 1000:2.5 100:10"]
#                               [--codecs "bf16+zstd int8"] [--port 4411] [--bench-args "--in-memory"]
#
# A link is RATE_MBIT:ONE_WAY_DELAY_MS (both directions alike; 100:10 is 100 Mbit/s with a 20 ms
# round trip) or "loopback" (no linkemu). Addresses follow docs/linkemu.md: the listener is node
# n1 (real 127.0.1.2, proxy 127.0.2.2), the dialer node n0 (dials from 127.0.1.1).
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=gpt-125m links="loopback 1000:2.5 100:10" codecs="bf16+zstd int8" port=4411 extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --preset) preset=$2; shift 2 ;;
    --links) links=$2; shift 2 ;;
    --codecs) codecs=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --bench-args) read -ra extra <<<"$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bench=build/release/tools/bench/exchange_bench
emu=build/release/tools/linkemu/linkemu
work=$(mktemp -d)
emu_pid=
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

codec_args() {
  case $1 in
    *+zstd) echo "--codec ${1%+zstd} --zstd" ;;
    *) echo "--codec $1" ;;
  esac
}

for link in $links; do
  route=()
  if [ "$link" != loopback ]; then
    rate=${link%%:*} delay=${link#*:}
    cat >"$work/topo.json" <<JSON
{"seed": 1, "default": {"delay_ms": $delay, "rate_mbit": $rate},
 "nodes": [{"name": "n0", "listen": "127.0.1.1:$port", "proxy": "127.0.2.1:$port"},
           {"name": "n1", "listen": "127.0.1.2:$port", "proxy": "127.0.2.2:$port"}]}
JSON
    "$emu" --topology "$work/topo.json" >"$work/emu.out" 2>"$work/emu.log" &
    emu_pid=$!
    for _ in $(seq 100); do grep -q "linkemu ready" "$work/emu.out" && break; sleep 0.1; done
    route=(--listen-ip 127.0.1.2 --port "$port" --dial-from 127.0.1.1 --via 127.0.2.2)
  fi
  for c in $codecs; do
    echo "== $preset, $c, link $link ($(cut -d' ' -f1-3 /proc/loadavg) load)"
    # shellcheck disable=SC2046
    "$bench" --preset "$preset" $(codec_args "$c") "${route[@]}" "${extra[@]}"
  done
  if [ -n "$emu_pid" ]; then kill "$emu_pid"; wait "$emu_pid" 2>/dev/null || true; emu_pid=; fi
done
