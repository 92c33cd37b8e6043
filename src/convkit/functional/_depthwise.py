"""Depthwise convolution (groups == in_channels, one filter per channel) as
shifted multiply-accumulates over flattened planes.

A GEMM would multiply 1-row matrices here, so instead each kernel offset is
one pass: ``y += w[:, k] * x shifted by k``. Flattening every padded plane
makes that shift a contiguous slice: output cell o (on a grid as wide as the
padded input, whose extra "junk" columns are cropped at the end) reads flat
input cell ``o + off_k``. Planes are processed in cache-sized blocks.

With a stride S the padded plane is first split into its S phases per dim
(phase a holds the cells a, a + S, a + 2S, ...): output cell o reads padded cell
S*o + k*D, which is cell o + (k*D) // S of phase (k*D) % S, so each tap is again
a contiguous slice, of one phase plane, and the junk grid is as wide as a phase.
Legend: P planes (N*C), L junk-grid length, KK kernel offsets, Q phase-plane shape.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._config import get_workspace_limit
from ..shapes import full_correlation_padding, padded_shape, phase_cells
from .._parallel import run_blocks
from .._scratch import place, pooled, scratch


# Planes per block: about 512 KiB of float32 per operand, the three of a block (its padded planes, the sum
# and a product) within a core's 2 MiB L2. Forward + weight gradient, 144 channels at 56x56, batch 8 (ms):
# blocks of 2^16 elements 17.1-20.1, 2^17 14.1-14.4, 2^18 17.2-17.8; 32 channels at 112x112, batch 32: 2^16
# 63.6-64.1, 2^17 51.8-52.1 (before the blocks made their own padded planes: 84-91).
_BLOCK_ELEMENTS = 1 << 17


def applicable(x_channels, w, stride, groups):
    """Depthwise with a small channel multiplier. (One input channel with many
    filters is an ordinary conv: its GEMM has a useful shape.)"""
    return groups == x_channels > 1 and w.shape[1] == 1 and w.shape[0] <= 4 * groups


class _Geom:
    """Where each tap reads: ``taps`` (phase index, flat offset in the phase plane) per kernel offset; Q the
    phase-plane shape, L the junk-grid length, the flat length of a phase plane with room for every slice,
    and ``phases`` the phase of each phase plane (one, all zeros, at stride 1)."""

    def __init__(self, padded, kernel, stride, dilation, out):
        self.q = tuple(-(-p // s) for p, s in zip(padded, stride))
        self.phases = list(itertools.product(*map(range, stride)))
        qstrides = [math.prod(self.q[i + 1:]) for i in range(len(self.q))]
        self.taps = []
        for kk in itertools.product(*map(range, kernel)):
            pos = [k * d for k, d in zip(kk, dilation)]
            self.taps.append((self.phases.index(tuple(p % s for p, s in zip(pos, stride))),
                              sum((p // s) * qs for p, s, qs in zip(pos, stride, qstrides))))
        self.length = out[0] * qstrides[0]
        # room for every tap's slice, and for the whole phase plane (a stride can leave its last cells unread)
        self.flat_len = max(max(off for _, off in self.taps) + self.length, math.prod(self.q))
        self.stride = tuple(stride)

    def cells(self, shape, pads, phase):
        """(phase-plane index, input index) of the input cells (spatial ``shape``, padded by ``pads``) that land
        in ``phase``: see shapes.phase_cells."""
        cells = [phase_cells(n, lo, a, s, q) for n, (lo, _), a, s, q in zip(shape, pads, phase, self.stride, self.q)]
        return (slice(None),) + tuple(c[0] for c in cells), (slice(None),) + tuple(c[1] for c in cells)


def _geometry(x, pads, kernel, stride, dilation, out):
    return _Geom(padded_shape(x.shape[2:], pads), kernel, stride, dilation, out)


def _flat_block(planes, pads, geom, slot):
    """planes (p, *S) zero-padded, split into phases and flattened, with zeros after each phase's end so every
    tap's slice is in range: a (p, phases, flat_len) scratch array of this thread (one block's worth, so it is
    still in cache when read)."""
    p = planes.shape[0]
    buf = scratch(slot, (p, len(geom.phases), geom.flat_len), planes.dtype)
    size = math.prod(geom.q)
    buf[:, :, size:] = 0
    for i, phase in enumerate(geom.phases):
        dst, src = geom.cells(planes.shape[1:], pads, phase)
        place(buf[:, i, :size].reshape((p,) + geom.q), dst, planes[src])
    return buf


def _unphase(gxf, pads, geom, shape):
    """The input's cells of phase planes (P, phases, flat_len) -> (P, *S): each input cell is in one phase."""
    size = math.prod(geom.q)
    if len(geom.phases) == 1:      # one phase: the padded plane itself, cropped
        view = gxf[:, 0, :size].reshape((gxf.shape[0],) + geom.q)
        return view[(slice(None),) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(shape, pads))]
    gx = np.empty((gxf.shape[0],) + tuple(shape), gxf.dtype)
    for i, phase in enumerate(geom.phases):
        dst, src = geom.cells(shape, pads, phase)
        gx[src] = gxf[:, i, :size].reshape((gxf.shape[0],) + geom.q)[dst]
    return gx


