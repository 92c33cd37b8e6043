"""Padding: F.pad (PyTorch's argument order) and the N-d pad used by conv, with its vjp.

Reflect, replicate and circular padding are separable: along each axis the
padded array is ``x.take(idx, axis)`` for an index map ``idx``. The vjp sends
each padded cell's gradient back to the cell it was copied from.
"""
from __future__ import annotations

import numpy as np

from .. import _checks as C

_NP_MODES = {"constant": "constant", "zeros": "constant", "reflect": "reflect",
             "replicate": "replicate", "circular": "circular"}


def _index_map(op, n, lo, hi, mode):
    i = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return i % n
    if mode == "reflect":
        if n == 1:
            return np.zeros_like(i)
        period = 2 * (n - 1)
        j = i % period
        return np.where(j >= n, period - j, j)
    raise AssertionError(mode)


def _check_pairs(op, shape, pairs, mode, name="pad"):
    for ax, (n, (lo, hi)) in zip(range(len(shape) - len(pairs), len(shape)), zip(shape[-len(pairs):], pairs)):
        if n + lo + hi < 0 or (n + lo + hi == 0 and n > 0):
            C.fail(op, name, f"such that dim {ax} (size {n}) stays non-empty", (lo, hi))
        if mode == "reflect" and (lo >= n or hi >= n):
            C.fail(op, name, f"smaller than the input size {n} of dim {ax} for reflect padding", (lo, hi))
        if mode == "circular" and (lo > n or hi > n):
            C.fail(op, name, f"at most the input size {n} of dim {ax} for circular padding", (lo, hi))


def pad_nd(x, pairs, mode="zeros", value=0.0):
    """Pad the last len(pairs) axes of x by (lo, hi) pairs. Negative values crop."""
    mode = _NP_MODES[mode]
    lead = x.ndim - len(pairs)
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return x
    if mode == "constant":
        crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pairs, x.shape[lead:]))
        x = x[(Ellipsis,) + crop]
        out_shape = x.shape[:lead] + tuple(n + max(lo, 0) + max(hi, 0) for (lo, hi), n in zip(pairs, x.shape[lead:]))
        out = np.full(out_shape, value, dtype=x.dtype) if value else np.zeros(out_shape, x.dtype)
        inner = tuple(slice(max(lo, 0), max(lo, 0) + n) for (lo, hi), n in zip(pairs, x.shape[lead:]))
        out[(Ellipsis,) + inner] = x
        return out
    for ax, (lo, hi) in enumerate(pairs, start=lead):
        if lo or hi:
            x = x.take(_index_map("pad", x.shape[ax], lo, hi, mode), axis=ax)
    return x


def pad_nd_vjp(g, input_shape, pairs, mode="zeros"):
    """Gradient of pad_nd with respect to its input."""
    mode = _NP_MODES[mode]
    lead = len(input_shape) - len(pairs)
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return g
    if mode == "constant":
        gx = np.zeros(input_shape, dtype=g.dtype)
        src = tuple(slice(max(lo, 0), g.shape[lead + i] - max(hi, 0)) for i, (lo, hi) in enumerate(pairs))
        dst = tuple(slice(max(-lo, 0), input_shape[lead + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pairs))
        gx[(Ellipsis,) + dst] = g[(Ellipsis,) + src]
        return gx
    for ax in reversed(range(lead, len(input_shape))):
        lo, hi = pairs[ax - lead]
        if not (lo or hi):
            continue
        n = input_shape[ax]
        idx = _index_map("pad", n, lo, hi, mode)
        shape = list(g.shape)
        shape[ax] = n
        out = np.zeros(shape, dtype=g.dtype)
        # The interior copies straight through; loop only over the padded border cells.
        a, b = max(lo, 0), max(lo, 0) + n - max(-lo, 0) - max(-hi, 0)
        out[_sl(ax, slice(max(-lo, 0), max(-lo, 0) + b - a))] += g[_sl(ax, slice(a, b))]
        for p in [*range(a), *range(b, len(idx))]:
            out[_sl(ax, idx[p])] += g[_sl(ax, p)]
        g = out
    return g


def _sl(ax, s):
    return (slice(None),) * ax + (s,)


def _torch_pairs(op, pad, ndim):
    if not isinstance(pad, (list, tuple)) or len(pad) % 2 or not pad:
        C.fail(op, "pad", "a sequence of an even number of ints (last dim first, as in PyTorch)", pad)
    if len(pad) // 2 > ndim:
        C.fail(op, "pad", f"at most {2 * ndim} ints for a {ndim}-d input", pad)
    vals = [C.as_int(op, "pad", p) for p in pad]
    pairs = [(vals[2 * i], vals[2 * i + 1]) for i in range(len(vals) // 2)]
    return tuple(reversed(pairs))


def pad(x, pad, mode="constant", value=0.0):
    """Pad an array as ``torch.nn.functional.pad`` does.

    ``pad`` lists (before, after) for the last dim first: ``(left, right, top,
    bottom)`` pads W then H. Negative values crop. Modes: constant, reflect,
    replicate, circular.

    >>> import numpy as np
    >>> pad(np.array([[1., 2., 3.]]), (2, 1), mode="reflect")
    array([[3., 2., 1., 2., 3., 2.]])
    """
    x, pairs = _pad_args("pad", x, pad, mode)
    # None is 0, as in PyTorch; a float may be anything (NaN and inf fill too), other types are checked
    value = 0.0 if value is None else value if isinstance(value, float) else C.real_number("pad", "value", value)
    return pad_nd(x, pairs, mode, value)


def _pad_args(op, x, pad, mode):
    x = C.as_float_array(op, "input", x, keep_int=True)
    if not isinstance(mode, str) or mode not in ("constant", "reflect", "replicate", "circular"):
        C.fail(op, "mode", "'constant', 'reflect', 'replicate' or 'circular'", mode)
    pairs = _torch_pairs(op, pad, x.ndim)
    _check_pairs(op, x.shape, pairs, _NP_MODES[mode])
    lead = x.shape[:x.ndim - len(pairs)]
    out = lead + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[len(lead):], pairs))
    C.check_alloc(op, C.nbytes(out, x.dtype) + (x.size * x.itemsize if op.endswith("_vjp") else 0))
    return x, pairs


def pad_vjp(grad_out, x, pad, mode="constant", value=0.0):
    """Gradient of :func:`pad` with respect to x."""
    op = "pad_vjp"
    x, pairs = _pad_args(op, x, pad, mode)
    lead = x.shape[:x.ndim - len(pairs)]
    out = lead + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[len(lead):], pairs))
    g = C.as_float_array(op, "grad_out", grad_out)
    C.same_shape(op, "grad_out", g.shape, out, "the output shape")
    return pad_nd_vjp(g, x.shape, pairs, mode)
