#!/usr/bin/env python3
"""The CI-sized attack test (ctest `attack_ci`, label `attack`; docs/attacks.md): 4 nodes behind
linkemu, node 3 replaced by `noloco-attacker --attack scale100` (its payloads carry 100 Δ).

It asserts behaviour, never timing: each step waits for what must happen next under a hang guard.
  1. every honest node trains (3 outer steps each);
  2. every honest node bans the attacker (its payloads fail the norm bound and are struck);
  3. no honest node ever mixed a scaled payload of the attacker, and no honest node was banned
     (a late-starting attacker's first payload, right after its state sync, is a zero update:
     100 x 0 is still 0, harmless, and taken like any peer's; those are counted apart);
  4. SIGTERM: every honest node ends cleanly (`done`), and its final validation loss is below its
     first (it trained on with the attacker in the swarm).

    attack_ci.py --bin build/release/cli/noloco --attacker build/release/tools/attacker/noloco-attacker \
                 --linkemu build/release/tools/linkemu/linkemu [--keep DIR]
"""
import argparse
import os
import re
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
import chaos_checks as cc  # noqa: E402
from chaos_swarm import Swarm  # noqa: E402
from ci_run import expect, run_and_report  # noqa: E402

N, ATTACKER = 4, 3
HONEST = [0, 1, 2]
GUARD_S = 300  # per step; a hang guard only
NODE_FLAGS = ["--linger", "2", "--join-wait", "30", "--checkpoint-every", "5", "--keep-last", "2",
              "--exchange-timeout", "5", "--eval-windows", "16", "--eval-every", "5",
              "--max-staleness", "10", "--resync-behind", "20", "--always-exchange"]
MANIFEST = ["--preset", "tiny", "--steps", "1000000", "--H", "10", "--batch", "4"]


def accepted_from(swarm, bad):
    """The honest nodes' 'accepted payload from BAD' log lines, split into zero updates (norm ratio
    0: the attacker had just synced state and trained nothing yet) and the rest."""
    zero, scaled = [], []
    for i in HONEST:
        with open(swarm.nodes[i].log, errors="replace") as f:
            for line in f:
                if f"accepted payload from {bad}" not in line:
                    continue
                m = re.search(r"norm ratio ([0-9.eE+-]+)", line)
                (zero if m and float(m.group(1)) == 0.0 else scaled).append(line.strip())
    return zero, scaled


def run(swarm):
    tl = swarm.timeline
    swarm.start(hang_guard_s=GUARD_S)
    ok = tl.wait_for(lambda recs: all(len(cc.events(recs, "outer", i)) >= 3 for i in HONEST), GUARD_S)
    expect(ok, "every honest node trains")
    bad = cc.events(tl.snapshot(), "start", ATTACKER)[0]["peer"]
    ok = tl.wait_for(lambda recs: all(any(r["peer"] == bad for r in cc.events(recs, "banned", i)) for i in HONEST),
                     GUARD_S)
    recs = tl.snapshot()
    refused = {i: sum(1 for r in cc.events(recs, "refused", i) if r["peer"] == bad) for i in HONEST}
    expect(ok, f"every honest node banned the scale100 attacker (refusals per node: {refused})")
    swarm.fault("terminate")
    swarm.terminate(grace_s=GUARD_S)
    recs = tl.snapshot()
    zero, scaled = accepted_from(swarm, bad)
    expect(not scaled, f"no honest node mixed a scaled payload of the attacker ({len(scaled)} did: {scaled[:2]}; "
                       f"{len(zero)} zero updates taken)")
    wrong = [r for r in cc.events(recs, "banned") if r["node"] in HONEST and r["peer"] != bad]
    expect(not wrong, f"no honest peer was banned ({len(wrong)} bans)")
    done = {i: cc.events(recs, "done", i) for i in HONEST}
    expect(all(done.values()), f"every honest node ended with a done event ({sorted(i for i in done if done[i])})")
    drops = {i: (d[-1]["first_val_loss"], d[-1]["val_loss"]) for i, d in done.items()}
    expect(all(last < first for first, last in drops.values()),
           f"every honest node's validation loss fell (first, last): {drops}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--attacker", required=True)
    ap.add_argument("--linkemu", required=True)
    ap.add_argument("--keep", help="keep the run's folder here (default: removed when the test passes)")
    a = ap.parse_args()
    d = a.keep or tempfile.mkdtemp(prefix="noloco-attack-ci-")
    os.makedirs(d, exist_ok=True)
    swarm = Swarm(d, os.path.abspath(a.bin), os.path.abspath(a.linkemu), N, MANIFEST, NODE_FLAGS, profile="lan")
    node = swarm.nodes[ATTACKER]
    node.bin = os.path.abspath(a.attacker)
    base = node.args
    node.args = lambda first: base(first)[1:] + ["--attack", "scale100"]
    return run_and_report(swarm, d, a.keep, run)


if __name__ == "__main__":
    sys.exit(main())
