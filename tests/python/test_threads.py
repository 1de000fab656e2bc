"""Several sessions of one model in several Python threads give the same results as one at a time
(ctypes releases the GIL during each call, so the threads really run the library concurrently)."""
import threading

import numpy as np
import pytest

import apps_util as u
import tfm

PROMPTS = ["In the beginning God created", "And the LORD spake unto Moses, saying,", "Blessed are the meek:",
           "For God so loved the world,", "The LORD is my shepherd;", "Jesus wept."]
N = 20


def work(model, k):
    """Greedy ids, seeded sampled ids, and the last logits of prompt k."""
    with model.session(kv_dtype="f32") as s:
        greedy = [t for t, _ in s.generate_tokens(PROMPTS[k], N, temperature=0) if t >= 0]
        s.reset()
        sampled = [t for t, _ in s.generate_tokens(PROMPTS[k], N, temperature=0.9, seed=k) if t >= 0]
        logits = s.logits_copy()
    return greedy, sampled, logits


@pytest.mark.parametrize("threads_per_model", [1, 2])
def test_threads_equal_sequential(threads_per_model):
    with tfm.Model.load(u.model_path(), threads=threads_per_model) as model:
        want = [work(model, k) for k in range(len(PROMPTS))]
        got = [None] * len(PROMPTS)
        errors = []
        start = threading.Barrier(len(PROMPTS))

        def run(k):
            try:
                start.wait()
                for _ in range(2):  # twice, so the threads overlap for a while
                    got[k] = work(model, k)
            except BaseException as e:  # reported below, not lost in the thread
                errors.append(e)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(len(PROMPTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for k, (w, g) in enumerate(zip(want, got)):
            assert g[0] == w[0], f"greedy ids of prompt {k} differ in a thread"
            assert g[1] == w[1], f"sampled ids of prompt {k} differ in a thread"
            np.testing.assert_array_equal(g[2], w[2])


def test_errors_stay_on_their_thread():
    """tfm_last_error is thread-local: a failure in one thread does not change another's message."""
    messages = {}

    def fail(name):
        try:
            tfm.Model.load(f"/nonexistent/{name}.gguf")
        except tfm.TfmIOError as e:
            messages[name] = str(e)

    threads = [threading.Thread(target=fail, args=(f"model{k}",)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(messages) == 8
    assert all(f"/nonexistent/{name}.gguf" in msg for name, msg in messages.items())
