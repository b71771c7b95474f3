#!/usr/bin/env python3
"""PyTorch on the GPU, the peer of bench/bench_cuda.cu: the same shapes, timed with CUDA events.

Usage: python3 tools/bench/torch_cuda.py [--json FILE] [--smoke]

Prints one line per case: FLOP/s for GEMM and attention, bytes/s for the bandwidth-bound ops (counted as
bench_cuda.cu counts them) and their fraction of the device-to-device copy rate measured here. Needs torch
with CUDA (`pip install torch`); without a GPU it says so and exits 0. tools/gpu_check.sh runs it beside
slim_bench_cuda in one device call. `--smoke` runs every case on the CPU at tiny sizes, wall-clock timed, so the
script itself can be checked on a machine without a GPU before a lease is spent on it (its figures mean nothing).
"""
import argparse
import json
import math
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: checks the script, measures nothing")
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"torch_cuda.py: no torch ({e}); nothing measured")
        return 0
    smoke = args.smoke
    if not smoke and not torch.cuda.is_available():
        print("torch_cuda.py: no CUDA device; nothing measured")
        return 0
    dev = torch.device("cpu" if smoke else "cuda")
    # the measured shapes (bench_cuda.cu's), or tiny ones for the smoke run
    n_copy = 1 << 16 if smoke else 1 << 27  # elements of the copy that sets the bandwidth scale
    gemm_sizes = (64,) if smoke else (4096, 8192)
    att_lens = (32,) if smoke else (1024, 4096)
    bsz, heads, dh = (1, 2, 16) if smoke else (4, 16, 128)
    r, c = (64, 32) if smoke else (16384, 4096)  # rows, columns of the bandwidth-bound ops
    vocab, ce_rows = (100, 16) if smoke else (32000, 4096)

    def timed(fn, reps=20):
        if smoke:
            fn()
            t0 = time.perf_counter()
            fn()
            return max(time.perf_counter() - t0, 1e-9)
        fn()
        torch.cuda.synchronize()
        best = math.inf
        for _ in range(5):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(reps):
                fn()
            b.record()
            b.synchronize()
            best = min(best, a.elapsed_time(b) / 1e3 / reps)
        return best

    rows = []
    n = n_copy
    src, dst = torch.empty(n, device=dev), torch.empty(n, device=dev)
    copy_s = timed(lambda: dst.copy_(src))
    copy_rate = 2 * 4 * n / copy_s
    rows.append(("copy_d2d", copy_s, "bytes/s", copy_rate, 1.0))

    def bw(name, fn, nbytes):
        s = timed(fn)
        rows.append((name, s, "bytes/s", nbytes / s, nbytes / s / copy_rate))

    def flops(name, fn, count, reps=10):
        s = timed(fn, reps)
        rows.append((name, s, "FLOP/s", count / s, None))

    for size in gemm_sizes:
        a, b = torch.randn(size, size, device=dev), torch.randn(size, size, device=dev)
        torch.backends.cuda.matmul.allow_tf32 = False
        flops(f"gemm_f32/{size}", lambda: a @ b, 2 * size**3)
        torch.backends.cuda.matmul.allow_tf32 = True
        flops(f"gemm_tf32/{size}", lambda: a @ b, 2 * size**3)
        torch.backends.cuda.matmul.allow_tf32 = False
        ab, bb = a.bfloat16(), b.bfloat16()
        flops(f"gemm_bf16/{size}", lambda: ab @ bb, 2 * size**3)
    del a, b, ab, bb

    for s_len in att_lens:
        q, k, v = (torch.randn(bsz, heads, s_len, dh, device=dev, requires_grad=True) for _ in range(3))
        fwd = 4.0 * bsz * heads * s_len * s_len * dh / 2
        flops(f"attention_fwd_f32/{s_len}", lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), fwd, 3)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        g = torch.randn_like(o)
        flops(f"attention_bwd_f32/{s_len}",
              lambda: torch.autograd.grad(o, (q, k, v), g, retain_graph=True), 2.5 * fwd, 3)
        qb, kb, vb = (t.detach().bfloat16().requires_grad_() for t in (q, k, v))
        flops(f"attention_fwd_bf16/{s_len}", lambda: F.scaled_dot_product_attention(qb, kb, vb, is_causal=True), fwd, 3)
        del q, k, v, o, g, qb, kb, vb

    x, y, w = torch.randn(r, c, device=dev), torch.empty(r, c, device=dev), torch.randn(c, device=dev)
    if hasattr(F, "rms_norm"):
        bw("rmsnorm_forward", lambda: F.rms_norm(x, (c,), w, 1e-5), 2 * 4 * r * c)
    bw("layernorm_forward", lambda: F.layer_norm(x, (c,), w, w, 1e-5), 2 * 4 * r * c)
    bw("softmax_forward", lambda: torch.softmax(x, -1), 2 * 4 * r * c)
    bw("silu_forward", lambda: F.silu(x), 2 * 4 * r * c)
    bw("swiglu_forward", lambda: F.silu(x) * y, 3 * 4 * r * c)
    bw("dropout_forward", lambda: F.dropout(x, 0.1, True), 2 * 4 * r * c)
    p = torch.nn.Parameter(torch.randn(r * c, device=dev))
    p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.01, fused=not smoke)
    bw("adamw_step", opt.step, 7 * 4 * r * c)
    del p, opt
    logits, targets = torch.randn(ce_rows, vocab, device=dev), torch.randint(0, vocab, (ce_rows,), device=dev)
    bw("cross_entropy_forward", lambda: F.cross_entropy(logits, targets, reduction="none"), 4 * ce_rows * vocab)
    table, ids = torch.randn(vocab, c, device=dev), torch.randint(0, vocab, (r,), device=dev)
    bw("embedding_forward", lambda: F.embedding(ids, table), 2 * 4 * r * c)

    print(f"torch {torch.__version__}, {'CPU smoke run: no figure here means anything' if smoke else torch.cuda.get_device_name()}")
    print(f"{'case':28s} {'seconds':>12s} {'rate':>14s}  of copy")
    for name, s, unit, rate, frac in rows:
        scale = 1e12 if unit == "FLOP/s" else 1e9
        shown = f"{rate / scale:.1f} {'TFLOP/s' if unit == 'FLOP/s' else 'GB/s'}"
        print(f"{name:28s} {s:12.6f} {shown:>14s}  {'' if frac is None else f'{frac:.2f}'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(case=a, seconds=b, unit=u, rate=r_, of_copy=fr) for a, b, u, r_, fr in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
