"""Reused scratch buffers for temporaries that never leave the call that makes them.

A fresh large NumPy array is fresh memory from the operating system: glibc maps every
allocation above its threshold (at most 32 MiB) anew, and the kernel zero-fills each page
on first touch. Columns and products made and dropped on every call pay that each time
(3x3x3 16->32 at 16x32x32, batch 2, forward and both gradients: 40 -> 33 ms with glibc told to
keep its memory). Here a temporary comes from a named slot instead: one buffer per
(thread, slot), grown to the largest size asked for and reused while it is no larger than
the workspace limit, so its pages stay mapped between calls.

Arrays that leave the call (outputs, gradients, what a forward keeps for its backward) come from
:func:`pooled` instead: a pool of buffers, each lent to one array at a time and free again once no
view of that array is left.

Rules for callers: a slot's array is valid until the next ``scratch`` call with the same
slot in the same thread, so never hold two arrays of one slot at once, and never return
one (or a view of one) to the user. :func:`release` frees this thread's buffers.
"""
from __future__ import annotations

import math
import os
import threading
import weakref

import numpy as np

from ._config import get_workspace_limit

_local = threading.local()


def scratch(slot, shape, dtype, zero=False):
    """An array of ``shape`` and ``dtype`` on the thread's buffer ``slot`` (zero-filled if ``zero``;
    otherwise its contents are whatever the last user left)."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > get_workspace_limit():
        return _plain(shape, dtype, zero)
    cache = _local.__dict__.setdefault("buffers", {})
    buf = cache.get(slot)
    if buf is None or buf.nbytes < nbytes:
        cache.pop(slot, None)  # free the old one before taking the new
        # whole 64-byte lines: a view at offset 0 of a fresh allocation is aligned for any dtype
        buf = cache[slot] = np.empty(-(-max(nbytes, 1) // 64) * 64, np.uint8)
    out = buf[:nbytes].view(dtype).reshape(shape)
    if zero:
        out.fill(0)
    return out


def _plain(shape, dtype, zero):
    """A plain NumPy array, for what neither the scratch buffers nor the pool take."""
    return (np.zeros if zero else np.empty)(shape, dtype)


def release():
    """Free this thread's scratch buffers."""
    _local.__dict__.pop("buffers", None)


def held_bytes():
    """Bytes of scratch buffers this thread holds."""
    return sum(b.nbytes for b in _local.__dict__.get("buffers", {}).values())


def place(a, inner, src):
    """a with src copied into a[inner] and zeros in the rest (the padding), each element written once."""
    zero_border(a, inner)
    a[inner] = src
    return a


def zero_border(a, inner):
    """Zero what the slices ``inner`` (one per leading axis) leave of ``a``: the padding around them."""
    for axis, sl in enumerate(inner):
        lo, hi = sl.start or 0, a.shape[axis] if sl.stop is None else sl.stop
        head = (slice(None),) * axis
        a[head + (slice(0, lo),)] = 0
        a[head + (slice(hi, None),)] = 0
    return a


# --------------------------------------------------------------------------- pooled arrays
# Arrays that leave the call (outputs, gradients, what a forward keeps for its backward) cannot be
# scratch, but they can come from a pool of buffers that no live array uses: a training step makes
# the same arrays every time, and each then lands on pages that are already mapped.

class _Buffer:
    __slots__ = ("mem", "busy")

    def __init__(self, nbytes):
        self.mem = np.empty(nbytes + 64, np.uint8)
        self.busy = False

    @property
    def nbytes(self):
        return self.mem.nbytes - 64


def _give_back(buf):
    buf.busy = False


_pool_lock = threading.Lock()
_pool: list = []


def _after_fork():   # a lock held by another thread at fork time would stay held in the child
    global _pool_lock
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

# Below this many bytes an array is plain NumPy: glibc's heap serves it without fresh pages.
POOLED_MIN_BYTES = 1 << 20


def pooled(shape, dtype, zero=False):
    """A new array (zero-filled if ``zero``) on a pooled buffer that no live array uses.

    The array is the only way to its buffer: its base is a memoryview, where NumPy stops collapsing
    the bases of views, so every view of it holds it, and once the last one is gone the buffer is
    free for the next call. The pool holds at most the workspace limit (busy and free buffers
    together), dropping free buffers that do not fit to make room; an array it cannot place, or a
    small one, is plain np.empty / np.zeros."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    limit = get_workspace_limit()
    if nbytes < POOLED_MIN_BYTES or nbytes > limit:
        return _plain(shape, dtype, zero)
    with _pool_lock:
        free = [b for b in _pool if not b.busy]
        fit = [b for b in free if nbytes <= b.nbytes <= 2 * nbytes]
        if fit:
            buf = min(fit, key=lambda b: b.nbytes)
        else:
            held = sum(b.nbytes for b in _pool)
            if held - sum(b.nbytes for b in free) + nbytes > limit:   # the busy ones alone leave no room
                return _plain(shape, dtype, zero)
            for b in sorted(free, key=lambda b: b.nbytes):           # make room, smallest free buffers first
                if held + nbytes <= limit:
                    break
                _pool.remove(b)
                held -= b.nbytes
            buf = _Buffer(nbytes)
            _pool.append(buf)
        buf.busy = True
    off = (-buf.mem.ctypes.data) % 64
    owner = np.frombuffer(memoryview(buf.mem)[off:off + nbytes], np.uint8)
    weakref.finalize(owner, _give_back, buf)
    out = owner.view(dtype).reshape(shape)
    if zero:
        out.fill(0)
    return out


def kept_or_scratch(shape, dtype, slot):
    """A pooled array for what leaves the call (``slot`` None), else this thread's scratch buffer ``slot``."""
    return pooled(shape, dtype) if slot is None else scratch(slot, shape, dtype)


def pooled_bytes():
    """(busy, free) bytes of the pool of pooled arrays."""
    with _pool_lock:
        busy = sum(b.nbytes for b in _pool if b.busy)
        return busy, sum(b.nbytes for b in _pool) - busy


def release_pool():
    """Drop the pool's free buffers (busy ones go when their arrays do)."""
    with _pool_lock:
        _pool[:] = [b for b in _pool if b.busy]


def release_memory():
    """Give back the memory convkit keeps for reuse between calls: the calling thread's scratch
    buffers and the free buffers of the pool of outputs (at most the workspace limit each).

    >>> import convkit
    >>> convkit.release_memory()
    """
    release()
    release_pool()
