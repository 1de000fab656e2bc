"""The few public libtfm calls the hf tests need, through ctypes (argtypes/restype on each).

The library is found through the TFM_LIBRARY environment variable (meson sets it to the built
libtfm.so), else the build directory layout next to the source tree."""
import ctypes as C
import os
import types

import numpy as np

TFM_OK, TFM_E_INVALID_ARGUMENT, TFM_E_IO, TFM_E_FORMAT, TFM_E_UNSUPPORTED = 0, 1, 2, 3, 4
STATUS_NAMES = {0: "TFM_OK", 1: "TFM_E_INVALID_ARGUMENT", 2: "TFM_E_IO", 3: "TFM_E_FORMAT",
                4: "TFM_E_UNSUPPORTED", 5: "TFM_E_OOM"}
TFM_DTYPE_F32 = 0
TFM_LOGITS_LAST, TFM_LOGITS_ALL = 0, 1
TFM_TOKENIZE_ADD_BOS = 1


class SessionParams(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("n_ctx", C.c_int32), ("kv_dtype", C.c_int),
                ("logits_all", C.c_int32), ("abort", C.c_void_p), ("abort_user_data", C.c_void_p),
                ("n_batch", C.c_int32)]


class ModelInfo(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("architecture", C.c_char_p), ("format", C.c_char_p),
                ("backend", C.c_char_p), ("name", C.c_char_p), ("n_vocab", C.c_int32),
                ("n_ctx_train", C.c_int32), ("n_embd", C.c_int32), ("n_layer", C.c_int32),
                ("n_head", C.c_int32), ("n_head_kv", C.c_int32), ("head_dim", C.c_int32),
                ("n_ff", C.c_int32), ("rope_theta", C.c_float), ("rms_eps", C.c_float),
                ("weight_dtype", C.c_int), ("n_params", C.c_int64), ("weight_bytes", C.c_int64),
                ("tied_embeddings", C.c_int32)]


