"""Reference-counted ownership of one C handle, so that frees happen exactly once, in a safe order.

A Python object (Model, Session, ...) holds one reference and drops it in close() or at garbage
collection. Whatever must outlive the handle holds another: a session holds its model's handle, a
logits array holds its session's handle. The C free function runs when the last reference goes,
so closing a model while its sessions live, or a session while a logits view lives, never frees
memory that is still in use."""
import threading

from .errors import TfmClosedError


class Handle:
    __slots__ = ("_ptr", "_free", "_refs", "_deps", "_lock", "_what")

    def __init__(self, ptr, free, what, deps=()):
        self._ptr = ptr
        self._free = free
        self._refs = 1
        self._deps = tuple(deps)  # handles this one keeps alive (already retained by the caller)
        self._lock = threading.Lock()
        self._what = what

    @property
    def ptr(self):
        ptr = self._ptr
        if ptr is None:
            raise TfmClosedError(f"the {self._what} is closed")
        return ptr

    def retain(self):
        with self._lock:
            if self._ptr is None:
                raise TfmClosedError(f"the {self._what} is closed")
            self._refs += 1
        return self

    def release(self):
        with self._lock:
            self._refs -= 1
            if self._refs > 0 or self._ptr is None:
                return
            ptr, self._ptr = self._ptr, None
        self._free(ptr)
        for dep in self._deps:
            dep.release()
