"""Depthwise convolution (groups == in_channels, one filter per channel) at
stride 1, as shifted multiply-accumulates over flattened planes.

A GEMM would multiply 1-row matrices here, so instead each kernel offset is
one pass: ``y += w[:, k] * x shifted by k``. Flattening every padded plane
makes that shift a contiguous slice: output cell o (on a grid as wide as the
padded input, whose extra "junk" columns are cropped at the end) reads flat
input cell ``o + off_k``. Planes are processed in cache-sized blocks.
Legend: P planes (N*C), L junk-grid length, KK kernel offsets.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._config import get_workspace_limit
from ..shapes import full_correlation_padding, padded_shape
from .._parallel import run_blocks
from .._scratch import place, pooled, scratch


# Planes per block: about 512 KiB of float32 per operand, the three of a block (its padded planes, the sum
# and a product) within a core's 2 MiB L2. Forward + weight gradient, 144 channels at 56x56, batch 8 (ms):
# blocks of 2^16 elements 17.1-20.1, 2^17 14.1-14.4, 2^18 17.2-17.8; 32 channels at 112x112, batch 32: 2^16
# 63.6-64.1, 2^17 51.8-52.1 (before the blocks made their own padded planes: 84-91).
_BLOCK_ELEMENTS = 1 << 17


def applicable(x_channels, w, stride, groups):
    """Depthwise at stride 1 with a small channel multiplier. (One input channel
    with many filters is an ordinary conv: its GEMM has a useful shape.)"""
    return (groups == x_channels > 1 and w.shape[1] == 1 and w.shape[0] <= 4 * groups
            and all(s == 1 for s in stride))


def _geometry(padded, kernel, dilation, out):
    """Flat offsets of the kernel taps, the junk-grid length, and the flat length to allocate."""
    strides = [math.prod(padded[i + 1:]) for i in range(len(padded))]
    offs = [sum(k * d * s for k, d, s in zip(kk, dilation, strides))
            for kk in itertools.product(*map(range, kernel))]
    length = out[0] * strides[0]
    return offs, length, max(offs) + length


def _flat_block(planes, pads, padded, flat_len, slot):
    """planes (p, *S) zero-padded, flattened, with zeros after the end so every tap's slice is in range: a
    (p, flat_len) scratch array of this thread (one block's worth, so it is still in cache when read)."""
    buf = scratch(slot, (planes.shape[0], flat_len), planes.dtype)
    size = math.prod(padded)
    buf[:, size:] = 0
    view = buf[:, :size].reshape((planes.shape[0],) + tuple(padded))
    inner = (slice(None),) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(planes.shape[1:], pads))
    place(view, inner, planes)
    return buf


def _junk_block(planes, padded, out, slot):
    """grad_out planes (p, *out) on the junk grid (p, L), zeros in the junk columns, in a scratch array."""
    shape = (planes.shape[0], out[0]) + tuple(padded[1:])
    inner = (slice(None),) + tuple(slice(0, o) for o in out)
    return place(scratch(slot, shape, planes.dtype), inner, planes).reshape(planes.shape[0], -1)


def _crop(junk, shape_lead, padded, out):
    """Junk grid (P, L) -> (..., *out)."""
    grid = junk.reshape(shape_lead + (out[0],) + tuple(padded[1:]))
    return grid[(Ellipsis,) + tuple(slice(0, o) for o in out)]


