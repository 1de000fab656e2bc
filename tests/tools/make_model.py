#!/usr/bin/python3
"""Writes GGUF Llama models with deterministic random weights, laid out as llama.cpp's converter would.

    make_model.py OUT.gguf --shape tiny [--dtype f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k|q4_k_m]
                  [--spm tokenizer.model] [--vocab-size N] [--tied] [--seed S] [--hf-npz OUT.npz]
                  [--rope-theta T] [--rope-llama3 FACTOR,LOW,HIGH,ORIG_CTX] [--ctx N] [--ffn N] [--name NAME]
                  [--tensor-type REGEX=DTYPE ...] [--dequantize]

Shapes (dim, layers, heads, kv heads, ffn, context, default vocabulary):
    tiny       64,  2,  4,  4,   172,  256,  the --spm vocabulary (or 259 byte tokens)
    tiny-gqa   64,  2,  8,  2,   172,  256,  same
    s110m      768, 12, 12, 12,  2048, 1024, 32000
    l1b        2048, 22, 32, 4,  5632, 2048, 32000
    l7b        4096, 32, 32, 32, 11008, 4096, 32000
    tiny-k     256, 2,  4,  2,   512,  256,  the --spm vocabulary (every matrix whole 256-value K-quant blocks)

Weights are generated in Hugging Face's layout (q_proj, k_proj, ... as LlamaForCausalLM holds them),
each tensor from its own seeded generator (so any tensor can be regenerated alone), and written the way
llama.cpp's convert_hf_to_gguf.py writes a Llama: q_proj and k_proj rows permuted so that RoPE rotates
adjacent pairs, matrices with ne = [in, out], norms always f32, output.weight omitted when tied.
--hf-npz writes the same weights in HF layout (after rounding to the stored dtype) plus the config as
JSON under "__config__", for a PyTorch reference written from HF's equations.

Quantised types (tests/tools/quantize.py): q8_0, q4_0, q4_k, q5_k, q6_k quantise every matrix to that
type; q4_k_m mixes them as llama-quantize's Q4_K_M does for a Llama: q6_k for output.weight (for
token_embd when the head is tied), for attn_v and ffn_down of the layers where llama.cpp's
use_more_bits(i, n) holds (i < n/8, i >= 7n/8, or (i - n/8) % 3 == 2), q4_k for the rest. A matrix
whose rows are not whole blocks falls back as the converter does: q8_0 when its rows are whole 32-value
blocks (llama.cpp would pick q5_0/q5_1 for the K types, which libtfm does not read), else f16.
--tensor-type REGEX=DTYPE (repeatable, like llama-quantize's --tensor-type) overrides the dtype of the
matrices whose GGUF name matches. --dequantize writes every matrix as f32 holding the values its
dtype decodes to: the same model, computed without quantised arithmetic.

Scales: matrices have std ~ 1/sqrt(fan_in) (queries and keys 1.5x, so attention is not uniform), the
LM head has std 4/sqrt(dim), giving logits with std ~4: greedy choices are far from ties, yet the
distribution is not one-hot. Norm gains are 1 + N(0, 0.1) so a reader that ignores them is caught.

The vocabulary comes from a SentencePiece model (--spm, read with the sentencepiece module):
pieces, scores and types become tokenizer.ggml.* as llama.cpp's converter writes them. When the model
vocabulary is larger (--vocab-size, or the 32000 of the large shapes), it is padded as the converter
pads: "[PAD<i>]" pieces of type UNUSED with score -10000, which no tokenization produces.
"""
import argparse
import json
import math
import os
import re
import sys
import zipfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_writer import GGUF, GGUFWriter, stored_values  # noqa: E402

SHAPES = {
    #            dim  layers heads kv  ffn    ctx   vocab (None: from the tokenizer)
    "tiny":     (64,   2,  4,  4,   172,  256,  None),
    "tiny-gqa": (64,   2,  8,  2,   172,  256,  None),
    "s110m":    (768,  12, 12, 12,  2048, 1024, 32000),
    "l1b":      (2048, 22, 32, 4,   5632, 2048, 32000),
    "l7b":      (4096, 32, 32, 32,  11008, 4096, 32000),
    "tiny-k":   (256,  2,  4,  2,   512,  256,  None),
}

# llama.cpp's general.file_type (a pure q4_k / q5_k file is named by the nearest mix, _S)
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "q4_k": 14, "q4_k_m": 15, "q5_k": 16, "q6_k": 18, "bf16": 32}
BLOCK = {"q8_0": 32, "q4_0": 32, "q4_k": 256, "q5_k": 256, "q6_k": 256}  # values per block


