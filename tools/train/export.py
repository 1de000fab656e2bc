#!/usr/bin/python3
"""Step 4 of the bundled model: writes a checkpoint of train.py as a GGUF file (f16, tokenizer inside)
and, optionally, as a Hugging Face model directory.

    export.py RUN_DIR TOKENIZER.model --gguf examples/models/kjv-llama.gguf [--hf DIR] [--name kjv-llama]

RUN_DIR holds train.py's ckpt-N.npz and train_log.json. The GGUF file is written the way llama.cpp's
convert_hf_to_gguf.py writes a Llama, with the writer and conventions of tests/tools (gguf_writer.py,
make_model.py): llama.* hyper-parameters, tokenizer.ggml.* keys from the SentencePiece model,
tensor names token_embd / blk.N.attn_q ... / output_norm / output, matrices in f16 with ne = [in, out],
norm gains in f32, and the rows of attn_q and attn_k permuted within each head so that RoPE rotates
adjacent pairs (llama.cpp's pairing) where the network was trained with HF's rotate_half pairing.

--hf writes config.json, generation_config.json, model.safetensors (the same f16 matrices and f32
gains, unpermuted, HF names), tokenizer.model and tokenizer_config.json.
"""
import argparse
import glob
import json
import os
import shutil
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "tools"))
from gguf_writer import GGUF, stored_values  # noqa: E402
from make_hf_model import write_hf_dir  # noqa: E402
from make_model import build_writer, gguf_name, permute_qk, spm_vocab  # noqa: E402

DESCRIPTION = ("A small Llama trained on the King James Bible (public domain) for libtfm's examples and tests; "
               "see examples/models/MODEL_CARD.md")


def load_checkpoint(run_dir):
    with open(os.path.join(run_dir, "train_log.json")) as f:
        log = json.load(f)
    weights = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "ckpt-*.npz"))):
        with np.load(path) as z:
            weights.update({k: z[k].astype(np.float32) for k in z.files})
    if len(weights) == 0:
        sys.exit(f"export.py: no ckpt-N.npz in {run_dir}")
    return log, weights


def tensor_order(cfg):
    """HF names in the order llama.cpp's converter meets them."""
    names = ["model.embed_tokens.weight"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        names += [p + n for n in ("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                  "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                  "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                                  "mlp.down_proj.weight")]
    return names + ["model.norm.weight", "lm_head.weight"]


def stored_dtype(array):
    return "f32" if array.ndim == 1 else "f16"


def write_gguf(path, cfg, weights, spm_path, name, log):
    vocab = spm_vocab(spm_path)
    if len(vocab["tokens"]) != cfg["vocab_size"]:
        sys.exit(f"export.py: the tokenizer has {len(vocab['tokens'])} pieces, the model {cfg['vocab_size']}")
    w = build_writer(types.SimpleNamespace(name=name, dtype="f16"), cfg, vocab)
    w.add("general.description", DESCRIPTION)
    w.add("general.license", "MIT")
    w.add("general.source.url", "Debian package bible-kjv-text (King James Version, public domain)")
    w.add("general.parameter_count", int(sum(a.size for a in weights.values())), GGUF.UINT64)
    for hf in tensor_order(cfg):
        x = weights[hf]
        if hf.endswith("q_proj.weight"):
            x = permute_qk(x, cfg["num_attention_heads"])
        elif hf.endswith("k_proj.weight"):
            x = permute_qk(x, cfg["num_key_value_heads"])
        w.add_tensor(gguf_name(hf), x.shape, stored_dtype(x), (lambda v: lambda: v)(x))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    w.write(path)


def write_hf(out_dir, cfg, weights, spm_path):
    stored = {k: stored_values(v, stored_dtype(v)) for k, v in weights.items()}
    write_hf_dir(out_dir, dict(cfg), stored, dtype="F16", norm_dtype="F32")
    shutil.copyfile(spm_path, os.path.join(out_dir, "tokenizer.model"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
                   "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "legacy": True,
                   "model_max_length": cfg["max_position_embeddings"]}, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("tokenizer")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--hf", help="also write a Hugging Face model directory here")
    ap.add_argument("--name", default="kjv-llama")
    a = ap.parse_args()
    log, weights = load_checkpoint(a.run_dir)
    cfg = log["config"]
    missing = set(tensor_order(cfg)) - set(weights)
    if missing:
        sys.exit(f"export.py: the checkpoint lacks {sorted(missing)}")
    for k, v in weights.items():
        if v.ndim == 2 and np.abs(v).max() >= 65504:
            sys.exit(f"export.py: {k} holds values beyond the f16 range")
    write_gguf(a.gguf, cfg, weights, a.tokenizer, a.name, log)
    print(f"{a.gguf}: {os.path.getsize(a.gguf)} bytes")
    if a.hf:
        write_hf(a.hf, cfg, weights, a.tokenizer)
        print(f"{a.hf}: config.json, model.safetensors, tokenizer.model")


if __name__ == "__main__":
    main()
