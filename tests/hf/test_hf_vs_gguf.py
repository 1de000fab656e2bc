"""The same model as a GGUF file and as a Hugging Face directory gives the same logits through libtfm.

make_model.py writes the GGUF file the way llama.cpp's converter does (Q/K rows permuted for
adjacent-pair RoPE, rope_freqs.weight for llama3 scaling, norms in f32) and dumps the HF-layout
weights it started from (--hf-npz, already rounded to the stored dtype). This test writes those
weights as a HF directory (make_hf_model.write_hf_dir, norms kept in f32 as in the GGUF) and checks
that libtfm's two readers and two RoPE pairings agree: logits of every position within 1e-5
(relative to max|logit|; only the rounding order of the rotations differs), greedy continuations
identical, and both within 1e-4 of the float64 PyTorch reference.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
sys.path.insert(0, HERE)
sys.path.insert(0, TOOLS)
import make_hf_model  # noqa: E402
import tfm_ctypes as tfm  # noqa: E402
from torch_reference import LlamaReference  # noqa: E402

SAME_TOL = 1e-5
REF_TOL = 1e-4
N_CTX = 128

# id: (make_model.py arguments, safetensors dtype of the matrices)
MODELS = {
    "mha-f32": (["--shape", "tiny", "--dtype", "f32"], "F32"),
    # head_dim 16 with theta 10000 puts two frequencies in llama3's smoothed band ...
    "mha-bf16-tied-llama3": (["--shape", "tiny", "--dtype", "bf16", "--tied", "--rope-llama3", "8,1,4,64",
                              "--seed", "5"], "BF16"),
    # ... head_dim 8 with theta 500000 puts none there (GGUF's rope_freqs.weight is then ambiguous)
    "gqa-f32-tied-llama3": (["--shape", "tiny-gqa", "--dtype", "f32", "--tied", "--rope-llama3", "8,1,4,64",
                             "--rope-theta", "500000", "--seed", "77"], "F32"),
    "gqa-f16": (["--shape", "tiny-gqa", "--dtype", "f16", "--seed", "9"], "F16"),
}


def load_npz(path):
    with np.load(path, allow_pickle=False) as z:
        cfg = json.loads(str(z["__config__"]))
        weights = {k: z[k].astype(np.float32) for k in z.files if k != "__config__"}
    return cfg, weights


@pytest.fixture(scope="module", params=list(MODELS))
def pair(request, tmp_path_factory):
    name = request.param
    args, dtype = MODELS[name]
    root = tmp_path_factory.mktemp(name)
    gguf, npz, hf = str(root / "model.gguf"), str(root / "model.npz"), str(root / "hf")
    subprocess.run([sys.executable, os.path.join(TOOLS, "make_model.py"), gguf, "--hf-npz", npz] + args,
                   check=True)
    cfg, weights = load_npz(npz)
    make_hf_model.write_hf_dir(hf, cfg, weights, dtype=dtype, shards=2, norm_dtype="F32")
    return name, gguf, hf, LlamaReference(cfg, weights)


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_same_logits(pair):
    name, gguf, hf, ref = pair
    n_vocab = ref.cfg["vocab_size"]
    rng = np.random.default_rng(11)
    for n in (1, 8, 60):
        ids = [1] + [int(t) for t in rng.integers(3, n_vocab, n - 1)]
        a = tfm.logits(gguf, ids, N_CTX)
        b = tfm.logits(hf, ids, N_CTX)
        want = ref.logits(ids).numpy()
        same, err_g, err_h = rel(b, a), rel(a, want), rel(b, want)
        print(f"{name}: {n} tokens: hf vs gguf {same:.2e}, gguf vs ref {err_g:.2e}, hf vs ref {err_h:.2e}")
        assert same <= SAME_TOL, f"{name}, {n} tokens: HF and GGUF logits differ by {same:.3g}"
        assert err_g <= REF_TOL and err_h <= REF_TOL


def test_same_greedy(pair):
    name, gguf, hf, ref = pair
    ids = [1, 50, 60, 70, 80]
    a = tfm.greedy(gguf, ids, 16, N_CTX)
    b = tfm.greedy(hf, ids, 16, N_CTX)
    assert a == b, f"{name}: greedy differs:\n gguf {a}\n hf   {b}"


def test_same_info(pair):
    _, gguf, hf, _ = pair
    with tfm.Model(gguf) as g, tfm.Model(hf) as h:
        a, b = g.info(), h.info()
    for field in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff", "n_ctx_train",
                  "rope_theta", "rms_eps", "tied_embeddings", "n_params", "weight_dtype"):
        assert getattr(a, field) == getattr(b, field), field
    assert (a.format, b.format) == ("gguf", "safetensors")
