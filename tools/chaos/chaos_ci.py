#!/usr/bin/env python3
"""The CI-sized chaos test (ctest `chaos_ci`, label `chaos`; docs/chaos.md): 4 nodes behind
linkemu, one SIGKILL and restart, one partition into two halves that is then healed.

It asserts behaviour, never timing: each step waits for what must happen next with a generous
hang guard, so a loaded machine makes it slower, not red.
  1. every node trains (3 outer steps each);
  2. node 2 is SIGKILLed and restarted: it resumes from its store at or after its last committed
     checkpoint and mixes with a peer again;
  3. the swarm is cut into {0, 1} and {2, 3}: each half keeps training (3 outer steps per node);
  4. the cut is healed: every node mixes with a peer of the other half again;
  5. SIGTERM: every node ends cleanly (`done`), every store verifies (`noloco status`, and
     `noloco export` checks every blob), no checkpoint was lost, and nobody was banned.

    chaos_ci.py --bin build/release/cli/noloco --linkemu build/release/tools/linkemu/linkemu [--keep DIR]
"""
import argparse
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos_checks as cc  # noqa: E402
from chaos_swarm import Swarm  # noqa: E402
from ci_run import expect, run_and_report  # noqa: E402

N = 4
GUARD_S = 240  # per step; a hang guard only
NODE_FLAGS = ["--linger", "2", "--join-wait", "30", "--checkpoint-every", "2", "--keep-last", "2",
              "--exchange-timeout", "5", "--eval-windows", "16", "--eval-every", "5",
              "--max-staleness", "10", "--resync-behind", "20"]
MANIFEST = ["--preset", "tiny", "--steps", "1000000", "--H", "10", "--batch", "4"]


def run(swarm):
    swarm.start(hang_guard_s=GUARD_S)
    print(f"swarm of {N} started in {swarm.dir} (port {swarm.port})", flush=True)
    wait_outer(swarm, range(N), 3, 0.0, "every node trains")
    kill_and_restart(swarm, 2)
    partition_and_heal(swarm, [0, 1], [2, 3])
    finish(swarm)


def outer_count(tl, node, after=0.0, launch=None):
    return len(cc.events(tl.snapshot(), "outer", node, launch, after))


def wait_outer(swarm, nodes, k, after, what):
    ok = swarm.timeline.wait_for(
        lambda recs: all(len(cc.events(recs, "outer", i, after=after)) >= k for i in nodes), GUARD_S)
    expect(ok, what)


def kill_and_restart(swarm, i):
    tl = swarm.timeline
    # A kill before the node's first checkpoint commits leaves nothing to resume from (1 run in 20
    # on 2026-12-04: 'resumed at outer step 0'): kill only once one has committed.
    ok = tl.wait_for(lambda recs: cc.events(recs, "checkpoint", i, swarm.nodes[i].launches), GUARD_S)
    expect(ok, f"node{i} committed a checkpoint before the kill")
    swarm.fault("kill", nodes=[i])
    swarm.nodes[i].kill()
    time.sleep(1.0)
    swarm.fault("restart", nodes=[i])
    swarm.nodes[i].launch()
    launch = swarm.nodes[i].launches
    ok = tl.wait_for(lambda recs: cc.events(recs, "start", i, launch), GUARD_S)
    expect(ok, f"node{i} started again after SIGKILL")
    recs = tl.snapshot()
    start = cc.events(recs, "start", i, launch)[0]
    committed = max((r["outer_step"] for r in cc.events(recs, "checkpoint", i) if r["launch"] < launch), default=0)
    expect(start["resumed"] and start["outer_step"] >= committed,
           f"node{i} resumed at outer step {start['outer_step']} (last committed checkpoint: {committed})")
    ok = tl.wait_for(lambda recs: any(r.get("group") for r in cc.events(recs, "outer", i, launch)), GUARD_S)
    expect(ok, f"node{i} mixes with a peer after its restart")


def partition_and_heal(swarm, side_a, side_b):
    tl = swarm.timeline
    swarm.fault("partition", side_a=side_a, side_b=side_b)
    swarm.set_links(swarm.partition(side_a))
    t_cut = tl.now()
    wait_outer(swarm, range(N), 3, t_cut, f"both halves {side_a} | {side_b} keep training while cut")
    swarm.fault("heal")
    swarm.set_links(set())
    t_heal = tl.now()
    ids = cc.peer_ids(tl.snapshot())

    def crossed(recs, i):
        other = side_b if i in side_a else side_a
        return any(ids.get(j) in r.get("group", []) for r in cc.events(recs, "outer", i, after=t_heal) for j in other)

    ok = tl.wait_for(lambda recs: all(crossed(recs, i) for i in range(N)), GUARD_S)
    expect(ok, "after the heal every node mixed with a peer of the other half")


def finish(swarm):
    swarm.fault("terminate")
    swarm.terminate(grace_s=GUARD_S)
    recs = swarm.timeline.snapshot()
    done = {r["node"] for r in cc.events(recs, "done")}
    expect(done == set(range(N)), f"every node ended with a done event ({sorted(done)})")
    stores = {i: swarm.verify_store(i) for i in range(N)}
    ok, text, _ = cc.check_stores(stores)
    expect(ok, text)
    ok, text, _ = cc.check_checkpoints(recs, stores)
    expect(ok, "no checkpoint lost: " + text)
    bans = cc.events(recs, "banned")
    expect(not bans, f"no honest peer was banned ({len(bans)} bans)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--linkemu", required=True)
    ap.add_argument("--keep", help="keep the run's folder here (default: removed when the test passes)")
    a = ap.parse_args()
    d = a.keep or tempfile.mkdtemp(prefix="noloco-chaos-ci-")
    os.makedirs(d, exist_ok=True)
    swarm = Swarm(d, os.path.abspath(a.bin), os.path.abspath(a.linkemu), N, MANIFEST, NODE_FLAGS, profile="lan")
    return run_and_report(swarm, d, a.keep, run)


if __name__ == "__main__":
    sys.exit(main())