def _load():
    path = os.environ.get("TFM_LIBRARY")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "libtfm.so")
    lib = C.CDLL(path)
    P = C.c_void_p
    sigs = {
        "tfm_last_error": ([], C.c_char_p),
        "tfm_model_load": ([C.c_char_p, P, C.POINTER(P)], C.c_int),
        "tfm_model_free": ([P], None),
        "tfm_model_get_info": ([P, C.POINTER(ModelInfo)], C.c_int),
        "tfm_session_params_init": ([C.POINTER(SessionParams), C.c_size_t], None),
        "tfm_session_create": ([P, C.POINTER(SessionParams), C.POINTER(P)], C.c_int),
        "tfm_session_free": ([P], None),
        "tfm_session_eval": ([P, C.POINTER(C.c_int32), C.c_size_t], C.c_int),
        "tfm_session_logits": ([P, C.c_int, C.POINTER(P)], C.c_int),
        "tfm_tensor_free": ([P], None),
        "tfm_tensor_ndim": ([P], C.c_int),
        "tfm_tensor_dim": ([P, C.c_int], C.c_int64),
        "tfm_tensor_data": ([P], P),
        "tfm_model_tokenizer": ([P], P),
        "tfm_tokenizer_vocab_size": ([P], C.c_int32),
        "tfm_tokenizer_bos": ([P], C.c_int32),
        "tfm_tokenizer_eos": ([P], C.c_int32),
        "tfm_tokenize": ([P, C.c_char_p, C.c_size_t, C.c_uint32, C.POINTER(C.c_int32), C.c_size_t,
                          C.POINTER(C.c_size_t)], C.c_int),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res
    return lib


lib = _load()


class TfmError(Exception):
    def __init__(self, status, message):
        super().__init__(f"{STATUS_NAMES.get(status, status)}: {message}")
        self.status = status
        self.message = message


def last_error():
    return lib.tfm_last_error().decode("utf-8", "replace")


def try_load(path):
    """(status, message): loads and frees the model."""
    m = C.c_void_p()
    st = lib.tfm_model_load(path.encode(), None, C.byref(m))
    msg = last_error()
    if st == TFM_OK:
        lib.tfm_model_free(m)
    return st, msg


class Model:
    def __init__(self, path):
        self.h = C.c_void_p()
        st = lib.tfm_model_load(path.encode(), None, C.byref(self.h))
        if st != TFM_OK:
            raise TfmError(st, last_error())

    def info(self):
        """tfm_model_info as a namespace; strings are copied (the model owns the originals)."""
        info = ModelInfo()
        info.struct_size = C.sizeof(ModelInfo)
        st = lib.tfm_model_get_info(self.h, C.byref(info))
        if st != TFM_OK:
            raise TfmError(st, last_error())
        out = types.SimpleNamespace()
        for name, _ in ModelInfo._fields_:
            v = getattr(info, name)
            setattr(out, name, v.decode() if isinstance(v, bytes) else v)
        return out

    def tokenizer(self):
        """(vocab size, bos, eos, encode function) of the model's tokenizer, or None."""
        tok = lib.tfm_model_tokenizer(self.h)
        if not tok:
            return None

        def encode(text, add_bos=True):
            data = text.encode()
            ids = (C.c_int32 * (len(data) + 8))()
            n = C.c_size_t()
            st = lib.tfm_tokenize(tok, data, len(data), TFM_TOKENIZE_ADD_BOS if add_bos else 0, ids, len(ids),
                                  C.byref(n))
            if st != TFM_OK:
                raise TfmError(st, last_error())
            return list(ids[:n.value])
        return (lib.tfm_tokenizer_vocab_size(tok), lib.tfm_tokenizer_bos(tok), lib.tfm_tokenizer_eos(tok), encode)

    def session(self, n_ctx=256):
        return Session(self, n_ctx)

    def close(self):
        if self.h:
            lib.tfm_model_free(self.h)
            self.h = C.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Session:
    """A session with an f32 KV cache that keeps the logits of every position."""

    def __init__(self, model, n_ctx):
        p = SessionParams()
        lib.tfm_session_params_init(C.byref(p), C.sizeof(p))
        p.n_ctx = n_ctx
        p.kv_dtype = TFM_DTYPE_F32
        p.logits_all = 1
        self.h = C.c_void_p()
        st = lib.tfm_session_create(model.h, C.byref(p), C.byref(self.h))
        if st != TFM_OK:
            raise TfmError(st, last_error())

    def eval(self, ids):
        arr = (C.c_int32 * len(ids))(*ids)
        st = lib.tfm_session_eval(self.h, arr, len(ids))
        if st != TFM_OK:
            raise TfmError(st, last_error())

    def logits(self, which=TFM_LOGITS_ALL):
        t = C.c_void_p()
        st = lib.tfm_session_logits(self.h, which, C.byref(t))
        if st != TFM_OK:
            raise TfmError(st, last_error())
        try:
            shape = [lib.tfm_tensor_dim(t, i) for i in range(lib.tfm_tensor_ndim(t))]
            n = int(np.prod(shape))
            ptr = C.cast(lib.tfm_tensor_data(t), C.POINTER(C.c_float))
            return np.ctypeslib.as_array(ptr, shape=(n,)).copy().reshape(shape)
        finally:
            lib.tfm_tensor_free(t)

    def close(self):
        if self.h:
            lib.tfm_session_free(self.h)
            self.h = C.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def logits(path, ids, n_ctx=256):
    """float32 logits [len(ids), vocab] of a fresh session over the model at `path`."""
    with Model(path) as m, m.session(n_ctx) as s:
        s.eval(ids)
        return s.logits(TFM_LOGITS_ALL)


def greedy(path, ids, n, n_ctx=256):
    """The greedy continuation: the prompt in one eval, then one token per eval."""
    out = []
    with Model(path) as m, m.session(n_ctx) as s:
        s.eval(ids)
        for _ in range(n):
            nxt = int(np.argmax(s.logits(TFM_LOGITS_LAST)))
            out.append(nxt)
            s.eval([nxt])
    return out
