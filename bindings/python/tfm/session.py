"""Session: one sequence's KV cache, its logits, and generation."""
import ctypes as C
import weakref
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native as N
from ._handle import Handle
from .errors import TfmClosedError, TfmInvalidArgumentError, TfmStateError, check
from .model import KV_DTYPES, Model
from .sampler import Sampler
from .tokenizer import TextStream, ids_array

Prompt = Union[str, bytes, Sequence[int], None]


def _stop_holdback(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that could still grow into a stop string."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best


class Session:
    """A sequence being evaluated: its KV cache, the logits of the last eval, its tokens.

    Create it with ``model.session(...)``. Use it from one thread at a time (several sessions of one
    model may run in several threads). Close it with :meth:`close` or a ``with`` block.

    ``n_ctx``: context length (0: the library's default, min(training context, 4096)).
    ``kv_dtype``: "f16" (default), "bf16" or "f32". ``logits_all``: keep the logits of every position
    of the last eval (needed for ``logits(all=True)``). ``n_batch``: tokens per forward chunk (0: 512).
    ``abort()``: called between layers and tokens during an eval; returning True stops it
    (TfmAbortedError)."""

    def __init__(self, model: Model, n_ctx: int = 0, kv_dtype: str = "f16", logits_all: bool = False,
                 n_batch: int = 0, abort: Optional[Callable[[], bool]] = None):
        lib = N.library()
        if kv_dtype not in KV_DTYPES:
            raise TfmInvalidArgumentError(f"kv_dtype must be one of {sorted(KV_DTYPES)}, got {kv_dtype!r}")
        model._ptr()  # raises if the model is closed
        p = N.defaults("tfm_session_params_default")
        p.struct_size = C.sizeof(N.tfm_session_params)
        p.n_ctx = n_ctx
        p.kv_dtype = KV_DTYPES[kv_dtype]
        p.logits_all = 1 if logits_all else 0
        p.n_batch = n_batch
        self._abort_errors = []
        self._abort_callback = None
        if abort is not None:
            errors = self._abort_errors

            def on_abort(_user):
                try:
                    return 1 if abort() else 0
                except BaseException as e:  # stop, and raise it once the eval returns
                    errors.append(e)
                    return 1
            self._abort_callback = N.tfm_abort_fn(on_abort)
            p.abort = self._abort_callback
        model_handle = model._handle.retain()
        out = C.c_void_p()
        st = lib.tfm_session_create(model_handle.ptr, C.byref(p), C.byref(out))
        if st != N.TFM_OK:
            model_handle.release()
            check(st, "creating a session")
        self._handle = Handle(out.value, lib.tfm_session_free, "session", deps=[model_handle])
        self._closed = False
        self.model = model
        self._n_vocab = model.info.n_vocab
        self._logits_all = bool(logits_all)
        self._history: List[int] = []  # the ids in the cache (the repetition penalty's history)

    # ---- lifetime ----
    def _ptr(self):
        if self._closed:
            raise TfmClosedError("the session is closed")
        return self._handle.ptr

    def close(self) -> None:
        """Frees the session (its memory stays until logits views of it are gone too)."""
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

    # ---- the sequence ----
    @property
    def n_past(self) -> int:
        """Tokens in the sequence (the KV cache length)."""
        return N.library().tfm_session_n_past(self._ptr())

    @property
    def n_ctx(self) -> int:
        return N.library().tfm_session_n_ctx(self._ptr())

    @property
    def tokens(self) -> List[int]:
        """The ids in the sequence, oldest first."""
        return list(self._history)

    def eval(self, ids: Sequence[int]) -> None:
        """Appends ids to the sequence, running the model over them.

        Raises TfmContextFullError (nothing appended), TfmInvalidArgumentError (an id out of range;
        nothing appended) or TfmAbortedError (the tokens before the aborted chunk are kept)."""
        arr = ids if isinstance(ids, C.Array) else ids_array(ids)
        ptr = self._ptr()
        st = N.library().tfm_session_eval(ptr, arr, len(arr))
        kept = N.library().tfm_session_n_past(ptr) - len(self._history)
        if kept > 0:
            self._history.extend(arr[:kept])
        if self._abort_errors:
            raise self._abort_errors.pop()
        check(st, "eval")

    def rewind(self, n_past: int) -> None:
        """Keeps the first n_past tokens and drops the rest."""
        check(N.library().tfm_session_rewind(self._ptr(), n_past), "rewind")
        del self._history[n_past:]

    def reset(self) -> None:
        """Empties the sequence."""
        N.library().tfm_session_reset(self._ptr())
        self._history.clear()

    # ---- logits ----
    def logits(self, all: bool = False, copy: bool = False) -> np.ndarray:
        """Logits of the last eval as float32: shape [n_vocab] for the last position, or
        [n_tokens_of_last_eval, n_vocab] with ``all=True`` (needs ``logits_all=True``).

        Without ``copy`` the array is a read-only view of the library's memory, no copy made. It is
        valid until this session's next eval, rewind or reset, and reads garbage after them: copy it
        (``copy=True``, :meth:`logits_copy` or ``np.array(view)``) to keep it. The view keeps the
        session's memory alive, so closing the session never leaves it dangling."""
        lib = N.library()
        t = C.c_void_p()
        check(lib.tfm_session_logits(self._ptr(), N.TFM_LOGITS_ALL if all else N.TFM_LOGITS_LAST, C.byref(t)),
              "logits")
        try:
            shape = tuple(lib.tfm_tensor_dim(t, d) for d in range(lib.tfm_tensor_ndim(t)))
            address = lib.tfm_tensor_data(t)
            count = int(np.prod(shape))
            if lib.tfm_tensor_dtype(t) != N.TFM_DTYPE_F32 or lib.tfm_tensor_nbytes(t) != 4 * count:
                raise TfmStateError("the library returned logits that are not float32")
        finally:
            lib.tfm_tensor_free(t)  # frees the handle only; the data belongs to the session
        buf = (C.c_float * count).from_address(address)
        if copy:
            return np.array(np.frombuffer(buf, dtype=np.float32).reshape(shape))
        owner = self._handle.retain()
        buf._tfm_session = owner
        weakref.finalize(buf, owner.release)
        view = np.frombuffer(buf, dtype=np.float32).reshape(shape)
        view.flags.writeable = False
        return view

    def logits_copy(self, all: bool = False) -> np.ndarray:
        """A copy of :meth:`logits` that stays valid."""
        return self.logits(all=all, copy=True)

    # ---- generation ----
    def _prompt_ids(self, prompt: Prompt) -> List[int]:
        if prompt is None:
            return []
        if isinstance(prompt, (str, bytes)):
            if not prompt:
                return []
            with self.model.tokenizer as tok:
                # A new sequence starts as the tokenizer wants (a Llama vocabulary adds BOS); a
                # continuation adds nothing.
                return tok.tokenize(prompt) if not self._history else tok.tokenize(prompt, bos=False, eos=False)
        return list(prompt)

    def generate_tokens(self, prompt: Prompt = None, max_tokens: int = 128, temperature: Optional[float] = None,
                        top_k: Optional[int] = None, top_p: Optional[float] = None, min_p: Optional[float] = None,
                        repeat_penalty: Optional[float] = None, repeat_last_n: Optional[int] = None,
                        seed: Optional[int] = None, ignore_eos: bool = False,
                        sampler: Optional[Sampler] = None) -> Iterator[Tuple[int, str]]:
        """Evaluates ``prompt`` (text, ids, or None to continue), then yields ``(id, text)`` for each
        generated token, ``text`` being the complete UTF-8 text it released (possibly ""). Every
        yielded token has been evaluated (it is in the cache) unless the context is full. At a
        natural end (EOS, max_tokens, full context) held-back bytes come as a last ``(-1, text)``.

        Sampling parameters default to the library's (temperature 0.8, top-k 40, top-p 0.95,
        min-p 0.05); ``temperature=0`` is greedy. Pass ``sampler`` to reuse one instead."""
        if max_tokens < 0:
            raise TfmInvalidArgumentError(f"max_tokens must be >= 0, got {max_tokens}")
        lib = N.library()
        prompt_ids = self._prompt_ids(prompt)
        if prompt_ids:
            self.eval(prompt_ids)
        if not lib.tfm_session_last_logits(self._ptr()):
            raise TfmStateError("nothing to continue from: give a prompt")
        own = sampler is None
        if own:
            sampler = Sampler(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                              repeat_penalty=repeat_penalty, repeat_last_n=repeat_last_n, seed=seed)
        tok = self.model.tokenizer
        stream = TextStream(tok)
        eos = tok.eos_id
        try:
            for _ in range(max_tokens):
                logits = lib.tfm_session_last_logits(self._ptr())
                token = sampler.sample_pointer(logits, self._n_vocab, self._history)
                if token == eos and not ignore_eos:
                    break
                full = self.n_past >= self.n_ctx
                if not full:
                    self.eval([token])
                yield token, stream.push(token)
                if full:
                    break
            rest = stream.flush()
            if rest:
                yield -1, rest
        finally:
            stream.close()
            tok.close()
            if own:
                sampler.close()

    def generate(self, prompt: Prompt = None, max_tokens: int = 128, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None, min_p: Optional[float] = None,
                 repeat_penalty: Optional[float] = None, repeat_last_n: Optional[int] = None,
                 seed: Optional[int] = None, stop: Sequence[str] = (), ignore_eos: bool = False,
                 sampler: Optional[Sampler] = None) -> Iterator[str]:
        """Like :meth:`generate_tokens`, yielding only the text pieces (never empty ones).

        ``stop``: strings that end the generation; the text up to the first one found is yielded,
        the stop string itself is not. Text that might be the start of a stop string is held back
        until it is known not to be."""
        stops = [s for s in stop if s]
        pending = ""
        gen = self.generate_tokens(prompt, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                                   repeat_last_n, seed, ignore_eos, sampler)
        try:
            for _, piece in gen:
                if not stops:
                    if piece:
                        yield piece
                    continue
                pending += piece
                hits = [i for i in (pending.find(s) for s in stops) if i >= 0]
                if hits:
                    if min(hits) > 0:
                        yield pending[:min(hits)]
                    return
                keep = _stop_holdback(pending, stops)
                if len(pending) > keep:
                    yield pending[:len(pending) - keep]
                    pending = pending[len(pending) - keep:]
            if pending:
                yield pending
        finally:
            gen.close()

    def __repr__(self):
        if self._closed:
            return "<tfm.Session closed>"
        return f"<tfm.Session {self.n_past}/{self.n_ctx} tokens>"
