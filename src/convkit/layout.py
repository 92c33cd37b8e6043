"""Layout conversions between convkit (channels first, (O, I, *k) weights)
and TensorFlow/Keras (channels last, (*k, I, O) "HWIO" kernels).

>>> import numpy as np
>>> hwio_to_oihw(np.zeros((5, 5, 1, 32))).shape
(32, 1, 5, 5)
"""
from __future__ import annotations

import numpy as np

from . import _checks as C


def _arr(op, x, min_ndim):
    x = np.asarray(x)
    if x.ndim < min_ndim:
        C.fail(op, "input.ndim", f">= {min_ndim}", x.ndim)
    return x


def hwio_to_oihw(kernel):
    """TF/Keras kernel (*k, in, out) -> convkit/PyTorch weight (out, in, *k)."""
    k = _arr("hwio_to_oihw", kernel, 3)
    return np.ascontiguousarray(np.moveaxis(k, (-1, -2), (0, 1)))


def oihw_to_hwio(weight):
    """convkit/PyTorch weight (out, in, *k) -> TF/Keras kernel (*k, in, out)."""
    w = _arr("oihw_to_hwio", weight, 3)
    return np.ascontiguousarray(np.moveaxis(w, (0, 1), (-1, -2)))


def depthwise_hwcm_to_oihw(kernel):
    """TF depthwise kernel (*k, C, multiplier) -> weight (C*multiplier, 1, *k) for groups=C."""
    k = _arr("depthwise_hwcm_to_oihw", kernel, 3)
    c, m = k.shape[-2:]
    w = np.moveaxis(k, (-2, -1), (0, 1)).reshape((c * m, 1) + k.shape[:-2])
    return np.ascontiguousarray(w)


def to_channels_first(x):
    """(N, *spatial, C) -> (N, C, *spatial)."""
    return np.ascontiguousarray(np.moveaxis(_arr("to_channels_first", x, 3), -1, 1))


def to_channels_last(x):
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return np.ascontiguousarray(np.moveaxis(_arr("to_channels_last", x, 3), 1, -1))


__all__ = ["hwio_to_oihw", "oihw_to_hwio", "depthwise_hwcm_to_oihw", "to_channels_first", "to_channels_last"]
