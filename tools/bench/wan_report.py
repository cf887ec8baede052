#!/usr/bin/python3
"""Reads the demo folders tools/bench/wan_bench.sh wrote and prints the comparison table; draws
one PNG per profile and swarm size. Usage: wan_report.py OUT "PROFILES" "NODES" "VARIANTS" REPEATS

Folders: OUT/<profile>_<n>_<variant>_r<k>/summary.json, k = 1..REPEATS. The first variant is the
one the others are compared with (NoLoCo); the target loss of a repeat is the worst final mean
validation loss over all variants of that repeat, so every variant reaches it. Figures per
variant are the mean over repeats (± the spread, max − min, when there are several)."""
import json
import statistics
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


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


def load(out, profile, n, variant, rep):
    try:
        return json.load(open(f"{out}/{profile}_{n}_{variant}_r{rep}/summary.json"))["nodes"]
    except (OSError, KeyError, ValueError):
        return None


def figures(runs, target):
    """Per-run figures for one variant in one repeat."""
    curve = swarm_curve(runs)
    hit = next((c for c in curve if c[1] <= target), None)
    blocked = [b for x in runs for b in x["blocked_s"][1:]]  # the first outer step includes start-up
    return {
        "final": statistics.mean(x["val_loss_after"] for x in runs),
        "wall_to_target": hit[0] if hit else float("nan"),
        "mb_to_target": hit[2] if hit else float("nan"),
        "p50": percentile(blocked, 50),
        "p99": percentile(blocked, 99),
        "wall": curve[-1][0],
        "curve": curve,
    }


def fmt(xs, digits):
    m = statistics.mean(xs)
    if len(xs) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {(max(xs) - min(xs)) / 2:.{digits}f}"


def main():
    out, profiles, sizes, variants, repeats = (sys.argv[1], sys.argv[2].split(), sys.argv[3].split(),
                                               sys.argv[4].split(), int(sys.argv[5]))
    base = variants[0]
    print(f"Mean over {repeats} repeat(s) (± half the range). Ratios are each repeat's {variants[1:]} "
          f"figure over {base}'s, then averaged.\n")
    print("| links | nodes | variant | final val loss | wall s to target | MB/node to target "
          "| blocked p50 s | blocked p99 s | wall s (run) | p50 blocked vs " + base + " | wall to target vs " + base
          + " | MB to target: " + base + " / variant |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for profile in profiles:
        for n in sizes:
            per = {v: [] for v in variants}
            for rep in range(1, repeats + 1):
                runs = {v: load(out, profile, n, v, rep) for v in variants}
                if any(r is None for r in runs.values()):
                    print(f"| {profile} | {n} | (repeat {rep}: a run is missing) | | | | | | | | | |")
                    continue
                target = max(statistics.mean(x["val_loss_after"] for x in r) for r in runs.values())
                for v in variants:
                    per[v].append(figures(runs[v], target))
            if not per[base]:
                continue
            fig, axes = plt.subplots(1, 2, figsize=(11, 4))
            for v in variants:
                f = per[v]
                ratio = lambda key: [a[key] / b[key] if b[key] else float("nan") for a, b in zip(f, per[base])]
                inv = [b["mb_to_target"] / a["mb_to_target"] if a["mb_to_target"] else float("nan")
                       for a, b in zip(f, per[base])]
                print(f"| {profile} | {n} | {v} | {fmt([x['final'] for x in f], 4)} | "
                      f"{fmt([x['wall_to_target'] for x in f], 1)} | {fmt([x['mb_to_target'] for x in f], 2)} | "
                      f"{fmt([x['p50'] for x in f], 3)} | {fmt([x['p99'] for x in f], 3)} | "
                      f"{fmt([x['wall'] for x in f], 1)} | "
                      + ("" if v == base else f"{fmt(ratio('p50'), 1)}x") + " | "
                      + ("" if v == base else f"{fmt(ratio('wall_to_target'), 2)}x") + " | "
                      + ("" if v == base else f"{fmt([x * 100 for x in inv], 1)} %") + " |")
                curve = f[0]["curve"]  # the first repeat's curves
                line, = axes[0].plot([c[0] for c in curve], [c[1] for c in curve], label=v)
                axes[1].plot([c[2] for c in curve], [c[1] for c in curve], label=v, color=line.get_color())
            axes[0].set_xlabel("wall-clock, s")
            axes[1].set_xlabel("MB sent per node")
            for ax in axes:
                ax.set_ylabel("mean validation loss over nodes")
                ax.set_ylim(top=min(4.0, ax.get_ylim()[1]))
                ax.grid(alpha=0.3)
                ax.legend()
            fig.suptitle(f"{n} nodes, {profile} links (repeat 1)")
            fig.tight_layout()
            fig.savefig(f"{out}/{profile}_{n}.png", dpi=100)


if __name__ == "__main__":
    main()
