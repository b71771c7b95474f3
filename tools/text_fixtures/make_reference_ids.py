#!/usr/bin/env python3
"""Reference token ids for slim's byte-level BPE parity tests.

Pinned versions (the committed fixtures were made with exactly these):
    Python 3.11.7, tokenizers==0.23.3, tiktoken==0.14.0, regex==2026.11.19 (tiktoken's dependency)
    python3 -m venv /tmp/slim_dev/text/venv
    /tmp/slim_dev/text/venv/bin/pip install tokenizers==0.23.3 tiktoken==0.14.0 regex==2026.11.19
Inputs:
    tests/data/text/corpus.jsonl                  (tools/text_fixtures/make_corpus.py)
    $SLIM_DATA_DIR/tokenizers/gpt2/encoder.json, vocab.bpe  (default ../shared/data; read, never copied)
Nothing is downloaded: tiktoken and HF `tokenizers` are both built from the local vocabulary files.

Outputs (committed, tests/data/text/):
    llama3_bpe.json   byte-level BPE trained here by HF tokenizers on the corpus (vocab 1000) with the LLaMA-3
                      split pattern, LLaMA-3's special tokens, a TemplateProcessing that adds BOS, and
                      ignore_merges = true as in LLaMA-3; merges in the ["a", "b"] form.
    qwen2_bpe.json    the same with the Qwen2 split pattern, Qwen2's special tokens, merges in the "a b" form.
    added_bpe.json    the same with ByteLevel(add_prefix_space, GPT-2 split), a RobertaProcessing, and added
                      tokens exercising HF's rules: special vs normalized passes, single_word, lstrip, rstrip,
                      overlapping contents (leftmost-longest).
    reference_ids.jsonl  one line per corpus string: {"id", "gpt2", "llama3", "qwen2", "added", "..._special"}
                      ids from HF tokenizers (add_special_tokens False unless the key ends in _special), plus
                      "added_decoded" (HF's decode of the "added" ids, which need not equal the text).
    added_cases.jsonl extra strings for the added-token rules, same keys for the "added" tokenizer.
    edge_bpe.json     a hand-made byte-level BPE (256 bytes + a few tokens) whose merges make ignore_merges
                      matter ("abc" is a token, but merging "b c" first gives a + bc).
    unk_bpe.json      a byte-level BPE trained on the ASCII-only corpus strings without the full byte
                      alphabet, with unk_token <unk> and fuse_unk: bytes it cannot spell become <unk>.
    edge_reference.jsonl  HF ids for the edge cases, each row {"fixture", "variant", "text", "ids"}: variants of
                      edge_bpe (ignore_merges true / false) and of unk_bpe (fuse_unk true / false, and
                      byte_fallback with <0x00>..<0xFF> added to the vocabulary) — the C++ test makes the same
                      edits to the JSON. unk_bpe rows use every third corpus string.
    split_cases.jsonl 600 seeded random strings over an alphabet of the characters the split patterns treat
                      specially, with the pieces HF's Split pre-tokenizer (Oniguruma) cuts them into for the
                      gpt2, llama3 and qwen2 patterns; the `regex` module (a third engine) is checked to agree.
The script also checks, and prints: tiktoken == HF tokenizers for GPT-2 on every string; tiktoken built from
the trained vocabularies == HF for the LLaMA-3 and Qwen2 fixtures (tiktoken always behaves like
ignore_merges); HF's own round trip decode(encode(s)) == s. (Last run: 0 disagreements of each kind.)

--real-data writes reference ids for the real titles and rationales under --data (SLIM_DATA_DIR layout)
to --real-out (default /tmp/slim_dev/text/real_reference.jsonl) instead — never into the repository. The C++
data test compares against that file when SLIM_TEXT_REAL_REFERENCE names it.
"""
import argparse
import json
import os
import sys

import tiktoken
import tiktoken.load
import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

PINNED = {"tokenizers": "0.23.3", "tiktoken": "0.14.0"}

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                  r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN2_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                 r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DATA_OUT = os.path.join(ROOT, "tests", "data", "text")

