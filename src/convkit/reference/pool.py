"""Pooling the slow way: loops over n, c and every output position, for the tests.

Each output is the max, mean or Lp norm of the input cells in its window,
written out cell by cell; each gradient is written as "add g to the cells the
output read". Nothing here calls convkit.functional; sizes come from
convkit.shapes. Inputs are (N, C, *spatial) or unbatched (C, *spatial).
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import _checks as C
from .. import shapes


def _rank(x, size):
    return len(size) if isinstance(size, (tuple, list)) else np.ndim(x) - 2


def _batched(x, n):
    x = np.asarray(x)
    return (x[None], True) if x.ndim == n + 1 else (x, False)


def _unbatch(a, unbatched):
    return a[0] if unbatched else a


def _setup(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    n = _rank(x, kernel_size)
    x, unbatched = _batched(x, n)
    k = C.ntuple(op, "kernel_size", kernel_size, n)
    s = k if stride is None else C.ntuple(op, "stride", stride, n)
    d = C.ntuple(op, "dilation", dilation, n)
    pads = shapes.resolve_padding(padding, x.shape[2:], k, s, d)
    out = shapes.pool_output_shape(x.shape[2:], k, s, pads, d, ceil_mode)
    return x, unbatched, (k, s, d, pads, out)


def _window(o, k, s, d, pads):
    """Coordinates (in the unpadded input) of window o's cells, in window order."""
    return [tuple(oi * si - lo + ki * di for oi, si, ki, di, (lo, _) in zip(o, s, kk, d, pads))
            for kk in itertools.product(*map(range, k))]


def _inside(cell, lows, highs):
    return all(lo <= c < hi for c, lo, hi in zip(cell, lows, highs))


def _planes_and_outputs(x, out):
    return itertools.product(range(x.shape[0]), range(x.shape[1]), itertools.product(*map(range, out)))


def _argmax(plane, cells):
    """The cell holding the max: the first maximum, but a NaN replaces the running max (PyTorch)."""
    values = [plane[c] for c in cells]
    nans = [c for c, v in zip(cells, values) if v != v]
    if nans:
        return nans[-1]
    return cells[values.index(max(values))]


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else (False if dtype.kind == "b" else np.iinfo(dtype).min)


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    x, unbatched, (k, s, d, pads, out) = _setup("max_pool", x, kernel_size, stride, padding, dilation, ceil_mode)
    sp = x.shape[2:]
    y = np.empty(x.shape[:2] + out, x.dtype)
    idx = np.empty(y.shape, np.int64)
    for n, c, o in _planes_and_outputs(x, out):
        cells = [cell for cell in _window(o, k, s, d, pads) if _inside(cell, (0,) * len(sp), sp)]
        if not cells:  # the window lies wholly in the padding
            y[(n, c) + o], idx[(n, c) + o] = _lowest(x.dtype), -1
            continue
        best = _argmax(x[n, c], cells)
        y[(n, c) + o] = x[n, c][best]
        idx[(n, c) + o] = np.ravel_multi_index(best, sp)
    y, idx = _unbatch(y, unbatched), _unbatch(idx, unbatched)
    return (y, idx) if return_indices else y


def max_pool_vjp(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False):
    _, idx = max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    return _route(grad_out, idx, np.shape(x), _rank(x, kernel_size))


def _route(grad_out, idx, x_shape, n):
    """Add each output's gradient to the input cell its index names."""
    g, unbatched = _batched(np.asarray(grad_out, dtype=float), n)
    idx, _ = _batched(idx, n)
    gx, _ = _batched(np.zeros(x_shape), n)
    sp = gx.shape[2:]
    for n_, c in itertools.product(range(g.shape[0]), range(g.shape[1])):
        for o in itertools.product(*map(range, g.shape[2:])):
            if idx[(n_, c) + o] >= 0:
                gx[n_, c][np.unravel_index(idx[(n_, c) + o], sp)] += g[(n_, c) + o]
    return _unbatch(gx, unbatched)


