"""im2col / col2im over strided views, and the chunk planner that bounds memory.

Layouts (n spatial dims; legend: N batch, C channels, K kernel offsets,
O output positions, Sp padded input size):
    windows(xp)      (N, C, *K, *O)   a read-only view, no copy
    columns          (C, *K, N, *O)   contiguous, so that (C*prod(K), N*prod(O))
                                      is one matrix and the GEMM is one call.
Channels last (xp is (N, *Sp, C)), used when C is large enough:
    windows_cl(xp)   (N, *O, *K, C)   a read-only view
    columns_cl       (N, *O, *K, C)   contiguous: (N*prod(O), prod(K)*C). With
                                      dilation 1 the last kernel dim's taps and
                                      the channels are one contiguous run of the
                                      input, so the copy moves long runs, not
                                      runs of one output row as above.
col2im adds columns back one kernel offset at a time: prod(K) strided adds,
never np.add.at.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._config import get_workspace_limit
from .._parallel import num_threads, run_blocks
from .._parallel import parts as _parts
from .._scratch import kept_or_scratch


def windows(xp, kernel, stride, dilation, out):
    """Read-only view (N, C, *K, *O) of xp (N, C, *Sp): view[n, c, k, o] = xp[n, c, o*S + k*D]."""
    st = xp.strides
    n = len(kernel)
    shape = xp.shape[:2] + tuple(kernel) + tuple(out)
    strides = st[:2] + tuple(st[2 + i] * dilation[i] for i in range(n)) + tuple(
        st[2 + i] * stride[i] for i in range(n))
    return as_strided(xp, shape, strides, writeable=False)


def im2col(xp, kernel, stride, dilation, out, slot=None, ones_row=False):
    """Columns (C, *K, N, *O) of the padded input xp (N, C, *Sp), contiguous (in scratch buffer ``slot``
    when given). With ``ones_row`` the buffer holds one more row of N*prod(O) ones after them, for a
    product that adds the bias; the columns are then ``buffer[:-1]`` of the (C*prod(K) + 1, N*prod(O))
    matrix returned.

    The copy is split over channels (or samples, for one channel) across threads.
    """
    v = windows(xp, kernel, stride, dilation, out)
    n = len(kernel)
    perm = (1, *range(2, 2 + n), 0, *range(2 + n, 2 + 2 * n))
    src = v.transpose(perm)
    if ones_row:
        m = math.prod(src.shape[n + 1:])
        buf = kept_or_scratch((math.prod(src.shape[:n + 1]) + 1, m), xp.dtype, slot)
        buf[-1] = 1
        cols = buf[:-1].reshape(src.shape)
    else:
        cols = kept_or_scratch(src.shape, xp.dtype, slot)
    axis = 0 if src.shape[0] > 1 else 1 + n
    pieces = 2 * num_threads()

    def copy(part):
        at = (slice(None),) * axis + (part,)
        np.copyto(cols[at], src[at])

    run_blocks(copy, _parts(src.shape[axis], pieces))
    return buf if ones_row else cols


def col2im_add(gxp, cols, kernel, stride, dilation, out):
    """gxp (N, C, *Sp) += the columns (C, *K, N, *O) put back where im2col took them.

    Threads take disjoint samples (or channels, for one sample) of gxp.
    """
    offsets = list(itertools.product(*map(range, kernel)))
    by_sample = gxp.shape[0] > 1

    def add(part):
        dst = gxp[part] if by_sample else gxp[:, part]
        src = cols[(slice(None),) * (1 + len(kernel)) + (part,)] if by_sample else cols[part]
        for k in offsets:
            sl = tuple(slice(k[i] * dilation[i], k[i] * dilation[i] + stride[i] * (out[i] - 1) + 1, stride[i])
                       for i in range(len(kernel)))
            dst[(slice(None), slice(None)) + sl] += src[(slice(None),) + k].swapaxes(0, 1)

    run_blocks(add, _parts(gxp.shape[0] if by_sample else gxp.shape[1], 2 * num_threads()))


def windows_cl(xp, kernel, stride, dilation, out):
    """Read-only view (N, *O, *K, C) of a channels-last xp (N, *Sp, C): view[n, o, k, c] = xp[n, o*S + k*D, c]."""
    st = xp.strides
    n = len(kernel)
    shape = (xp.shape[0], *out, *kernel, xp.shape[-1])
    strides = (st[0], *(st[1 + i] * stride[i] for i in range(n)), *(st[1 + i] * dilation[i] for i in range(n)), st[-1])
    return as_strided(xp, shape, strides, writeable=False)


_BLOCK_BYTES = 1 << 20  # a block's slice of gxp stays in the L2 cache while col2im's passes run over it


def im2col_cl(xp, kernel, stride, dilation, out, slot=None):
    """Columns (N, *O, *K, C) of the channels-last padded input xp (N, *Sp, C), contiguous (in scratch
    buffer ``slot`` when given).

    Threads copy disjoint samples (or output rows, for one sample).
    """
    src = windows_cl(xp, kernel, stride, dilation, out)
    cols = kept_or_scratch(src.shape, xp.dtype, slot)
    axis = 0 if src.shape[0] > 1 else 1

    def copy(part):
        at = (slice(None),) * axis + (part,)
        np.copyto(cols[at], src[at])

    run_blocks(copy, _parts(src.shape[axis], 2 * num_threads()))
    return cols


def col2im_cl_add(gxp, cols, kernel, stride, dilation, out):
    """gxp (N, *Sp, C) += the columns (N, *O, *K, C) put back where im2col_cl took them.

    Without dilation in the last dim, a window's last-dim taps and channels are one
    run of kw*C cells, and the windows of outputs q = ceil(kw/s) apart never overlap:
    so each (leading kernel offset, output residue mod q) is one add of whole runs,
    instead of prod(K) adds of runs of C. Threads take disjoint samples of gxp, in
    blocks small enough to stay in cache across the adds.
    """
    n = len(kernel)
    c = gxp.shape[-1]
    kw, sw, dw, ow = kernel[-1], stride[-1], dilation[-1], out[-1]
    taps, q = ([(0, kw)], -(-kw // sw)) if dw == 1 else ([(t, 1) for t in range(kw)], 1)
    lead = list(itertools.product(*map(range, kernel[:-1])))

    def add(part):
        dst, src = gxp[part], cols[part]
        st = dst.strides
        for kl in lead:
            for t0, cnt in taps:
                for r in range(min(q, ow)):
                    length = len(range(r, ow, q))
                    shape = (dst.shape[0], *out[:-1], length, cnt * c)
                    at = tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                               for k, d, s, o in zip(kl, dilation, stride, out))
                    w0 = r * sw + t0 * dw
                    if q * sw == cnt:  # the runs of one residue tile a stretch of the row: a plain reshape
                        view = dst[(slice(None),) + at + (slice(w0, w0 + length * cnt),)].reshape(shape)
                    else:
                        strides = (st[0], *(st[1 + i] * stride[i] for i in range(n - 1)), st[n] * sw * q, st[-1])
                        view = as_strided(dst[(slice(None),) + at + (slice(w0, None),)], shape, strides)
                    piece = src[(slice(None),) * n + (slice(r, None, q),) + kl + (slice(t0, t0 + cnt),)]
                    np.add(view, piece.reshape(shape), out=view)

    # one part per thread unless that overflows the cache: each add costs microseconds of Python
    per_block = max(1, _BLOCK_BYTES // max(gxp[:1].nbytes, 1))
    run_blocks(add, _parts(gxp.shape[0], max(num_threads(), -(-gxp.shape[0] // per_block))))


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


def im2col_fold(xq, kernel, stride, dilation, out, slot=None):
    """Columns over all kernel dims but the first: (Dp, N, *O[1:], *K[1:], C), contiguous, of the
    padded input xq (Dp, N, *Sp[1:], C) (first padded dim outermost, channels last).

    Rows [kd*d0*M, kd*d0*M + O0*M) of the (Dp*M, prod(K[1:])*C) matrix (M = N*prod(O[1:])) are, for
    stride 1 in the first dim, the columns of first-dim kernel offset kd: one contiguous slab.
    Without further dims the input itself is the columns. Threads copy disjoint padded rows.
    They go into scratch buffer ``slot`` when given, else into a new (pooled) array.
    """
    if len(kernel) == 1:
        return xq
    st = xq.strides
    n = len(kernel) - 1
    shape = (*xq.shape[:2], *out[1:], *kernel[1:], xq.shape[-1])
    strides = (*st[:2], *(st[2 + i] * stride[1 + i] for i in range(n)),
               *(st[2 + i] * dilation[1 + i] for i in range(n)), st[-1])
    src = as_strided(xq, shape, strides, writeable=False)
    cols = kept_or_scratch(shape, xq.dtype, slot)

    def copy(part):
        np.copyto(cols[part], src[part])

    run_blocks(copy, _parts(shape[0], 2 * num_threads()))
    return cols
