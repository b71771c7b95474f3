#!/usr/bin/env python3
# Writes the decoder-LM parity fixtures in tests/data/lm/: tiny random LlamaForCausalLM checkpoints (and one
# Qwen2ForCausalLM) in HF format (config.json + model.safetensors), PEFT LoRA adapters as PEFT saves them
# (adapter_config.json + adapter_model.safetensors), and for each case a reference.safetensors with
# transformers/PEFT's logits, loss, LoRA gradients, greedy continuations and 5-step AdamW loss traces, plus
# tests/data/lm/cases.json describing every case, its conventions and the versions used.
# tests/lm/test_parity.cpp compares slim against them; docs/lm_parity.md describes the whole.
#
# Run (output is deterministic: fixed seeds, references computed in float64 on the CPU):
#   python3 -m venv venv
#   venv/bin/pip install torch==2.5.1 --index-url https://download.pytorch.org/whl/cpu
#     (or PyPI's default torch==2.5.1, CUDA build run on the CPU: the committed fixtures were made with it)
#   venv/bin/pip install transformers==4.57.6 peft==0.21.2 safetensors==0.8.0 numpy==2.4.6
#   venv/bin/python tools/lm_fixtures/make_fixtures.py [--out tests/data/lm]
# Pinned versions: torch 2.5.1, transformers 4.57.6, peft 0.21.2, safetensors 0.8.0, numpy 2.4.6 (Python 3.11).
# (transformers 5.x needs torch >= 2.6; these fixtures were made with the 4.57 line.)
#
# A second mode checks slim's exported adapters against PEFT:
#   venv/bin/python tools/lm_fixtures/make_fixtures.py --check-slim-adapter DIR [--base BASE_DIR]
# DIR holds what slim wrote: adapter_config.json, adapter_model.safetensors, and slim_logits.safetensors with
# "ids" (I32, (B,S)), optional "attention_mask" (I32, (B,S)) and "logits" (F32, (B,S,V)) computed by slim with
# that adapter (`SLIM_LM_EXPORT_DIR=DIR slim_tests_lm_parity "[lora]"` writes such folders, one per adapter case,
# after 5 AdamW steps). BASE_DIR (default: adapter_config.json's base_model_name_or_path, resolved against DIR)
# is the HF checkpoint the adapter was trained on. PEFT loads the adapter onto the base, recomputes the logits in
# float64 and the mode prints JSON with the relative error ||slim - peft|| / ||peft|| over the real positions and the
# largest absolute difference; it exits 1 when the relative error is >= 1e-4.

import argparse
import copy
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.numpy import load_file as load_numpy

import peft
import safetensors
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

GEN_NEW_TOKENS = 12
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
ADAMW_STEPS = 5


def versions():
    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "safetensors": safetensors.__version__, "numpy": np.__version__}


# ---------------------------------------------------------------------------------------------------------------
# Model construction


def make_model(cfg_kwargs, seed, arch="llama"):
    """A LlamaForCausalLM (or Qwen2ForCausalLM) in float32 with non-degenerate random weights (the default init
    gives near-uniform logits)."""
    if arch == "qwen2":
        cfg = Qwen2Config(**cfg_kwargs)
        cls = Qwen2ForCausalLM
    else:
        cfg = LlamaConfig(**cfg_kwargs)
        cls = LlamaForCausalLM
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = cls(cfg).to(torch.float32)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    model.eval()
    return model


def as_double(model):
    m = copy.deepcopy(model).to(torch.float64)
    m.eval()
    return m


# ---------------------------------------------------------------------------------------------------------------
# Batches and the loss convention


def make_batch(vocab, lengths, seed, pad_id=0):
    """Right-padded ids (B, max(lengths)) with ids in [1, vocab) and pad_id after each row's length; mask 1/0."""
    g = np.random.default_rng(seed)
    S = max(lengths)
    ids = np.full((len(lengths), S), pad_id, dtype=np.int32)
    mask = np.zeros((len(lengths), S), dtype=np.int32)
    for b, n in enumerate(lengths):
        ids[b, :n] = g.integers(1, vocab, size=n)
        mask[b, :n] = 1
    return ids, mask


