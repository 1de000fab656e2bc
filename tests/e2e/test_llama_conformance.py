#!/usr/bin/python3
"""Conformance with llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU binding) on the same GGUF file.

    test_llama_conformance.py MODEL_NAME      (run by meson: suite e2e)

Checks:
  - tokenization: `tfm tokenize --lines` (with and without BOS) equals llama.cpp's tokenizer on KJV
    verses and on text the vocabulary was not trained on (digits, accents, CJK, emoji, spaces, tabs,
    carriage returns);
  - greedy text: the 32 tokens `tfm run --temp 0` generates equal llama.cpp's greedy tokens;
  - probabilities (f32 models): at every generated position, the softmax of libtfm's logits equals
    llama.cpp's next-token distribution within 1e-5 (absolute, per token). llama.cpp runs with an f32
    KV cache and flash attention off, which keeps it within ~1e-5 of exact arithmetic. Models with
    f16/bf16 matrices are compared on tokens only: llama.cpp rounds the activations to the weight
    type before each matrix product, libtfm keeps them in f32, so their logits differ by more than
    the f32 tolerance by design.

Without node-llama-cpp (tests/npm/node_modules) the test fails when CI is set and is skipped
otherwise; `tools/install-deps.sh --test` installs it.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_util as u  # noqa: E402

PROB_TOL = 1e-5
GREEDY_TOKENS = 32

EXTRA_LINES = [
    "",
    "Hello world",
    " leading space",
    "trailing space ",
    "two  spaces   and three",
    "\ttab\tseparated\t",
    "digits 0123456789 and 3.14159",
    "carriage\rreturn",
    "café naïve résumé",
    "中文字符 and 日本語",
    "emoji 🙂🚀 fallback",
    "ALL CAPS LORD GOD",
    "punctuation!?;:,.()[]{}<>\"'",
    "<s> and </s> stay plain text",
]


def oracle_available():
    node = os.environ.get("NODE")
    package = os.environ.get("NODE_LLAMA_CPP_DIR") or os.path.join(
        u.tools_dir(), "..", "npm", "node_modules", "node-llama-cpp")
    problem = None
    if not node:
        problem = "node (nodejs) is not installed"
    elif not os.path.exists(os.path.join(package, "dist", "index.js")):
        problem = f"node-llama-cpp is not installed in {os.path.normpath(package)}"
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            u.fatal(f"{problem}; CI must run the llama.cpp conformance tests "
                    "(tools/install-deps.sh --test installs it)")
        u.skip(f"{problem} (tools/install-deps.sh --test installs it)")
    return node


def ask_oracle(node, gguf, request):
    script = os.path.join(u.tools_dir(), "llama_oracle.mjs")
    r = subprocess.run([node, script, gguf], input=json.dumps(request).encode(), capture_output=True,
                       timeout=300)
    if r.returncode != 0:
        u.fatal(f"llama_oracle.mjs failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")
    return json.loads(r.stdout)


def corpus_lines(n):
    """n verses spread over the SentencePiece training corpus."""
    with open(os.path.join(u.spm_dir(), "kjv.txt"), encoding="utf-8") as f:
        verses = f.read().splitlines()
    step = max(1, len(verses) // n)
    return verses[::step][:n]


def main():
    name = sys.argv[1]
    node = oracle_available()
    gguf = u.model_path(name)
    cfg, _ = u.load_hf_npz(u.model_path(name, "npz"))
    is_f32 = name.endswith("-f32")
    t = u.Checks(f"llama-cpp {name}")

    lines = corpus_lines(60) + EXTRA_LINES
    # llama.cpp tokenizes the greedy prompts itself; libtfm's tokenization of them is checked below
    answer = ask_oracle(node, gguf, {
        "tokenize": lines + u.GREEDY_PROMPTS,
        "generate": [{"text": p, "n": GREEDY_TOKENS} for p in u.GREEDY_PROMPTS],
    })
    bos = answer["bos"]
    t.check(answer["n_vocab"] == cfg["vocab_size"], f"llama.cpp sees {answer['n_vocab']} tokens")

    # tokenization
    lines += u.GREEDY_PROMPTS
    ours_plain = u.tfm_tokenize(gguf, lines, bos=False)
    ours_bos = u.tfm_tokenize(gguf, lines, bos=True)
    bad = 0
    for line, want, plain, with_bos in zip(lines, answer["tokenize"], ours_plain, ours_bos):
        ok = t.check(plain == want, f"tokenize {line!r}:\n  ours      {plain}\n  llama.cpp {want}")
        ok &= t.check(with_bos == [bos] + want, f"tokenize with BOS {line!r}: {with_bos}")
        bad += not ok
    t.info(f"tokenization: {len(lines) - bad}/{len(lines)} lines identical")

    # greedy tokens and probabilities
    worst = 0.0
    for prompt, run in zip(u.GREEDY_PROMPTS, answer["generate"]):
        ids, want = run["prompt"], run["tokens"]
        ours = u.tfm_generate(gguf, prompt, GREEDY_TOKENS, temp=0)
        t.check(ours == want, f"greedy from {prompt!r}:\n  ours      {ours}\n  llama.cpp {want}")
        if not is_f32:
            continue
        seq = ids + want[:-1]
        logits = u.tfm_logits(gguf, seq)
        ours_p = u.softmax(logits[len(ids) - 1:])
        theirs_p = np.asarray(run["probs"], np.float64)
        diff = np.abs(ours_p - theirs_p).max(axis=1)
        worst = max(worst, float(diff.max()))
        t.check(diff.max() <= PROB_TOL, f"probabilities after {prompt!r}: max |Δp| {diff.max():.3g} at step "
                f"{int(diff.argmax())} > {PROB_TOL}")
        t.info(f"  {prompt!r}: {len(want)} greedy tokens, max |Δp| {diff.max():.3g}, "
               f"top p {theirs_p.max(axis=1).mean():.3f} on average")
    if is_f32:
        t.info(f"probabilities: max |Δp| {worst:.3g} (tolerance {PROB_TOL})")
    t.finish()


if __name__ == "__main__":
    main()
