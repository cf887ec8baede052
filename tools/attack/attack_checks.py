"""The checks of one attacked run against the clean run (docs/attacks.md), from the timeline,
the node logs and the peak RSS samples. Python stdlib only."""
import os
import statistics

LOSS_BOUND = 0.02  # honest final validation loss within 2% of a clean run's (the mean of the clean runs)
RSS_BOUND = 1.2    # honest peak RSS at most 1.2x a clean run's (the mean of the clean runs)


def events(recs, name, node=None):
    return [r for r in recs if r.get("kind") == "event" and r.get("event") == name and (node is None or r["node"] == node)]


def attacker_ids(recs, attackers):
    """Every identity each attacker process used: its `start` peer and its `attacker` list."""
    ids = {}
    for i in attackers:
        s = set(r["peer"] for r in events(recs, "start", i) if r.get("peer"))
        for r in events(recs, "attacker", i):
            s.update(r.get("peers", []))
        ids[i] = sorted(s)
    return ids


# The host's per-address limit closing an identity at the door (p2p/address_limits.cc): such an
# identity did not reach the node's protocols, so the line alone does not count as a meeting.
LIMITED = "too many identities from"


def log_lines_naming(log_text, peer):
    start = log_text.find(peer)
    while start >= 0:
        a, b = log_text.rfind("\n", 0, start) + 1, log_text.find("\n", start)
        yield log_text[a:b if b >= 0 else len(log_text)]
        start = log_text.find(peer, b if b >= 0 else len(log_text))


def limited(log_text, peer):
    """The honest node's host closed this identity's connection for its address's identity limit."""
    return any(LIMITED in line for line in log_lines_naming(log_text, peer))


def met_in_event(recs, node, peer):
    """An event of the honest node names this identity (a partner, a refusal, a connection's path,
    a state sync...): the two had a protocol exchange, not only a record in a gossip message."""
    for r in recs:
        if r.get("node") == node and r.get("kind") == "event":
            if r.get("peer") == peer or r.get("partner") == peer or peer in r.get("group", []):
                return True
    return False


def reached(log_text, recs, node, peer):
    """The honest node met this identity: a log line other than an address-limit refusal names
    it, or an event does. Broad on purpose (the pass rule uses it); a log line may be no more than
    a gossip record naming the identity, so the figure also gives the pairs met in an event."""
    if any(LIMITED not in line for line in log_lines_naming(log_text, peer)):
        return True
    return met_in_event(recs, node, peer)


def attacker_payloads_judged(recs, honest, attackers):
    """How many of the attackers' exchange payloads honest nodes ruled on: mixed (in an outer
    event's group), refused or found unchanged. 0 for a payload attack means the run shows nothing
    about the payload rules (an attacker that joined too late, say); peer attacks (gossip floods,
    slow streams) send no payloads."""
    ids = {p for v in attacker_ids(recs, attackers).values() for p in v}
    n = 0
    for r in recs:
        if r.get("kind") != "event" or r.get("node") not in honest:
            continue
        if r.get("event") == "outer":
            n += sum(1 for p in r.get("group", []) if p in ids)
        elif r.get("event") in ("refused", "unchanged") and r.get("peer") in ids:
            n += 1
    return n


def final_loss(recs, i):
    done = events(recs, "done", i)
    return done[-1].get("val_loss") if done else None


def check_run(recs, logs, rss, exits, honest, attackers, clean, control=False):
    """Rows of (check, ok, figure) and per-attacker-identity ban figures. `clean` is a clean
    run's summary, or `pooled_clean` of several. `control`: the attackers' places held by honest
    nodes killed at the start (attack.py CONTROLS): nobody to ban."""
    out = []
    # Final validation loss: mean over the honest nodes vs the clean runs' mean over the same nodes.
    mine = {i: final_loss(recs, i) for i in honest}
    theirs = {i: clean["final_val_loss"].get(str(i)) for i in honest}
    if None in mine.values() or None in theirs.values():
        out.append(("loss", False, f"missing final losses: attacked {mine}, clean {theirs}"))
    else:
        m, c = statistics.fmean(mine.values()), statistics.fmean(theirs.values())
        worst = max(honest, key=lambda i: mine[i] / theirs[i])
        runs = clean.get("runs", 1)
        label = "clean" if runs == 1 else f"the mean of {runs} clean runs"
        out.append(("loss", abs(m / c - 1) <= LOSS_BOUND,
                    f"{m:.4f} vs {label} {c:.4f} ({100 * (m / c - 1):+.2f}%; worst node {worst} "
                    f"{100 * (mine[worst] / theirs[worst] - 1):+.2f}%)"))
    if control:
        bans = len(events(recs, "banned"))
        out.append(("banned", bans == 0, f"a control: no attacker; {bans} bans"))
        return out + check_resources(rss, exits, recs, honest, clean)
    # Bans: every honest node an attacker identity reached banned it.
    ids = attacker_ids(recs, attackers)
    bans = {i: {r["peer"] for r in events(recs, "banned", i)} for i in honest}
    strikes = {i: [r["peer"] for r in events(recs, "refused", i)] for i in honest}
    total_reached, total_banned, n_strikes, unreached, n_limited = 0, 0, 0, 0, 0
    met, met_banned = 0, 0
    for a in attackers:
        for peer in ids[a]:
            n_limited += sum(1 for i in honest if limited(logs[i], peer))
            who = [i for i in honest if reached(logs[i], recs, i, peer)]
            if not who:
                unreached += 1
            total_reached += len(who)
            total_banned += sum(1 for i in who if peer in bans[i])
            n_strikes += sum(strikes[i].count(peer) for i in honest)
            in_event = [i for i in who if met_in_event(recs, i, peer)]
            met += len(in_event)
            met_banned += sum(1 for i in in_event if peer in bans[i])
    n_ids = sum(len(v) for v in ids.values())
    ok = total_reached > 0 and total_banned == total_reached
    out.append(("banned", ok, f"{total_banned}/{total_reached} (node, identity) reached pairs banned "
                              f"({met_banned}/{met} of the pairs met in an event); "
                              f"{n_ids} identities, {unreached} reached nobody; {n_strikes} refusals; "
                              f"{n_limited} (node, identity) pairs closed by the per-address limit"))
    return out + check_resources(rss, exits, recs, honest, clean)


