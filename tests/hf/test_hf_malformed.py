"""Malformed Hugging Face directories through tfm_model_load: each gives the right status and a
message that names the problem (the file, the tensor, the key). Nothing may crash.

Each case copies a valid one-layer directory (single-file or 2 shards) and breaks one thing.
"""
import json
import os
import shutil
import struct
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import make_hf_model  # noqa: E402
import safetensors_np  # noqa: E402
import tfm_ctypes as tfm  # noqa: E402
from tfm_ctypes import TFM_E_FORMAT, TFM_E_INVALID_ARGUMENT, TFM_E_IO, TFM_E_UNSUPPORTED, TFM_OK  # noqa: E402

SHARD1, SHARD2 = make_hf_model.shard_names(2)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    single, sharded = str(root / "single"), str(root / "sharded")
    make_hf_model.make_hf_model(single, "llama3-gqa", "BF16", 1, seed=3, num_hidden_layers=1)
    make_hf_model.make_hf_model(sharded, "llama3-gqa", "F32", 2, seed=3, num_hidden_layers=1)
    return {"single": single, "sharded": sharded}


# ---- editing helpers -------------------------------------------------------------------------------
def edit_json(path, fn):
    with open(path) as f:
        obj = json.load(f)
    fn(obj)
    with open(path, "w") as f:
        json.dump(obj, f)


def edit_config(d, **changes):
    def apply(cfg):
        for k, v in changes.items():
            if v is DELETE:
                cfg.pop(k, None)
            else:
                cfg[k] = v
    edit_json(os.path.join(d, "config.json"), apply)


DELETE = object()


def read_raw(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def write_raw(path, header, data, header_len=None):
    hb = safetensors_np.header_bytes(header)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb) if header_len is None else header_len))
        f.write(hb)
        f.write(data)


def edit_header(d, fname, fn):
    path = os.path.join(d, fname)
    header, data = read_raw(path)
    data = fn(header, data) or data
    write_raw(path, header, data)


# ---- the cases -------------------------------------------------------------------------------------
def remove(d, name):
    os.remove(os.path.join(d, name))


def write_text(d, name, text):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)


def drop_tensor(name):
    def fn(h, data):
        # rewrite the data without the tensor so that the file stays well-formed
        info = h.pop(name)
        b, e = info["data_offsets"]
        for t in h.values():
            if isinstance(t, dict) and "data_offsets" in t and t["data_offsets"][0] >= e:
                t["data_offsets"] = [t["data_offsets"][0] - (e - b), t["data_offsets"][1] - (e - b)]
        return data[:b] + data[e:]
    return fn


def set_field(name, key, value):
    def fn(h, data):
        h[name][key] = value
    return fn


def overlap(h, data):
    # the second tensor in data order starts 4 bytes early (into the first)
    entries = sorted((t["data_offsets"][0], k) for k, t in h.items() if k != "__metadata__")
    k = entries[1][1]
    b, e = h[k]["data_offsets"]
    h[k]["data_offsets"] = [b - 4, e - 4]


def hole(h, data):
    entries = sorted((t["data_offsets"][0], k) for k, t in h.items() if k != "__metadata__")
    for _, k in entries[1:]:
        b, e = h[k]["data_offsets"]
        h[k]["data_offsets"] = [b + 16, e + 16]
    first_end = h[entries[0][1]]["data_offsets"][1]
    return data[:first_end] + b"\0" * 16 + data[first_end:]


