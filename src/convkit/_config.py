"""Process-wide settings: the workspace limit that bounds every temporary, and the
memory check every op makes before it allocates its output."""
from __future__ import annotations

import contextlib
import os
import sys
import threading

_DEFAULT_WORKSPACE = 256 * 2**20
_state = threading.local()
_global = {"workspace_limit": _DEFAULT_WORKSPACE, "alloc_limit": None}


def get_workspace_limit() -> int:
    """Bytes one op may use for a temporary (im2col columns, padded copies)."""
    return getattr(_state, "workspace_limit", None) or _global["workspace_limit"]


def set_workspace_limit(nbytes: int) -> None:
    """Set the process-wide workspace limit in bytes (default 256 MiB)."""
    _global["workspace_limit"] = _check_limit(nbytes)


@contextlib.contextmanager
def workspace_limit(nbytes: int):
    """Temporarily set the workspace limit for this thread.

    >>> import convkit
    >>> with convkit.workspace_limit(16 * 2**20):
    ...     pass
    """
    old = getattr(_state, "workspace_limit", None)
    _state.workspace_limit = _check_limit(nbytes)
    try:
        yield
    finally:
        _state.workspace_limit = old


def _check_limit(nbytes, op="set_workspace_limit"):
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1024:
        raise ValueError(
            f"{op}: nbytes must be an int >= 1024; got nbytes={nbytes!r}."
        )
    return nbytes


# --------------------------------------------------------------------------- allocation check

# Below this many bytes an allocation is not checked: reading /proc/meminfo costs more than a
# small op, and a small allocation that fails still raises NumPy's own MemoryError.
_CHECK_FROM = 64 * 2**20


def available_memory():
    """Bytes the system can still give this process without swapping, or None when unknown.

    Linux: ``MemAvailable`` of /proc/meminfo; elsewhere the free physical pages (os.sysconf).
    """
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", "rb") as f:
                for line in f:
                    if line.startswith(b"MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def get_alloc_limit():
    """Bytes one op may allocate for its output and temporaries together (None: only the machine's memory)."""
    return getattr(_state, "alloc_limit", None) or _global["alloc_limit"]


def set_alloc_limit(nbytes) -> None:
    """Set the process-wide allocation limit in bytes; None removes it (default)."""
    _global["alloc_limit"] = None if nbytes is None else _check_limit(nbytes, "set_alloc_limit")


@contextlib.contextmanager
def alloc_limit(nbytes):
    """Temporarily limit, for this thread, what one op may allocate (see :func:`check_alloc`).

    >>> import numpy as np, convkit.functional as F
    >>> x = np.broadcast_to(np.float32(1), (10**6, 3, 32, 32))   # 12 GB, allocated by nobody
    >>> with alloc_limit(2**30):
    ...     F.relu(x)
    Traceback (most recent call last):
    MemoryError: relu: output would need 12288000000 bytes (11.4 GiB); the allocation limit is 1073741824 bytes (1 GiB).
    """
    old = getattr(_state, "alloc_limit", None)
    _state.alloc_limit = _check_limit(nbytes, "alloc_limit")
    try:
        yield
    finally:
        _state.alloc_limit = old


def _gib(n):
    """Bytes in the largest binary unit that keeps the number >= 1: '4 MiB', '11.4 GiB', '768 TiB'."""
    for unit in ("EiB", "PiB", "TiB", "GiB", "MiB", "KiB"):
        scale = 2 ** (10 * ("KMGTPE".index(unit[0]) + 1))
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def check_alloc(op, nbytes, what="output"):
    """Raise MemoryError naming ``op`` and the size when ``nbytes`` exceed the allocation limit
    or the memory the machine has available; call it before allocating.

    ``what`` says what the bytes are for ("output", "output and padded input", ...).
    """
    nbytes = int(nbytes)
    limit = get_alloc_limit()
    if limit is not None and nbytes > limit:
        raise MemoryError(f"{op}: {what} would need {nbytes} bytes ({_gib(nbytes)}); "
                          f"the allocation limit is {limit} bytes ({_gib(limit)}).")
    if nbytes < _CHECK_FROM:
        return
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(f"{op}: {what} would need {nbytes} bytes ({_gib(nbytes)}); "
                          f"only {avail} bytes ({_gib(avail)}) of memory are available.")