def pooled_clean(summaries):
    """One reference from several clean runs of the same swarm (attack.py --clean-runs): per node,
    the mean final loss and the mean peak RSS. Two runs of the same seed, manifest and binaries end
    up to ~1.6 % apart in loss (docs/attacks.md, "The loss check's reference"), as far as the 2 %
    bound itself; one run as the reference makes every row's verdict as noisy as that run."""
    if len(summaries) == 1:
        return dict(summaries[0], runs=1)
    def mean_of(key):
        nodes = set.intersection(*(set(s[key]) for s in summaries))
        return {k: (statistics.fmean(s[key][k] for s in summaries)
                    if all(s[key][k] is not None for s in summaries) else None) for k in sorted(nodes, key=int)}
    return {"runs": len(summaries), "steps": summaries[0]["steps"],
            "final_val_loss": mean_of("final_val_loss"), "rss_kb": mean_of("rss_kb")}


def check_resources(rss, exits, recs, honest, clean):
    out = []
    # Peak RSS (VmHWM) of the honest nodes vs the clean runs' same nodes.
    peak = max((rss.get(i, 0) for i in honest), default=0)
    cpeak = max((clean["rss_kb"].get(str(i)) or 0 for i in honest), default=0)
    ratio = peak / cpeak if cpeak else float("inf")
    out.append(("rss", ratio <= RSS_BOUND, f"{peak / 1024:.0f} MiB vs clean {cpeak / 1024:.0f} MiB ({ratio:.2f}x)"))
    # Crashes and hangs: every honest node ended with `done` and exit status 0 before the cap.
    bad = [f"node {i}: " + ("still running at the cap" if i not in exits else f"exit {exits[i]}") for i in honest
           if exits.get(i) != 0 or final_loss(recs, i) is None]
    out.append(("no crash or hang", not bad, "all exited 0 after done" if not bad else "; ".join(bad)))
    return out


def loss_against(mine, theirs):
    """The mean final loss of one run's nodes against another's same nodes (node -> loss maps), as
    a figure: an attacked row beside the `absent` control of its count (attack.py CONTROLS)."""
    keys = [k for k in mine if mine[k] is not None and theirs.get(k) is not None]
    if not keys:
        return "no common nodes with final losses"
    m, c = statistics.fmean(mine[k] for k in keys), statistics.fmean(theirs[k] for k in keys)
    return f"{m:.4f} vs {c:.4f} ({100 * (m / c - 1):+.2f}%)"


def noise_floor(clean, repeat):
    """A second clean run against the first, as an attacked run's loss and RSS checks would see it:
    how far the checks move with nothing attacking (the same seed; the nodes' timing differs)."""
    mine, theirs = repeat["final_val_loss"], clean["final_val_loss"]
    keys = [k for k in mine if mine[k] is not None and theirs.get(k) is not None]
    if not keys:
        return f"missing final losses: repeat {mine}, clean {theirs}"
    worst = max(keys, key=lambda k: abs(mine[k] / theirs[k] - 1))
    peak, cpeak = max(repeat["rss_kb"].values()), max(clean["rss_kb"].values())
    return (f"loss {loss_against(mine, theirs)}, node furthest off {worst} "
            f"{100 * (mine[worst] / theirs[worst] - 1):+.2f}%; peak RSS {peak / 1024:.0f} vs {cpeak / 1024:.0f} MiB "
            f"({peak / cpeak if cpeak else float('inf'):.2f}x)")


def longest_exchange(recs, honest):
    return max((r.get("exchange_s", 0) for r in events(recs, "outer") if r["node"] in honest), default=0)


def read_log(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def log_paths(swarm):
    return {n.i: os.path.join(n.dir, "log.txt") for n in swarm.nodes}
