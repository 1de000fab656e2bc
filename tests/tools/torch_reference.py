#!/usr/bin/python3
"""A PyTorch reference of the Llama forward pass, written from the equations of transformers'
modeling_llama.py (LlamaForCausalLM), computed in float64.

    torch_reference.py HF_DIR --ids "1 2 3" [--out logits.npy] [--greedy N]

It reads a HF directory (config.json, model.safetensors or shards + index) with safetensors_np.py
and prints or saves the logits of every position, shape [n_tokens, vocab] (float32 .npy), or the
greedy continuation of N tokens.

From Python:
    ref = LlamaReference.from_hf_dir(path)        # or LlamaReference(config_dict, {hf name: array})
    ref.logits([1, 2, 3])                         # torch.float64 [3, vocab]
    ref.greedy([1, 2, 3], 16)                     # list of 16 ids

The equations (one layer, x the residual stream [T, hidden]):
    h = x + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = rmsnorm(x) * input_layernorm
    x' = h + down_proj(silu(gate_proj(m)) * up_proj(m)),                      m = rmsnorm(h) * post_attention_layernorm
    rmsnorm(x) = x / sqrt(mean(x^2) + rms_norm_eps)
    rope: q * cos + rotate_half(q) * sin, rotate_half(x) = cat(-x[d/2:], x[:d/2]), angle = pos * inv_freq[i mod d/2]
    inv_freq[i] = rope_theta ^ (-2i / head_dim), then rope_scaling ("linear": / factor; "llama3": see below)
    attention: softmax(q k^T / sqrt(head_dim) + causal mask) v, query head h reads kv head h // (heads / kv_heads)
    logits = rmsnorm(x_L) * norm  @ lm_head^T  (lm_head = embed_tokens when tie_word_embeddings)
"""
import argparse
import glob
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

DT = torch.float64


def read_hf_weights(path):
    """All tensors of a HF directory (single file or shards) as float32 numpy arrays."""
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.exists(os.path.join(path, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(path, "*.safetensors")))
    weights = {}
    for fname in files:
        weights.update(safetensors_np.read_floats(os.path.join(path, fname)))
    return weights


def rope_inv_freq(cfg):
    """inv_freq as HF's rope initialisation functions compute it (default, linear, llama3)."""
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    theta = cfg.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=DT) / hd))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv_freq
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return inv_freq
    factor = rs["factor"]
    if kind == "linear":
        return inv_freq / factor
    if kind == "llama3":
        low, high = rs["low_freq_factor"], rs["high_freq_factor"]
        old_ctx = rs["original_max_position_embeddings"]
        low_freq_wavelen = old_ctx / low
        high_freq_wavelen = old_ctx / high
        wavelen = 2 * math.pi / inv_freq
        # long wavelengths (low frequencies) are slowed down by `factor`, short ones are kept,
        # and the band between is interpolated smoothly
        scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_ctx / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
        return torch.where(medium, smoothed, scaled)
    raise ValueError(f"rope_scaling type {kind!r} not in the reference")


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaReference:
    """`pairing`: "half" is HF's rotate_half (the HF layout); "adjacent" rotates (x[2i], x[2i+1]) as
    llama.cpp does for GGUF Llama weights, whose Q/K rows are permuted to match."""

    def __init__(self, cfg, weights, pairing="half"):
        self.cfg = cfg
        self.pairing = pairing
        self.w = {k: torch.as_tensor(np.asarray(v), dtype=DT) for k, v in weights.items()}
        self.n_head = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_head
        self.hd = cfg.get("head_dim") or cfg["hidden_size"] // self.n_head
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.inv_freq = rope_inv_freq(cfg)
        if cfg.get("tie_word_embeddings") or "lm_head.weight" not in self.w:
            self.head = self.w["model.embed_tokens.weight"]
        else:
            self.head = self.w["lm_head.weight"]

    @classmethod
    def from_hf_dir(cls, path, **kwargs):
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        return cls(cfg, read_hf_weights(path), **kwargs)

    def rmsnorm(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def rope(self, x, pos):
        # x [heads, T, hd]
        freqs = pos[:, None].to(DT) * self.inv_freq[None, :]
        if self.pairing == "adjacent":
            pairs = x.reshape(*x.shape[:-1], -1, 2)
            a, b = pairs[..., 0], pairs[..., 1]
            cos, sin = freqs.cos(), freqs.sin()
            return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).reshape(x.shape)
        # HF concatenates the frequencies twice: element i and i + hd/2 share one
        emb = torch.cat((freqs, freqs), dim=-1)
        return x * emb.cos() + rotate_half(x) * emb.sin()

    def attention(self, i, x, pos):
        p = f"model.layers.{i}.self_attn."
        T = x.shape[0]
        q = (x @ self.w[p + "q_proj.weight"].T).view(T, self.n_head, self.hd).transpose(0, 1)
        k = (x @ self.w[p + "k_proj.weight"].T).view(T, self.n_kv, self.hd).transpose(0, 1)
        v = (x @ self.w[p + "v_proj.weight"].T).view(T, self.n_kv, self.hd).transpose(0, 1)
        q, k = self.rope(q, pos), self.rope(k, pos)
        rep = self.n_head // self.n_kv
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        scores = q @ k.transpose(1, 2) / math.sqrt(self.hd)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(mask, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return out.transpose(0, 1).reshape(T, self.n_head * self.hd) @ self.w[p + "o_proj.weight"].T

    def mlp(self, i, x):
        p = f"model.layers.{i}.mlp."
        gate = x @ self.w[p + "gate_proj.weight"].T
        up = x @ self.w[p + "up_proj.weight"].T
        return (torch.nn.functional.silu(gate) * up) @ self.w[p + "down_proj.weight"].T

    def logits(self, ids):
        """float64 logits [len(ids), vocab] for a prompt starting at position 0."""
        ids = torch.as_tensor(list(ids), dtype=torch.long)
        pos = torch.arange(len(ids))
        x = self.w["model.embed_tokens.weight"][ids]
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            x = x + self.attention(i, self.rmsnorm(x, self.w[p + "input_layernorm.weight"]), pos)
            x = x + self.mlp(i, self.rmsnorm(x, self.w[p + "post_attention_layernorm.weight"]))
        return self.rmsnorm(x, self.w["model.norm.weight"]) @ self.head.T

    def greedy(self, ids, n):
        """The next n ids picked by argmax, each fed back."""
        seq = list(ids)
        for _ in range(n):
            seq.append(int(torch.argmax(self.logits(seq)[-1])))
        return seq[len(ids):]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir")
    ap.add_argument("--ids", required=True, help="space-separated token ids")
    ap.add_argument("--out", help="write float32 logits [n_tokens, vocab] as .npy")
    ap.add_argument("--greedy", type=int, default=0, help="print the greedy continuation of N tokens")
    a = ap.parse_args()
    ref = LlamaReference.from_hf_dir(a.hf_dir)
    ids = [int(t) for t in a.ids.split()]
    if a.greedy:
        print(" ".join(map(str, ref.greedy(ids, a.greedy))))
    logits = ref.logits(ids).numpy().astype(np.float32)
    if a.out:
        np.save(a.out, logits)
    elif not a.greedy:
        np.set_printoptions(precision=5, suppress=True)
        print(logits)


if __name__ == "__main__":
    main()
