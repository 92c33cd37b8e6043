"""Fully connected layer as a function: ``y = x @ weight.T + bias``, beside its vjp.

The leading dims of x are flattened into one batch of rows, so every product
is a single matmul (BLAS), in the vjp as in the forward.
"""
from __future__ import annotations

import numpy as np

from .. import _checks as C


def _args(op, input, weight, bias):
    x = C.as_float_array(op, "input", input)
    w = C.as_float_array(op, "weight", weight)
    if w.ndim != 2:
        C.fail(op, "weight.ndim", "2: (out_features, in_features)", w.ndim)
    if x.ndim < 1:
        C.fail(op, "input.ndim", ">= 1: (*, in_features)", x.ndim)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"{op}: input.shape[-1] must equal weight.shape[1] (in_features); got input.shape="
                         f"{x.shape} and weight.shape={w.shape}.")
    if bias is not None:
        bias = C.as_float_array(op, "bias", bias)
        C.same_shape(op, "bias", bias.shape, w.shape[:1], "(out_features,) =")
    dtype = C.result_dtype(x, w, bias)
    C.check_alloc(op, C.nbytes(x.shape[:-1] + w.shape[:1], dtype))
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    return x, w, None if bias is None else bias.astype(dtype, copy=False)


def _rows(x):
    return int(np.prod(x.shape[:-1]))


def linear(input, weight, bias=None):
    """Affine map of the last dim: ``y = input @ weight.T + bias``.

    Parameters
    ----------
    input : array (*, in_features).
    weight : array (out_features, in_features).
    bias : array (out_features,) or None.

    Shape
    -----
    (*, in_features) -> (*, out_features).

    Examples
    --------
    >>> linear(np.array([[1., 2.]]), np.array([[1., 1.], [0., 3.]]), np.array([0., 1.]))
    array([[3., 7.]])
    """
    x, w, b = _args("linear", input, weight, bias)
    y = x.reshape(_rows(x), w.shape[1]) @ w.T
    if b is not None:
        y += b
    return y.reshape(x.shape[:-1] + w.shape[:1])


def linear_vjp(grad_out, input, weight, bias=None):
    """Gradients of :func:`linear`: (grad_input, grad_weight, grad_bias or None).

    With rows X (B, in) and G (B, out) the flattened input and grad_out:
    ``grad_input = G @ weight``, ``grad_weight = G.T @ X``, ``grad_bias = G.sum(0)``.
    """
    op = "linear_vjp"
    x, w, b = _args(op, input, weight, bias)
    g = C.as_float_array(op, "grad_out", grad_out)
    C.same_shape(op, "grad_out", g.shape, x.shape[:-1] + w.shape[:1], "the output shape")
    g2 = g.astype(x.dtype, copy=False).reshape(_rows(x), w.shape[0])
    x2 = x.reshape(_rows(x), w.shape[1])
    gx = (g2 @ w).reshape(x.shape)
    # one row: the outer product by broadcasting, the same single rounding of each g*x; OpenBLAS's product
    # with an inner dim of 1 is slow (1024 x 3136, float32: 3.66 ms against 0.52)
    gw = np.multiply(g2[0][:, None], x2[0][None, :]) if g2.shape[0] == 1 else g2.T @ x2
    gb = None if b is None else g2.sum(axis=0)
    return gx, gw, gb


__all__ = ["linear", "linear_vjp"]