LOSS_CONVENTION = ("labels = ids with -100 where attention_mask == 0; HF shift: the logits at position t predict "
                   "labels[t+1]; loss = mean over every (b, t) with labels[b, t+1] != -100 of "
                   "-log softmax(logits[b, t])[labels[b, t+1]] (transformers' ForCausalLMLoss with reduction mean)")


def loss_of(model, ids, mask):
    ids_t = torch.from_numpy(ids).long()
    mask_t = torch.from_numpy(mask).long()
    labels = ids_t.clone()
    labels[mask_t == 0] = -100
    out = model(input_ids=ids_t, attention_mask=mask_t, labels=labels)
    # The same loss written out, to pin the convention down, and in the model's own precision (transformers'
    # ForCausalLMLoss casts the logits to float32 first, which would make a float64 reference float32).
    logits = out.logits
    sl = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    tl = labels[:, 1:].reshape(-1)
    mine = torch.nn.functional.cross_entropy(sl, tl, ignore_index=-100, reduction="mean")
    assert abs(float(mine) - float(out.loss)) <= 1e-5 * max(1.0, abs(float(mine))), (float(mine), float(out.loss))
    return mine, logits


def logit_rows_all(mask):
    """(b, t) for every real position."""
    return np.array([(b, t) for b in range(mask.shape[0]) for t in range(mask.shape[1]) if mask[b, t]], dtype=np.int32)


def logit_rows_sparse(mask, every=64, last=16):
    """(b, t) for every `every`-th real position and the last `last` real positions of each row."""
    rows = []
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        ts = sorted(set(range(0, n, every)) | set(range(max(0, n - last), n)))
        rows += [(b, t) for t in ts]
    return np.array(rows, dtype=np.int32)


def gather_rows(logits, rows):
    return np.stack([logits[b, t].detach().cpu().numpy() for b, t in rows]).astype(np.float32)


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ---------------------------------------------------------------------------------------------------------------
# Greedy generation


def greedy(model, prompt):
    """HF generate, do_sample=False, no stop token: GEN_NEW_TOKENS new ids and the smallest top-1/top-2 logit margin."""
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.from_numpy(prompt[None, :]).long()
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=GEN_NEW_TOKENS,
                         min_new_tokens=GEN_NEW_TOKENS, do_sample=False, num_beams=1, output_scores=True,
                         return_dict_in_generate=True, eos_token_id=None, pad_token_id=0)
    new = out.sequences[0, ids.shape[1]:].numpy().astype(np.int32)
    margins = []
    for s in out.scores:
        top = torch.topk(s[0].to(torch.float64), 2).values
        margins.append(float(top[0] - top[1]))
    return new, min(margins)


# ---------------------------------------------------------------------------------------------------------------
# Training references


def peft_key(name):
    """PEFT's saved key for a named parameter: the adapter name ('.default') dropped."""
    return name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def adamw_trace(model, ids, mask):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, **ADAMW)
    losses = []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad()
        loss, _ = loss_of(model, ids, mask)
        losses.append(float(loss))
        loss.backward()
        opt.step()
    with torch.no_grad():
        final, _ = loss_of(model, ids, mask)
    return np.array(losses, dtype=np.float32), float(final)


# ---------------------------------------------------------------------------------------------------------------
# Cases


