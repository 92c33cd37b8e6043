"""Normalisation layers as functions: batch, layer, group, instance and local response norm.

Signatures follow ``torch.nn.functional``; each forward sits beside its vjp,
which takes ``grad_out`` and the forward's arguments and returns
``(grad_input, grad_weight, grad_bias)`` (None for an absent weight or bias).
Statistics are summed in float64 after centring on the mean (two passes; a float32
row adds up in float32 first, by pairwise summation), so float32 inputs match
PyTorch to ~1e-6 without the cancellation of E[x^2] - E[x]^2.
The only state is the running statistics, which the forwards in training mode
update in place, as PyTorch does; no vjp writes them.

Legend: N batch, C channels, M = product of the spatial dims, G groups,
n the number of values one mean is taken over.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .. import _checks as C
from .._parallel import run_blocks

_F64 = np.float64


# --------------------------------------------------------------------------- shared


def _channels_input(op, input):
    x = C.as_float_array(op, "input", input)
    if x.ndim < 2:
        C.fail(op, "input.ndim", ">= 2: (N, C, *)", x.ndim)
    C.check_alloc(op, 2 * x.size * x.itemsize, "output and temporaries")
    return x


def _affine(op, weight, bias, shape):
    """weight and bias (each None or of the given shape) as float arrays."""
    out = []
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None:
            a = C.as_float_array(op, name, a)
            C.same_shape(op, name, a.shape, shape, "the normalised shape")
        out.append(a)
    return out


def _grad(op, grad_out, x):
    g = C.as_float_array(op, "grad_out", grad_out)
    C.same_shape(op, "grad_out", g.shape, x.shape, "input.shape")
    return g.astype(x.dtype, copy=False)


def _cast(dtype, *arrays):
    return [None if a is None else a.astype(dtype, copy=False) for a in arrays]


_EINSUM_DOT_MAX = 512


def _sum64(a, axes, b=None):
    """Sums of a (or of a * b) over ``axes``, keepdims, in float64.

    A float32 array whose last axis is summed adds along that axis first in float32, then the rest in
    float64: NumPy's pairwise summation along a contiguous row (relative error about 1e-8 over 1024 cells)
    instead of a cast of every element, and a dot product per row for a * b, with no product array.
    128 x 16 x 1024 float32, ms: a sum 0.94 -> 0.45, a sum of squares 2.34 -> 0.33. Float64 sums its rows
    first too, so that a block of channels or samples gets the same sums as the whole array."""
    last = a.ndim - 1
    if a.dtype not in (np.float32, np.float64) or last not in axes:
        return (a if b is None else a * b).sum(axis=axes, keepdims=True, dtype=_F64)
    # rows first, then the rest in a fixed order: the same sums for any block of the other axes. np.einsum sums a
    # row faster than np.add.reduce (rows of 56 float32: 2.45 vs 4.58 ms for 114688 rows; of 3136: 1.38 vs 2.00
    # for 2048) and its products for short rows faster than np.vecdot (3.49 vs 5.40; of 3136 1.44 vs 1.23), and
    # each row's result does not depend on the rows around it (checked on slices at every offset)
    if b is None:
        rows = np.einsum("...j->...", a)[..., None]
    else:
        rows = (np.einsum("...j,...j->...", a, b) if a.shape[-1] < _EINSUM_DOT_MAX else np.vecdot(a, b))[..., None]
    rest = tuple(ax for ax in axes if ax != last)
    return rows.sum(axis=rest, keepdims=True, dtype=_F64) if rest else rows.astype(_F64)


def _moments(x, axes):
    """(mean, biased variance) over axes in float64 (keepdims), and x - mean in x's dtype."""
    n = int(np.prod([x.shape[a] for a in axes]))
    mean = _sum64(x, axes)
    mean /= max(n, 1)
    xc = x - mean.astype(x.dtype)
    if x.dtype != _F64:  # the mean rounded to x's dtype is off by up to half its ulp: centre on the residual too
        d = _sum64(xc, axes)
        d /= max(n, 1)
        mean += d
        xc -= d.astype(x.dtype)
    var = _sum64(xc, axes, xc)
    var /= max(n, 1)
    return mean, var, xc