# Strings for the added-token rules (added_bpe.json); the corpus strings run through it as well.
ADDED_CASES = [
    "<s>hello</s>",
    "hello <mask> world",
    "hello   <mask>   world",
    "a<mask>b",
    "<mask>",
    "  <mask>",
    "x [SEP] y",
    "x[SEP]y",
    "x  [SEP]  y",
    "[SEP][SEP]",
    "the cat sat",
    "concatenate",
    "cat",
    "a cat, a dog",
    "catalog cat cat9 9cat",
    "<tag>text</tag>",
    "<tag><tagx>",
    "<ta",
    "<t",
    "<tagline>",
    "dog\u00a0cat\u00a0dog",
    "\u3000<mask>\u3000",
    "<s><mask></s>",
    "<s> <s> <s>",
    "hello world<s>",
    "new line\n[SEP]\nnext",
    "tab\t<mask>\tend",
    "é<mask>é",
    "中cat中",
    "cat中cat",
    "<s>cat</s>",
    "ab<sep_long>cd<sep>ef",
    "<sep_lon",
    "<sep><sep_long>",
    "ZWJ 👨‍👩‍👧 <mask> 🏳️‍🌈",
    "  leading and trailing  ",
    "something interesting is happening",
    "ing",
    "<ing>",
]


# Characters the split patterns treat specially, for the random split cases.
SPLIT_ALPHABET = (["a", "b", "Z", "s", "S", "t", "T", "r", "e", "E", "v", "m", "l", "L", "d", "D", "\u017f", "é",
                   "中", "й", "ß", "ǅ", "ʰ"] +
                  ["0", "7", "٣", "½", "Ⅻ", "²"] +
                  [" ", " ", " ", "\t", "\n", "\r", "\u00a0", "\u3000", "\u2028", "\u0085", "\u000b"] +
                  ["'", "'", "'", "!", ".", ",", "-", "_", "\u2019", "😀", "\u200d", "\u0301", "\u200b", "#", "$"])


def split_cases(n=600, seed=20240601):
    import random
    import regex
    rng = random.Random(seed)
    pre = {name: pre_tokenizers.Split(Regex(pat), behavior="isolated", invert=False)
           for name, pat in [("gpt2", GPT2_PATTERN), ("llama3", LLAMA3_PATTERN), ("qwen2", QWEN2_PATTERN)]}
    pats = {"gpt2": GPT2_PATTERN, "llama3": LLAMA3_PATTERN, "qwen2": QWEN2_PATTERN}
    rows, disagree = [], 0
    for i in range(n):
        length = rng.randint(0, 24)
        text = "".join(rng.choice(SPLIT_ALPHABET) for _ in range(length))
        r = {"id": i, "text": text}
        for name, p in pre.items():
            pieces = [piece for piece, _ in p.pre_tokenize_str(text)]
            r[name] = pieces
            if regex.findall(pats[name], text) != pieces:
                disagree += 1
                print(f"  regex module != HF for {name} on {text!r}", file=sys.stderr)
        rows.append(r)
    return rows, disagree


def corpus_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def gpt2_reference(data_dir):
    d = os.path.join(data_dir, "tokenizers", "gpt2")
    enc_json, vocab_bpe = os.path.join(d, "encoder.json"), os.path.join(d, "vocab.bpe")
    hf = Tokenizer(models.BPE.from_file(enc_json, vocab_bpe))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens(["<|endoftext|>"])  # as GPT2TokenizerFast declares it
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(vocab_bpe, enc_json)
    tk = tiktoken.Encoding("gpt2_local", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                           special_tokens={"<|endoftext|>": 50256})
    return hf, tk


def train(texts, pattern, specials, *, byte_level_split=False, add_prefix_space=False, vocab_size=1000):
    tok = Tokenizer(models.BPE())
    stages = []
    if pattern is not None:
        stages.append(pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False))
    stages.append(pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=byte_level_split))
    tok.pre_tokenizer = stages[0] if len(stages) == 1 else pre_tokenizers.Sequence(stages)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def rewrite(tok, edit):
    """Applies `edit` to the tokenizer's JSON and reloads it (the way a tokenizer.json file is read)."""
    obj = json.loads(tok.to_str())
    edit(obj)
    return Tokenizer.from_str(json.dumps(obj, ensure_ascii=False)), obj


