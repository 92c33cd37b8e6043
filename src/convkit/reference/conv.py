"""Convolution as the textbook writes it: one output element at a time.

    y[n, k, o] = b[k] + sum over (c, f) of w[k, c, f] * xpad[n, c0 + c, o*S + f*D]

where c0 = (k // (K/G)) * (C/G) is the first input channel of k's group.
Loops run over batch, filters and output positions; the window sum is one
line. Gradients are written the same way, by sending each output's gradient
back along the products that made it.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import shapes

_NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _tuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _pairs(padding, n):
    """Explicit (lo, hi) pairs from an int, n ints, or pairs."""
    if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)):
        return tuple(tuple(p) for p in padding)
    return tuple((p, p) for p in _tuple(padding, n))


def _transpose_setup(x, w, stride, padding, dilation):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n = w.ndim - 2
    return x, w, _tuple(stride, n), _tuple(dilation, n), _pairs(padding, n)


def _setup(x, w, stride, padding, dilation):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n = w.ndim - 2
    stride, dilation = _tuple(stride, n), _tuple(dilation, n)
    pads = shapes.resolve_padding(padding, x.shape[2:], w.shape[2:], stride, dilation)
    return x, w, n, stride, dilation, pads


def pad(x, pads, mode="zeros"):
    """Pad the spatial dims of x (N, C, *S) by (lo, hi) pairs with NumPy's np.pad."""
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads), mode=_NP_MODE[mode])


def pad_vjp(g, x_shape, pads, mode="zeros"):
    """Send each padded cell's gradient to the input cell it copies (np.add.at over an index map)."""
    index = np.arange(int(np.prod(x_shape))).reshape(x_shape)
    padded_index = pad(index, pads, mode) if mode != "zeros" else None
    gx = np.zeros(int(np.prod(x_shape)))
    if padded_index is None:
        inner = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, x_shape[2:]))
        return np.array(g[(slice(None), slice(None)) + inner])
    np.add.at(gx, padded_index.ravel(), g.ravel())
    return gx.reshape(x_shape)


