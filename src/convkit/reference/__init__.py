"""Slow, readable loop versions of the ops: the tests' oracle and a page to read.

Nothing in the fast path imports this package.
"""
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all

__all__ = list(_conv_all)
try:  # the pooling reference lives beside the convolution one
    from .pool import *  # noqa: F401,F403
    from .pool import __all__ as _pool_all
    __all__ += _pool_all
except ImportError:  # pragma: no cover
    pass
