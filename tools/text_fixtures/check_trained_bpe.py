#!/usr/bin/env python3
"""HF `tokenizers` as the oracle for slim's byte-level BPE trainer (include/slim/text/bpe_trainer.hpp).

Pinned versions (the committed fixtures were made with exactly these):
    Python 3.11.7, tokenizers==0.23.3
    python3 -m venv /tmp/slim_dev/text/venv && /tmp/slim_dev/text/venv/bin/pip install tokenizers==0.23.3
Inputs: tests/data/text/corpus.jsonl (tools/text_fixtures/make_corpus.py). Nothing is downloaded.

Without --slim: trains with HF's BpeTrainer on the corpus strings (one sequence per string) and writes the
committed fixtures (tests/data/text/):
    trainer_gpt2_hf.json     vocab 1000, GPT-2 split (ByteLevel use_regex), full byte alphabet, no specials
    trainer_gpt2/            the same model as GPT-2 files: encoder.json + vocab.bpe (HF's vocab.json and
                             merges.txt under GPT-2's names)
    trainer_llama3_hf.json   vocab 1200, LLaMA-3 Split + ByteLevel, specials <|begin_of_text|>, <|end_of_text|>,
                             <|eot_id|>, min_frequency 2, ignore_merges, a TemplateProcessing that adds BOS
    trainer_ids.jsonl        per corpus string: HF's ids with trainer_gpt2_hf.json ("gpt2") and with
                             trainer_llama3_hf.json and add_special_tokens ("llama3_special")
    trainer_cli_text.jsonl   every 16th corpus string as {"text": ...}: input of the `slim tokenize` ctest
    trainer_cli_ids.jsonl    {"ids": ...} for those with trainer_gpt2_hf.json, in `slim tokenize`'s format
    trainer_cli_special.jsonl  the same with trainer_llama3_hf.json and add_special_tokens
    trainer_cli_decoded.jsonl  {"text": HF's decode of trainer_cli_ids.jsonl}
    trainer_cli_bad.jsonl    a valid line, a blank line, then {"text": 5} (the error must name stdin:3)

With --slim PATH (the `slim` program): for each configuration (the two above, a Qwen2 one and a GPT-2 one with
add_prefix_space, used bytes only and min_frequency 3) trains with `slim tokenize train` and with HF on the
same corpus, and checks (exit status 1 on any difference):
    * the vocabulary and the merge list are identical, merge for merge;
    * HF loads slim's tokenizer.json and gives the same ids as HF's own model on every corpus string;
    * `slim tokenize` with slim's file gives those ids too.
--corpus FILE runs that check on another corpus (plain text, one sequence per line as HF's `train` reads
files; e.g. ~10 MB assembled from ../shared/data) and writes nothing. Last run: all identical on the parity
corpus and on 12 MB of real text (vocab 4096 gpt2, 8000 llama3, 30000 qwen2).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

PINNED = {"tokenizers": "0.23.3"}

LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                  r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                 r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DATA = os.path.join(ROOT, "tests", "data", "text")

CONFIGS = {
    "gpt2": dict(vocab=1000, pattern="gpt2"),
    "llama3": dict(vocab=1200, pattern="llama3", min_frequency=2, ignore_merges=True,
                   specials=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], bos="<|begin_of_text|>"),
    "qwen2": dict(vocab=3000, pattern="qwen2", specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
    "gpt2_prefix": dict(vocab=800, pattern="gpt2", prefix=True, used_bytes_only=True, min_frequency=3),
}


def hf_train(cfg, texts=None, files=None):
    tok = Tokenizer(models.BPE(ignore_merges=cfg.get("ignore_merges", False)))
    prefix = cfg.get("prefix", False)
    if cfg["pattern"] == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix, use_regex=True)
    else:
        pattern = LLAMA3_PATTERN if cfg["pattern"] == "llama3" else QWEN2_PATTERN
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=prefix, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    extra = {} if cfg.get("used_bytes_only") else {"initial_alphabet": pre_tokenizers.ByteLevel.alphabet()}
    trainer = trainers.BpeTrainer(vocab_size=cfg["vocab"], min_frequency=cfg.get("min_frequency", 0),
                                  special_tokens=cfg.get("specials", []), show_progress=False, **extra)
    if files:
        tok.train(files, trainer)
    else:
        tok.train_from_iterator(texts, trainer)
    if cfg.get("bos"):
        bos = cfg["bos"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1", special_tokens=[(bos, tok.token_to_id(bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def slim_train_args(cfg):
    a = ["--vocab-size", str(cfg["vocab"]), "--pattern", cfg["pattern"]]
    for s in cfg.get("specials", []):
        a += ["--special", s]
    if cfg.get("bos"):
        a += ["--bos", cfg["bos"]]
    if cfg.get("min_frequency"):
        a += ["--min-frequency", str(cfg["min_frequency"])]
    if cfg.get("prefix"):
        a.append("--add-prefix-space")
    if cfg.get("used_bytes_only"):
        a.append("--used-bytes-only")
    if cfg.get("ignore_merges"):
        a.append("--ignore-merges")
    return a


def merges_of(model):
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(name, rows):
    with open(os.path.join(DATA, name), "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(compact(r) + "\n")


def check_with_slim(slim, texts, corpus_file):
    """Trains every configuration with slim and HF; returns the number of disagreements."""
    bad = 0
    plain = corpus_file
    with tempfile.TemporaryDirectory() as tmp:
        if corpus_file is None:
            corpus_file = os.path.join(tmp, "corpus.jsonl")
            with open(corpus_file, "w", encoding="utf-8") as f:
                for t in texts:
                    f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
            sample = texts
        else:
            with open(corpus_file, encoding="utf-8", newline="") as f:
                sample = [line for line in f][:: 50]  # encode a sample of the lines
        for name, cfg in CONFIGS.items():
            out = os.path.join(tmp, f"slim_{name}.json")
            fmt = ["--jsonl"] if plain is None else ["--text"]
            subprocess.run([slim, "tokenize", "train", "--corpus", corpus_file, "--out", out] + fmt
                           + slim_train_args(cfg), check=True)
            hf = hf_train(cfg, texts=texts) if plain is None else hf_train(cfg, files=[plain])
            mine = json.load(open(out, encoding="utf-8"))["model"]
            ref = json.loads(hf.to_str())["model"]
            same_vocab = mine["vocab"] == ref["vocab"]
            ms, mr = merges_of(mine), merges_of(ref)
            first = next((i for i, (x, y) in enumerate(zip(ms, mr)) if x != y), None)
            print(f"{name}: vocab {len(mine['vocab'])} ({'same' if same_vocab else 'DIFFERENT'}), merges {len(ms)} vs "
                  f"HF {len(mr)}" + ("" if ms == mr else f", first difference at rank {first}"))
            bad += (not same_vocab) + (ms != mr)
            loaded = Tokenizer.from_file(out)
            special = bool(cfg.get("bos"))
            want = [e.ids for e in hf.encode_batch(sample, add_special_tokens=special)]
            got_hf = [e.ids for e in loaded.encode_batch(sample, add_special_tokens=special)]
            inp = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in sample)
            args = [slim, "tokenize", "--tokenizer", out] + (["--add-special"] if special else [])
            r = subprocess.run(args, input=inp.encode("utf-8"), capture_output=True, check=True)
            got_slim = [json.loads(line)["ids"] for line in r.stdout.decode("utf-8").splitlines()]
            d1 = sum(a != b for a, b in zip(got_hf, want))
            d2 = sum(a != b for a, b in zip(got_slim, want)) + abs(len(got_slim) - len(want))
            print(f"  ids on {len(sample)} strings: HF with slim's file {d1} different, slim tokenize {d2} different")
            bad += d1 + d2
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slim", help="the slim program: compare its trainer with HF's instead of writing fixtures")
    ap.add_argument("--corpus", help="with --slim: a plain-text corpus to compare on (nothing is written)")
    args = ap.parse_args()
    if tokenizers.__version__ != PINNED["tokenizers"]:
        print(f"warning: tokenizers {tokenizers.__version__}, fixtures were made with {PINNED['tokenizers']}",
              file=sys.stderr)
    texts = [json.loads(line)["text"] for line in open(os.path.join(DATA, "corpus.jsonl"), encoding="utf-8")
             if line.strip()]

    if args.slim:
        bad = check_with_slim(args.slim, texts, args.corpus)
        print("disagreements:", bad)
        return 1 if bad else 0
    if args.corpus:
        ap.error("--corpus needs --slim")

    gpt2 = hf_train(CONFIGS["gpt2"], texts)
    llama3 = hf_train(CONFIGS["llama3"], texts)
    gpt2.save(os.path.join(DATA, "trainer_gpt2_hf.json"), pretty=False)
    llama3.save(os.path.join(DATA, "trainer_llama3_hf.json"), pretty=False)
    folder = os.path.join(DATA, "trainer_gpt2")
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path, merges_path = gpt2.model.save(tmp)
        vocab = json.load(open(vocab_path, encoding="utf-8"))
        with open(os.path.join(folder, "encoder.json"), "w", encoding="utf-8") as f:
            json.dump(dict(sorted(vocab.items(), key=lambda kv: kv[1])), f, ensure_ascii=False)
        with open(merges_path, encoding="utf-8") as src, \
                open(os.path.join(folder, "vocab.bpe"), "w", encoding="utf-8", newline="\n") as dst:
            dst.write(src.read())

    gpt2_ids = [e.ids for e in gpt2.encode_batch(texts, add_special_tokens=False)]
    llama3_ids = [e.ids for e in llama3.encode_batch(texts, add_special_tokens=True)]
    write_jsonl("trainer_ids.jsonl", [{"gpt2": a, "llama3_special": b} for a, b in zip(gpt2_ids, llama3_ids)])

    picked = texts[::16]
    write_jsonl("trainer_cli_text.jsonl", [{"text": t} for t in picked])
    picked_ids = gpt2_ids[::16]
    write_jsonl("trainer_cli_ids.jsonl", [{"ids": ids} for ids in picked_ids])
    write_jsonl("trainer_cli_special.jsonl", [{"ids": ids} for ids in llama3_ids[::16]])
    write_jsonl("trainer_cli_decoded.jsonl", [{"text": gpt2.decode(ids, skip_special_tokens=False)}
                                              for ids in picked_ids])
    with open(os.path.join(DATA, "trainer_cli_bad.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        f.write('{"text": "fine"}\n\n{"text": 5}\n{"text": "never reached"}\n')
    roundtrip = sum(gpt2.decode(ids) != t for ids, t in zip(gpt2_ids, texts))
    print(f"wrote fixtures: {len(texts)} strings, gpt2 vocab {gpt2.get_vocab_size()}, llama3 vocab "
          f"{llama3.get_vocab_size()}; HF round-trip failures {roundtrip}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
