"""Transforms of a convolution weight, kept between calls when the weight does not change.

Every algorithm but the plainest rearranges the weight before its products: Winograd's U = G g G^T
(36 x K x C for F(4x4, 3x3)), implicit GEMM's tap-major copy, im2col's channels-last order. For a
512->512 3x3 weight that is 9.4 MB read and up to 38 MB written on every call (one such layer at
7x7, batch 8, alone: 8.2 ms per forward by im2col, 10.8 by Winograd, 6.0 with U made once). Training
changes the weight after every step, so only a caller that knows its weight is fixed (an ONNX
session's initializers, which it keeps read-only) hands a :class:`WeightCache` to the forward.
"""
from __future__ import annotations

import numpy as np


class WeightCache:
    """The transforms of one weight array, each made on first use and kept (read-only)."""

    __slots__ = ("weight", "_made")

    def __init__(self, weight):
        self.weight = weight
        self._made = {}

    def get(self, key, make):
        """The transform named ``key``, made by ``make()`` the first time."""
        value = self._made.get(key)
        if value is None:
            value = make()
            value.flags.writeable = False   # shared by every later call, and by threads
            self._made[key] = value
        return value

    def __len__(self):
        return len(self._made)


def derived(cache, key, make):
    """``make()``, or the copy ``cache`` keeps of it (``cache`` None: nothing is kept)."""
    return make() if cache is None else cache.get(key, make)


def rotated(w):
    """The kernel rotated 180 degrees with its channel axes swapped: (C, K, *kernel), contiguous (the
    weight of the forward convolution that is a stride-1 input gradient)."""
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)
    return np.ascontiguousarray(w[flip].swapaxes(0, 1))
