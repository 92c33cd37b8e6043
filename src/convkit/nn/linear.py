"""Linear (fully connected) layer, as ``torch.nn.Linear``."""
from __future__ import annotations

import math

import numpy as np

from .. import _checks as C
from .. import functional as F
from . import init
from .conv import _float_dtype
from .module import Module, Parameter


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last dim.

    Parameters
    ----------
    in_features, out_features : sizes of the last dim of the input and output.
    bias : learn an additive bias.
    dtype : parameter dtype (float32 by default).

    Attributes: ``weight`` (out_features, in_features), ``bias`` (out_features,),
    both U(-1/sqrt(in_features), 1/sqrt(in_features)) as in PyTorch.

    Shape
    -----
    (*, in_features) -> (*, out_features).

    >>> Linear(4, 3)(np.zeros((2, 4), np.float32)).shape
    (2, 3)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        op = "Linear"
        self.in_features = C.as_int(op, "in_features", in_features, minimum=0)
        self.out_features = C.as_int(op, "out_features", out_features, minimum=0)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{op}: bias must be a bool; got bias={bias!r}.")
        dt = _float_dtype(op, dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dt))
        if bias:
            self.bias = Parameter(np.empty((self.out_features,), dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight.data.size:
            init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


__all__ = ["Linear"]
