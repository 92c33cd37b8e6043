"""The three GEMM kernels every convolution is made of.

    forward      y  = W  @ im2col(x)           (conv; grad_x of conv_transpose)
    grad_weight  gW = g  @ im2col(x)^T         (both)
    grad_input   gx = col2im(W^T @ g)          (grad_x of conv; conv_transpose forward)

All take zero padding as (lo, hi) pairs and pad one chunk at a time, so no
temporary is larger than the workspace limit. Legend: G groups, Cg = C/G,
Kg = K/G output channels per group, M = chunk batch * output positions.

Without groups and with enough input channels the columns are channels last
(see _im2col): im2col and col2im move long runs instead of output rows, and
grad_input's columns are made and added back a few samples at a time in one
reused buffer. The forward can keep its columns for the backward
(``keep=True``), which then skips im2col for grad_weight.

With stride 1 in the first dim, forward and grad_weight may instead use folded
columns (_fold_ok): im2col over all kernel dims but the first, the first padded
dim outermost, so each first-dim kernel offset's columns are one row slab and
its product one GEMM. Kept folded columns are wrapped in _Folded.
"""
from __future__ import annotations

import math

import numpy as np

from .._blas import gemm
from .._config import get_workspace_limit
from .._parallel import num_threads, run_blocks
from .._parallel import parts as _parts
from .._scratch import kept_or_scratch, place, pooled, scratch
from ..shapes import full_correlation_padding, padded_shape
from . import _depthwise, _fft, _implicit, _plan, _winograd
from ._im2col import col2im_add, col2im_cl_add, im2col, im2col_cl, im2col_fold, plan_chunks, row_span
from ._weights import derived, rotated as _rotated
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


# Channels-last columns once a window row (its last-dim taps times the channels) is this many
# contiguous elements; below that, channels first (whose runs are output rows) is as good or better.
# Measured (forward + both gradients, batch 8, ms, channels last vs first): 7x7/2 3->64 at 224x224
# 50.8 vs 42.2; 7x7/2 4->64 61.6 vs 60.6; 5x5 4->32 at 112x112 26.9 vs 20.8; 3x3/2 6->32 5.3 vs 4.6;
# but 5x5 12->32 at 28x28 (a run of 60), batch 64, 31.3 vs 35.3.
_CL_MIN_RUN = 32


def _long_rows(c, w, pads, dilation, groups, min_run):
    """No groups, no cropping, and a window row (last-dim taps times channels) of >= min_run contiguous elements."""
    run = c * (w.shape[-1] if dilation[-1] == 1 else 1)
    return groups == 1 and run >= min_run and all(lo >= 0 and hi >= 0 for lo, hi in pads)


def _channels_last(c, w, pads, dilation, groups):
    return _long_rows(c, w, pads, dilation, groups, _CL_MIN_RUN)


def _chunk_input_cl(x, n0, n1, pads, r0, r1, kernel, stride, dilation):
    """_chunk_input, channels last and contiguous: (n, rows, *Sp[1:], C), in one copy (pads >= 0), in a
    scratch buffer (the columns are made from it and it is dropped)."""
    a, b = row_span(r0, r1, kernel[0], stride[0], dilation[0])
    sp = padded_shape(x.shape[2:], pads)
    xp = scratch("im2col_input", (n1 - n0, b - a) + sp[1:] + (x.shape[1],), x.dtype)
    lo0 = pads[0][0]
    i0, i1 = max(a - lo0, 0), min(b - lo0, x.shape[2])
    if i1 <= i0:
        xp.fill(0)
        return xp
    inner = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads[1:], x.shape[3:]))
    at = (slice(None), slice(i0 + lo0 - a, i1 + lo0 - a)) + inner
    return place(xp, at, np.moveaxis(x[n0:n1, :, i0:i1], 1, -1))


def _columns(x, n0, n1, pads, r0, r1, kernel, stride, dilation, oc, cl, temporary=False, ones_row=False):
    """One chunk's columns as a matrix: (M, prod(K)*C) channels last, else (C*prod(K), M), with a row of
    ones after them if ``ones_row`` (channels first only). ``temporary`` columns live in a scratch buffer,
    valid until this thread's next temporary columns: no fresh pages to fault in on every call (the 7x7/2
    3->64 stem at 224x224, batch 8: 59 MB of columns, 22 -> 17 ms)."""
    slot = "im2col_columns" if temporary else None
    if cl:
        xp = _chunk_input_cl(x, n0, n1, pads, r0, r1, kernel, stride, dilation)
        return im2col_cl(xp, kernel, stride, dilation, oc, slot).reshape((n1 - n0) * math.prod(oc), -1)
    xp = _chunk_input(x, n0, n1, pads, r0, r1, kernel, stride, dilation)
    return im2col(xp, kernel, stride, dilation, oc, slot, ones_row).reshape(-1, (n1 - n0) * math.prod(oc))


# Channels-first products go one sample at a time (into y, from g) when a sample has this many
# output positions: each product is then still large, and no (K, N, *O) layout is transposed.
_PER_SAMPLE_MIN = 256


def _per_sample(r0, r1, out):
    return r0 == 0 and r1 == out[0] and math.prod(out) >= _PER_SAMPLE_MIN


