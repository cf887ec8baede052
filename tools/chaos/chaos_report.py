"""The chaos harness's outputs: the timeline (JSONL and CSV), the charts (PNG via chaos_chart) and
the summary a later run compares itself with (docs/chaos.md)."""
import csv
import json
import os
import subprocess

import chaos_checks as cc

CSV_FIELDS = ["t", "kind", "node", "launch", "event", "outer_step", "inner_step", "loss", "val_loss", "partner",
              "group_size", "solo", "exchange_s", "failures", "live_peers", "fault", "detail"]


def write_timeline(recs, out):
    with open(os.path.join(out, "timeline.jsonl"), "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(out, "timeline.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in recs:
            row = dict(r)
            if r.get("event") == "outer":
                row["group_size"] = len(r.get("group", []))
                row["solo"] = int(not r.get("group"))
            if r["kind"] == "fault":
                row["detail"] = json.dumps({k: v for k, v in r.items() if k not in ("t", "kind", "fault")})
            elif r.get("event") in ("refused", "banned", "checkpoint_failed", "state_sync_failed"):
                row["detail"] = r.get("why", "")
            elif r["kind"] == "exit":
                row["detail"] = f"rc {r['rc']}"
            w.writerow(row)


def fault_bars(recs, y0, step):
    """Each fault as a horizontal bar below the curves: (label, [(t_begin, y), (t_end, y)])."""
    bars, open_ = [], {}
    level = y0
    for r in recs:
        if r["kind"] != "fault":
            continue
        f = r["fault"]
        if f.endswith("_end"):
            base = f[:-4]
            if base in open_:
                t0, lab = open_.pop(base)
                bars.append((lab, [(t0, level), (r["t"], level)]))
                level -= step
        elif f in ("kill", "stop", "partition", "cut", "enospc"):
            open_[f] = (r["t"], f"{f} {r.get('nodes', '')}".replace(" ", ""))
        elif f == "bootstrap":
            bars.append((f"bootstrap{r.get('nodes', '')}".replace(" ", ""), [(r["t"], level), (r["t"] + 2, level)]))
            level -= step
    return bars


def charts(recs, n, spread, out, title):
    outer = cc.events(recs, "outer")
    per_node = lambda key: [{"label": f"node{i}", "points": [[r["t"], r[key]] for r in outer if r["node"] == i and key in r]}
                            for i in range(n)]
    steps = per_node("outer_step")
    top = max((p[1] for s in steps for p in s["points"]), default=10)
    bars = fault_bars(recs, -0.05 * top, 0.04 * top)
    step_series = steps + [{"label": lab, "points": pts} for lab, pts in bars]
    specs = [
        {"png": os.path.join(out, "timeline.png"), "title": f"{title}: outer step per node (bars: faults)",
         "x_label": "seconds", "y_label": "outer step", "series": step_series},
        {"png": os.path.join(out, "loss.png"), "title": f"{title}: training loss per node", "x_label": "seconds",
         "y_label": "loss", "series": per_node("loss")},
        {"png": os.path.join(out, "spread.png"), "title": f"{title}: phi spread of accepted payloads",
         "x_label": "outer step", "y_label": "phi spread", "series": [{"label": "mean", "points": [[k, v] for k, v in spread.items()]}]},
    ]
    path = os.path.join(out, "charts.json")
    with open(path, "w") as f:
        json.dump({"charts": specs}, f)
    return path


def draw(chart_bin, path):
    if not chart_bin or not os.path.exists(chart_bin):
        print(f"no chart tool at {chart_bin}; charts described in {path}")
        return False
    r = subprocess.run([chart_bin, path], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"chaos_chart failed: {r.stderr.strip()}")
    return r.returncode == 0
