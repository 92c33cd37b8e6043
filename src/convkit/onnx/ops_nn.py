"""ONNX pooling, normalisation and activation operators.

Pools and norms go through convkit.functional; activations whose ONNX
defaults differ from PyTorch's (HardSigmoid, Selu) are plain NumPy.
ONNX MaxPool/MaxUnpool indices are flat over the whole (N, C, *spatial)
tensor; convkit's are flat per (n, c) plane, so these functions convert.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import shapes
from ._util import check_output_size, onnx_pads, window


def _plane_offsets(shape):
    """Flat offset of each (n, c) plane in a (N, C, *spatial) tensor, shaped to broadcast."""
    N, C = shape[:2]
    plane = math.prod(shape[2:])
    return (np.arange(N * C, dtype=np.int64).reshape(N, C) * plane).reshape((N, C) + (1,) * (len(shape) - 2))


# ----------------------------------------------------------------------------- pooling
def MaxPool(X, *, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, pads=None,
            storage_order=0, strides=None, return_indices=False):
    """Max pooling; ``return_indices=True`` (the node's second output) also returns ONNX's Indices,
    flat over the whole (N, C, *D) input (column-major within a plane when ``storage_order=1``).

    Shape: (N, C, *D) -> (N, C, *O), O = floor or ceil((D + lo + hi - dilation * (k - 1) - 1) / stride) + 1.
    """
    k, s, pad, d = window(X, kernel_shape, strides, pads, dilations, auto_pad)
    if not return_indices:
        return F.max_pool(X, k, s, pad, d, bool(ceil_mode))
    y, idx = F.max_pool(X, k, s, pad, d, bool(ceil_mode), return_indices=True)
    sp = X.shape[2:]
    if storage_order == 1:  # column-major: the first spatial dim varies fastest
        idx = np.ravel_multi_index(np.unravel_index(idx, sp), sp, order="F")
    return y, idx.astype(np.int64) + _plane_offsets(X.shape)


def AveragePool(X, *, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None, kernel_shape=None,
                pads=None, strides=None):
    """Average pooling; padded cells count only with ``count_include_pad=1`` (ONNX's default is 0,
    PyTorch's the opposite). Shape as MaxPool."""
    k, s, pad, d = window(X, kernel_shape, strides, pads, dilations, auto_pad)
    return F.avg_pool(X, k, s, pad, bool(ceil_mode), count_include_pad=bool(count_include_pad),
                      dilation=d).astype(X.dtype, copy=False)


def LpPool(X, *, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, p=2, pads=None, strides=None):
    k, s, pad, d = window(X, kernel_shape, strides, pads, dilations, auto_pad)
    return F.lp_pool(X, p, k, s, pad, d, bool(ceil_mode)).astype(X.dtype, copy=False)


def GlobalAveragePool(X):
    return F.global_avg_pool(X).astype(X.dtype, copy=False)


def GlobalMaxPool(X):
    return F.global_max_pool(X)


def MaxUnpool(X, I, output_shape=None, *, kernel_shape=None, pads=None, strides=None):
    k = tuple(int(v) for v in kernel_shape)
    n = len(k)
    s = tuple(int(v) for v in strides) if strides else (1,) * n
    padding = onnx_pads(pads, n)
    default = shapes.conv_transpose_output_shape(X.shape[2:], k, s, padding)
    out = tuple(int(v) for v in np.asarray(output_shape)[2:]) if output_shape is not None else default
    check_output_size("MaxUnpool", X.shape[:2] + tuple(out), X.dtype)
    # ONNX's indices (as its reference and test data read them) are flat over the tensor of the default
    # shape; an output_shape then pads at the end. convkit's are flat over each output plane.
    idx = np.unravel_index(np.asarray(I), X.shape[:2] + tuple(default))[2:]
    return F.max_unpool(X, np.ravel_multi_index(idx, out), k, s, padding, output_size=out)


# ----------------------------------------------------------------------------- normalisation
def _channel(v, ndim):
    v = np.asarray(v)
    return v.reshape((1, -1) + (1,) * (ndim - 2)) if v.ndim == 1 else v.reshape((1,) + v.shape)


def BatchNormalization(X, scale, B, input_mean, input_var, *, epsilon=1e-5, momentum=0.9, training_mode=0,
                       spatial=1, is_test=None, consumed_inputs=None):
    """Inference: ``(X - mean) / sqrt(var + epsilon) * scale + B`` per channel (dim 1).

    With ``training_mode=1`` the batch's statistics are used and the updated running
    mean and variance (``running * momentum + batch * (1 - momentum)``) are returned too.
    """
    dt = X.dtype
    if training_mode:
        axes = (0,) + tuple(range(2, X.ndim))
        mean = X.mean(axis=axes)
        var = X.var(axis=axes)
        y = (X - _channel(mean, X.ndim)) / np.sqrt(_channel(var, X.ndim) + epsilon)
        y = y * _channel(scale, X.ndim) + _channel(B, X.ndim)
        rm = input_mean * momentum + mean * (1 - momentum)
        rv = input_var * momentum + var * (1 - momentum)
        return y.astype(dt, copy=False), rm.astype(input_mean.dtype), rv.astype(input_var.dtype)
    if np.asarray(scale).ndim == 1 and X.ndim >= 2:
        return F.batch_norm(X, input_mean, input_var, scale, B, training=False,
                            eps=float(epsilon)).astype(dt, copy=False)
    a = _channel(scale, X.ndim) / np.sqrt(_channel(input_var, X.ndim) + epsilon)  # spatial=0: per activation
    return (X * a + (_channel(B, X.ndim) - _channel(input_mean, X.ndim) * a)).astype(dt, copy=False)


def InstanceNormalization(input, scale, B, *, epsilon=1e-5):
    return F.instance_norm(input, weight=scale, bias=B, eps=float(epsilon)).astype(input.dtype, copy=False)


def LRN(X, *, alpha=1e-4, beta=0.75, bias=1.0, size=1):
    """Local response norm across channels: ``X / (bias + alpha / size * sum(X**2 over the window))**beta``,
    the window [c - floor((size-1)/2), c + ceil((size-1)/2)] (PyTorch centres even windows the other way)."""
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = np.square(X)
    pad = [(0, 0)] * X.ndim
    pad[1] = (lo, hi)
    sq = np.pad(sq, pad)
    C = X.shape[1]
    total = sq[:, 0:C].copy()
    for j in range(1, size):
        total += sq[:, j:j + C]
    total *= np.asarray(alpha / size, dtype=X.dtype)
    total += np.asarray(bias, dtype=X.dtype)
    return (X / np.power(total, np.asarray(beta, dtype=X.dtype))).astype(X.dtype, copy=False)


# ----------------------------------------------------------------------------- activations
def _f(x, v):
    return np.asarray(v, dtype=x.dtype) if x.dtype.kind == "f" else v


def Relu(X):
    return F.relu(X) if X.dtype.kind == "f" else np.maximum(X, 0).astype(X.dtype, copy=False)


def LeakyRelu(X, *, alpha=0.01):
    return np.where(X >= 0, X, X * _f(X, alpha)).astype(X.dtype, copy=False)


def PRelu(X, slope):
    return np.where(X < 0, X * slope, X).astype(X.dtype, copy=False)


def Elu(X, *, alpha=1.0):
    return np.where(X > 0, X, _f(X, alpha) * np.expm1(np.minimum(X, 0))).astype(X.dtype, copy=False)


def Selu(X, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    y = np.where(X > 0, X, _f(X, alpha) * np.expm1(np.minimum(X, 0)))
    return (y * _f(X, gamma)).astype(X.dtype, copy=False)


def Sigmoid(X):
    return F.sigmoid(X)


def HardSigmoid(X, *, alpha=0.2, beta=0.5):
    return np.clip(X * _f(X, alpha) + _f(X, beta), 0, 1).astype(X.dtype, copy=False)


def HardSwish(X):
    return F.hardswish(X).astype(X.dtype, copy=False)


def Tanh(input):
    return F.tanh(input)


def Softmax(input, *, axis=-1):
    return F.softmax(input, dim=int(axis)).astype(input.dtype, copy=False)


def LogSoftmax(input, *, axis=-1):
    return F.log_softmax(input, dim=int(axis)).astype(input.dtype, copy=False)


def Dropout(data, ratio=None, training_mode=None, *, seed=None, is_test=None, return_mask=False):
    """Identity at inference (ONNX's default); ``training_mode`` with a positive ratio is refused
    (random outputs cannot match any other runtime). ``return_mask`` adds the all-true mask."""
    r = 0.5 if ratio is None else float(np.asarray(ratio))
    if training_mode is not None and bool(np.asarray(training_mode)) and r > 0:
        raise ValueError(f"Dropout: training_mode must be false (random dropout is not supported); "
                         f"got training_mode=True, ratio={r!r}.")
    out = data.copy()
    return (out, np.ones(data.shape, dtype=bool)) if return_mask else out
