"""Batch transforms: vectorised over the leading (batch) axis, randomness from a given Generator.

A transform is any callable ``t(x, rng)``: ``x`` is a batch of shape (N, C, H, W)
(or (N, ...) for transforms that do not look at the spatial axes) and ``rng`` a
``numpy.random.Generator``. Deterministic transforms ignore ``rng``; random ones
draw every number from it, so the same Generator state gives the same batch.
:class:`~convkit.data.DataLoader` passes a Generator derived from its seed and the
epoch. Passing ``rng=None`` to a random transform uses a fresh unseeded Generator
(not reproducible). Wrap a one-argument function with :class:`Lambda`.

>>> import numpy as np
>>> t = Compose([ToFloat(16), Normalize(0.5, 0.25)])
>>> t(np.full((2, 1, 8, 8), 16, np.uint8), None)[0, 0, 0, 0]
np.float32(2.0)
"""
from __future__ import annotations

import numpy as np

from .._checks import fail, ntuple, real_number

__all__ = ["Compose", "ToFloat", "Normalize", "RandomCrop", "RandomHorizontalFlip", "Lambda"]


def _generator(rng):
    return np.random.default_rng() if rng is None else rng


def _need_ndim(op, x, ndim, what):
    if x.ndim != ndim:
        fail(op, "x.ndim", f"{ndim} for a batch {what}", x.ndim)


class Compose:
    """Apply transforms in order, each with the same Generator.

    >>> Compose([ToFloat()])(np.array([[255]], np.uint8), None)
    array([[1.]], dtype=float32)
    """

    def __init__(self, transforms):
        if callable(transforms) or not hasattr(transforms, "__iter__"):
            fail("Compose", "transforms", "a sequence of callables t(x, rng)", transforms, TypeError)
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                fail("Compose", f"transforms[{i}]", "a callable t(x, rng)", t, TypeError)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self):
        return f"Compose({self.transforms!r})"


class Lambda:
    """Wrap a deterministic one-argument function ``fn(x)`` as a transform."""

    def __init__(self, fn):
        if not callable(fn):
            fail("Lambda", "fn", "callable", fn, TypeError)
        self.fn = fn

    def __call__(self, x, rng=None):
        return self.fn(x)

    def __repr__(self):
        return f"Lambda({self.fn!r})"


class ToFloat:
    """Cast to float32 and divide by ``scale``: raw pixel values to [0, 1].

    Parameters
    ----------
    scale : float or None
        The raw value that becomes 1.0. ``None``: the largest value of an
        integer dtype (255 for uint8), 1 for float input. The 8x8 digits hold
        counts 0..16, so use ``ToFloat(16)`` for them.

    Shape: any; output has the input's shape, dtype float32.

    >>> ToFloat(16)(np.array([0, 8, 16], np.uint8), None)
    array([0. , 0.5, 1. ], dtype=float32)
    """

    def __init__(self, scale=None):
        self.scale = None if scale is None else real_number("ToFloat", "scale", scale, positive=True)

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        scale = self.scale
        if scale is None:
            if x.dtype.kind in "iu":
                scale = float(np.iinfo(x.dtype).max)
            elif x.dtype.kind == "b":
                scale = 1.0
            elif x.dtype.kind == "f":
                return x.astype(np.float32, copy=False)
            else:
                fail("ToFloat", "x.dtype", "a real (int, uint, bool or float) dtype", x.dtype, TypeError)
        out = x.astype(np.float32)
        out *= np.float32(1.0 / scale)
        return out

    def __repr__(self):
        return f"ToFloat(scale={self.scale!r})"


