#!/usr/bin/python3
"""Writes the malformed-file corpus: hand-made broken models and tokenizers, each with the status the
public API must return.

    make_cases.py OUT_DIR

OUT_DIR/cases.tsv has one line per case:  name  kind  path  expected  needles
    kind      model (tfm_model_load), mem (tfm_model_load_from_memory of the file's bytes),
              tok (tfm_tokenizer_load)
    expected  one status name (OK, E_FORMAT, ...) or alternatives joined by '|' where the contract
              leaves the choice open (e.g. E_FORMAT|E_UNSUPPORTED for an unknown dtype name)
    needles   words the error message must contain, joined by '|' ('-' for none)

The corpus extends tests/format (GGUF structure) and tests/hf (HF directories) rather than repeating
them: non-finite weights, bad UTF-8 in keys, names and vocabularies, out-of-range and non-finite
hyper-parameters, inconsistent vocabularies, unusual but valid layouts (alignment 1, tensors out of
order, holes), hostile safetensors headers (deep nesting, huge or reversed offsets, odd shapes),
config.json values of the wrong type or range, index files that point outside the directory or at
special files, SentencePiece protobufs broken field by field, and tokenizer.json files with bad
vocabularies, merges, regexes and components. Expected statuses follow the formats' specifications
and tfm.h (E_FORMAT: malformed; E_UNSUPPORTED: well-formed but beyond libtfm; E_IO: unreadable).
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import make_model  # noqa: E402  (byte_vocab: the 259-token byte-fallback vocabulary)
sys.path.insert(0, os.path.join(HERE, "..", "fuzz"))
from make_seeds import bytelevel_tokenizer  # noqa: E402
import safetensors_np  # noqa: E402

CASES = []
OUT = None


def case(name, kind, path, expected, needles=()):
    CASES.append((name, kind, path, expected, "|".join(needles) if needles else "-"))


def write(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return rel


# =====================================================================================================
# GGUF: a raw serialiser whose every field can be set by hand
# =====================================================================================================
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
GGML_F32, GGML_F16, GGML_Q8_0, GGML_I32, GGML_BF16 = 0, 1, 8, 26, 30


def gstr(b):
    b = b.encode("utf-8") if isinstance(b, str) else b
    return struct.pack("<Q", len(b)) + b


SCALAR = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i", T_F32: "<f", T_BOOL: "<B",
          T_U64: "<Q", T_I64: "<q", T_F64: "<d"}


def val(t, v):
    return gstr(v) if t == T_STR else struct.pack(SCALAR[t], v)


def arr(et, items):
    body = b"".join(gstr(x) if et == T_STR else struct.pack(SCALAR[et], x) for x in items)
    return struct.pack("<IQ", et, len(items)) + body


class Gguf:
    def __init__(self):
        self.kv = []        # [key(bytes), type, raw value]
        self.tensors = []   # dicts: name(bytes), ne (ggml order), type, data(bytes)
        self.alignment = 32
        self.reverse_data = False
        self.gap = 0        # extra bytes between tensors

    def set(self, key, t, v, raw=None):
        key = key.encode() if isinstance(key, str) else key
        raw = raw if raw is not None else (v if t == T_ARR else val(t, v))
        for e in self.kv:
            if e[0] == key:
                e[1], e[2] = t, raw
                return
        self.kv.append([key, t, raw])

    def drop(self, key):
        self.kv = [e for e in self.kv if e[0] != key.encode()]

    def tensor(self, name):
        return next(t for t in self.tensors if t["name"] == name.encode())

    def serialize(self):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for key, t, raw in self.kv:
            out += gstr(key) + struct.pack("<I", t) + raw
        align = self.alignment
        offsets, off = {}, 0
        order = list(reversed(self.tensors)) if self.reverse_data else self.tensors
        for t in order:
            off = (off + align - 1) // align * align
            offsets[id(t)] = off
            off += len(t["data"]) + self.gap
        for t in self.tensors:
            out += gstr(t["name"]) + struct.pack("<I", len(t["ne"]))
            out += b"".join(struct.pack("<Q", n) for n in t["ne"])
            out += struct.pack("<IQ", t["type"], offsets[id(t)])
        out += b"\0" * ((-len(out)) % align)
        base = len(out)
        data = bytearray(off)
        for t in self.tensors:
            o = offsets[id(t)]
            data[o:o + len(t["data"])] = t["data"]
        return bytes(out + data)


def f16_bytes(x):
    return np.asarray(x, np.float32).astype("<f2").tobytes()


def bf16_bytes(x):
    return safetensors_np.f32_to_bf16_bits(np.asarray(x, np.float32)).astype("<u2").tobytes()


def q8_0_bytes(x):
    x = np.asarray(x, np.float32).reshape(-1, 32)
    out = bytearray()
    for block in x:
        d = float(np.abs(block).max()) / 127 or 1.0
        out += np.float16(d).tobytes() + np.round(block / d).astype(np.int8).tobytes()
    return bytes(out)


def base_gguf(n_embd=16, n_layer=1, n_head=2, n_head_kv=1, n_ff=32, mat="f32", vocab=True, tied=False, seed=1):
    """A valid tiny llama with the byte vocabulary."""
    rng = np.random.default_rng(seed)
    g = Gguf()
    v = make_model.byte_vocab()
    n_vocab = len(v["tokens"])
    g.set("general.architecture", T_STR, "llama")
    g.set("general.name", T_STR, "malformed-base")
    g.set("llama.context_length", T_U32, 64)
    g.set("llama.embedding_length", T_U32, n_embd)
    g.set("llama.block_count", T_U32, n_layer)
    g.set("llama.feed_forward_length", T_U32, n_ff)
    g.set("llama.attention.head_count", T_U32, n_head)
    g.set("llama.attention.head_count_kv", T_U32, n_head_kv)
    g.set("llama.attention.layer_norm_rms_epsilon", T_F32, 1e-5)
    g.set("llama.rope.freq_base", T_F32, 10000.0)
    if vocab:
        g.set("tokenizer.ggml.model", T_STR, "llama")
        g.set("tokenizer.ggml.tokens", T_ARR, None, arr(T_STR, v["tokens"]))
        g.set("tokenizer.ggml.scores", T_ARR, None, arr(T_F32, v["scores"]))
        g.set("tokenizer.ggml.token_type", T_ARR, None, arr(T_I32, v["types"]))
        g.set("tokenizer.ggml.bos_token_id", T_U32, 1)
        g.set("tokenizer.ggml.eos_token_id", T_U32, 2)
        g.set("tokenizer.ggml.unknown_token_id", T_U32, 0)
    hd = n_embd // n_head

    def add(name, shape, kind="mat"):
        x = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
        if kind == "norm":
            x = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        dtype = "f32" if kind == "norm" else mat
        raw = {"f32": lambda a: a.astype("<f4").tobytes(), "f16": f16_bytes, "bf16": bf16_bytes,
               "q8_0": q8_0_bytes}[dtype](x)
        gtype = {"f32": GGML_F32, "f16": GGML_F16, "bf16": GGML_BF16, "q8_0": GGML_Q8_0}[dtype]
        g.tensors.append({"name": name.encode(), "ne": list(reversed(shape)), "type": gtype, "data": raw})

    add("token_embd.weight", (n_vocab, n_embd))
    add("output_norm.weight", (n_embd,), "norm")
    if not tied:
        add("output.weight", (n_vocab, n_embd))
    for i in range(n_layer):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", (n_embd,), "norm")
        add(p + "attn_q.weight", (n_head * hd, n_embd))
        add(p + "attn_k.weight", (n_head_kv * hd, n_embd))
        add(p + "attn_v.weight", (n_head_kv * hd, n_embd))
        add(p + "attn_output.weight", (n_embd, n_head * hd))
        add(p + "ffn_norm.weight", (n_embd,), "norm")
        add(p + "ffn_gate.weight", (n_ff, n_embd))
        add(p + "ffn_up.weight", (n_ff, n_embd))
        add(p + "ffn_down.weight", (n_embd, n_ff))
    return g


def poke_float(g, tensor, index, value, dtype="f32"):
    t = g.tensor(tensor)
    data = bytearray(t["data"])
    if dtype == "f32":
        data[4 * index:4 * index + 4] = struct.pack("<f", value)
    elif dtype == "f16":
        data[2 * index:2 * index + 2] = np.float16(value).tobytes()
    elif dtype == "bf16":
        data[2 * index:2 * index + 2] = bf16_bytes([value])
    t["data"] = bytes(data)


def gguf_case(name, g, expected, needles=(), kind="model"):
    rel = write(f"gguf/{name}.gguf", g.serialize())
    case("gguf-" + name, kind, rel, expected, needles)


def gguf_cases():
    F, U, OK = "E_FORMAT", "E_UNSUPPORTED", "OK"
    gguf_case("control", base_gguf(), OK)
    gguf_case("control-from-memory", base_gguf(mat="f16"), OK, kind="mem")
    gguf_case("control-tokenizer", base_gguf(), OK, kind="tok")

    # --- non-finite weights: reported with the tensor's name -------------------------------------------
    for name, tensor, idx, v, mat in [
            ("nan-in-norm", "blk.0.attn_norm.weight", 3, float("nan"), "f32"),
            ("inf-in-output-norm", "output_norm.weight", 0, float("inf"), "f32"),
            ("inf-in-embedding-f32", "token_embd.weight", 100, float("inf"), "f32"),
            ("neg-inf-in-output-f32", "output.weight", 17, float("-inf"), "f32"),
            ("nan-in-attn-q-f16", "blk.0.attn_q.weight", 5, float("nan"), "f16"),
            ("inf-in-ffn-down-f16", "blk.0.ffn_down.weight", 31, float("inf"), "f16"),
            ("nan-in-attn-v-bf16", "blk.0.attn_v.weight", 2, float("nan"), "bf16"),
            ("inf-in-embedding-bf16", "token_embd.weight", 1000, float("inf"), "bf16")]:
        g = base_gguf(mat=mat)
        poke_float(g, tensor, idx, v, "f32" if tensor.endswith("norm.weight") else mat)
        gguf_case(name, g, F, [tensor])
    g = base_gguf(mat="q8_0", n_embd=32, n_ff=64)
    t = g.tensor("blk.0.ffn_up.weight")
    t["data"] = np.float16(np.nan).tobytes() + t["data"][2:]   # the scale of block 0
    gguf_case("nan-scale-in-q8_0-block", g, F + "|" + U, ["weight"])  # E_UNSUPPORTED while q8_0 is off
    g = base_gguf(mat="q8_0", n_embd=32, n_ff=64)
    t = g.tensor("token_embd.weight")
    t["data"] = t["data"][:34 * 5] + np.float16(np.inf).tobytes() + t["data"][34 * 5 + 2:]
    gguf_case("inf-scale-in-q8_0-embedding", g, F + "|" + U, ["token_embd.weight"])

    # --- bad UTF-8 ------------------------------------------------------------------------------------
    g = base_gguf()
    g.set(b"general.\xff\xfename", T_STR, "x")
    gguf_case("key-invalid-utf8", g, F, ["UTF-8"])
    g = base_gguf()
    g.set("general.architecture", T_STR, b"ll\xc3ama")
    gguf_case("architecture-invalid-utf8", g, F + "|" + U, ["architecture"])
    g = base_gguf()
    v = make_model.byte_vocab()
    tokens = [t.encode() for t in v["tokens"]]
    tokens[3] = b"\xe2\x96"   # a truncated character as a piece
    g.set("tokenizer.ggml.tokens", T_ARR, None, arr(T_STR, tokens))
    gguf_case("token-piece-invalid-utf8", g, F + "|" + OK)  # llama.cpp accepts; decoding must stay safe
    g = base_gguf()
    g.set("general.name", T_STR, b"name \xed\xa0\x80 surrogate")
    gguf_case("name-invalid-utf8", g, F + "|" + OK)
    g = base_gguf()
    g.tensor("blk.0.ffn_up.weight")["name"] = b"blk.0.ffn_up.weigh\xff"
    gguf_case("tensor-name-invalid-utf8", g, F)

    # --- hyper-parameters out of range or of the wrong type ------------------------------------------
    for name, key, t, v in [
            ("block-count-negative", "llama.block_count", T_I32, -1),
            ("embedding-length-2^40", "llama.embedding_length", T_U64, 1 << 40),
            ("head-count-zero", "llama.attention.head_count", T_U32, 0),
            ("head-count-kv-zero", "llama.attention.head_count_kv", T_U32, 0),
            ("head-count-kv-above-heads", "llama.attention.head_count_kv", T_U32, 4),
            ("context-length-zero", "llama.context_length", T_U32, 0),
            ("context-length-2^31", "llama.context_length", T_U32, 1 << 31),
            ("context-length-negative", "llama.context_length", T_I64, -64),
            ("feed-forward-length-zero", "llama.feed_forward_length", T_U32, 0),
            ("rope-freq-base-nan", "llama.rope.freq_base", T_F32, float("nan")),
            ("rope-freq-base-negative", "llama.rope.freq_base", T_F32, -10000.0),
            ("rope-freq-base-zero", "llama.rope.freq_base", T_F32, 0.0),
            ("rope-freq-base-inf", "llama.rope.freq_base", T_F64, float("inf")),
            ("rms-eps-nan", "llama.attention.layer_norm_rms_epsilon", T_F32, float("nan")),
            ("rms-eps-negative", "llama.attention.layer_norm_rms_epsilon", T_F32, -1e-5),
            ("rms-eps-inf", "llama.attention.layer_norm_rms_epsilon", T_F32, float("inf")),
            ("heads-do-not-divide-embedding", "llama.attention.head_count", T_U32, 3)]:
        g = base_gguf()
        g.set(key, t, v)
        gguf_case(name, g, F, [key])
    for name, factor in [("linear-scaling-factor-zero", 0.0), ("linear-scaling-factor-nan", float("nan")),
                         ("linear-scaling-factor-negative", -2.0)]:
        g = base_gguf()
        g.set("llama.rope.scaling.type", T_STR, "linear")
        g.set("llama.rope.scaling.factor", T_F32, factor)
        gguf_case(name, g, F, ["llama.rope.scaling.factor"])

    # --- tensors that contradict the hyper-parameters or each other -----------------------------------
    g = base_gguf()
    g.tensor("output.weight")["ne"] = [16, 200]
    g.tensor("output.weight")["data"] = g.tensor("output.weight")["data"][:16 * 200 * 4]
    gguf_case("output-rows-not-vocab", g, F, ["output.weight"])
    g = base_gguf()
    t = g.tensor("blk.0.attn_k.weight")
    t["type"], t["data"] = GGML_I32, t["data"]
    gguf_case("weight-of-type-i32", g, U, ["blk.0.attn_k.weight"])
    g = base_gguf()
    g.tensors = []
    gguf_case("metadata-only-as-model", g, F, ["tensors"])
    g = base_gguf(vocab=False)
    gguf_case("no-tokenizer-as-tokenizer", g, F, ["tokenizer"], kind="tok")

    # --- vocabulary inconsistent with itself or with the model ----------------------------------------
    v = make_model.byte_vocab()
    for name, key, t, raw, needle in [

            ("token-types-shorter", "tokenizer.ggml.token_type", T_ARR, arr(T_I32, v["types"][:-3]), "token_type"),
            ("scores-as-strings", "tokenizer.ggml.scores", T_ARR, arr(T_STR, ["0"] * len(v["tokens"])), "scores"),
            ("tokens-as-integers", "tokenizer.ggml.tokens", T_ARR, arr(T_I32, list(range(len(v["tokens"])))),
             "tokens"),
            ("tokens-empty", "tokenizer.ggml.tokens", T_ARR, arr(T_STR, []), "tokens"),
            ]:
        g = base_gguf()
        g.set(key, t, None, raw)
        gguf_case(name, g, F, [needle])
    # ids the vocabulary does not have: refused, or ignored (then BOS/EOS are simply absent)
    for name, key, value in [("bos-id-out-of-range", "tokenizer.ggml.bos_token_id", 1000),
                             ("eos-id-2^32-1", "tokenizer.ggml.eos_token_id", 0xFFFFFFFF)]:
        g = base_gguf()
        g.set(key, T_U32, value)
        gguf_case(name, g, F + "|" + OK)
    g = base_gguf()
    g.set("tokenizer.ggml.token_type", T_ARR, None, arr(T_I32, v["types"][:-1] + [99]))
    gguf_case("token-type-99", g, F + "|" + OK)
    g = base_gguf()
    g.set("tokenizer.ggml.tokens", T_ARR, None, arr(T_STR, v["tokens"] + ["extra1", "extra2"]))
    g.set("tokenizer.ggml.scores", T_ARR, None, arr(T_F32, v["scores"] + [0.0, 0.0]))
    g.set("tokenizer.ggml.token_type", T_ARR, None, arr(T_I32, v["types"] + [1, 1]))
    gguf_case("vocabulary-larger-than-embedding", g, F, ["token_embd.weight"])
    g = base_gguf()
    g.set("tokenizer.ggml.model", T_STR, "gpt2")
    g.set("tokenizer.ggml.pre", T_STR, "llama-bpe")
    gguf_case("gpt2-without-merges", g, F, ["merges"])
    for name, merges in [("gpt2-merge-without-space", ["ab"]), ("gpt2-merge-unknown-token", ["<0x41> zzz"]),
                         ("gpt2-merge-result-unknown", ["<0x41> <0x42>"])]:
        g = base_gguf()
        g.set("tokenizer.ggml.model", T_STR, "gpt2")
        g.set("tokenizer.ggml.pre", T_STR, "llama-bpe")
        g.set("tokenizer.ggml.merges", T_ARR, None, arr(T_STR, merges))
        gguf_case(name, g, F, ["merges"])

    # --- unusual but valid layouts -------------------------------------------------------------------
    g = base_gguf()
    g.set("general.alignment", T_U32, 1)
    g.alignment = 1
    g.tensors.insert(0, {"name": b"x.odd", "ne": [3], "type": GGML_F16, "data": b"\0" * 6})  # shifts all by 6
    gguf_case("alignment-1-unaligned-data-with-extra-tensor", g, U + "|" + OK)
    g = base_gguf()
    g.set("general.alignment", T_U32, 2)
    g.alignment = 2
    gguf_case("alignment-2-packed", g, OK)
    g = base_gguf()
    g.reverse_data = True
    gguf_case("data-in-reverse-order", g, OK)
    g = base_gguf()
    g.gap = 64
    gguf_case("holes-between-tensors", g, OK)
    fifo = os.path.join(OUT, "gguf", "fifo.gguf")
    os.mkfifo(fifo)
    case("gguf-path-is-a-fifo", "model", "gguf/fifo.gguf", "E_IO|E_FORMAT", ["fifo.gguf"])
    case("tok-path-is-a-fifo", "tok", "gguf/fifo.gguf", "E_IO|E_FORMAT", ["fifo.gguf"])
    g = base_gguf(tied=True, mat="bf16")
    g.set("general.name", T_STR, "")
    gguf_case("tied-bf16-empty-name", g, OK)


# =====================================================================================================
# Hugging Face directories
# =====================================================================================================
HF_CFG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
          "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
          "vocab_size": 24, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
          "hidden_act": "silu", "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
          "torch_dtype": "float32"}


def hf_weights(cfg, seed=2):
    rng = np.random.default_rng(seed)
    d, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = d // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    m = lambda r, c: (rng.standard_normal((r, c)) / np.sqrt(c)).astype(np.float32)  # noqa: E731
    w = {"model.embed_tokens.weight": m(v, d), "model.norm.weight": np.ones(d, np.float32),
         "lm_head.weight": m(v, d)}
    p = "model.layers.0."
    w.update({p + "input_layernorm.weight": np.ones(d, np.float32), p + "self_attn.q_proj.weight": m(q, d),
              p + "self_attn.k_proj.weight": m(kv, d), p + "self_attn.v_proj.weight": m(kv, d),
              p + "self_attn.o_proj.weight": m(d, q), p + "post_attention_layernorm.weight": np.ones(d, np.float32),
              p + "mlp.gate_proj.weight": m(ff, d), p + "mlp.up_proj.weight": m(ff, d),
              p + "mlp.down_proj.weight": m(d, ff)})
    return w


def st_bytes(tensors, dtype="F32", header_edit=None, raw_header=None, header_len=None, pad=0):
    """safetensors bytes; header_edit(header) may change the JSON object before it is written."""
    header, blobs, off = {}, [], 0
    for name, x in tensors.items():
        dt = dtype if isinstance(dtype, str) else dtype.get(name, "F32")
        b = safetensors_np.encode(x, dt).tobytes()
        header[name] = {"dtype": dt, "shape": list(x.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    if header_edit:
        header_edit(header)
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    h += b" " * (pad + (-(len(h) + pad)) % 8)   # the format allows trailing spaces
    n = len(h) if header_len is None else header_len
    return struct.pack("<Q", n) + h + b"".join(blobs)


def hf_dir(name, expected, needles=(), cfg_edit=None, config_raw=None, weights=None, st=None, extra=None):
    rel = f"hf/{name}"
    d = os.path.join(OUT, rel)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cfg = dict(HF_CFG)
    if cfg_edit:
        cfg_edit(cfg)
    write(rel + "/config.json", config_raw if config_raw is not None else json.dumps(cfg))
    if st is None:
        st = st_bytes(weights or hf_weights(HF_CFG))
    if st is not False:
        write(rel + "/model.safetensors", st)
    if extra:
        extra(d)
    case("hf-" + name, "model", rel, expected, needles)


def setk(**kv):
    def edit(cfg):
        for k, v in kv.items():
            cfg[k] = v
    return edit


def hf_cases():
    F, U, OK, IO = "E_FORMAT", "E_UNSUPPORTED", "OK", "E_IO"
    hf_dir("control", OK)
    W = "model.safetensors"

    # --- non-finite weights --------------------------------------------------------------------------
    for name, tensor, dtype, v in [("nan-in-embedding-f32", "model.embed_tokens.weight", "F32", np.nan),
                                   ("inf-in-norm-f16", "model.norm.weight", "F16", np.inf),
                                   ("nan-in-q-proj-bf16", "model.layers.0.self_attn.q_proj.weight", "BF16", np.nan),
                                   ("neg-inf-in-lm-head-f32", "lm_head.weight", "F32", -np.inf)]:
        w = hf_weights(HF_CFG)
        w[tensor].flat[7 % w[tensor].size] = v
        hf_dir(name, F, [tensor], st=st_bytes(w, dtype))

    # --- safetensors headers --------------------------------------------------------------------------
    w = hf_weights(HF_CFG)
    hf_dir("header-length-zero", F, [W], st=st_bytes(w, header_len=0))
    hf_dir("header-length-2^64-1", F, [W], st=st_bytes(w, header_len=2**64 - 1))
    hf_dir("header-length-7", F, [W], st=st_bytes(w, header_len=7))
    hf_dir("header-is-an-array", F, [W], st=st_bytes(w, raw_header=b"[1, 2, 3]"))
    hf_dir("header-invalid-utf8-name", F, [W], st=st_bytes(
        w, raw_header=json.dumps({}).encode()[:-1] + b'"bad\xff\xfe": {"dtype": "F32", "shape": [1], '
                                                          b'"data_offsets": [0, 4]}}'))
    hf_dir("header-nested-100000-deep", F, [W], st=st_bytes(w, raw_header=b'{"x": ' + b"[" * 100000 +
                                                                           b"]" * 100000 + b"}"))
    hf_dir("header-padded-with-spaces", OK, st=st_bytes(w, pad=64))
    L = "model.layers.0.mlp.up_proj.weight"

    def edit_tensor(field, value, name=L):
        def fn(h):
            if value is None:
                del h[name][field]
            else:
                h[name][field] = value
        return fn
    for name, field, value in [("dtype-missing", "dtype", None), ("shape-negative", "shape", [-32, 16]),
                               ("shape-float", "shape", [32.5, 16]), ("shape-2^63", "shape", [2**63, 16]),
                               ("shape-not-a-list", "shape", "32x16"), ("offsets-reversed", "data_offsets", "rev"),
                               ("offsets-as-strings", "data_offsets", ["0", "2048"]),
                               ("offsets-three-numbers", "data_offsets", [0, 1024, 2048]),
                               ("offsets-1e30", "data_offsets", [0, 1e30]),
                               ("offsets-negative", "data_offsets", [-8, 2040]),
                               ("shape-with-zero", "shape", [0, 16])]:
        def fn(h, field=field, value=value):
            if value == "rev":
                b, e = h[L]["data_offsets"]
                h[L]["data_offsets"] = [e, b]
            else:
                edit_tensor(field, value)(h)
        hf_dir(name, F, [L], st=st_bytes(w, header_edit=fn))
    hf_dir("dtype-unknown-name", F + "|" + U, [L], st=st_bytes(w, header_edit=edit_tensor("dtype", "Q4")))
    hf_dir("dtype-f8-e4m3", U + "|" + F, [L], st=st_bytes(w, header_edit=edit_tensor("dtype", "F8_E4M3")))
    hf_dir("metadata-not-strings", F + "|" + OK, st=st_bytes(w, header_edit=lambda h: h.update(
        {"__metadata__": {"format": 5}})))
    hf_dir("empty-header-object", F, ["model.embed_tokens.weight"], st=st_bytes({}))
    w2 = dict(w)
    w2["model.layers.0.self_attn.q_proj.bias"] = np.zeros(16, np.float32)
    hf_dir("unexpected-bias", U, ["model.layers.0.self_attn.q_proj.bias"], st=st_bytes(w2))

    # --- config.json ------------------------------------------------------------------------------------
    C = "config.json"
    hf_dir("config-empty-file", F, [C], config_raw="")
    hf_dir("config-null", F, [C], config_raw="null")
    hf_dir("config-nested-100000-deep", F, [C], config_raw='{"x": ' + "[" * 100000 + "]" * 100000 + "}")
    hf_dir("config-nan-literal", F, [C], config_raw=json.dumps(HF_CFG).replace("10000.0", "NaN"))
    for name, key, value in [("hidden-size-string", "hidden_size", "16"), ("hidden-size-fraction", "hidden_size", 16.5),
                             ("hidden-size-1e400", "hidden_size", "1e400"), ("layers-2^31", "num_hidden_layers", 2**31),
                             ("vocab-size-zero", "vocab_size", 0), ("rope-theta-zero", "rope_theta", 0),
                             ("rope-theta-negative", "rope_theta", -1.0),
                             ("max-position-zero", "max_position_embeddings", 0),
                             ("max-position-negative", "max_position_embeddings", -5),
                             ("head-dim-zero", "head_dim", 0), ("kv-heads-zero", "num_key_value_heads", 0),
                             ("heads-negative", "num_attention_heads", -2),
                             ("tie-embeddings-string", "tie_word_embeddings", "yes"),
                             ("rms-eps-string", "rms_norm_eps", "1e-5"),
                             ("rope-scaling-string", "rope_scaling", "llama3")]:
        if value == "1e400":
            hf_dir(name, F, [key], config_raw=json.dumps(HF_CFG).replace('"hidden_size": 16', '"hidden_size": 1e400'))
        else:
            hf_dir(name, F, [key], cfg_edit=setk(**{key: value}))
    hf_dir("head-dim-odd", F + "|" + U, ["head_dim"], cfg_edit=setk(head_dim=7))
    hf_dir("hidden-act-gelu", U, ["gelu"], cfg_edit=setk(hidden_act="gelu"))
    hf_dir("architectures-empty", F + "|" + U + "|" + OK, cfg_edit=setk(architectures=[]))  # model_type decides
    for name, scaling, needle in [("rope-factor-zero", {"rope_type": "linear", "factor": 0.0}, "factor"),
                          ("rope-factor-negative", {"rope_type": "linear", "factor": -4.0}, "factor"),
                          ("llama3-low-equals-high", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
                                                      "high_freq_factor": 4.0,
                                                      "original_max_position_embeddings": 32}, "freq_factor"),
                          ("llama3-low-above-high", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
                                                     "high_freq_factor": 1.0,
                                                     "original_max_position_embeddings": 32}, "freq_factor"),
                          ("llama3-orig-ctx-zero", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 0},
                           "original_max_position_embeddings")]:
        hf_dir(name, F, [needle], cfg_edit=setk(rope_scaling=scaling))
    hf_dir("generation-config-eos-list-out-of-range", F + "|" + OK, [],
           extra=lambda d: open(os.path.join(d, "generation_config.json"), "w").write('{"eos_token_id": [2, 99]}'))
    hf_dir("config-is-a-directory", IO + "|" + F, [C], config_raw="{}",
           extra=lambda d: (os.remove(os.path.join(d, C)), os.mkdir(os.path.join(d, C))))

    # --- index files and special files ---------------------------------------------------------------
    def index(weight_map):
        def extra(d):
            os.replace(os.path.join(d, W), os.path.join(d, "model-00001-of-00001.safetensors"))
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {}, "weight_map": weight_map}, f)
        return extra
    names = list(hf_weights(HF_CFG))
    shard = "model-00001-of-00001.safetensors"
    hf_dir("index-control", OK, extra=index({n: shard for n in names}))
    hf_dir("index-absolute-path", F, ["model directory"], extra=index({n: "/etc/passwd" for n in names}))
    hf_dir("index-weight-map-not-object", F, ["weight_map"], extra=index([shard]))
    hf_dir("index-shard-is-dot", F + "|" + IO, extra=index({n: "." for n in names}))

    def link_weights_to(target):
        def extra(d):
            os.remove(os.path.join(d, W))
            os.symlink(target, os.path.join(d, W))
        return extra
    hf_dir("weights-link-to-dev-null", F + "|" + IO, [W], extra=link_weights_to("/dev/null"))
    hf_dir("weights-link-to-dev-zero", F + "|" + IO, [W], extra=link_weights_to("/dev/zero"))
    hf_dir("weights-link-to-itself", IO + "|" + F, [W], extra=link_weights_to(W))

    def link_file_to(name, target):
        def extra(d):
            p = os.path.join(d, name)
            if os.path.lexists(p):
                os.remove(p)
            os.symlink(target, p)
        return extra
    # an endless character device as a small JSON file must not be read forever
    hf_dir("config-link-to-dev-zero", F + "|" + IO, [C], extra=link_file_to(C, "/dev/zero"))
    hf_dir("config-link-to-dev-urandom", F + "|" + IO, [C], extra=link_file_to(C, "/dev/urandom"))
    hf_dir("generation-config-link-to-dev-zero", F + "|" + IO, ["generation_config.json"],
           extra=link_file_to("generation_config.json", "/dev/zero"))
    hf_dir("tokenizer-json-link-to-dev-zero", F + "|" + IO, ["tokenizer.json"],
           extra=link_file_to("tokenizer.json", "/dev/zero"))
    hf_dir("tokenizer-config-link-to-dev-urandom", F + "|" + IO + "|" + OK,
           extra=lambda d: (write(os.path.relpath(os.path.join(d, "tokenizer.json"), OUT),
                                  json.dumps(bpe_json())), link_file_to("tokenizer_config.json", "/dev/urandom")(d)))
    hf_dir("weights-is-a-directory", IO + "|" + F, [W], extra=lambda d: (os.remove(os.path.join(d, W)),
                                                                         os.mkdir(os.path.join(d, W))))
    hf_dir("weights-is-a-fifo", IO + "|" + F, [W], extra=lambda d: (os.remove(os.path.join(d, W)),
                                                                    os.mkfifo(os.path.join(d, W))))


# =====================================================================================================
# SentencePiece .model (protobuf)
# =====================================================================================================
def pb_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_key(field, wire):
    return pb_varint(field << 3 | wire)


def pb_bytes(field, data):
    return pb_key(field, 2) + pb_varint(len(data)) + data


def pb_piece(piece, score=0.0, ptype=1):
    body = pb_bytes(1, piece if isinstance(piece, bytes) else piece.encode()) + pb_key(2, 5) + struct.pack("<f", score)
    if ptype != 1:
        body += pb_key(3, 0) + pb_varint(ptype)
    return pb_bytes(1, body)


def spm_model(pieces=None, model_type=2, byte_fallback=True, normalizer=None, extra=b""):
    """ModelProto: pieces (field 1), trainer_spec (2: model_type = field 3, byte_fallback = field 35),
    normalizer_spec (3: name = 1, precompiled_charsmap = 2, add_dummy_prefix = 3)."""
    if pieces is None:
        pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
        pieces += [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
        pieces += [("\u2581", -1.0, 1), ("a", -2.0, 1), ("b", -3.0, 1), ("\u2581a", -4.0, 1), ("ab", -5.0, 1)]
    out = b"".join(pb_piece(*p) for p in pieces)
    trainer = pb_key(3, 0) + pb_varint(model_type)
    if byte_fallback:
        trainer += pb_key(35, 0) + pb_varint(1)
    out += pb_bytes(2, trainer)
    out += pb_bytes(3, normalizer if normalizer is not None else pb_bytes(1, b"identity") + pb_key(3, 0) + b"\x01")
    return out + extra


def spm_cases():
    F, U, OK = "E_FORMAT", "E_UNSUPPORTED", "OK"

    def tok(name, data, expected, needles=()):
        case("spm-" + name, "tok", write(f"spm/{name}.model", data), expected, needles)
    tok("control-bpe", spm_model(), OK)
    tok("control-unigram", spm_model(model_type=1), OK)
    good = spm_model()
    tok("truncated-in-first-piece", good[:7], F)
    tok("truncated-in-trainer-spec", good[:len(good) - 12], F)
    tok("length-beyond-file", pb_key(1, 2) + pb_varint(1 << 30) + b"x", F)
    tok("wire-type-7", good + bytes([0x0F]), F)
    tok("wire-type-6", bytes([0x0E]) + good, F)
    tok("varint-11-bytes", good + pb_key(9, 0) + b"\xff" * 10 + b"\x01", F)
    tok("group-start", good + pb_key(20, 3), F)
    std = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)] + [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    # sentencepiece itself loads these three (proto2 reads an unknown enum value as the default)
    tok("piece-invalid-utf8", spm_model(std + [(b"\xe2\x96", -1.0, 1), ("a", -2.0, 1)]), F + "|" + OK)
    tok("piece-empty", spm_model(std + [("", -1.0, 1), ("a", -2.0, 1)]), F)
    tok("no-pieces", spm_model([]), F)
    tok("piece-type-99", spm_model(std + [("a", -1.0, 99)]), F + "|" + OK)
    tok("piece-type-0", spm_model(std + [("a", -1.0, 0)]), F + "|" + OK)
    tok("duplicate-piece", spm_model(std + [("a", -1.0, 1), ("b", -2.0, 1), ("a", -3.0, 1)]), F, ["a"])
    tok("two-unknown-pieces", spm_model(std + [("<unk2>", 0.0, 2), ("a", -1.0, 1)]), F)
    tok("byte-fallback-without-bytes", spm_model([("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3),
                                                  ("a", -1.0, 1)]), F, ["byte"])
    tok("byte-piece-twice", spm_model(std + [("<0x41>", 0.0, 6), ("a", -1.0, 1)]), F)
    tok("byte-piece-malformed-name", spm_model(std[:-1] + [("<0xZZ>", 0.0, 6), ("a", -1.0, 1)]), F)
    tok("model-type-99", spm_model(model_type=99), U + "|" + F + "|" + OK)
    tok("model-type-char", spm_model(model_type=4), U)
    tok("score-nan", spm_model(std + [("\u2581", float("nan"), 1), ("a", -2.0, 1)]), F + "|" + OK)
    tok("score-inf", spm_model(std + [("\u2581", float("inf"), 1), ("a", -2.0, 1)]), F + "|" + OK)
    tok("charsmap-truncated", spm_model(normalizer=pb_bytes(1, b"nmt_nfkc") + pb_bytes(2, b"\x10\x00\x00")), F,
        ["charsmap"])
    tok("charsmap-trie-size-huge", spm_model(normalizer=pb_bytes(1, b"nmt_nfkc") +
                                             pb_bytes(2, struct.pack("<I", 0xFFFFFFF0) + b"\0" * 16)), F,
        ["charsmap"])
    tok("charsmap-unterminated-string", spm_model(normalizer=pb_bytes(1, b"nmt_nfkc") + pb_bytes(
        2, struct.pack("<I", 4) + struct.pack("<I", 0x000100FF) + b"abc")), F + "|" + OK)
    tok("nested-length-beyond-parent", pb_bytes(1, pb_key(1, 2) + pb_varint(200) + b"ab"), F)
    tok("zero-bytes", b"\0" * 64, F)
    tok("all-ff", b"\xff" * 64, F)


# =====================================================================================================
# tokenizer.json
# =====================================================================================================
def bpe_json(vocab=None, merges=None, **top):
    vocab = vocab if vocab is not None else {"<unk>": 0, "<s>": 1, "a": 2, "b": 3, "ab": 4, "\u2581": 5,
                                             "\u2581a": 6}
    j = {"version": "1.0", "added_tokens": [{"id": 1, "content": "<s>", "special": True}], "normalizer": None,
         "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
         "post_processor": None, "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first"},
         "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": False,
                   "vocab": vocab, "merges": merges if merges is not None else ["a b", "\u2581 a"]}}
    for k, v in top.items():
        if k.startswith("model_"):
            j["model"][k[6:]] = v
        else:
            j[k] = v
    return j


def json_cases():
    F, U, OK = "E_FORMAT", "E_UNSUPPORTED", "OK"

    def tok(name, content, expected, needles=(), config=None):
        rel = f"json/{name}/tokenizer.json"
        write(rel, content if isinstance(content, (bytes, str)) else json.dumps(content, ensure_ascii=False))
        if config is not None:
            write(f"json/{name}/tokenizer_config.json", config)
        case("json-" + name, "tok", rel, expected, needles)
    tok("control", bpe_json(), OK)
    tok("control-with-config", bpe_json(), OK, config=json.dumps({"bos_token": "<s>", "add_bos_token": True}))
    tok("model-unigram-list", bpe_json(model_type="Unigram"), U + "|" + F)
    tok("model-type-missing", {"model": {"vocab": {"a": 0}}}, F + "|" + U)
    tok("vocab-id-negative", bpe_json({"<unk>": 0, "a": -1, "b": 2}, []), F)
    tok("vocab-id-2^40", bpe_json({"<unk>": 0, "a": 2**40}, []), F)
    tok("vocab-id-fraction", bpe_json({"<unk>": 0, "a": 1.5}, []), F)
    tok("vocab-duplicate-ids", bpe_json({"<unk>": 0, "<s>": 1, "a": 2, "b": 2}, []), F + "|" + OK)
    tok("vocab-gap-in-ids", bpe_json({"<unk>": 0, "<s>": 1, "a": 2, "b": 7}, []), F + "|" + OK)
    tok("vocab-empty", bpe_json({}, []), F + "|" + OK)
    tok("vocab-is-a-list", bpe_json([["a", 0]], []), F + "|" + U)
    tok("vocab-key-empty", bpe_json({"<unk>": 0, "<s>": 1, "": 2}, []), F + "|" + OK)
    tok("vocab-key-invalid-utf8", json.dumps(bpe_json()).encode().replace(b'"ab"', b'"a\xffb"'), F)
    tok("merge-without-space", bpe_json(merges=["ab"]), F, ["merge"])
    tok("merge-three-parts", bpe_json(merges=["a b c"]), F, ["merge"])
    tok("merge-unknown-token", bpe_json(merges=["a zz"]), F, ["merge"])
    tok("merge-result-not-in-vocab", bpe_json(merges=["b a"]), F, ["merge"])
    tok("merge-as-number-pair", bpe_json(merges=[[2, 3]]), F)
    tok("added-token-content-empty", bpe_json(added_tokens=[{"id": 1, "content": "", "special": True}]),
        F + "|" + OK)
    tok("added-token-id-string", bpe_json(added_tokens=[{"id": "1", "content": "<s>", "special": True}]), F)
    tok("added-token-conflicts-with-vocab", bpe_json(added_tokens=[{"id": 2, "content": "<s>", "special": True}]),
        F + "|" + OK)
    bl = bytelevel_tokenizer("the cat and the hat and a bat", n_merges=6)
    tok("bytelevel-control", bl, OK)
    # a regex that does not compile: malformed, or a syntax beyond PCRE2 (the message names the regex)
    for name, regex, want in [("split-regex-invalid", "(a", F + "|" + U), ("split-regex-unbalanced-class", "[a-", F + "|" + U),
                              ("split-regex-backtracking", "(a+)+$", OK + "|" + F),
                              ("split-regex-lookbehind-unbounded", "(?<=a+)b", F + "|" + U + "|" + OK)]:
        j = json.loads(json.dumps(bl))
        j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {"Regex": regex}
        tok(name, j, want, ["regex"] if want.startswith(F) else ())
    tok("split-behavior-unknown", bpe_json(pre_tokenizer={"type": "Split", "pattern": {"String": " "},
                                                          "behavior": "Sideways", "invert": False}), F + "|" + U)
    tok("normalizer-unknown", bpe_json(normalizer={"type": "Uppercase"}), U)
    tok("pre-tokenizer-unknown", bpe_json(pre_tokenizer={"type": "Juman"}), U)
    tok("decoder-unknown", bpe_json(decoder={"type": "CTC"}), U)
    tok("replace-pattern-regex-invalid", bpe_json(normalizer={"type": "Replace", "pattern": {"Regex": "[z-a]"},
                                                              "content": "x"}), F)
    tok("metaspace-replacement-two-chars", bpe_json(pre_tokenizer={"type": "Metaspace", "replacement": "ab",
                                                                   "prepend_scheme": "first"}), F + "|" + U)
    tok("nested-100000-deep", '{"model": ' + "[" * 100000 + "]" * 100000 + "}", F)
    tok("truncated", json.dumps(bpe_json())[:200], F)
    tok("empty-object", "{}", F)
    tok("top-level-string", '"tokenizer"', F)
    tok("byte-fallback-without-byte-tokens", bpe_json(model_byte_fallback=True), F + "|" + OK)
    tok("config-invalid-json", bpe_json(), F, ["tokenizer_config.json"], config="{\"bos_token\": ")
    tok("config-bos-not-in-vocab", bpe_json(), F + "|" + OK, config=json.dumps({"bos_token": "<nope>",
                                                                               "add_bos_token": True}))
    tok("config-add-bos-string", bpe_json(), F + "|" + OK, config=json.dumps({"add_bos_token": "yes"}))


def main():
    global OUT
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    OUT = os.path.abspath(sys.argv[1])
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    gguf_cases()
    hf_cases()
    spm_cases()
    json_cases()
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        for c in CASES:
            f.write("\t".join(c) + "\n")
    print(f"{len(CASES)} cases in {OUT}")


if __name__ == "__main__":
    main()