def use_more_bits(i_layer, n_layer):
    """llama-quantize's choice of the layers whose attn_v / ffn_down get more bits in Q4_K_M."""
    return i_layer < n_layer // 8 or i_layer >= 7 * n_layer // 8 or (i_layer - n_layer // 8) % 3 == 2


def matrix_dtype(name, cols, a, n_layer):
    """The dtype of matrix `name` (GGUF name) with rows of `cols` values."""
    dtype = a.dtype
    if dtype == "q4_k_m":
        dtype = "q4_k"
        if name == "output.weight" or (a.tied and name == "token_embd.weight"):
            dtype = "q6_k"
        elif name.endswith((".attn_v.weight", ".ffn_down.weight")) and use_more_bits(int(name.split(".")[1]),
                                                                                    n_layer):
            dtype = "q6_k"
    for pattern, forced in a.tensor_type:
        if re.search(pattern, name):
            dtype = forced
    if dtype in BLOCK and cols % BLOCK[dtype]:
        dtype = "q8_0" if cols % 32 == 0 else "f16"  # as the converter does for rows that are not whole blocks
    return dtype


def tensor_type_arg(text):
    pattern, sep, dtype = text.rpartition("=")
    if not sep or dtype not in FILE_TYPE or dtype == "q4_k_m":
        raise argparse.ArgumentTypeError(f"expected REGEX=DTYPE with DTYPE one of f32, f16, bf16, {', '.join(BLOCK)}")
    return re.compile(pattern), dtype

# SentencePiece / llama.cpp token types
TOK_NORMAL, TOK_UNKNOWN, TOK_CONTROL, TOK_USER_DEFINED, TOK_UNUSED, TOK_BYTE = 1, 2, 3, 4, 5, 6


# ---------------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------------
def _varint(buf, pos):
    v = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def _proto_fields(buf):
    """(field number, wire type, value) of one protobuf message; values of length-delimited fields are bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, pos = _varint(buf, pos)
        elif wire == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            v, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, v


def spm_normalizer_flags(path):
    """add_dummy_prefix and remove_extra_whitespaces from the model's NormalizerSpec (field 3);
    the sentencepiece module does not expose them and protobuf may be absent."""
    flags = {"add_dummy_prefix": True, "remove_extra_whitespaces": True}
    data = open(path, "rb").read()
    for field, wire, value in _proto_fields(data):
        if field == 3 and wire == 2:
            for f2, w2, v2 in _proto_fields(value):
                if f2 == 3 and w2 == 0:
                    flags["add_dummy_prefix"] = bool(v2)
                elif f2 == 4 and w2 == 0:
                    flags["remove_extra_whitespaces"] = bool(v2)
    return flags


def spm_vocab(path):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor()
    sp.LoadFromFile(path)
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.IdToPiece(i))
        scores.append(sp.GetScore(i))
        if sp.IsUnknown(i):
            t = TOK_UNKNOWN
        elif sp.IsControl(i):
            t = TOK_CONTROL
        elif sp.IsUnused(i):
            t = TOK_UNUSED
        elif sp.IsByte(i):
            t = TOK_BYTE
        else:
            t = TOK_NORMAL
        types.append(t)
    flags = spm_normalizer_flags(path)
    return dict(tokens=tokens, scores=scores, types=types, bos=sp.bos_id(), eos=sp.eos_id(), unk=sp.unk_id(),
                pad=sp.pad_id(), **flags)


def byte_vocab():
    """Without a tokenizer model: <unk>, <s>, </s> and the 256 byte pieces of byte-fallback BPE."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL] + [TOK_BYTE] * 256
    return dict(tokens=tokens, scores=[0.0] * len(tokens), types=types, bos=1, eos=2, unk=0, pad=-1,
                add_dummy_prefix=True, remove_extra_whitespaces=False)


def pad_vocab(vocab, n):
    have = len(vocab["tokens"])
    if n < have:
        raise SystemExit(f"--vocab-size {n} is smaller than the tokenizer's {have} pieces")
    for i in range(have, n):
        vocab["tokens"].append(f"[PAD{i}]")
        vocab["scores"].append(-10000.0)
        vocab["types"].append(TOK_UNUSED)
    return vocab


