"""Argument normalisation and every error message, in one place.

Messages follow ``"{op}: {arg} must be {constraint}; got {arg}={value!r}."``
ValueError for bad values, TypeError for wrong types. Nothing here asserts.
"""
from __future__ import annotations

import numbers
import operator

import numpy as np

from ._config import check_alloc  # noqa: F401  (re-exported: ops call C.check_alloc before allocating)

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("valid", "same", "same_lower")


def fail(op, name, constraint, value, exc=ValueError):
    raise exc(f"{op}: {name} must be {constraint}; got {name}={_show(value)}.")


def _show(value):
    """A value as an error message shows it: arrays by shape and dtype, also inside tuples and lists."""
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    if type(value) is list:
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if type(value) is tuple:
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def as_float_array(op, name, x, *, keep_int=False):
    """Return ``x`` as an ndarray; ints and bools become float64 unless keep_int.

    float16/32/64 are kept. Complex, object, string arrays raise TypeError.
    """
    if hasattr(x, "__array_namespace__") or isinstance(x, np.ndarray):
        arr = np.asarray(x)
    elif isinstance(x, (list, tuple, numbers.Number)):
        arr = np.asarray(x)
    else:
        raise TypeError(
            f"{op}: {name} must be a NumPy array or array-like of real numbers; "
            f"got {name} of type {type(x).__name__}."
        )
    kind = arr.dtype.kind
    if kind in "fiub":
        if kind == "f" or keep_int:
            return arr
        check_alloc(op, arr.size * 8, f"{name} as float64")
        return arr.astype(np.float64)
    raise TypeError(
        f"{op}: {name} must have a real (float, int or bool) dtype; got {name}.dtype={arr.dtype}."
    )


def result_dtype(*arrays):
    return np.result_type(*[a.dtype for a in arrays if a is not None])


def as_int(op, name, value, *, minimum=None):
    if type(value) is not int:   # a plain int, the common case, skips the abstract-class checks (~40 per conv)
        if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
            try:
                value = operator.index(value)
            except TypeError:
                raise TypeError(f"{op}: {name} must be an int; got {name}={_show(value)}.") from None
        value = int(value)
    if minimum is not None and value < minimum:
        fail(op, name, f">= {minimum}", value)
    return value


