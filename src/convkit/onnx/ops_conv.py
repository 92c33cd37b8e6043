"""ONNX convolution operators mapped onto convkit.functional.

ONNX writes padding as [x1_begin, x2_begin, ..., x1_end, x2_end, ...];
convkit as one (lo, hi) pair per spatial dim. auto_pad SAME_UPPER/SAME_LOWER
are convkit's "same"/"same_lower"; VALID is "valid".
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional.conv import conv_fixed_weight
from ._util import _s, check_output_size, onnx_pads, padding_from


def Conv(X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None,
         _weights=None):
    """N-d convolution (cross-correlation) through ``F.conv``.

    Shape: X (N, C, *D), W (K, C / group, *k) -> (N, K, *O),
    O = floor((D + lo + hi - dilation * (k - 1) - 1) / stride) + 1.

    ``_weights`` (set by the session for a weight that is an initializer): a callable that gives a
    WeightCache for W, or None, keeping W's transforms between runs.
    """
    n = W.ndim - 2
    kw = dict(stride=tuple(strides or (1,) * n), padding=padding_from(auto_pad, pads, n),
              dilation=tuple(dilations or (1,) * n), groups=group)
    cache = _weights(W) if _weights is not None else None
    y = F.conv(X, W, B, **kw) if cache is None else conv_fixed_weight(cache, X, W, B, **kw)
    return y.astype(X.dtype, copy=False)


def ConvTranspose(X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                  output_padding=None, output_shape=None, pads=None, strides=None):
    """N-d transposed convolution through ``F.conv_transpose``; ``output_shape`` sets the padding.

    Shape: X (N, C, *D), W (C, K / group, *k) -> (N, K, *O),
    O = stride * (D - 1) + output_padding + dilation * (k - 1) + 1 - lo - hi.
    """
    n = W.ndim - 2
    strides = tuple(strides or (1,) * n)
    dilations = tuple(dilations or (1,) * n)
    output_padding = tuple(output_padding or (0,) * n)
    big = [X.shape[2 + i] * strides[i] + W.shape[2 + i] * dilations[i] + output_padding[i] for i in range(n)]
    check_output_size("ConvTranspose", [X.shape[0], W.shape[1] * group] + (list(output_shape[-n:]) if
                                                                           output_shape is not None else big),
                      X.dtype)
    auto = _s(auto_pad) or "NOTSET"
    kernel = W.shape[2:]
    if pads is None and (output_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER")):
        # ONNX derives the padding from the wanted output shape (default input * stride)
        out = output_shape if output_shape is not None else [X.shape[2 + i] * strides[i] for i in range(n)]
        pairs = []
        for i in range(n):
            total = (strides[i] * (X.shape[2 + i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
                     - int(out[i]))
            half = total // 2
            pairs.append((half, total - half) if auto == "SAME_UPPER" else (total - half, half))
        padding = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
        y = F.conv_transpose(X, W, B, stride=strides, padding=padding, groups=group, dilation=dilations,
                             output_size=tuple(int(o) for o in out))
        return y.astype(X.dtype, copy=False)
    padding = onnx_pads(pads, n)
    size = tuple(int(s) for s in output_shape[-n:]) if output_shape is not None else None
    y = F.conv_transpose(X, W, B, stride=strides, padding=padding,
                         output_padding=0 if size else output_padding, groups=group, dilation=dilations,
                         output_size=size)
    return y.astype(X.dtype, copy=False)


def Col2Im(input, image_shape, block_shape, *, dilations=None, pads=None, strides=None):
    """Sum columns back into an image (``F.fold``). Shape: (N, C * prod(block), L) -> (N, C, *image_shape)."""
    image_shape = tuple(int(s) for s in np.asarray(image_shape))
    block_shape = tuple(int(s) for s in np.asarray(block_shape))
    n = len(image_shape)
    return F.fold(input, image_shape, block_shape, dilation=tuple(dilations or (1,) * n),
                  padding=onnx_pads(pads, n), stride=tuple(strides or (1,) * n)).astype(input.dtype, copy=False)