def _junk_block(planes, geom, out, slot):
    """grad_out planes (p, *out) on the junk grid (p, L), zeros in the junk columns, in a scratch array."""
    shape = (planes.shape[0], out[0]) + tuple(geom.q[1:])
    inner = (slice(None),) + tuple(slice(0, o) for o in out)
    return place(scratch(slot, shape, planes.dtype), inner, planes).reshape(planes.shape[0], -1)


def _crop(junk, shape_lead, geom, out):
    """Junk grid (P, L) -> (..., *out)."""
    grid = junk.reshape(shape_lead + (out[0],) + tuple(geom.q[1:]))
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
    the workspace. ``flat_len``: of all a plane's phases."""
    per_sample = 4 * x.shape[1] * flat_len * max(mult, 1) * x.itemsize
    nb = max(1, get_workspace_limit() // max(per_sample, 1))
    return [slice(i, min(x.shape[0], i + nb)) for i in range(0, x.shape[0], nb)] or [slice(0, 0)]  # empty batch


def forward(x, w, pads, dilation, out, stride=None):
    """y = depthwise conv(x, w) with zero padding ``pads``, batch chunk by batch chunk."""
    stride = stride or (1,) * len(out)
    geom = _geometry(x, pads, w.shape[2:], stride, dilation, out)
    parts = [_forward(x[b], w, pads, stride, dilation, out)
             for b in _batches(x, len(geom.phases) * geom.flat_len, w.shape[0] // x.shape[1])]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def backward(x, w, g, pads, dilation, need_x=True, need_w=True, stride=None):
    """(grad_x, grad_w) of the depthwise conv, batch chunk by batch chunk.

    At stride 1 with one filter per channel the input gradient is itself a depthwise convolution: of g,
    padded by (D*(F-1) - lo, D*(F-1) - hi), with the kernel rotated 180 degrees; the forward's blocked
    multiply-accumulate computes it in one pass per tap (measured on 144 channels at 56x56: 22 -> 15 ms).
    With a stride, each tap's g times its weight is added into its slice of the input's phase planes.
    """
    kernel = w.shape[2:]
    stride = stride or (1,) * len(kernel)
    rp = full_correlation_padding(kernel, dilation, pads)
    if (need_x and w.shape[0] == x.shape[1] and all(lo >= 0 and hi >= 0 for lo, hi in rp)
            and all(s == 1 for s in stride)):
        flip = (slice(None), slice(None)) + (slice(None, None, -1),) * len(kernel)
        gx = forward(g, np.ascontiguousarray(w[flip]), rp, dilation, x.shape[2:])
        return gx, (backward(x, w, g, pads, dilation, False, True)[1] if need_w else None)
    geom = _geometry(x, pads, kernel, stride, dilation, g.shape[2:])
    gxs, gw = [], None
    for b in _batches(x, len(geom.phases) * geom.flat_len, w.shape[0] // x.shape[1]):
        gx_b, gw_b = _backward(x[b], w, g[b], pads, stride, dilation, need_x, need_w)
        gxs.append(gx_b)
        gw = gw_b if gw is None else gw + gw_b
    gx = (gxs[0] if len(gxs) == 1 else np.concatenate(gxs)) if need_x else None
    return gx, gw


def _forward(x, w, pads, stride, dilation, out):
    """Each block of planes is padded, split into phases and flattened, multiplied-accumulated and cropped
    into y while it is in cache: x is read once and y written once, with no padded copy of the whole batch."""
    n_, c = x.shape[:2]
    mult, kernel = w.shape[0] // c, w.shape[2:]
    geom = _geometry(x, pads, kernel, stride, dilation, out)
    length, taps = geom.length, geom.taps
    y = pooled((n_ * c, mult) + tuple(out), x.dtype)
    xs = x.reshape((n_ * c,) + x.shape[2:])
    wps = [_plane_weights(w, n_, mult, j) for j in range(mult)]

    def block(rows):
        p0, p1 = rows
        xf = _flat_block(xs[p0:p1], pads, geom, "depthwise_flat")
        acc = scratch("depthwise_acc", (p1 - p0, length), x.dtype)
        tmp = scratch("depthwise_tmp", (p1 - p0, length), x.dtype)
        for j, wp in enumerate(wps):
            ph, off = taps[0]
            np.multiply(xf[:, ph, off:off + length], wp[p0:p1, :1], out=acc)
            for k in range(1, len(taps)):
                ph, off = taps[k]
                np.multiply(xf[:, ph, off:off + length], wp[p0:p1, k:k + 1], out=tmp)
                acc += tmp
            y[p0:p1, j] = _crop(acc, (p1 - p0,), geom, out)

    run_blocks(block, _blocks(n_ * c, len(geom.phases) * length))
    return y.reshape((n_, c * mult) + tuple(out))


def _backward(x, w, g, pads, stride, dilation, need_x=True, need_w=True):
    n_, c = x.shape[:2]
    mult, kernel = w.shape[0] // c, w.shape[2:]
    out = g.shape[2:]
    geom = _geometry(x, pads, kernel, stride, dilation, out)
    length, taps = geom.length, geom.taps
    xs = x.reshape((n_ * c,) + x.shape[2:])
    phased = len(geom.phases) > 1
    # at stride 1 the input gradient is its padded planes, cropped at the end; with phases each block puts its
    # planes' cells back in place itself, while they are in cache
    gxf = None if not need_x else pooled((n_ * c, len(geom.phases), geom.flat_len), x.dtype, zero=not phased)
    gx = np.empty((n_ * c,) + x.shape[2:], x.dtype) if need_x and phased else None
    gw = np.zeros(w.shape[:2] + (len(taps),), x.dtype) if need_w else None
    g = g.reshape((n_ * c, mult) + tuple(out))
    wps = [_plane_weights(w, n_, mult, j) for j in range(mult)] if need_x else None
    gwp = np.empty((mult, n_ * c, len(taps)), x.dtype) if need_w else None

    def block(rows):
        p0, p1 = rows
        if need_w:
            xf = _flat_block(xs[p0:p1], pads, geom, "depthwise_flat")
        if need_x and phased:
            gxf[p0:p1] = 0
        tmp = scratch("depthwise_tmp", (p1 - p0, length), x.dtype)
        for j in range(mult):
            gj = _junk_block(g[p0:p1, j], geom, out, "depthwise_grad")   # grad_out on the junk grid
            for k, (ph, off) in enumerate(taps):
                if need_w:
                    gwp[j, p0:p1, k] = np.vecdot(gj, xf[:, ph, off:off + length])
                if need_x:
                    np.multiply(gj, wps[j][p0:p1, k:k + 1], out=tmp)
                    gxf[p0:p1, ph, off:off + length] += tmp
        if need_x and phased:
            gx[p0:p1] = _unphase(gxf[p0:p1], pads, geom, x.shape[2:])

    run_blocks(block, _blocks(n_ * c, len(geom.phases) * length))
    if need_w:
        for j in range(mult):
            gw[j::mult, 0] = gwp[j].reshape(n_, c, len(taps)).sum(axis=0)
    if need_x and not phased:
        gx = _unphase(gxf, pads, geom, x.shape[2:])
    return (gx.reshape(x.shape) if need_x else None), (gw.reshape(w.shape) if need_w else None)