def ntuple(op, name, value, n, *, minimum=None):
    """An int, or a sequence of n ints, as a tuple of n ints."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            fail(op, name, f"an int or a sequence of {n} ints", value)
        out = []
        for v in value:
            try:
                out.append(as_int(op, name, v, minimum=minimum))
            except (TypeError, ValueError):
                constraint = f"ints >= {minimum}" if minimum is not None else "ints"
                fail(op, name, constraint, value, TypeError if _not_int(v) else ValueError)
        return tuple(out)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return ntuple(op, name, value.tolist(), n, minimum=minimum)
    v = as_int(op, name, value, minimum=minimum)
    return (v,) * n


def _not_int(v):
    return isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer))


def padding_arg(op, padding, n, *, allow_strings=True, minimum=0):
    """Normalise padding to a string ("valid", "same", "same_lower") or n (lo, hi) pairs.

    Accepted: an int; n ints; n (lo, hi) pairs; 2n ints in ONNX order
    (all begins, then all ends) are NOT accepted here: the ONNX layer converts.
    """
    if isinstance(padding, str):
        p = padding.lower()
        if allow_strings and p in PADDING_STRINGS:
            return p
        allowed = "an int, a tuple of ints or (lo, hi) pairs"
        if allow_strings:
            allowed += ", 'valid', 'same' or 'same_lower'"
        fail(op, "padding", allowed, padding)
    if isinstance(padding, (list, tuple)) and padding and all(
        isinstance(p, (list, tuple)) for p in padding
    ):
        if len(padding) != n or any(len(p) != 2 for p in padding):
            fail(op, "padding", f"{n} (lo, hi) pairs", padding)
        pairs = []
        for p in padding:
            lo = as_int(op, "padding", p[0])
            hi = as_int(op, "padding", p[1])
            if minimum is not None and (lo < minimum or hi < minimum):
                fail(op, "padding", f">= {minimum} on every side", padding)
            pairs.append((lo, hi))
        return tuple(pairs)
    return tuple((p, p) for p in ntuple(op, "padding", padding, n, minimum=minimum))


def padding_mode(op, mode):
    if mode not in PADDING_MODES:
        fail(op, "padding_mode", "one of " + ", ".join(repr(m) for m in PADDING_MODES), mode)
    return mode


def data_format(op, fmt):
    if fmt not in ("channels_first", "channels_last"):
        fail(op, "data_format", "'channels_first' or 'channels_last'", fmt)
    return fmt


def batched(op, x, n_spatial, name="input", what="(N, C, *spatial) or (C, *spatial)"):
    """Return (x with a batch axis, whether it was unbatched)."""
    if x.ndim == n_spatial + 2:
        return x, False
    if x.ndim == n_spatial + 1:
        return x[None], True
    fail(op, f"{name}.ndim", f"{n_spatial + 1} or {n_spatial + 2} for {what}", x.ndim)


def spatial_rank(op, x, weight_ndim=None, name="input"):
    """Infer the number of spatial dims from the weight, or from x (batched assumed)."""
    if weight_ndim is not None:
        n = weight_ndim - 2
    else:
        n = x.ndim - 2
    if n < 1:
        fail(op, f"{name}.ndim", ">= 3 (N, C, *spatial)", x.ndim)
    return n


def positive_shape(op, name, shape):
    if any(s < 1 for s in shape):
        fail(op, name, "all >= 1 (no empty dimension)", tuple(shape))


# ---------------------------------------------------------------------------
# Appended for functional/pool.py: real scalars, optional tuples, shape and
# index-array checks. Generic; nothing above this line was changed.
# ---------------------------------------------------------------------------

def real_number(op, name, value, *, positive=False):
    """A finite real number as a float; with positive=True it must also be > 0."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a real number; got {name}={_show(value)}.")
    out = float(value)
    if not np.isfinite(out) or (positive and out <= 0):
        fail(op, name, "a finite number > 0" if positive else "a finite number", value)
    return out


def optional_ntuple(op, name, value, n, *, minimum=None):
    """Like ntuple, but None (alone or as an entry) means "keep that dim" and is kept as None."""
    if value is None:
        return (None,) * n
    if isinstance(value, (list, tuple)) and any(v is None for v in value):
        if len(value) != n:
            fail(op, name, f"an int or a sequence of {n} ints or None", value)
        return tuple(None if v is None else ntuple(op, name, v, 1, minimum=minimum)[0] for v in value)
    return ntuple(op, name, value, n, minimum=minimum)


def same_shape(op, name, shape, expected, what):
    """Raise ValueError, printing both full shapes, unless shape == expected."""
    if tuple(shape) != tuple(expected):
        raise ValueError(
            f"{op}: {name}.shape must equal {what} {tuple(expected)}; got {name}.shape={tuple(shape)}."
        )


def index_array(op, name, idx, shape, upper, what):
    """An integer array of the given shape whose entries all lie in [0, upper)."""
    arr = np.asarray(idx)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must have an integer dtype; got {name}.dtype={arr.dtype}.")
    same_shape(op, name, arr.shape, shape, "input.shape")
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ValueError(
            f"{op}: {name} must lie in [0, {upper}) ({what}); "
            f"got {name}.min()={arr.min()}, {name}.max()={arr.max()}."
        )
    return arr


def flag(op, name, value):
    """A real bool (NumPy's included), as a Python bool; TypeError otherwise (1 and "yes" are not flags)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool; got {name}={value!r}.")
    return bool(value)


def eps(op, value):
    """A normalisation epsilon: a finite real number >= 0."""
    value = real_number(op, "eps", value)
    if value < 0:
        fail(op, "eps", "a finite number >= 0", value)
    return value


def nbytes(shape, dtype):
    """Bytes of a C array of this shape and dtype (Python ints: no overflow for huge shapes)."""
    n = np.dtype(dtype).itemsize
    nonzero = n
    for s in shape:
        n *= int(s)
        nonzero *= max(int(s), 1)
    # NumPy cannot make even an empty array whose other dims multiply past its index range
    return nonzero if n == 0 and nonzero >= 2**63 else n
