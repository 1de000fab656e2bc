"""Generation from Python: the same tokens as the C API (the tfm program), streamed text equal to the
full text (and to sentencepiece's decoding), stop strings, continuation, a full context, samplers."""
import subprocess
import sys

import numpy as np
import pytest

import apps_util as u
import tfm
from tfm.session import _stop_holdback

PROMPTS = ["In the beginning God created", "And the LORD spake unto Moses, saying,", "Blessed are the meek:"]
N = 24
FREE = dict(top_k=0, top_p=1.0, min_p=0.0)


@pytest.fixture(scope="module")
def model():
    with tfm.Model.load(u.model_path(), threads=1) as m:
        yield m


def c_run(prompt, n, temp, seed=1, extra=()):
    r = u.cli("run", "-m", u.model_path(), "-p", prompt, "-n", n, "--temp", temp, "--seed", seed, "-t", 1,
              "--print-ids", "-q", *extra)
    return u.parse_ids_line(r.stdout), r.stdout.decode()


def py_ids(model, prompt, n, **kw):
    with model.session() as s:
        return [t for t, _ in s.generate_tokens(prompt, n, **kw) if t >= 0]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_tokens_equal_the_c_api(model, prompt):
    want, _ = c_run(prompt, N, 0)
    assert len(want) > 0
    assert py_ids(model, prompt, N, temperature=0) == want


def test_seeded_sampling_equals_the_c_api(model):
    for seed in (7, 8):
        want, _ = c_run(PROMPTS[0], N, 0.9, seed, ["--top-k", 0, "--top-p", 1, "--min-p", 0])
        assert py_ids(model, PROMPTS[0], N, temperature=0.9, seed=seed, **FREE) == want
    a = py_ids(model, PROMPTS[0], N, temperature=1.0, seed=1, **FREE)
    others = [py_ids(model, PROMPTS[0], N, temperature=1.0, seed=s, **FREE) for s in (2, 3, 4)]
    assert any(o != a for o in others)


def test_streamed_text_equals_the_full_text(model):
    sp = u.sentencepiece()
    for prompt in PROMPTS:
        with model.session() as s:
            pairs = list(s.generate_tokens(prompt, N, temperature=0.8, seed=3))
        ids = [t for t, _ in pairs if t >= 0]
        streamed = "".join(text for _, text in pairs)
        assert streamed == model.detokenize(ids) == sp.decode(ids)
        with model.session() as s:
            pieces = list(s.generate(prompt, N, temperature=0.8, seed=3))
        assert all(pieces) and "".join(pieces) == streamed


def test_the_c_program_prints_the_same_text(model):
    ids, out = c_run(PROMPTS[1], N, 0)
    printed = out[: out.rindex("ids:")]
    text = u.sentencepiece().decode(ids)
    assert printed == (text if text.endswith("\n") else text + "\n")  # the program ends the line


def test_stop_strings(model):
    with model.session() as s:
        full = "".join(s.generate(PROMPTS[0], N, temperature=0))
    words = full.split(" ")
    assert len(words) > 4, full
    stop = " " + words[3]
    cut = full[: full.index(stop)]
    with model.session() as s:
        assert "".join(s.generate(PROMPTS[0], N, temperature=0, stop=[stop])) == cut
    with model.session() as s:  # the earliest of several wins; one that never occurs changes nothing
        assert "".join(s.generate(PROMPTS[0], N, temperature=0, stop=["\x00never", stop, full[-3:]])) == \
            full[: min(full.index(stop), full.index(full[-3:]))]
    with model.session() as s:
        assert "".join(s.generate(PROMPTS[0], N, temperature=0, stop=["\x00never"])) == full
    # a stop string that straddles two tokens' pieces
    with model.session() as s:
        pieces = [p for _, p in s.generate_tokens(PROMPTS[0], N, temperature=0) if p]
    joined = pieces[1][-1:] + pieces[2][:1]
    with model.session() as s:
        got = "".join(s.generate(PROMPTS[0], N, temperature=0, stop=[joined]))
    assert got == full[: full.index(joined)]


def test_stop_holdback():
    assert _stop_holdback("hello wor", ["world"]) == 3
    assert _stop_holdback("hello", ["xyz"]) == 0
    assert _stop_holdback("ab", ["abc", "b"]) == 2
    assert _stop_holdback("a", ["a"]) == 0  # a complete stop string is found, not held back


def test_continuation_equals_one_call(model):
    with model.session() as s:
        first = [t for t, _ in s.generate_tokens(PROMPTS[2], 10, temperature=0) if t >= 0]
        rest = [t for t, _ in s.generate_tokens(None, 10, temperature=0) if t >= 0]
    assert first + rest == py_ids(model, PROMPTS[2], 20, temperature=0)
    with model.session() as s:
        with pytest.raises(tfm.TfmStateError):
            list(s.generate(None, 5))
        assert list(s.generate(PROMPTS[2], 0)) == [] and s.n_past == len(model.tokenize(PROMPTS[2]))


def test_full_context_ends_generation(model):
    n_prompt = len(model.tokenize(PROMPTS[0]))
    with model.session(n_ctx=n_prompt + 5) as s:
        ids = [t for t, _ in s.generate_tokens(PROMPTS[0], 50, temperature=0) if t >= 0]
        assert len(ids) == 6 and s.n_past == n_prompt + 5
    assert ids == py_ids(model, PROMPTS[0], 6, temperature=0)


def test_sampler(model):
    with model.session() as s:
        s.eval(model.tokenize(PROMPTS[0]))
        logits = s.logits_copy()
    with tfm.Sampler(temperature=0) as g:
        assert g.sample(logits) == int(np.argmax(logits))
    a = tfm.Sampler(temperature=1.0, seed=11, **FREE)
    draws = [a.sample(logits) for _ in range(8)]
    a.reset(11)
    assert [a.sample(logits) for _ in range(8)] == draws
    with pytest.raises(tfm.TfmInvalidArgumentError):
        a.sample(np.zeros((2, 3), np.float32))
    with pytest.raises(tfm.TfmInvalidArgumentError):
        tfm.Sampler(seed=-1)
    a.close()
    with pytest.raises(tfm.TfmClosedError):
        a.sample(logits)
    # a strong repetition penalty moves greedy away from a token that is in the history
    best = int(np.argmax(logits))
    with tfm.Sampler(temperature=0, repeat_penalty=1e6) as g:
        assert g.sample(logits, history=[best]) != best


def test_python_m_tfm_run_mirrors_the_cli(model):
    want, _ = c_run(PROMPTS[0], 12, 0)
    r = subprocess.run([sys.executable, "-m", "tfm", "run", "-m", u.model_path(), "-p", PROMPTS[0], "-n", "12",
                        "--temp", "0", "-t", "1", "--print-ids", "-q"], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert u.parse_ids_line(r.stdout) == want
    r = subprocess.run([sys.executable, "-m", "tfm", "run", "-m", "/nonexistent.gguf", "-p", "x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "/nonexistent.gguf" in r.stderr