CASES = [
    {
        "name": "untied_gqa3",
        "what": "untied head, 6 query heads on 2 KV heads (ratio 3), rms_norm_eps and rope_theta not default",
        "config": dict(vocab_size=96, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=128,
                       rms_norm_eps=1e-5, rope_theta=1000.0, tie_word_embeddings=False, attention_bias=False),
        "seed": 11,
        "batch": [16, 11, 7],
        "rows": "all",
        "gen": [5, 11],
        "adapters": [
            {"name": "untied_gqa3_lora_qv", "what": "LoRA r=4, alpha=8 on q_proj, v_proj; B random (std 0.1)",
             "lora": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, bias="none",
                          use_rslora=False)},
            {"name": "untied_gqa3_rslora_all", "what": "rsLoRA r=8, alpha=4 on q,k,v,o,gate,up,down; B random",
             "lora": dict(r=8, lora_alpha=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                             "up_proj", "down_proj"],
                          lora_dropout=0.0, bias="none", use_rslora=True)},
        ],
        "full_ft": False,
    },
    {
        "name": "tied_bias",
        "what": "tied embeddings, attention_bias true (bias on q, k, v and o), 4 query heads on 2 KV heads",
        "config": dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                       rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True, attention_bias=True),
        "seed": 23,
        "batch": [13, 16, 4],
        "rows": "all",
        "gen": [4, 9],
        "adapters": [],
        "full_ft": True,
    },
    {
        "name": "qwen2_tied",
        "what": ("Qwen2ForCausalLM: tied embeddings, bias on q, k, v only (Qwen2 has no attention_bias key), "
                 "4 on 2 heads"),
        "arch": "qwen2",
        "config": dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                       rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True, use_sliding_window=False),
        "seed": 29,
        "batch": [16, 10, 5],
        "rows": "all",
        "gen": [3, 8],
        "adapters": [],
        "full_ft": True,
    },
    {
        "name": "llama3_rope",
        "what": "Llama-3 rope_scaling (factor 8, low 1, high 4, original 64) with positions past 2048",
        "config": dict(vocab_size=80, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=6, num_key_value_heads=3, max_position_embeddings=4096,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False,
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
        "seed": 37,
        "batch": [2100, 1337],
        "rows": "sparse",
        "gen": [6, 2043],
        "adapters": [],
        "full_ft": False,
    },
]


def pick_prompt(model64, vocab, n, seed, min_margin):
    """The first prompt (seed, seed+1, ...) of length n whose greedy continuation has top-1/top-2 margins >=
    min_margin at every step."""
    for s in range(seed, seed + 50):
        g = np.random.default_rng(s)
        prompt = g.integers(1, vocab, size=n).astype(np.int32)
        new, margin = greedy(model64, prompt)
        if margin >= min_margin:
            return prompt, new, margin, s
    raise RuntimeError(f"no prompt of length {n} without a near-tie")


def write_case(out, case, summary):
    name = case["name"]
    cdir = os.path.join(out, name)
    os.makedirs(cdir, exist_ok=True)
    model32 = make_model(case["config"], case["seed"], case.get("arch", "llama"))
    model32.save_pretrained(cdir, safe_serialization=True)
    model64 = as_double(model32)
    vocab = case["config"]["vocab_size"]

    ids, mask = make_batch(vocab, case["batch"], case["seed"] + 100)
    rows = logit_rows_all(mask) if case["rows"] == "all" else logit_rows_sparse(mask)
    ref = {"ids": ids, "attention_mask": mask, "logit_rows": rows}
    with torch.no_grad():
        loss64, logits64 = loss_of(model64, ids, mask)
        loss32, logits32 = loss_of(model32, ids, mask)
    ref["logits"] = gather_rows(logits64, rows)
    ref["loss"] = np.array([float(loss64)], dtype=np.float32)
    entry = {
        "name": name, "what": case["what"], "arch": case.get("arch", "llama"), "dir": name,
        "reference": f"{name}/reference.safetensors",
        "config": case["config"], "batch_lengths": case["batch"],
        "logit_rows": ("every real (b, t)" if case["rows"] == "all" else
                       "every 64th real position of each row and its last 16 real positions"),
        "hf_float32_vs_float64": {"logits_rel": rel(gather_rows(logits32, rows), ref["logits"]),
                                  "loss_rel": abs(float(loss32) - float(loss64)) / abs(float(loss64))},
        "loss": float(loss64),
    }

    gens = []
    for i, n in enumerate(case["gen"]):
        prompt, new, margin, s = pick_prompt(model64, vocab, n, case["seed"] + 200 + 10 * i, 0.02)
        new32, _ = greedy(model32, prompt)
        ref[f"gen.{i}.prompt"] = prompt
        ref[f"gen.{i}.output"] = new
        gens.append({"prompt_length": n, "min_top2_margin": margin, "prompt_seed": s,
                     "float32_identical": bool((new32 == new).all())})
    entry["greedy"] = gens

    if case["full_ft"]:
        m = as_double(model32)
        m.train()
        for p in m.parameters():
            p.requires_grad_(True)
        losses, final = adamw_trace(m, ids, mask)
        ref["full_ft.losses"] = losses
        ref["full_ft.final_loss"] = np.array([final], dtype=np.float32)
        entry["full_ft"] = {"losses": [float(x) for x in losses], "final_loss": final}

    save_numpy(ref, os.path.join(cdir, "reference.safetensors"), metadata={"case": name})
    summary["cases"].append(entry)

    for ad in case["adapters"]:
        write_adapter(out, case, ad, model32, ids, mask, rows, summary)


