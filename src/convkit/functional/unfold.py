"""unfold (im2col) and fold (col2im), N-d, with PyTorch's layouts.

An int kernel_size means 2 spatial dims, as in PyTorch; pass a tuple for 1-D
or 3-D. unfold: (N, C, *spatial) -> (N, C*prod(kernel), L), rows ordered channel
first then kernel offsets, L = prod(output positions). fold sums the
columns back, so fold(unfold(x)) counts each pixel once per window that
covers it.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _checks as C
from .. import shapes
from ._im2col import col2im_add, windows
from .padding import pad_nd


def _args(op, n, kernel_size, dilation, padding, stride):
    k = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    d = C.ntuple(op, "dilation", dilation, n, minimum=1)
    s = C.ntuple(op, "stride", stride, n, minimum=1)
    p = C.padding_arg(op, padding, n, allow_strings=False)
    return k, d, p, s


def _rank(op, kernel_size, default):
    return len(kernel_size) if isinstance(kernel_size, (tuple, list)) else default


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding windows as columns (im2col).

    Shape
    -----
    x (N, C, *S) -> (N, C*prod(F), L) with L = prod(out), out as in conv;
    unbatched (C, *S) -> (C*prod(F), L).

    >>> import numpy as np
    >>> unfold(np.arange(9.).reshape(1, 1, 3, 3), 2)[0]
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    return _unfold("unfold", x, kernel_size, dilation, padding, stride)


def _unfold_args(op, x, kernel_size, dilation, padding, stride):
    """unfold's input checked and batched, and its arguments: (x, unbatched, n, k, d, p, s, out)."""
    x = C.as_float_array(op, "input", x)
    n = _rank(op, kernel_size, 2)
    x, unbatched = C.batched(op, x, n)
    C.positive_shape(op, "input.shape", x.shape[1:])
    k, d, p, s = _args(op, n, kernel_size, dilation, padding, stride)
    return x, unbatched, n, k, d, p, s, shapes.conv_output_shape(x.shape[2:], k, s, p, d, op=op)


def _unfold(op, x, kernel_size, dilation, padding, stride):
    x, unbatched, n, k, d, p, s, out = _unfold_args(op, x, kernel_size, dilation, padding, stride)
    # one output, or one tap: stride or dilation change nothing; 1 keeps the view's byte strides in range
    s, d = shapes.bounded_steps(out, k, s, d, shapes.padded_shape(x.shape[2:], p))
    C.check_alloc(op, C.nbytes((x.shape[0], x.shape[1] * math.prod(k), math.prod(out)), x.dtype)
                  + C.nbytes(x.shape[:2] + shapes.padded_shape(x.shape[2:], p), x.dtype), "output and padded input")
    v = windows(pad_nd(x, p, "zeros"), k, s, d, out)
    cols = v.reshape(x.shape[0], x.shape[1] * math.prod(k), math.prod(out))
    if not cols.flags.writeable:  # the reshape kept the view (1x1 windows): hand back a copy
        cols = cols.copy()
    return cols[0] if unbatched else cols


def fold(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns back into an image (col2im), the adjoint of :func:`unfold`.

    Shape
    -----
    cols (N, C*prod(F), L) -> (N, C, *output_size); L must equal the number of
    window positions in output_size.
    """
    return _fold("fold", cols, output_size, kernel_size, dilation, padding, stride)


def _fold(op, cols, output_size, kernel_size, dilation, padding, stride):
    cols = C.as_float_array(op, "input", cols)
    if cols.ndim not in (2, 3):
        C.fail(op, "input.ndim", "2 or 3: (N, C*prod(kernel_size), L)", cols.ndim)
    unbatched = cols.ndim == 2
    cols = cols[None] if unbatched else cols
    size = tuple(output_size) if isinstance(output_size, (tuple, list)) else None
    n = len(size) if size else _rank(op, kernel_size, 2)
    size = C.ntuple(op, "output_size", output_size, n, minimum=1)
    k, d, p, s = _args(op, n, kernel_size, dilation, padding, stride)
    kk = math.prod(k)
    if cols.shape[1] % kk:
        C.fail(op, "input.shape[1]", f"divisible by prod(kernel_size) = {kk}", cols.shape[1])
    out = shapes.conv_output_shape(size, k, s, p, d, op=op)
    if cols.shape[2] != math.prod(out):
        C.fail(op, "input.shape[2]", f"the number of windows {math.prod(out)} = {'*'.join(map(str, out))}",
               cols.shape[2])
    nb, c = cols.shape[0], cols.shape[1] // kk
    padded = (nb, c) + shapes.padded_shape(size, p)
    C.check_alloc(op, 2 * C.nbytes(padded, cols.dtype), "output and padded output")
    img = np.zeros(padded, dtype=cols.dtype)
    # (N, C, *K, *O) -> the (C, *K, N, *O) layout col2im_add expects, as a view
    v = cols.reshape((nb, c) + k + out)
    v = v.transpose((1, *range(2, 2 + n), 0, *range(2 + n, 2 + 2 * n)))
    col2im_add(img, v, k, s, d, out)
    img = img[(slice(None), slice(None)) + tuple(slice(lo, lo + sz) for sz, (lo, _) in zip(size, p))]
    img = np.ascontiguousarray(img)
    return img[0] if unbatched else img


def unfold_vjp(grad_out, x, kernel_size, dilation=1, padding=0, stride=1):
    """Gradient of :func:`unfold` with respect to x: fold of grad_out."""
    op = "unfold_vjp"
    xb, unbatched, n, k, d, p, s, out = _unfold_args(op, x, kernel_size, dilation, padding, stride)
    g = C.as_float_array(op, "grad_out", grad_out)
    want = (xb.shape[0], xb.shape[1] * math.prod(k), math.prod(out))
    C.same_shape(op, "grad_out", g.shape, want[1:] if unbatched else want, "the output shape")
    return _fold(op, g, xb.shape[-n:], kernel_size, dilation, padding, stride)


def fold_vjp(grad_out, cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Gradient of :func:`fold` with respect to its columns: unfold of grad_out."""
    op = "fold_vjp"
    cols = C.as_float_array(op, "input", cols)
    g = C.as_float_array(op, "grad_out", grad_out)
    if cols.ndim not in (2, 3):
        C.fail(op, "input.ndim", "2 or 3: (N, C*prod(kernel_size), L)", cols.ndim)
    size = tuple(output_size) if isinstance(output_size, (tuple, list)) else None
    n = len(size) if size else _rank(op, kernel_size, 2)
    size = C.ntuple(op, "output_size", output_size, n, minimum=1)
    kk = math.prod(C.ntuple(op, "kernel_size", kernel_size, n, minimum=1))
    want = cols.shape[:-2] + (cols.shape[-2] // kk,) + size
    C.same_shape(op, "grad_out", g.shape, want, "the output shape")
    return _unfold(op, g, kernel_size, dilation, padding, stride)


__all__ = ["unfold", "fold", "unfold_vjp", "fold_vjp"]