def _avg_terms(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, dilation):
    """For every output: (where, input cells it averages, divisor)."""
    x, unbatched, (k, s, d, pads, out) = _setup("avg_pool", x, kernel_size, stride, padding, dilation, ceil_mode)
    sp = x.shape[2:]
    terms = []
    for n, c, o in _planes_and_outputs(x, out):
        window = _window(o, k, s, d, pads)
        cells = [cell for cell in window if _inside(cell, (0,) * len(sp), sp)]
        if divisor_override:
            div = divisor_override
        elif count_include_pad:  # cells of the explicitly padded input, not the ceil_mode overhang
            div = sum(_inside(cell, [-lo for lo, _ in pads], [w + hi for w, (_, hi) in zip(sp, pads)])
                      for cell in window)
        else:
            div = len(cells)
        terms.append(((n, c) + o, [(n, c) + cell for cell in cells], div))
    return x, unbatched, out, terms


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None, dilation=1):
    x, unbatched, out, terms = _avg_terms(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                          divisor_override, dilation)
    y = np.zeros(x.shape[:2] + out)
    for where, cells, div in terms:
        y[where] = sum(float(x[cell]) for cell in cells) / div if div else 0.0
    return _unbatch(y, unbatched)


def avg_pool_vjp(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, dilation=1):
    xb, unbatched, out, terms = _avg_terms(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                           divisor_override, dilation)
    g, _ = _batched(np.asarray(grad_out, dtype=float), xb.ndim - 2)
    gx = np.zeros(xb.shape)
    for where, cells, div in terms:
        for cell in cells:
            gx[cell] += g[where] / div
    return _unbatch(gx, unbatched)


