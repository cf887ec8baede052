#!/usr/bin/env python3
"""Render the reference comparison (docs/experiments.md) from `noloco simulate` JSON-lines files.

    python3 tools/plot_experiment.py out/experiment/*.jsonl --png out/experiment/comparison.png \
        --table out/experiment/table.md

For every file (one method each; schema in docs/simulate.md) it draws:
  * validation loss of the replicas vs inner step: mean line, min..max band;
  * validation loss of the averaged model;
  * weight spread σ across replicas (log scale);
  * a table of the final figures,
and prints the same table as Markdown plus the acceptance checks of the reference experiment
(every method well below the unigram entropy; NoLoCo within 5% of DiLoCo; NO-SYNC clearly worse;
NoLoCo's σ bounded). The checks report numbers; they never change them.
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Fixed colours so the same method looks the same in every picture.
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def load(path):
    run, evals, done = None, [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e})")
            kind = obj.get("type")
            if kind == "run":
                run = obj
            elif kind == "eval":
                evals.append(obj)
            elif kind == "done":
                done = obj
    if run is None or not evals:
        sys.exit(f"{path}: no run line or no evaluation points (did the run finish?)")
    evals.sort(key=lambda e: e["inner_step"])
    return {"path": path, "run": run, "evals": evals, "done": done}


def label(run):
    m = run["method"]
    if m == "sync":
        return "SYNC"
    if m == "none":
        return "NO-SYNC"
    if m == "diloco":
        return f"DiLoCo H={run['H']}"
    if m == "diloco-nesterov":
        return f"DiLoCo-Nesterov H={run['H']}"
    if m == "noloco":
        g = run.get("gamma")
        extra = f" γ={g:g}" if g is not None and g != 0.7 else ""
        return f"NoLoCo H={run['H']}{extra}"
    return f"{m} H={run.get('H')}"


def summary(r):
    last = r["evals"][-1]
    spreads = [e["weight_spread"] for e in r["evals"]]
    return {
        "label": r["label"],
        "method": r["run"]["method"],
        "H": r["run"].get("H"),
        "gamma": r["run"].get("gamma"),
        "inner_step": last["inner_step"],
        "outer_step": last["outer_step"],
        "mean": last["val_loss_mean"],
        "min": last["val_loss_min"],
        "max": last["val_loss_max"],
        "avg": last["val_loss_avg_model"],
        "sigma": last["weight_spread"],
        "sigma_peak": max(spreads),
        # Is σ still growing at the end? Peak over the last quarter of evaluations against the
        # peak before it (σ starts at 0: all replicas begin from the same weights).
        "sigma_tail_peak": max(spreads[(3 * len(spreads)) // 4:]),
        "sigma_head_peak": max(spreads[:max(1, (3 * len(spreads)) // 4)]),
        "bytes": last["bytes_sent_per_replica"],
        "rounds": last["rounds_per_sync"],
        "elapsed": (r["done"] or last).get("elapsed_s"),
    }


def fmt_bytes(b):
    for unit in ("B", "KB", "MB", "GB"):
        if abs(b) < 1000 or unit == "GB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1000.0
    return str(b)


TABLE_HEAD = ["method", "steps", "syncs", "val loss mean", "min", "max", "avg model", "σ final",
              "σ peak", "bytes/replica", "rounds/sync"]


def table_rows(sums):
    rows = []
    for s in sums:
        rows.append([s["label"], str(s["inner_step"]), str(s["outer_step"]), f"{s['mean']:.4f}",
                     f"{s['min']:.4f}", f"{s['max']:.4f}", f"{s['avg']:.4f}", f"{s['sigma']:.2e}",
                     f"{s['sigma_peak']:.2e}", fmt_bytes(s["bytes"]), str(s["rounds"])])
    return rows


def markdown_table(sums):
    out = ["| " + " | ".join(TABLE_HEAD) + " |", "|" + "---|" * len(TABLE_HEAD)]
    out += ["| " + " | ".join(r) + " |" for r in table_rows(sums)]
    return "\n".join(out)


def checks(sums, entropy_nats):
    """Acceptance checks of the reference experiment, as lines of text (numbers, then verdict)."""
    lines = []
    by = {}
    for s in sums:
        if s["method"] == "noloco" and s["gamma"] not in (0, 0.0) and "noloco" not in by:
            by["noloco"] = s  # the first NoLoCo run with γ ≠ 0 is the headline one (H = h)
        elif s["method"] in ("diloco", "none", "sync") and s["method"] not in by:
            by[s["method"]] = s
    ok_all = True
    if entropy_nats:
        worst = max(s["mean"] for s in sums)
        ok = worst < 0.85 * entropy_nats
        ok_all &= ok
        lines.append(f"unigram entropy {entropy_nats:.4f} nats; worst final mean val loss {worst:.4f} "
                     f"({worst / entropy_nats:.1%} of it): {'PASS' if ok else 'FAIL'} (bar: below 85%)")
    if "noloco" in by and "diloco" in by:
        n, d = by["noloco"]["mean"], by["diloco"]["mean"]
        rel = (n - d) / d
        ok = abs(rel) <= 0.05
        ok_all &= ok
        lines.append(f"{by['noloco']['label']} {n:.4f} vs {by['diloco']['label']} {d:.4f}: "
                     f"{rel:+.2%}: {'PASS' if ok else 'FAIL'} (bar: within ±5%)")
    if "none" in by and "noloco" in by and "diloco" in by:
        z = by["none"]["mean"]
        best = max(by["noloco"]["mean"], by["diloco"]["mean"])
        rel = (z - best) / best
        ok = rel >= 0.02
        ok_all &= ok
        lines.append(f"NO-SYNC {z:.4f} vs the worse of NoLoCo/DiLoCo {best:.4f}: {rel:+.2%}: "
                     f"{'PASS' if ok else 'FAIL'} (bar: at least 2% worse)")
    if "noloco" in by:
        s = by["noloco"]
        ok = math.isfinite(s["sigma"]) and s["sigma_tail_peak"] <= 1.1 * s["sigma_head_peak"]
        none_sigma = by["none"]["sigma"] if "none" in by else None
        extra = ""
        if none_sigma:
            ok &= s["sigma"] < 0.5 * none_sigma
            extra = f"; NO-SYNC σ final {none_sigma:.2e}"
        ok_all &= ok
        lines.append(f"{s['label']} σ final {s['sigma']:.2e}, peak in last quarter {s['sigma_tail_peak']:.2e} "
                     f"vs before {s['sigma_head_peak']:.2e}{extra}: {'PASS' if ok else 'FAIL'} "
                     f"(bar: finite, not growing in the last quarter (≤1.1× earlier peak), "
                     f"below half of NO-SYNC's)")
    lines.append("all checks: " + ("PASS" if ok_all else "FAIL"))
    return lines


def plot(runs, sums, entropy_nats, png, title):
    fig = plt.figure(figsize=(15, 10.5))
    gs = fig.add_gridspec(3, 2, height_ratios=[1.0, 1.0, 0.55], hspace=0.35, wspace=0.18)
    ax_loss = fig.add_subplot(gs[0, 0])
    ax_avg = fig.add_subplot(gs[0, 1])
    ax_sig = fig.add_subplot(gs[1, 0])
    ax_zoom = fig.add_subplot(gs[1, 1])
    ax_tab = fig.add_subplot(gs[2, :])

    for i, r in enumerate(runs):
        c = COLOURS[i % len(COLOURS)]
        xs = [e["inner_step"] for e in r["evals"]]
        mean = [e["val_loss_mean"] for e in r["evals"]]
        lo = [e["val_loss_min"] for e in r["evals"]]
        hi = [e["val_loss_max"] for e in r["evals"]]
        for ax in (ax_loss, ax_zoom):
            ax.plot(xs, mean, color=c, label=r["label"], lw=1.6)
            ax.fill_between(xs, lo, hi, color=c, alpha=0.18, lw=0)
        ax_avg.plot(xs, [e["val_loss_avg_model"] for e in r["evals"]], color=c, label=r["label"], lw=1.6)
        sig = [(x, e["weight_spread"]) for x, e in zip(xs, r["evals"]) if e["weight_spread"] > 0]
        if sig:
            ax_sig.plot([p[0] for p in sig], [p[1] for p in sig], color=c, label=r["label"], lw=1.6)

    if entropy_nats:
        for ax in (ax_loss, ax_avg):
            ax.axhline(entropy_nats, color="black", ls=":", lw=1)
            ax.text(0.99, entropy_nats, " unigram entropy", transform=ax.get_yaxis_transform(),
                    ha="right", va="bottom", fontsize=8)
    ax_loss.set_title("validation loss of each replica (line: mean, band: min..max)")
    ax_avg.set_title("validation loss of the averaged model")
    ax_sig.set_title("weight spread σ across replicas")
    ax_sig.set_yscale("log")
    # Zoom on the last 40% of training, where the methods separate.
    last_x = max(e["inner_step"] for r in runs for e in r["evals"])
    ax_zoom.set_xlim(0.6 * last_x, last_x * 1.01)
    tail = [e["val_loss_max"] for r in runs for e in r["evals"] if e["inner_step"] >= 0.6 * last_x]
    tail_lo = [e["val_loss_min"] for r in runs for e in r["evals"] if e["inner_step"] >= 0.6 * last_x]
    if tail:
        pad = 0.05 * (max(tail) - min(tail_lo) + 1e-9)
        ax_zoom.set_ylim(min(tail_lo) - pad, max(tail) + pad)
    ax_zoom.set_title("validation loss, last 40% of steps (zoom)")
    for ax in (ax_loss, ax_avg, ax_sig, ax_zoom):
        ax.set_xlabel("inner step")
        ax.grid(alpha=0.3)
    for ax in (ax_loss, ax_avg, ax_zoom):
        ax.set_ylabel("nats / byte")
    ax_sig.set_ylabel("σ")
    ax_loss.legend(fontsize=8, loc="upper right")

    ax_tab.axis("off")
    widths = [0.16] + [0.84 / (len(TABLE_HEAD) - 1)] * (len(TABLE_HEAD) - 1)
    tab = ax_tab.table(cellText=table_rows(sums), colLabels=TABLE_HEAD, loc="center", cellLoc="center",
                       colWidths=widths)
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.35)
    for i in range(len(sums)):
        tab[(i + 1, 0)].set_text_props(color=COLOURS[i % len(COLOURS)], weight="bold")
    fig.suptitle(title, fontsize=11)
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description="plot noloco simulate results")
    ap.add_argument("files", nargs="+", help="JSON-lines files written by `noloco simulate --out`")
    ap.add_argument("--png", required=True, help="picture to write")
    ap.add_argument("--table", help="also write the Markdown table and checks to this file")
    ap.add_argument("--title", default=None)
    ap.add_argument("--upto", type=int, default=None,
                    help="compare at this inner step (default: the last step every run reached)")
    args = ap.parse_args()

    runs = []
    for p in args.files:
        r = load(p)
        r["label"] = label(r["run"])
        runs.append(r)
    # Equal inner steps: cut every run at the last evaluation step all of them reached, so an
    # unfinished run (no "done" line) is compared at the same step as the others, never mixed.
    common = min(r["evals"][-1]["inner_step"] for r in runs)
    upto = args.upto if args.upto is not None else common
    notes = []
    for r in runs:
        if r["done"] is None:
            notes.append(f"note: {r['label']} ({r['path']}) has not finished: last step "
                         f"{r['evals'][-1]['inner_step']} of {r['run'].get('steps')}")
        r["evals"] = [e for e in r["evals"] if e["inner_step"] <= upto]
        if not r["evals"]:
            sys.exit(f"{r['path']}: no evaluation at or before step {upto}")
    if any(r["evals"][-1]["inner_step"] != upto for r in runs):
        notes.append(f"note: not every run has an evaluation at step {upto}")
    if upto < max(r["run"].get("steps", upto) for r in runs):
        notes.append(f"note: compared at inner step {upto}, before the planned end of training")
    sums = [summary(r) for r in runs]
    run0 = runs[0]["run"]
    entropy = run0.get("unigram_entropy_nats")
    title = args.title or (
        f"{run0.get('replicas')} replicas, preset {run0.get('preset')} ({run0.get('params')} params), "
        f"batch {run0.get('batch')}×{run0.get('context')} bytes per replica, lr {run0.get('lr')}, "
        f"seed {run0.get('seed')}, corpus {run0.get('corpus_bytes')} bytes")
    os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
    plot(runs, sums, entropy, args.png, title)

    text = notes + [markdown_table(sums), ""] + checks(sums, entropy)
    print("\n".join(text), flush=True)
    if args.table:
        with open(args.table, "w") as f:
            f.write("\n".join(text) + "\n")
    print(f"wrote {args.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
