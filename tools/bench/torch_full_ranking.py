#!/usr/bin/env python3
"""Full-ranking evaluation at ML-1M size in PyTorch (CPU), the peer of bench/bench_rec_eval.cpp.

The computation, as a PyTorch recommender evaluates (RecBole's full-sort evaluation does the same):
6,040 users x 3,416 items, d = 50, random embeddings; scores = U @ E.T (item 0 is padding); each user's
history (random, lengths 20..319, mean ~170, as ML-1M's ~165) masked with -inf except the target; the
padding column masked; topk(20); NDCG@10 of the held-out target from the top-10. Reports the median and
the minimum of --repeat runs per thread count, in milliseconds, and users/s.

With --slim-bench PATH (the slim_bench_rec_eval binary), it also runs slim's benchmark in the same script,
on the same machine and thread counts, and prints slim's time and the ratio (PyTorch / slim).

Pinned: Python 3.11.7, torch==2.15.0 (the CPU build: pip install torch --index-url
https://download.pytorch.org/whl/cpu; the plain PyPI wheel also works, it only adds unused CUDA libraries),
numpy is not needed.
Run:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch==2.15.0
    /tmp/venv/bin/python tools/bench/torch_full_ranking.py --threads 1 2 --repeat 15 \\
        --slim-bench build/release/bench/slim_bench_rec_eval
"""
import argparse
import json
import math
import statistics
import subprocess
import time

import torch

USERS, ITEMS, DIM, TOPK, NDCG_K = 6040, 3416, 50, 20, 10


def make_data(seed: int):
    g = torch.Generator().manual_seed(seed)
    users = torch.rand(USERS, DIM, generator=g) * 2 - 1
    items = torch.rand(ITEMS + 1, DIM, generator=g) * 2 - 1
    targets = torch.randint(1, ITEMS + 1, (USERS,), generator=g)
    lengths = torch.randint(20, 320, (USERS,), generator=g)
    rows = torch.repeat_interleave(torch.arange(USERS), lengths)
    cols = torch.randint(1, ITEMS + 1, (int(lengths.sum()),), generator=g)
    return users, items, targets, rows, cols


def evaluate(users, items, targets, rows, cols):
    """Mean NDCG@10 and the top-20 lists, with the history (not the target) and the padding masked."""
    scores = users @ items.T  # (USERS, ITEMS+1)
    ar = torch.arange(USERS)
    target_scores = scores[ar, targets]
    scores[rows, cols] = -math.inf
    scores[:, 0] = -math.inf
    scores[ar, targets] = target_scores  # the target stays a candidate
    top = torch.topk(scores, TOPK, dim=1).indices  # (USERS, TOPK)
    hits = top[:, :NDCG_K] == targets[:, None]
    discounts = 1.0 / torch.log2(torch.arange(2, NDCG_K + 2, dtype=torch.float32))
    ndcg = (hits.float() * discounts).sum(dim=1).mean()
    return float(ndcg), top


def time_torch(threads: int, repeat: int, data):
    """(median wall ms, min wall ms, median process CPU ms) over `repeat` runs."""
    torch.set_num_threads(threads)
    evaluate(*data)  # warm-up
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        evaluate(*data)
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(times), min(times), statistics.median(cpu)


def time_slim(binary: str, threads: int, repeat: int):
    """Runs slim's benchmark for `threads`; (median wall ms, min wall ms, median main-thread CPU ms, name) of
    its widest simd arch."""
    out = subprocess.run([binary, f"--benchmark_filter=full_ranking_ml1m/.*/{threads}/", "--benchmark_format=json",
                          f"--benchmark_repetitions={repeat}", "--benchmark_report_aggregates_only=false"],
                         check=True, capture_output=True, text=True).stdout
    runs, cpu = {}, {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"]
        scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
        runs.setdefault(name, []).append(b["real_time"] * scale)
        cpu.setdefault(name, []).append(b["cpu_time"] * scale)
    if not runs:
        raise SystemExit(f"{binary}: no full_ranking_ml1m benchmark for {threads} threads")
    name = sorted(runs, key=lambda n: ("avx512" not in n, n))[0]
    return statistics.median(runs[name]), min(runs[name]), statistics.median(cpu[name]), name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--slim-bench", help="path of slim_bench_rec_eval: run it too and print the ratio")
    args = ap.parse_args()
    data = make_data(args.seed)
    print(f"torch {torch.__version__}, {USERS} users x {ITEMS} items, d={DIM}, top-{TOPK} + NDCG@{NDCG_K}")
    # On a loaded machine wall times swing; at 1 thread the CPU times (process for PyTorch, the benchmark's
    # main thread for slim, which is all of its work at 1 thread) are the steadier comparison.
    for t in args.threads:
        med, best, cpu = time_torch(t, args.repeat, data)
        line = (f"threads {t}: torch median {med:.1f} ms (min {best:.1f}, cpu {cpu:.1f}), "
                f"{USERS / med * 1e3:.0f} users/s")
        if args.slim_bench:
            smed, sbest, scpu, name = time_slim(args.slim_bench, t, args.repeat)
            line += (f" | slim {name} median {smed:.1f} ms (min {sbest:.1f}, cpu {scpu:.1f}),"
                     f" {USERS / smed * 1e3:.0f} users/s | torch/slim wall {med / smed:.2f}x,"
                     f" min/min {best / sbest:.2f}x")
            if t == 1:
                line += f", cpu {cpu / scpu:.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
