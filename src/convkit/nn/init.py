"""Parameter initialisation, as ``torch.nn.init``: fill a tensor in place and return it.

Every function takes a Parameter/Tensor (its ``.data`` is overwritten) or a
NumPy array (written in place), keeps its dtype, and draws from
``convkit.default_generator()`` unless a ``generator=`` (a
``numpy.random.Generator``) is given, so ``convkit.manual_seed`` makes models
repeatable. The streams differ from PyTorch's: same distributions, not the
same numbers.

>>> import convkit, convkit.nn as nn
>>> w = nn.Parameter(np.zeros((4, 3, 3, 3), np.float32))
>>> _ = nn.init.kaiming_uniform_(w, a=math.sqrt(5))
>>> bool(np.abs(w.data).max() <= 1 / math.sqrt(3 * 3 * 3)), w.dtype
(True, dtype('float32'))
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _checks as C
from .. import _random

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table).

    linear, conv*, sigmoid: 1; tanh: 5/3; relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + negative_slope**2)) (slope ``param``, default 0.01); selu: 3/4.

    >>> calculate_gain("relu") == math.sqrt(2)
    True
    """
    op = "calculate_gain"
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise TypeError(f"{op}: param must be a number (the negative slope) or None; got param={param!r}.")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    C.fail(op, "nonlinearity", "one of " + ", ".join(repr(n) for n in (*_LINEAR, "tanh", "relu", "leaky_relu",
                                                                       "selu")), nonlinearity)


def _array(op, tensor):
    arr = getattr(tensor, "data", tensor) if not isinstance(tensor, np.ndarray) else tensor
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{op}: tensor must be a Tensor, Parameter or NumPy array; "
                        f"got tensor of type {type(tensor).__name__}.")
    return arr


def _float_array(op, tensor):
    arr = _array(op, tensor)
    if arr.dtype.kind != "f":
        raise TypeError(f"{op}: tensor must have a floating-point dtype; got tensor.dtype={arr.dtype}.")
    return arr


def _rng(op, generator):
    if generator is None:
        return _random.default_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"{op}: generator must be a numpy.random.Generator or None; "
                        f"got generator of type {type(generator).__name__}.")
    return generator


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out): ``size(1) * receptive`` and ``size(0) * receptive``, receptive = prod(shape[2:]).

    For a conv weight (out, in/groups, *k) fan_in = in/groups * prod(k); for a
    Linear weight (out, in) it is ``in``. Needs at least 2 dims.
    """
    shape = _array("_calculate_fan_in_and_fan_out", tensor).shape
    if len(shape) < 2:
        C.fail("_calculate_fan_in_and_fan_out", "tensor.ndim", ">= 2 to compute fan in and fan out", len(shape))
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        C.fail("kaiming", "mode", "'fan_in' or 'fan_out'", mode)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode.lower() == "fan_in" else fan_out


def _fill(arr, values):
    arr[...] = values.astype(arr.dtype, copy=False) if isinstance(values, np.ndarray) else values


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b)."""
    arr = _float_array("uniform_", tensor)
    a, b = C.real_number("uniform_", "a", a), C.real_number("uniform_", "b", b)
    if a > b:
        C.fail("uniform_", "a", f"<= b={b}", a)
    _fill(arr, _rng("uniform_", generator).uniform(a, b, size=arr.shape))
    return tensor


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std**2)."""
    arr = _float_array("normal_", tensor)
    mean = C.real_number("normal_", "mean", mean)
    std = C.real_number("normal_", "std", std)
    if std < 0:
        C.fail("normal_", "std", ">= 0", std)
    _fill(arr, _rng("normal_", generator).normal(mean, std, size=arr.shape))
    return tensor


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std**2) truncated to [a, b] (absolute bounds, as PyTorch).

    Rejection sampling: values outside [a, b] are drawn again, so [a, b] must
    hold a fair share of the mass (at least 1e-4 of it).
    """
    op = "trunc_normal_"
    arr = _float_array(op, tensor)
    mean, std = C.real_number(op, "mean", mean), C.real_number(op, "std", std)
    a, b = C.real_number(op, "a", a), C.real_number(op, "b", b)
    if std <= 0:
        C.fail(op, "std", "> 0", std)
    if a >= b:
        C.fail(op, "a", f"< b={b}", a)
    mass = 0.5 * (math.erf((b - mean) / (std * math.sqrt(2))) - math.erf((a - mean) / (std * math.sqrt(2))))
    if mass < 1e-4:
        C.fail(op, "[a, b]", "an interval holding >= 1e-4 of the normal's mass", (a, b))
    rng = _rng(op, generator)
    out = rng.normal(mean, std, size=arr.shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = rng.normal(mean, std, size=int(bad.sum()))
        bad = (out < a) | (out > b)
    _fill(arr, out)
    return tensor


def constant_(tensor, val):
    """Fill with ``val``."""
    arr = _array("constant_", tensor)
    arr[...] = val
    return tensor


def ones_(tensor):
    """Fill with 1."""
    return constant_(tensor, 1)


def zeros_(tensor):
    """Fill with 0."""
    return constant_(tensor, 0)


def eye_(tensor):
    """The identity matrix (a 2-d tensor)."""
    arr = _array("eye_", tensor)
    if arr.ndim != 2:
        C.fail("eye_", "tensor.ndim", "2", arr.ndim)
    arr[...] = np.eye(*arr.shape, dtype=arr.dtype)
    return tensor


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = C.real_number("xavier_uniform_", "gain", gain) * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = C.real_number("xavier_normal_", "gain", gain) * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan = _calculate_correct_fan(tensor, mode)
    if fan == 0:
        C.fail("kaiming", "tensor.shape", "free of zero-sized dimensions (fan is 0)", _array("kaiming", tensor).shape)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(-bound, bound), ``bound = gain * sqrt(3 / fan)``, gain from ``calculate_gain(nonlinearity, a)``.

    With ``a=sqrt(5)`` (what Conv and Linear use) bound = 1/sqrt(fan_in).
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, std**2), ``std = gain / sqrt(fan)``."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]
