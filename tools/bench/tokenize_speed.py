#!/usr/bin/env python3
"""Side-by-side tokenizer encode throughput (one thread): slim against HF `tokenizers` and `tiktoken` (GPT-2)
and against `sentencepiece` (LLaMA-2), on one corpus assembled at run time from the shared data.

Pinned versions (peers from PyPI, in a venv; nothing is downloaded at run time — every peer is built from the
local vocabulary files under $SLIM_DATA_DIR/tokenizers):
    Python 3.11.7, tokenizers==0.23.3, tiktoken==0.14.0, regex==2026.11.19 (tiktoken's), sentencepiece==0.2.0
    python3 -m venv /tmp/slim_dev/text/venv
    /tmp/slim_dev/text/venv/bin/pip install tokenizers==0.23.3 tiktoken==0.14.0 regex==2026.11.19 \
        sentencepiece==0.2.0
Run (slim's side is the Google Benchmark program bench/bench_tokenize.cpp, target slim_bench_tokenize):
    cmake --build build/release --target slim_bench_tokenize
    /tmp/slim_dev/text/venv/bin/python tools/bench/tokenize_speed.py --slim build/release/bench/slim_bench_tokenize

Corpus (written to --work, never committed): one document per line of JSON Lines {"text": ...}, in this order — the
parity corpus tests/data/text/corpus.jsonl (less its 7 strings that spell "<|endoftext|>"); every non-empty line of
the title and summary files (amazon-games/Games-6k.item, ml-1m/ml-1m_sasrec_item_map.tsv, ml-100k/ml-100k.item,
rationales/nir_ml100k/items.tsv, rationales/agent4rec_ml1m/movie_detail.csv,
rationales/agent4rec_ml1m/agg_top_25.csv); each GPT-3 step (step1_raw, step2_raw, step3_raw) of
rationales/nir_ml100k/rationales.jsonl; each gpt-3.5 profile ("text") of
rationales/agent4rec_ml1m/teacher_like.jsonl, teacher_like_no_sys.jsonl, teacher_taste_modify.jsonl; every string
of rationales/nir_ml100k/results_multi_prompting_len8_numcand_19_2023.json (prompts and GPT-3 answers) and of
ml_100k.json (title histories) — about 10.4 MB of distinct text; then documents from the start again until the
corpus holds --min-mib (default 10 MiB). Every tokenizer encodes each document separately (the same segmentation
for all), with no special tokens added. No document spells "<|endoftext|>" (checked), so HF's and slim's added-
token pass find nothing and tiktoken's encode_ordinary (which never looks for special tokens) sees the same text;
encode_ordinary is tiktoken's call without the special-token scan.

Peers, all on one thread (best of --passes passes each), called once per document from Python:
    HF tokenizers  Tokenizer.encode(doc, add_special_tokens=False); its BPE word cache is on, as by default.
                   RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false are set before the import.
    tiktoken       Encoding.encode_ordinary(doc).
    sentencepiece  SentencePieceProcessor.encode(doc).
With --batch each peer's batch call is timed too and the faster way counts: HF encode_batch (serial under the
settings above), tiktoken encode_ordinary_batch(num_threads=1), sentencepiece encode(docs, num_threads=1). On
the project's machine every batch call was slower than the per-document loop.
Figures: MB/s over the process's CPU time and over wall time, each the best of --passes passes; the ratios use
CPU time, which a shared, loaded machine disturbs far less than wall time (on a quiet machine they agree; one
thread's CPU time can never exceed its wall time, so a peer that used more threads would show CPU > wall).
slim's figures are the best of --passes repetitions of its corpus benchmark (Google Benchmark real and CPU time).
Checks: identical total id counts for every tokenizer of a model; HF == tiktoken id for id on the whole corpus;
slim == the peers id for id on every 97th document (the bench program writes its ids there).
"""
import argparse
import json
import os
import subprocess
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PINNED = {"tokenizers": "0.23.3", "tiktoken": "0.14.0", "sentencepiece": "0.2.0"}
GOALS = {("gpt2", "hf tokenizers"): 1.5, ("gpt2", "tiktoken"): 1.0, ("llama2", "sentencepiece"): 1.0}
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
IDS_EVERY = 97

