#!/usr/bin/python3
"""Sampling through the tfm program.

    test_sampling.py MODEL_NAME      (run by meson: suite e2e)

Checks:
  - the same seed gives the same ids and the same text (two separate runs);
  - different seeds give different text (at temperature 1 with no truncation, 24 tokens: of three
    other seeds at least one must differ, so a chance collision cannot fail the test);
  - temperature 0 is the argmax: every generated id is the argmax of `tfm logits` at the position
    before it, and the seed does not matter.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_util as u  # noqa: E402

N = 24
PROMPT = "And God said,"
FREE = ["--top-k", 0, "--top-p", 1, "--min-p", 0]


def run_text(gguf, seed, temp=1.0):
    out = u.run_cli(["run", "-m", gguf, "-p", PROMPT, "-n", N, "--temp", temp, "--seed", seed, "-t", 2,
                     "--print-ids"] + FREE)
    return out, u.parse_generated_ids(out.decode(errors="replace"))


def main():
    name = sys.argv[1]
    gguf = u.model_path(name)
    t = u.Checks(f"sampling {name}")

    text_a, ids_a = run_text(gguf, 42)
    text_b, ids_b = run_text(gguf, 42)
    t.check(ids_a == ids_b, f"seed 42 twice gave different ids:\n  {ids_a}\n  {ids_b}")
    t.check(text_a == text_b, "seed 42 twice gave different text")
    t.check(len(ids_a) > 0, "nothing was generated")

    others = [run_text(gguf, seed)[1] for seed in (1, 2, 3)]
    t.check(any(o != ids_a for o in others), f"seeds 42, 1, 2, 3 all gave the same ids {ids_a}")
    t.info(f"seed 42: {ids_a}")
    for seed, o in zip((1, 2, 3), others):
        t.info(f"seed {seed}:  {o}")

    greedy = u.tfm_generate(gguf, PROMPT, N, temp=0, seed=1)
    t.check(greedy == u.tfm_generate(gguf, PROMPT, N, temp=0, seed=2), "temperature 0 depends on the seed")
    prompt_ids = u.tfm_tokenize(gguf, [PROMPT])[0]
    if greedy:
        logits = u.tfm_logits(gguf, prompt_ids + greedy[:-1])
        argmax = [int(i) for i in np.argmax(logits[len(prompt_ids) - 1:], axis=1)]
        t.check(greedy == argmax, f"temperature 0 is not the argmax:\n  run    {greedy}\n  argmax {argmax}")
    t.finish()


if __name__ == "__main__":
    main()
