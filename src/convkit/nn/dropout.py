"""Dropout layers, as ``torch.nn``: active in training mode only, the identity in eval mode.

The masks come from ``convkit.default_generator()``, so ``convkit.manual_seed``
makes them repeatable (the numbers differ from PyTorch's). ``inplace=`` is
accepted and ignored: the result is always a new tensor.
"""
from __future__ import annotations

from .. import _checks as C
from .. import _random
from .. import functional as F
from ..autograd import as_tensor
from .module import Module


class _DropoutNd(Module):
    _f = "dropout"

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        op = type(self).__name__
        p = C.real_number(op, "p", p)
        if not 0 <= p <= 1:
            C.fail(op, "p", "a probability in [0, 1]", p)
        if not isinstance(inplace, bool):
            raise TypeError(f"{op}: inplace must be a bool; got inplace={inplace!r}.")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return getattr(F, self._f)(as_tensor(input), self.p, self.training, generator=_random.default_generator())

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability p in training and scale the rest by 1/(1-p).

    Shape: any, unchanged.

    >>> d = Dropout(0.5).eval()
    >>> d(np.ones(3)).data
    array([1., 1., 1.])
    """


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) with probability p (training only)."""
    _f = "dropout1d"


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) or (C, H, W) with probability p (training only).

    A 3-d input is unbatched (C, H, W) (PyTorch's announced behaviour; today it warns).
    """
    _f = "dropout2d"


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability p (training only)."""
    _f = "dropout3d"


__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]
