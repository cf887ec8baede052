#!/usr/bin/python3
"""Reads the demo folders tools/bench/wan_bench.sh wrote and prints the comparison table; draws
one PNG per profile and swarm size. Usage: wan_report.py OUT "PROFILES" "NODES"."""
import json
import statistics
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

METHODS = ("noloco", "diloco")


def swarm_curve(nodes):
    """(seconds, mean val loss over nodes, mean MB sent per node) at every evaluation any node made,
    each node counted with its latest point."""
    events = sorted((p[0], i, p) for i, n in enumerate(nodes) for p in n["timeline"])
    latest = [n["timeline"][0] for n in nodes]
    out = []
    for t, i, p in events:
        latest[i] = p
        out.append((t, statistics.mean(q[2] for q in latest), statistics.mean(q[3] for q in latest) / 1e6))
    return out


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def load(out, profile, n, method):
    try:
        return json.load(open(f"{out}/{profile}_{n}_{method}/summary.json"))["nodes"]
    except (OSError, KeyError, ValueError):
        return None


def main():
    out, profiles, sizes = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
    print("| links | nodes | method | final val loss (mean) | target | wall s to target | MB/node to target "
          "| blocked p50 s | blocked p99 s | wall s (whole run) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for profile in profiles:
        for n in sizes:
            runs = {m: load(out, profile, n, m) for m in METHODS}
            if any(r is None for r in runs.values()):
                print(f"| {profile} | {n} | (a run is missing) | | | | | | | |")
                continue
            final = {m: statistics.mean(x["val_loss_after"] for x in runs[m]) for m in METHODS}
            target = max(final.values())
            fig, axes = plt.subplots(1, 2, figsize=(11, 4))
            for m in METHODS:
                curve = swarm_curve(runs[m])
                hit = next((c for c in curve if c[1] <= target), None)
                blocked = [b for x in runs[m] for b in x["blocked_s"]]
                print(f"| {profile} | {n} | {m} | {final[m]:.4f} | {target:.4f} | "
                      f"{hit[0]:.1f} | {hit[2]:.2f} | {percentile(blocked, 50):.3f} | "
                      f"{percentile(blocked, 99):.3f} | {curve[-1][0]:.1f} |")
                axes[0].plot([c[0] for c in curve], [c[1] for c in curve], label=m)
                axes[1].plot([c[2] for c in curve], [c[1] for c in curve], label=m)
            axes[0].set_xlabel("wall-clock, s")
            axes[1].set_xlabel("MB sent per node")
            for ax in axes:
                ax.set_ylabel("mean validation loss")
                ax.axhline(target, color="grey", lw=0.8, ls="--")
                ax.set_ylim(top=min(4.0, ax.get_ylim()[1]))
                ax.grid(alpha=0.3)
                ax.legend()
            fig.suptitle(f"{n} nodes, {profile} links")
            fig.tight_layout()
            fig.savefig(f"{out}/{profile}_{n}.png", dpi=100)


if __name__ == "__main__":
    main()