def add_vocab(w, vocab):
    w.add("tokenizer.ggml.model", "llama")
    w.add("tokenizer.ggml.pre", "default")
    w.add_array("tokenizer.ggml.tokens", vocab["tokens"], GGUF.STRING)
    w.add_array("tokenizer.ggml.scores", np.asarray(vocab["scores"], np.float32), GGUF.FLOAT32)
    w.add_array("tokenizer.ggml.token_type", np.asarray(vocab["types"], np.int32), GGUF.INT32)
    for key in ("bos", "eos", "unk", "pad"):
        if vocab[key] >= 0:
            name = {"unk": "unknown", "pad": "padding"}.get(key, key)
            w.add(f"tokenizer.ggml.{name}_token_id", vocab[key], GGUF.UINT32)
    w.add("tokenizer.ggml.add_bos_token", True)
    w.add("tokenizer.ggml.add_eos_token", False)
    w.add("tokenizer.ggml.add_space_prefix", bool(vocab["add_dummy_prefix"]))
    w.add("tokenizer.ggml.remove_extra_whitespaces", bool(vocab["remove_extra_whitespaces"]))


# ---------------------------------------------------------------------------------------------------
# Weights (HF layout)
# ---------------------------------------------------------------------------------------------------
def hf_tensor_specs(cfg):
    """(HF name, shape, std or 'norm') for every tensor of LlamaForCausalLM."""
    d, ff, hd = cfg["hidden_size"], cfg["intermediate_size"], cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    head_std = 4.0 / math.sqrt(d)
    specs = [("model.embed_tokens.weight", (cfg["vocab_size"], d),
              head_std if cfg["tie_word_embeddings"] else 1.0)]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        specs += [
            (p + "input_layernorm.weight", (d,), "norm"),
            (p + "self_attn.q_proj.weight", (q, d), 1.5 / math.sqrt(d)),
            (p + "self_attn.k_proj.weight", (kv, d), 1.5 / math.sqrt(d)),
            (p + "self_attn.v_proj.weight", (kv, d), 1.0 / math.sqrt(d)),
            (p + "self_attn.o_proj.weight", (d, q), 1.0 / math.sqrt(q)),
            (p + "post_attention_layernorm.weight", (d,), "norm"),
            (p + "mlp.gate_proj.weight", (ff, d), 1.0 / math.sqrt(d)),
            (p + "mlp.up_proj.weight", (ff, d), 1.0 / math.sqrt(d)),
            (p + "mlp.down_proj.weight", (d, ff), 1.0 / math.sqrt(ff)),
        ]
    specs.append(("model.norm.weight", (d,), "norm"))
    if not cfg["tie_word_embeddings"]:
        specs.append(("lm_head.weight", (cfg["vocab_size"], d), head_std))
    return specs


def hf_tensor(name, shape, std, seed):
    """One tensor from a generator seeded by (seed, crc32(name)): independent of generation order."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    x = rng.standard_normal(shape, dtype=np.float32)
    if std == "norm":
        return (1.0 + 0.1 * x).astype(np.float32)
    return (x * np.float32(std)).astype(np.float32)


def permute_qk(w, n_head):
    """llama.cpp's converter permutation: within each head, row j*(hd/2) + i (HF's rotate_half pairing,
    i < hd/2, j in {0, 1}) moves to row 2*i + j, so RoPE's pairs become adjacent rows."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAME = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf_name):
    if hf_name in GGUF_NAME:
        return GGUF_NAME[hf_name]
    parts = hf_name.split(".")  # model.layers.N.rest
    return f"blk.{parts[2]}." + GGUF_NAME[".".join(parts[3:])]


def llama3_rope_factors(cfg):
    """rope_freqs.weight as llama.cpp's converter computes it for rope_scaling "llama3"."""
    rs = cfg["rope_scaling"]
    factor, low, high, orig = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], \
        rs["original_max_position_embeddings"]
    hd, base = cfg["head_dim"], cfg["rope_theta"]
    freqs = 1.0 / (base ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    low_wavelen, high_wavelen = orig / low, orig / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, np.float32)


# ---------------------------------------------------------------------------------------------------
def make_config(a, vocab_size):
    dim, layers, heads, kv_heads, ffn, ctx, _ = SHAPES[a.shape]
    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=dim, num_hidden_layers=layers,
               num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=a.ffn or ffn,
               max_position_embeddings=a.ctx or ctx,  vocab_size=vocab_size, head_dim=dim // heads,
               rms_norm_eps=1e-5, rope_theta=a.rope_theta, tie_word_embeddings=a.tied, rope_scaling=None,
               hidden_act="silu", attention_bias=False, mlp_bias=False)
    if a.rope_llama3:
        f, lo, hi, orig = (float(v) for v in a.rope_llama3.split(","))
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": f, "low_freq_factor": lo, "high_freq_factor": hi,
                               "original_max_position_embeddings": int(orig)}
    return cfg


