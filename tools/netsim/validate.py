#!/usr/bin/python3
"""Checks tools/netsim's outer-step model against real runs (issue 10): feeds outer_step_sim with
what a wan_bench run measured (compute per phase, its spread, bytes per exchange or all-reduce)
and compares the model's blocked time per outer step with the measured one.

    tools/netsim/validate.py [--sim build/release/tools/netsim/outer_step_sim] [--handshake-rtts 0] OUT...

OUT: a tools/bench/wan_bench.sh output folder holding <profile>_<n>_<method>/summary.json run
folders. Prints one row per run: the measured inputs, measured and modelled p50 / mean blocked
seconds per outer step, and the model's error. The first outer step of every node is left out
(it includes start-up and the first connections).
"""
import argparse
import csv
import glob
import json
import math
import os
import statistics
import subprocess
import tempfile

SLOWDOWNS = (1, 1, 2, 4)  # wan_bench's hetero speeds, node i has SLOWDOWNS[i % 4]


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))] if xs else float("nan")


def measure(run_dir, profile, H):
    """Inputs and outputs of one real run, from its summary.json."""
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    method = summary.get("method", "noloco")
    nodes = sorted(summary["nodes"], key=lambda x: int(x["name"].removeprefix("node")))
    h = nodes[0]["timeline"][1][1] - nodes[0]["timeline"][0][1]  # inner steps between evaluations
    by_class, blocked = {}, []
    for i, node in enumerate(nodes):
        t, b = node["timeline"], node["blocked_s"]
        blocked += b[1:]
        speed_class = i % 4 if profile == "hetero" else 0
        # The timeline has a point per evaluation (every few outer steps); blocked_s one entry per
        # outer step. A phase: the wall time between two evaluations less the outer steps'
        # blocked time in it, per outer step (evaluation cost included, as the node pays it).
        for j in range(1, len(t) - 1):
            a, z = int(t[j][1]), int(t[j + 1][1])
            steps = range(a // H, min(z // H, len(b)))
            if len(steps) == 0:
                continue
            by_class.setdefault(speed_class, []).append((t[j + 1][0] - t[j][0] - sum(b[k] for k in steps)) / len(steps))
    phases = by_class[0] + by_class.get(1, [])
    base = statistics.median(phases)
    # Slow nodes sleep, which frees the shared cores for the others: the speeds they really had
    # (phase of each class over the speed-1 nodes' phase) are fed to the model, not 1,1,2,4.
    speeds = [max(1.0, statistics.median(by_class[c]) / base) if SLOWDOWNS[c] > 1 else 1.0
              for c in sorted(by_class)] if profile == "hetero" else []
    outer = max(len(x["blocked_s"]) for x in nodes)
    n = len(nodes)
    if method == "noloco":
        # payload_bytes: our encoded payload (θ, or Δ and φ) as sent in one exchange.
        payload = statistics.median(x["payload_bytes"] for x in nodes if x["payload_bytes"])
    else:
        # A ring member sends 2(n-1)/n of the tensor per all-reduce.
        per_step = statistics.median(x["bytes_out"] for x in nodes) / outer
        payload = per_step / (2 * (n - 1) / n)
    logs = [math.log(p) for p in phases if p > 0]
    return {
        "method": method, "n": n, "h": H, "outer": outer,
        "compute_s": base, "speeds": speeds, "jitter": statistics.pstdev(logs) if len(logs) > 1 else 0.0,
        "payload_mb": payload / 1e6,
        "p50": percentile(blocked, 50), "mean": statistics.mean(blocked),
    }


def model(sim, profile, m, handshake_rtts):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.csv")
        subprocess.run([sim, "--sizes", str(m["n"]), "--profile", profile, "--compute-s", f"{m['compute_s']:.4f}",
                        "--payload-mb", f"{m['payload_mb']:.4f}", "--outer-steps", str(m["outer"]),
                        "--jitter", f"{m['jitter']:.4f}", "--handshake-rtts", str(handshake_rtts), "--csv", path]
                       + (["--speeds", ",".join(f"{x:.3f}" for x in m["speeds"])] if m["speeds"] else []),
                       check=True, stdout=subprocess.DEVNULL)
        rows = {r["method"]: r for r in csv.DictReader(open(path))}
    # Our all-reduce is a ring; NoLoCo is pairs.
    row = rows["noloco-pairs" if m["method"] == "noloco" else "ring-allreduce"]
    return float(row["blocked_p50_s"]), float(row["blocked_mean_s"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="build/release/tools/netsim/outer_step_sim")
    ap.add_argument("--handshake-rtts", type=int, default=0,
                    help="round trips before payload bytes flow (0: lazy select and early answer)")
    ap.add_argument("--h", type=int, default=10, help="NoLoCo's H (DiLoCo's is 2h), as wan_bench ran them")
    ap.add_argument("out", nargs="+")
    a = ap.parse_args()
    print("| run | H | compute s/phase | speeds | jitter σ | MB/exchange | measured p50 | model p50 | p50 error "
          "| measured mean | model mean | mean error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for out in a.out:
        for d in sorted(glob.glob(os.path.join(out, "*_*_*/summary.json"))):
            run_dir = os.path.dirname(d)
            profile = os.path.basename(run_dir).split("_")[0]
            H = a.h * (2 if json.load(open(d)).get("method") == "diloco" else 1)
            m = measure(run_dir, profile, H)
            p50, mean = model(a.sim, profile, m, a.handshake_rtts)
            err = lambda model_v, real: (model_v - real) / real * 100 if real > 0 else float("nan")
            print(f"| {os.path.relpath(run_dir)} | {m['h']} | {m['compute_s']:.2f} | "
                  f"{','.join(f'{x:.2f}' for x in m['speeds']) or '1'} | {m['jitter']:.2f} | "
                  f"{m['payload_mb']:.2f} | {m['p50']:.3f} | {p50:.3f} | {err(p50, m['p50']):+.0f} % | "
                  f"{m['mean']:.3f} | {mean:.3f} | {err(mean, m['mean']):+.0f} % |")


if __name__ == "__main__":
    main()
