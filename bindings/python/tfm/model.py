"""Model: load a GGUF file or a Hugging Face directory, describe it, tokenize, open sessions."""
import ctypes as C
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from . import _native as N
from ._handle import Handle
from .errors import TfmClosedError, TfmInvalidArgumentError, check
from .tokenizer import Text, Tokenizer

DTYPE_NAMES = {N.TFM_DTYPE_F32: "f32", N.TFM_DTYPE_F16: "f16", N.TFM_DTYPE_BF16: "bf16"}
KV_DTYPES = {"f32": N.TFM_DTYPE_F32, "f16": N.TFM_DTYPE_F16, "bf16": N.TFM_DTYPE_BF16}


@dataclass(frozen=True)
class ModelInfo:
    """What tfm_model_get_info reports."""
    architecture: str
    format: str
    backend: str
    name: str
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    rope_theta: float
    rms_eps: float
    weight_dtype: str
    n_params: int
    weight_bytes: int
    tied_embeddings: bool


def _model_params(backend: str, threads: Optional[int], memory_limit: int, device: int, progress):
    p = N.defaults("tfm_model_params_default")
    p.struct_size = C.sizeof(N.tfm_model_params)
    backend_bytes = backend.encode()
    p.backend = backend_bytes
    if threads is not None:
        if threads < 0:
            raise TfmInvalidArgumentError(f"threads must be >= 0 (0: all cores), got {threads}")
        p.n_threads = threads
    p.memory_limit = memory_limit
    p.device = device
    callback, errors = None, []
    if progress is not None:
        def on_progress(fraction, _user):
            try:
                return 1 if progress(float(fraction)) is False else 0
            except BaseException as e:  # an exception stops the load and is raised afterwards
                errors.append(e)
                return 1
        callback = N.tfm_progress_fn(on_progress)
        p.progress = callback
    return p, (backend_bytes, callback), errors