def build_writer(a, cfg, vocab):
    w = GGUFWriter()
    w.add("general.architecture", "llama")
    w.add("general.name", a.name or f"tfm-test-{a.shape}-{a.dtype}{'-tied' if a.tied else ''}")
    w.add("general.file_type", FILE_TYPE["f32" if a.dequantize else a.dtype], GGUF.UINT32)
    if (a.dtype in BLOCK or a.dtype == "q4_k_m") and not a.dequantize:
        w.add("general.quantization_version", 2, GGUF.UINT32)
    w.add("llama.vocab_size", cfg["vocab_size"], GGUF.UINT32)
    w.add("llama.context_length", cfg["max_position_embeddings"], GGUF.UINT32)
    w.add("llama.embedding_length", cfg["hidden_size"], GGUF.UINT32)
    w.add("llama.block_count", cfg["num_hidden_layers"], GGUF.UINT32)
    w.add("llama.feed_forward_length", cfg["intermediate_size"], GGUF.UINT32)
    w.add("llama.rope.dimension_count", cfg["head_dim"], GGUF.UINT32)
    w.add("llama.attention.head_count", cfg["num_attention_heads"], GGUF.UINT32)
    w.add("llama.attention.head_count_kv", cfg["num_key_value_heads"], GGUF.UINT32)
    w.add("llama.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"], GGUF.FLOAT32)
    w.add("llama.rope.freq_base", cfg["rope_theta"], GGUF.FLOAT32)
    add_vocab(w, vocab)
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--dtype", choices=sorted(FILE_TYPE), default="f32")
    ap.add_argument("--spm", help="SentencePiece .model for the vocabulary (default: 259 byte tokens)")
    ap.add_argument("--vocab-size", type=int, help="pad the vocabulary to this size")
    ap.add_argument("--tied", action="store_true", help="no output.weight: the LM head reuses token_embd")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ctx", type=int, help="override the training context length")
    ap.add_argument("--ffn", type=int, help="override the feed-forward width (e.g. a multiple of 32 for q8_0)")
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--rope-llama3", metavar="FACTOR,LOW,HIGH,ORIG_CTX",
                    help="Llama-3.1 RoPE scaling, written as rope_freqs.weight like llama.cpp's converter")
    ap.add_argument("--name")
    ap.add_argument("--tensor-type", type=tensor_type_arg, action="append", default=[], metavar="REGEX=DTYPE",
                    help="dtype of the matrices whose GGUF name matches REGEX (repeatable; the last match wins)")
    ap.add_argument("--dequantize", action="store_true",
                    help="write matrices as f32 holding the values their dtype decodes to")
    ap.add_argument("--hf-npz", help="also write the HF-layout weights (as stored) and config to this .npz")
    a = ap.parse_args()

    vocab = spm_vocab(a.spm) if a.spm else byte_vocab()
    n_vocab = a.vocab_size or SHAPES[a.shape][6] or len(vocab["tokens"])
    vocab = pad_vocab(vocab, n_vocab)
    cfg = make_config(a, n_vocab)
    # 1-D tensors stay f32, as llama.cpp writes them; token_embd follows the matrices

    w = build_writer(a, cfg, vocab)
    specs = hf_tensor_specs(cfg)
    npz = zipfile.ZipFile(a.hf_npz, "w", allowZip64=True) if a.hf_npz else None

    def producer(hf_name, shape, std, dtype):
        def make():
            x = hf_tensor(hf_name, shape, std, a.seed)
            if npz is not None:
                with npz.open(hf_name + ".npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, stored_values(x, dtype), allow_pickle=False)
            if hf_name.endswith("q_proj.weight"):
                x = permute_qk(x, cfg["num_attention_heads"])
            elif hf_name.endswith("k_proj.weight"):
                x = permute_qk(x, cfg["num_key_value_heads"])
            if a.dequantize:
                x = stored_values(x, dtype)  # blocks lie within rows: the permutation commutes with this
            return x
        return make

    for hf_name, shape, std in specs:
        name = gguf_name(hf_name)
        dtype = "f32" if len(shape) == 1 else matrix_dtype(name, shape[-1], a, cfg["num_hidden_layers"])
        w.add_tensor(name, shape, "f32" if a.dequantize else dtype, producer(hf_name, shape, std, dtype))
    if cfg["rope_scaling"]:
        factors = llama3_rope_factors(cfg)
        w.add_tensor("rope_freqs.weight", factors.shape, "f32", lambda: factors)
    w.write(a.out)

    if npz is not None:
        with npz.open("__config__.npy", "w") as fh:
            np.lib.format.write_array(fh, np.array(json.dumps(cfg)), allow_pickle=False)
        npz.close()


if __name__ == "__main__":
    main()
