#!/usr/bin/env python3
"""The attack harness (issue 12, hostile peers; docs/attacks.md): a clean swarm of N real nodes,
then for each attack the same swarm (same manifest, seed and steps) with 1 and with 2 of its nodes
replaced by `noloco-attacker --attack KIND` (N-1 honest + 1, N-2 honest + 2; the attackers are the
last nodes, never node 0, the bootstrap). Per run it records, for the honest nodes, the final
validation loss against the clean runs' mean, the bans of every attacker identity by the honest nodes it
reached, peak RSS (VmHWM) against the clean runs' mean, and crashes and hangs; it writes results.md and
results.csv with PASS/FAIL per check. The swarm is tools/chaos's (linkemu, node flags, bounds).

    attack.py --out out/attack                      # the full matrix, 8 nodes, 4 min (3120 inner steps) a run,
                                                    # two clean runs (the reference is their mean; their
                                                    # difference is the loss check's noise floor) and
                                                    # the control `absent` (nodes lost, no attack)
    attack.py --out out/attack-quick --quick        # 1 attacker only, 0.75 min a run (all of them)
    attack.py --out out/a --attacks flip,sybil --counts 1 --minutes 1
"""
import argparse
import csv
import json
import os
import shutil
import signal
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
sys.path.insert(0, HERE)
import attack_checks as ac  # noqa: E402
import chaos_report  # noqa: E402
from chaos_swarm import Swarm  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
ATTACKS = ["flip", "scale100", "noise", "replay", "wrong-run", "forged-membership", "eclipse-flood", "sybil",
           "slow-reader", "slow-writer", "poison-state", "slow-state"]
