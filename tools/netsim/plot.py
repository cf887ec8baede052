#!/usr/bin/python3
"""Plots outer_step_sim CSV files: blocked time per outer step (p50, p99 as a band) against the
swarm size, one panel per CSV (e.g. uniform and hetero links). Usage:
    tools/netsim/plot.py OUT.png uniform.csv [hetero.csv ...]
"""
import csv
import sys
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def load(path):
    rows = defaultdict(list)
    with open(path) as f:
        for r in csv.DictReader(f):
            rows[r["method"]].append((int(r["nodes"]), float(r["blocked_p50_s"]), float(r["blocked_p99_s"])))
    return rows


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, files = sys.argv[1], sys.argv[2:]
    fig, axes = plt.subplots(1, len(files), figsize=(6 * len(files), 4.5), squeeze=False)
    for ax, path in zip(axes[0], files):
        for method, pts in load(path).items():
            pts.sort()
            n = [p[0] for p in pts]
            ax.plot(n, [p[1] for p in pts], marker="o", label=method)
            ax.fill_between(n, [p[1] for p in pts], [p[2] for p in pts], alpha=0.15)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("nodes")
        ax.set_ylabel("blocked per outer step, s (p50; band to p99)")
        ax.set_title(path.rsplit("/", 1)[-1].removesuffix(".csv"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
