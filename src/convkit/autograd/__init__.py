"""Autograd: :class:`Tensor`, its ops, and the binding of every F.* op.

>>> import convkit
>>> w = convkit.tensor([[1.0, -2.0]], requires_grad=True)
>>> x = convkit.tensor([[3.0], [4.0]])
>>> loss = (w @ x).relu().sum()
>>> loss.backward()
>>> w.grad
tensor([[0., 0.]])
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from . import ops
from .ops import (abs, add, amax, amin, argmax, argmin, cat, clip, concatenate, div, exp, flatten, log,  # noqa: A004
                  matmul, max, maximum, mean, min, minimum, mul, neg, permute, pow, reshape, sqrt, squeeze,
                  stack, std, sub, sum, transpose, unsqueeze, var, where)
from .tensor import (Tensor, as_tensor, enable_grad, is_grad_enabled, no_grad, result, set_grad_enabled,
                     tensor)

clamp = clip


def _reflected(fn):
    return lambda a, b: fn(ops.lift(b, a), a)


def _compare(np_op):
    def method(a, b):
        return Tensor(np_op(a.data, b.data if isinstance(b, Tensor) else b))
    return method


def _setitem(self, idx, value):
    if is_grad_enabled() and (self.requires_grad or getattr(value, "requires_grad", False)):
        raise RuntimeError("setitem: in-place assignment into a tensor in the graph is not supported; "
                           "assign under no_grad() or build a new tensor (e.g. with where).")
    self.data[ops._plain_index(idx)] = value.data if isinstance(value, Tensor) else value


def _through_f(name):
    def method(self, *args, **kwargs):
        return getattr(F, name)(self, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = f"``F.{name}(self, ...)``."
    return method


_METHODS = {
    "__add__": add, "__radd__": _reflected(add), "__sub__": sub, "__rsub__": _reflected(sub),
    "__mul__": mul, "__rmul__": _reflected(mul), "__truediv__": div, "__rtruediv__": _reflected(div),
    "__pow__": pow, "__rpow__": _reflected(pow), "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__neg__": neg, "__pos__": lambda a: a, "__abs__": abs, "__getitem__": ops.getitem, "__setitem__": _setitem,
    "__lt__": _compare(np.less), "__le__": _compare(np.less_equal), "__gt__": _compare(np.greater),
    "__ge__": _compare(np.greater_equal), "__eq__": _compare(np.equal), "__ne__": _compare(np.not_equal),
    "add": add, "sub": sub, "mul": mul, "div": div, "pow": pow, "matmul": matmul, "neg": neg,
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "clip": clip, "clamp": clip,
    "maximum": maximum, "minimum": minimum,
    "sum": sum, "mean": mean, "var": var, "std": std, "max": max, "min": min, "amax": amax, "amin": amin,
    "argmax": argmax, "argmin": argmin,
    "reshape": reshape, "view": reshape, "transpose": transpose, "permute": permute, "flatten": flatten,
    "squeeze": squeeze, "unsqueeze": unsqueeze, "astype": ops.astype,
    "float": lambda a: ops.astype(a, np.float32), "double": lambda a: ops.astype(a, np.float64),
    "long": lambda a: ops.astype(a, np.int64),
    "T": property(lambda a: permute(a, tuple(reversed(range(a.ndim))))),
}
for _name in ("relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "elu", "softplus",
              "softmax", "log_softmax", "dropout"):
    _METHODS[_name] = _through_f(_name)

for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)

__all__ = ["Tensor", "tensor", "as_tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "result", "add", "sub", "mul", "div", "pow", "matmul", "neg", "exp", "log", "sqrt", "abs", "clip",
           "clamp", "maximum", "minimum", "sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax",
           "argmin", "reshape", "transpose", "permute", "flatten", "squeeze", "unsqueeze", "cat", "concatenate",
           "stack", "where"]
