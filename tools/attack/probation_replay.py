#!/usr/bin/env python3
"""Replays the probation rule (DirectionEvidence::holds_back, docs/defences.md "Probation") over
the payloads logged by harness runs: for each run directory (attack.py's or chaos.sh's, with
node*/log.txt), how many honest payloads the rule would hold back and how many of the attackers'
payloads it would hold back or let through. Attackers are the identities some node banned.

Works on the logs of any node build: it reads only the `accepted payload` lines (cosine with our
update, momentum cosine) and applies the clearing rule to each (node, sender) pair in order. The
windows are built from mixed payloads only (the node also counts refused ones with statistics),
so it is an approximation of what a node with the rule would have done. For logs of a node
that has the rule, the last two columns count what it held back (replayed over the payloads it
mixed, the rule then finds nothing more to hold).

    probation_replay.py /tmp/attack-p1/* /tmp/chaos-h1/clean
"""
import argparse
import collections
import glob
import os
import re

WINDOW = 8     # DirectionEvidence::kWindow
CLEAR = 0.15   # DirectionEvidence::kClear

ACCEPTED = re.compile(r"I accepted payload from (\S+) \(its outer step \d+, ours \d+\): cosine (\S+), "
                      r"norm ratio \S+, phi spread \S+, momentum cosine (\S+),")
BANNED = re.compile(r"peer (\S+) banned")
# What a node with the rule logged (3d1875a on): the payloads it held back.
HELD = re.compile(r"I not mixing payload from (\S+) .*held back on probation")


def banned_identities(run):
    out = set()
    for log in glob.glob(os.path.join(run, "node*", "log.txt")):
        with open(log, errors="replace") as f:
            for line in f:
                m = BANNED.search(line)
                if m:
                    out.add(m.group(1))
    return out


def replay(run, holds=lambda c, m: c < 0 and m < 0):
    attackers = banned_identities(run)
    count = collections.Counter()
    for log in sorted(glob.glob(os.path.join(run, "node*", "log.txt"))):
        windows = collections.defaultdict(list)
        cleared = set()
        with open(log, errors="replace") as f:
            for line in f:
                h = HELD.search(line)
                if h:
                    count[("attacker" if h.group(1) in attackers else "honest") + " held by the node"] += 1
                    continue
                m = ACCEPTED.search(line)
                if not m:
                    continue
                peer, cos, mom = m.group(1), float(m.group(2)), float(m.group(3))
                who = "attacker" if peer in attackers else "honest"
                if mom == 0.0:  # no movement of ours yet: neither counted nor held
                    count[who + " mixed"] += 1
                    continue
                w = windows[peer]
                w.append((cos, mom))
                del w[:-WINDOW]
                if len(w) == WINDOW:
                    own = sum(c for c, _ in w) / WINDOW
                    mov = sum(x for _, x in w) / WINDOW
                    if own > 0 and mov > 0 and own + mov > CLEAR:
                        cleared.add(peer)
                held = peer not in cleared and holds(cos, mom)
                count[who + (" held" if held else " mixed")] += 1
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories (each with node*/log.txt)")
    ap.add_argument("--sum", action="store_true", help="hold when the two cosines' sum is negative instead")
    a = ap.parse_args()
    holds = (lambda c, m: c + m < 0) if a.sum else (lambda c, m: c < 0 and m < 0)
    print("| run | honest held | of | attackers' held | attackers' mixed | held by the node: honest | attackers' |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in a.runs:
        if not glob.glob(os.path.join(run, "node*", "log.txt")):
            continue
        c = replay(run, holds)
        honest = c["honest held"] + c["honest mixed"]
        print(f"| {run} | {c['honest held']} | {honest} | {c['attacker held']} | {c['attacker mixed']} | "
              f"{c['honest held by the node']} | {c['attacker held by the node']} |")


if __name__ == "__main__":
    main()
