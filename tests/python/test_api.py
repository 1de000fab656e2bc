"""The tfm package's Pythonic layer: versions, model facts, tokens and logits against the C API (the
tfm program) and sentencepiece, and the errors each misuse raises."""
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import apps_util as u
import tfm
from tfm import _native

PROMPTS = ["In the beginning God created the heaven and the earth.", "And God said, Let there be light:",
           "Jesus wept.", "café, naïve — ☃ \t tabs\r", ""]


@pytest.fixture(scope="module")
def model():
    with tfm.Model.load(u.model_path(), threads=1) as m:
        yield m


def test_version_and_backends():
    assert tfm.__version__ == "0.1.0"
    lib = _native.library()
    assert lib.tfm_version_number() // 10000 == _native.TFM_VERSION_MAJOR
    assert tfm.library_version() == lib.tfm_version_string().decode()
    names = [b.name for b in tfm.backends()]
    assert "cpu" in names and all(isinstance(b.available, bool) for b in tfm.backends())
    assert dict((b.name, b.available) for b in tfm.backends())["cpu"]


def test_every_header_function_is_declared():
    """The low-level layer mirrors tfm.h: every TFM_API function has argtypes and restype."""
    header = os.path.join(os.environ["PYTHONPATH"], "..", "..", "include", "tfm", "tfm.h")
    import re
    with open(header) as f:
        declared = set(re.findall(r"TFM_API[^;(]*?\b(tfm_\w+)\s*\(", f.read()))
    assert declared, "no TFM_API functions found in the header"
    assert declared == set(_native.SIGNATURES), (declared ^ set(_native.SIGNATURES))
    lib = _native.library()
    for name in declared:
        assert getattr(lib, name).argtypes is not None, name


def test_struct_sizes_match_the_library():
    for fn, struct in (("tfm_model_params_default", _native.tfm_model_params),
                       ("tfm_session_params_default", _native.tfm_session_params),
                       ("tfm_sampler_params_default", _native.tfm_sampler_params),
                       ("tfm_generate_params_default", _native.tfm_generate_params)):
        assert _native.defaults(fn).struct_size == ctypes.sizeof(struct), fn


def test_version_check_rejects_other_majors_and_older_libraries():
    class Fake:
        def __init__(self, number):
            self.tfm_version_number = lambda: number
            self.tfm_version_string = lambda: b"x"
    _native._check_version(Fake(_native.TFM_VERSION_NUMBER), "lib")
    _native._check_version(Fake(_native.TFM_VERSION_NUMBER + 1), "lib")
    with pytest.raises(tfm.LibraryError):
        _native._check_version(Fake(_native.TFM_VERSION_NUMBER + 10000), "lib")
    if _native.TFM_VERSION_NUMBER % 10000:
        with pytest.raises(tfm.LibraryError):
            _native._check_version(Fake(_native.TFM_VERSION_NUMBER - 1), "lib")