def _blocks(planes, length):
    step = max(1, _BLOCK_ELEMENTS // max(length, 1))
    return [(p, min(planes, p + step)) for p in range(0, planes, step)]


def _plane_weights(w, batch, mult, j):
    """(N*C, KK) weights of multiplier slot j, one row per (n, c) plane."""
    wj = w[j::mult].reshape(w.shape[0] // mult, -1)
    return np.tile(wj, (batch, 1))


def _batches(x, flat_len, mult):
    """Batch slices whose full-size arrays (the output, or the input gradient's flat planes, with margin) fit in
    the workspace."""
    per_sample = 4 * x.shape[1] * flat_len * max(mult, 1) * x.itemsize
    nb = max(1, get_workspace_limit() // max(per_sample, 1))
    return [slice(i, min(x.shape[0], i + nb)) for i in range(0, x.shape[0], nb)] or [slice(0, 0)]  # empty batch


def forward(x, w, pads, dilation, out):
    """y = depthwise conv(x, w) with zero padding ``pads``, batch chunk by batch chunk."""
    flat_len = _geometry(_padded(x, pads), w.shape[2:], dilation, out)[2]
    parts = [_forward(x[b], w, pads, dilation, out) for b in _batches(x, flat_len, w.shape[0] // x.shape[1])]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def backward(x, w, g, pads, dilation, need_x=True, need_w=True):
    """(grad_x, grad_w) of the depthwise conv, batch chunk by batch chunk.

    With one filter per channel the input gradient is itself a depthwise convolution: of g, padded
    by (D*(F-1) - lo, D*(F-1) - hi), with the kernel rotated 180 degrees; the forward's blocked
    multiply-accumulate computes it in one pass per tap (measured on 144 channels at 56x56: 22 -> 15 ms).
    """
    kernel = w.shape[2:]
    rp = full_correlation_padding(kernel, dilation, pads)
    if need_x and w.shape[0] == x.shape[1] and all(lo >= 0 and hi >= 0 for lo, hi in rp):
        flip = (slice(None), slice(None)) + (slice(None, None, -1),) * len(kernel)
        gx = forward(g, np.ascontiguousarray(w[flip]), rp, dilation, x.shape[2:])
        return gx, (backward(x, w, g, pads, dilation, False, True)[1] if need_w else None)
    flat_len = _geometry(_padded(x, pads), w.shape[2:], dilation, g.shape[2:])[2]
    gxs, gw = [], None
    for b in _batches(x, flat_len, w.shape[0] // x.shape[1]):
        gx_b, gw_b = _backward(x[b], w, g[b], pads, dilation, need_x, need_w)
        gxs.append(gx_b)
        gw = gw_b if gw is None else gw + gw_b
    gx = (gxs[0] if len(gxs) == 1 else np.concatenate(gxs)) if need_x else None
    return gx, gw


def _padded(x, pads):
    return padded_shape(x.shape[2:], pads)


def _forward(x, w, pads, dilation, out):
    """Each block of planes is padded and flattened, multiplied-accumulated and cropped into y while it
    is in cache: x is read once and y written once, with no padded copy of the whole batch."""
    n_, c = x.shape[:2]
    mult, kernel = w.shape[0] // c, w.shape[2:]
    padded = _padded(x, pads)
    offs, length, flat_len = _geometry(padded, kernel, dilation, out)
    y = pooled((n_ * c, mult) + tuple(out), x.dtype)
    xs = x.reshape((n_ * c,) + x.shape[2:])
    wps = [_plane_weights(w, n_, mult, j) for j in range(mult)]

    def block(rows):
        p0, p1 = rows
        xf = _flat_block(xs[p0:p1], pads, padded, flat_len, "depthwise_flat")
        acc = scratch("depthwise_acc", (p1 - p0, length), x.dtype)
        tmp = scratch("depthwise_tmp", (p1 - p0, length), x.dtype)
        for j, wp in enumerate(wps):
            np.multiply(xf[:, offs[0]:offs[0] + length], wp[p0:p1, :1], out=acc)
            for k in range(1, len(offs)):
                np.multiply(xf[:, offs[k]:offs[k] + length], wp[p0:p1, k:k + 1], out=tmp)
                acc += tmp
            y[p0:p1, j] = _crop(acc, (p1 - p0,), padded, out)

    run_blocks(block, _blocks(n_ * c, length))
    return y.reshape((n_, c * mult) + tuple(out))


def _backward(x, w, g, pads, dilation, need_x=True, need_w=True):
    n_, c = x.shape[:2]
    mult, kernel = w.shape[0] // c, w.shape[2:]
    out = g.shape[2:]
    padded = _padded(x, pads)
    offs, length, flat_len = _geometry(padded, kernel, dilation, out)
    xs = x.reshape((n_ * c,) + x.shape[2:])
    gxf = pooled((n_ * c, flat_len), x.dtype, zero=True) if need_x else None
    gw = np.zeros(w.shape[:2] + (len(offs),), x.dtype) if need_w else None
    g = g.reshape((n_ * c, mult) + tuple(out))
    for j in range(mult):
        wp = _plane_weights(w, n_, mult, j) if need_x else None
        gwp = np.empty((n_ * c, len(offs)), x.dtype) if need_w else None

        def block(rows, j=j, wp=wp, gwp=gwp):
            p0, p1 = rows
            gj = _junk_block(g[p0:p1, j], padded, out, "depthwise_grad")   # grad_out on the junk grid
            if need_w:
                xf = _flat_block(xs[p0:p1], pads, padded, flat_len, "depthwise_flat")
            tmp = scratch("depthwise_tmp", (p1 - p0, length), x.dtype)
            for k, off in enumerate(offs):
                if need_w:
                    gwp[p0:p1, k] = np.vecdot(gj, xf[:, off:off + length])
                if need_x:
                    np.multiply(gj, wp[p0:p1, k:k + 1], out=tmp)
                    gxf[p0:p1, off:off + length] += tmp

        run_blocks(block, _blocks(n_ * c, length))
        if need_w:
            gw[j::mult, 0] = gwp.reshape(n_, c, len(offs)).sum(axis=0)
    gx = None
    if need_x:
        gxp = gxf[:, :math.prod(padded)].reshape((n_, c) + padded)
        gx = gxp[(slice(None), slice(None)) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], pads))]
    return gx, (gw.reshape(w.shape) if need_w else None)
