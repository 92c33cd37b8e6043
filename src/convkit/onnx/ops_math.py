"""ONNX elementwise, matrix and reduction operators: NumPy with ONNX's dtype rules
(results keep the first input's dtype; integer Div truncates toward zero)."""
from __future__ import annotations

from functools import reduce

import numpy as np

from .. import functional as F
from ._util import ints


def Gemm(A, B, C=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=None):
    """``alpha * A' @ B' + beta * C``, A' and B' optionally transposed, C broadcast to the result.

    Shape: A' (M, K), B' (K, N) -> (M, N).
    """
    a = A.T if transA else A
    b = B.T if transB else B
    y = a @ b
    if alpha != 1.0:
        y = y * np.asarray(alpha, dtype=y.dtype)
    if C is not None and beta != 0.0:
        y = y + (C if beta == 1.0 else C * np.asarray(beta, dtype=C.dtype))
    return y.astype(A.dtype, copy=False)


def MatMul(A, B):
    return np.matmul(A, B).astype(A.dtype, copy=False)


def Add(A, B):
    return np.add(A, B).astype(A.dtype, copy=False)


def Sub(A, B):
    return np.subtract(A, B).astype(A.dtype, copy=False)


def Mul(A, B):
    return np.multiply(A, B).astype(A.dtype, copy=False)


def Div(A, B):
    if A.dtype.kind in "iu":
        if A.dtype.kind == "u":
            return (A // B).astype(A.dtype, copy=False)
        q = np.abs(A) // np.abs(B)  # C's truncation toward zero, not NumPy's floor
        return np.where((A < 0) != (B < 0), -q, q).astype(A.dtype, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(A, B).astype(A.dtype, copy=False)


def Pow(X, Y):
    if X.dtype.kind in "iu" and Y.dtype.kind in "iu":
        return np.power(X.astype(np.int64), Y.astype(np.int64)).astype(X.dtype)
    if X.dtype.kind in "iu":
        return np.power(X.astype(np.float64), Y).astype(X.dtype)
    return np.power(X, Y.astype(X.dtype, copy=False)).astype(X.dtype, copy=False)


def Sqrt(X):
    with np.errstate(invalid="ignore"):  # ONNX: NaN for negative inputs, as IEEE says
        return np.sqrt(X)


def Exp(input):
    with np.errstate(over="ignore"):
        return np.exp(input)


def Log(input):
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(x < 0) = NaN
        return np.log(input)


def Erf(input):
    if input.dtype.kind != "f":
        return F.erf(input.astype(np.float64)).astype(input.dtype)
    return F.erf(input)


def Sum(*data_0):
    return reduce(np.add, data_0).astype(data_0[0].dtype, copy=False)


def Mean(*data_0):
    return (reduce(np.add, data_0) / len(data_0)).astype(data_0[0].dtype, copy=False)


def Max(*data_0):
    return reduce(np.maximum, data_0)


def Min(*data_0):
    return reduce(np.minimum, data_0)


def Clip(input, min=None, max=None):
    """Clamp to [min, max]; a missing bound is no bound (opset < 11 passes them as attributes)."""
    y = input
    if min is not None:
        y = np.maximum(y, np.asarray(min, dtype=input.dtype))
    if max is not None:
        y = np.minimum(y, np.asarray(max, dtype=input.dtype))
    return y.astype(input.dtype, copy=True if y is input else False)


def _axes(data, axes, noop_with_empty_axes):
    axes = ints(axes)
    if not axes:
        return None if not noop_with_empty_axes else ()
    return tuple(a % data.ndim for a in axes) if data.ndim else None


def ReduceMean(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    ax = _axes(data, axes, noop_with_empty_axes)
    if ax == ():
        return data
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.mean(data, axis=ax, keepdims=bool(keepdims)).astype(data.dtype, copy=False)


def ReduceSum(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    ax = _axes(data, axes, noop_with_empty_axes)
    if ax == ():
        return data
    return np.sum(data, axis=ax, keepdims=bool(keepdims)).astype(data.dtype, copy=False)


def ReduceMax(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
    ax = _axes(data, axes, noop_with_empty_axes)
    if ax == ():
        return data
    if data.dtype == bool:
        lowest = False
    elif data.dtype.kind in "iu":
        lowest = np.iinfo(data.dtype).min
    else:
        lowest = -np.inf
    return np.max(data, axis=ax, keepdims=bool(keepdims), initial=lowest).astype(data.dtype, copy=False)