def lp_pool(x, norm_type, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    x, unbatched, (k, s, d, pads, out) = _setup("lp_pool", x, kernel_size, stride, padding, dilation, ceil_mode)
    sp = x.shape[2:]
    p = float(norm_type)
    y = np.zeros(x.shape[:2] + out)
    for n, c, o in _planes_and_outputs(x, out):
        cells = [cell for cell in _window(o, k, s, d, pads) if _inside(cell, (0,) * len(sp), sp)]
        y[(n, c) + o] = sum(abs(float(x[n, c][cell])) ** p for cell in cells) ** (1 / p)
    return _unbatch(y, unbatched)


def lp_pool_vjp(grad_out, x, norm_type, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    y = lp_pool(x, norm_type, kernel_size, stride, padding, dilation, ceil_mode)
    xb, unbatched, (k, s, d, pads, out) = _setup("lp_pool", x, kernel_size, stride, padding, dilation, ceil_mode)
    y, _ = _batched(y, len(k))
    g, _ = _batched(np.asarray(grad_out, dtype=float), len(k))
    sp = xb.shape[2:]
    p = float(norm_type)
    gx = np.zeros(xb.shape)
    for n, c, o in _planes_and_outputs(xb, out):
        yo = y[(n, c) + o]
        for cell in _window(o, k, s, d, pads):
            v = float(xb[n, c][cell]) if _inside(cell, (0,) * len(sp), sp) else 0.0
            if yo > 0 and v != 0:  # d/dv (sum |v|^p)^(1/p) = sign(v) |v|^(p-1) / y^(p-1)
                gx[n, c][cell] += g[(n, c) + o] * np.sign(v) * abs(v) ** (p - 1) / yo ** (p - 1)
    return _unbatch(gx, unbatched)


def _bins(x, output_size):
    """Cells of every adaptive bin: bin i of a dim covers [floor(i*L/O), ceil((i+1)*L/O))."""
    n = _rank(x, output_size)
    x, unbatched = _batched(x, n)
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * n
    out = tuple(L if O is None else O for L, O in zip(x.shape[2:], sizes))
    ranges = [[range(i * L // O, -(-(i + 1) * L // O)) for i in range(O)] for L, O in zip(x.shape[2:], out)]
    bins = {o: list(itertools.product(*(r[i] for r, i in zip(ranges, o)))) for o in itertools.product(*map(range, out))}
    return x, unbatched, out, bins


def adaptive_avg_pool(x, output_size):
    x, unbatched, out, bins = _bins(x, output_size)
    y = np.zeros(x.shape[:2] + out)
    for n, c, o in _planes_and_outputs(x, out):
        y[(n, c) + o] = sum(float(x[n, c][cell]) for cell in bins[o]) / len(bins[o])
    return _unbatch(y, unbatched)


def adaptive_avg_pool_vjp(grad_out, x, output_size):
    xb, unbatched, out, bins = _bins(x, output_size)
    g, _ = _batched(np.asarray(grad_out, dtype=float), xb.ndim - 2)
    gx = np.zeros(xb.shape)
    for n, c, o in _planes_and_outputs(xb, out):
        for cell in bins[o]:
            gx[n, c][cell] += g[(n, c) + o] / len(bins[o])
    return _unbatch(gx, unbatched)


def adaptive_max_pool(x, output_size, return_indices=False):
    x, unbatched, out, bins = _bins(x, output_size)
    y = np.empty(x.shape[:2] + out, x.dtype)
    idx = np.empty(y.shape, np.int64)
    for n, c, o in _planes_and_outputs(x, out):
        best = _argmax(x[n, c], bins[o])
        y[(n, c) + o], idx[(n, c) + o] = x[n, c][best], np.ravel_multi_index(best, x.shape[2:])
    y, idx = _unbatch(y, unbatched), _unbatch(idx, unbatched)
    return (y, idx) if return_indices else y


def adaptive_max_pool_vjp(grad_out, x, output_size, return_indices=False):
    _, idx = adaptive_max_pool(x, output_size, return_indices=True)
    return _route(grad_out, idx, np.shape(x), _rank(x, output_size))


def _unpool_size(x, kernel_size, stride, padding, output_size):
    n = _rank(x, kernel_size)
    k = C.ntuple("max_unpool", "kernel_size", kernel_size, n)
    s = k if stride is None else C.ntuple("max_unpool", "stride", stride, n)
    if output_size is not None:
        return n, tuple(output_size)[-n:]
    pads = C.padding_arg("max_unpool", padding, n, allow_strings=False)
    return n, shapes.conv_transpose_output_shape(np.shape(x)[-n:], k, s, pads)


def max_unpool(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    n, out = _unpool_size(x, kernel_size, stride, padding, output_size)
    x, unbatched = _batched(x, n)
    indices, _ = _batched(indices, n)
    y = np.zeros(x.shape[:2] + out, x.dtype)
    for n_, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for i in itertools.product(*map(range, x.shape[2:])):
            y[n_, c][np.unravel_index(indices[(n_, c) + i], out)] = x[(n_, c) + i]
    return _unbatch(y, unbatched)


def max_unpool_vjp(grad_out, x, indices, kernel_size, stride=None, padding=0, output_size=None):
    n, out = _unpool_size(x, kernel_size, stride, padding, output_size)
    g, unbatched = _batched(np.asarray(grad_out, dtype=float), n)
    indices, _ = _batched(indices, n)
    gx = np.zeros(indices.shape)
    for n_, c in itertools.product(range(gx.shape[0]), range(gx.shape[1])):
        for i in itertools.product(*map(range, gx.shape[2:])):
            gx[(n_, c) + i] = g[n_, c][np.unravel_index(indices[(n_, c) + i], out)]
    return _unbatch(gx, unbatched)


__all__ = ["max_pool", "max_pool_vjp", "avg_pool", "avg_pool_vjp", "lp_pool", "lp_pool_vjp",
           "adaptive_avg_pool", "adaptive_avg_pool_vjp", "adaptive_max_pool", "adaptive_max_pool_vjp",
           "max_unpool", "max_unpool_vjp"]
