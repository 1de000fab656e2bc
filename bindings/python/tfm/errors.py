"""Exceptions: one subclass of TfmError per tfm_status, each carrying the status and the library's
detailed message (tfm_last_error, read right after the failing call on the same thread)."""
from . import _native as N


class TfmError(Exception):
    """A libtfm call failed. ``status`` is the tfm_status value, ``status_name`` its name
    (tfm_status_string) and ``detail`` the library's message."""

    status = N.TFM_E_INTERNAL

    def __init__(self, message, status=None, detail=""):
        if status is not None:
            self.status = status
        self.detail = detail
        super().__init__(message)

    @property
    def status_name(self):
        return N.library().tfm_status_string(self.status).decode()


class TfmInvalidArgumentError(TfmError, ValueError):
    status = N.TFM_E_INVALID_ARGUMENT


class TfmIOError(TfmError, OSError):
    status = N.TFM_E_IO


class TfmFormatError(TfmError):
    status = N.TFM_E_FORMAT


class TfmUnsupportedError(TfmError):
    status = N.TFM_E_UNSUPPORTED


class TfmOutOfMemoryError(TfmError, MemoryError):
    status = N.TFM_E_OOM


class TfmContextFullError(TfmError):
    status = N.TFM_E_CONTEXT_FULL


class TfmBackendError(TfmError):
    status = N.TFM_E_BACKEND


class TfmAbortedError(TfmError):
    status = N.TFM_E_ABORTED


class TfmStateError(TfmError):
    status = N.TFM_E_STATE


class TfmBufferTooSmallError(TfmError):
    status = N.TFM_E_BUFFER_TOO_SMALL


class TfmInternalError(TfmError):
    status = N.TFM_E_INTERNAL


class TfmClosedError(TfmStateError, ValueError):
    """The object was closed; it can no longer be used."""


_BY_STATUS = {cls.status: cls for cls in (
    TfmInvalidArgumentError, TfmIOError, TfmFormatError, TfmUnsupportedError, TfmOutOfMemoryError,
    TfmContextFullError, TfmBackendError, TfmAbortedError, TfmStateError, TfmBufferTooSmallError,
    TfmInternalError)}


def error_for(status, what):
    """The exception for a failed call: its class from the status, its message from the library."""
    lib = N.library()
    detail = lib.tfm_last_error().decode("utf-8", "replace")
    name = lib.tfm_status_string(status).decode()
    cls = _BY_STATUS.get(status, TfmError)
    message = f"{what}: {name}" + (f": {detail}" if detail else "")
    return cls(message, status, detail)


def check(status, what):
    """Raises the matching TfmError when ``status`` is not TFM_OK."""
    if status != N.TFM_OK:
        raise error_for(status, what)
