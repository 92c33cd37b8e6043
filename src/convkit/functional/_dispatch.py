"""How ops in convkit.functional accept Tensors without importing them.

The functional layer knows nothing of autograd (data flows one way). A type
that wants the F.* ops to handle it defines ``__convkit_function__(func, args,
kwargs)``, as NumPy's ``__array_function__`` protocol does; when any argument
is such an object, the op hands the call to it. Plain arrays never pay more
than a scan of the arguments.
"""
from __future__ import annotations

import functools


def _handler(args, kwargs):
    for a in args:
        h = getattr(type(a), "__convkit_function__", None)
        if h is not None:
            return h
    for a in kwargs.values():
        h = getattr(type(a), "__convkit_function__", None)
        if h is not None:
            return h
    return None


def tensor_aware(fn):
    """Wrap a public op so Tensor arguments route to their type's handler."""
    @functools.wraps(fn)
    def op(*args, **kwargs):
        h = _handler(args, kwargs)
        if h is None:
            return fn(*args, **kwargs)
        return h(fn, args, kwargs)

    op.__convkit_op__ = fn
    return op


def wrap_namespace(ns, names):
    """Replace every forward op named in ``names`` (not the *_vjp ones) in ``ns``."""
    for name in names:
        f = ns[name]
        if callable(f) and not name.endswith("_vjp") and not hasattr(f, "__convkit_op__"):
            ns[name] = tensor_aware(f)