def test_missing_library_is_a_clear_import_error():
    env = dict(os.environ, TFM_LIBRARY="/nonexistent/libtfm.so")
    r = subprocess.run([sys.executable, "-c", "import tfm"], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert "LibraryError" in r.stderr and "/nonexistent/libtfm.so" in r.stderr


def test_info_matches_the_generated_config(model):
    cfg, _ = u.hf_config_and_weights()
    i = model.info
    assert (i.architecture, i.format, i.backend) == ("llama", "gguf", "cpu")
    assert i.n_vocab == cfg["vocab_size"] == u.sentencepiece().get_piece_size()
    assert (i.n_embd, i.n_layer, i.n_head, i.n_head_kv, i.n_ff) == (
        cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"],
        cfg["intermediate_size"])
    assert i.head_dim * i.n_head == i.n_embd and i.weight_dtype == "f32" and i.name == "apps-gqa-f32"
    assert i.tied_embeddings == bool(cfg["tie_word_embeddings"])


def test_tokenize_matches_sentencepiece_and_the_c_api(model):
    sp = u.sentencepiece()
    lines = [p for p in PROMPTS]
    out = u.cli("tokenize", "-m", u.model_path(), "--lines",
                stdin=b"".join(p.encode() + b"\n" for p in lines)).stdout.decode().split("\n")
    for text, c_row in zip(lines, out):
        ours = model.tokenize(text)
        assert ours == [sp.bos_id()] + sp.encode(text), text
        assert ours == [int(t) for t in c_row.split()], text
        assert model.tokenize(text, bos=False) == sp.encode(text)
        assert model.tokenize(text.encode()) == ours
        assert model.detokenize(ours) == sp.decode(sp.encode(text))


def test_tokenizer_objects(model):
    tok = tfm.Tokenizer.load(u.env_path("APPS_SPM"))
    sp = u.sentencepiece()
    with model.tokenizer as mt:
        for text in PROMPTS:
            assert tok.tokenize(text, bos=True) == mt.tokenize(text, bos=True)
        assert mt.bos_id == sp.bos_id() and mt.eos_id == sp.eos_id() and mt.vocab_size == sp.get_piece_size()
        assert mt.piece(5) == sp.id_to_piece(5)
        assert mt.kind.startswith("sentencepiece")
        assert mt.tokenize("<s>", bos=False, special=True) == [sp.bos_id()]
        assert mt.tokenize("<s>", bos=False) != [sp.bos_id()]
        assert mt.tokenize("x", bos=True, eos=True)[-1] == sp.eos_id()
        with pytest.raises(tfm.TfmInvalidArgumentError):
            mt.piece(10**6)
    tok.close()
    with pytest.raises(tfm.TfmClosedError):
        tok.tokenize("x")


def c_logits(ids, chunk=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "l.npy")
        args = ["logits", "-m", u.model_path(), "--ids", " ".join(map(str, ids)), "--out", out, "-t", 1]
        if chunk:
            args += ["--chunk", chunk]
        u.cli(*args)
        return np.load(out)


def test_logits_equal_the_c_api(model):
    ids = model.tokenize(PROMPTS[0])
    want = c_logits(ids)
    with model.session(kv_dtype="f32", logits_all=True) as s:
        s.eval(ids)
        every = s.logits(all=True)
        assert every.shape == want.shape and every.dtype == np.float32
        np.testing.assert_array_equal(every, want)  # the same library and computation: bit-identical
        last = s.logits()
        np.testing.assert_array_equal(last, want[-1])
        assert not last.flags.writeable and not last.flags.owndata
        copy = s.logits_copy(all=True)
        assert copy.flags.owndata and copy.flags.writeable
        np.testing.assert_array_equal(copy, want)
    # chunked evaluation in Python equals the C program's one-shot result
    with model.session(kv_dtype="f32", logits_all=True) as s:
        rows = []
        for k in range(0, len(ids), 3):
            s.eval(ids[k:k + 3])
            rows.append(s.logits_copy(all=True))
        np.testing.assert_allclose(np.concatenate(rows), want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_logits_match_the_pytorch_reference(model):
    ref, _ = u.torch_reference()
    ids = model.tokenize(PROMPTS[1])
    with model.session(kv_dtype="f32", logits_all=True) as s:
        s.eval(ids)
        ours = s.logits_copy(all=True)
    want = ref.logits(ids).numpy()
    assert np.abs(ours - want).max() / np.abs(want).max() <= 1e-4


def test_logits_view_is_zero_copy(model):
    with model.session() as s:
        s.eval([1, 5, 9])
        a, b = s.logits(), s.logits()
        assert a.ctypes.data == b.ctypes.data == ctypes.cast(
            _native.library().tfm_session_last_logits(s._ptr()), ctypes.c_void_p).value


def test_errors_carry_status_and_detail(model, tmp_path):
    with pytest.raises(tfm.TfmIOError) as e:
        tfm.Model.load(tmp_path / "missing.gguf")
    assert e.value.status == _native.TFM_E_IO and "missing.gguf" in str(e.value) and e.value.detail
    assert e.value.status_name == _native.library().tfm_status_string(_native.TFM_E_IO).decode()
    assert isinstance(e.value, OSError) and isinstance(e.value, tfm.TfmError)

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 60)
    with pytest.raises((tfm.TfmFormatError, tfm.TfmUnsupportedError)) as e:
        tfm.Model.load(bad)
    assert e.value.detail

    with pytest.raises(tfm.TfmBackendError):
        tfm.Model.load(u.model_path(), backend="no-such-backend")
    with pytest.raises(tfm.TfmInvalidArgumentError):
        tfm.Model.load(u.model_path(), threads=-1)
    with pytest.raises(tfm.TfmInvalidArgumentError):
        model.session(n_ctx=10**7)
    with pytest.raises(tfm.TfmInvalidArgumentError):
        model.session(kv_dtype="q4")

    with model.session(n_ctx=8) as s:
        with pytest.raises(tfm.TfmStateError):
            s.logits()
        with pytest.raises(tfm.TfmInvalidArgumentError):
            s.eval([1, model.info.n_vocab])
        assert s.n_past == 0
        with pytest.raises(TypeError):
            s.eval(["a"])
        s.eval([1, 2, 3])
        with pytest.raises(tfm.TfmContextFullError):
            s.eval(list(range(3, 9)))
        assert s.n_past == 3 and s.tokens == [1, 2, 3]
        s.eval([4, 5])  # still usable
        with pytest.raises(tfm.TfmStateError):
            s.logits(all=True)  # needs logits_all
        with pytest.raises(tfm.TfmInvalidArgumentError):
            s.rewind(6)
        s.rewind(2)
        assert s.n_past == 2 and s.tokens == [1, 2]
        with pytest.raises(tfm.TfmStateError):
            s.logits()  # rewinding drops the logits
        s.reset()
        assert s.n_past == 0 and s.tokens == []


def test_closed_objects_raise(model):
    m = tfm.Model.load(u.model_path(), threads=1)
    s = m.session()
    s.eval([1, 2])
    view = s.logits()
    before = view.copy()
    s.close()
    s.close()  # twice is fine
    for call in (lambda: s.eval([1]), lambda: s.logits(), lambda: s.n_past, lambda: s.rewind(0),
                 lambda: list(s.generate("x", max_tokens=1))):
        with pytest.raises(tfm.TfmClosedError):
            call()
    np.testing.assert_array_equal(view, before)  # the view kept the session's memory alive
    m.close()
    with pytest.raises(tfm.TfmClosedError):
        m.session()
    with pytest.raises(tfm.TfmClosedError):
        m.tokenize("x")
    with pytest.raises(ValueError):  # TfmClosedError is a ValueError, like a closed file's
        m.info
    assert "closed" in repr(m) and "closed" in repr(s)


def test_model_closed_before_its_sessions():
    m = tfm.Model.load(u.model_path(), threads=1)
    s = m.session(kv_dtype="f32")
    m.close()  # the session keeps the model alive
    s.eval([1, 7, 8])
    assert s.logits().shape == (m_vocab(),)
    s.close()


def m_vocab():
    return u.sentencepiece().get_piece_size()


def test_from_bytes_equals_load(model):
    with open(u.model_path(), "rb") as f:
        data = f.read()
    ids = model.tokenize(PROMPTS[0])
    with tfm.Model.from_bytes(data, threads=1) as mem, mem.session(kv_dtype="f32") as s1, \
            model.session(kv_dtype="f32") as s2:
        del data  # the model keeps its bytes
        s1.eval(ids)
        s2.eval(ids)
        np.testing.assert_array_equal(s1.logits(), s2.logits())
        assert mem.info == model.info
    with pytest.raises(tfm.TfmError):
        tfm.Model.from_bytes(b"not a model")


def test_progress_callback_and_cancel():
    seen = []
    with tfm.Model.load(u.model_path(), threads=1, progress=seen.append):
        pass
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(tfm.TfmAbortedError):
        tfm.Model.load(u.model_path(), progress=lambda f: False)

    def boom(_):
        raise KeyError("from the callback")
    with pytest.raises(KeyError):
        tfm.Model.load(u.model_path(), progress=boom)


def test_abort_callback(model):
    with model.session(abort=lambda: True) as s:
        with pytest.raises(tfm.TfmAbortedError):
            s.eval(list(range(1, 40)))
        assert s.n_past == 0 and s.tokens == []
    calls = []
    ids = list(range(1, 40))
    with model.session(n_batch=8, abort=lambda: calls.append(1) or len(calls) > 2 * model.info.n_layer) as s:
        with pytest.raises(tfm.TfmAbortedError):
            s.eval(ids)
        # whole chunks before the abort are kept, and the Python side knows which
        assert 0 < s.n_past < len(ids) and s.n_past % 8 == 0 and s.tokens == ids[:s.n_past]
    with model.session(abort=lambda: 1 / 0) as s:
        with pytest.raises(ZeroDivisionError):
            s.eval([1, 2, 3])
    with model.session(abort=lambda: False) as s:
        s.eval([1, 2, 3])
        assert s.n_past == 3


def test_log_callback():
    messages = []
    tfm.set_log_callback(lambda level, msg: messages.append((level, msg)), level="debug")
    try:
        with pytest.raises(tfm.TfmIOError):
            tfm.Model.load("/nonexistent/model.gguf")
        with tfm.Model.load(u.model_path(), threads=1):
            pass
    finally:
        tfm.set_log_callback(None)
    assert all(isinstance(level, str) and isinstance(msg, str) for level, msg in messages)
    n = len(messages)
    with tfm.Model.load(u.model_path(), threads=1):
        pass
    assert len(messages) == n  # nothing after the callback was removed