def as_f64(name):
    def fn(h, data):
        import numpy as np
        b, e = h[name]["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype="<u2")
        f64 = safetensors_np.bf16_bits_to_f32(raw).astype("<f8").tobytes()
        shift = len(f64) - (e - b)
        for t in h.values():
            if "data_offsets" in t and t is not h[name] and t["data_offsets"][0] >= e:
                t["data_offsets"] = [t["data_offsets"][0] + shift, t["data_offsets"][1] + shift]
        h[name]["dtype"] = "F64"
        h[name]["data_offsets"] = [b, b + len(f64)]
        return data[:b] + f64 + data[e:]
    return fn


def truncate(d, fname, keep):
    path = os.path.join(d, fname)
    with open(path, "rb") as f:
        blob = f.read()
    with open(path, "wb") as f:
        f.write(blob[:keep] if keep >= 0 else blob[:keep])


def header_len_beyond(d):
    path = os.path.join(d, "model.safetensors")
    header, data = read_raw(path)
    write_raw(path, header, data, header_len=os.path.getsize(path) * 2)


def remap_index(tensor, shard):
    def fn(idx):
        idx["weight_map"][tensor] = shard
    return fn


def duplicate_across_shards(d):
    # copy one tensor of shard 2 into shard 1 as well
    h2, data2 = read_raw(os.path.join(d, SHARD2))
    name = next(k for k in h2 if k != "__metadata__")
    b, e = h2[name]["data_offsets"]
    h1, data1 = read_raw(os.path.join(d, SHARD1))
    h1[name] = dict(h2[name], data_offsets=[len(data1), len(data1) + e - b])
    write_raw(os.path.join(d, SHARD1), h1, data1 + data2[b:e])
    return name


L0 = "model.layers.0."
CASES = {
    # id: (base, action(dir), status, words the message must contain)
    "control": ("single", lambda d: None, TFM_OK, []),
    "control-sharded": ("sharded", lambda d: None, TFM_OK, []),
    "no-config": ("single", lambda d: remove(d, "config.json"), TFM_E_IO, ["config.json"]),
    "config-syntax": ("single", lambda d: write_text(d, "config.json", '{"hidden_size": 64,\n  "vocab_size": }'),
                      TFM_E_FORMAT, ["config.json", "line 2"]),
    "config-not-object": ("single", lambda d: write_text(d, "config.json", "[1, 2]"), TFM_E_FORMAT, ["config.json"]),
    "zero-hidden": ("single", lambda d: edit_config(d, hidden_size=0), TFM_E_FORMAT, ["hidden_size"]),
    "negative-layers": ("single", lambda d: edit_config(d, num_hidden_layers=-2), TFM_E_FORMAT, ["num_hidden_layers"]),
    "absurd-vocab": ("single", lambda d: edit_config(d, vocab_size=10**12), TFM_E_FORMAT, ["vocab_size"]),
    "missing-heads": ("single", lambda d: edit_config(d, num_attention_heads=DELETE), TFM_E_FORMAT,
                      ["num_attention_heads", "missing"]),
    "kv-not-dividing": ("single", lambda d: edit_config(d, num_key_value_heads=3), TFM_E_FORMAT,
                        ["num_key_value_heads"]),
    "heads-not-dividing-hidden": ("single", lambda d: edit_config(d, num_attention_heads=6, head_dim=DELETE),
                                  TFM_E_FORMAT, ["hidden_size", "num_attention_heads"]),
    "eps-negative": ("single", lambda d: edit_config(d, rms_norm_eps=-1e-5), TFM_E_FORMAT, ["rms_norm_eps"]),
    "architecture": ("single", lambda d: edit_config(d, architectures=["Qwen2ForCausalLM"]), TFM_E_UNSUPPORTED,
                     ["Qwen2ForCausalLM"]),
    "rope-yarn": ("single", lambda d: edit_config(d, rope_scaling={"rope_type": "yarn", "factor": 4.0}),
                  TFM_E_UNSUPPORTED, ["yarn"]),
    "llama3-missing-key": ("single", lambda d: edit_config(d, rope_scaling={"rope_type": "llama3", "factor": 8.0}),
                           TFM_E_FORMAT, ["low_freq_factor"]),
    "generation-config-syntax": ("single", lambda d: write_text(d, "generation_config.json", "{"), TFM_E_FORMAT,
                                 ["generation_config.json"]),
    "eos-outside-vocab": ("single", lambda d: write_text(d, "generation_config.json", '{"eos_token_id": 5000}'),
                          TFM_E_FORMAT, ["generation_config.json", "eos_token_id"]),
    "no-weights": ("single", lambda d: remove(d, "model.safetensors"), TFM_E_IO, ["model.safetensors"]),
    "pytorch-bin-only": ("single", lambda d: (remove(d, "model.safetensors"), write_text(d, "pytorch_model.bin", "x")),
                         TFM_E_UNSUPPORTED, ["pytorch_model.bin"]),
    "empty-file": ("single", lambda d: write_text(d, "model.safetensors", ""), TFM_E_FORMAT, ["model.safetensors"]),
    "header-length-beyond-file": ("single", header_len_beyond, TFM_E_FORMAT, ["header length", "beyond"]),
    "header-not-json": ("single", lambda d: edit_header(d, "model.safetensors",
                                                        lambda h, data: h.update({"x": float("nan")})),
                        TFM_E_FORMAT, ["model.safetensors", "JSON"]),
    "truncated-data": ("single", lambda d: truncate(d, "model.safetensors", -100), TFM_E_FORMAT,
                       ["model.safetensors", "beyond the data buffer"]),
    "overlapping-offsets": ("single", lambda d: edit_header(d, "model.safetensors", overlap), TFM_E_FORMAT,
                            ["overlaps"]),
    "hole-in-data": ("single", lambda d: edit_header(d, "model.safetensors", hole), TFM_E_FORMAT, ["hole"]),
    "bytes-vs-shape": ("single", lambda d: edit_header(d, "model.safetensors",
                                                       set_field(L0 + "mlp.up_proj.weight", "shape", [192, 32])),
                       TFM_E_FORMAT, [L0 + "mlp.up_proj.weight", "bytes"]),
    "wrong-shape": ("single", lambda d: edit_header(d, "model.safetensors",
                                                    set_field(L0 + "mlp.up_proj.weight", "shape", [64, 192])),
                    TFM_E_FORMAT, [L0 + "mlp.up_proj.weight", "[64, 192]", "expected [192, 64]"]),
    "missing-tensor": ("single", lambda d: edit_header(d, "model.safetensors", drop_tensor(L0 + "self_attn.k_proj.weight")),
                       TFM_E_FORMAT, [L0 + "self_attn.k_proj.weight", "missing"]),
    "missing-lm-head-ok": ("single", lambda d: edit_header(d, "model.safetensors", drop_tensor("lm_head.weight")),
                           TFM_OK, []),
    "unsupported-dtype": ("single", lambda d: edit_header(d, "model.safetensors", as_f64(L0 + "mlp.down_proj.weight")),
                          TFM_E_UNSUPPORTED, [L0 + "mlp.down_proj.weight", "F64"]),
    "missing-shard": ("sharded", lambda d: remove(d, SHARD2), TFM_E_IO, [SHARD2, "missing"]),
    "index-syntax": ("sharded", lambda d: write_text(d, "model.safetensors.index.json", '{"weight_map": '),
                     TFM_E_FORMAT, ["model.safetensors.index.json"]),
    "index-wrong-shard": ("sharded", lambda d: edit_json(os.path.join(d, "model.safetensors.index.json"),
                                                         remap_index("model.norm.weight", SHARD1)),
                          TFM_E_FORMAT, ["model.norm.weight", SHARD1]),
    "index-path-escape": ("sharded", lambda d: edit_json(os.path.join(d, "model.safetensors.index.json"),
                                                         remap_index("model.norm.weight", "../" + SHARD2)),
                          TFM_E_FORMAT, ["model.norm.weight", "model directory"]),
    "tensor-in-two-shards": ("sharded", duplicate_across_shards, TFM_E_FORMAT, ["both", SHARD1, SHARD2]),
    "missing-tensor-sharded": ("sharded", lambda d: edit_header(d, SHARD2, drop_tensor("model.norm.weight")),
                               TFM_E_FORMAT, ["model.norm.weight"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed(bases, tmp_path, case):
    base, action, want, words = CASES[case]
    d = str(tmp_path / "model")
    shutil.copytree(bases[base], d)
    action(d)
    st, msg = tfm.try_load(d)
    print(f"{case}: {tfm.STATUS_NAMES.get(st, st)}: {msg}")
    assert st == want, f"{case}: status {tfm.STATUS_NAMES.get(st, st)} ({msg}), want {tfm.STATUS_NAMES[want]}"
    for w in words:
        assert w in msg, f"{case}: message {msg!r} lacks {w!r}"


def test_not_a_directory_or_file(tmp_path):
    st, msg = tfm.try_load(str(tmp_path / "nothing-here"))
    assert st == TFM_E_IO and "nothing-here" in msg
    st, msg = tfm.try_load(str(tmp_path))  # an empty directory
    assert st == TFM_E_IO and "config.json" in msg
    assert tfm.try_load("")[0] == TFM_E_INVALID_ARGUMENT
