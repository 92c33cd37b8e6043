"""Implicit-GEMM convolution: one matrix product per kernel tap, read straight from the padded input,
no columns at all. For stride 1, groups 1 and any number of spatial dims.

Flatten each sample's zero-padded input to (C, S), S = prod(padded size), and number the outputs by
the flat index q of their window's corner. The window of q reads input q + off(tap), with
off(tap) = sum_i tap_i * dilation_i * P_i (P_i: the padded input's flat strides), so for every tap

    Y_wide (K, L) += W[:, :, tap] (K, C) @ Xp[:, off(tap) : off(tap) + L]      L = last q + 1

is one GEMM whose right operand is a window of Xp itself. Y_wide holds every output at its corner's
flat index; the rest (windows that run off the padded rows' ends) is never read. The padded samples
sit side by side, (C, N * S), so a group of samples is one product per tap; BLAS adds each tap's
product into the result (beta = 1, :func:`convkit._blas.gemm`) and the outputs are then one strided
copy into y. The weight gradient is the same products the other way round,
gW[:, :, tap] += G_wide (K, L) @ Xp[:, off(tap) : off(tap) + L]^T, with g placed at its outputs'
corners in a zeroed G_wide.

The input gradient of a stride-1 convolution is a forward convolution of g with the rotated kernel,
so the forward serves it too (functional/_conv_core.py). Every temporary is a scratch buffer, and a
batch goes in groups whose padded input and result stay within the workspace limit.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._blas import gemm
from .._config import get_workspace_limit
from .._scratch import place, pooled, scratch
from ..shapes import padded_shape
from ._weights import derived


def applicable(w, stride, pads, groups):
    """Stride 1, no groups, no cropping (pads >= 0)."""
    return groups == 1 and all(s == 1 for s in stride) and all(lo >= 0 and hi >= 0 for lo, hi in pads)


def _geometry(x_shape, kernel, pads, dilation, out):
    """(S, padded flat strides, L, tap offsets) of one sample's flattened padded input."""
    sp = padded_shape(x_shape[2:], pads)
    flat = [math.prod(sp[i + 1:]) for i in range(len(sp))]
    span = sum((o - 1) * f for o, f in zip(out, flat)) + 1
    offsets = [sum(t * d * f for t, d, f in zip(tap, dilation, flat))
               for tap in itertools.product(*(range(k) for k in kernel))]
    return math.prod(sp), flat, span, offsets


def _groups(n, s, rows, itemsize):
    """Sample ranges whose padded input (rows of S) and wide result fit in the workspace limit."""
    per = max(1, rows * s * itemsize)
    step = max(1, min(n, get_workspace_limit() // per))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _padded(x, n0, n1, pads):
    """Samples [n0, n1) of x zero-padded and flattened side by side: a scratch (C, (n1-n0) * S)."""
    c = x.shape[1]
    at = (slice(None), slice(None)) + tuple(slice(lo, lo + d) for (lo, _), d in zip(pads, x.shape[2:]))
    xp = scratch("implicit_input", (c, n1 - n0) + padded_shape(x.shape[2:], pads), x.dtype)
    return place(xp, at, x[n0:n1].swapaxes(0, 1)).reshape(c, -1)


def _outputs(wide, nb, s, flat, out, writeable=False):
    """The (nb, K, *out) outputs inside a wide result (K, (nb-1) * S + L), as a view."""
    item = wide.itemsize
    return as_strided(wide, (nb, wide.shape[0]) + tuple(out),
                      (s * item, wide.strides[0]) + tuple(f * item for f in flat), writeable=writeable)


def forward(x, w, pads, dilation, out, bias=None, weights=None):
    """y (N, K, *out) = conv(x, w) with stride 1 and zero padding ``pads``; a bias (K,) is added as the
    outputs are copied into y. ``weights`` (a WeightCache of w) keeps the tap-major copy of w."""
    n_, c = x.shape[:2]
    k = w.shape[0]
    s, flat, span, offsets = _geometry(x.shape, w.shape[2:], pads, dilation, out)
    # one (K, C) matrix per tap: (taps, K, C)
    wt = derived(weights, "implicit", lambda: np.ascontiguousarray(np.moveaxis(w.reshape(k, c, -1), -1, 0)))
    y = pooled((n_, k) + tuple(out), x.dtype)
    for n0, n1 in _groups(n_, s, c + k, x.itemsize):
        xp = _padded(x, n0, n1, pads)
        width = (n1 - n0 - 1) * s + span
        wide = scratch("implicit_wide", (k, width), x.dtype)
        for t, off in enumerate(offsets):
            gemm(wt[t], xp[:, off:off + width], wide, beta=0.0 if t == 0 else 1.0)
        got = _outputs(wide, n1 - n0, s, flat, out)
        if bias is None:
            np.copyto(y[n0:n1], got)
        else:
            np.add(got, bias.reshape((-1,) + (1,) * len(out)), out=y[n0:n1])
    return y


def weight_grad(x, w_shape, g, pads, dilation):
    """gW (K, C, *kernel) of y = conv(x, w) with stride 1, given g = dL/dy (N, K, *out)."""
    n_, c = x.shape[:2]
    k, kernel, out = w_shape[0], tuple(w_shape[2:]), g.shape[2:]
    s, flat, span, offsets = _geometry(x.shape, kernel, pads, dilation, out)
    gw = np.zeros((len(offsets), k, c), x.dtype)
    for n0, n1 in _groups(n_, s, c + k, x.itemsize):
        xp = _padded(x, n0, n1, pads)
        width = (n1 - n0 - 1) * s + span
        gwide = scratch("implicit_wide", (k, width), x.dtype, zero=True)
        np.copyto(_outputs(gwide, n1 - n0, s, flat, out, writeable=True), g[n0:n1])
        for t, off in enumerate(offsets):
            gemm(gwide, xp[:, off:off + width].T, gw[t], beta=1.0)
    return np.ascontiguousarray(np.moveaxis(gw, 0, -1)).reshape((k, c) + kernel)
