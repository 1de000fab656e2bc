"""tfm — Python bindings for libtfm, an embeddable transformer inference library.

    import tfm
    with tfm.Model.load("model.gguf") as model, model.session() as s:
        for piece in s.generate("In the beginning", max_tokens=32, temperature=0):
            print(piece, end="", flush=True)

Pure Python over ctypes: libtfm.so is found through TFM_LIBRARY, next to this package, or on the
system loader path, and its version is checked at import. ``tfm._native`` mirrors tfm.h one to one;
this module is the Pythonic layer. Errors raise subclasses of :class:`TfmError`.
"""
from . import _native
from ._native import LibraryError
from .errors import (TfmAbortedError, TfmBackendError, TfmBufferTooSmallError, TfmClosedError,
                     TfmContextFullError, TfmError, TfmFormatError, TfmInternalError, TfmInvalidArgumentError,
                     TfmIOError, TfmOutOfMemoryError, TfmStateError, TfmUnsupportedError)
from .model import Backend, Model, ModelInfo, backends, library_version, set_log_callback
from .sampler import Sampler
from .session import Session
from .tokenizer import TextStream, Tokenizer

__version__ = "0.1.0"

_native.library()  # find, declare and version-check libtfm now: a clear error at import

__all__ = [
    "Model", "ModelInfo", "Session", "Sampler", "Tokenizer", "TextStream", "Backend", "backends",
    "set_log_callback", "library_version", "LibraryError", "TfmError", "TfmInvalidArgumentError", "TfmIOError",
    "TfmFormatError", "TfmUnsupportedError", "TfmOutOfMemoryError", "TfmContextFullError", "TfmBackendError",
    "TfmAbortedError", "TfmStateError", "TfmBufferTooSmallError", "TfmInternalError", "TfmClosedError",
    "__version__",
]
