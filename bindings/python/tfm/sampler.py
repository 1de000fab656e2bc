"""Sampler: picks the next token from logits (greedy, temperature, top-k, top-p, min-p, repetition penalty)."""
import ctypes as C
from typing import Optional, Sequence

import numpy as np

from . import _native as N
from ._handle import Handle
from .errors import TfmClosedError, TfmInvalidArgumentError, check
from .tokenizer import ids_array


class Sampler:
    """A seeded sampler; the same seed gives the same tokens. One thread at a time.

    Defaults are the library's (tfm_sampler_params_default); ``temperature=0`` is greedy.
    The pipeline: repetition penalty, then greedy if temperature == 0, else top-k, temperature,
    softmax, top-p, min-p and a draw."""

    def __init__(self, temperature: Optional[float] = None, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, min_p: Optional[float] = None,
                 repeat_penalty: Optional[float] = None, repeat_last_n: Optional[int] = None,
                 seed: Optional[int] = None):
        lib = N.library()
        p = N.defaults("tfm_sampler_params_default")
        p.struct_size = C.sizeof(N.tfm_sampler_params)
        for name, value in (("temperature", temperature), ("top_k", top_k), ("top_p", top_p), ("min_p", min_p),
                            ("repeat_penalty", repeat_penalty), ("repeat_last_n", repeat_last_n)):
            if value is not None:
                setattr(p, name, value)
        if seed is not None:
            if not 0 <= seed < 2**64:
                raise TfmInvalidArgumentError(f"seed must be in 0 .. 2**64-1, got {seed}")
            p.seed = seed
        self.params = p
        out = C.c_void_p()
        check(lib.tfm_sampler_create(C.byref(p), C.byref(out)), "creating a sampler")
        self._handle = Handle(out.value, lib.tfm_sampler_free, "sampler")
        self._closed = False

    def _ptr(self):
        if self._closed:
            raise TfmClosedError("the sampler is closed")
        return self._handle.ptr

    def sample(self, logits, history: Sequence[int] = ()) -> int:
        """The next token id from ``logits`` (a 1-D float32 array of n_vocab scores, not modified),
        ``history`` being the recent ids for the repetition penalty."""
        arr = np.ascontiguousarray(logits, dtype=np.float32)
        if arr.ndim != 1 or arr.size == 0:
            raise TfmInvalidArgumentError(f"logits must be a non-empty 1-D array, got shape {arr.shape}")
        return self.sample_pointer(arr.ctypes.data_as(C.POINTER(C.c_float)), arr.size, history)

    def sample_pointer(self, logits_ptr, n_vocab: int, history: Sequence[int] = ()) -> int:
        """Like :meth:`sample` over a C pointer to n_vocab floats (no conversion)."""
        hist = history if isinstance(history, C.Array) else ids_array(history)
        out = C.c_int32()
        check(N.library().tfm_sampler_sample(self._ptr(), logits_ptr, n_vocab, hist, len(hist), C.byref(out)),
              "sampling")
        return out.value

    def reset(self, seed: int) -> None:
        """Restarts the random stream from ``seed``."""
        N.library().tfm_sampler_reset(self._ptr(), seed)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._handle.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