def _sample_view(cols, groups, n):
    """Channels-first columns (C*prod(K), n*P) viewed as (n, G, Cg*prod(K), P)."""
    return cols.reshape(groups, cols.shape[0] // groups, n, -1).transpose(2, 0, 1, 3)


# Folded columns (see _fold_ok) when a window row is this many contiguous elements, and the first
# kernel dim has at least this many taps; tests lower both to force the path.
_FOLD_MIN_RUN = 16
_FOLD_MIN_K0 = 2
# Measured: 1-D batch-wide (columns = the channels-last input, products too thin) is slower folded, so 1-D
# folds only sample-major (channels first: no columns, no transposes); forwards of up to 5
# first-dim taps are faster folded on an AVX-512 Xeon (5x5 32->64 at 14x14, batch 64: 16.9 -> 13.9 ms;
# 64->64 at 32x32, batch 16: 32 -> 24 ms), though each tap adds an accumulation pass over the result.
_FOLD_MIN_NDIM = 2
_FOLD_MAX_K0_FORWARD = 5


class _Folded:
    """Forward columns kept in the folded layout, so that backward does not mistake them for im2col's
    (their row order follows from the same shapes, see _fold_sample_major)."""

    def __init__(self, cols):
        self.cols = cols


# Folded forwards with at most this many filters take one product for all first-dim offsets
# (measured on the products alone: 16 filters 13.0 -> 9.5 ms; 32 filters 9.0 -> 8.1 ms, but no gain in a whole
# 3x3x3 forward; 64 filters 11 -> 15.6 ms, slower).
_FOLD_ONE_PRODUCT_MAX_K = 16
# Sample-major folded columns when one sample has at least this many padded rows (see _fold_sample_major).
_FOLD_SAMPLE_MAJOR_ROWS = 4096


def _fold_ok(c, w, stride, pads, dilation, groups, chunks, x_shape, out, forward=False):
    """Columns over all kernel dims but the first, one product per first-dim offset: for stride 1
    in the first dim the offsets' columns are row slabs of one (Dp*M, prod(K[1:])*C) matrix, about
    K[0] times smaller than im2col's. Whole batch in one chunk only (it is no larger than im2col's)."""
    nd = w.ndim - 2
    return (_long_rows(c, w, pads, dilation, groups, _FOLD_MIN_RUN) and len(chunks) == 1 and stride[0] == 1
            and w.shape[2] >= _FOLD_MIN_K0
            and (nd >= _FOLD_MIN_NDIM or nd == 1 and _fold_sample_major(x_shape, pads, out))
            and (not forward or w.shape[2] <= _FOLD_MAX_K0_FORWARD))


def _fold_sample_major(x_shape, pads, out):
    """Row order of the folded columns: (N, Dp, *O[1:]) when a sample is large enough for products of its
    own, else (Dp, N, *O[1:]). Sample-major, each sample's product of all first-dim offsets comes out
    (K0*K, Dp*prod(O[1:])), and the offsets' slabs add up straight into y's (K, *O) rows: no result to
    transpose, and the weight gradient reads g as it is stored (3x3x3 16->32 at 16x32x32, batch 2:
    forward 15 -> 10 ms, grad_weight 10 -> 8 ms); small samples keep the batch-wide slabs."""
    dp = x_shape[2] + pads[0][0] + pads[0][1]
    return dp * math.prod(out[1:]) >= _FOLD_SAMPLE_MAJOR_ROWS


def _fold_columns(x, pads, kernel, stride, dilation, out, sample_major, temporary=False):
    """The folded columns of the whole batch: (N, Dp*prod(O[1:]), prod(K[1:])*C) when sample_major, else
    (Dp*N*prod(O[1:]), prod(K[1:])*C) with rows (Dp, N, *O[1:]). ``temporary`` columns live in a scratch
    buffer (valid until the next temporary columns of this thread). 1-D sample-major columns are the
    channels-first padded input, transposed (a view): its products need no copy at all."""
    n, c = x.shape[:2]
    sp = padded_shape(x.shape[2:], pads)
    inner = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, x.shape[2:]))
    channels_first = sample_major and len(kernel) == 1
    if channels_first:
        shape, at, src = (n, c) + sp, (slice(None), slice(None)) + inner, x
    elif sample_major:
        shape, at, src = (n,) + sp + (c,), (slice(None),) + inner, np.moveaxis(x, 1, -1)
    else:
        shape, at, src = (sp[0], n) + sp[1:] + (c,), (inner[0], slice(None)) + inner[1:], np.moveaxis(x, (2, 1), (0, -1))
    # 1-D: the padded input is the columns, kept as it is placed
    keep_input = not temporary and len(kernel) == 1
    xq = place(kept_or_scratch(shape, x.dtype, None if keep_input else "fold_input"), at, src)
    if channels_first:
        return xq.transpose(0, 2, 1)
    rows = sp[0] * n * math.prod(out[1:])
    width = math.prod(kernel[1:]) * c
    if len(kernel) == 1:
        cols = xq.reshape(rows, width)
    else:
        slot = "fold_columns" if temporary else None
        cols = im2col_fold(xq, kernel, stride, dilation, out, slot).reshape(rows, width)
    return cols.reshape(n, -1, width) if sample_major else cols


def _fold_weight(w):
    """(K0, K, prod(K[1:])*C): each first-dim offset's filters, taps ordered (*K[1:], C) like the columns
    (a local copy; moving K innermost instead would miss the cache on every element of a large weight)."""
    k_out, k0 = w.shape[0], w.shape[2]
    return np.ascontiguousarray(np.moveaxis(w, 1, -1).swapaxes(0, 1)).reshape(k0, k_out, -1)


