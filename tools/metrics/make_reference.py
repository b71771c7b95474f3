#!/usr/bin/env python3
"""Reference ranking metrics for slim's metrics tests, computed by an independent evaluator (ranx).

Writes, into tests/data/metrics/ (or the folder given as the first argument):
  ranking_scores.u16      200 users x 300 items, uint16 little-endian, row-major: user u's score of item
                          i+1 is entry [u, i]. Each row is a random permutation of 0..299, so no row has ties;
                          for three users in four the target's score is swapped to a random place in the top 40.
  ranking_reference.json  targets, histories (with repeats; some hold the target) and, per user, ranx's
                          ndcg@K, hit_rate@K, mrr@K and recall@K for K in 1, 5, 10, 20 under slim's
                          full-ranking rule: candidates are items 1..300 minus the history, the target kept.

Pinned (python 3.11.7): ranx==0.3.21, numpy==2.4.6, numba==0.68.1, llvmlite==0.50.0.
Run: python -m venv venv && venv/bin/pip install ranx==0.3.21 numpy==2.4.6 numba==0.68.1 llvmlite==0.50.0
     venv/bin/python tools/metrics/make_reference.py
"""
import importlib.metadata
import json
import os
import sys

import numpy as np
import ranx

USERS, ITEMS, SEED = 200, 300, 20240305
CUTOFFS = (1, 5, 10, 20)
FAMILIES = (("ndcg", "ndcg"), ("hr", "hit_rate"), ("mrr", "mrr"), ("recall", "recall"))


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests",
                                                                  "data", "metrics")
    rng = np.random.default_rng(SEED)
    scores = np.stack([rng.permutation(ITEMS) for _ in range(USERS)]).astype("<u2")  # (USERS, ITEMS)
    targets, histories = [], []
    for u in range(USERS):
        target = int(rng.integers(1, ITEMS + 1))
        length = int(rng.integers(0, 31))
        others = [i for i in range(1, ITEMS + 1) if i != target]
        history = [int(x) for x in rng.choice(others, size=length, replace=True)]  # repeats on purpose
        if u % 10 == 3 and history:  # a repeated consumption: the target is in the history, stays a candidate
            history.insert(int(rng.integers(0, len(history) + 1)), target)
        if u % 4 != 0:  # most targets near the top, so every cut-off sees hits at many positions
            place = int(rng.integers(0, 40))  # 0-based place among all items by descending score
            row = scores[u]
            j = int(np.argsort(-row.astype(np.int64))[place])
            row[target - 1], row[j] = row[j], row[target - 1]
        targets.append(target)
        histories.append(history)

    qrels, run = {}, {}
    for u in range(USERS):
        qid = f"u{u:03d}"
        excluded = set(histories[u]) - {targets[u]}
        qrels[qid] = {str(targets[u]): 1}
        run[qid] = {str(i): float(scores[u, i - 1]) for i in range(1, ITEMS + 1) if i not in excluded}
    names = [f"{ranx_name}@{k}" for _, ranx_name in FAMILIES for k in CUTOFFS]
    per_user = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), names, return_mean=False, threads=1)
    qids = sorted(qrels)  # ranx orders queries by id; ids are zero-padded so this is user order
    metrics = {}
    for slim_name, ranx_name in FAMILIES:
        for k in CUTOFFS:
            values = per_user[f"{ranx_name}@{k}"]
            assert len(values) == len(qids)
            metrics[f"{slim_name}@{k}"] = [float(v) for v in values]

    with open(os.path.join(out_dir, "ranking_scores.u16"), "wb") as f:
        f.write(scores.tobytes())
    with open(os.path.join(out_dir, "ranking_reference.json"), "w") as f:
        json.dump({"generator": "tools/metrics/make_reference.py", "evaluator": "ranx " + importlib.metadata.version("ranx"),
                   "users": USERS, "items": ITEMS, "seed": SEED, "targets": targets, "histories": histories,
                   "metrics": metrics}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
