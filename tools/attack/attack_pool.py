#!/usr/bin/env python3
"""Pools the loss figures of several attack.py output dirs made with the same binaries, manifest and
run length (docs/attacks.md, "The loss check's reference"): every clean run found becomes part of
one reference (the mean of their honest nodes' final validation loss), every run of a row
(attack, attackers) part of that row's mean, and each row is printed against the reference and
against the control `absent` of its count. One run of a row is one sample of a quantity whose
run-to-run spread is as large as the 2 % bound; this is how several runs are read together.
Reads only the runs' timelines and summaries; runs nothing.

    attack_pool.py /tmp/attack-h1 /tmp/attack-h2 /tmp/attack-h3 /tmp/attack-h4 [--steps 3120]
"""
import argparse
import hashlib
import json
import os
import re
import statistics
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack_checks as ac  # noqa: E402

ROW_DIR = re.compile(r"^(?P<attack>[a-z0-9-]+?)-(?P<count>\d+)$")
# attack.py clean_name and repeat_name: clean, clean-repeat, clean-repeat3, clean-1.5min-repeat ...
CLEAN_DIR = re.compile(r"^clean(-[0-9.]+min)?(-repeat\d*)?$")


def final_losses(run_dir):
    """node -> its final validation loss (attack_checks.final_loss), from the run's timeline."""
    with open(os.path.join(run_dir, "timeline.jsonl")) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    nodes = {r["node"] for r in ac.events(recs, "done")}
    losses = {i: ac.final_loss(recs, i) for i in nodes}
    return {i: v for i, v in losses.items() if v is not None}


def read_runs(dirs, steps):
    """(clean runs, {(attack, count): [runs]}); a run is (path, {node: final loss}). Runs of
    another length than `steps`, without a summary (unfinished), or copies of a run already read
    (attack.py --reuse-clean works on a copied clean run) are left out."""
    cleans, rows, nodes, seen = [], {}, set(), set()
    for d in dirs:
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            summary = os.path.join(path, "summary.json")
            if not os.path.isfile(summary) or not os.path.isfile(os.path.join(path, "timeline.jsonl")):
                continue
            with open(os.path.join(path, "timeline.jsonl"), "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            with open(summary) as f:
                s = json.load(f)
            if s.get("steps") != steps:
                continue
            if CLEAN_DIR.match(name):
                cleans.append((path, final_losses(path)))
                nodes.add(s["nodes"])
            elif (m := ROW_DIR.match(name)):
                rows.setdefault((m["attack"], int(m["count"])), []).append((path, final_losses(path)))
    if len(nodes) > 1:
        raise SystemExit(f"clean runs of different swarm sizes: {sorted(nodes)}")
    return cleans, rows, nodes.pop() if nodes else None


def mean_over(runs, honest):
    """The mean over runs of each run's mean over the honest nodes; None if a run lacks one."""
    per_run = []
    for _, losses in runs:
        if any(i not in losses for i in honest):
            return None, []
        per_run.append(statistics.fmean(losses[i] for i in honest))
    return statistics.fmean(per_run), per_run


def pct(x, ref):
    return f"{100 * (x / ref - 1):+.2f}%"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", help="attack.py --out dirs (same binaries and settings)")
    ap.add_argument("--steps", type=int, default=3120, help="the run length to pool (inner steps; default 3120)")
    a = ap.parse_args(argv)
    cleans, rows, nodes = read_runs(a.dirs, a.steps)
    if not cleans:
        print(f"no clean run of {a.steps} inner steps in {a.dirs}", file=sys.stderr)
        return 2
    everyone = list(range(nodes))
    clean_all, clean_each = mean_over(cleans, everyone)
    print(f"{len(cleans)} clean runs of {a.steps} inner steps, {nodes} nodes: "
          + ", ".join(f"{p} {v:.4f}" for (p, _), v in zip(cleans, clean_each))
          + f"; mean {clean_all:.4f}, highest vs lowest {pct(max(clean_each), min(clean_each))}")
    print()
    print("| attack | attackers | runs | each run vs the clean mean | mean of the runs vs the clean mean (±2%) "
          "| vs `absent` (mean of its runs) |")
    print("| --- | --- | --- | --- | --- | --- |")
    ok = True
    order = sorted(rows, key=lambda k: (k[0] != "absent", k[0], k[1]))
    for attack, count in order:
        honest = list(range(nodes - count))
        ref, _ = mean_over(cleans, honest)
        m, each = mean_over(rows[(attack, count)], honest)
        if m is None:
            print(f"| {attack} | {count} | {len(rows[(attack, count)])} | a run without every honest node's final loss | FAIL | |")
            ok = False
            continue
        passed = abs(m / ref - 1) <= ac.LOSS_BOUND
        ok &= passed
        absent = rows.get(("absent", count))
        vs_absent = ""
        if attack != "absent" and absent:
            am, _ = mean_over(absent, honest)
            vs_absent = pct(m, am) if am is not None else ""
        print(f"| {attack} | {count} | {len(each)} | {', '.join(pct(v, ref) for v in each)} | "
              f"{'PASS' if passed else 'FAIL'}: {m:.4f} vs {ref:.4f} ({pct(m, ref)}) | {vs_absent} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
