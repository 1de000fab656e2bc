"""Objects are freed deterministically (close / with) and at garbage collection, exactly once:
1,000 create/free cycles leave Python's heap (tracemalloc), the process's RSS, its open files and its
memory mappings where they were."""
import gc
import os
import tracemalloc

import apps_util as u
import tfm

CYCLES = 1000


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def mappings():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def cycle(path, explicit=True):
    """Everything the package creates: model, tokenizer, session (with abort callback), logits views,
    sampler, a short generation."""
    m = tfm.Model.load(path, threads=1)
    s = m.session(n_ctx=32, abort=lambda: False)
    s.eval([1, 5, 9])
    view = s.logits()
    float(view[0])
    pieces = list(s.generate(None, 2, temperature=0))
    ids = m.tokenize("In the beginning")
    if explicit:
        s.close()
        m.close()
    del view, s, m, pieces, ids


def measure(explicit):
    path = u.model_path()
    for _ in range(100):  # warm-up: allocator pools, lazily created library state
        cycle(path, explicit)
    gc.collect()
    tracemalloc.start()
    py0, rss0, fds0, maps0 = tracemalloc.get_traced_memory()[0], u.rss_bytes(), open_fds(), mappings()
    for _ in range(CYCLES):
        cycle(path, explicit)
    gc.collect()
    py1, rss1, fds1, maps1 = tracemalloc.get_traced_memory()[0], u.rss_bytes(), open_fds(), mappings()
    tracemalloc.stop()
    return py1 - py0, rss1 - rss0, fds1 - fds0, maps1 - maps0


def test_no_leak_with_close():
    py, rss, fds, maps = measure(explicit=True)
    # A leaked session (KV cache of 32 tokens, logits) or model per cycle would be >= 100 kB each:
    # 100 MB over the cycles. The allowances below are far under that, well over allocator noise.
    assert py < 64 * 1024, f"Python heap grew by {py} bytes over {CYCLES} cycles"
    assert rss < 8 * 1024 * 1024, f"RSS grew by {rss} bytes over {CYCLES} cycles"
    assert fds <= 0 and maps <= 2, f"{fds} more open files, {maps} more mappings"


def test_no_leak_at_garbage_collection():
    py, rss, fds, maps = measure(explicit=False)
    assert py < 64 * 1024, f"Python heap grew by {py} bytes over {CYCLES} cycles"
    assert rss < 8 * 1024 * 1024, f"RSS grew by {rss} bytes over {CYCLES} cycles"
    assert fds <= 0 and maps <= 2, f"{fds} more open files, {maps} more mappings"


def test_reference_cycles_are_collected():
    before = mappings()
    for _ in range(50):
        m = tfm.Model.load(u.model_path(), threads=1)
        s = m.session(n_ctx=16)
        s.self_ref = s  # a cycle only the collector can break
        m.self_ref = (m, s)
        del m, s
    gc.collect()
    assert mappings() <= before + 2
