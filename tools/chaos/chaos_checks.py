"""The chaos harness's checks, computed from a run's timeline (chaos_swarm.Timeline records).

Record kinds: `event` (a node's --json event, docs/events.md, with `node`, `launch`), `launch`,
`exit` (a process ended, with its rc) and `fault` (what the harness did). Each check returns
(ok, figure text, details) so the harness and the CI test print them the same way.
"""
import re
import statistics


def events(recs, name, node=None, launch=None, after=None):
    return [r for r in recs if r["kind"] == "event" and r.get("event") == name
            and (node is None or r["node"] == node) and (launch is None or r["launch"] == launch)
            and (after is None or r["t"] >= after)]


def faults(recs, what):
    return [r for r in recs if r["kind"] == "fault" and r["fault"] == what]


def peer_ids(recs):
    """node index -> its peer id (from its start events)."""
    return {r["node"]: r["peer"] for r in events(recs, "start")}


def frozen(recs):
    """node -> [(t_stop, t_cont)]: when the harness had that node SIGSTOPped."""
    out, open_ = {}, {}
    for r in recs:
        if r["kind"] == "fault" and r["fault"] in ("stop", "stop_end"):
            for i in r["nodes"]:
                if r["fault"] == "stop":
                    open_[i] = r["t"]
                elif i in open_:
                    out.setdefault(i, []).append((open_.pop(i), r["t"]))
    return out


def check_stall(recs, budget_s, slack_s=1.0):
    """No node blocked in an exchange longer than the bounded wait (`--exchange-timeout`). A step of
    a node that was itself SIGSTOPped meanwhile is left out (its clock ran while it was frozen) and
    reported apart."""
    stops = frozen(recs)
    live, skipped = [], []
    for r in events(recs, "outer"):
        t1, t0 = r["t"], r["t"] - r.get("exchange_s", 0.0)
        hit = any(a <= t1 and t0 <= b for a, b in stops.get(r["node"], []))
        (skipped if hit else live).append(r)
    worst = max((r.get("exchange_s", 0.0) for r in live), default=0.0)
    ok = bool(live) and worst <= budget_s + slack_s
    text = f"longest exchange wait {worst:.2f} s (bound {budget_s:g} s + {slack_s:g} s slack, {len(live)} outer steps)"
    if skipped:
        text += (f"; left out: {len(skipped)} step(s) of SIGSTOPped nodes that spanned their own freeze, longest "
                 f"{max(r.get('exchange_s', 0.0) for r in skipped):.2f} s")
    return ok, text, {"max_exchange_s": worst, "budget_s": budget_s}


def longest_gap(recs):
    """Longest wall time between two outer steps of one node in one launch, leaving out gaps that
    overlap the node's own SIGSTOP: the inner phase plus whatever the node waited for."""
    stops, worst = frozen(recs), 0.0
    for i in {r["node"] for r in events(recs, "outer")}:
        o = events(recs, "outer", i)
        for x, y in zip(o, o[1:]):
            if x["launch"] == y["launch"] and not any(a <= y["t"] and x["t"] <= b for a, b in stops.get(i, [])):
                worst = max(worst, y["t"] - x["t"])
    return worst


def restarts(recs):
    """Every relaunch after a kill: (node, launch, t_launch)."""
    return [(r["node"], r["launch"], r["t"]) for r in recs if r["kind"] == "launch" and r["launch"] > 1]


def check_restarts(recs, train_within_s=20.0, exchange_within=2):
    """Every restarted node is training within train_within_s and exchanging within exchange_within outer steps."""
    rows, ok = [], True
    for node, launch, t0 in restarts(recs):
        start = events(recs, "start", node, launch)
        outer = events(recs, "outer", node, launch)
        to_train = start[0]["t"] - t0 if start else None
        mixed = [k + 1 for k, r in enumerate(outer[:exchange_within]) if r.get("group")]
        row = {"node": node, "launch": launch, "to_training_s": to_train,
               "resumed": bool(start and start[0].get("resumed")),
               "exchanged_at_outer": mixed[0] if mixed else None, "outer_after": len(outer)}
        rows.append(row)
        ok = ok and to_train is not None and to_train <= train_within_s and row["resumed"] and bool(mixed)
    if not rows:
        return False, "no restart happened", rows
    worst_t = max((r["to_training_s"] for r in rows if r["to_training_s"] is not None), default=float("nan"))
    worst_x = max((r["exchanged_at_outer"] or 99 for r in rows))
    text = (f"{len(rows)} restart(s): training within {worst_t:.1f} s at worst (bound {train_within_s:g} s), "
            f"first exchange at outer step {'never' if worst_x == 99 else worst_x} after restart at worst "
            f"(bound {exchange_within})")
    return ok, text, rows