def _forward_fold(x, w, pads, stride, dilation, out, bias, y, keep, weights=None):
    """y (N, K, *O) = sum over first-dim offsets kd of slab_kd @ W[:, :, kd]^T. Returns the columns
    (_Folded) when ``keep``, else None."""
    n_, k_out, k0 = x.shape[0], w.shape[0], w.shape[2]
    wf = derived(weights, "fold", lambda: _fold_weight(w))
    if _fold_sample_major(x.shape, pads, out):
        cols = _fold_columns(x, pads, w.shape[2:], stride, dilation, out, True) if keep else None
        _forward_fold_by_sample(_sample_columns(x, pads, w.shape[2:], stride, dilation, out, cols), wf, dilation[0],
                                out, bias, y)
        return _Folded(cols) if keep else None
    cols = _fold_columns(x, pads, w.shape[2:], stride, dilation, out, False, temporary=not keep)
    m = n_ * math.prod(out[1:])
    rows = out[0] * m
    wt = wf.transpose(0, 2, 1)
    if k_out <= _FOLD_ONE_PRODUCT_MAX_K and k0 > 1:
        # few filters: one product of all the columns with every offset's weights side by side
        # (K0*K wide: BLAS runs narrow products poorly), then the offsets' slabs summed
        span = (k0 - 1) * dilation[0] * m + rows
        prod = np.matmul(cols[:span], np.concatenate(list(wt), axis=1),
                         out=scratch("fold_product", (span, k0 * k_out), x.dtype))
        acc = scratch("fold_sum", (rows, k_out), x.dtype)
        np.copyto(acc, prod[:rows, :k_out])
        for kd in range(1, k0):
            s = kd * dilation[0] * m
            acc += prod[s:s + rows, kd * k_out:(kd + 1) * k_out]
    else:
        # BLAS adds each offset's product into the sum itself (beta = 1): no product to add in a pass of its own
        # (5x5 32->64 at 14x14, batch 64: 6.1 -> 5.0 ms for the five products)
        acc = scratch("fold_sum", (rows, k_out), x.dtype)
        for kd in range(k0):
            s = kd * dilation[0] * m
            gemm(cols[s:s + rows], wt[kd], acc, beta=0.0 if kd == 0 else 1.0)
    v = np.moveaxis(acc.reshape((out[0], n_) + tuple(out[1:]) + (k_out,)), (1, -1), (0, 1))
    if bias is None:
        np.copyto(y, v)
    else:
        np.add(v, bias.reshape((-1,) + (1,) * len(out)), out=y)
    return _Folded(cols) if keep else None


def _sample_columns(x, pads, kernel, stride, dilation, out, cols=None):
    """Each sample's sample-major folded columns (Dp*prod(O[1:]), prod(K[1:])*C) in turn: rows of the kept
    ``cols``, or made one sample at a time (one sample's columns, not the batch's, in memory at once)."""
    if cols is not None:
        yield from cols
        return
    for i in range(x.shape[0]):
        yield _fold_columns(x[i:i + 1], pads, kernel, stride, dilation, out, True, temporary=True)[0]


def _forward_fold_by_sample(sample_cols, wf, d0, out, bias, y):
    """Sample-major folded forward: per sample one product (K0*K, Dp*M1) = W_all @ cols_n^T, then
    y_n (K, O0*M1) = the sum over kd of its row block kd shifted left by kd*d0*M1 (on convkit's threads)."""
    k0, k_out = wf.shape[:2]
    m1 = math.prod(out[1:])
    span = out[0] * m1
    wa = wf.reshape(k0 * k_out, -1)
    prod = None
    for yi, ci in zip(y.reshape(y.shape[0], k_out, span), sample_cols):
        if prod is None:
            prod = scratch("fold_product", (k0, k_out, ci.shape[0]), y.dtype)
        np.matmul(wa, ci.T, out=prod.reshape(k0 * k_out, -1))

        def add_up(rows, yi=yi):
            yr = yi[rows]
            if k0 == 1:
                np.copyto(yr, prod[0, rows, :span])
            else:
                np.add(prod[0, rows, :span], prod[1, rows, d0 * m1:d0 * m1 + span], out=yr)
            for kd in range(2, k0):
                yr += prod[kd, rows, kd * d0 * m1:kd * d0 * m1 + span]
            if bias is not None:
                yr += bias[rows, None]
        run_blocks(add_up, _parts(k_out, num_threads()))


def _weight_grad_fold(x, w, g, pads, stride, dilation, folded=None):
    """gW[:, :, kd] = (slab_kd^T @ g (O[0]*M, K))^T over the folded columns (the forward's, if kept)."""
    k_out, k0, c = w.shape[0], w.shape[2], w.shape[1]
    out = g.shape[2:]
    cols = None if folded is None else folded.cols
    if _fold_sample_major(x.shape, pads, out):
        gw = _weight_grad_fold_by_sample(_sample_columns(x, pads, w.shape[2:], stride, dilation, out, cols), g, k0,
                                         dilation[0])
        return _kernel_first_to_oihw(gw.reshape(tuple(w.shape[2:]) + (c, k_out)))
    if cols is None:
        cols = _fold_columns(x, pads, w.shape[2:], stride, dilation, out, False, temporary=True)
    m = x.shape[0] * math.prod(out[1:])
    rows = out[0] * m
    gm = scratch("fold_grad", (out[0], g.shape[0]) + tuple(out[1:]) + (k_out,), g.dtype)   # (O[0], N, *O[1:], K)
    np.copyto(gm, np.moveaxis(g, (0, 1), (1, -1)))
    gm = gm.reshape(rows, k_out)
    # (prod(K[1:])*C, K) products: OpenBLAS splits these well; the (K, prod(K[1:])*C) ones can crawl
    gw = np.empty((k0, cols.shape[1], k_out), x.dtype)
    for kd in range(k0):
        s = kd * dilation[0] * m
        np.matmul(cols[s:s + rows].T, gm, out=gw[kd])
    return _kernel_first_to_oihw(gw.reshape(tuple(w.shape[2:]) + (c, k_out)))


