#!/usr/bin/env bash
# Measurements of the training node (issue 5), printed as figures; not a test.
#
#   tools/swarm_bench.sh [STEPS] [PARTS]  (default 600 and 123; needs a built build/release)
#
# 1. tracking: `noloco demo` (4 processes, NoLoCo over the overlay) against `noloco simulate`
#    (4 replicas in one process) with the same config and inner steps: final mean validation loss.
# 2. heterogeneity: the same demo with the last node slowed 4x; inner-step throughput of the
#    other three nodes against run 1, and how often the slow node still exchanged.
# 3. codecs: bytes per payload per codec against raw fp32, exchange latency on loopback
#    (2 nodes, 100 steps each).
# Runs land in out/swarm_bench/. On a 2-core machine the node processes share the cores, so
# throughput figures depend on what else runs; run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-600}
parts=${2:-123}
bin=${NOLOCO_BIN:-build/release/cli/noloco}
[ -x "$bin" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }
out=out/swarm_bench
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE

if [[ $parts == *1* ]]; then
echo "== 1. multi-process NoLoCo vs in-process simulation ($steps inner steps, 4 nodes, H=10)"
"$bin" demo --peers 4 --steps "$steps" --dir "$out/demo" >"$out/demo.txt"
"$bin" simulate --method noloco --replicas 4 --steps "$steps" --H 10 --batch 8 --lr 5e-3 --warmup 30 \
  --eval-every "$steps" --eval-batches 8 --threads 2 --codec bf16+zstd --out "$out/simulate.jsonl" 2>/dev/null
# Nodes read the whole training stream from their own offsets, the simulation's replicas a 1/4
# shard each by default: --whole-stream makes the simulation read like the nodes.
"$bin" simulate --method noloco --replicas 4 --whole-stream --steps "$steps" --H 10 --batch 8 --lr 5e-3 \
  --warmup 30 --eval-every "$steps" --eval-batches 8 --threads 2 --codec bf16+zstd --out "$out/simulate_ws.jsonl" 2>/dev/null
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
demo = json.load(open(f"{out}/demo/summary.json"))
node = [n["val_loss_after"] for n in demo["nodes"]]
m = sum(node) / len(node)
print(f"multi-process final val loss per node: {', '.join(f'{x:.4f}' for x in node)}  mean {m:.4f}")
groups = [n["mean_group"] for n in demo["nodes"]]
print(f"multi-process mean group size per outer step: {', '.join(f'{g:.2f}' for g in groups)}")
for name, label in [("simulate", "1/4 shard per replica"), ("simulate_ws", "whole stream per replica, as the nodes")]:
    sim = [json.loads(l) for l in open(f"{out}/{name}.jsonl")]
    last = [r for r in sim if r.get("type") == "eval"][-1]
    print(f"simulate (4 replicas, {label}) final val loss mean {last['val_loss_mean']:.4f} "
          f"(min {last['val_loss_min']:.4f}, max {last['val_loss_max']:.4f}); "
          f"multi-process differs by {100 * (m - last['val_loss_mean']) / last['val_loss_mean']:+.2f} % (target: within 5 %)")
PY

fi

if [[ $parts == *2* ]]; then
[ -f "$out/demo/summary.json" ] || "$bin" demo --peers 4 --steps "$steps" --dir "$out/demo" >"$out/demo.txt"
echo "== 2. one node slowed 4x"
"$bin" demo --peers 4 --steps "$steps" --slowdown-last 4 --dir "$out/slow" >"$out/slow.txt"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
base = json.load(open(f"{out}/demo/summary.json"))["nodes"]
slow = json.load(open(f"{out}/slow/summary.json"))["nodes"]
b = sum(n["tokens_per_s_mean"] for n in base[:3]) / 3
s = sum(n["tokens_per_s_mean"] for n in slow[:3]) / 3
print(f"other nodes' mean tokens/s: without the slow node {b:.0f}, with it {s:.0f} ({100 * (s - b) / b:+.1f} %)")
print(f"other nodes' median exchange time: without {sorted(n['exchange_s_median'] for n in base[:3])[1]*1000:.1f} ms, "
      f"with {sorted(n['exchange_s_median'] for n in slow[:3])[1]*1000:.1f} ms")
n = slow[3]
print(f"slow node: {n['tokens_per_s_mean']:.0f} tokens/s, {n['exchanges']} exchanges, {n['solo_steps']} solo steps, "
      f"partners {n['partners']}, val loss {n['val_loss_before']:.3f} -> {n['val_loss_after']:.3f}")
PY

fi

if [[ $parts == *3* ]]; then
echo "== 3. codecs (2 nodes, 100 steps)"
for c in fp32 bf16 int8 int4; do
  "$bin" demo --peers 2 --steps 100 --codec "$c" --dir "$out/codec-$c" >"$out/codec-$c.txt"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print(f"{'codec':6} {'payload bytes':>14} {'raw fp32':>10} {'ratio':>6} {'median exchange':>16} {'final val loss':>15}")
for c in ["fp32", "bf16", "int8", "int4"]:
    nodes = json.load(open(f"{out}/codec-{c}/summary.json"))["nodes"]
    p = nodes[0]["payload_bytes"]; raw = nodes[0]["raw_payload_bytes"]
    ex = sorted(n["exchange_s_median"] for n in nodes)[0] * 1000
    loss = sum(n["val_loss_after"] for n in nodes) / len(nodes)
    print(f"{c:6} {p:>14} {raw:>10} {raw / p:>6.2f} {ex:>13.1f} ms {loss:>15.4f}")
PY
fi