def _running_stats(op, running_mean, running_var, c, update):
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must both be arrays or both be None; "
                         f"got running_mean={C._show(running_mean)}, running_var={C._show(running_var)}.")
    if running_mean is None:
        return None, None
    out = []
    for name, a in (("running_mean", running_mean), ("running_var", running_var)):
        if update and not (isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.flags.writeable):
            raise TypeError(f"{op}: {name} must be a writable float ndarray to be updated in place in "
                            f"training; got {name}={C._show(a)}" + (" (read-only)." if isinstance(a, np.ndarray)
                                                                 and not a.flags.writeable else "."))
        a = C.as_float_array(op, name, a)
        C.same_shape(op, name, a.shape, (c,), "(C,) =")
        out.append(a)
    return out


def _momentum(op, momentum):
    if momentum is None:
        raise TypeError(f"{op}: momentum must be a real number (None, PyTorch's cumulative average, is not "
                        f"supported here: pass momentum=1/num_batches_tracked); got momentum=None.")
    return C.real_number(op, "momentum", momentum)


def _update(running, batch_stat, momentum):
    """running = (1 - momentum) * running + momentum * batch_stat, in place, computed in float64."""
    running[...] = (1 - momentum) * running.astype(_F64) + momentum * batch_stat


def _sum_to(a, shape):
    """Sum a (keepdims broadcast form) down to the given broadcastable shape."""
    axes = tuple(i for i, (s, t) in enumerate(zip(a.shape, shape)) if t == 1 and s != 1)
    return _sum64(a, axes)


# --------------------------------------------------------------------------- batch norm

def _bn_args(op, input, running_mean, running_var, weight, bias, training, momentum, eps, update):
    x = _channels_input(op, input)
    training = C.flag(op, "training", training)
    eps = C.eps(op, eps)
    momentum = _momentum(op, momentum)
    n, c = x.shape[:2]
    rm, rv = _running_stats(op, running_mean, running_var, c, update and training)
    w, b = _affine(op, weight, bias, (c,))
    dtype = C.result_dtype(x, w, b)
    x, w, b = _cast(dtype, x, w, b)
    m = int(np.prod(x.shape[2:]))
    if training and n * m <= 1:
        raise ValueError(f"{op}: input must have more than 1 value per channel when training; "
                         f"got input.shape={x.shape}.")
    if not training and rm is None:
        C.fail(op, "running_mean", "an array when training=False (evaluation uses the running statistics)",
               None)
    return x.reshape(n, c, m), rm, rv, w, b, training, momentum, eps


def _eval_affine(rm, rv, w, b, eps):
    """Evaluation-mode batch norm as y = x * scale + shift, per channel, in float64."""
    scale = 1 / np.sqrt(rv.astype(_F64) + eps)
    if w is not None:
        scale *= w
    shift = -rm * scale
    if b is not None:
        shift += b
    return scale, shift


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Batch normalisation over (N, *) per channel (dim 1).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``. With ``training=True``
    mean and var are the batch's (biased variance), and running_mean / running_var,
    when given, are updated in place: ``r = (1 - momentum) * r + momentum * stat``
    with the UNBIASED batch variance for running_var. With ``training=False`` the
    running statistics are used. ``momentum=None`` (PyTorch's cumulative average)
    is not supported: pass ``momentum=1 / num_batches_tracked`` instead.

    Shape
    -----
    input (N, C, *); running stats, weight, bias (C,); output as input.

    Examples
    --------
    >>> rm, rv = np.zeros(1), np.ones(1)
    >>> batch_norm(np.array([[1.], [3.]]), rm, rv, training=True, eps=0.0)
    array([[-1.],
           [ 1.]])
    >>> rm, rv
    (array([0.2]), array([1.1]))
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)[0]


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """batch_norm's (y, the batch's statistics for :func:`_batch_norm_taped_vjp`: None when not training)."""
    x3, rm, rv, w, b, training, momentum, eps = _bn_args(
        "batch_norm", input, running_mean, running_var, weight, bias, training, momentum, eps, True)
    shape = np.shape(input)
    if not training:
        scale, shift = _eval_affine(rm, rv, w, b, eps)
        y = x3 * scale.astype(x3.dtype)[:, None]
        y += shift.astype(x3.dtype)[:, None]
        return y.reshape(shape), None
    y = np.empty_like(x3)

    def block(cs):
        st, yc = _bn_stats(x3[:, cs])           # yc is x - shift, made the output in place
        scale = 1 / np.sqrt(st.var + eps)
        if w is not None:
            scale *= w[cs, None]
        yc *= scale.astype(yc.dtype)
        offset = -st.d * scale                  # the residual of the centring, folded in here
        if b is not None:
            offset += b[cs, None]
        if b is not None or x3.dtype != _F64:
            yc += offset.astype(yc.dtype)
        y[:, cs] = yc
        return st
    st = _Stats(*(np.concatenate(parts, axis=1) for parts in zip(*run_blocks(block, _channel_blocks(x3)))))
    if running_mean is not None:
        n = x3.shape[0] * x3.shape[2]
        _update(running_mean, st.mean.ravel(), momentum)
        _update(running_var, st.var.ravel() * (n / (n - 1)), momentum)
    return y.reshape(shape), st