def _window(xp, o, f, stride, dilation):
    """Index of input cell read by output position o at kernel offset f."""
    return tuple(oi * s + fi * d for oi, fi, s, d in zip(o, f, stride, dilation))


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Reference N-d convolution of x (N, C, *S) with w (K, C/G, *F)."""
    x, w, n, stride, dilation, pads = _setup(x, w, stride, padding, dilation)
    xp = pad(x, pads, padding_mode)
    out = shapes.conv_output_shape(x.shape[2:], w.shape[2:], stride, pads, dilation)
    big_n, k_out = x.shape[0], w.shape[0]
    cg, kg = w.shape[1], k_out // groups
    y = np.zeros((big_n, k_out) + out)
    for i, k in itertools.product(range(big_n), range(k_out)):
        c0 = (k // kg) * cg
        for o in itertools.product(*map(range, out)):
            total = 0.0
            for f in itertools.product(*map(range, w.shape[2:])):
                total += np.dot(w[(k, slice(None)) + f], xp[(i, slice(c0, c0 + cg)) + _window(xp, o, f, stride, dilation)])
            y[(i, k) + o] = total + (0.0 if b is None else b[k])
    return y


def conv_vjp(g, x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Reference gradients of :func:`conv`: (grad_x, grad_w, grad_b or None)."""
    x, w, n, stride, dilation, pads = _setup(x, w, stride, padding, dilation)
    g = np.asarray(g, dtype=np.float64)
    xp = pad(x, pads, padding_mode)
    gxp, gw = np.zeros_like(xp), np.zeros_like(w)
    cg, kg = w.shape[1], w.shape[0] // groups
    for i, k in itertools.product(range(x.shape[0]), range(w.shape[0])):
        c0 = (k // kg) * cg
        for o in itertools.product(*map(range, g.shape[2:])):
            for f in itertools.product(*map(range, w.shape[2:])):
                at = (i, slice(c0, c0 + cg)) + _window(xp, o, f, stride, dilation)
                gxp[at] += g[(i, k) + o] * w[(k, slice(None)) + f]
                gw[(k, slice(None)) + f] += g[(i, k) + o] * xp[at]
    gx = pad_vjp(gxp, x.shape, pads, padding_mode)
    gb = None if b is None else g.sum(axis=(0, *range(2, g.ndim)))
    return gx, gw, gb


def conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Reference transposed convolution: every input cell scatters its value times the kernel.

    x (N, C, *S), w (C, K/G, *F); padding crops (lo, hi) cells per dim.
    """
    x, w, stride, dilation, pads = _transpose_setup(x, w, stride, padding, dilation)
    n = w.ndim - 2
    out = shapes.conv_transpose_output_shape(x.shape[2:], w.shape[2:], stride, pads, output_padding, dilation)
    cg, kg = x.shape[1] // groups, w.shape[1]
    y = np.zeros((x.shape[0], kg * groups) + out)
    for i, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        k0 = (c // cg) * kg
        for s in itertools.product(*map(range, x.shape[2:])):
            for f in itertools.product(*map(range, w.shape[2:])):
                at = tuple(si * st + fi * d - lo for si, fi, st, d, (lo, _) in zip(s, f, stride, dilation, pads))
                if all(0 <= a < o for a, o in zip(at, out)):
                    y[(i, slice(k0, k0 + kg)) + at] += x[(i, c) + s] * w[(c, slice(None)) + f]
    if b is not None:
        y += np.asarray(b).reshape((-1,) + (1,) * n)
    return y


def conv_transpose_vjp(g, x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Reference gradients of :func:`conv_transpose`: (grad_x, grad_w, grad_b or None)."""
    x, w, stride, dilation, pads = _transpose_setup(x, w, stride, padding, dilation)
    g = np.asarray(g, dtype=np.float64)
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    cg, kg = x.shape[1] // groups, w.shape[1]
    for i, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        k0 = (c // cg) * kg
        for s in itertools.product(*map(range, x.shape[2:])):
            for f in itertools.product(*map(range, w.shape[2:])):
                at = tuple(si * st + fi * d - lo for si, fi, st, d, (lo, _) in zip(s, f, stride, dilation, pads))
                if all(0 <= a < o for a, o in zip(at, g.shape[2:])):
                    gx[(i, c) + s] += np.dot(g[(i, slice(k0, k0 + kg)) + at], w[(c, slice(None)) + f])
                    gw[(c, slice(None)) + f] += x[(i, c) + s] * g[(i, slice(k0, k0 + kg)) + at]
    gb = None if b is None else g.sum(axis=(0, *range(2, g.ndim)))
    return gx, gw, gb


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """Reference im2col: column l holds window l, rows ordered (channel, kernel offset)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.ndim - 2
    k, d, s = _tuple(kernel_size, n), _tuple(dilation, n), _tuple(stride, n)
    pads = _pairs(padding, n)
    xp = pad(x, pads)
    out = shapes.conv_output_shape(x.shape[2:], k, s, pads, d)
    cols = np.zeros((x.shape[0], x.shape[1] * int(np.prod(k)), int(np.prod(out))))
    for i in range(x.shape[0]):
        for col, o in enumerate(itertools.product(*map(range, out))):
            row = 0
            for c in range(x.shape[1]):
                for f in itertools.product(*map(range, k)):
                    cols[i, row, col] = xp[(i, c) + _window(xp, o, f, s, d)]
                    row += 1
    return cols


def fold(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Reference col2im: add every column entry back onto the pixel it came from."""
    cols = np.asarray(cols, dtype=np.float64)
    n = len(output_size)
    k, d, s = _tuple(kernel_size, n), _tuple(dilation, n), _tuple(stride, n)
    pads = _pairs(padding, n)
    out = shapes.conv_output_shape(output_size, k, s, pads, d)
    c_in = cols.shape[1] // int(np.prod(k))
    img = np.zeros((cols.shape[0], c_in) + tuple(sz + lo + hi for sz, (lo, hi) in zip(output_size, pads)))
    for i in range(cols.shape[0]):
        for col, o in enumerate(itertools.product(*map(range, out))):
            row = 0
            for c in range(c_in):
                for f in itertools.product(*map(range, k)):
                    img[(i, c) + _window(img, o, f, s, d)] += cols[i, row, col]
                    row += 1
    inner = tuple(slice(lo, lo + sz) for sz, (lo, _) in zip(output_size, pads))
    return img[(slice(None), slice(None)) + inner]


__all__ = ["conv", "conv_vjp", "conv_transpose", "conv_transpose_vjp", "unfold", "fold", "pad", "pad_vjp"]
