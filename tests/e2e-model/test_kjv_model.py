#!/usr/bin/python3
"""The bundled model (examples/models/kjv-llama.gguf) end to end, against PyTorch and llama.cpp.

    test_kjv_model.py torch        (run by meson: suite model)
    test_kjv_model.py llama-cpp

Prompts: the first six words of 20 held-out chapters (examples/models/kjv-heldout.txt, lines spread
evenly over the file); text the model never trained on.

torch — the reference is tests/tools/torch_reference.py (written from Hugging Face's Llama equations,
float64), on the HF directory that tools/train/gguf_to_hf.py rebuilds from the shipped GGUF file
(the same f16/f32 values; Q/K rows un-permuted, so a wrong permutation in the file would show):
  - held-out perplexity: `tfm perplexity --ctx 512 --max-windows 6` against the reference on the same
    windows (BOS + 511 ids each; ids from the sentencepiece library on the same tokenizer.model):
    within 0.1 %; the id counts must agree too;
  - the same number within 0.1 % of the training network's on those windows, recorded at export in
    examples/models/kjv-llama.json (with the file's SHA-256): the file holds the network that was trained;
  - the HF directory through libtfm gives the GGUF file's perplexity within 1e-5 (relative);
  - greedy text: the 32 ids `tfm run --temp 0` generates from each prompt are the reference's argmax
    at every step (one reference pass over prompt + generated ids, which is the same as the reference
    generating greedily: the sequences agree up to a step exactly when every earlier argmax agrees).
llama-cpp — node-llama-cpp (llama.cpp's prebuilt CPU build) loads the same GGUF file:
  - it tokenizes the 20 prompts as libtfm does;
  - its 32 greedy tokens from each prompt equal `tfm run --temp 0`'s.
About 17 s for torch and 30 s for llama-cpp on 2 cores.
"""
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import e2e_util as u  # noqa: E402

MODEL = os.path.join(ROOT, "examples", "models", "kjv-llama.gguf")
TOKENIZER = os.path.join(ROOT, "examples", "models", "kjv-bpe.model")
HELDOUT = os.path.join(ROOT, "examples", "models", "kjv-heldout.txt")
RECORD = os.path.join(ROOT, "examples", "models", "kjv-llama.json")  # tools/train/evaluate.py
WINDOWS = 6
PPL_TOL = 1e-3       # the brief's 0.1 %
HF_PPL_TOL = 1e-5    # same weights, same arithmetic up to summation order
N_PROMPTS = 20
PROMPT_WORDS = 6
GREEDY_TOKENS = 32


def prompts():
    with open(HELDOUT, encoding="utf-8") as f:
        lines = f.read().splitlines()
    step = len(lines) / N_PROMPTS
    return [" ".join(lines[int(i * step)].split()[:PROMPT_WORDS]) for i in range(N_PROMPTS)]


def tfm_perplexity(model, ctx):
    out = u.run_cli(["perplexity", "-m", model, "-f", HELDOUT, "--ctx", ctx, "--max-windows", WINDOWS, "--json",
                     "-t", 2]).decode()
    import json
    return json.loads(out)


def reference_perplexity(ref, ids, bos, ctx):
    """The windows cmd_perplexity.c documents: consecutive runs of ctx-1 ids, each evaluated after BOS,
    every id scored against the logits of the position before it."""
    W = ctx - 1
    nll, n = 0.0, 0
    for w in range(WINDOWS):
        window = ids[w * W:(w + 1) * W]
        if not window:
            break
        logits = ref.logits([bos] + window[:-1]).numpy()
        logp = logits - logits.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        nll -= float(logp[np.arange(len(window)), window].sum())
        n += len(window)
    return float(np.exp(nll / n)), n