def _weight_grad_fold_by_sample(sample_cols, g, k0, d0):
    """Sample-major folded weight gradient, (K0, prod(K[1:])*C, K): per sample, g_n placed K0 times, row
    block kd shifted right by kd*d0*M1 in a zeroed (K0*K, Dp*M1) matrix, times the sample's columns gives
    every offset's gradient in one product."""
    k_out = g.shape[1]
    m1 = math.prod(g.shape[3:])
    span = g.shape[2] * m1
    shifted = acc = tmp = None
    for gi, ci in zip(g.reshape(g.shape[0], k_out, span), sample_cols):
        if shifted is None:
            shifted = scratch("fold_shifted", (k0, k_out, ci.shape[0]), g.dtype)
            for kd in range(k0):  # zero only what the samples' copies below leave
                shifted[kd, :, :kd * d0 * m1] = 0
                shifted[kd, :, kd * d0 * m1 + span:] = 0
        for kd in range(k0):
            shifted[kd, :, kd * d0 * m1:kd * d0 * m1 + span] = gi
        if acc is None:
            acc = np.matmul(shifted.reshape(k0 * k_out, -1), ci)
            tmp = np.empty_like(acc)
        else:
            acc += np.matmul(shifted.reshape(k0 * k_out, -1), ci, out=tmp)
    return acc.reshape(k0, k_out, -1).transpose(0, 2, 1)


def _kernel_first_to_oihw(gw, block=16):
    """(*K, C, K_out) -> (K_out, C, *K), a few channels at a time: each block reads contiguous rows and
    writes short runs, where one transposing copy would miss the cache on every element (8x slower)."""
    nk = gw.ndim - 2
    out = np.empty((gw.shape[-1], gw.shape[-2]) + gw.shape[:nk], gw.dtype)
    perm = (nk + 1, nk) + tuple(range(nk))
    for j in range(0, gw.shape[-2], block):
        out[:, j:j + block] = gw[..., j:j + block, :].transpose(perm)
    return out


# ------------------------------------------------------------------ 1x1 (pointwise)
# A 1x1 convolution without padding is a matrix product per sample, (K, C) @ (C, P):
# no columns at all (a stride only subsamples the input first).


def _sample_steps(n_, per_sample_bytes):
    """Batch slices whose temporaries stay within the workspace limit (at least one sample each)."""
    step = max(1, get_workspace_limit() // max(1, per_sample_bytes))
    return [(i, min(n_, i + step)) for i in range(0, n_, step)]


def _subsample(stride, out):
    return tuple(slice(None, s * (o - 1) + 1, s) for s, o in zip(stride, out))


def _pointwise_forward(x, w, stride, out, bias):
    n_, c = x.shape[:2]
    k, p = w.shape[0], math.prod(out)
    wm, sub = w.reshape(k, c), _subsample(stride, out)
    y = np.empty((n_, k) + tuple(out), dtype=x.dtype)
    for n0, n1 in _sample_steps(n_, (c + k) * p * x.itemsize):
        xs = x[(slice(n0, n1), slice(None)) + sub].reshape(n1 - n0, c, p)  # a copy only when strided
        np.matmul(wm, xs, out=y[n0:n1].reshape(n1 - n0, k, p))
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * len(out))
    return y


def _pointwise_backward(x, w, g, stride, need_x, need_w):
    n_, c = x.shape[:2]
    k, out = w.shape[0], g.shape[2:]
    p, wm, sub = math.prod(out), w.reshape(k, c), _subsample(stride, out)
    strided = any(s > 1 for s in stride)
    gx = (np.zeros if strided else np.empty)(x.shape, dtype=x.dtype) if need_x else None
    gw = np.zeros((k, c), dtype=x.dtype) if need_w else None
    for n0, n1 in _sample_steps(n_, (2 * c + k) * p * x.itemsize):
        gs = g[n0:n1].reshape(n1 - n0, k, p)
        if need_w:
            xs = x[(slice(n0, n1), slice(None)) + sub].reshape(n1 - n0, c, p)
            gw += np.matmul(gs, xs.transpose(0, 2, 1)).sum(axis=0)
        if need_x:
            gx[(slice(n0, n1), slice(None)) + sub] = np.matmul(wm.T, gs).reshape((n1 - n0, c) + tuple(out))
    return gx, (gw.reshape(w.shape) if need_w else None)


