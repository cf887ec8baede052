#!/usr/bin/env python3
"""Python PyTorch twin of the C++ trainer's byte-level GPT, for the training-speed benchmark.

The model and the training step mirror trainer/core (see docs/benchmarks.md): same layers in the
same order, same initialisation, Adam lr 3e-4 (0.9/0.999, eps 1e-8), gradient norm clip 1.0,
next-byte cross-entropy. Attention is written out (q·kᵀ/√d_h, causal mask, softmax, ·v; the scale
and mask in place on the score matrix) because the C++ side does the same;
scaled_dot_product_attention would be a different algorithm. Besides tokens/s it reports peak RSS,
minor page faults and user/system CPU time per step, as the C++ bench does.

Prints one JSON line: {"impl": "python", "tokens_per_s": ..., ...}. tools/bench/run_train_speed.sh
runs it next to the C++ bench (noloco_bench_train_speed) and prints the ratio.

Needs Debian's python3-torch (run with /usr/bin/python3).
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name -> (d_model, n_layer, n_head, context); keep in step with trainer/core's presets.
PRESETS = {
    "tiny": (64, 2, 4, 64),
    "small": (128, 4, 4, 128),
    "medium": (256, 6, 8, 256),
    "gpt-125m": (768, 12, 12, 1024),
}
VOCAB = 256


class Block(nn.Module):
    def __init__(self, d, n_head, ctx):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, 4 * d, bias=False)
        self.fc_out = nn.Linear(4 * d, d, bias=False)
        # Additive causal mask as in trainer/core/gpt.cc: 0 on and below the diagonal, -inf above.
        self.register_buffer("mask", torch.triu(torch.full((ctx, ctx), float("-inf")), 1), persistent=False)

    def attn(self, x):
        b, t, d = x.shape
        hd = d // self.n_head
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(b, t, self.n_head, hd).transpose(1, 2)
        k = k.view(b, t, self.n_head, hd).transpose(1, 2)
        v = v.view(b, t, self.n_head, hd).transpose(1, 2)
        # Scaled and masked in place, as trainer/core/gpt.cc: same arithmetic, two fewer
        # [b, n_head, t, t] temporaries.
        att = torch.matmul(q, k.transpose(-2, -1)).mul_(1.0 / math.sqrt(hd)).add_(self.mask[:t, :t])
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.fc_out(F.gelu(self.fc(self.ln2(x))))  # exact (erf) GELU
        return x


class ByteGPT(nn.Module):
    def __init__(self, d, n_layer, n_head, ctx):
        super().__init__()
        self.wte = nn.Parameter(torch.empty(VOCAB, d))
        self.wpe = nn.Parameter(torch.empty(ctx, d))
        self.blocks = nn.ModuleList([Block(d, n_head, ctx) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        # normal(0, 0.02) everywhere; the two projections that write into the residual stream
        # get 0.02/sqrt(2·n_layer) so the residual variance does not grow with depth.
        resid_std = 0.02 / math.sqrt(2 * n_layer)
        with torch.no_grad():
            nn.init.normal_(self.wte, 0.0, 0.02)
            nn.init.normal_(self.wpe, 0.0, 0.02)
            for blk in self.blocks:
                nn.init.normal_(blk.qkv.weight, 0.0, 0.02)
                nn.init.normal_(blk.fc.weight, 0.0, 0.02)
                nn.init.normal_(blk.proj.weight, 0.0, resid_std)
                nn.init.normal_(blk.fc_out.weight, 0.0, resid_std)

    def forward(self, idx):
        t = idx.shape[1]
        x = F.embedding(idx, self.wte) + self.wpe[:t]
        for blk in self.blocks:
            x = blk(x)
        x = self.ln_f(x)
        return F.linear(x, self.wte)  # tied output embedding


def make_batches(n, batch, ctx, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB, (batch, ctx + 1), generator=g, dtype=torch.long) for _ in range(n)]


def proc_status_mib(key):
    """A VmHWM (peak resident) or VmRSS line of /proc/self/status in MiB, as the C++ bench reads it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def usage():
    """(user s, system s, minor faults) of this process, all threads (getrusage)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime, ru.ru_minflt


def matmul_gflops(n, threads, repeats=20):
    """fp32 n×n·n×n throughput (GFLOP/s) with the current torch thread setting; best of repeats."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    c = torch.empty(n, n)
    for _ in range(3):
        torch.mm(a, b, out=c)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--impl-name", default="python", help="label of this side in the JSON line")
    ap.add_argument("--matmul", type=int, default=0, help="also measure an N×N fp32 matmul (0: skip)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    d, n_layer, n_head, ctx = PRESETS[args.preset]
    model = ByteGPT(d, n_layer, n_head, ctx)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8)
    batches = make_batches(4, args.batch, ctx, args.seed)

    def step(i):
        seq = batches[i % len(batches)]
        x, y = seq[:, :-1], seq[:, 1:]
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    rss_model = proc_status_mib("VmRSS")
    for i in range(args.warmup):
        step(i)
    times = []
    u0 = usage()
    loss = float("nan")
    t_all = time.perf_counter()
    for i in range(args.steps):
        t0 = time.perf_counter()
        loss = step(args.warmup + i)
        times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_all
    u1 = usage()

    tokens = args.batch * ctx
    out = {
        "impl": args.impl_name,
        "preset": args.preset,
        "d_model": d, "n_layer": n_layer, "n_head": n_head, "context": ctx,
        "params": sum(p.numel() for p in model.parameters()),
        "batch": args.batch, "threads": args.threads, "warmup": args.warmup, "steps": args.steps,
        "tokens_per_s": tokens * args.steps / elapsed,
        "median_step_ms": statistics.median(times) * 1e3,
        "final_loss": loss,
        "user_s_per_step": (u1[0] - u0[0]) / args.steps,
        "sys_s_per_step": (u1[1] - u0[1]) / args.steps,
        "minflt_per_step": (u1[2] - u0[2]) / args.steps,
        "peak_rss_mib": proc_status_mib("VmHWM"),
        "rss_model_mib": rss_model,
        "torch": torch.__version__,
    }
    if args.matmul:
        out["matmul_n"] = args.matmul
        out["matmul_gflops"] = matmul_gflops(args.matmul, args.threads)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
