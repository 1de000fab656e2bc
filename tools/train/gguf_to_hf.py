#!/usr/bin/python3
"""Rebuilds the Hugging Face directory of a GGUF Llama written by export.py (or llama.cpp's converter):
the inverse of the conversion, for references that work in HF's layout.

    gguf_to_hf.py MODEL.gguf TOKENIZER.model OUT_DIR

Reads the GGUF file with numpy (read_gguf below: header, key/values, tensor table, f32/f16/bf16 data),
maps the llama.* keys to config.json, the tensor names back to HF's, and undoes llama.cpp's Q/K row
permutation (adjacent RoPE pairs back to HF's rotate_half halves). The weights keep their stored
values (f16 matrices, f32 norm gains), so a reference computes with exactly the numbers the file holds.
"""
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "tools"))
from make_model import GGUF_NAME  # noqa: E402

# GGUF metadata value types -> struct format (8 = string, 9 = array)
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
# ggml tensor types this reader decodes
_TENSOR = {0: np.dtype("<f4"), 1: np.dtype("<f2"), 30: np.dtype("<u2")}


def read_gguf(path):
    """({key: value}, {tensor name: float32 array in numpy order}) of a GGUF v2/v3 file."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = data.tobytes() if len(data) < (1 << 20) else bytes(data[: 1 << 24])  # header and table only
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)[0]
        pos += struct.calcsize("<" + fmt)
        return v

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(_SCALAR[t])

    if buf[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    version = take("I")
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version}")
    n_tensors, n_kv = take("Q"), take("Q")
    kv = {}
    for _ in range(n_kv):
        key = string()
        kv[key] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        ne = [take("Q") for _ in range(take("I"))]
        infos.append((name, ne, take("I"), take("Q")))
    align = kv.get("general.alignment", 32)
    base = pos + (-pos) % align
    tensors = {}
    for name, ne, ggml_type, offset in infos:
        if ggml_type not in _TENSOR:
            raise ValueError(f"{path}: tensor {name} has ggml type {ggml_type}, which this reader does not decode")
        dt = _TENSOR[ggml_type]
        count = int(np.prod(ne))
        raw = np.frombuffer(data, dtype=dt, count=count, offset=base + offset)
        arr = (raw.astype(np.uint32) << 16).view(np.float32) if ggml_type == 30 else raw.astype(np.float32)
        tensors[name] = arr.reshape(ne[::-1])
    return kv, tensors


def unpermute_qk(w, n_head):
    """Inverse of make_model.permute_qk: within each head, row 2*i + j goes back to row j*(hd/2) + i."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _f32(x):
    """A float32 metadata value as the shortest decimal that rounds back to it (1e-05, not 9.9999997e-06)."""
    return float(np.format_float_positional(np.float32(x), unique=True))


def hf_config(kv, n_vocab):
    heads = kv["llama.attention.head_count"]
    dim = kv["llama.embedding_length"]
    return dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=n_vocab, hidden_size=dim,
                num_hidden_layers=kv["llama.block_count"], num_attention_heads=heads,
                num_key_value_heads=kv.get("llama.attention.head_count_kv", heads),
                head_dim=kv.get("llama.rope.dimension_count", dim // heads),
                intermediate_size=kv["llama.feed_forward_length"],
                max_position_embeddings=kv["llama.context_length"],
                rms_norm_eps=_f32(kv["llama.attention.layer_norm_rms_epsilon"]),
                rope_theta=_f32(kv.get("llama.rope.freq_base", 10000.0)), rope_scaling=None,
                tie_word_embeddings="output.weight" not in kv.get("__tensors__", ()), hidden_act="silu",
                attention_bias=False, mlp_bias=False, bos_token_id=kv.get("tokenizer.ggml.bos_token_id", 1),
                eos_token_id=kv.get("tokenizer.ggml.eos_token_id", 2))


def gguf_to_hf(kv, tensors):
    """(config, {HF name: array}) of a GGUF Llama."""
    if kv.get("general.architecture") != "llama":
        raise ValueError(f"architecture {kv.get('general.architecture')!r}, expected 'llama'")
    if "rope_freqs.weight" in tensors:
        raise ValueError("rope_freqs.weight (Llama-3 RoPE scaling) is not handled here")
    cfg = hf_config(dict(kv, __tensors__=tensors), len(kv["tokenizer.ggml.tokens"]))
    back = {v: k for k, v in GGUF_NAME.items()}
    weights = {}
    for name, arr in tensors.items():
        if name.startswith("blk."):
            _, layer, rest = name.split(".", 2)
            hf = f"model.layers.{layer}." + back[rest]
        else:
            hf = back[name]
        if hf.endswith("q_proj.weight"):
            arr = unpermute_qk(arr, cfg["num_attention_heads"])
        elif hf.endswith("k_proj.weight"):
            arr = unpermute_qk(arr, cfg["num_key_value_heads"])
        weights[hf] = arr
    return cfg, weights


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    gguf, spm_model, out_dir = sys.argv[1:]
    kv, tensors = read_gguf(gguf)
    cfg, weights = gguf_to_hf(kv, tensors)
    sys.path.insert(0, HERE)
    from export import write_hf
    write_hf(out_dir, cfg, weights, spm_model)
    print(out_dir)


if __name__ == "__main__":
    main()
