#!/usr/bin/env python3
"""Side-by-side training speed: RecBole's SASRec / GRU4Rec (PyTorch CPU) against `slim rec train` on ML-1M.

What it measures, for each library, model and the same thread count:
  * seconds per training epoch (mean over the epochs run);
  * for RecBole, wall time, evaluation included, until the TEST NDCG@10 under the sampled-100 protocol
    (evaluated every 5 epochs) first reaches the target (default 0.55), or "not reached" within the time cap;
    for slim, the same time read off the learning curve of `slim rec train --trace-test` (see run_slim).
Status: an epoch of RecBole's SASRec (981,491 prefix samples) takes about half an hour of training steps on this
2-core machine, so a run capped at --cap-minutes stops before RecBole's first evaluation (epoch 5); the script then
reports the lower bound that the protocol implies (eval_every epochs at the measured step rate) beside slim's
measured time to the target (docs/PERFORMANCE.md).

Pinned versions (a venv of its own; RecBole breaks on torch >= 2.6, its issue #2212):
    Python 3.11.7, torch==2.5.1, recbole==1.2.1, numpy<2 (1.26.4)
    python3 -m venv /tmp/slim_dev/recbole/venv
    /tmp/slim_dev/recbole/venv/bin/pip install torch==2.5.1 recbole==1.2.1 'numpy<2'
Run:
    /tmp/slim_dev/recbole/venv/bin/python tools/bench/rec_speed.py --slim build/release/examples/slim \
        --threads 2 --models sasrec gru4rec --cap-minutes 20
Data: $SLIM_DATA_DIR/ml-1m/ml-1m_sasrec_format.txt (default ../shared/data), converted at run time into RecBole
atomic files under --work (never committed). Timestamps are the line order within a user, so both libraries
see the same chronology and the same leave-one-out split.

Comparability (also in docs/PERFORMANCE.md): RecBole trains sequential models on every prefix of every
training sequence as its own sample ("data augmentation"), slim (like the original SASRec code) trains on
each user's sequence once per epoch with a loss at every position. An "epoch" therefore means different
amounts of work; time-to-quality is the comparable figure. RecBole supports CE and BPR losses for SASRec,
not SASRec's per-position BCE, so both sides use full-softmax CE here.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HYPER = {
    # Shared by both libraries: the SASRec paper's ML-1M setting (2 blocks, 1 head, d = 50, length 200,
    # dropout 0.2, Adam lr 1e-3) and RecBole's GRU4Rec defaults (embedding 64, hidden 128, dropout 0.3).
    "sasrec": dict(n_layers=2, n_heads=1, hidden_size=50, inner_size=50, hidden_dropout_prob=0.2,
                   attn_dropout_prob=0.2, hidden_act="relu", layer_norm_eps=1e-8, initializer_range=0.02,
                   loss_type="CE", MAX_ITEM_LIST_LENGTH=200, learning_rate=1e-3, train_batch_size=128),
    "gru4rec": dict(embedding_size=64, hidden_size=128, num_layers=1, dropout_prob=0.3, loss_type="CE",
                    MAX_ITEM_LIST_LENGTH=200, learning_rate=1e-3, train_batch_size=128),
}


def convert(data_dir, work):
    src = os.path.join(data_dir, "ml-1m", "ml-1m_sasrec_format.txt")
    out_dir = os.path.join(work, "ml1m")
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, "ml1m.inter")
    if not os.path.exists(dst):
        order = {}
        with open(src) as f, open(dst + ".tmp", "w") as g:
            g.write("user_id:token\titem_id:token\ttimestamp:float\n")
            for line in f:
                u, i = line.split()
                order[u] = order.get(u, 0) + 1
                g.write(f"{u}\t{i}\t{order[u]}\n")
        os.replace(dst + ".tmp", dst)
    return work


def run_recbole(model, work, threads, target, cap_s, eval_every):
    import torch
    torch.set_num_threads(threads)
    os.chdir(work)  # (absolute, see main) RecBole writes log_tensorboard/ into the working directory
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed, get_model, get_trainer

    cfg = dict(HYPER[model.lower()])
    cfg.update(data_path=work, dataset="ml1m", USER_ID_FIELD="user_id", ITEM_ID_FIELD="item_id",
               TIME_FIELD="timestamp", load_col={"inter": ["user_id", "item_id", "timestamp"]},
               train_neg_sample_args=None, epochs=10_000, eval_step=eval_every, stopping_step=10_000,
               eval_args={"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                          "mode": {"valid": "uni100", "test": "uni100"}},
               metrics=["NDCG", "Hit", "MRR"], topk=[10, 20], valid_metric="NDCG@10", device="cpu",
               use_gpu=False, worker=0, seed=2020, reproducibility=True, show_progress=False,
               checkpoint_dir=os.path.join(work, "saved"), log_wandb=False)
    config = Config(model={"sasrec": "SASRec", "gru4rec": "GRU4Rec"}[model], config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    net = get_model(config["model"])(config, train_data._dataset).to("cpu")
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg["learning_rate"])
    start = time.perf_counter()
    # RecBole's own Trainer._train_epoch cannot stop inside an epoch, and one epoch of its prefix-augmented data
    # can take hours here; this loop is the same step (zero_grad, calculate_loss, backward, step) with the time
    # cap checked after every batch. Epoch time is extrapolated from the batches run when no epoch finished.
    batch_seconds, reached, epoch, ndcg, done = [], None, 0, None, False
    while not done:
        net.train()
        for batch in train_data:
            t0 = time.perf_counter()
            optimizer.zero_grad()
            loss = net.calculate_loss(batch)
            loss.backward()
            optimizer.step()
            batch_seconds.append(time.perf_counter() - t0)
            if time.perf_counter() - start > cap_s:
                done = True
                break
        else:
            epoch += 1
            print(f"recbole {model} epoch {epoch} done at {time.perf_counter() - start:.0f} s", file=sys.stderr,
                  flush=True)
            if epoch % eval_every == 0:
                ndcg = float(trainer.evaluate(test_data, load_best_model=False, show_progress=False)["ndcg@10"])
                print(f"recbole {model} epoch {epoch}: test ndcg@10 {ndcg:.4f}", file=sys.stderr, flush=True)
                if ndcg >= target:
                    reached = time.perf_counter() - start
                    done = True
    evaluated = ndcg is not None
    if not evaluated:  # capped before the first evaluation: report the quality reached so far
        ndcg = float(trainer.evaluate(test_data, load_best_model=False, show_progress=False)["ndcg@10"])
    per_batch = sum(batch_seconds) / max(1, len(batch_seconds))
    epoch_seconds = per_batch * len(train_data)
    # Under the protocol the test metric is first read after eval_every epochs, so a run capped before its
    # first evaluation cannot have reached the target sooner than eval_every epochs of training steps at the
    # measured rate (data loading, which the batch timer leaves out, would only add to it): a lower bound.
    lower_bound = None if evaluated else epoch_seconds * eval_every
    return dict(library="recbole", model=model, threads=threads, epochs=epoch,
                seconds_per_epoch=epoch_seconds,
                seconds_to_target=reached, seconds_to_target_at_least=lower_bound, last_test_ndcg10=ndcg,
                batches_run=len(batch_seconds), seconds_per_batch=per_batch,
                batches_per_epoch=len(train_data), train_samples_per_epoch=len(train_data.dataset),
                epoch_seconds_extrapolated=epoch == 0)


def run_slim(model, slim, data_dir, threads, epochs, eval_every, target):
    # `slim rec train --trace-test` evaluates the test split at every validation (every E epochs) and reports
    # the learning curve with cumulative training and evaluation seconds; the time to the target is the first
    # curve point whose test NDCG@10 (sampled-100) reaches it, training plus all evaluation so far (validation
    # and full ranking included, which the protocol does not need: slim is charged for more than RecBole).
    cmd = [slim, "rec", "train", "--data", os.path.join(data_dir, "ml-1m", "ml-1m_sasrec_format.txt"),
           "--format", "sasrec", "--model", model, "--threads", str(threads), "--loss", "ce",
           "--eval-every", str(eval_every), "--epochs", str(epochs), "--trace-test"]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    r = json.loads(out)
    reached, reached_epoch, last = None, None, None
    for point in r["curve"]:
        ndcg = point.get("test", {}).get("sampled100", {}).get("ndcg@10")
        if ndcg is None:
            continue
        last = ndcg
        if reached is None and ndcg >= target:
            reached, reached_epoch = point["train_seconds"] + point["eval_seconds"], point["epoch"]
    return dict(library="slim", model=model, threads=threads, epochs=r["epochs"],
                seconds_per_epoch=r["seconds_per_epoch"], seconds_to_target=reached, epoch_at_target=reached_epoch,
                last_test_ndcg10=last)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slim", required=True, help="path to the slim program")
    p.add_argument("--data-dir", default=os.environ.get("SLIM_DATA_DIR", os.path.join("..", "shared", "data")))
    p.add_argument("--work", default="/tmp/slim_rec_speed")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", nargs="+", default=["sasrec", "gru4rec"])
    p.add_argument("--libraries", nargs="+", default=["slim", "recbole"])
    p.add_argument("--target", type=float, default=0.55)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--cap-minutes", type=float, default=20, help="time cap of the RecBole run")
    p.add_argument("--slim-epochs", type=int, default=50)
    a = p.parse_args()
    # absolute paths: the RecBole runs change the working directory
    a.data_dir, a.work = os.path.abspath(a.data_dir), os.path.abspath(a.work)
    if os.sep in a.slim:
        a.slim = os.path.abspath(a.slim)
    work = convert(a.data_dir, a.work)
    rows = []
    for model in a.models:
        for lib in a.libraries:
            if lib == "slim":
                rows.append(run_slim(model, a.slim, a.data_dir, a.threads, a.slim_epochs, a.eval_every, a.target))
            else:
                rows.append(run_recbole(model, work, a.threads, a.target, a.cap_minutes * 60, a.eval_every))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n| model | library | threads | s/epoch | epochs | s to test NDCG@10 >= {a.target} | last NDCG@10 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        t = "not reached" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.0f}"
        if r.get("seconds_to_target_at_least"):
            t = f"not reached; >= {r['seconds_to_target_at_least']:.0f} (first evaluation)"
        print(f"| {r['model']} | {r['library']} | {r['threads']} | {r['seconds_per_epoch']:.2f} | {r['epochs']} | {t} "
              f"| {r['last_test_ndcg10']:.4f} |")


if __name__ == "__main__":
    main()