# Attacks whose evidence accrues one call or dial at a time (docs/attacks.md, "Run lengths"): the
# sequential payload rules (flip, noise: 4-8 payloads of each attacker per honest node in 58 outer
# steps), the introducer rule (eclipse-flood: 40 dead records dialled, 24-35 s of a 35 s run) and
# the claim rule (sybil: two calls at moving claims per identity). These rows run --long-minutes,
# against a clean run of that length, also when --minutes is shorter.
LONG_ATTACKS = ["flip", "noise", "eclipse-flood", "sybil"]
# Control rows, not attacks: `absent` starts the same swarm with real nodes in the attackers'
# places and SIGKILLs them once all train, never to return. An attacker that is banned is a node the
# honest ones no longer have; this row is what losing 1 or 2 of the 8 nodes costs with no attack at
# all, the part of an attacked row's loss figure that no defence can win back.
CONTROLS = ["absent"]


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--minutes", type=float, help="intended length of each run (default 4; --quick 0.75)")
    ap.add_argument("--long-minutes", type=float, default=4.0,
                    help=f"length of the {', '.join(LONG_ATTACKS)} runs (default 4; --quick: --minutes)")
    ap.add_argument("--quick", action="store_true", help="0.75 min a run and 1 attacker only")
    ap.add_argument("--attacks", default=",".join(ATTACKS + CONTROLS),
                    help="attacks to run, and the control `absent` (default: all of them)")
    ap.add_argument("--counts", help="attackers per run, e.g. 1,2 (default 1,2; --quick 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, help="inner steps (default: 780 per minute at 8 nodes, scaled by 8/nodes)")
    ap.add_argument("--H", type=int, default=20)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--profile", default="uniform", choices=["uniform", "lan", "hetero"])
    ap.add_argument("--exchange-timeout", type=float, default=10.0)
    ap.add_argument("--reuse-clean", action="store_true", help="keep OUT's clean runs from an earlier run")
    ap.add_argument("--clean-runs", type=int, default=2,
                    help="clean runs of each length; every row is judged against their mean (default 2)")
    ap.add_argument("--no-repeat", action="store_true", help="the same as --clean-runs 1")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/release/cli/noloco"))
    ap.add_argument("--attacker", default=os.path.join(ROOT, "build/release/tools/attacker/noloco-attacker"))
    ap.add_argument("--linkemu", default=os.path.join(ROOT, "build/release/tools/linkemu/linkemu"))
    a = ap.parse_args(argv)
    a.minutes = a.minutes or (0.75 if a.quick else 4.0)
    a.counts = [int(c) for c in (a.counts or ("1" if a.quick else "1,2")).split(",")]
    a.fixed_steps = a.steps
    a.steps = a.steps or steps_for(a.minutes, a.nodes)
    if a.quick:
        a.long_minutes = a.minutes
    if a.no_repeat:
        a.clean_runs = 1
    if a.clean_runs < 1:
        ap.error("--clean-runs must be at least 1")
    a.attacks = [k for k in a.attacks.split(",") if k]
    bad = [k for k in a.attacks if k not in ATTACKS + CONTROLS]
    if bad:
        ap.error(f"unknown attacks {bad} (known: {', '.join(ATTACKS + CONTROLS)})")
    if max(a.counts) > a.nodes - 2:
        ap.error("leave at least two honest nodes")
    return a


def steps_for(minutes, nodes):
    return int(780 * minutes * 8 / nodes)


def at_length(a, minutes):
    """The settings `a` with runs of `minutes` (the steps follow unless --steps fixed them)."""
    b = argparse.Namespace(**vars(a))
    b.minutes = minutes
    b.steps = a.fixed_steps or steps_for(minutes, a.nodes)
    return b


def minutes_of(a, attack):
    return a.long_minutes if attack in LONG_ATTACKS else a.minutes


def node_flags(a):
    # tools/chaos's node flags, with a shorter linger (the attackers keep attacking through it).
    return ["--linger", "10", "--join-wait", "20", "--checkpoint-every", "2", "--keep-last", "2",
            "--exchange-timeout", f"{a.exchange_timeout:g}", "--eval-windows", "32", "--eval-every", "10",
            "--max-staleness", "10", "--resync-behind", "20"]


class RssSampler(threading.Thread):
    """VmHWM of each node's current process, sampled every second until stopped (the last
    reading before the process exits is its peak)."""

    def __init__(self, swarm, nodes):
        super().__init__(daemon=True)
        self.swarm, self.nodes, self.peak, self.quit = swarm, nodes, {}, threading.Event()

    def run(self):
        while not self.quit.wait(1.0):
            for i in self.nodes:
                p = self.swarm.nodes[i].proc
                kb = ac.vm_hwm_kb(p.pid) if p is not None and p.poll() is None else None
                if kb:
                    self.peak[i] = max(self.peak.get(i, 0), kb)


def run_swarm(a, out, attack=None, attackers=()):
    """One run; returns (records, peak RSS per honest node, exit status per honest node, logs)."""
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    manifest = ["--preset", a.preset, "--steps", str(a.steps), "--H", str(a.H), "--batch", "4", "--seed", str(a.seed)]
    swarm = Swarm(out, a.bin, a.linkemu, a.nodes, manifest, node_flags(a), a.profile, None, a.seed)
    for i in attackers if attack not in CONTROLS else ():
        node = swarm.nodes[i]
        node.bin = a.attacker
        base = node.args
        node.args = lambda first, base=base, i=i: base(first)[1:] + ["--attack", attack, "--seed", str(a.seed * 100 + i)]
    honest = [i for i in range(a.nodes) if i not in attackers]
    rss = RssSampler(swarm, honest)
    cap = time.monotonic() + a.minutes * 60 * 2 + 240  # the harness's own bound
    try:
        swarm.start()
        rss.start()
        if attack == "absent":
            swarm.fault("kill", nodes=list(attackers))
            for i in attackers:
                swarm.nodes[i].kill()
        while time.monotonic() < cap and any(swarm.nodes[i].alive() for i in honest):
            time.sleep(0.5)
        hung = [i for i in honest if swarm.nodes[i].alive()]
        if hung:
            swarm.fault("cap", nodes=hung)
    finally:
        rss.quit.set()
        exits = {}
        for i in honest:
            n = swarm.nodes[i]
            if n.proc is not None and n.proc.poll() is not None:
                exits[i] = n.proc.returncode
        swarm.terminate(grace_s=20)  # the attackers (and any hung node)
        swarm.cleanup()
    recs = swarm.timeline.snapshot()
    chaos_report.write_timeline(recs, out)
    logs = {i: ac.read_log(p) for i, p in ac.log_paths(swarm).items()}
    return recs, rss.peak, exits, logs, honest


def clean_name(a, minutes):
    return "clean" if minutes == a.minutes else f"clean-{minutes:g}min"


def repeat_name(name, k):
    """The k-th clean run of a length (k from 0): `clean`, `clean-repeat`, `clean-repeat3`, ..."""
    return name if k == 0 else f"{name}-repeat" if k == 1 else f"{name}-repeat{k + 1}"


def clean_run(a, name="clean"):
    out = os.path.join(a.out, name)
    if a.reuse_clean and os.path.exists(os.path.join(out, "summary.json")):
        with open(os.path.join(out, "summary.json")) as f:
            return json.load(f)
    t0 = time.monotonic()
    recs, rss, exits, _, honest = run_swarm(a, out)
    summary = {"steps": a.steps, "nodes": a.nodes, "wall_s": round(time.monotonic() - t0, 1),
               "final_val_loss": {str(i): ac.final_loss(recs, i) for i in honest},
               "rss_kb": {str(i): rss.get(i, 0) for i in honest}, "exits": {str(i): exits.get(i) for i in honest},
               "longest_exchange_s": ac.longest_exchange(recs, honest),
               "bans": len(ac.events(recs, "banned"))}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def attacked_run(a, clean, attack, count):
    out = os.path.join(a.out, f"{attack}-{count}")
    attackers = list(range(a.nodes - count, a.nodes))
    t0 = time.monotonic()
    try:
        recs, rss, exits, logs, honest = run_swarm(a, out, attack, attackers)
        checks = ac.check_run(recs, logs, rss, exits, honest, attackers, clean, control=attack in CONTROLS)
    except RuntimeError as e:  # the swarm did not start (see the run's logs): every check fails
        recs, honest = [], [i for i in range(a.nodes) if i not in attackers]
        checks = [(c, False, f"harness: {e}") for c in CHECKS]
    row = {"attack": attack, "attackers": count, "steps": a.steps, "honest": len(honest),
           "wall_s": round(time.monotonic() - t0, 1),
           "longest_exchange_s": round(ac.longest_exchange(recs, honest), 2),
           "solo_steps": sum(1 for r in ac.events(recs, "outer") if r["node"] in honest and not r.get("group")),
           "state_syncs": len([r for r in ac.events(recs, "state_sync") if r["node"] in honest]),
           "judged": ac.attacker_payloads_judged(recs, honest, attackers),
           "final_val_loss": {str(i): ac.final_loss(recs, i) for i in honest},
           "rss_kb": {str(i): rss.get(i, 0) for i in honest}}
    for name, ok, fig in checks:
        row[name] = "PASS" if ok else "FAIL"
        row[name + "_figure"] = fig
    row["all"] = "PASS" if all(ok for _, ok, _ in checks) else "FAIL"
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(row, f, indent=1)
    return row


CHECKS = ["loss", "banned", "rss", "no crash or hang"]


def write_tables(a, cleans, rows, repeats):
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        fields = list(dict.fromkeys(k for r in rows for k in r)) if rows else ["attack"]
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    lines = [f"# Attack matrix: {a.nodes} nodes (H {a.H}, {a.preset}), seed {a.seed}", ""]
    for name, runs in repeats.items():
        for k, clean in enumerate(runs):
            lines.append(f"Clean run `{repeat_name(name, k)}`: {clean['steps']} inner steps, {clean['wall_s']} s, final "
                         f"validation loss per node {clean['final_val_loss']}, peak RSS max "
                         f"{max(clean['rss_kb'].values()) / 1024:.0f} MiB, longest exchange wait "
                         f"{clean['longest_exchange_s']:.2f} s, bans {clean['bans']}.")
            if k:
                lines.append(f"Noise floor: `{repeat_name(name, k)}` against `{name}`: {ac.noise_floor(runs[0], clean)}.")
        if len(runs) > 1:
            ref = cleans[name]
            lines.append(f"Reference of the rows of this length: the mean of these {len(runs)} clean runs, final "
                         f"validation loss per node {ref['final_val_loss']} (mean "
                         f"{statistics.fmean(v for v in ref['final_val_loss'].values() if v is not None):.4f}).")
    lines += ["",
              "| attack | attackers | inner steps | loss (±2%) | banned | RSS (≤1.2x) | crash/hang | all | loss vs `absent` | longest exchange s | solo steps | state syncs | attacker payloads judged |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = [f"{r[c]}: {r[c + '_figure']}" for c in CHECKS]
        lines.append(f"| {r['attack']} | {r['attackers']} | {r.get('steps', '')} | " + " | ".join(cells) +
                     f" | **{r['all']}** | {r.get('vs_absent', '')} | {r['longest_exchange_s']} | {r['solo_steps']} | {r['state_syncs']} | {r.get('judged', '')} |")
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def on_sigterm(*_):
    raise KeyboardInterrupt  # unwinds through run_swarm's cleanup


def main():
    a = parse()
    os.makedirs(a.out, exist_ok=True)
    signal.signal(signal.SIGTERM, on_sigterm)
    lengths = sorted({minutes_of(a, k) for k in a.attacks} or {a.minutes})
    print(f"{a.nodes} nodes, attacks {a.attacks}, attackers {a.counts}, run lengths {lengths} min", flush=True)
    # cleans: the reference of each length (the mean of its clean runs); repeats: the runs themselves.
    cleans, repeats = {}, {}
    for m in lengths:
        name = clean_name(a, m)
        runs = repeats.setdefault(name, [])
        for k in range(a.clean_runs):
            runs.append(clean_run(at_length(a, m), repeat_name(name, k)))
            if k == 0:
                print(f"{name}: {runs[0]['steps']} inner steps, {runs[0]['wall_s']} s, "
                      f"final losses {runs[0]['final_val_loss']}", flush=True)
            else:  # the same clean run again: how far the checks move with no attacker
                print(f"{repeat_name(name, k)}: {ac.noise_floor(runs[0], runs[k])}", flush=True)
        cleans[name] = ac.pooled_clean(runs)
    rows = []
    saved = os.path.join(a.out, "rows.json")
    if a.reuse_clean and os.path.exists(saved):  # a rerun of some attacks keeps the others' rows
        with open(saved) as f:
            rows = [r for r in json.load(f) if not (r["attack"] in a.attacks and r["attackers"] in a.counts)]
    # The controls first: each attacked row is also set beside the control of its count and length.
    for attack in sorted(a.attacks, key=lambda k: k not in CONTROLS):
        b = at_length(a, minutes_of(a, attack))
        for count in a.counts:
            row = attacked_run(b, cleans[clean_name(a, b.minutes)], attack, count)
            control = [r for r in rows if r["attack"] == "absent" and r["attackers"] == count and r["steps"] == b.steps]
            if attack not in CONTROLS and control:
                row["vs_absent"] = ac.loss_against(row.get("final_val_loss", {}), control[0].get("final_val_loss", {}))
            rows.append(row)
            rows.sort(key=lambda r: ((ATTACKS + CONTROLS).index(r["attack"]), r["attackers"]))
            with open(saved, "w") as f:
                json.dump(rows, f, indent=1)
            print(f"{attack} x{count}: {row['all']}  " + "; ".join(f"{c} {row[c]} ({row[c + '_figure']})" for c in CHECKS),
                  flush=True)
            write_tables(a, cleans, rows, repeats)
    print(write_tables(a, cleans, rows, repeats))
    return 0 if all(r["all"] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