class Model:
    """A loaded model: immutable, shareable by any number of threads and sessions.

    Use :meth:`load` or :meth:`from_bytes`; close with :meth:`close` or a ``with`` block (or let the
    garbage collector do it). Sessions and tokenizers keep the model's memory alive, so closing a
    model they still use only takes effect when the last of them is closed."""

    def __init__(self, handle: Handle, keepalive=None):
        self._handle = handle
        self._keepalive = keepalive  # the bytes a from_bytes model reads its weights from
        self._closed = False
        self._info = None

    @classmethod
    def load(cls, path, backend: str = "auto", threads: Optional[int] = None,
             progress: Optional[Callable[[float], Optional[bool]]] = None, memory_limit: int = 0,
             device: int = 0) -> "Model":
        """Loads a GGUF file or a Hugging Face directory.

        ``backend``: "auto", "cpu" or "cuda". ``threads``: CPU threads (None or 0: all cores).
        ``progress(fraction)`` is called during loading; returning False cancels the load
        (TfmAbortedError). ``memory_limit``: bytes the model and its sessions may allocate (0: no limit)."""
        lib = N.library()
        params, keep, errors = _model_params(backend, threads, memory_limit, device, progress)
        out = C.c_void_p()
        st = lib.tfm_model_load(os.fsencode(path), C.byref(params), C.byref(out))
        del keep
        if errors:
            raise errors[0]
        check(st, f"loading {path}")
        return cls(Handle(out.value, lib.tfm_model_free, "model"))

    @classmethod
    def from_bytes(cls, data: bytes, backend: str = "auto", threads: Optional[int] = None,
                   progress: Optional[Callable[[float], Optional[bool]]] = None, memory_limit: int = 0,
                   device: int = 0) -> "Model":
        """Loads a GGUF model from memory (tfm_model_load_from_memory). ``bytes`` are used in place;
        other buffers are copied once. The model keeps the bytes alive."""
        if not isinstance(data, bytes):
            data = bytes(data)
        lib = N.library()
        params, keep, errors = _model_params(backend, threads, memory_limit, device, progress)
        out = C.c_void_p()
        address = C.cast(C.c_char_p(data), C.c_void_p)
        st = lib.tfm_model_load_from_memory(address, len(data), C.byref(params), C.byref(out))
        del keep
        if errors:
            raise errors[0]
        check(st, "loading a model from memory")
        return cls(Handle(out.value, lib.tfm_model_free, "model"), keepalive=data)

    def _ptr(self):
        if self._closed:
            raise TfmClosedError("the model is closed")
        return self._handle.ptr

    def close(self) -> None:
        """Releases the model (freed once its sessions and tokenizer objects are closed too)."""
        if not self._closed:
            self._closed = True
            self._handle.release()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def info(self) -> ModelInfo:
        self._ptr()  # raises if closed
        if self._info is None:
            lib = N.library()
            raw = N.tfm_model_info()
            raw.struct_size = C.sizeof(raw)
            check(lib.tfm_model_get_info(self._ptr(), C.byref(raw)), "tfm_model_get_info")
            s = lambda b: b.decode("utf-8", "replace") if b else ""  # noqa: E731
            self._info = ModelInfo(
                s(raw.architecture), s(raw.format), s(raw.backend), s(raw.name), raw.n_vocab, raw.n_ctx_train,
                raw.n_embd, raw.n_layer, raw.n_head, raw.n_head_kv, raw.head_dim, raw.n_ff, raw.rope_theta,
                raw.rms_eps, lib.tfm_dtype_name(raw.weight_dtype).decode(), raw.n_params, raw.weight_bytes,
                bool(raw.tied_embeddings))
        return self._info

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (it keeps the model alive until it is closed or collected)."""
        ptr = N.library().tfm_model_tokenizer(self._ptr())
        if not ptr:
            raise TfmClosedError("the model carries no tokenizer")
        return Tokenizer(self._handle.retain(), borrowed_ptr=ptr)

    def tokenize(self, text: Text, bos: Optional[bool] = None, eos: Optional[bool] = None,
                 special: bool = False) -> List[int]:
        """Token ids of ``text``; see :meth:`Tokenizer.tokenize`."""
        with self.tokenizer as tok:
            return tok.tokenize(text, bos=bos, eos=eos, special=special)

    def detokenize(self, ids: Sequence[int]) -> str:
        with self.tokenizer as tok:
            return tok.detokenize(ids)

    def session(self, n_ctx: int = 0, kv_dtype: str = "f16", logits_all: bool = False, n_batch: int = 0,
                abort: Optional[Callable[[], bool]] = None) -> "Session":
        """A new session (KV cache) over this model; see :class:`tfm.Session`."""
        from .session import Session
        return Session(self, n_ctx=n_ctx, kv_dtype=kv_dtype, logits_all=logits_all, n_batch=n_batch, abort=abort)

    def __repr__(self):
        if self._closed:
            return "<tfm.Model closed>"
        i = self.info
        return f"<tfm.Model {i.name or i.architecture} {i.n_params / 1e6:.1f}M {i.weight_dtype} on {i.backend}>"


# ---- library-wide functions ----------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    name: str
    available: bool


def backends() -> List[Backend]:
    """The backends libtfm knows (compiled in or found as plugins) and whether each can run here."""
    lib = N.library()
    out = []
    for i in range(lib.tfm_backend_count()):
        name = lib.tfm_backend_name(i)
        if name:
            out.append(Backend(name.decode(), bool(lib.tfm_backend_available(name))))
    return out


_LEVELS = {"error": N.TFM_LOG_ERROR, "warn": N.TFM_LOG_WARN, "info": N.TFM_LOG_INFO, "debug": N.TFM_LOG_DEBUG}
_log_callback = None  # kept alive while C may call it


def set_log_callback(callback: Optional[Callable[[str, str], None]], level: str = "warn") -> None:
    """Sends libtfm's log messages to ``callback(level_name, message)`` (None: discard them).

    Process-wide; set it before loading models. The callback runs on the thread that logs."""
    global _log_callback
    if level not in _LEVELS:
        raise TfmInvalidArgumentError(f"level must be one of {sorted(_LEVELS)}")
    names = {v: k for k, v in _LEVELS.items()}
    if callback is None:
        fn = N.tfm_log_fn()
    else:
        def fn_py(lvl, message, _user):
            try:
                callback(names.get(lvl, str(lvl)), message.decode("utf-8", "replace"))
            except BaseException:  # never let an exception cross into C
                pass
        fn = N.tfm_log_fn(fn_py)
    N.library().tfm_set_log_callback(fn, None, _LEVELS[level])
    _log_callback = fn


def library_version() -> str:
    """The version of the loaded libtfm (tfm_version_string)."""
    return N.library().tfm_version_string().decode()


__all__ = ["Model", "ModelInfo", "Backend", "backends", "set_log_callback", "library_version"]