def save(obj, name):
    path = os.path.join(DATA_OUT, name)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    return path


def tiktoken_from_trained(obj, pattern, name):
    """tiktoken over a trained vocabulary: rank = id (ids follow merge order), specials apart."""
    specials = {t["content"]: t["id"] for t in obj["added_tokens"]}
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    ranks = {}
    for token, i in obj["model"]["vocab"].items():
        if token in specials:
            continue
        ranks[bytes(byte_of[c] for c in token)] = i
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def build_trained(texts):
    # LLaMA-3 style: BOS through TemplateProcessing, ignore_merges, merges as pairs.
    llama = train(texts, LLAMA3_PATTERN, LLAMA3_SPECIALS)
    llama.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", llama.token_to_id("<|begin_of_text|>"))]),
    ])

    def llama_edit(obj):
        obj["model"]["ignore_merges"] = True
        obj["model"]["merges"] = [m.split(" ", 1) if isinstance(m, str) else m for m in obj["model"]["merges"]]
    llama, llama_obj = rewrite(llama, llama_edit)

    # Qwen2 style: no BOS, merges as "a b" strings.
    qwen = train(texts, QWEN2_PATTERN, QWEN2_SPECIALS)
    qwen.post_processor = processors.ByteLevel(trim_offsets=False)

    def qwen_edit(obj):
        obj["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in obj["model"]["merges"]]
    qwen, qwen_obj = rewrite(qwen, qwen_edit)

    # Added-token rules: GPT-2 split inside ByteLevel with a prefix space, Roberta-style <s> ... </s>.
    added = train(texts, None, ["<s>", "</s>", "<pad>"], byte_level_split=True, add_prefix_space=True)
    added.add_special_tokens([tokenizers.AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)])
    added.add_special_tokens([tokenizers.AddedToken("[SEP]", lstrip=True, rstrip=True, normalized=False)])
    added.add_tokens([tokenizers.AddedToken("cat", single_word=True, normalized=True)])
    added.add_tokens([tokenizers.AddedToken("<tag>", normalized=True), tokenizers.AddedToken("<tagx>", normalized=True)])
    added.add_tokens([tokenizers.AddedToken("<sep_long>", normalized=False)])
    added.add_special_tokens([tokenizers.AddedToken("<sep>", normalized=False)])
    added.add_tokens([tokenizers.AddedToken("ing", normalized=True)])  # also a model token: keeps its id
    added.post_processor = processors.RobertaProcessing(("</s>", added.token_to_id("</s>")),
                                                        ("<s>", added.token_to_id("<s>")), trim_offsets=False,
                                                        add_prefix_space=True)
    added, added_obj = rewrite(added, lambda obj: None)
    return (llama, llama_obj), (qwen, qwen_obj), (added, added_obj)


EDGE_TEXTS = ["abc", "abcd", "bcd", "xyz", "xyzabc", "ab", "a", "abcabc abc", "zabcz", "cd", "bcdbcd", "b c d"]


def edge_variants():
    """(fixture name, variant name, json edit) for the edge fixtures; the C++ test applies the same edits."""
    def fallback(obj):
        obj["model"]["byte_fallback"] = True
        obj["model"]["unk_token"] = None
        n = max(obj["model"]["vocab"].values()) + 1
        for b in range(256):
            obj["model"]["vocab"][f"<0x{b:02X}>"] = n + b
    return [
        ("edge_bpe.json", "as_is", lambda obj: None),
        ("edge_bpe.json", "no_ignore_merges", lambda obj: obj["model"].__setitem__("ignore_merges", False)),
        ("unk_bpe.json", "as_is", lambda obj: None),
        ("unk_bpe.json", "no_fuse_unk", lambda obj: obj["model"].__setitem__("fuse_unk", False)),
        ("unk_bpe.json", "byte_fallback", fallback),
    ]


