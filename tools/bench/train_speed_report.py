#!/usr/bin/env python3
"""Summarise the JSON lines of noloco_bench_train_speed (impl "cpp") and train_speed.py (impl
"python": environment as given; "python-tuned": with the process settings noloco gives itself)
from run_train_speed.sh: tokens/s of each, the ratio C++/Python for each Python side and model
FLOP utilisation (MFU).

Each implementation ran several interleaved rounds on a possibly shared machine; the figure per
implementation is the best round (least disturbed), and the median round is shown next to it.

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
    head = (f"{'preset':8} {'python side':12} {'params':>9} {'batch':>5} {'thr':>3} {'C++ tok/s':>11} {'Py tok/s':>11} "
            f"{'C++/Py':>7} {'C++ med':>9} {'Py med':>9} {'C++ ms/step':>11} {'Py ms/step':>10} "
            f"{'MFU C++':>8} {'MFU Py':>7}")
    print(head)
    verdicts = []
    for p in presets:
        c = [r for r in rows if r["preset"] == p and r["impl"] == "cpp"]
        for side in ("python", "python-tuned"):
            y = [r for r in rows if r["preset"] == p and r["impl"] == side]
            if not y:
                continue
            if not c:
                print(f"{p:8} {side:12} missing C++ results")
                continue
            cb = max(r["tokens_per_s"] for r in c)
            yb = max(r["tokens_per_s"] for r in y)
            cm = statistics.median(r["tokens_per_s"] for r in c)
            ym = statistics.median(r["tokens_per_s"] for r in y)
            cs = min(r["median_step_ms"] for r in c)
            ys = min(r["median_step_ms"] for r in y)
            r0 = c[0]
            flops_tok = 6 * r0["params"] + 12 * r0["n_layer"] * r0["context"] * r0["d_model"]
            mfu = lambda tps: f"{100 * flops_tok * tps / (peak * 1e9):.1f}%" if peak else "n/a"  # noqa: E731
            print(f"{p:8} {side:12} {r0['params']:>9} {r0['batch']:>5} {r0['threads']:>3} {cb:>11.0f} {yb:>11.0f} "
                  f"{cb / yb:>7.2f} {cm:>9.0f} {ym:>9.0f} {cs:>11.2f} {ys:>10.2f} {mfu(cb):>8} {mfu(yb):>7}")
            verdicts.append(f"{p} vs {side}: C++/Python = {cb / yb:.2f} (best rounds), {cm / ym:.2f} (median rounds): "
                            + ("C++ at least as fast" if cb >= yb else "C++ SLOWER"))
    print("\n".join(verdicts))
    print("MFU = (6·params + 12·n_layer·context·d_model) · tokens/s / best measured matmul FLOP/s")


if __name__ == "__main__":
    main()
