"""Activation layers, thin over :mod:`convkit.functional`, with PyTorch's names and arguments.

``inplace=`` is accepted where PyTorch has it and ignored: convkit never
writes into its inputs (the result is a new tensor either way). Inputs may be
arrays or Tensors; the output is a Tensor.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import _checks as C
from .. import functional as F
from ..autograd import as_tensor
from .conv import _float_dtype
from .module import Module, Parameter


def _inplace(op, inplace):
    if not isinstance(inplace, (bool, np.bool_)):
        raise TypeError(f"{op}: inplace must be a bool; got inplace={inplace!r}.")
    return bool(inplace)


class _Elementwise(Module):
    """An activation with no arguments but ``inplace`` (accepted, ignored)."""

    _f = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = _inplace(type(self).__name__, inplace)

    def forward(self, input):
        return getattr(F, self._f)(as_tensor(input))

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_Elementwise):
    """``max(x, 0)``. Shape: any, unchanged.

    >>> ReLU()(np.array([-1., 2.]))
    tensor([0., 2.], dtype=float64)
    """
    _f = "relu"


class ReLU6(_Elementwise):
    """``min(max(x, 0), 6)``. Shape: any, unchanged."""
    _f = "relu6"


class SiLU(_Elementwise):
    """``x * sigmoid(x)`` (swish). Shape: any, unchanged."""
    _f = "silu"


class SELU(_Elementwise):
    """``scale * elu(x, alpha)`` with the self-normalising constants. Shape: any, unchanged."""
    _f = "selu"


class Hardswish(_Elementwise):
    """``x * relu6(x + 3) / 6``. Shape: any, unchanged."""
    _f = "hardswish"

    def extra_repr(self):
        return ""


class Hardsigmoid(_Elementwise):
    """``relu6(x + 3) / 6``. Shape: any, unchanged."""
    _f = "hardsigmoid"

    def extra_repr(self):
        return ""


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``. Shape: any, unchanged."""

    def forward(self, input):
        return F.sigmoid(as_tensor(input))


class Tanh(Module):
    """``tanh(x)``. Shape: any, unchanged."""

    def forward(self, input):
        return F.tanh(as_tensor(input))


class LeakyReLU(Module):
    """``x`` for x >= 0, ``negative_slope * x`` below. Shape: any, unchanged.

    >>> LeakyReLU(0.1)
    LeakyReLU(negative_slope=0.1)
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = C.real_number("LeakyReLU", "negative_slope", negative_slope)
        self.inplace = _inplace("LeakyReLU", inplace)

    def forward(self, input):
        return F.leaky_relu(as_tensor(input), self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` below. Shape: any, unchanged."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = C.real_number("ELU", "alpha", alpha)
        self.inplace = _inplace("ELU", inplace)

    def forward(self, input):
        return F.elu(as_tensor(input), self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """``x * Phi(x)`` (``approximate="tanh"``: the tanh formula). Shape: any, unchanged."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            C.fail("GELU", "approximate", "'none' or 'tanh'", approximate)
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(as_tensor(input), approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``. Shape: any, unchanged."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = C.real_number("Softplus", "beta", beta, positive=True)
        self.threshold = C.real_number("Softplus", "threshold", threshold)

    def forward(self, input):
        return F.softplus(as_tensor(input), self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """Leaky ReLU with a learned slope: one (``num_parameters=1``) or one per channel (dim 1).

    Attribute ``weight`` (num_parameters,), filled with ``init``.

    Shape
    -----
    (N, C, *) or any shape when num_parameters == 1; C must equal num_parameters otherwise.

    >>> PReLU()(np.array([-2., 2.])).data
    array([-0.5,  2. ])
    """

    def __init__(self, num_parameters=1, init=0.25, dtype=None):
        super().__init__()
        self.num_parameters = C.as_int("PReLU", "num_parameters", num_parameters, minimum=1)
        self.init = C.real_number("PReLU", "init", init)
        self.weight = Parameter(np.full((self.num_parameters,), self.init, _float_dtype("PReLU", dtype)))

    def reset_parameters(self):
        self.weight.data[...] = self.init

    def forward(self, input):
        return F.prelu(as_tensor(input), self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


def _legacy_softmax_dim(name, ndim):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated (as in PyTorch). "
                  "Change the call to include dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class _SoftmaxBase(Module):
    _f = None

    def __init__(self, dim=None):
        super().__init__()
        self.dim = None if dim is None else C.as_int(type(self).__name__, "dim", dim)

    def forward(self, input):
        x = as_tensor(input)
        dim = self.dim if self.dim is not None else _legacy_softmax_dim(self._f, x.ndim)
        return getattr(F, self._f)(x, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim``. dim=None uses PyTorch's legacy rule (0 for 0-, 1- and
    3-d inputs, else 1) with a warning: pass dim. Shape: any, unchanged.

    >>> Softmax(dim=-1)(np.zeros((1, 4))).data
    array([[0.25, 0.25, 0.25, 0.25]])
    """
    _f = "softmax"


class LogSoftmax(_SoftmaxBase):
    """``log(softmax(x, dim))``, computed stably; dim=None as :class:`Softmax`. Shape: any, unchanged."""
    _f = "log_softmax"


__all__ = ["ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "ELU", "SELU", "Softplus",
           "Hardswish", "Hardsigmoid", "PReLU", "Softmax", "LogSoftmax"]
