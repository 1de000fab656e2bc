#!/usr/bin/python3
"""Writes Hugging Face Llama model directories with deterministic random weights.

    make_hf_model.py OUT_DIR [--preset llama3-gqa] [--dtype F32|F16|BF16] [--shards N] [--seed S]

OUT_DIR receives config.json, generation_config.json and model.safetensors, or N shards
model-0000i-of-0000N.safetensors with model.safetensors.index.json. Tensor names, shapes and
config keys are those of transformers' LlamaForCausalLM; the safetensors files are written by
safetensors_np.py. No tokenizer is written (tests drive models with token ids).

Presets (tiny, for tests):
  llama2-mha     multi-head attention, separate lm_head
  llama2-tied    the same, tie_word_embeddings = true and no lm_head.weight
  llama2-linear  rope_scaling {"rope_type": "linear", "factor": 2}
  llama3-gqa     8 query heads over 2 kv heads, head_dim 16 != hidden/heads, rope_scaling "llama3"
                 (original context 64, so positions of a short prompt reach all three frequency bands)
  llama3-tied    llama3-gqa with tied embeddings (as Llama-3.2 1B/3B)
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

BASE = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float32",
    "use_cache": True,
}

PRESETS = {
    "llama2-mha": dict(vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                       rms_norm_eps=1e-5, rope_theta=10000.0, rope_scaling=None, tie_word_embeddings=False),
    "llama3-gqa": dict(vocab_size=320, hidden_size=64, intermediate_size=192, num_hidden_layers=3,
                       num_attention_heads=8, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
}
PRESETS["llama2-tied"] = dict(PRESETS["llama2-mha"], tie_word_embeddings=True)
PRESETS["llama2-linear"] = dict(PRESETS["llama2-mha"], rope_scaling={"rope_type": "linear", "factor": 2.0})
PRESETS["llama3-tied"] = dict(PRESETS["llama3-gqa"], tie_word_embeddings=True)

TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def make_config(preset="llama3-gqa", **overrides):
    cfg = dict(BASE)
    cfg.update(PRESETS[preset])
    cfg.update(overrides)
    return cfg


def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def make_weights(cfg, seed=0):
    """HF-named float32 weights. Matrices have std 1/sqrt(fan_in) so activations stay O(1); the head
    has std 3/sqrt(hidden) so the logits are peaked (greedy choices far from ties). A tied embedding
    is small (std 0.05) so that a token's own row does not dominate the residual stream, and the
    final norm's gain makes up for it in the logits: with std 1 greedy decoding only repeats."""
    rng = np.random.default_rng(seed)
    d, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = head_dim(cfg)
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    tied = bool(cfg.get("tie_word_embeddings"))
    embed_std = 0.05 if tied else 1.0
    w = {"model.embed_tokens.weight": (embed_std * rng.standard_normal((v, d))).astype(np.float32)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(d)
        w[p + "self_attn.q_proj.weight"] = mat(q, d)
        w[p + "self_attn.k_proj.weight"] = mat(kv, d)
        w[p + "self_attn.v_proj.weight"] = mat(kv, d)
        w[p + "self_attn.o_proj.weight"] = mat(d, q)
        w[p + "post_attention_layernorm.weight"] = norm(d)
        w[p + "mlp.gate_proj.weight"] = mat(ff, d)
        w[p + "mlp.up_proj.weight"] = mat(ff, d)
        w[p + "mlp.down_proj.weight"] = mat(d, ff)
    w["model.norm.weight"] = norm(d) * (3.0 / (embed_std * np.sqrt(d)) if tied else 1.0)
    if not cfg.get("tie_word_embeddings"):
        w["lm_head.weight"] = (3.0 * rng.standard_normal((v, d)) / np.sqrt(d)).astype(np.float32)
    return w


def shard_names(n):
    return [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


def write_hf_dir(out_dir, cfg, weights, dtype="F32", shards=1, generation_config=True, align=8,
                 norm_dtype=None):
    """Writes a HF directory. `weights`: name -> float32 array, stored in `dtype`; 1-D tensors (the
    norm gains) in `norm_dtype` when given (as a GGUF file keeps them in f32)."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(cfg, torch_dtype=TORCH_DTYPE.get(dtype, "float32"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if generation_config:
        with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": cfg.get("bos_token_id"), "eos_token_id": cfg.get("eos_token_id"),
                       "do_sample": False}, f, indent=2)
    def dtype_of(arr):
        return norm_dtype if norm_dtype and np.ndim(arr) == 1 else dtype

    stored = {name: (dtype_of(arr), safetensors_np.encode(arr, dtype_of(arr))) for name, arr in weights.items()}
    if shards <= 1:
        safetensors_np.write(os.path.join(out_dir, "model.safetensors"), stored, {"format": "pt"}, align)
        return
    names = list(stored)
    files = shard_names(shards)
    per = -(-len(names) // shards)
    weight_map, total = {}, 0
    for i, fname in enumerate(files):
        part = {n: stored[n] for n in names[i * per:(i + 1) * per]}
        total += safetensors_np.write(os.path.join(out_dir, fname), part, {"format": "pt"}, align)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def make_hf_model(out_dir, preset="llama3-gqa", dtype="F32", shards=1, seed=0, **overrides):
    cfg = make_config(preset, **overrides)
    write_hf_dir(out_dir, cfg, make_weights(cfg, seed), dtype, shards)
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--preset", default="llama3-gqa", choices=sorted(PRESETS))
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    make_hf_model(a.out_dir, a.preset, a.dtype, a.shards, a.seed)


if __name__ == "__main__":
    main()
