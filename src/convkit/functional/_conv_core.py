"""The three GEMM kernels every convolution is made of.

    forward      y  = W  @ im2col(x)           (conv; grad_x of conv_transpose)
    grad_weight  gW = g  @ im2col(x)^T         (both)
    grad_input   gx = col2im(W^T @ g)          (grad_x of conv; conv_transpose forward)

All take zero padding as (lo, hi) pairs and pad one chunk at a time, so no
temporary is larger than the workspace limit. Legend: G groups, Cg = C/G,
Kg = K/G output channels per group, M = chunk batch * output positions.
"""
from __future__ import annotations

import math

import numpy as np

from . import _depthwise
from ._im2col import col2im_add, im2col, plan_chunks, row_span
from .padding import pad_nd


def _cell_bytes(c, kernel, k_out, itemsize):
    """Temporary bytes per output position: columns, their gradient, and the
    chunk's GEMM result and transposed grad_out. Keeps the whole call's extra
    memory, not only the columns, within the workspace limit."""
    return (2 * c * math.prod(kernel) + 2 * k_out) * itemsize


def _chunk_input(x, n0, n1, pads, r0, r1, kernel, stride, dilation):
    """The zero-padded input rows that output rows [r0, r1) of samples [n0, n1) read."""
    xp = pad_nd(x[n0:n1], pads, "zeros")
    a, b = row_span(r0, r1, kernel[0], stride[0], dilation[0])
    return xp[:, :, a:b]


def forward(x, w, stride, pads, dilation, groups, out):
    """y (N, K, *O) = conv(x, w) with zero padding ``pads``; x and w share a dtype."""
    n_, c = x.shape[:2]
    if _depthwise.applicable(c, w, stride, groups):
        return _depthwise.forward(x, w, pads, dilation, out)
    k_out, kernel = w.shape[0], w.shape[2:]
    wg = w.reshape(groups, k_out // groups, -1)
    y = np.empty((n_, k_out) + tuple(out), dtype=x.dtype)
    cell = _cell_bytes(c, kernel, k_out, x.itemsize)
    for n0, n1, r0, r1 in plan_chunks(n_, out, cell):
        xp = _chunk_input(x, n0, n1, pads, r0, r1, kernel, stride, dilation)
        oc = (r1 - r0,) + tuple(out[1:])
        cols = im2col(xp, kernel, stride, dilation, oc)
        yc = np.matmul(wg, cols.reshape(groups, -1, (n1 - n0) * math.prod(oc)))
        y[n0:n1, :, r0:r1] = yc.reshape((k_out, n1 - n0) + oc).swapaxes(0, 1)
    return y


def backward(x, w, g, stride, pads, dilation, groups, need_x=True, need_w=True):
    """(grad wrt x, grad wrt w) of y = conv(x, w, zero padding ``pads``), given g = dL/dy.

    Either may be skipped (returned as None). The input gradient is the
    transposed convolution of g; the weight gradient is the correlation of
    x with g.
    """
    n_, c = x.shape[:2]
    if _depthwise.applicable(c, w, stride, groups):
        return _depthwise.backward(x, w, g, pads, dilation, need_x, need_w)
    k_out, kernel = w.shape[0], w.shape[2:]
    out = g.shape[2:]
    wg = w.reshape(groups, k_out // groups, -1)
    gw = np.zeros_like(wg) if need_w else None
    gxp = None
    if need_x:
        gxp = np.zeros((n_, c) + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads)), dtype=x.dtype)
    cell = _cell_bytes(c, kernel, k_out, x.itemsize)
    for n0, n1, r0, r1 in plan_chunks(n_, out, cell):
        oc = (r1 - r0,) + tuple(out[1:])
        m = (n1 - n0) * math.prod(oc)
        gt = np.ascontiguousarray(g[n0:n1, :, r0:r1].swapaxes(0, 1)).reshape(groups, k_out // groups, m)
        if need_w:
            xp = _chunk_input(x, n0, n1, pads, r0, r1, kernel, stride, dilation)
            cols = im2col(xp, kernel, stride, dilation, oc).reshape(groups, -1, m)
            gw += np.matmul(gt, cols.swapaxes(1, 2))
            del cols
        if need_x:
            gcols = np.matmul(wg.swapaxes(1, 2), gt).reshape((c,) + tuple(kernel) + (n1 - n0,) + oc)
            a, _ = row_span(r0, r1, kernel[0], stride[0], dilation[0])
            col2im_add(gxp[n0:n1, :, a:], gcols, kernel, stride, dilation, oc)
    gx = None
    if need_x:
        crop = tuple(slice(lo, lo + s) for s, (lo, hi) in zip(x.shape[2:], pads))
        gx = gxp[(slice(None), slice(None)) + crop]
    return gx, (gw.reshape(w.shape) if need_w else None)


def input_grad(g, w, input_shape, stride, pads, dilation, groups):
    """Gradient wrt the conv input of spatial shape ``input_shape``: the transposed conv of g."""
    dummy = np.broadcast_to(np.zeros((), g.dtype), (g.shape[0], w.shape[1] * groups) + tuple(input_shape))
    return backward(dummy, w, g, stride, pads, dilation, groups, need_w=False)[0]
