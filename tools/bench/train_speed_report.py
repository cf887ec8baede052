#!/usr/bin/env python3
"""Summarise the JSON lines of noloco_bench_train_speed (impl "cpp") and train_speed.py (impl
"python": environment as given; "python-tuned": with the process settings noloco gives itself)
from run_train_speed.sh.

Per preset and side: tokens/s (best round and median round), milliseconds per step, model FLOP
utilisation (MFU), peak resident memory (VmHWM), minor page faults per timed step and CPU seconds
per timed step in user space and in the kernel (getrusage, all threads). Then the ratios against
each Python side: speed C++/Python, and C++ peak RSS against the Python twin's plus the outer-step
state the C++ replica also holds (φ and outer momentum: 2 · params · 4 bytes).

Each implementation ran several interleaved rounds on a possibly shared machine; speed is the
best round (least disturbed) with the median next to it; memory, faults and CPU times are medians
over rounds (they depend little on other load, except system time, which grows when the cores
are contended).

MFU = training FLOP/s / measured fp32 matmul FLOP/s, with
  training FLOPs per token = 6·P + 12·L·T·d
P: all parameters (the 6·P rule: forward 2·P, backward 4·P multiply-adds per token);
12·L·T·d: attention scores q·kᵀ and att·v, 2·T·d each per token and layer forward, ×3 with
backward, over the full T×T matrix (the causal half is computed too) [PaLM, appendix B].
The denominator is the best N×N torch::mm throughput measured by the C++ bench with the same
threads.
"""
import json
import statistics
import sys

SIDES = ("cpp", "python", "python-tuned")


def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def main():
    rows = []
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    presets = []
    for r in rows:
        if r["preset"] not in presets:
            presets.append(r["preset"])
    mm = [r["matmul_gflops"] for r in rows if "matmul_gflops" in r]
    peak = max(mm) if mm else None
    if peak:
        print(f"fp32 matmul {rows[0].get('matmul_n', '?')}x{rows[0].get('matmul_n', '?')}, "
              f"{rows[0]['threads']} threads: best {peak:.1f} GFLOP/s, median {statistics.median(mm):.1f} "
              f"over {len(mm)} runs")
    print(f"{'preset':8} {'side':12} {'params':>9} {'batch':>5} {'thr':>3} {'rounds':>6} {'tok/s':>9} "
          f"{'tok/s med':>9} {'ms/step':>9} {'MFU':>6} {'peak MiB':>8} {'flt/step':>8} "
          f"{'user s':>7} {'sys s':>7} {'sys/user':>8}")
    verdicts = []
    for p in presets:
        by_side = {s: [r for r in rows if r["preset"] == p and r["impl"] == s] for s in SIDES}
        r0 = next(r for r in rows if r["preset"] == p)
        flops_tok = 6 * r0["params"] + 12 * r0["n_layer"] * r0["context"] * r0["d_model"]
        for side, rs in by_side.items():
            if not rs:
                continue
            best = max(r["tokens_per_s"] for r in rs)
            mfu = f"{100 * flops_tok * best / (peak * 1e9):.1f}%" if peak else "n/a"
            user, sys_ = med(rs, "user_s_per_step"), med(rs, "sys_s_per_step")
            print(f"{p:8} {side:12} {r0['params']:>9} {r0['batch']:>5} {r0['threads']:>3} {len(rs):>6} "
                  f"{best:>9.1f} {med(rs, 'tokens_per_s'):>9.1f} {min(r['median_step_ms'] for r in rs):>9.1f} "
                  f"{mfu:>6} {med(rs, 'peak_rss_mib'):>8.0f} {med(rs, 'minflt_per_step'):>8.0f} "
                  f"{user:>7.3f} {sys_:>7.3f} {100 * sys_ / user:>7.1f}%")
        c = by_side["cpp"]
        if not c:
            verdicts.append(f"{p}: missing C++ results")
            continue
        outer_mib = 2 * r0["params"] * 4 / 2**20
        for side in ("python", "python-tuned"):
            y = by_side[side]
            if not y:
                continue
            cb, yb = max(r["tokens_per_s"] for r in c), max(r["tokens_per_s"] for r in y)
            cm, ym = med(c, "tokens_per_s"), med(y, "tokens_per_s")
            verdicts.append(f"{p} vs {side}: speed C++/Python = {cb / yb:.2f} (best rounds), {cm / ym:.2f} "
                            f"(median rounds): " + ("C++ at least as fast" if cb >= yb else "C++ SLOWER"))
            budget = med(y, "peak_rss_mib") + outer_mib
            ratio = med(c, "peak_rss_mib") / budget
            verdicts.append(f"{p} vs {side}: peak RSS C++ {med(c, 'peak_rss_mib'):.0f} MiB vs Python "
                            f"{med(y, 'peak_rss_mib'):.0f} + outer state {outer_mib:.0f} = {budget:.0f} MiB: "
                            f"ratio {ratio:.2f} " + ("(within)" if ratio <= 1.0 else
                                                     "(within 1.1x)" if ratio <= 1.1 else "(OVER 1.1x)"))
        sys_ratio = med(c, "sys_s_per_step") / med(c, "user_s_per_step")
        verdicts.append(f"{p} C++: system time {100 * sys_ratio:.1f}% of user time per step "
                        + ("(under 10%)" if sys_ratio < 0.1 else "(NOT under 10%)"))
    print("\n".join(verdicts))
    print("MFU = (6·params + 12·n_layer·context·d_model) · tokens/s / best measured matmul FLOP/s; "
          "peak MiB = VmHWM of the whole run; flt/step, user s, sys s: per timed step (medians over rounds)")


if __name__ == "__main__":
    main()