def check_checkpoints(recs, stores):
    """No checkpoint lost: every restart resumed from at least its last committed checkpoint, and
    every store's newest checkpoint holds at least its node's last committed one (and its final
    step when the node finished)."""
    ok, rows = True, []
    for node, launch, _ in restarts(recs):
        before = [r["outer_step"] for r in events(recs, "checkpoint", node) if r["launch"] < launch]
        start = events(recs, "start", node, launch)
        got = start[0]["outer_step"] if start else None
        need = max(before, default=0)
        good = got is not None and got >= need
        rows.append({"node": node, "launch": launch, "last_committed": need, "resumed_at": got, "ok": good})
        ok = ok and good
    for node, st in stores.items():
        committed = max((r["outer_step"] for r in events(recs, "checkpoint", node)), default=0)
        done = events(recs, "done", node)
        latest = ((st.get("status") or {}).get("latest_checkpoint") or {}).get("outer_step")
        need = max([committed] + ([done[-1]["outer_step"]] if done else []))
        good = latest is not None and latest >= need
        rows.append({"node": node, "store_latest": latest, "needed": need, "ok": good})
        ok = ok and good
    lost = [r for r in rows if not r["ok"]]
    text = f"{len(rows)} resume/store checks, {len(lost)} lost" + (f": {lost}" if lost else "")
    return ok, text, rows


def check_stores(stores):
    """Every store opens (`noloco status`) and its newest checkpoint loads with every blob's checksum
    verified (`noloco export`)."""
    bad = {n: s for n, s in stores.items() if s["status_rc"] != 0 or s["export_rc"] != 0}
    text = f"{len(stores) - len(bad)}/{len(stores)} stores verify (status and export)"
    if bad:
        text += ": " + "; ".join(f"node{n}: status {s['status_rc']} {s['status_err']} export {s['export_rc']} {s['export_err']}"
                                 for n, s in bad.items())
    return not bad and bool(stores), text, bad


def per_node_summary(recs, n):
    """Per node: outer steps, exchanges, solo steps, refusals, bans, checkpoints (failed), launches."""
    out = []
    for i in range(n):
        outer = events(recs, "outer", i)
        out.append({"node": i,
                    "launches": sum(1 for r in recs if r["kind"] == "launch" and r["node"] == i),
                    "last_outer": outer[-1]["outer_step"] if outer else 0,
                    "exchanged": sum(1 for r in outer if r.get("group")),
                    "solo": sum(1 for r in outer if not r.get("group")),
                    "refused": len(events(recs, "refused", i)),
                    "banned": len(events(recs, "banned", i)),
                    "checkpoints": len(events(recs, "checkpoint", i)),
                    "checkpoint_failed": len(events(recs, "checkpoint_failed", i)),
                    "state_syncs": len(events(recs, "state_sync", i)),
                    "final_val_loss": (events(recs, "done", i) or [{}])[-1].get("val_loss")})
    return out


ACCEPTED = re.compile(r"accepted payload from \S+ \(its outer step (\d+), ours (\d+)\).*phi spread ([0-9.eE+-]+)")


def spread_by_step(log_paths):
    """Outer step -> mean of the `phi spread` of every payload accepted at that step (node logs):
    ||phi_peer - phi_own|| / ||own update||, the distance between two replicas' slow weights seen
    at each exchange, our measure of the swarm's weight spread."""
    by = {}
    for node in spread_by_node_step(log_paths):
        for k, vs in node.items():
            by.setdefault(k, []).extend(vs)
    return {k: statistics.fmean(v) for k, v in sorted(by.items())}


def spread_by_node_step(log_paths):
    """Per node (same order as log_paths): its outer step -> the `phi spread` of every payload it
    accepted at that step. The halves of a partition can be hundreds of outer steps apart when it
    heals (one half trains solo while the other waits), so "five steps after the heal" is counted
    per node, from the step each node itself had reached."""
    out = []
    for p in log_paths:
        by = {}
        try:
            with open(p, errors="replace") as f:
                for line in f:
                    m = ACCEPTED.search(line)
                    if m:
                        by.setdefault(int(m.group(2)), []).append(float(m.group(3)))
        except OSError:
            pass
        out.append(by)
    return out


def last_outer_steps(recs, t):
    """node -> the last outer step it reported at or before time t."""
    last = {}
    for r in events(recs, "outer"):
        if r["t"] <= t:
            last[r["node"]] = r["outer_step"]
    return last


def spread_after(per_node, steps, lo, hi):
    """Mean of every spread node i accepted at its own outer steps steps[i]+lo .. steps[i]+hi, and
    how many nodes contributed."""
    vals, nodes = [], 0
    for i, h in steps.items():
        if i >= len(per_node):
            continue
        mine = [v for k, vs in per_node[i].items() if h + lo <= k <= h + hi for v in vs]
        nodes += bool(mine)
        vals += mine
    return (statistics.fmean(vals) if vals else None), nodes


def window_mean(by_step, lo, hi):
    vals = [v for k, v in by_step.items() if lo <= k <= hi]
    return statistics.fmean(vals) if vals else None
