"""The bundled model's network: a Llama decoder (RMSNorm, rotary position embedding, SwiGLU feed-forward,
grouped-query attention), written so that its state dict uses Hugging Face LlamaForCausalLM's tensor
names and layouts (q_proj rows in HF's rotate_half order). export.py writes it as GGUF and HF files.

    config = dict(vocab_size=4000, hidden_size=256, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=2, intermediate_size=768, max_position_embeddings=512,
                  rms_norm_eps=1e-5, rope_theta=10000.0)
    model = LlamaLM(config, dropout=0.1)
    logits = model(ids)            # ids [batch, T] -> logits [batch, T, vocab]

Runs on PyTorch 1.13 (Debian) and 2.x; uses scaled_dot_product_attention where it exists.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # at least float32 (under bf16 autocast too); float64 when the model is in float64
        dt = torch.promote_types(x.dtype, torch.float32)
        xf = x.to(dt)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.to(dt)).type_as(x)


def rope_tables(head_dim, n_pos, theta, device):
    """cos and sin [n_pos, head_dim] (float64) in HF's layout: frequency i serves elements i and i + head_dim/2."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim))
    angles = torch.arange(n_pos, dtype=torch.float64, device=device)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.n_head, self.n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = d // self.n_head
        self.q_proj = nn.Linear(d, self.n_head * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.n_head * self.hd, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        cos, sin = cos[:T].to(q.dtype), sin[:T].to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.n_head // self.n_kv  # query head h reads kv head h // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.to(torch.promote_types(scores.dtype, torch.float32)).masked_fill(mask, float("-inf"))
            out = torch.softmax(scores, dim=-1).type_as(v) @ v
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, ff = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(d, ff, bias=False)
        self.up_proj = nn.Linear(d, ff, bias=False)
        self.down_proj = nn.Linear(ff, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, dropout):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, cos, sin):
        x = x + self.drop(self.self_attn(self.input_layernorm(x), cos, sin))
        return x + self.drop(self.mlp(self.post_attention_layernorm(x)))


class Decoder(nn.Module):
    def __init__(self, cfg, dropout):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(cfg, dropout) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class LlamaLM(nn.Module):
    def __init__(self, cfg, dropout=0.0):
        super().__init__()
        self.cfg = cfg
        self.model = Decoder(cfg, dropout)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.drop = nn.Dropout(dropout)
        hd = cfg["hidden_size"] // cfg["num_attention_heads"]
        cos, sin = rope_tables(hd, cfg["max_position_embeddings"], cfg["rope_theta"], None)
        # kept in float64 (model.float() / .half() would round them: they are cast per use instead)
        self._rope = (cos, sin)
        self.reset_parameters()

    def reset_parameters(self):
        """GPT-2 style: N(0, 0.02), the projections into the residual stream scaled by 1/sqrt(2 * layers)."""
        resid_std = 0.02 / math.sqrt(2 * self.cfg["num_hidden_layers"])
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = resid_std if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, ids):
        x = self.drop(self.model.embed_tokens(ids))
        if self._rope[0].device != x.device:
            self._rope = tuple(t.to(x.device) for t in self._rope)
        cos, sin = self._rope
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.model.norm(x))


def n_params(model):
    return sum(p.numel() for p in model.parameters())