def _input_grad_by_forward(x, w, g, stride, pads, dilation, groups):
    """With stride 1 the input gradient is the forward convolution of g (padded by
    shapes.full_correlation_padding) with the rotated kernel. Measured: when that forward takes folded
    columns (short first kernel dim, 2-D or 3-D) it beats col2im (3x3x3 16->32 at 16x32x32: 24 -> 19 ms;
    3x3 dilation 2, 64 channels at 56x56: 23 -> 16 ms); otherwise col2im is as fast or faster."""
    if groups != 1 or any(s != 1 for s in stride):
        return False
    rp = full_correlation_padding(w.shape[2:], dilation, pads)
    if any(lo < 0 or hi < 0 for lo, hi in rp):
        return False
    k_out, c, out = w.shape[0], x.shape[1], x.shape[2:]
    w_rot_shape = np.broadcast_to(np.zeros((), w.dtype), (c, k_out) + tuple(w.shape[2:]))
    chunks = list(plan_chunks(g.shape[0], out, _cell_bytes(k_out, w.shape[2:], c, x.itemsize)))
    return not _heavy_weight(g.shape[0], out, c) and _fold_ok(k_out, w_rot_shape, stride, rp, dilation, 1, chunks,
                                                                g.shape, out, forward=True)


def _heavy_weight(n, out, k_out):
    """Fewer output positions than filters: forward and backward both use channels-first columns
    (the backward reads the columns the forward kept, so they must agree)."""
    return n * math.prod(out) < k_out


# Grouped convolutions with wide groups run group by group, each group a dense convolution that can take
# Winograd or implicit GEMM, instead of im2col's per-group products (session 20; forward + both gradients
# through autograd, batch 8, 3x3, ms, whole vs by group): 64->64 at 56x56, 2 groups 47.3 vs 31.8, 4 groups
# 41.0 vs 23.5; 128->128 at 28x28, 8 groups (16 channels each) 25.0 vs 16.4; 256->256 at 14x14, 8 groups 16.3
# vs 14.5; but 16 groups of 8 channels 19.1 vs 18.2 (even), and at batch 1 256->256 at 14x14, 8 groups, 1.97
# vs 3.92 (each group's calls cost more than its products). So groups of at least this many channels each way
# split, over at least this many output positions (samples x cells); not for a weight whose transforms a
# cache keeps (an ONNX session's), which would make them again per group.
_GROUP_SPLIT_MIN_CHANNELS = 16
_GROUP_SPLIT_MIN_POSITIONS = 1024