def write_adapter(out, case, ad, model32, ids, mask, rows, summary):
    from peft import LoraConfig, get_peft_model

    adir = os.path.join(out, ad["name"])
    os.makedirs(adir, exist_ok=True)
    torch.manual_seed(case["seed"] + 300)
    base = copy.deepcopy(model32)
    pm = get_peft_model(base, LoraConfig(**ad["lora"]))
    g = torch.Generator().manual_seed(case["seed"] + 301)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if ".lora_B." in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    pm.save_pretrained(adir, safe_serialization=True)
    if os.path.exists(os.path.join(adir, "README.md")):
        os.remove(os.path.join(adir, "README.md"))  # PEFT's empty model card
    # Base model path relative to the adapter folder, so --check-slim-adapter style loading works from the repo.
    cfg_path = os.path.join(adir, "adapter_config.json")
    with open(cfg_path) as f:
        acfg = json.load(f)
    acfg["base_model_name_or_path"] = f"../{case['name']}"
    acfg["target_modules"] = sorted(acfg["target_modules"])  # PEFT writes a set, in hash order
    with open(cfg_path, "w") as f:
        json.dump(acfg, f, indent=2, sort_keys=True)
        f.write("\n")

    pm64 = copy.deepcopy(pm).to(torch.float64)
    pm64.eval()  # dropout is 0 anyway
    ref = {"ids": ids, "attention_mask": mask, "logit_rows": rows}
    pm64.zero_grad()
    loss64, logits64 = loss_of(pm64, ids, mask)
    loss64.backward()
    ref["logits"] = gather_rows(logits64, rows)
    ref["loss"] = np.array([float(loss64)], dtype=np.float32)
    grads = {}
    for n, p in pm64.named_parameters():
        if p.requires_grad:
            assert ".lora_" in n, n
            grads[peft_key(n)] = p.grad.detach().numpy().astype(np.float32)
    saved = load_numpy(os.path.join(adir, "adapter_model.safetensors"))
    assert set(saved) == set(grads), (sorted(saved)[:4], sorted(grads)[:4])
    for k, v in grads.items():
        ref["grad." + k] = v
    with torch.no_grad():
        loss32, logits32 = loss_of(pm, ids, mask)

    m = copy.deepcopy(pm).to(torch.float64)
    m.train()
    losses, final = adamw_trace(m, ids, mask)
    ref["adamw.losses"] = losses
    ref["adamw.final_loss"] = np.array([final], dtype=np.float32)
    save_numpy(ref, os.path.join(adir, "reference.safetensors"), metadata={"case": ad["name"]})

    r, alpha = ad["lora"]["r"], ad["lora"]["lora_alpha"]
    scale = alpha / (r ** 0.5) if ad["lora"]["use_rslora"] else alpha / r
    summary["adapters"].append({
        "name": ad["name"], "what": ad["what"], "base": case["name"], "dir": ad["name"],
        "reference": f"{ad['name']}/reference.safetensors", "lora": ad["lora"], "scale": scale,
        "loss": float(loss64), "adamw": {"losses": [float(x) for x in losses], "final_loss": final},
        "grad_keys": sorted(grads),
        "hf_float32_vs_float64": {"logits_rel": rel(gather_rows(logits32, rows), ref["logits"]),
                                  "loss_rel": abs(float(loss32) - float(loss64)) / abs(float(loss64))},
    })