def build_edge(texts):
    # edge_bpe: the byte alphabet in byte order, then tokens only some merges reach.
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    for t in ["bc", "ab", "abc", "cd", "bcd", "xyz"]:
        vocab[t] = len(vocab)
    merges = [["b", "c"], ["a", "b"], ["ab", "c"], ["c", "d"], ["b", "cd"]]
    edge = json.loads(Tokenizer(models.BPE(vocab={"a": 0}, merges=[])).to_str())
    edge["model"].update({"vocab": vocab, "merges": merges, "ignore_merges": True})
    edge["pre_tokenizer"] = json.loads(Tokenizer(models.BPE()).to_str())["pre_tokenizer"]
    tmp = Tokenizer(models.BPE())
    tmp.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tmp.decoder = decoders.ByteLevel()
    t = json.loads(tmp.to_str())
    edge["pre_tokenizer"], edge["decoder"] = t["pre_tokenizer"], t["decoder"]
    Tokenizer.from_str(json.dumps(edge))  # must load

    # unk_bpe: trained on ASCII-only strings without the full alphabet.
    ascii_texts = [t for t in texts if all(ord(c) < 128 for c in t)]
    unk = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    unk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    unk.decoder = decoders.ByteLevel()
    unk.train_from_iterator(ascii_texts, trainer=trainers.BpeTrainer(vocab_size=300, min_frequency=2,
                                                                     special_tokens=["<unk>"], show_progress=False))
    unk_obj = json.loads(unk.to_str())
    return edge, unk_obj


def check_versions():
    got = {"tokenizers": tokenizers.__version__, "tiktoken": tiktoken.__version__ if hasattr(tiktoken, "__version__")
           else __import__("importlib.metadata").metadata.version("tiktoken")}
    if got != PINNED:
        print(f"warning: versions {got} differ from the pinned {PINNED}; the fixtures may change", file=sys.stderr)