def check_record(t, ours):
    """The model is the trained network: libtfm's perplexity equals the one the training network
    (tools/train/llama_model.py, float64, on the stored weights) gave on the same windows at export time.
    A mistake in the export (say, Q/K rows left unpermuted) is invisible to the oracles above, which
    all read the file the same way, but not to this."""
    import hashlib
    import json
    with open(RECORD) as f:
        record = json.load(f)
    with open(MODEL, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if not t.check(digest == record["sha256"], f"{RECORD} describes another file (sha256 {record['sha256']}, "
                   f"the model's is {digest}): run tools/train/evaluate.py"):
        return
    ev = record["evaluation"]
    t.check(ev["pytorch"]["first_windows"] == WINDOWS, f"the record scores {ev['pytorch']['first_windows']} windows, the test {WINDOWS}")
    trained = ev["pytorch"]["perplexity_first_windows"]
    rel = abs(ours["perplexity"] / trained - 1)
    t.check(rel <= PPL_TOL, f"held-out perplexity: libtfm {ours['perplexity']:.6f}, the training network "
            f"{trained:.6f} at export (rel diff {rel:.3g} > {PPL_TOL})")
    t.info(f"training network at export, same windows: {trained:.6f}, rel diff {rel:.2g}")


def check_torch(t):
    import sentencepiece as spm
    from gguf_to_hf import gguf_to_hf, read_gguf
    from export import write_hf
    from torch_reference import LlamaReference

    kv, tensors = read_gguf(MODEL)
    cfg, weights = gguf_to_hf(kv, tensors)
    ref = LlamaReference(cfg, weights)
    sp = spm.SentencePieceProcessor()
    sp.LoadFromFile(TOKENIZER)
    bos = sp.bos_id()
    t.check(t_eq(kv["tokenizer.ggml.tokens"], [sp.IdToPiece(i) for i in range(sp.vocab_size())]),
            "the GGUF vocabulary differs from kjv-bpe.model")

    with open(HELDOUT, encoding="utf-8") as f:
        ids = sp.EncodeAsIds(f.read())
    ctx = cfg["max_position_embeddings"]  # the model's whole context: 512
    ours = tfm_perplexity(MODEL, ctx)
    want, n_scored = reference_perplexity(ref, ids, bos, ctx)
    check_record(t, ours)
    t.check(ours["n_tokens"] == len(ids), f"libtfm tokenized the held-out file into {ours['n_tokens']} ids, "
            f"sentencepiece into {len(ids)}")
    t.check(ours["n_scored"] == n_scored, f"libtfm scored {ours['n_scored']} ids, the reference {n_scored}")
    rel = abs(ours["perplexity"] / want - 1)
    t.check(rel <= PPL_TOL, f"held-out perplexity: libtfm {ours['perplexity']:.6f}, PyTorch {want:.6f} "
            f"(rel diff {rel:.3g} > {PPL_TOL})")
    t.info(f"held-out perplexity, {n_scored} ids in {WINDOWS} windows of {ctx - 1}: libtfm {ours['perplexity']:.6f}, "
           f"PyTorch {want:.6f}, rel diff {rel:.2g}")

    with tempfile.TemporaryDirectory() as tmp:
        hf_dir = os.path.join(tmp, "kjv-llama-hf")
        write_hf(hf_dir, cfg, weights, TOKENIZER)
        hf = tfm_perplexity(hf_dir, ctx)
    rel_hf = abs(hf["perplexity"] / ours["perplexity"] - 1)
    t.check(rel_hf <= HF_PPL_TOL, f"HF directory perplexity {hf['perplexity']:.8f} vs GGUF {ours['perplexity']:.8f}")
    t.info(f"HF directory through libtfm: {hf['perplexity']:.6f} (rel diff {rel_hf:.2g} from the GGUF file)")

    same = 0
    for prompt in prompts():
        p_ids = [bos] + sp.EncodeAsIds(prompt)
        gen = u.tfm_generate(MODEL, prompt, GREEDY_TOKENS, temp=0)
        logits = ref.logits(p_ids + gen[:-1]).numpy()[len(p_ids) - 1:]
        want_ids = logits.argmax(axis=1).tolist()
        k = next((i for i, (a, b) in enumerate(zip(gen, want_ids)) if a != b), None)
        if t.check(k is None and len(gen) == GREEDY_TOKENS,
                   f"greedy from {prompt!r}: libtfm {gen}, reference argmax {want_ids}"):
            same += 1
        else:
            top = np.sort(logits[k or 0])[-2:]
            t.info(f"  first difference at token {k}; reference top-2 logit margin {top[1] - top[0]:.3g}")
    t.info(f"greedy: {same}/{N_PROMPTS} prompts give the reference's {GREEDY_TOKENS} tokens")


def t_eq(a, b):
    return list(a) == list(b)


def check_llama_cpp(t):
    from test_llama_conformance import ask_oracle, oracle_available
    node = oracle_available()
    ps = prompts()
    answer = ask_oracle(node, MODEL, {"tokenize": ps, "generate": [{"text": p, "n": GREEDY_TOKENS} for p in ps]})
    ours_ids = u.tfm_tokenize(MODEL, ps, bos=False)
    same = 0
    for prompt, want_prompt, ours_prompt, run in zip(ps, answer["tokenize"], ours_ids, answer["generate"]):
        t.check(ours_prompt == want_prompt, f"tokenize {prompt!r}: libtfm {ours_prompt}, llama.cpp {want_prompt}")
        gen = u.tfm_generate(MODEL, prompt, GREEDY_TOKENS, temp=0)
        if t.check(gen == run["tokens"], f"greedy from {prompt!r}:\n  libtfm    {gen}\n  llama.cpp {run['tokens']}"):
            same += 1
    t.info(f"greedy: {same}/{N_PROMPTS} prompts give llama.cpp's {GREEDY_TOKENS} tokens")


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("torch", "llama-cpp"):
        u.fatal("usage: test_kjv_model.py torch|llama-cpp")
    if not os.path.exists(MODEL):
        u.fatal(f"{MODEL} is missing")
    t = u.Checks(f"kjv-llama {sys.argv[1]}")
    if sys.argv[1] == "torch":
        check_torch(t)
    else:
        check_llama_cpp(t)
    t.finish()


if __name__ == "__main__":
    main()