class Normalize:
    """Per-channel ``(x - mean) / std`` over axis 1, in float32.

    Parameters
    ----------
    mean, std : float or sequence of floats
        One value for all channels, or one per channel; ``std`` > 0.

    Shape: (N, C, ...) -> (N, C, ...).

    >>> Normalize([0.0, 1.0], [1.0, 2.0])(np.ones((1, 2, 1, 1)), None).ravel()
    array([1., 0.], dtype=float32)
    """

    def __init__(self, mean, std):
        self.mean = self._vector("mean", mean, positive=False)
        self.std = self._vector("std", std, positive=True)
        if self.mean.size > 1 and self.std.size > 1 and self.mean.size != self.std.size:
            raise ValueError(f"Normalize: mean and std must have the same length; "
                             f"got len(mean)={self.mean.size}, len(std)={self.std.size}.")

    @staticmethod
    def _vector(name, value, positive):
        values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        if not values or np.ndim(value) > 1:
            fail("Normalize", name, "a number or a non-empty flat sequence of numbers", value, TypeError)
        return np.array([real_number("Normalize", name, v, positive=positive) for v in values], np.float32)

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.ndim < 2:
            fail("Normalize", "x.ndim", ">= 2 for a batch (N, C, ...)", x.ndim)
        c = max(self.mean.size, self.std.size)
        if c > 1 and x.shape[1] != c:
            raise ValueError(f"Normalize: x.shape[1] must equal the {c} channels of mean/std; "
                             f"got x.shape={x.shape}.")
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        mean = self.mean.reshape(bshape)
        inv = (1.0 / self.std).astype(np.float32).reshape(bshape)
        return (x.astype(np.float32, copy=False) - mean) * inv

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Zero-pad each side by ``padding``, then crop a random ``size`` window per sample.

    Parameters
    ----------
    size : int or (int, int)
        Output height and width, >= 1.
    padding : int or (int, int)
        Zeros added on each side of height and width, >= 0.

    Shape: (N, C, H, W) -> (N, C, size_h, size_w), needing
    size_h <= H + 2 * pad_h and size_w <= W + 2 * pad_w.
    Each sample draws its top-left corner uniformly, offsets in
    [0, H + 2 * pad_h - size_h] and [0, W + 2 * pad_w - size_w].

    >>> RandomCrop(4, padding=2)(np.ones((3, 1, 4, 4)), np.random.default_rng(0)).shape
    (3, 1, 4, 4)
    """

    def __init__(self, size, padding=0):
        self.size = ntuple("RandomCrop", "size", size, 2, minimum=1)
        self.padding = ntuple("RandomCrop", "padding", padding, 2, minimum=0)

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        _need_ndim("RandomCrop", x, 4, "(N, C, H, W)")
        (h, w), (ph, pw) = self.size, self.padding
        n, c, hh, ww = x.shape
        hp, wp = hh + 2 * ph, ww + 2 * pw
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: size must fit in the padded input (H + 2*pad, W + 2*pad)={(hp, wp)}; "
                             f"got size={self.size}, x.shape={x.shape}, padding={self.padding}.")
        rng = _generator(rng)
        oy = rng.integers(0, hp - h + 1, size=n)
        ox = rng.integers(0, wp - w + 1, size=n)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
        windows = np.lib.stride_tricks.sliding_window_view(xp, (h, w), axis=(2, 3))  # (N, C, oh, ow, h, w)
        # advanced indices on axes 0, 2, 3 around the slice put the batch axis first: (N, C, h, w)
        return np.ascontiguousarray(windows[np.arange(n), :, oy, ox])

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each sample along its last (width) axis with probability ``p``.

    Shape: (N, ...) -> (N, ...). One uniform draw per sample.

    >>> RandomHorizontalFlip(1.0)(np.arange(3).reshape(1, 1, 1, 3), None).ravel()
    array([2, 1, 0])
    """

    def __init__(self, p=0.5):
        p = real_number("RandomHorizontalFlip", "p", p)
        if not 0.0 <= p <= 1.0:
            fail("RandomHorizontalFlip", "p", "in [0, 1]", p)
        self.p = p

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.ndim < 2:
            fail("RandomHorizontalFlip", "x.ndim", ">= 2 for a batch (N, ..., W)", x.ndim)
        flip = _generator(rng).random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p!r})"
