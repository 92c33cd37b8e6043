"""Process-wide settings: the workspace limit that bounds every temporary."""
from __future__ import annotations

import contextlib
import threading

_DEFAULT_WORKSPACE = 256 * 2**20
_state = threading.local()
_global = {"workspace_limit": _DEFAULT_WORKSPACE}


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


def _check_limit(nbytes):
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1024:
        raise ValueError(
            f"set_workspace_limit: nbytes must be an int >= 1024; got nbytes={nbytes!r}."
        )
    return nbytes
