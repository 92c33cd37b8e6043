"""ONNX shape and data-movement operators: NumPy, with ONNX's clamping and index rules."""
from __future__ import annotations

import math

import numpy as np

from ._util import _s, check_output_size, ints

# TensorProto.DataType -> NumPy dtype, for the types NumPy has (bfloat16, float8 and 4-bit types it lacks).
DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
          8: np.object_, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def np_dtype(to, op="Cast"):
    if int(to) not in DTYPES:
        raise ValueError(f"{op}: to must be a tensor type NumPy has (float, double, float16, int*, uint*, bool, "
                         f"string); got to={int(to)!r}.")
    return np.dtype(DTYPES[int(to)])


def Concat(*inputs, axis):
    return np.concatenate(inputs, axis=int(axis))


def Split(input, split=None, *, axis=0, num_outputs=None):
    """Split along ``axis`` by the sizes ``split``, or into ``num_outputs`` parts (the last one smaller
    when the length does not divide, as opset 18 says). Returns a tuple."""
    d = input.shape[axis]
    sizes = ints(split)
    if not sizes:
        if not num_outputs:
            raise ValueError(f"Split: split or num_outputs must be given; got split={split!r}, "
                             f"num_outputs={num_outputs!r}.")
        c = -(-d // int(num_outputs))
        sizes = [c] * (int(num_outputs) - 1) + [d - c * (int(num_outputs) - 1)]
    if sum(sizes) != d:
        raise ValueError(f"Split: split must sum to the length of axis {axis} ({d}); got split={list(sizes)!r}.")
    return tuple(np.split(input, np.cumsum(sizes)[:-1], axis=axis))


def Slice(data, starts, ends, axes=None, steps=None):
    """``data[starts:ends:steps]`` along ``axes``, indices clamped as ONNX says (negative ones count from the end).

    >>> Slice(np.arange(10), [-3], [1 << 62])
    array([7, 8, 9])
    """
    starts, ends = ints(starts), ints(ends)
    n = len(starts)
    axes = ints(axes) or tuple(range(n))
    steps = ints(steps) or (1,) * n
    sl = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        a %= data.ndim
        dim = data.shape[a]
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            sl[a] = slice(min(max(s, 0), dim), min(max(e, 0), dim), st)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
            sl[a] = slice(s, None if e < 0 else e, st)
    return data[tuple(sl)]


def Reshape(data, shape, *, allowzero=0):
    shape = list(ints(shape))
    if not allowzero:
        shape = [data.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return data.reshape(shape)


def Flatten(input, *, axis=1):
    """Shape: (d0, ..., dn) -> (d0 * ... * d[axis-1], d[axis] * ... * dn)."""
    axis = axis % input.ndim if input.ndim and axis < 0 else axis
    return input.reshape(math.prod(input.shape[:axis]), math.prod(input.shape[axis:]))


def Transpose(data, *, perm=None):
    return np.transpose(data, None if perm is None else tuple(perm))


def Squeeze(data, axes=None):
    ax = ints(axes)
    if not ax:
        return np.squeeze(data)
    return np.squeeze(data, axis=tuple(a % data.ndim for a in ax))


def Unsqueeze(data, axes):
    ax = ints(axes)
    r = data.ndim + len(ax)
    return np.expand_dims(data, tuple(sorted(a % r for a in ax)))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def Pad(data, pads=None, constant_value=None, axes=None, *, mode="constant", value=None):
    """Pad (or, for negative pads, crop) each axis by ``pads`` = [begins..., ends...]."""
    mode = _s(mode)
    if mode not in _PAD_MODES:
        raise ValueError(f"Pad: mode must be one of {sorted(_PAD_MODES)}; got mode={mode!r}.")
    n = data.ndim
    p = ints(pads)
    ax = [a % n for a in ints(axes)] if axes is not None and len(np.asarray(axes)) else list(range(n))
    k = len(ax)
    width, crop = [(0, 0)] * n, [slice(None)] * n
    for i, a in enumerate(ax):
        b, e = p[i], p[i + k]
        width[a] = (max(b, 0), max(e, 0))
        crop[a] = slice(max(-b, 0), data.shape[a] - max(-e, 0))
    x = data[tuple(crop)]
    check_output_size("Pad", [d + lo + hi for d, (lo, hi) in zip(x.shape, width)], data.dtype)
    if mode == "constant":
        cv = value if constant_value is None else np.asarray(constant_value).reshape(-1)[0] \
            if np.asarray(constant_value).size else None
        return np.pad(x, width, constant_values=0 if cv is None else cv)
    return np.pad(x, width, mode=_PAD_MODES[mode])


def Identity(input):
    return input


def Constant(*, value=None, value_float=None, value_floats=None, value_int=None, value_ints=None,
             value_string=None, value_strings=None, sparse_value=None):
    if value is not None:
        return np.asarray(value)
    if value_float is not None:
        return np.array(value_float, dtype=np.float32)
    if value_floats is not None:
        return np.array(value_floats, dtype=np.float32)
    if value_int is not None:
        return np.array(value_int, dtype=np.int64)
    if value_ints is not None:
        return np.array(value_ints, dtype=np.int64)
    if value_string is not None:
        return np.array(_s(value_string), dtype=object)
    if value_strings is not None:
        return np.array([_s(v) for v in value_strings], dtype=object)
    raise ValueError("Constant: one value attribute (value, value_float(s), value_int(s), value_string(s)) "
                     "must be given; got none (sparse_value is not supported).")


def ConstantOfShape(input, *, value=None):
    v = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    shape = ints(input)
    check_output_size("ConstantOfShape", shape, v.dtype)
    return np.full(shape, v[0], dtype=v.dtype)


def Shape(data, *, start=0, end=None):
    return np.array(data.shape[start:end], dtype=np.int64)


def Gather(data, indices, *, axis=0):
    return np.take(data, np.asarray(indices, dtype=np.intp), axis=int(axis))


def Cast(input, *, to, saturate=1, round_mode=None):
    """Convert to the TensorProto type ``to`` (float32 = 1, int64 = 7, ...); strings parse as numbers."""
    dt = np_dtype(to)
    if dt == object:
        return np.array([_fmt(v) for v in input.reshape(-1)], dtype=object).reshape(input.shape)
    if input.dtype == object:
        return np.array([float(_s(v)) for v in input.reshape(-1)]).astype(dt).reshape(input.shape)
    return input.astype(dt)


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return str(np.float32(v)) if isinstance(v, np.float32) else repr(float(v))
    return str(v)
