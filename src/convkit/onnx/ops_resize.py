"""ONNX Resize and Upsample: nearest, linear and cubic, separable (one axis at a time).

Each output coordinate y along an axis maps to a source coordinate x by the
coordinate_transformation_mode; nearest rounds x by nearest_mode, linear and
cubic weight the neighbours of x (edge-clamped), as ONNX's reference does.
"""
from __future__ import annotations

import math

import numpy as np

from ._util import _s, check_output_size, ints

_MODES = ("nearest", "linear", "cubic")
_COORD = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
          "tf_crop_and_resize", "tf_half_pixel_for_nn")


def _source(mode, y, scale, n_in, n_out, roi):
    """Source coordinate of each output index y, and which fall outside the crop (or None)."""
    out_f = scale * n_in
    if mode == "align_corners":
        return (np.zeros_like(y) if out_f == 1 else y * (n_in - 1) / (out_f - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "tf_half_pixel_for_nn":  # opset 11 only
        return (y + 0.5) / scale, None
    if mode == "tf_crop_and_resize":
        lo, hi = roi
        x = (np.full_like(y, (hi - lo) * (n_in - 1) / 2) if out_f == 1
             else y * (hi - lo) * (n_in - 1) / (out_f - 1)) + lo * (n_in - 1)
        return x, (x < 0) | (x > n_in - 1)
    if mode == "pytorch_half_pixel":
        return (np.full_like(y, -0.5) if out_f == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    offset = n_in / 2 * (1 - n_out / out_f)  # half_pixel_symmetric
    return offset + (y + 0.5) / scale - 0.5, None


def _nearest_index(x, nearest_mode):
    if nearest_mode == "round_prefer_floor":
        return np.ceil(x - 0.5)
    if nearest_mode == "round_prefer_ceil":
        return np.floor(x + 0.5)
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    raise ValueError(f"Resize: nearest_mode must be round_prefer_floor, round_prefer_ceil, floor or ceil; "
                     f"got nearest_mode={nearest_mode!r}.")


def _weights(mode, ratio, scale, antialias, a):
    """(n_out, taps) interpolation weights for the fractional positions ``ratio`` in (0, 1]."""
    r = ratio[:, None]
    if mode == "linear" and not antialias:
        return np.concatenate([1 - r, r], axis=1)
    s = min(scale, 1.0) if antialias else 1.0
    if mode == "linear":
        start = int(np.floor(-1 / s) + 1)
        t = (np.arange(start, 2 - start) - r) * s
        w = np.clip(1 - np.abs(t), 0, 1)
    else:
        start = int(np.floor(-2 / s) + 1) if antialias else -1
        t = np.abs((np.arange(start, 2 - start) - r) * s)
        w = np.where(t <= 1, (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1,
                     np.where(t < 2, a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a, 0.0))
    return w / w.sum(axis=1, keepdims=True) if antialias else w


def _resize_axis(x, axis, scale, n_out, roi, mode, coord, nearest_mode, a, exclude_outside, extrapolation, antialias):
    n_in = x.shape[axis]
    y = np.arange(n_out, dtype=np.float64)
    src, outside = _source(coord, y, scale, n_in, n_out, roi)
    if mode == "nearest":
        idx = np.clip(_nearest_index(src, nearest_mode), 0, n_in - 1).astype(np.intp)
        res = np.take(x, idx, axis=axis)
    else:
        fl = np.floor(src)
        exact = src == fl
        ratio = np.where(exact, 1.0, src - fl)
        w = _weights(mode, ratio, scale, antialias, a)
        taps = w.shape[1]
        start = fl.astype(np.int64) - taps // 2 + np.where(exact, 0, 1)
        nb = start[:, None] + np.arange(taps)
        if exclude_outside:
            w = np.where((nb < 0) | (nb >= n_in), 0.0, w)
            tot = w.sum(axis=1, keepdims=True)
            w = w / np.where(tot == 0, 1.0, tot)
        nb = np.clip(nb, 0, n_in - 1)
        # one dense (n_out, n_in) matrix: repeated clamped indices add up
        m = np.zeros((n_out, n_in))
        np.add.at(m, (np.repeat(np.arange(n_out), taps), nb.reshape(-1)), w.reshape(-1))
        res = np.moveaxis(np.tensordot(m, np.moveaxis(x, axis, 0), axes=(1, 0)), 0, axis)
    if outside is not None and outside.any():
        shape = [1] * x.ndim
        shape[axis] = n_out
        res = np.where(outside.reshape(shape), extrapolation, res)
    return res


def Resize(X, roi=None, scales=None, sizes=None, *, antialias=0, axes=None,
           coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75, exclude_outside=0,
           extrapolation_value=0.0, keep_aspect_ratio_policy="stretch", mode="nearest",
           nearest_mode="round_prefer_floor"):
    """Resize to ``sizes`` or by ``scales`` (one per axis in ``axes``, default all axes).

    Shape: out[i] = sizes[i], or floor(in[i] * scales[i]).
    """
    mode, coord = _s(mode), _s(coordinate_transformation_mode)
    policy, nearest_mode = _s(keep_aspect_ratio_policy), _s(nearest_mode)
    if mode not in _MODES:
        raise ValueError(f"Resize: mode must be one of {_MODES}; got mode={mode!r}.")
    if coord not in _COORD:
        raise ValueError(f"Resize: coordinate_transformation_mode must be one of {_COORD}; got {coord!r}.")
    r = X.ndim
    ax = [a % r for a in axes] if axes is not None else list(range(r))
    scales = None if scales is None or np.asarray(scales).size == 0 else np.asarray(scales, np.float64).ravel()
    sizes = None if sizes is None or np.asarray(sizes).size == 0 else ints(sizes)
    roi = None if roi is None or np.asarray(roi).size == 0 else np.asarray(roi, np.float64).ravel()
    full_roi = [0.0] * r + [1.0] * r
    if roi is not None:
        for i, d in enumerate(ax):
            full_roi[d], full_roi[r + d] = roi[i], roi[len(ax) + i]
    scale = [1.0] * r
    out = list(X.shape)
    if sizes is not None:
        for i, d in enumerate(ax):
            out[d] = sizes[i]
            scale[d] = sizes[i] / X.shape[d]
        if policy in ("not_larger", "not_smaller"):
            s = (min if policy == "not_larger" else max)(scale[d] for d in ax)
            for d in ax:
                scale[d] = s
                out[d] = int(s * X.shape[d] + 0.5)
        elif policy != "stretch":
            raise ValueError(f"Resize: keep_aspect_ratio_policy must be stretch, not_larger or not_smaller; "
                             f"got {policy!r}.")
    elif scales is not None:
        for i, d in enumerate(ax):
            scale[d] = float(scales[i])
            out[d] = int(math.floor(scales[i] * X.shape[d]))
    else:
        raise ValueError("Resize: scales or sizes must be given; got neither.")
    check_output_size("Resize", out, X.dtype if mode == "nearest" else np.float64)
    y = X if mode == "nearest" else X.astype(np.float64)
    for d in ax:
        lo, hi = full_roi[d], full_roi[r + d]
        if math.isclose(scale[d], 1.0) and out[d] == y.shape[d] and (coord != "tf_crop_and_resize"
                                                                    or (lo == 0 and hi == 1)):
            continue
        y = _resize_axis(y, d, scale[d], out[d], (lo, hi), mode, coord, nearest_mode, float(cubic_coeff_a),
                         bool(exclude_outside), float(extrapolation_value), bool(antialias))
    if X.dtype.kind in "iu":
        info = np.iinfo(X.dtype)
        y = np.clip(np.rint(y), info.min, info.max)
    return np.asarray(y).astype(X.dtype, copy=False)


def Upsample(X, scales=None, *, mode="nearest", height_scale=None, width_scale=None):
    """The opset 7-9 Resize: asymmetric coordinates, nearest rounds down."""
    mode = _s(mode)
    if mode == "bilinear":
        mode = "linear"
    return Resize(X, None, scales, mode=mode, coordinate_transformation_mode="asymmetric", nearest_mode="floor")
