#!/usr/bin/env python3
"""Reference token ids for slim's SentencePiece BPE parity tests (LLaMA / Llama-2 tokenizer.model).

Pinned versions (the committed fixtures were made with exactly these):
    Python 3.11.7, sentencepiece==0.2.0
    python3 -m venv /tmp/slim_dev/spm/venv
    /tmp/slim_dev/spm/venv/bin/pip install sentencepiece==0.2.0
(Debian's python3-sentencepiece works as well; the version is printed and recorded in the output.)
Inputs:
    tests/data/text/corpus.jsonl                          (tools/text_fixtures/make_corpus.py)
    $SLIM_DATA_DIR/tokenizers/llama/tokenizer.model       (default ../shared/data; read, never copied)
Output (committed):
    tests/data/text/spm_llama2_ids.jsonl  one line per corpus string, in corpus order:
        {"id": corpus id, "ids": sentencepiece's encode (no BOS/EOS), "roundtrip": its decode of those ids
         == text, and "decoded": that decode when it differs from the text}
    The first line is a header {"header": {...}} with the versions and the model's ids.
    tests/data/text/spm_llama2_bytes.jsonl  byte strings outside the corpus (ill-formed UTF-8: stray, truncated,
        overlong and surrogate sequences; space runs; a literal U+2581; long runs), encoded from bytes:
        {"hex": the input bytes in hex, "ids": sentencepiece's encode}
    tests/data/text/spm_tiny_<name>.model  tiny BPE ModelProtos written here by hand (the wire format, see
        tiny_model) to exercise what LLaMA's model does not: no byte fallback (unknown pieces), ties between
        equal scores, remove_extra_whitespaces, no dummy prefix, UNUSED and USER_DEFINED pieces.
    tests/data/text/spm_tiny_ids.jsonl  {"model": name, "hex": input bytes, "ids": sentencepiece's encode,
        "decoded_hex": sentencepiece's decode of those ids as UTF-8 bytes}, and rows {"model", "decode_ids",
        "decoded_hex"} for id sequences encode never makes (leading spaces, control, unknown and byte pieces)
--real-data writes sentencepiece's ids for the real titles and rationales under $SLIM_DATA_DIR (the texts and
order of tests/text/data_sentencepiece.cpp real_texts) to --real-out (default
/tmp/slim_dev/spm/real_reference.jsonl), never into the repository: one {"ids": [...]} per text. The C++ data
test compares against it when $SLIM_SPM_REAL_REFERENCE names that file.
Run from the repository root:  /tmp/slim_dev/spm/venv/bin/python tools/text_fixtures/make_spm_reference.py
"""
import json
import os
import struct
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("SLIM_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")


BYTE_CASES = [
    b"", b" ", b"  ", b"\xff", b"a\xffb", b"\x80\x80", b"\xc3", b"caf\xc3", b"\xe6\x97", b"\xe6\x97 x",
    b"\xf0\x9f\xa6", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf5\x80",
    b"ok \xfe\xff ok", b"\x00nul\x00", b"\xe2\x96\x81", b"\xe2\x96\x81x y", b"   lead", b"trail   ",
    b"a \t\n b", b"\r\n\r\n", b"x" * 1000, b" " * 1000, b"ab" * 500, "\u00e9".encode() * 300,
    "\U0001F999".encode() * 100, b"Hello\xffWorld\xc3\xa9\xc3",
]


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(num, payload):
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _int_field(num, value):
    return _varint(num << 3) + _varint(value)