def _split_groups(x_shape, w, groups, out, algorithm, weights=None):
    return (groups > 1 and algorithm is None and weights is None
            and min(w.shape[1], w.shape[0] // groups) >= _GROUP_SPLIT_MIN_CHANNELS
            and x_shape[0] * math.prod(out) >= _GROUP_SPLIT_MIN_POSITIONS)


class _Groups:
    """What a forward run group by group keeps for :func:`backward`: each group's (columns, transforms...)."""

    def __init__(self, kept):
        self.kept = kept


def _group_slices(w, groups):
    cg, kg = w.shape[1], w.shape[0] // groups
    return [(slice(i * cg, (i + 1) * cg), slice(i * kg, (i + 1) * kg)) for i in range(groups)]


def _grouped_forward(x, w, stride, pads, dilation, groups, out, keep, bias):
    parts = [forward(x[:, ci], w[ki], stride, pads, dilation, 1, out, keep, None if bias is None else bias[ki])
             for ci, ki in _group_slices(w, groups)]
    y = pooled((x.shape[0], w.shape[0]) + tuple(out), x.dtype)
    for (_, ki), part in zip(_group_slices(w, groups), parts):
        y[:, ki] = part[0] if keep else part
    return (y, _Groups([part[1] for part in parts])) if keep else y


def _grouped_backward(x, w, g, stride, pads, dilation, groups, need_x, need_w, kept):
    parts = [backward(x[:, ci], w[ki], g[:, ki], stride, pads, dilation, 1, need_x, need_w,
                      None if kept is None else kept.kept[i])
             for i, (ci, ki) in enumerate(_group_slices(w, groups))]
    gx = gw = None
    if need_x:
        gx = pooled(x.shape, x.dtype)
        for (ci, _), part in zip(_group_slices(w, groups), parts):
            gx[:, ci] = part[0]
    if need_w:
        gw = np.concatenate([part[1] for part in parts])
    return gx, gw


def forward(x, w, stride, pads, dilation, groups, out, keep=False, bias=None, algorithm=None, weights=None):
    """y (N, K, *O) = conv(x, w) with zero padding ``pads``; x and w share a dtype.

    With keep=True returns (y, cols): the columns for :func:`backward`, or None
    when the batch took several chunks (they would not all fit in the workspace)
    or the algorithm makes none. A bias (K,) is added as the products are moved
    into y, saving a pass over y. ``algorithm`` (checked by _plan.check) forces one. ``weights``, a
    :class:`~._weights.WeightCache` of ``w``, keeps the weight's transforms between calls.
    Wide groups run one at a time (_split_groups).
    """
    if _split_groups(x.shape, w, groups, out, algorithm, weights):
        return _grouped_forward(x, w, stride, pads, dilation, groups, out, keep, bias)

    def trial(alg):
        return forward(x, w, stride, pads, dilation, groups, out, keep, bias, alg, weights)
    alg = _plan.choose("forward", x, w, stride, pads, dilation, groups, out, algorithm, keep, trial,
                       cached=weights is not None)
    if alg == "fft":
        return _fft.forward(x, w, pads, dilation, out, bias, keep, weights)
    if alg in ("direct", "gemm", "implicit", "winograd"):
        if alg == "direct":
            y = _depthwise.forward(x, w, pads, dilation, out, stride)
            if bias is not None:
                y += bias.reshape((-1,) + (1,) * len(out))
        elif alg == "gemm":
            y = _pointwise_forward(x, w, stride, out, bias)
        elif alg == "implicit":
            y = _implicit.forward(x, w, pads, dilation, out, bias, weights)
        else:   # with keep, the transformed input for the weight gradient comes back too
            return _winograd.forward(x, w, pads, out, bias, weights=weights, keep=keep, dilation=dilation[-2:])
        return (y, None) if keep else y
    n_, c = x.shape[:2]
    k_out, kernel = w.shape[0], w.shape[2:]
    # a strided depthwise layer's backward runs direct (see _plan) and reads no columns: none are kept for it
    keep_cols = keep and not (algorithm is None and _depthwise.applicable(c, w, stride, groups))
    y = pooled((n_, k_out) + tuple(out), x.dtype)
    cell = _cell_bytes(c, kernel, k_out, x.itemsize)
    chunks = list(plan_chunks(n_, out, cell))
    # Fewer output positions than filters (a deep layer at batch 1): the weight is the big operand,
    # and channels-first columns use it as it is stored, where the other layouts reorder it per call.
    heavy_weight = _heavy_weight(n_, out, k_out)
    if not heavy_weight and _fold_ok(c, w, stride, pads, dilation, groups, chunks, x.shape, out, forward=True):
        folded = _forward_fold(x, w, pads, stride, dilation, out, bias, y, keep, weights)
        return (y, folded) if keep else y
    cl = not heavy_weight and _channels_last(c, w, pads, dilation, groups)
    # channels last: (K, *kernel, C) flattened, to match the columns' (*kernel, C) order
    wm = (derived(weights, "channels_last", lambda: np.moveaxis(w, 1, -1).reshape(k_out, -1)) if cl else
          w.reshape(groups, k_out // groups, -1))
    cols = None
    for n0, n1, r0, r1 in chunks:
        oc = (r1 - r0,) + tuple(out[1:])
        # one product per sample, channels first: the bias as one more column of the weight, times a row
        # of ones under the columns, instead of a pass over y (5x5 1->32 at 28x28, batch 64, the forward
        # through autograd: 2.06 -> 1.63 ms)
        ones = bias is not None and not cl and groups == 1 and _per_sample(r0, r1, out)
        cols = _columns(x, n0, n1, pads, r0, r1, kernel, stride, dilation, oc, cl, temporary=not keep_cols,
                        ones_row=ones)
        if ones:
            wb = np.concatenate([wm.reshape(k_out, -1), bias.reshape(k_out, 1).astype(wm.dtype)], axis=1)
            np.matmul(wb, _sample_view(cols, 1, n1 - n0), out=y[n0:n1].reshape(n1 - n0, 1, k_out, -1))
            cols = cols[:-1]    # what the weight gradient reads: the columns without the ones
            continue
        if cl and _per_sample(r0, r1, out):
            # per sample (K, P) = W (K, prod(K)*C) @ cols_n^T: BLAS reads the columns transposed and
            # writes y in NCHW, so the (M, K) result never needs a transposing copy
            yn = y[n0:n1].reshape(n1 - n0, k_out, -1)
            np.matmul(wm, cols.reshape(n1 - n0, -1, cols.shape[-1]).transpose(0, 2, 1), out=yn)
            if bias is not None:
                y[n0:n1] += bias.reshape((-1,) + (1,) * len(out))
            continue
        if cl:
            yc = np.moveaxis(np.matmul(cols, wm.T).reshape((n1 - n0,) + oc + (k_out,)), -1, 1)
        elif _per_sample(r0, r1, out):
            # one product per sample straight into y: no (K, N, *O) result to transpose
            yn = y[n0:n1].reshape(n1 - n0, groups, k_out // groups, -1)
            np.matmul(wm, _sample_view(cols, groups, n1 - n0), out=yn)
            if bias is not None:
                y[n0:n1] += bias.reshape((-1,) + (1,) * len(out))
            continue
        else:
            yc = np.matmul(wm, cols.reshape(groups, -1, cols.shape[-1])).reshape((k_out, n1 - n0) + oc).swapaxes(0, 1)
        if bias is None:
            y[n0:n1, :, r0:r1] = yc
        else:
            np.add(yc, bias.reshape((-1,) + (1,) * len(out)), out=y[n0:n1, :, r0:r1])
    if keep:
        return y, (cols if keep_cols and len(chunks) == 1 else None)
    return y


def backward(x, w, g, stride, pads, dilation, groups, need_x=True, need_w=True, cols=None, algorithm=None):
    """(grad wrt x, grad wrt w) of y = conv(x, w, zero padding ``pads``), given g = dL/dy.

    Either may be skipped (returned as None). The input gradient is the
    transposed convolution of g; the weight gradient is the correlation of
    x with g. ``cols`` are the forward's columns (``forward(..., keep=True)``),
    used when the backward, too, takes the batch in one chunk. ``algorithm``
    forces one (Winograd computes the input gradient, and the weight gradient when the forward
    kept its transformed input; otherwise the weight gradient is im2col's).
    """
    if isinstance(cols, _Groups) or (cols is None and _split_groups(x.shape, w, groups, g.shape[2:], algorithm)):
        return _grouped_backward(x, w, g, stride, pads, dilation, groups, need_x, need_w, cols)
    if isinstance(cols, _fft.Kept):
        return _fft.backward(x, w, g, pads, dilation, need_x, need_w, cols)
    if need_w and isinstance(cols, _winograd.Kept):
        gx = backward(x, w, g, stride, pads, dilation, groups, True, False, None, algorithm)[0] if need_x else None
        return gx, _winograd.weight_grad(cols, g, w.shape)
    if isinstance(cols, _winograd.Kept):
        cols = None

    def trial(alg):
        return backward(x, w, g, stride, pads, dilation, groups, need_x, need_w, cols, alg)
    alg = _plan.choose("backward", x, w, stride, pads, dilation, groups, g.shape[2:], algorithm,
                       trial=trial if need_x else None)
    if alg == "direct":
        return _depthwise.backward(x, w, g, pads, dilation, need_x, need_w, stride)
    if alg == "fft":
        return _fft.backward(x, w, g, pads, dilation, need_x, need_w)
    if alg == "gemm":
        return _pointwise_backward(x, w, g, stride, need_x, need_w)
    if alg == "implicit":
        # the input gradient as an implicit-GEMM forward of g (im2col's where that would crop); the weight
        # gradient by implicit GEMM when forced, else from im2col's columns (faster: see _plan)
        rp = full_correlation_padding(w.shape[2:], dilation, pads)
        gx = None
        if need_x:
            gx = (_implicit.forward(g, _rotated(w), rp, dilation, x.shape[2:])
                  if all(lo >= 0 and hi >= 0 for lo, hi in rp) else
                  backward(x, w, g, stride, pads, dilation, groups, True, False, algorithm="im2col")[0])
        gw = None
        if need_w:
            gw = (_implicit.weight_grad(x, w.shape, g, pads, dilation) if algorithm == "implicit" else
                  backward(x, w, g, stride, pads, dilation, groups, False, True, cols, "im2col")[1])
        return gx, gw
    if need_x and (alg == "winograd" or _input_grad_by_forward(x, w, g, stride, pads, dilation, groups)):
        # the input gradient as a forward convolution of g (Winograd's, or folded im2col's); the
        # weight gradient, if wanted, from im2col's columns
        if alg == "winograd":
            gx = _winograd.input_grad(g, w, x.shape[2:], pads, dilation=dilation)
        else:
            gx = forward(g, _rotated(w), stride, full_correlation_padding(w.shape[2:], dilation, pads), dilation, 1,
                         x.shape[2:], algorithm="im2col")
        gw = backward(x, w, g, stride, pads, dilation, groups, False, True, cols, "im2col")[1] if need_w else None
        return gx, gw
    n_, c = x.shape[:2]
    k_out, kernel = w.shape[0], w.shape[2:]
    out = g.shape[2:]
    cl = not _heavy_weight(n_, out, k_out) and _channels_last(c, w, pads, dilation, groups)
    chunks = list(plan_chunks(n_, out, _cell_bytes(c, kernel, k_out, x.itemsize)))
    kept_im2col = cols is not None and not isinstance(cols, _Folded)  # then one product, no columns to make
    if need_w and not kept_im2col and _fold_ok(c, w, stride, pads, dilation, groups, chunks, x.shape, out):
        gw = _weight_grad_fold(x, w, g, pads, stride, dilation, cols if isinstance(cols, _Folded) else None)
        gx = backward(x, w, g, stride, pads, dilation, groups, need_w=False, algorithm="im2col")[0] if need_x else None
        return gx, gw
    if len(chunks) != 1 or isinstance(cols, _Folded):
        cols = None
    if cl:
        return _backward_cl(x, w, g, stride, pads, dilation, need_x, need_w, chunks, cols)
    wg = w.reshape(groups, k_out // groups, -1)
    gw = np.zeros_like(wg) if need_w else None
    gxp = None
    if need_x:
        gxp = pooled((n_, c) + padded_shape(x.shape[2:], pads), x.dtype, zero=True)
    for n0, n1, r0, r1 in chunks:
        oc = (r1 - r0,) + tuple(out[1:])
        m = (n1 - n0) * math.prod(oc)
        # per-sample grad_weight products when their stack (n, G, Kg, Cg*prod(K)) is no larger than the columns
        per_sample = need_w and _per_sample(r0, r1, out) and (n1 - n0) * gw.size <= m * wg.shape[2]
        x_by_sample = need_x and _per_sample(r0, r1, out)
        gt = None
        if (need_x and not x_by_sample) or (need_w and not per_sample):
            gt = np.ascontiguousarray(g[n0:n1, :, r0:r1].swapaxes(0, 1)).reshape(groups, k_out // groups, m)
        if need_w:
            cc = cols if cols is not None else _columns(x, n0, n1, pads, r0, r1, kernel, stride, dilation, oc, False,
                                                        temporary=True)
            if per_sample:
                gn = g[n0:n1].reshape(n1 - n0, groups, k_out // groups, -1)
                gw += np.matmul(gn, _sample_view(cc, groups, n1 - n0).swapaxes(2, 3)).sum(axis=0)
            else:
                gw += np.matmul(gt, cc.reshape(groups, -1, m).swapaxes(1, 2))
            del cc
        if x_by_sample:
            _input_grad_by_sample(gxp[n0:n1], g[n0:n1], wg, kernel, stride, dilation, oc)
        elif need_x:
            gcols = np.matmul(wg.swapaxes(1, 2), gt).reshape((c,) + tuple(kernel) + (n1 - n0,) + oc)
            a, _ = row_span(r0, r1, kernel[0], stride[0], dilation[0])
            col2im_add(gxp[n0:n1, :, a:], gcols, kernel, stride, dilation, oc)
    gx = None
    if need_x:
        crop = tuple(slice(lo, lo + s) for s, (lo, hi) in zip(x.shape[2:], pads))
        gx = gxp[(slice(None), slice(None)) + crop]
    return gx, (gw.reshape(w.shape) if need_w else None)


def _input_grad_by_sample(gxp, g, wg, kernel, stride, dilation, out):
    """gxp (n, C, *Sp) += col2im of each sample's channels-first grad_input columns, W^T @ g_i
    ((G, Cg*prod(K), Kg) @ (G, Kg, P) per sample), made a few samples at a time in one reused buffer:
    no transposed copy of g and no fresh pages for the columns (the 7x7/2 3->64 stem at 224x224,
    batch 8: 59 MB of them)."""
    n, c = gxp.shape[:2]
    groups, rows = wg.shape[0], wg.shape[2]
    per = math.prod(out)
    step = max(1, min(n, _SUB_BYTES // max(groups * rows * per * gxp.itemsize, 1)))
    wt = wg.swapaxes(1, 2)
    for i in range(0, n, step):
        j = min(n, i + step)
        buf = scratch("col2im_columns", (j - i, groups, rows, per), gxp.dtype)
        np.matmul(wt, g[i:j].reshape(j - i, groups, -1, per), out=buf)
        cols = buf.reshape((j - i, c) + tuple(kernel) + tuple(out))     # (b, C, *K, *O), channel = group-major
        col2im_add(gxp[i:j], np.moveaxis(cols, 0, 1 + len(kernel)), kernel, stride, dilation, out)


def _backward_cl(x, w, g, stride, pads, dilation, need_x, need_w, chunks, cols):
    """backward with channels-last columns (groups == 1): grad_input's columns (M, prod(K)*C) are
    one product, added back into a channels-last padded gradient."""
    n_, c = x.shape[:2]
    k_out, kernel = w.shape[0], w.shape[2:]
    out = g.shape[2:]
    gw = np.zeros((k_out, math.prod(kernel) * c), x.dtype) if need_w else None
    if need_x:
        sp = padded_shape(x.shape[2:], pads)
        gxp = scratch("col2im_grad_input", (n_,) + sp + (c,), x.dtype, zero=True)
        wm = np.moveaxis(w, 1, -1).reshape(k_out, -1)
    for n0, n1, r0, r1 in chunks:
        oc = (r1 - r0,) + tuple(out[1:])
        m = (n1 - n0) * math.prod(oc)
        gt = np.ascontiguousarray(g[n0:n1, :, r0:r1].swapaxes(0, 1)).reshape(k_out, m)
        if need_w:
            cc = cols if cols is not None else _columns(x, n0, n1, pads, r0, r1, kernel, stride, dilation, oc, True,
                                                        temporary=True)
            gw += np.matmul(gt, cc)
            del cc
        if need_x:
            a, _ = row_span(r0, r1, kernel[0], stride[0], dilation[0])
            _input_grad_cl(gxp[n0:n1, a:], gt, wm, kernel, stride, dilation, oc)
    gx = None
    if need_x:
        crop = tuple(slice(lo, lo + s) for s, (lo, hi) in zip(x.shape[2:], pads))
        gx = pooled(x.shape, x.dtype)
        np.copyto(gx, np.moveaxis(gxp[(slice(None),) + crop], -1, 1))
    if need_w:
        gw = np.ascontiguousarray(np.moveaxis(gw.reshape((k_out,) + tuple(kernel) + (c,)), -1, 1))
    return gx, gw


_SUB_BYTES = 1 << 24  # grad_input columns made and added back this many bytes at a time


def _input_grad_cl(gxp, gt, wm, kernel, stride, dilation, oc):
    """gxp (n, *Sp, C) += col2im of the columns gt.T @ wm, a few samples at a time: one reused buffer
    (no fresh pages to fault in) whose block is still in cache when col2im reads it back."""
    n, c = gxp.shape[0], gxp.shape[-1]
    per = math.prod(oc)
    step = max(1, min(n, _SUB_BYTES // max(per * wm.shape[1] * gxp.itemsize, 1)))
    buf = np.empty((step * per, wm.shape[1]), gxp.dtype)
    for i in range(0, n, step):
        j = min(n, i + step)
        gcols = np.matmul(gt[:, i * per:j * per].T, wm, out=buf[:(j - i) * per])
        col2im_cl_add(gxp[i:j], gcols.reshape((j - i,) + tuple(oc) + tuple(kernel) + (c,)),
                      kernel, stride, dilation, oc)


def input_grad(g, w, input_shape, stride, pads, dilation, groups, algorithm=None):
    """Gradient wrt the conv input of spatial shape ``input_shape``: the transposed conv of g."""
    dummy = np.broadcast_to(np.zeros((), g.dtype), (g.shape[0], w.shape[1] * groups) + tuple(input_shape))
    return backward(dummy, w, g, stride, pads, dilation, groups, need_w=False, algorithm=algorithm)[0]