LINE_FILES = ["amazon-games/Games-6k.item", "ml-1m/ml-1m_sasrec_item_map.tsv", "ml-100k/ml-100k.item",
              "rationales/nir_ml100k/items.tsv", "rationales/agent4rec_ml1m/movie_detail.csv",
              "rationales/agent4rec_ml1m/agg_top_25.csv"]
JSONL_FIELDS = [("rationales/nir_ml100k/rationales.jsonl", ["step1_raw", "step2_raw", "step3_raw"]),
                ("rationales/agent4rec_ml1m/teacher_like.jsonl", ["text"]),
                ("rationales/agent4rec_ml1m/teacher_like_no_sys.jsonl", ["text"]),
                ("rationales/agent4rec_ml1m/teacher_taste_modify.jsonl", ["text"])]
JSON_FILES = ["rationales/nir_ml100k/results_multi_prompting_len8_numcand_19_2023.json",
              "rationales/nir_ml100k/ml_100k.json"]


def strings_in(obj):
    if isinstance(obj, str):
        if obj:
            yield obj
    elif isinstance(obj, list):
        for x in obj:
            yield from strings_in(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from strings_in(x)


def build_corpus(data_dir, min_bytes):
    docs = []
    with open(os.path.join(ROOT, "tests", "data", "text", "corpus.jsonl"), encoding="utf-8") as f:
        # its few special-token test strings ("<|endoftext|>" written in the text) are left out: see below
        docs += [t for t in (json.loads(line)["text"] for line in f if line.strip()) if "<|endoftext|>" not in t]
    for rel in LINE_FILES:
        with open(os.path.join(data_dir, rel), "rb") as f:
            docs += [line.rstrip("\r") for line in f.read().decode("utf-8").split("\n") if line.rstrip("\r")]
    for rel, keys in JSONL_FIELDS:
        with open(os.path.join(data_dir, rel), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    docs += [obj[k] for k in keys if isinstance(obj.get(k), str) and obj[k]]
    for rel in JSON_FILES:
        with open(os.path.join(data_dir, rel), encoding="utf-8") as f:
            docs += list(strings_in(json.load(f)))
    docs = [d for d in docs if d]
    distinct = sum(len(d.encode("utf-8")) for d in docs)
    total, i, n = distinct, 0, len(docs)
    while total < min_bytes:
        docs.append(docs[i % n])
        total += len(docs[-1].encode("utf-8"))
        i += 1
    if any("<|endoftext|>" in d for d in docs):
        sys.exit("corpus holds <|endoftext|>: HF and tiktoken's encode_ordinary would disagree")
    return docs, distinct, total


def time_best(fn, passes):
    """Best wall and best CPU seconds over `passes` calls (each its own minimum), and the last result."""
    wall, cpu, out = None, None, None
    for _ in range(passes):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        wall = w if wall is None else min(wall, w)
        cpu = c if cpu is None else min(cpu, c)
    return wall, cpu, out


def run_peers(data_dir, docs, passes, models, batch):
    rows, ids = [], {}
    if "gpt2" in models:
        import tiktoken
        import tiktoken.load
        from tokenizers import Tokenizer, decoders, models as hf_models, pre_tokenizers
        d = os.path.join(data_dir, "tokenizers", "gpt2")
        enc_json, vocab_bpe = os.path.join(d, "encoder.json"), os.path.join(d, "vocab.bpe")
        hf = Tokenizer(hf_models.BPE.from_file(enc_json, vocab_bpe))
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        hf.add_special_tokens(["<|endoftext|>"])  # as GPT2TokenizerFast declares it
        ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(vocab_bpe, enc_json)
        tk = tiktoken.Encoding("gpt2_local", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                               special_tokens={"<|endoftext|>": 50256})
        ways = [("hf tokenizers", "encode per document", lambda: [hf.encode(x, add_special_tokens=False).ids
                                                                  for x in docs]),
                ("tiktoken", "encode_ordinary per document", lambda: [tk.encode_ordinary(x) for x in docs])]
        if batch:
            ways += [("hf tokenizers", "encode_batch, 1 thread",
                      lambda: [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)]),
                     ("tiktoken", "encode_ordinary_batch, 1 thread",
                      lambda: tk.encode_ordinary_batch(docs, num_threads=1))]
        rows += measure("gpt2", ways, passes, ids)
    if "llama2" in models:
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=os.path.join(data_dir, "tokenizers", "llama", "tokenizer.model"))
        ways = [("sentencepiece", "encode per document", lambda: [sp.encode(x) for x in docs])]
        if batch:
            ways += [("sentencepiece", "encode(list), 1 thread", lambda: sp.encode(docs, num_threads=1))]
        rows += measure("llama2", ways, passes, ids)
    return rows, ids