def make_all(out):
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for sub in [c["name"] for c in CASES] + [a["name"] for c in CASES for a in c["adapters"]]:
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    summary = {
        "generator": "tools/lm_fixtures/make_fixtures.py",
        "versions": versions(),
        "precision": ("checkpoints and adapters are float32 as saved; every reference value was computed by "
                      "transformers/PEFT in float64 from those float32 weights and stored as F32"),
        "attention": "eager; position ids 0..S-1 for every row (right padding)",
        "pad_id": 0,
        "loss_convention": LOSS_CONVENTION,
        "logits": ("'logits' (N, V) F32 holds the rows named by 'logit_rows' (N, 2) I32 as (batch, position); only "
                   "real (mask 1) positions are listed"),
        "greedy": (f"'gen.<i>.prompt' I32 and 'gen.<i>.output' I32 ({GEN_NEW_TOKENS} new ids): HF generate on the "
                   "prompt alone (batch 1, no padding), do_sample False, no stop token; prompts were chosen so that "
                   "every step's top-1 logit leads the top-2 by >= 0.02"),
        "lora": ("PEFT LoraConfig with lora_dropout 0, bias none, default init (A Kaiming-uniform), then every lora_B "
                 "set to normal(0, 0.1); scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora. Gradients "
                 "'grad.<key>' are d loss / d factor with <key> the key in adapter_model.safetensors, i.e. PEFT's "
                 "parameter name without the adapter name: base_model.model.model.layers.<i>.self_attn.q_proj."
                 "lora_A.weight ((r, in)) and ...lora_B.weight ((out, r))"),
        "adamw": (f"torch.optim.AdamW(lr={ADAMW['lr']}, betas={ADAMW['betas']}, eps={ADAMW['eps']}, "
                  f"weight_decay={ADAMW['weight_decay']}) over every trainable tensor (LoRA factors only for "
                  "adapters; every tensor including norms, biases and the tied embedding for full_ft), no schedule, "
                  f"no clipping, the same batch at every step; '<x>.losses' ({ADAMW_STEPS},) is the loss computed "
                  "before each step, '<x>.final_loss' the loss after the last step"),
        "cases": [],
        "adapters": [],
    }
    for case in CASES:
        write_case(out, case, summary)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------------------------------------------------
# --check-slim-adapter


def check_slim_adapter(adir, base_dir):
    from peft import PeftModel

    with open(os.path.join(adir, "adapter_config.json")) as f:
        acfg = json.load(f)
    if base_dir is None:
        base_dir = acfg.get("base_model_name_or_path")
        if not base_dir:
            sys.exit("adapter_config.json names no base model: pass --base")
        if not os.path.isabs(base_dir):
            base_dir = os.path.normpath(os.path.join(adir, base_dir))
    base = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
    pm = PeftModel.from_pretrained(base, adir, is_trainable=False).to(torch.float64)
    pm.eval()
    dump = load_numpy(os.path.join(adir, "slim_logits.safetensors"))
    ids = dump["ids"].astype(np.int64)
    mask = dump.get("attention_mask", np.ones_like(ids)).astype(np.int64)
    slim = dump["logits"].astype(np.float64)
    with torch.no_grad():
        ref = pm(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    sel = mask.astype(bool)
    a, b = slim.reshape(ref.shape)[sel], ref[sel]
    err = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    result = {"adapter": adir, "base": base_dir, "positions": int(sel.sum()), "relative_error": err,
              "max_abs_difference": float(np.abs(a - b).max()), "versions": versions()}
    print(json.dumps(result, indent=2))
    return 0 if err < 1e-4 else 1


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..", "tests", "data", "lm")))
    ap.add_argument("--check-slim-adapter", metavar="DIR")
    ap.add_argument("--base", metavar="BASE_DIR")
    args = ap.parse_args()
    if args.check_slim_adapter:
        sys.exit(check_slim_adapter(args.check_slim_adapter, args.base))
    make_all(args.out)


if __name__ == "__main__":
    main()