class _Stats(NamedTuple):
    """A training batch norm's batch statistics per channel, (1, C, 1) float64 unless said: mean, biased
    var, the shift subtracted from x (the mean rounded to x's dtype, in x's dtype), the mean d of x - shift."""
    mean: np.ndarray
    var: np.ndarray
    shift: np.ndarray
    d: np.ndarray


# A training batch norm's passes run over blocks of channels of about this many bytes, so that a block stays in
# cache from one pass to the next, on convkit's threads; every channel's sums are the same either way.
# Forward + gradient, ms, whole vs blocks: 32x64x56x56 float32 32.7 -> 18.0, 128x16x32x32 7.8 -> 6.0, 128x64x8x8
# 2.4 -> 1.8.
_BN_BLOCK_BYTES = 1 << 20


def _channel_blocks(x3):
    """Slices of the channels of x3 (N, C, M), each about _BN_BLOCK_BYTES and of at least two channels: NumPy
    sums a lone channel's N row sums pairwise, but several channels' one row after another, as it does for the
    whole array, so blocks of two or more give every channel the whole array's sums."""
    per = max(2, _BN_BLOCK_BYTES // max(1, x3.shape[0] * x3.shape[2] * x3.itemsize))
    c = x3.shape[1]
    starts = list(range(0, c, per))
    if len(starts) > 1 and c - starts[-1] < 2:
        starts.pop()                          # a last lone channel joins the block before it
    return [slice(i, j) for i, j in zip(starts, starts[1:] + [c])]


def _bn_stats(x3):
    """(:class:`_Stats`, x - shift) of x3 (N, C, M) over N and M, centred once, where shift is the mean
    rounded to x's dtype, and d (up to half that dtype's ulp of the mean) is the mean of what is left.
    The variance is E[(x - shift)^2] - d^2, and d is folded into the output's offset and the gradient's
    constant instead of a second pass over x (float32 ResNet-20 training: 7 -> 6 passes forward, 2 -> 1
    to centre x again in the backward). Float64 takes d = 0, as its rounding of the mean is exact enough."""
    n = x3.shape[0] * x3.shape[2]
    mean = _sum64(x3, (0, 2))
    mean /= n
    shift = mean.astype(x3.dtype)
    xc = x3 - shift
    if x3.dtype != _F64:
        d = _sum64(xc, (0, 2))
        d /= n
    else:
        d = np.zeros_like(mean)
    var = _sum64(xc, (0, 2), xc)
    var /= n
    var -= d * d
    np.maximum(var, 0, out=var)
    return _Stats(mean + d, var, shift, d), xc


def batch_norm_vjp(grad_out, input, running_mean, running_var, weight=None, bias=None, training=False,
                   momentum=0.1, eps=1e-5):
    """Gradients of :func:`batch_norm`: (grad_input, grad_weight or None, grad_bias or None).

    Training, in one pass of channel sums (xc = x - mean, r = 1/sqrt(var + eps)):
    ``grad_input = w*r * (g - sum(g)/n - xc * r**2 * sum(g*xc)/n)``,
    ``grad_weight = r * sum(g*xc)``, ``grad_bias = sum(g)``. Evaluation:
    ``grad_input = g * w * r`` with the running statistics. Running stats are never written.
    """
    return _batch_norm_taped_vjp(grad_out, input, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm_taped_vjp(grad_out, input, running_mean, running_var, weight=None, bias=None, training=False,
                          momentum=0.1, eps=1e-5, stats=None):
    """batch_norm_vjp; ``stats`` (the forward's :class:`_Stats`, see :func:`_batch_norm`) saves computing
    the batch's mean and variance again, as PyTorch's backward reads the forward's saved mean and inverse
    std. The result is bitwise the same either way."""
    op = "batch_norm_vjp"
    x3, rm, rv, w, b, training, momentum, eps = _bn_args(
        op, input, running_mean, running_var, weight, bias, training, momentum, eps, False)
    shape = np.shape(input)
    g = _grad(op, grad_out, x3.reshape(shape)).reshape(x3.shape)
    gx = np.empty(x3.shape, g.dtype)

    def block(cs):
        stats_c = None if stats is None else _Stats(*(a[:, cs] for a in stats))
        gx[:, cs], gw_c, gb_c = _bn_vjp_block(g[:, cs], x3[:, cs], rm if rm is None else rm[cs],
                                              rv if rv is None else rv[cs], w if w is None else w[cs],
                                              training, eps, stats_c)
        return gw_c, gb_c
    parts = run_blocks(block, _channel_blocks(x3))
    gw = None if w is None else np.concatenate([p[0] for p in parts]).astype(w.dtype)
    gb = None if b is None else np.concatenate([p[1] for p in parts]).astype(b.dtype)
    return gx.reshape(shape), gw, gb


def _bn_vjp_block(g, x3, rm, rv, w, training, eps, stats):
    """(grad_x, s_gxc * r, s_g) of a block of channels: see batch_norm_vjp."""
    n = x3.shape[0] * x3.shape[2]
    d = 0
    if training:
        st, xc = _bn_stats(x3) if stats is None else (stats, x3 - stats.shift)
        d = st.d.ravel()                # xc = x - shift; the centred x is xc - d
        r = 1 / np.sqrt(st.var.ravel() + eps)
    else:
        xc = x3 - rm.astype(x3.dtype)[:, None]
        r = 1 / np.sqrt(rv.astype(_F64) + eps)
    s_g = _sum64(g, (0, 2)).ravel()
    s_gxc = _sum64(g, (0, 2), xc).ravel() - d * s_g
    wr = r if w is None else r * w
    gx = g * wr.astype(g.dtype)[:, None]
    if training:
        k = wr * r * r * s_gxc / n      # gx = wr g - wr s_g / n - k (xc - d)
        gx += (k * d - wr * s_g / n).astype(g.dtype)[:, None]
        xc *= (-k).astype(g.dtype)[:, None]
        gx += xc
    return gx, s_gxc * r, s_g


# --------------------------------------------------------------------------- per-sample norms (layer, group, instance)
# All three normalise a view (A, G, P, Q) over its last two axes and apply a
# weight that broadcasts against it: layer norm (rows, 1, K, 1) with weight
# (1, 1, K, 1); group norm (N, G, C/G, M) with (1, G, C/G, 1); instance norm is
# group norm with G = C.

# Layer, group and instance norm normalise each (sample, group) on its own: their passes run over blocks of
# samples of about this many bytes each, so that a block's arrays stay in cache between passes, on convkit's
# threads. 32x64x56x56 float32, ms, whole arrays vs blocks of 1 MiB: layer norm over the last dim forward
# 20.4 -> 10.5, gradient 51.0 -> 19.6; group norm (8 groups) 9.6 -> 6.4, 31.7 -> 11.7 (blocks of 128 KiB to
# 2 MiB: layer norm 21.9 to 9.8 and 33.9 to 19.6, group norm 6.8 to 5.9 and 12.5 to 11.7).
_NORM_BLOCK_BYTES = 1 << 20


def _row_blocks(x4):
    """Slices of axis 0 of x4 (samples, or rows of a layer norm), each about _NORM_BLOCK_BYTES."""
    per = max(1, _NORM_BLOCK_BYTES // max(1, x4[:1].nbytes))
    n = x4.shape[0]
    return [slice(i, min(n, i + per)) for i in range(0, n, per)]


def _normalize(x4, w4, b4, eps):
    """y of a layer, group or instance norm: each x4[i, j] normalised over axes 2 and 3, block by block."""
    y = np.empty_like(x4)

    def block(sl):
        y[sl] = _normalize_block(x4[sl], w4, b4, eps)
    run_blocks(block, _row_blocks(x4))
    return y


def _normalize_vjp(g4, x4, w4, b4, eps):
    """(grad_x, grad_w or None, grad_b or None) of _normalize, block by block; the weight's and bias's
    gradients are sums over the blocks (float64, keepdims)."""
    gx = np.empty_like(x4)

    def block(sl):
        gx[sl], gw, gb = _normalize_vjp_block(g4[sl], x4[sl], w4, b4, eps)
        return gw, gb
    parts = run_blocks(block, _row_blocks(x4))
    gw = None if w4 is None else sum(p[0] for p in parts)
    gb = None if b4 is None else sum(p[1] for p in parts)
    return gx, gw, gb


def _normalize_block(x4, w4, b4, eps):
    _, var, y = _moments(x4, (2, 3))
    y *= (1 / np.sqrt(var + eps)).astype(y.dtype)
    if w4 is not None:
        y *= w4
    if b4 is not None:
        y += b4
    return y


def _normalize_vjp_block(g4, x4, w4, b4, eps):
    n = x4.shape[2] * x4.shape[3]
    _, var, xh = _moments(x4, (2, 3))
    r = (1 / np.sqrt(var + eps)).astype(x4.dtype)
    xh *= r
    p = g4 * xh
    gw = None if w4 is None else _sum_to(p, w4.shape)
    gb = None if b4 is None else _sum_to(g4, b4.shape)
    if w4 is None:
        dxh = g4.copy()
    else:
        dxh = g4 * w4
        np.multiply(dxh, xh, out=p)
    m2 = _sum64(p, (2, 3)) / n
    m1 = _sum64(dxh, (2, 3)) / n
    xh *= m2.astype(xh.dtype)
    dxh -= m1.astype(dxh.dtype)
    dxh -= xh
    dxh *= r
    return dxh, gw, gb


def _ln_args(op, input, normalized_shape, weight, bias, eps):
    x = C.as_float_array(op, "input", input)
    C.check_alloc(op, 2 * x.size * x.itemsize, "output and temporaries")
    if isinstance(normalized_shape, (numbers.Integral, np.integer)) and not isinstance(normalized_shape, bool):
        normalized_shape = (normalized_shape,)
    if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape:
        C.fail(op, "normalized_shape", "an int or a non-empty sequence of ints", normalized_shape,
               TypeError if not isinstance(normalized_shape, (tuple, list)) else ValueError)
    ns = C.ntuple(op, "normalized_shape", tuple(normalized_shape), len(normalized_shape), minimum=0)
    k = len(ns)
    if x.shape[x.ndim - k:] != ns or x.ndim < k:
        raise ValueError(f"{op}: input.shape must end with normalized_shape {ns}; got input.shape={x.shape}.")
    w, b = _affine(op, weight, bias, ns)
    eps = C.eps(op, eps)
    dtype = C.result_dtype(x, w, b)
    x, w, b = _cast(dtype, x, w, b)
    # the normalized cells last: each row's sums run along a contiguous axis (_sum64's fast path)
    x4 = x.reshape(int(np.prod(x.shape[:x.ndim - k])), 1, 1, int(np.prod(ns)))
    w4, b4 = [None if a is None else a.reshape(1, 1, 1, -1) for a in (w, b)]
    return x, x4, w4, b4, eps, ns


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the trailing ``normalized_shape`` dims of each sample.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, mean and (biased) var
    over the last ``len(normalized_shape)`` dims; weight and bias have shape
    ``normalized_shape``.

    Examples
    --------
    >>> layer_norm(np.array([[1., 3.], [0., 10.]]), 2, eps=0.0)
    array([[-1.,  1.],
           [-1.,  1.]])
    """
    x, x4, w4, b4, eps, _ = _ln_args("layer_norm", input, normalized_shape, weight, bias, eps)
    return _normalize(x4, w4, b4, eps).reshape(x.shape)


def layer_norm_vjp(grad_out, input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Gradients of :func:`layer_norm`: (grad_input, grad_weight or None, grad_bias or None)."""
    op = "layer_norm_vjp"
    x, x4, w4, b4, eps, ns = _ln_args(op, input, normalized_shape, weight, bias, eps)
    gx, gw, gb = _normalize_vjp(_grad(op, grad_out, x).reshape(x4.shape), x4, w4, b4, eps)
    return gx.reshape(x.shape), *[None if a is None else a.astype(x.dtype).reshape(ns) for a in (gw, gb)]


def _gn_args(op, input, num_groups, weight, bias, eps):
    x = _channels_input(op, input)
    n, c = x.shape[:2]
    groups = C.as_int(op, "num_groups", num_groups, minimum=1)
    if c % groups:
        raise ValueError(f"{op}: num_groups must divide the channels; got channels={c}, num_groups={groups}.")
    w, b = _affine(op, weight, bias, (c,))
    eps = C.eps(op, eps)
    dtype = C.result_dtype(x, w, b)
    x, w, b = _cast(dtype, x, w, b)
    x4 = x.reshape(n, groups, c // groups, int(np.prod(x.shape[2:])))
    w4, b4 = [None if a is None else a.reshape(1, groups, c // groups, 1) for a in (w, b)]
    return x, x4, w4, b4, eps


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation: each sample's channels split into num_groups groups, each
    normalised over its channels and spatial dims; per-channel weight and bias.

    Shape
    -----
    input (N, C, *) with num_groups dividing C; weight, bias (C,).

    Examples
    --------
    >>> group_norm(np.array([[1., 3., 0., 10.]]), 2, eps=0.0)
    array([[-1.,  1., -1.,  1.]])
    """
    x, x4, w4, b4, eps = _gn_args("group_norm", input, num_groups, weight, bias, eps)
    return _normalize(x4, w4, b4, eps).reshape(x.shape)


def group_norm_vjp(grad_out, input, num_groups, weight=None, bias=None, eps=1e-5):
    """Gradients of :func:`group_norm`: (grad_input, grad_weight or None, grad_bias or None)."""
    op = "group_norm_vjp"
    x, x4, w4, b4, eps = _gn_args(op, input, num_groups, weight, bias, eps)
    gx, gw, gb = _normalize_vjp(_grad(op, grad_out, x).reshape(x4.shape), x4, w4, b4, eps)
    return gx.reshape(x.shape), *[None if a is None else a.astype(x.dtype).ravel() for a in (gw, gb)]


def _in_args(op, input, running_mean, running_var, use_input_stats, momentum, eps, update):
    x = _channels_input(op, input)
    use_input_stats = C.flag(op, "use_input_stats", use_input_stats)
    if use_input_stats and int(np.prod(x.shape[2:])) <= 1:
        raise ValueError(f"{op}: input must have more than 1 spatial element when using input statistics; "
                         f"got input.shape={x.shape}.")
    rm, rv = _running_stats(op, running_mean, running_var, x.shape[1], update and use_input_stats)
    if not use_input_stats and rm is None:
        C.fail(op, "running_mean", "an array when use_input_stats=False", None)
    return use_input_stats, _momentum(op, momentum), rm, rv


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Instance normalisation: each (sample, channel) normalised over its spatial dims.

    With ``use_input_stats=True`` the statistics are each instance's own, and
    running_mean / running_var, when given, are updated in place with their
    averages over the batch (unbiased variance), as PyTorch does. With
    ``use_input_stats=False`` the running statistics normalise, as in
    :func:`batch_norm` evaluation.

    Shape
    -----
    input (N, C, *) with more than one spatial element; running stats, weight, bias (C,).

    Examples
    --------
    >>> instance_norm(np.array([[[1., 3.], [0., 10.]]]), eps=0.0)
    array([[[-1.,  1.],
            [-1.,  1.]]])
    """
    op = "instance_norm"
    use, momentum, rm, rv = _in_args(op, input, running_mean, running_var, use_input_stats, momentum, eps, True)
    if not use:
        return _as(op, batch_norm, input, rm, rv, weight, bias, False, momentum, eps)
    x, x4, w4, b4, eps = _gn_args(op, input, np.shape(input)[1], weight, bias, eps)
    y = _normalize(x4, w4, b4, eps).reshape(x.shape)
    if running_mean is not None:
        mean, var, _ = _moments(x4, (2, 3))
        m = x4.shape[3]
        _update(running_mean, mean.reshape(x4.shape[:2]).mean(axis=0), momentum)
        _update(running_var, var.reshape(x4.shape[:2]).mean(axis=0) * (m / (m - 1)), momentum)
    return y


def instance_norm_vjp(grad_out, input, running_mean=None, running_var=None, weight=None, bias=None,
                      use_input_stats=True, momentum=0.1, eps=1e-5):
    """Gradients of :func:`instance_norm`: (grad_input, grad_weight or None, grad_bias or None).

    Running statistics are never written (with ``use_input_stats=False`` they are read).
    """
    op = "instance_norm_vjp"
    use, momentum, rm, rv = _in_args(op, input, running_mean, running_var, use_input_stats, momentum, eps, False)
    if not use:
        return _as(op, batch_norm_vjp, grad_out, input, rm, rv, weight, bias, False, momentum, eps)
    return _as(op, group_norm_vjp, grad_out, input, np.shape(input)[1], weight, bias, eps)


def _as(op, fn, *args):
    """fn(*args), with an argument error's message naming ``op`` (the op the caller called) instead."""
    try:
        return fn(*args)
    except (ValueError, TypeError) as e:
        head, sep, rest = str(e).partition(": ")
        if not sep or " " in head:
            raise
        raise type(e)(f"{op}: {rest}") from None


# --------------------------------------------------------------------------- local response norm

def _window_sum(a, lo, hi):
    """out[:, c] = sum of a[:, j] for j in [c - lo, c + hi] within [0, C)."""
    out = a.copy()
    c = a.shape[1]
    for o in range(1, min(lo, c - 1) + 1):
        out[:, o:] += a[:, :c - o]
    for o in range(1, min(hi, c - 1) + 1):
        out[:, :c - o] += a[:, o:]
    return out


def _lrn_args(op, input, size, alpha, beta, k):
    x = C.as_float_array(op, "input", input)
    if x.ndim < 3:
        C.fail(op, "input.ndim", ">= 3: (N, C, *spatial)", x.ndim)
    C.check_alloc(op, 2 * x.size * x.itemsize, "output and temporaries")
    size = C.as_int(op, "size", size, minimum=1)
    alpha = C.real_number(op, "alpha", alpha)
    beta = C.real_number(op, "beta", beta)
    k = C.real_number(op, "k", k)
    return x, size, alpha, beta, k


def _lrn_div(x, size, alpha, k):
    """k + alpha/size * (sum of x^2 over the channel window [c - size//2, c + (size-1)//2])."""
    d = _window_sum(x * x, size // 2, (size - 1) // 2)
    d *= alpha / size
    d += k
    return d


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels (AlexNet), as PyTorch:

    ``y[c] = x[c] / (k + alpha/size * sum(x[c']**2 for c' in [c - size//2, c + (size-1)//2]))**beta``

    Channels outside [0, C) count as zeros (the divisor stays ``size``). ONNX LRN
    centres an even window the other way (``[c - (size-1)//2, c + size//2]``).

    Shape
    -----
    input (N, C, *) with at least one spatial dim; output as input.

    Examples
    --------
    >>> local_response_norm(np.array([[[1.], [1.]]]), size=2, alpha=2.0, beta=1.0, k=0.0)
    array([[[1. ],
            [0.5]]])
    """
    x, size, alpha, beta, k = _lrn_args("local_response_norm", input, size, alpha, beta, k)
    d = _lrn_div(x, size, alpha, k)
    np.power(d, -beta, out=d)
    d *= x
    return d


def local_response_norm_vjp(grad_out, input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Gradient of :func:`local_response_norm` w.r.t. input: one array (the op has no weights).

    ``grad_x[j] = g[j] * D[j]**-beta - 2*alpha*beta/size * x[j] * sum(g[c] * x[c] * D[c]**(-beta-1))``
    over the channels c whose window holds j (the window reflected).
    """
    op = "local_response_norm_vjp"
    x, size, alpha, beta, k = _lrn_args(op, input, size, alpha, beta, k)
    g = _grad(op, grad_out, x)
    d = _lrn_div(x, size, alpha, k)
    dnb = np.power(d, -beta)
    t = g * x
    t *= dnb
    t /= d
    s = _window_sum(t, (size - 1) // 2, size // 2)
    s *= x
    s *= -2 * alpha * beta / size
    dnb *= g
    dnb += s
    return dnb


__all__ = [
    "batch_norm", "batch_norm_vjp", "layer_norm", "layer_norm_vjp", "group_norm", "group_norm_vjp",
    "instance_norm", "instance_norm_vjp", "local_response_norm", "local_response_norm_vjp",
]
