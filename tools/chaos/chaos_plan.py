"""The chaos harness's seeded fault schedule (docs/chaos.md).

Faults run one after another (each has the swarm to itself, plus a recovery gap, so every check
can tell which fault it is looking at), except the full disk, which only touches one node's store
and may overlap anything. Each fault starts when the swarm has done `at` of the run (the median
node's inner step over the run's steps, not a wall-clock time: a loaded machine stretches the run,
the schedule stretches with it) and never before the previous one ended plus the gap. Durations are
wall-clock seconds, as the issue gives them. Same seed, same nodes, same kinds: the same plan.
"""
import random

KINDS = ("kill", "stop", "partition", "bootstrap", "cut", "enospc")
DURATION_S = {"stop": 30.0, "partition": 60.0, "cut": 120.0, "enospc": 60.0}
GAP_S = 15.0          # recovery time after each sequential fault
WINDOW = (0.05, 0.6)  # share of the run in which faults start


def make_plan(seed, n, kinds=KINDS, kills=2, scale=1.0):
    rng = random.Random(seed)
    others = list(range(1, n))
    enospc_node = rng.choice(others) if "enospc" in kinds else None
    seq = []
    if "kill" in kinds:
        killable = [i for i in others if i != enospc_node]
        for _ in range(kills):
            k = rng.randint(1, min(3, len(killable)))
            seq.append({"fault": "kill", "nodes": sorted(rng.sample(killable, k)), "dur": round(rng.uniform(2, 10), 1)})
    if "stop" in kinds:
        seq.append({"fault": "stop", "nodes": [rng.choice(others)], "dur": DURATION_S["stop"]})
    if "partition" in kinds:
        order = list(range(n))
        rng.shuffle(order)
        seq.append({"fault": "partition", "nodes": sorted(order[: n // 2]), "other": sorted(order[n // 2:]),
                    "dur": DURATION_S["partition"]})
    if "cut" in kinds:
        seq.append({"fault": "cut", "nodes": [rng.choice(others)], "dur": DURATION_S["cut"]})
    if "bootstrap" in kinds:
        seq.append({"fault": "bootstrap", "nodes": [0], "dur": 0.0})
    rng.shuffle(seq)
    for item in seq:
        item["dur"] = round(item["dur"] * scale, 1)
    lo, hi = WINDOW
    fracs = sorted(rng.uniform(lo, hi) for _ in seq)
    for item, f in zip(seq, fracs):
        item["at"] = round(f, 3)
    plan = {"seed": seed, "nodes": n, "sequence": seq, "gap_s": GAP_S}
    if enospc_node is not None:
        plan["enospc"] = {"fault": "enospc", "nodes": [enospc_node], "at": round(rng.uniform(lo, hi), 3),
                          "dur": round(DURATION_S["enospc"] * scale, 1)}
    return plan


def describe(plan, steps):
    lines = [f"chaos plan (seed {plan['seed']}, {plan['nodes']} nodes; 'at' = share of the run's {steps} inner steps "
             f"done by the median node; sequential faults keep {plan['gap_s']:g} s apart):"]
    items = plan["sequence"] + ([plan["enospc"]] if "enospc" in plan else [])
    for it in sorted(items, key=lambda x: x["at"]):
        what = {"kill": "SIGKILL {nodes}, restart after {dur} s",
                "stop": "SIGSTOP {nodes} for {dur:g} s, then SIGCONT",
                "partition": "partition {nodes} | {other} for {dur:g} s, then heal",
                "cut": "cut every link of {nodes} for {dur:g} s",
                "bootstrap": "bootstrap node {nodes} gone for good (SIGKILL, never restarted)",
                "enospc": "store of {nodes} out of space (tmpfs filled) for {dur:g} s"}[it["fault"]]
        lines.append(f"  at {it['at'] * 100:5.1f}%  " + what.format(**it))
    return "\n".join(lines)
