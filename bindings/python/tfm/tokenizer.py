"""Tokenizer and TextStream: text to token ids and back."""
import ctypes as C
from typing import Iterable, List, Optional, Sequence, Union

from . import _native as N
from ._handle import Handle
from .errors import TfmClosedError, TfmInvalidArgumentError, check

Text = Union[str, bytes]


def _as_bytes(text: Text) -> bytes:
    if isinstance(text, str):
        return text.encode("utf-8")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"text must be str or bytes, not {type(text).__name__}")


def ids_array(ids: Iterable[int]):
    """A ctypes int32 array of the ids (a list, a tuple or a numpy integer array)."""
    if hasattr(ids, "dtype") and hasattr(ids, "ctypes"):  # numpy: one conversion, no Python loop
        import numpy as np
        arr = np.ascontiguousarray(ids, dtype=np.int32)
        if arr.ndim != 1:
            raise TfmInvalidArgumentError("token ids must be one-dimensional")
        out = (C.c_int32 * len(arr))()
        C.memmove(out, arr.ctypes.data, arr.nbytes)
        return out
    ids = list(ids)
    try:
        return (C.c_int32 * len(ids))(*ids)
    except TypeError:
        raise TypeError("token ids must be integers") from None
    except OverflowError:
        raise TfmInvalidArgumentError("a token id does not fit in 32 bits") from None


def tokenize_flags(bos: Optional[bool], eos: Optional[bool], special: bool) -> int:
    """bos and eos both None: as the tokenizer's own settings say; otherwise exactly as given."""
    if bos is None and eos is None:
        flags = N.TFM_TOKENIZE_MODEL_DEFAULTS
    else:
        flags = (N.TFM_TOKENIZE_ADD_BOS if bos else 0) | (N.TFM_TOKENIZE_ADD_EOS if eos else 0)
    return flags | (N.TFM_TOKENIZE_PARSE_SPECIAL if special else 0)


class Tokenizer:
    """A tokenizer: loaded on its own with :meth:`load`, or a model's (``model.tokenizer``).

    Immutable and safe to share between threads. A model's tokenizer keeps the model alive."""

    def __init__(self, handle: Handle, borrowed_ptr: Optional[int] = None):
        # handle: the tokenizer's own (tfm_tokenizer_load), or a reference to the model that owns the
        # tokenizer at borrowed_ptr; close() releases it either way.
        self._handle = handle
        self._borrowed_ptr = borrowed_ptr
        self._closed = False

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        """Loads a SentencePiece .model, a tokenizer.json, a Hugging Face directory or a GGUF file's
        vocabulary."""
        lib = N.library()
        out = C.c_void_p()
        check(lib.tfm_tokenizer_load(str(path).encode(), C.byref(out)), f"loading the tokenizer {path}")
        return cls(Handle(out.value, lib.tfm_tokenizer_free, "tokenizer"))

    def _ptr(self):
        if self._closed:
            raise TfmClosedError("the tokenizer is closed")
        ptr = self._handle.ptr
        return self._borrowed_ptr if self._borrowed_ptr is not None else ptr

    def close(self) -> None:
        """Releases the tokenizer (a model's tokenizer: its hold on the model)."""
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

    def tokenize(self, text: Text, bos: Optional[bool] = None, eos: Optional[bool] = None,
                 special: bool = False) -> List[int]:
        """Token ids of ``text`` (str, or bytes that need not be valid UTF-8).

        ``bos``/``eos``: add BOS / EOS. Both None (the default): as the tokenizer's settings say
        (a Llama vocabulary adds BOS). ``special``: text such as "<s>" becomes the special id."""
        lib = N.library()
        data = _as_bytes(text)
        flags = tokenize_flags(bos, eos, special)
        n = C.c_size_t()
        st = lib.tfm_tokenize(self._ptr(), data, len(data), flags, None, 0, C.byref(n))
        if st not in (N.TFM_OK, N.TFM_E_BUFFER_TOO_SMALL):
            check(st, "tokenize")
        ids = (C.c_int32 * max(n.value, 1))()
        check(lib.tfm_tokenize(self._ptr(), data, len(data), flags, ids, n.value, C.byref(n)), "tokenize")
        return ids[: n.value]

    def detokenize_bytes(self, ids: Sequence[int]) -> bytes:
        """The bytes the ids decode to (special tokens give none)."""
        lib = N.library()
        arr = ids_array(ids)
        n = C.c_size_t()
        st = lib.tfm_detokenize(self._ptr(), arr, len(arr), None, 0, C.byref(n))
        if st not in (N.TFM_OK, N.TFM_E_BUFFER_TOO_SMALL):
            check(st, "detokenize")
        buf = C.create_string_buffer(max(n.value, 1))
        check(lib.tfm_detokenize(self._ptr(), arr, len(arr), buf, n.value, C.byref(n)), "detokenize")
        return buf.raw[: n.value]

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text the ids decode to; bytes that are not valid UTF-8 become U+FFFD."""
        return self.detokenize_bytes(ids).decode("utf-8", "replace")

    @property
    def vocab_size(self) -> int:
        return N.library().tfm_tokenizer_vocab_size(self._ptr())

    @property
    def bos_id(self) -> int:
        """The BOS id, or -1 when the vocabulary has none."""
        return N.library().tfm_tokenizer_bos(self._ptr())

    @property
    def eos_id(self) -> int:
        """The EOS id, or -1 when the vocabulary has none."""
        return N.library().tfm_tokenizer_eos(self._ptr())

    @property
    def kind(self) -> str:
        return N.library().tfm_tokenizer_kind(self._ptr()).decode()

    def piece(self, token_id: int) -> str:
        """The raw piece string of an id (e.g. "▁the", "<0x0A>")."""
        p = N.library().tfm_token_piece(self._ptr(), token_id)
        if p is None:
            raise TfmInvalidArgumentError(f"token id {token_id} is out of range 0..{self.vocab_size - 1}")
        return p.decode("utf-8", "replace")

    def stream(self) -> "TextStream":
        """A streaming decoder over this tokenizer."""
        return TextStream(self)


class TextStream:
    """Turns ids into text one at a time without splitting UTF-8 characters. One thread at a time."""

    def __init__(self, tokenizer: Tokenizer):
        lib = N.library()
        self._tokenizer = tokenizer  # the stream reads the tokenizer: keep it alive
        out = C.c_void_p()
        check(lib.tfm_text_stream_create(tokenizer._ptr(), C.byref(out)), "creating a text stream")
        self._handle = Handle(out.value, lib.tfm_text_stream_free, "text stream")
        self._closed = False

    def _ptr(self):
        if self._closed:
            raise TfmClosedError("the text stream is closed")
        return self._handle.ptr

    def push(self, token_id: int) -> str:
        """The complete text the id releases (possibly "")."""
        text = C.POINTER(C.c_char)()
        n = C.c_size_t()
        check(N.library().tfm_text_stream_push(self._ptr(), token_id, C.byref(text), C.byref(n)), "decoding a token")
        return C.string_at(text, n.value).decode("utf-8", "replace") if n.value else ""

    def flush(self) -> str:
        """Whatever is held back (an incomplete character comes out as U+FFFD); resets the stream."""
        text = C.POINTER(C.c_char)()
        n = C.c_size_t()
        check(N.library().tfm_text_stream_flush(self._ptr(), C.byref(text), C.byref(n)), "flushing a text stream")
        return C.string_at(text, n.value).decode("utf-8", "replace") if n.value else ""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._handle.release()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
