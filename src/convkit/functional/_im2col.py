"""im2col / col2im over strided views, and the chunk planner that bounds memory.

Layouts (n spatial dims; legend: N batch, C channels, K kernel offsets,
O output positions, Sp padded input size):
    windows(xp)      (N, C, *K, *O)   a read-only view, no copy
    columns          (C, *K, N, *O)   contiguous, so that (C*prod(K), N*prod(O))
                                      is one matrix and the GEMM is one call.
col2im adds columns back one kernel offset at a time: prod(K) strided adds,
never np.add.at.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._config import get_workspace_limit


def windows(xp, kernel, stride, dilation, out):
    """Read-only view (N, C, *K, *O) of xp (N, C, *Sp): view[n, c, k, o] = xp[n, c, o*S + k*D]."""
    st = xp.strides
    n = len(kernel)
    shape = xp.shape[:2] + tuple(kernel) + tuple(out)
    strides = st[:2] + tuple(st[2 + i] * dilation[i] for i in range(n)) + tuple(
        st[2 + i] * stride[i] for i in range(n))
    return as_strided(xp, shape, strides, writeable=False)


def im2col(xp, kernel, stride, dilation, out):
    """Columns (C, *K, N, *O) of the padded input xp (N, C, *Sp), contiguous."""
    v = windows(xp, kernel, stride, dilation, out)
    n = len(kernel)
    perm = (1, *range(2, 2 + n), 0, *range(2 + n, 2 + 2 * n))
    cols = np.empty(tuple(v.shape[p] for p in perm), dtype=xp.dtype)
    np.copyto(cols, v.transpose(perm))
    return cols


def col2im_add(gxp, cols, kernel, stride, dilation, out):
    """gxp (N, C, *Sp) += the columns (C, *K, N, *O) put back where im2col took them."""
    for k in itertools.product(*map(range, kernel)):
        sl = tuple(slice(k[i] * dilation[i], k[i] * dilation[i] + stride[i] * (out[i] - 1) + 1, stride[i])
                   for i in range(len(kernel)))
        gxp[(slice(None), slice(None)) + sl] += cols[(slice(None),) + k].swapaxes(0, 1)


def plan_chunks(batch, out, cell_bytes):
    """Split (batch, first output dim) so one chunk's columns fit in the workspace.

    cell_bytes is the size of the columns of one output position. Yields
    (n0, n1, r0, r1). Whole samples are preferred; a sample too large for the
    limit is split along its first output dim.
    """
    limit = get_workspace_limit()
    per_sample = cell_bytes * math.prod(out)
    if per_sample <= limit:
        nb = max(1, min(batch, limit // max(per_sample, 1)))
        for n0 in range(0, batch, nb):
            yield n0, min(batch, n0 + nb), 0, out[0]
        return
    per_row = cell_bytes * math.prod(out[1:])
    rows = max(1, limit // per_row)
    for n0 in range(batch):
        for r0 in range(0, out[0], rows):
            yield n0, n0 + 1, r0, min(out[0], r0 + rows)


def row_span(r0, r1, kernel0, stride0, dilation0):
    """Padded-input rows [a, b) that output rows [r0, r1) read."""
    return r0 * stride0, (r1 - 1) * stride0 + dilation0 * (kernel0 - 1) + 1