def tiny_model(pieces, byte_fallback, add_dummy_prefix, remove_extra_whitespaces):
    """A ModelProto: pieces = [(text, score, type)], trainer_spec (BPE), normalizer_spec (identity)."""
    out = bytearray()
    for text, score, typ in pieces:
        msg = _len_field(1, text.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", score)
        if typ != 1:
            msg += _int_field(3, typ)
        out += _len_field(1, msg)
    trainer = _int_field(3, 2) + _int_field(4, len(pieces)) + _int_field(35, int(byte_fallback))
    out += _len_field(2, trainer)
    norm = (_len_field(1, b"identity") + _int_field(3, int(add_dummy_prefix)) +
            _int_field(4, int(remove_extra_whitespaces)) + _int_field(5, 1))
    out += _len_field(3, norm)
    return bytes(out)


TINY_MERGES = [("\u2581", -10.0), ("a", -11.0), ("b", -12.0), ("c", -13.0), ("d", -14.0), ("e", -15.0),
               ("\u00e9", -16.0), ("aa", -1.0), ("aaa", -1.0), ("ab", -2.0), ("bc", -1.5), ("abc", -3.0),
               ("cd", -2.0), ("bcd", -0.5), ("\u2581a", -2.5), ("\u2581ab", -2.7), ("\u2581\u2581", -4.0),
               ("\u2581b", -2.0), ("de", -2.0), ("ea", -2.0)]
TINY_SPECIAL = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
TINY_MODELS = {
    "fallback": (TINY_SPECIAL + [("<0x%02X>" % b, 0.0, 6) for b in range(256)] +
                 [(t, sc, 1) for t, sc in TINY_MERGES], True, True, False),
    "plain": (TINY_SPECIAL + [(t, sc, 1) for t, sc in TINY_MERGES], False, True, True),
    "unused": (TINY_SPECIAL + [("<sep>", 0.0, 4), ("c d", 0.0, 4)] +
               [(t, sc, 5 if t in ("ab", "bcd") else 1) for t, sc in TINY_MERGES], False, False, False),
}
TINY_CASES = [
    b"", b" ", b"   ", b"a", b"aa", b"aaa", b"aaaa", b"aaaaa", b"aaaaaaa", b"abc", b"abcd", b"bcdabcd", b"ab cd",
    b" a  b ", b"a b c d", b"  lead", b"trail  ", b"xyz", "\u65e5\u672c".encode(), "\u00e9".encode(),
    "a\u00e9a".encode(), b"a<sep>b", b"<sep><sep>", b"c d", b"abc d", b"ab\xffcd", b"\t\n", "\u2581a".encode(),
    b"deadbeef", b"eaeaea", b"<s>", "a\u0301".encode(), b"abababab", b"aabbccdd", b"dcba", b"a\x00b",
]

S = "\u2581"
TINY_DECODES = [  # piece sequences to decode (pieces a model lacks are left out)
    [S], [S, S], [S, S, S + "a"], [S + S, "a"], ["<s>", S + "a"], ["<s>", "<s>", S, S + "a"], ["<unk>", S + "a"],
    ["<0x41>", S + "a"], ["<0x0A>", S, "a"], ["a", S + "a"], [S + "a", "</s>", S + "a"], ["<sep>", S + "a"],
    ["<unk>", "<unk>"], ["<0xE6>", "<0x97>", "<0xA5>", S + "a"],
]


def real_texts(data_dir):
    """Titles (one per line) and rationales (JSON Lines string fields), in the C++ test's order."""
    texts = []
    for rel in ["amazon-games/Games-6k.item", "ml-1m/ml-1m_sasrec_item_map.tsv", "ml-100k/ml-100k.item",
                "rationales/agent4rec_ml1m/movie_detail.csv"]:
        with open(os.path.join(data_dir, rel), "rb") as f:
            texts += [ln[:-1] if ln.endswith("\r") else ln for ln in f.read().decode("utf-8").split("\n")]
            texts = [t for t in texts if t]
    for rel, keys in [("rationales/nir_ml100k/rationales.jsonl", ["step1_raw", "step2_raw", "step3_raw"]),
                      ("rationales/agent4rec_ml1m/teacher_like.jsonl", ["text"])]:
        with open(os.path.join(data_dir, rel), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    texts += [obj[k] for k in keys if isinstance(obj.get(k), str) and obj[k]]
    return texts


def main():
    if "--real-data" in sys.argv:
        out_path = "/tmp/slim_dev/spm/real_reference.jsonl"
        if "--real-out" in sys.argv:
            out_path = sys.argv[sys.argv.index("--real-out") + 1]
        sp = spm.SentencePieceProcessor(model_file=os.path.join(DATA, "tokenizers", "llama", "tokenizer.model"))
        texts = real_texts(DATA)
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        with open(out_path, "w", encoding="utf-8", newline="\n") as out:
            for t in texts:
                out.write(json.dumps({"ids": sp.encode(t)}) + "\n")
        print(f"{out_path}: {len(texts)} real texts")
        return
    model = os.path.join(DATA, "tokenizers", "llama", "tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=model)
    corpus = [json.loads(line) for line in open(os.path.join(ROOT, "tests/data/text/corpus.jsonl"), encoding="utf-8")
              if line.strip()]
    out_path = os.path.join(ROOT, "tests/data/text/spm_llama2_ids.jsonl")
    trips = 0
    with open(out_path, "w", encoding="utf-8", newline="\n") as out:
        header = {"sentencepiece": spm.__version__, "python": sys.version.split()[0], "vocab_size": sp.vocab_size(),
                  "bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "pad": sp.pad_id()}
        out.write(json.dumps({"header": header}, ensure_ascii=True) + "\n")
        for row in corpus:
            text = row["text"]
            ids = sp.encode(text)
            decoded = sp.decode(ids)
            trips += decoded == text
            row_out = {"id": row["id"], "ids": ids, "roundtrip": decoded == text}
            if decoded != text:
                row_out["decoded"] = decoded
            out.write(json.dumps(row_out, ensure_ascii=True) + "\n")
    with open(os.path.join(ROOT, "tests/data/text/spm_llama2_bytes.jsonl"), "w", encoding="utf-8", newline="\n") as out:
        for b in BYTE_CASES:
            out.write(json.dumps({"hex": b.hex(), "ids": sp.encode(b)}) + "\n")
    with open(os.path.join(ROOT, "tests/data/text/spm_tiny_ids.jsonl"), "w", encoding="utf-8", newline="\n") as out:
        for name, (pieces, fallback, dummy, extra) in TINY_MODELS.items():
            blob = tiny_model(pieces, fallback, dummy, extra)
            with open(os.path.join(ROOT, f"tests/data/text/spm_tiny_{name}.model"), "wb") as f:
                f.write(blob)
            tiny = spm.SentencePieceProcessor(model_proto=blob)
            for seq in TINY_DECODES:
                ids = [tiny.piece_to_id(x) for x in seq if tiny.piece_to_id(x) != tiny.unk_id() or x == "<unk>"]
                out.write(json.dumps({"model": name, "decode_ids": ids,
                                      "decoded_hex": tiny.decode(ids).encode("utf-8", "surrogatepass").hex()}) + "\n")
            for b in TINY_CASES:
                ids = tiny.encode(b)
                out.write(json.dumps({"model": name, "hex": b.hex(), "ids": ids,
                                      "decoded_hex": tiny.decode(ids).encode("utf-8", "surrogatepass").hex()}) + "\n")
    print(f"{len(corpus)} strings, {trips} round-trip in sentencepiece {spm.__version__}; wrote {out_path}")


if __name__ == "__main__":
    main()
