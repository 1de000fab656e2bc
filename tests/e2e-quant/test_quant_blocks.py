#!/usr/bin/python3
"""Our quantiser's blocks: what libtfm and llama.cpp decode them to, and llama-quantize's own blocks.

    test_quant_blocks.py TYPE      TYPE: q8_0 q4_0 q4_k q5_k q6_k, or q4_k_m (the mix)  (suite quant)

For a type (model embd-TYPE: token_embd in TYPE, every other tensor f32, untied):
  - libtfm's dequantisation, exactly: the embedding lookup decodes blocks with the portable
    dequantisers (every kernel table uses them) and nothing else in this model is quantised, so its
    logits must equal those of embd-TYPE-deq (the same model in f32 holding quantize.py's decoded
    values) to 1e-5 relative (f32 reordering only; measured: identical). Every vocabulary row is
    looked up, with the default kernels and with TFM_CPU_ISA=generic.
  - llama.cpp's dequantisation of the same blocks (node-llama-cpp 3.21.1): its get_rows also
    decodes exactly and the rest of the model is f32, so its next-token probabilities must equal
    libtfm's within 1e-5, the f32 tolerance of the e2e suite. Prompts cover every row.
  - when llama-quantize is available (LLAMA_QUANTIZE=path, or on PATH; CI has none): it quantises
    the f32 model with --pure TYPE, and every block must be byte-identical to quantize.py's.
For q4_k_m (llama-quantize only): its Q4_K_M file of the f32 model must hold the same type for every
tensor as make_model.py --dtype q4_k_m, and the same bytes.

Matrix products are not compared here: libtfm's kernels (and llama.cpp's) quantise the activations
too, see test_quant_llama.py.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quant_util as qu  # noqa: E402
from gguf_tensors import TYPE_NAMES, read_tensors  # noqa: E402

u = qu.u
EXACT_TOL = 1e-5      # relative, logits of the same f32 arithmetic
PROB_TOL = 1e-5       # absolute, probabilities against llama.cpp (as the e2e suite's f32 models)
N_CTX = 256
sys.path.insert(0, u.tools_dir())
import quantize  # noqa: E402


def vocabulary_prompts(n_vocab, bos):
    """Prompts (BOS + up to 200 ids) that together hold every id but BOS, in a shuffled order."""
    rng = np.random.default_rng(11)
    ids = [int(i) for i in rng.permutation(n_vocab) if i != bos]
    return [[bos] + ids[i:i + 200] for i in range(0, len(ids), 200)]


def check_libtfm_exact(t, name, prompts):
    worst = 0.0
    for isa in (None, "generic"):
        env_before = os.environ.pop("TFM_CPU_ISA", None)
        if isa:
            os.environ["TFM_CPU_ISA"] = isa
        try:
            for ids in prompts:
                a = u.tfm_logits(qu.model(name), ids)
                b = u.tfm_logits(qu.model(name + "-deq"), ids)
                err = u.rel_err(a, b)
                worst = max(worst, err)
                t.check(err <= EXACT_TOL, f"{name} ({isa or 'default'} kernels): logits differ from the f32 model "
                        f"holding the decoded values by {err:.3g} relative (> {EXACT_TOL})")
        finally:
            os.environ.pop("TFM_CPU_ISA", None)
            if env_before is not None:
                os.environ["TFM_CPU_ISA"] = env_before
    t.info(f"libtfm decodes {name}'s blocks as quantize.py does: logits max relative difference {worst:.3g}")


def check_llama_dequant(t, name, prompts, node):
    answer = qu.ask_oracle(node, qu.model(name), {"generate": [{"prompt": p, "n": 4} for p in prompts]})
    worst = 0.0
    for run in answer["generate"]:
        ids, tokens = run["prompt"], run["tokens"]
        p = u.softmax(u.tfm_logits(qu.model(name), ids + tokens[:-1])[len(ids) - 1:])
        d = float(np.abs(p - np.asarray(run["probs"])).max())
        worst = max(worst, d)
        t.check(d <= PROB_TOL, f"{name}: llama.cpp's probabilities differ from libtfm's by {d:.3g} (> {PROB_TOL})")
    t.info(f"llama.cpp decodes {name}'s blocks as libtfm does: max |Δp| {worst:.3g} over {len(prompts)} prompts")


def llama_quantize():
    path = os.environ.get("LLAMA_QUANTIZE") or shutil.which("llama-quantize")
    return path if path and os.access(path, os.X_OK) else None


def run_llama_quantize(tool, src, dst, qtype, pure):
    env = dict(os.environ)
    libdir = os.path.dirname(os.path.realpath(tool))  # a build tree keeps its libggml*.so beside the tool
    env["LD_LIBRARY_PATH"] = libdir + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    cmd = [tool] + (["--pure"] if pure else []) + [src, dst, qtype]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    if r.returncode != 0:
        u.fatal(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")


def check_llama_quantize_type(t, tool, dtype):
    src = read_tensors(qu.model("f32"))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "lq.gguf")
        run_llama_quantize(tool, qu.model("f32"), out, dtype.upper(), pure=True)
        theirs = read_tensors(out)
    _, _, size = quantize.TYPES[dtype]
    same = total = 0
    for name, tensor in sorted(theirs.items()):
        if len(tensor.ne) == 1:
            continue  # norms stay f32
        if not t.check(TYPE_NAMES.get(tensor.ggml_type) == dtype,
                       f"llama-quantize --pure {dtype}: {name} has type {tensor.ggml_type}"):
            continue
        ours = quantize.quantize(src[name].data.view("<f4"), dtype).reshape(-1, size)
        blocks = tensor.data.reshape(-1, size)
        equal = (ours == blocks).all(axis=1)
        same += int(equal.sum())
        total += len(equal)
        t.check(equal.all(), f"{dtype} {name}: {int((~equal).sum())} of {len(equal)} blocks differ from "
                f"llama-quantize's (first: block {int(np.argmin(equal))})")
    t.info(f"llama-quantize --pure {dtype}: {same}/{total} blocks byte-identical to quantize.py's")


def check_llama_quantize_mix(t, tool):
    ours = read_tensors(qu.model("q4_k_m"))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "lq.gguf")
        run_llama_quantize(tool, qu.model("f32"), out, "Q4_K_M", pure=False)
        theirs = read_tensors(out)
    t.check(sorted(ours) == sorted(theirs), "Q4_K_M: the two files hold different tensors")
    mix = {}
    for name in sorted(set(ours) & set(theirs)):
        a, b = ours[name], theirs[name]
        t.check(a.ggml_type == b.ggml_type, f"Q4_K_M {name}: make_model.py wrote {TYPE_NAMES.get(a.ggml_type)}, "
                f"llama-quantize {TYPE_NAMES.get(b.ggml_type, b.ggml_type)}")
        t.check(a.ggml_type != b.ggml_type or np.array_equal(a.data, b.data), f"Q4_K_M {name}: bytes differ")
        mix[TYPE_NAMES.get(b.ggml_type)] = mix.get(TYPE_NAMES.get(b.ggml_type), 0) + 1
    t.info(f"llama-quantize Q4_K_M: tensor types {mix}, each as make_model.py --dtype q4_k_m writes it")


def main():
    dtype = sys.argv[1]
    t = u.Checks(f"quant blocks {dtype}")
    tool = llama_quantize()
    if dtype == "q4_k_m":
        if not tool:
            u.skip("llama-quantize not found (set LLAMA_QUANTIZE); the Q4_K_M mix is compared with llama.cpp "
                   "through node-llama-cpp in test_quant_llama.py")
        check_llama_quantize_mix(t, tool)
        t.finish()
    if dtype not in qu.TYPES:
        u.fatal(f"unknown type {dtype!r} (known: {', '.join(qu.TYPES)}, q4_k_m)")

    name = f"embd-{dtype}"
    cfg, _ = u.load_hf_npz(u.model_path("quant-" + name, "npz"))
    prompts = vocabulary_prompts(cfg["vocab_size"], 1)
    check_libtfm_exact(t, name, prompts)
    node = qu.oracle_or_none()
    if node:
        check_llama_dequant(t, name, prompts, node)
    if tool:
        check_llama_quantize_type(t, tool, dtype)
    else:
        t.info("llama-quantize not found (set LLAMA_QUANTIZE=path): block bytes not compared")
    t.finish()


if __name__ == "__main__":
    main()