def real_texts(data_dir):
    """The real titles and rationales, in the order the C++ data test reads them (tests/text/real_data.hpp)."""
    out = []
    for rel in ["amazon-games/Games-6k.item", "ml-1m/ml-1m_sasrec_item_map.tsv", "ml-100k/ml-100k.item",
                "rationales/agent4rec_ml1m/movie_detail.csv"]:
        with open(os.path.join(data_dir, rel), "rb") as f:
            for line in f.read().decode("utf-8").split("\n"):
                if line.endswith("\r"):
                    line = line[:-1]
                if line:
                    out.append(line)
    for rel, keys in [("rationales/nir_ml100k/rationales.jsonl", ["step1_raw", "step2_raw", "step3_raw"]),
                      ("rationales/agent4rec_ml1m/teacher_like.jsonl", ["text"])]:
        with open(os.path.join(data_dir, rel), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                obj = json.loads(line)
                for k in keys:
                    if isinstance(obj.get(k), str) and obj[k]:
                        out.append(obj[k])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SLIM_DATA_DIR", os.path.join(ROOT, "..", "shared", "data")))
    ap.add_argument("--real-data", action="store_true", help="write reference ids for the real texts instead")
    ap.add_argument("--real-out", default="/tmp/slim_dev/text/real_reference.jsonl")
    args = ap.parse_args()
    check_versions()
    corpus = corpus_texts(os.path.join(DATA_OUT, "corpus.jsonl"))
    hf_gpt2, tk_gpt2 = gpt2_reference(args.data)

    if args.real_data:
        llama = Tokenizer.from_file(os.path.join(DATA_OUT, "llama3_bpe.json"))
        qwen = Tokenizer.from_file(os.path.join(DATA_OUT, "qwen2_bpe.json"))
        texts = real_texts(args.data)
        disagree = 0
        os.makedirs(os.path.dirname(args.real_out), exist_ok=True)
        with open(args.real_out, "w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                g = hf_gpt2.encode(t, add_special_tokens=False).ids
                if g != tk_gpt2.encode(t, allowed_special="all"):
                    disagree += 1
                f.write(json.dumps({"i": i, "gpt2": g, "llama3": llama.encode(t, add_special_tokens=False).ids,
                                    "qwen2": qwen.encode(t, add_special_tokens=False).ids}) + "\n")
        print(f"{args.real_out}: {len(texts)} real texts; tiktoken != HF on {disagree}")
        return

    (llama, llama_obj), (qwen, qwen_obj), (added, added_obj) = build_trained(corpus)
    for obj, name in [(llama_obj, "llama3_bpe.json"), (qwen_obj, "qwen2_bpe.json"), (added_obj, "added_bpe.json")]:
        print(f"{save(obj, name)}: vocab {len(obj['model']['vocab'])}, merges {len(obj['model']['merges'])}, "
              f"added {len(obj['added_tokens'])}")
    tk_llama = tiktoken_from_trained(llama_obj, LLAMA3_PATTERN, "llama3_fixture")
    tk_qwen = tiktoken_from_trained(qwen_obj, QWEN2_PATTERN, "qwen2_fixture")

    stats = {"gpt2 tiktoken!=hf": 0, "llama3 tiktoken!=hf": 0, "qwen2 tiktoken!=hf": 0,
             "gpt2 hf roundtrip fails": 0, "llama3 hf roundtrip fails": 0, "qwen2 hf roundtrip fails": 0}

    def row(i, t):
        r = {"id": i}
        for key, tok in [("gpt2", hf_gpt2), ("llama3", llama), ("qwen2", qwen), ("added", added)]:
            ids = tok.encode(t, add_special_tokens=False).ids
            r[key] = ids
            if key in ("llama3", "added"):
                r[key + "_special"] = tok.encode(t, add_special_tokens=True).ids
            if key != "added" and tok.decode(ids, skip_special_tokens=False) != t:
                stats[f"{key} hf roundtrip fails"] += 1
        r["added_decoded"] = added.decode(r["added"], skip_special_tokens=False)
        r["added_decoded_skip"] = added.decode(r["added"], skip_special_tokens=True)
        if tk_gpt2.encode(t, allowed_special="all") != r["gpt2"]:
            stats["gpt2 tiktoken!=hf"] += 1
            print(f"  gpt2 tiktoken != HF on {t!r}", file=sys.stderr)
        if tk_llama.encode(t, allowed_special="all") != r["llama3"]:
            stats["llama3 tiktoken!=hf"] += 1
            print(f"  llama3 tiktoken != HF on {t!r}", file=sys.stderr)
        if tk_qwen.encode(t, allowed_special="all") != r["qwen2"]:
            stats["qwen2 tiktoken!=hf"] += 1
        return r

    with open(os.path.join(DATA_OUT, "reference_ids.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for i, t in enumerate(corpus):
            f.write(json.dumps(row(i, t), ensure_ascii=False, separators=(",", ":")) + "\n")
    with open(os.path.join(DATA_OUT, "added_cases.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for i, t in enumerate(ADDED_CASES):
            r = {"id": i, "text": t, "added": added.encode(t, add_special_tokens=False).ids,
                 "added_special": added.encode(t, add_special_tokens=True).ids}
            r["added_decoded"] = added.decode(r["added"], skip_special_tokens=False)
            r["added_decoded_skip"] = added.decode(r["added"], skip_special_tokens=True)
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    edge_obj, unk_obj = build_edge(corpus)
    save(edge_obj, "edge_bpe.json")
    save(unk_obj, "unk_bpe.json")
    objs = {"edge_bpe.json": edge_obj, "unk_bpe.json": unk_obj}
    with open(os.path.join(DATA_OUT, "edge_reference.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for fixture, variant, edit in edge_variants():
            obj = json.loads(json.dumps(objs[fixture]))
            edit(obj)
            tok = Tokenizer.from_str(json.dumps(obj))
            texts = EDGE_TEXTS if fixture == "edge_bpe.json" else corpus[::3]
            for t in texts:
                f.write(json.dumps({"fixture": fixture, "variant": variant, "text": t,
                                    "ids": tok.encode(t, add_special_tokens=False).ids},
                                   ensure_ascii=False, separators=(",", ":")) + "\n")

    rows, disagree = split_cases()
    with open(os.path.join(DATA_OUT, "split_cases.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    stats["split cases where the regex module != HF"] = disagree
    print(f"{len(corpus)} corpus strings, {len(ADDED_CASES)} added-token cases, {len(rows)} split cases; " +
          ", ".join(f"{k}: {v}" for k, v in stats.items()))


if __name__ == "__main__":
    main()