def measure(model, ways, passes, ids):
    best = {}
    for lib, how, fn in ways:
        wall, cpu, out = time_best(fn, passes)
        print(f"  {model} {lib} ({how}): wall {wall:.3f} s, cpu {cpu:.3f} s", file=sys.stderr, flush=True)
        if lib not in best or cpu < best[lib]["cpu"]:
            best[lib] = dict(model=model, library=lib, method=how, wall=wall, cpu=cpu,
                             tokens=sum(len(x) for x in out))
        ids[(model, lib)] = out
    return list(best.values())


def run_slim(slim, corpus_path, passes, min_time, ids_path, data_dir):
    cmd = [slim, f"--corpus={corpus_path}", f"--ids-out={ids_path}", f"--ids-every={IDS_EVERY}",
           f"--gpt2={os.path.join(data_dir, 'tokenizers', 'gpt2')}",
           f"--llama={os.path.join(data_dir, 'tokenizers', 'llama', 'tokenizer.model')}",
           f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={passes}", "--benchmark_format=json"]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    report = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    best = {}
    for b in report["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name, unit = b["run_name"].removesuffix("/real_time"), scale[b.get("time_unit", "ns")]
        wall, cpu = b["real_time"] * unit, b["cpu_time"] * unit
        r = best.setdefault(name, dict(wall=wall, cpu=cpu, tokens=int(b["tokens"]),
                                       bytes=b["bytes_per_second"] * wall))
        r["wall"], r["cpu"] = min(r["wall"], wall), min(r["cpu"], cpu)
    return best, report.get("context", {})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slim", default=os.path.join(ROOT, "build", "release", "bench", "slim_bench_tokenize"),
                   help="the slim_bench_tokenize program")
    p.add_argument("--data-dir", default=os.environ.get("SLIM_DATA_DIR", os.path.join(ROOT, "..", "shared", "data")))
    p.add_argument("--work", default="/tmp/slim_tokenize_speed")
    p.add_argument("--min-mib", type=float, default=10.0)
    p.add_argument("--passes", type=int, default=3, help="timed passes per method (the best counts)")
    p.add_argument("--min-time", default="0.01", help="Google Benchmark --benchmark_min_time for slim")
    p.add_argument("--batch", action="store_true",
                   help="also time each peer's batch call (one thread); slower than the per-document loop here")
    p.add_argument("--models", nargs="+", default=["gpt2", "llama2"], choices=["gpt2", "llama2"])
    a = p.parse_args()

    import importlib.metadata as md
    versions = {k: md.version(k) for k in PINNED}
    for k, v in PINNED.items():
        if versions[k] != v:
            print(f"warning: {k} {versions[k]} is not the pinned {v}", file=sys.stderr)

    os.makedirs(a.work, exist_ok=True)
    docs, distinct, total = build_corpus(a.data_dir, int(a.min_mib * 2**20))
    corpus_path = os.path.join(a.work, "corpus.jsonl")
    with open(corpus_path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    print(f"corpus: {len(docs)} documents, {total} bytes ({distinct} distinct) -> {corpus_path}", file=sys.stderr)

    ids_path = os.path.join(a.work, "slim_ids.jsonl")
    slim_best, context = run_slim(a.slim, corpus_path, a.passes, a.min_time, ids_path, a.data_dir)
    peer_rows, peer_ids = run_peers(a.data_dir, docs, a.passes, a.models, a.batch)

    # ---- checks ----
    failures = []
    if ("gpt2", "hf tokenizers") in peer_ids and ("gpt2", "tiktoken") in peer_ids:
        hf_ids, tk_ids = peer_ids[("gpt2", "hf tokenizers")], peer_ids[("gpt2", "tiktoken")]
        bad = sum(1 for x, y in zip(hf_ids, tk_ids) if list(x) != list(y))
        if bad:
            failures.append(f"gpt2: HF and tiktoken differ on {bad} documents")
    with open(ids_path, encoding="utf-8") as f:
        sample = [json.loads(line) for line in f if line.strip()]
    for model in a.models:
        slim_tokens = slim_best[f"tokenize/{model}/corpus"]["tokens"]
        for r in peer_rows:
            if r["model"] != model:
                continue
            if r["tokens"] != slim_tokens:
                failures.append(f"{model}: slim {slim_tokens} ids, {r['library']} {r['tokens']}")
            ref = peer_ids[(model, r["library"])]
            bad = [row["doc"] for row in sample if list(ref[row["doc"]]) != row[model]]
            if bad:
                failures.append(f"{model}: slim != {r['library']} on sample documents {bad[:10]}")
        print(f"  {model}: {len(sample)} sample documents compared id for id", file=sys.stderr)

    # ---- table ----
    mb = total / 1e6
    print(f"\nCorpus: {len(docs)} documents, {mb:.2f} MB ({distinct / 1e6:.2f} MB distinct); one thread; "
          f"versions: tokenizers {versions['tokenizers']}, tiktoken {versions['tiktoken']}, "
          f"sentencepiece {versions['sentencepiece']}; host {context.get('host_name', '?')}, "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    print("MB = 10^6 bytes. 'CPU' figures divide by the process's CPU time (robust on a shared machine), 'wall' by "
          "elapsed time; each is the best of the passes. Ratios use the CPU figures.")
    print("\n| model | library | how | MB/s (CPU) | MB/s (wall) | ids | slim / this | goal | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in a.models:
        s = slim_best[f"tokenize/{model}/corpus"]
        slim_cpu = mb / s["cpu"]
        print(f"| {model} | slim | bench_tokenize, best of {a.passes} | {slim_cpu:.2f} | {mb / s['wall']:.2f} | "
              f"{s['tokens']} | – | – | – |")
        for r in peer_rows:
            if r["model"] != model:
                continue
            ratio = slim_cpu / (mb / r["cpu"])
            goal = GOALS.get((model, r["library"]))
            met = "–" if goal is None else ("yes" if ratio >= goal else "no")
            print(f"| {model} | {r['library']} | {r['method']} | {mb / r['cpu']:.2f} | {mb / r['wall']:.2f} | "
                  f"{r['tokens']} | {ratio:.2f} | {'≥ ' + format(goal, 'g') if goal else '–'} | {met} |")
    print("\n| slim, long input | ms (CPU) | ms (wall) | MB/s (CPU) | ids |")
    print("|---|---|---|---|---|")
    for name, b in sorted(slim_best.items()):
        if name.endswith("/corpus"):
            continue
        print(f"| {name} | {b['cpu'] * 1e3:.1f} | {b['wall'] * 1e3:.1f} | {b['bytes'] / b['cpu'] / 1e6:.2f} | "
              f"{b['tokens']} |")
    if failures:
        print("\nCHECKS FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("\nChecks: id counts equal for every tokenizer of each model; HF == tiktoken on every document; "
          f"slim == peers on every {IDS_EVERY}th document.")


if __name__ == "__main__":
    main()
