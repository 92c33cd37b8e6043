"""Losses with PyTorch's semantics, each forward beside its vjp.

Every loss takes ``reduction``: "none" (one value per element or sample),
"mean" or "sum" (0-d arrays). A vjp takes ``grad_out`` of the loss's shape (a
0-d array or a Python number for "mean" and "sum") and the forward's arguments.
Classification inputs are logits or log-probabilities with the class dim at 1:
(N, C), (N, C, d1, ..., dK), or unbatched (C,) with a 0-d target.

Legend: N batch, C classes, M = d1*...*dK positions per sample (1 without
extra dims); classification inputs are viewed as (N, C, M), targets as (N, M).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _checks as C
from .activation import _log_softmax, _sigmoid, _softmax

_REDUCTIONS = ("none", "mean", "sum")
_BCE_EPS = float(np.float32(1e-12))  # PyTorch's guard in the BCE gradient, a float32 constant even for float64


# --------------------------------------------------------------------------- shared

def _reduction(op, reduction):
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        C.fail(op, "reduction", "'none', 'mean' or 'sum'", reduction)
    return reduction


def _reduce(loss, reduction, denom=None):
    """loss itself, its sum, or its sum / denom (default: the element count), summed in float64."""
    if reduction == "none":
        return loss
    total = loss.sum(dtype=np.float64)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):  # nothing counted: nan, as in PyTorch
            total = total / (loss.size if denom is None else denom)
    return np.asarray(total, dtype=loss.dtype)


def _coef(op, grad_out, reduction, shape, dtype, denom=None):
    """d(result)/d(each elementwise loss): grad_out ("none"), grad_out or grad_out / denom (0-d)."""
    g = C.as_float_array(op, "grad_out", grad_out)
    C.same_shape(op, "grad_out", g.shape, shape if reduction == "none" else (), "the loss shape")
    if reduction == "mean":
        n = int(np.prod(shape)) if denom is None else denom
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.asarray(g.astype(np.float64) / n)
    return g.astype(dtype, copy=False)


def _pair(op, input, target):
    """input and a same-shaped target in one float dtype (an int target takes the input's)."""
    x = C.as_float_array(op, "input", input)
    t = C.as_float_array(op, "target", target, keep_int=True)
    C.same_shape(op, "target", t.shape, x.shape, "input.shape")
    dtype = C.result_dtype(x, t) if t.dtype.kind == "f" else x.dtype
    C.check_alloc(op, 2 * C.nbytes(x.shape, dtype), "temporaries")
    return x.astype(dtype, copy=False), t.astype(dtype, copy=False)


def _broadcast_weight(op, name, weight, shape, dtype):
    if weight is None:
        return None
    w = C.as_float_array(op, name, weight)
    try:
        ok = np.broadcast_shapes(w.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{op}: {name}.shape must broadcast to input.shape {tuple(shape)}; "
                         f"got {name}.shape={w.shape}.")
    return w.astype(dtype, copy=False)


# --------------------------------------------------------------------------- class indices / probabilities

def _classes(op, input):
    """input, viewed as (N, C, M), and the loss shape for one value per position."""
    x = C.as_float_array(op, "input", input)
    if x.ndim == 0:
        C.fail(op, "input.ndim", ">= 1: (C,), (N, C) or (N, C, d1, ...)", x.ndim)
    C.check_alloc(op, 2 * x.size * x.itemsize, "temporaries")
    if x.ndim == 1:
        return x, x.reshape(1, -1, 1), ()
    n, c = x.shape[:2]
    return x, x.reshape(n, c, math.prod(x.shape[2:])), x.shape[:1] + x.shape[2:]


def _class_weight(op, weight, n_classes, dtype):
    if weight is None:
        return None
    w = C.as_float_array(op, "weight", weight)
    if w.shape != (n_classes,):
        C.fail(op, "weight.shape", f"(C,) = ({n_classes},)", w.shape)
    return w.astype(dtype, copy=False)


def _indices(op, t, shape, n_classes, ignore_index):
    """target class indices as (N, M): (valid mask, indices with ignored ones set to 0)."""
    C.same_shape(op, "target", t.shape, shape, "input.shape without the class dim")
    t = t.astype(np.int64, copy=False).reshape((shape[0], int(np.prod(shape[1:]))) if shape else (1, 1))
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise ValueError(f"{op}: target values must be class indices in [0, {n_classes}) or ignore_index="
                         f"{ignore_index}; got target value {t[bad][0]}.")
    return valid, np.where(valid, t, 0)


def _target_weights(w, valid, tt, dtype):
    """weight[target] per position (ones without a weight), 0 where ignored."""
    wt = valid.astype(dtype) if w is None else w[tt]
    if w is not None:
        wt[~valid] = 0
    return wt


def _flat_index(tt, n_classes):
    """Flat positions of (n, tt[n, m], m) in a C-contiguous (N, C, M) array."""
    n, m = tt.shape
    return (np.arange(n)[:, None] * n_classes + tt) * m + np.arange(m)


def _ce_args(op, input, target, weight, ignore_index, reduction, label_smoothing):
    x, x3, shape = _classes(op, input)
    n_classes = x3.shape[1]
    w = _class_weight(op, weight, n_classes, x.dtype)
    ignore_index = C.as_int(op, "ignore_index", ignore_index)
    reduction = _reduction(op, reduction)
    eps = C.real_number(op, "label_smoothing", label_smoothing)
    if not 0 <= eps <= 1:
        C.fail(op, "label_smoothing", "in [0, 1]", label_smoothing)
    t = C.as_float_array(op, "target", target, keep_int=True)
    if t.dtype.kind in "iu":
        return x, x3, shape, w, eps, reduction, _indices(op, t, shape, n_classes, ignore_index)
    if t.dtype.kind != "f" or t.shape != x.shape:
        raise TypeError(f"{op}: target must be class indices (an integer array of shape {shape}) or class "
                        f"probabilities (a float array of shape {x.shape}); got target.shape={t.shape}, "
                        f"target.dtype={t.dtype}.")
    if ignore_index >= 0:
        C.fail(op, "ignore_index", "negative (unsupported) for class-probability targets", ignore_index)
    q3 = t.astype(x.dtype, copy=False).reshape(x3.shape)
    if eps > 0:
        q3 = q3 * (1 - eps)
        q3 += eps / n_classes
    return x, x3, shape, w, eps, reduction, q3


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross entropy between logits and class indices or class probabilities, as PyTorch.

    With class indices t and lp = log_softmax(input, 1), the loss at a position is
    ``(1 - eps) * (-w[t] * lp[t]) + (eps / C) * (-sum_c w[c] * lp[c])``, 0 where
    ``t == ignore_index``; "mean" divides the sum by ``sum(w[t])`` over the
    positions not ignored (their count without weight). With class probabilities
    q (smoothed to ``q * (1 - eps) + eps / C``) it is ``-sum_c w[c] * q[c] * lp[c]``
    and "mean" divides by the number of positions N*d1*...*dK.

    Parameters
    ----------
    input : logits (C,), (N, C) or (N, C, d1, ..., dK).
    target : int class indices, input's shape without dim 1 (0-d for (C,)), or
        float class probabilities of input's shape.
    weight : (C,) class weights or None.
    ignore_index : index whose positions count for nothing (index targets only).
    reduction : "none" (input's shape without the class dim), "mean" or "sum".
    label_smoothing : eps in [0, 1].

    Examples
    --------
    >>> x = np.array([[0., 0.], [0., np.log(3)]])
    >>> cross_entropy(x, np.array([0, 1]), reduction="none").round(4)
    array([0.6931, 0.2877])
    >>> cross_entropy(x, np.array([0, -100]))
    array(0.69314718)
    """
    op = "cross_entropy"
    x, x3, shape, w, eps, reduction, tgt = _ce_args(op, input, target, weight, ignore_index, reduction,
                                                    label_smoothing)
    lp = _log_softmax(x3, 1)
    n_classes = x3.shape[1]
    if isinstance(tgt, tuple):
        valid, tt = tgt
        wt = _target_weights(w, valid, tt, x.dtype)
        loss = np.take_along_axis(lp, tt[:, None, :], axis=1)[:, 0, :]
        loss *= wt
        np.negative(loss, out=loss)
        if eps > 0:
            smooth = (lp if w is None else lp * w[:, None]).sum(axis=1)
            smooth *= -eps / n_classes
            loss *= 1 - eps
            loss += smooth
        loss[~valid] = 0
        denom = wt.sum(dtype=np.float64)
    else:
        p = lp * tgt
        if w is not None:
            p *= w[:, None]
        loss = p.sum(axis=1)
        np.negative(loss, out=loss)
        denom = None
    return _reduce(loss.reshape(shape), reduction, denom)


def cross_entropy_vjp(grad_out, input, target, weight=None, ignore_index=-100, reduction="mean",
                      label_smoothing=0.0):
    """Gradient of :func:`cross_entropy` w.r.t. input (only): softmax minus the (weighted, smoothed) target.

    Index targets: ``a * ((1-eps)*w[t]*(s - onehot(t)) + (eps/C)*(sum(w)*s - w))`` with
    s = softmax(input, 1) and a = grad_out (per position for "none"; divided by the
    mean's denominator for "mean"; 0 where ignored). Probability targets:
    ``a * (s * sum_c(w*q) - w*q)``. One softmax, one scatter, no loop over samples.
    """
    op = "cross_entropy_vjp"
    x, x3, shape, w, eps, reduction, tgt = _ce_args(op, input, target, weight, ignore_index, reduction,
                                                    label_smoothing)
    n_classes = x3.shape[1]
    gx = np.ascontiguousarray(_softmax(x3, 1))  # C order: the flat scatter below must write into gx, not a copy
    if isinstance(tgt, tuple):
        valid, tt = tgt
        wt = _target_weights(w, valid, tt, x.dtype)
        a = _coef(op, grad_out, reduction, shape, x.dtype, wt.sum(dtype=np.float64))
        a = np.where(valid, a.reshape(valid.shape) if reduction == "none" else a, 0).astype(x.dtype, copy=False)
        if w is None:
            gx *= a[:, None, :]
            at = a * (1 - eps)
        else:
            at = a * wt
            at *= 1 - eps
            gx *= (at + a * (eps / n_classes * float(w.sum(dtype=np.float64))))[:, None, :]
        gx.reshape(-1)[_flat_index(tt, n_classes)] -= at
        if eps > 0:
            aw = (a * (eps / n_classes))[:, None, :]
            gx -= aw if w is None else aw * w[:, None]
    else:
        a = _coef(op, grad_out, reduction, shape, x.dtype, int(np.prod(shape)))
        if reduction == "none":
            a = a.reshape(tgt[:, 0].shape)[:, None, :]
        wq = tgt if w is None else tgt * w[:, None]
        gx *= wq.sum(axis=1, keepdims=True)
        gx -= wq
        gx *= a
    return gx.reshape(x.shape)


def _nll_args(op, input, target, weight, ignore_index, reduction):
    x, x3, shape = _classes(op, input)
    w = _class_weight(op, weight, x3.shape[1], x.dtype)
    ignore_index = C.as_int(op, "ignore_index", ignore_index)
    reduction = _reduction(op, reduction)
    t = C.as_float_array(op, "target", target, keep_int=True)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must have an integer dtype (class indices); got target.dtype={t.dtype}.")
    valid, tt = _indices(op, t, shape, x3.shape[1], ignore_index)
    return x, x3, shape, reduction, valid, tt, _target_weights(w, valid, tt, x.dtype)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log likelihood: ``-w[t] * input[t]`` per position, input holding log-probabilities.

    Arguments as :func:`cross_entropy` with index targets (no smoothing); "mean"
    divides by the summed weights of the targets not ignored.

    Examples
    --------
    >>> nll_loss(np.log(np.array([[0.5, 0.5], [0.25, 0.75]])), np.array([1, 0]), reduction="sum")
    array(2.07944154)
    """
    x, x3, shape, reduction, valid, tt, wt = _nll_args("nll_loss", input, target, weight, ignore_index,
                                                       reduction)
    loss = np.take_along_axis(x3, tt[:, None, :], axis=1)[:, 0, :] * wt
    np.negative(loss, out=loss)
    loss[~valid] = 0
    return _reduce(loss.reshape(shape), reduction, wt.sum(dtype=np.float64))


def nll_loss_vjp(grad_out, input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Gradient of :func:`nll_loss` w.r.t. input (only): ``-a * w[t]`` at each target, 0 elsewhere."""
    op = "nll_loss_vjp"
    x, x3, shape, reduction, valid, tt, wt = _nll_args(op, input, target, weight, ignore_index, reduction)
    a = _coef(op, grad_out, reduction, shape, x.dtype, wt.sum(dtype=np.float64))
    gx = np.zeros(x3.shape, dtype=x.dtype)
    a = np.where(valid, a.reshape(wt.shape) if reduction == "none" else a, 0).astype(x.dtype, copy=False)
    gx.reshape(-1)[_flat_index(tt, x3.shape[1])] = -a * wt
    return gx.reshape(x.shape)


# --------------------------------------------------------------------------- regression

def mse_loss(input, target, reduction="mean"):
    """Mean squared error: ``(input - target)**2`` per element, then reduced.

    input and target must have the same shape (PyTorch would broadcast, with a
    warning that it is probably a mistake; here it is an error).

    Examples
    --------
    >>> mse_loss(np.array([1., 2.]), np.array([0., 0.]))
    array(2.5)
    """
    x, t = _pair("mse_loss", input, target)
    reduction = _reduction("mse_loss", reduction)
    d = x - t
    d *= d
    return _reduce(d, reduction)


def mse_loss_vjp(grad_out, input, target, reduction="mean"):
    """Gradients of :func:`mse_loss`: (grad_input, grad_target) = (2*a*(input - target), the negative)."""
    op = "mse_loss_vjp"
    x, t = _pair(op, input, target)
    reduction = _reduction(op, reduction)
    gi = x - t
    gi *= 2 * _coef(op, grad_out, reduction, x.shape, x.dtype)
    return gi, np.negative(gi)


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error: ``|input - target|`` per element, then reduced.

    Examples
    --------
    >>> l1_loss(np.array([1., -3.]), np.array([0., 0.]), reduction="sum")
    array(4.)
    """
    x, t = _pair("l1_loss", input, target)
    reduction = _reduction("l1_loss", reduction)
    d = x - t
    np.abs(d, out=d)
    return _reduce(d, reduction)


def l1_loss_vjp(grad_out, input, target, reduction="mean"):
    """Gradients of :func:`l1_loss`: (a*sign(input - target), the negative); sign(0) = 0 as in PyTorch."""
    op = "l1_loss_vjp"
    x, t = _pair(op, input, target)
    reduction = _reduction(op, reduction)
    gi = x - t
    np.sign(gi, out=gi)
    gi *= _coef(op, grad_out, reduction, x.shape, x.dtype)
    return gi, np.negative(gi)


# --------------------------------------------------------------------------- binary

def _bce_logits_args(op, input, target, weight, reduction, pos_weight):
    x, t = _pair(op, input, target)
    w = _broadcast_weight(op, "weight", weight, x.shape, x.dtype)
    pw = _broadcast_weight(op, "pos_weight", pos_weight, x.shape, x.dtype)
    return x, t, w, _reduction(op, reduction), pw


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross entropy on logits, in the stable form PyTorch uses.

    ``loss = w * ((1 - t) * x + (1 + (pos_weight - 1) * t) * softplus(-x))``, which is
    ``-w * (pos_weight * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))``
    without overflow. weight and pos_weight broadcast to input's shape.

    Examples
    --------
    >>> binary_cross_entropy_with_logits(np.array([0., 0.]), np.array([1., 0.]), reduction="none")
    array([0.69314718, 0.69314718])
    """
    x, t, w, reduction, pw = _bce_logits_args("binary_cross_entropy_with_logits", input, target, weight,
                                              reduction, pos_weight)
    sp = np.logaddexp(0, -x)  # softplus(-x) = -log(sigmoid(x))
    if pw is not None:
        sp *= (pw - 1) * t + 1
    loss = 1 - t
    loss *= x
    loss += sp
    if w is not None:
        loss *= w
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits_vjp(grad_out, input, target, weight=None, reduction="mean",
                                         pos_weight=None):
    """Gradient of :func:`binary_cross_entropy_with_logits` w.r.t. input (only):
    ``a * w * (sigmoid(x) - t)``, or ``a * w * ((1 + (pos_weight-1)*t) * sigmoid(x) - pos_weight*t)``."""
    op = "binary_cross_entropy_with_logits_vjp"
    x, t, w, reduction, pw = _bce_logits_args(op, input, target, weight, reduction, pos_weight)
    g = _sigmoid(x)
    if pw is None:
        g -= t
    else:
        g *= (pw - 1) * t + 1
        g -= pw * t
    if w is not None:
        g *= w
    g *= _coef(op, grad_out, reduction, x.shape, x.dtype)
    return g


def _bce_args(op, input, target, weight, reduction):
    x, t = _pair(op, input, target)
    for name, a in (("input", x), ("target", t)):
        bad = ~((a >= 0) & (a <= 1))
        if bad.any():
            raise ValueError(f"{op}: {name} values must be probabilities in [0, 1]; got {name} value {a[bad][0]}.")
    return x, t, _broadcast_weight(op, "weight", weight, x.shape, x.dtype), _reduction(op, reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross entropy on probabilities: ``-w * (t*log(x) + (1-t)*log(1-x))``.

    Each log is clamped at -100, as PyTorch does, so x = 0 or 1 gives a finite loss.

    Examples
    --------
    >>> binary_cross_entropy(np.array([1., 0.5]), np.array([0., 1.]), reduction="none").round(4)
    array([100.    ,   0.6931])
    """
    x, t, w, reduction = _bce_args("binary_cross_entropy", input, target, weight, reduction)
    with np.errstate(divide="ignore"):
        lx = np.log(x)
        l1x = np.log1p(-x)
    np.maximum(lx, -100, out=lx)
    np.maximum(l1x, -100, out=l1x)
    l1x *= t - 1
    lx *= t
    l1x -= lx
    if w is not None:
        l1x *= w
    return _reduce(l1x, reduction)


def binary_cross_entropy_vjp(grad_out, input, target, weight=None, reduction="mean"):
    """Gradient of :func:`binary_cross_entropy` w.r.t. input (only):
    ``a * w * (x - t) / max(x * (1 - x), 1e-12)``, PyTorch's guard against 0/0."""
    op = "binary_cross_entropy_vjp"
    x, t, w, reduction = _bce_args(op, input, target, weight, reduction)
    den = 1 - x
    den *= x
    np.maximum(den, _BCE_EPS, out=den)
    g = x - t
    g /= den
    if w is not None:
        g *= w
    g *= _coef(op, grad_out, reduction, x.shape, x.dtype)
    return g


__all__ = [
    "cross_entropy", "cross_entropy_vjp", "nll_loss", "nll_loss_vjp", "mse_loss", "mse_loss_vjp",
    "l1_loss", "l1_loss_vjp", "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_vjp",
    "binary_cross_entropy", "binary_cross_entropy_vjp",
]
