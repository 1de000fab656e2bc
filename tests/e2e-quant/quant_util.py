"""Shared pieces of the quant suite: its test models, on top of the e2e suite's helpers (e2e_util:
model generation, the tfm program, comparisons) and its llama.cpp oracle driver.

Every model has the tiny-k shape (dim 256, ffn 512: every matrix row is whole 256-value K-quant
super-blocks, so no tensor falls back to another type) and the e2e suite's 1000-piece KJV vocabulary.
NAME-deq is the same model written in f32 holding the values NAME's blocks decode to.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import e2e_util as u  # noqa: E402
from test_llama_conformance import ask_oracle, oracle_available  # noqa: E402,F401

TYPES = ["q8_0", "q4_0", "q4_k", "q5_k", "q6_k"]

_SHAPE = ["--shape", "tiny-k"]
# Full models (every matrix quantised). Some tie the LM head to token_embd, so the quantised table is
# both the embedding lookup and the last matrix product.
FULL = {
    "q8_0": ["--dtype", "q8_0"],
    "q4_0-tied": ["--dtype", "q4_0", "--tied", "--seed", "41"],
    "q4_k": ["--dtype", "q4_k"],
    "q5_k-tied": ["--dtype", "q5_k", "--tied", "--seed", "42"],
    "q6_k": ["--dtype", "q6_k"],
    "q4_k_m": ["--dtype", "q4_k_m"],
    "q4_k_m-tied": ["--dtype", "q4_k_m", "--tied", "--seed", "43"],
}
# Embedding-only models: token_embd in the type, everything else f32 (untied). The lookup decodes the
# blocks exactly and nothing else is quantised, so these compare dequantisation alone.
EMBD = {f"embd-{t}": ["--dtype", "f32", "--tensor-type", rf"^token_embd\.weight$={t}"] for t in TYPES}
# The f32 model llama-quantize starts from (same weights as the untied full models).
SOURCE = {"f32": ["--dtype", "f32"]}

for name, args in list(FULL.items()) + list(EMBD.items()) + list(SOURCE.items()):
    u.MODELS["quant-" + name] = _SHAPE + args
    if name != "f32":
        u.MODELS["quant-" + name + "-deq"] = _SHAPE + args + ["--dequantize"]
# the quantiser is a generator too: a change to it regenerates the models
if "quantize.py" not in u.GENERATORS:
    u.GENERATORS = u.GENERATORS + ("quantize.py",)


def model(name):
    """Path of test model `name` (a key of FULL, EMBD or SOURCE, optionally + "-deq"), made on demand."""
    return u.model_path("quant-" + name)


def tools_path(name):
    return os.path.join(u.tools_dir(), name)


def oracle_or_none():
    """The node program when node-llama-cpp is installed; None (said once) when it is not and CI is
    unset; with CI set, a missing oracle fails the test (oracle_available's rule)."""
    try:
        return oracle_available()
    except SystemExit as e:
        if e.code != u.SKIP:
            raise
        return None
