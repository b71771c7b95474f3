#!/usr/bin/env python3
"""Side-by-side student-LM benchmarks: slim (bench/bench_lm.cpp, target slim_bench_lm) against PyTorch eager
(transformers LlamaForCausalLM + PEFT LoRA) and llama.cpp (llama-cpp-python), on the same configs and weights.

Pinned versions (peers from PyPI, in a venv; nothing is downloaded at run time):
    Python 3.11.7, torch==2.5.1 (PyPI's default wheel, 2.5.1+cu124, run on the CPU: MKL + oneDNN),
    transformers==4.57.6, peft==0.21.2, safetensors==0.8.0, numpy==2.4.6, gguf==0.19.0,
    llama-cpp-python==0.3.36 (PyPI ships only its source: pip builds the bundled llama.cpp with cmake, here with
    CMAKE_ARGS="-DGGML_NATIVE=ON")
    /tmp/slim_dev/fixtures/venv/bin/pip install torch==2.5.1 transformers==4.57.6 peft==0.21.2 gguf==0.19.0 \
        diskcache==5.6.3 llama-cpp-python==0.3.36
    On the 2-vCPU machine under load the full pip build (llama.cpp's common library and mtmd included, ~180
    objects) did not finish in 10 minutes; what was recorded used the same sdist's bundled llama.cpp built with
    only its `llama` target (-DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON, libllama + libggml*)
    and the sdist's llama_cpp/ Python package with those libraries copied into llama_cpp/lib/, put on PYTHONPATH.
    Without llama_cpp importable the llama.cpp rows print "–" (or pass --skip llamacpp).
Run:
    cmake --build build/release --target slim_bench_lm
    /tmp/slim_dev/fixtures/venv/bin/python tools/bench/lm_speed.py --slim build/release/bench/slim_bench_lm

What is measured (every peer in the same run, one after the other):
  * Training step of the issue's student (d=256, 4 layers, 8 heads, 8 KV heads, intermediate 688, vocab 4096,
    untied head; batch 8 × seq 256; LoRA r=8, alpha 16, dropout 0 on q_proj and v_proj): forward, token NLL over
    every next token, backward, AdamW (lr 1e-4) on the LoRA factors; tokens/s at 1 and 2 threads
    (torch.set_num_threads). PyTorch: transformers LlamaForCausalLM (attn_implementation="sdpa") wrapped by
    peft.get_peft_model, labels=ids (the same shifted targets). slim's model GFLOP/s (its analytic count,
    ≈ 18.2 MFLOP per token, stated in bench_lm.cpp) is set against probe_fma of the same slim program run.
  * Peak RSS of a training process (two steps, one thread) against the analytic bytes of weights, LoRA gradients
    and AdamW moments and activations (bench_lm.cpp); PyTorch's peak RSS for the same two steps is shown beside it.
  * Greedy generation, prompt 16 tokens (row b, column t: (1 + 7b + 13t) mod 32000) + 128 new tokens, one thread,
    for llama2.c-shaped configs stories15M (dim 288, 6 layers, 6 heads, hidden 768) and stories110M (dim 768,
    12 layers, 12 heads, hidden 2048), vocab 32000, tied embedding, random F32 weights (transformers' init,
    N(0, 0.02²), seeded). This script writes them once as an HF folder (config.json + model.safetensors) that slim
    loads and as a GGUF file (F32, written with gguf's GGUFWriter under llama.cpp's LLaMA tensor names, q/k rows
    permuted to llama.cpp's RoPE layout as its HF converter does, a placeholder 32000-entry SentencePiece-style
    vocabulary with the 256 byte tokens) that llama.cpp loads. tokens/s = new tokens / wall time of the whole
    call (prefill included). PyTorch: model.generate(do_sample=False, min_new_tokens = max_new_tokens = 128,
    KV cache). llama.cpp: Llama(n_threads=1, n_threads_batch=1).generate(top_k=1, temp=0), 128 tokens taken;
    batch 1 only — llama-cpp-python's high-level API generates one sequence at a time (batching several sequences
    needs its low-level llama_batch API, not used here). Row 0's first new tokens are printed for every peer: with
    N(0, 0.02²) weights the logits are nearly flat, so a differing token may be a float tie rather than a bug.
Goals (issue 3): training ≥ 1.3× torch and ≥ 60 % of the FMA peak; generation ≥ 1× llama.cpp and ≥ 3× torch eager;
peak RSS ≤ 1.3× the analytic sum.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PROMPT_LEN, NEW_TOKENS, VOCAB = 16, 128, 32000

STUDENT = dict(vocab_size=4096, hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
               num_key_value_heads=8, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False)
TRAIN_BATCH, TRAIN_SEQ = 8, 256


def stories(dim, layers, heads, max_pos):
    hidden = 32 * ((2 * (4 * dim) // 3 + 31) // 32)  # llama2.c's rule
    return dict(vocab_size=VOCAB, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_pos,
                rms_norm_eps=1e-5, tie_word_embeddings=True)


GEN = {"stories15M": stories(288, 6, 6, 256), "stories110M": stories(768, 12, 12, 1024)}


def prompts(batch):
    return [[(1 + 7 * b + 13 * t) % VOCAB for t in range(PROMPT_LEN)] for b in range(batch)]


def llama(cfg, seed):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    c = LlamaConfig(**cfg, rope_theta=10000.0, attention_bias=False, mlp_bias=False, hidden_act="silu",
                    bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(c).float().eval()


# ---------------------------------------------------------------------------------------------------------- weights

def write_weights(work):
    """HF folders and GGUF files of the two generation configs (skipped when already there)."""
    import numpy as np
    paths = {}
    for i, (name, cfg) in enumerate(GEN.items()):
        hf_dir = os.path.join(work, name)
        gguf_path = os.path.join(work, name + ".f32.gguf")
        paths[name] = (hf_dir, gguf_path)
        if os.path.exists(os.path.join(hf_dir, "model.safetensors")) and os.path.exists(gguf_path):
            continue
        model = llama(cfg, 1000 + i)
        model.save_pretrained(hf_dir, safe_serialization=True)
        sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
        write_gguf(gguf_path, name, cfg, sd)
        print(f"wrote {hf_dir} and {gguf_path}", file=sys.stderr, flush=True)
    return paths


def permute_rope(w, heads):
    # HF's rotate-half layout → llama.cpp's LLaMA (interleaved pairs) layout, as llama.cpp's HF converter does.
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path, name, cfg, sd):
    import gguf
    import numpy as np
    h, heads, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(name)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(h)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_rope_dimension_count(h // heads)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    # placeholder SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens, then distinct pieces
    tokens, types = ["<unk>", "<s>", "</s>"], [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    tokens += [f"\u2581t{i}" for i in range(len(tokens), cfg["vocab_size"])]
    types += [gguf.TokenType.NORMAL] * (cfg["vocab_size"] - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t = {"attn_norm": p + "input_layernorm.weight", "attn_q": p + "self_attn.q_proj.weight",
             "attn_k": p + "self_attn.k_proj.weight", "attn_v": p + "self_attn.v_proj.weight",
             "attn_output": p + "self_attn.o_proj.weight", "ffn_norm": p + "post_attention_layernorm.weight",
             "ffn_gate": p + "mlp.gate_proj.weight", "ffn_up": p + "mlp.up_proj.weight",
             "ffn_down": p + "mlp.down_proj.weight"}
        for g, hf in t.items():
            a = sd[hf]
            if g == "attn_q":
                a = permute_rope(a, heads)
            elif g == "attn_k":
                a = permute_rope(a, kv)
            w.add_tensor(f"blk.{i}.{g}.weight", np.ascontiguousarray(a))
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    if not cfg["tie_word_embeddings"]:
        w.add_tensor("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------------------- peers

def torch_student(seed=7):
    import torch
    from peft import LoraConfig, get_peft_model
    model = llama(STUDENT, seed)
    model.config._attn_implementation = "sdpa"
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(99)
    ids = torch.randint(0, STUDENT["vocab_size"], (TRAIN_BATCH, TRAIN_SEQ), generator=g)

    def step():
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(out.loss)
    return step


def torch_train(threads, steps):
    import torch
    torch.set_num_threads(threads)
    step = torch_student()
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    return TRAIN_BATCH * TRAIN_SEQ / dt


def torch_rss_child():
    import torch
    torch.set_num_threads(1)
    step = torch_student()
    step()
    step()
    print(json.dumps({"peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def torch_generate(hf_dir, batch):
    import torch
    from transformers import LlamaForCausalLM
    torch.set_num_threads(1)
    model = LlamaForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None
    ids = torch.tensor(prompts(batch))
    kw = dict(attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=0)
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)  # warm-up
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, **kw)
        dt = time.perf_counter() - t0
    new = out[:, PROMPT_LEN:]
    return new.numel() / dt, new[0, :8].tolist()


def llamacpp_generate(gguf_path, ctx):
    from llama_cpp import Llama
    llm = Llama(model_path=gguf_path, n_ctx=ctx, n_threads=1, n_threads_batch=1, n_batch=PROMPT_LEN, verbose=False)

    def run(n):
        llm.reset()
        toks = []
        for t in llm.generate(prompts(1)[0], top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
            toks.append(t)
            if len(toks) == n:
                break
        return toks
    run(4)  # warm-up
    t0 = time.perf_counter()
    toks = run(NEW_TOKENS)
    return len(toks) / (time.perf_counter() - t0), toks[:8]


def run_slim(slim, work, train_steps):
    cmd = [slim, f"--lm-dir={work}", f"--train-steps={train_steps}", "--gen-reps=1",
           "--benchmark_filter=probe_fma|lm_", "--benchmark_format=json"]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    report = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
    return {b["name"]: b for b in report["benchmarks"] if b.get("run_type", "iteration") == "iteration"}


def find(res, prefix):
    for k, v in res.items():
        if k.startswith(prefix):
            return v
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slim", default=os.path.join(ROOT, "build", "release", "bench", "slim_bench_lm"))
    p.add_argument("--work", default="/tmp/slim_lm_speed", help="where the shared random weights are written")
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--skip", default="", help="comma-separated peers to leave out: torch, llamacpp, slim")
    p.add_argument("--torch-rss-child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_rss_child:
        return torch_rss_child()
    skip = set(filter(None, a.skip.split(",")))
    os.makedirs(a.work, exist_ok=True)
    paths = write_weights(a.work)
    rows = []  # (what, slim, peer name, peer, ratio, goal, met)

    slim = run_slim(a.slim, a.work, a.train_steps) if "slim" not in skip else {}
    for name, b in slim.items():
        print(f"  slim {name}: {b.get('real_time'):.1f} {b.get('time_unit')} "
              f"{ {k: v for k, v in b.items() if k[0].isupper() or '/' in k or k in ('ratio', 'loss')} } "
              f"{b.get('label', '')}", file=sys.stderr, flush=True)

    def ratio_row(what, s, peer, pv, goal):
        r = s / pv if s and pv else None
        rows.append((what, s, peer, pv, r, goal, None if r is None else r >= goal))

    for threads in (1, 2):
        tr = next((v for k, v in slim.items() if k.startswith("lm_train_step/") and f"threads:{threads}" in k), None)
        s_tok = tr["tokens/s"] if tr else None
        t_tok = torch_train(threads, a.train_steps) if "torch" not in skip else None
        print(f"  torch train {threads} thr: {t_tok}", file=sys.stderr, flush=True)
        ratio_row(f"training tokens/s, {threads} thr", s_tok, "torch", t_tok, 1.3)
        probe = next((v for k, v in slim.items() if k.startswith("probe_fma/") and f"threads:{threads}" in k), None)
        if tr and probe:
            rows.append((f"training GFLOP/s, {threads} thr", tr["FLOP/s"] / 1e9, "FMA peak " + probe["name"],
                         probe["FLOP/s"] / 1e9, tr["FLOP/s"] / probe["FLOP/s"], 0.6,
                         tr["FLOP/s"] / probe["FLOP/s"] >= 0.6))

    rss = slim.get("lm_train_rss/iterations:1/real_time") or find(slim, "lm_train_rss")
    t_rss = None
    if "torch" not in skip:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-rss-child"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        t_rss = json.loads(out.strip().splitlines()[-1])["peak_rss_kib"] / 1024
    if rss:
        rows.append(("training peak RSS, MiB", rss["peak_rss_MiB"], "analytic sum", rss["analytic_MiB"],
                     rss["ratio"], 1.3, rss["ratio"] <= 1.3))
        rows.append(("  (RSS less the process's start RSS)", rss["peak_rss_MiB"] - rss["base_rss_MiB"], "analytic sum",
                     rss["analytic_MiB"], rss["ratio_less_base"], None, None))
    if t_rss:
        rows.append(("training peak RSS, MiB", rss["peak_rss_MiB"] if rss else None, "torch (2 steps, 1 thr)",
                     t_rss, (rss["peak_rss_MiB"] / t_rss) if rss else None, None, None))

    heads = {}
    for name, (hf_dir, gguf_path) in paths.items():
        for batch in (1, 8):
            g = next((v for k, v in slim.items() if k.startswith(f"lm_generate/") and f"/{name}/" in k
                      and f"batch:{batch}/" in k and "packed:0" not in k), None)
            s_tok = g["tokens/s"] if g else None
            if g:
                heads[(name, batch, "slim")] = g.get("label", "")
            if batch == 1 and "llamacpp" not in skip:
                try:
                    l_tok, h = llamacpp_generate(gguf_path, GEN[name]["max_position_embeddings"])
                    heads[(name, batch, "llama.cpp")] = h
                except ImportError as e:
                    print(f"llama-cpp-python unavailable: {e}", file=sys.stderr)
                    l_tok = None
                ratio_row(f"{name} generate b{batch} tokens/s", s_tok, "llama.cpp", l_tok, 1.0)
            if "torch" not in skip:
                t_tok, h = torch_generate(hf_dir, batch)
                heads[(name, batch, "torch")] = h
                ratio_row(f"{name} generate b{batch} tokens/s", s_tok, "torch eager", t_tok, 3.0)

    def f(x):
        return "–" if x is None else (f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}")
    print("| measure | slim | peer | peer value | slim ÷ peer | goal | met |")
    print("|---|---|---|---|---|---|---|")
    for what, s, peer, pv, r, goal, met in rows:
        g = "–" if goal is None else (f"≤ {goal}" if "RSS" in what else f"≥ {goal}")
        print(f"| {what} | {f(s)} | {peer} | {f(pv)} | {f(r)} | {g} | {'–' if met is None else ('yes' if met else 'no')} |")
    print("\nfirst new tokens of row 0 (same weights):")
    for k, v in sorted(heads.items()):
        print(f"  {k}: {v}")


if __name__ == "__main__":
    sys.exit(main())
