#!/usr/bin/python3
"""libtfm's logits and greedy text against a PyTorch reference of the same model.

    test_torch_reference.py MODEL_NAME      (run by meson: suite e2e)

The reference (tests/tools/torch_reference.py) is written from Hugging Face's Llama equations —
rotate_half RoPE on HF's q_proj/k_proj layout — and computes in float64 from the HF-layout weights
make_model.py dumps next to the GGUF file (already rounded to the file's f16/bf16 when it has those).
The GGUF file holds the same weights after llama.cpp's Q/K row permutation, which libtfm must undo
through its adjacent-pair RoPE, so this checks the permutation and the pairing independently.

Checks:
  - logits of every position, prompts of 1, 7, 64 and 200 tokens: max|ours - ref| / max|ref| <= 1e-4
    (f32 KV cache, the `tfm logits` path);
  - greedy continuations of 32 tokens identical (`tfm run --temp 0`);
  - the 200-token prompt evaluated in chunks of 1, 5 and 64 tokens gives the one-shot logits
    within 1e-5 (the same computation, only the grouping of float sums differs).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_util as u  # noqa: E402

LOGITS_TOL = 1e-4
CHUNK_TOL = 1e-5
LENGTHS = (1, 7, 64, 200)
CHUNKS = (1, 5, 64)
GREEDY_TOKENS = 32


def main():
    name = sys.argv[1]
    gguf = u.model_path(name)
    cfg, weights = u.load_hf_npz(u.model_path(name, "npz"))
    sys.path.insert(0, u.tools_dir())
    from torch_reference import LlamaReference
    ref = LlamaReference(cfg, weights)
    n_vocab = cfg["vocab_size"]
    t = u.Checks(f"torch-reference {name}")
    t.info(f"{name}: hidden {cfg['hidden_size']}, heads {cfg['num_attention_heads']}/"
           f"{cfg['num_key_value_heads']} kv, vocab {n_vocab}, tied {cfg['tie_word_embeddings']}, "
           f"rope_scaling {cfg.get('rope_scaling')}")

    one_shot = None
    for n in LENGTHS:
        ids = u.prompt_ids(n, n_vocab, seed=1000 + n)
        ours = u.tfm_logits(gguf, ids)
        want = ref.logits(ids).numpy()
        err = u.rel_err(ours, want)
        t.check(err <= LOGITS_TOL, f"{n} tokens: logits rel err {err:.3g} > {LOGITS_TOL}")
        t.info(f"  logits, {n:3d} tokens: rel err {err:.3g}")
        if n == max(LENGTHS):
            one_shot, long_ids = ours, ids

    for chunk in CHUNKS:
        chunked = u.tfm_logits(gguf, long_ids, chunk=chunk)
        err = u.rel_err(chunked, one_shot)
        t.check(err <= CHUNK_TOL, f"chunks of {chunk}: rel diff {err:.3g} from one-shot > {CHUNK_TOL}")
        t.info(f"  chunks of {chunk:2d} vs one shot: rel diff {err:.3g}")

    for prompt in u.GREEDY_PROMPTS[:2]:
        ids = u.tfm_tokenize(gguf, [prompt])[0]
        ours = u.tfm_generate(gguf, prompt, GREEDY_TOKENS, temp=0)
        want = ref.greedy(ids, GREEDY_TOKENS)
        same = ours == want
        t.check(same, f"greedy from {prompt!r} (ids {ids}):\n  ours {ours}\n  ref  {want}")
        if not same:
            k = next((i for i, (a, b) in enumerate(zip(ours, want)) if a != b), min(len(ours), len(want)))
            top = np.sort(ref.logits(ids + want[:k])[-1].numpy())[-2:]
            t.info(f"  first difference at token {k}; reference top-2 logit margin {top[1] - top[0]:.3g}")
        else:
            t.info(f"  greedy {GREEDY_TOKENS} tokens from {prompt!r}: identical")
    t.finish()


if __name__ == "__main__":
    main()
