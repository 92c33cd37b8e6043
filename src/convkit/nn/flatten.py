"""Flatten, Unflatten and Identity, as ``torch.nn``."""
from __future__ import annotations

import math

from .. import _checks as C
from ..autograd import as_tensor
from .module import Module


def _axis(op, name, dim, ndim):
    if not -ndim <= dim < ndim:
        C.fail(op, name, f"in [{-ndim}, {ndim}) for input.ndim={ndim}", dim)
    return dim % ndim


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` (inclusive) into one.

    Shape
    -----
    (*, S_start, ..., S_end, *) -> (*, prod(S_start..S_end), *).

    >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = C.as_int("Flatten", "start_dim", start_dim)
        self.end_dim = C.as_int("Flatten", "end_dim", end_dim)

    def forward(self, input):
        x = as_tensor(input)
        n = max(x.ndim, 1)
        s = _axis("Flatten", "start_dim", self.start_dim, n)
        e = _axis("Flatten", "end_dim", self.end_dim, n)
        if s > e:
            raise ValueError(f"Flatten: start_dim must not come after end_dim; got start_dim={self.start_dim}, "
                             f"end_dim={self.end_dim} for input.ndim={x.ndim}.")
        if x.ndim == 0:
            return x.reshape(1)
        return x.reshape(x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (one entry may be -1).

    Shape
    -----
    (*, S_dim, *) -> (*, U_1, ..., U_k, *) with prod(U) = S_dim.

    >>> Unflatten(1, (2, 5))(np.zeros((3, 10))).shape
    (3, 2, 5)
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        op = "Unflatten"
        self.dim = C.as_int(op, "dim", dim)
        if not isinstance(unflattened_size, (list, tuple)) or not unflattened_size:
            raise TypeError(f"{op}: unflattened_size must be a non-empty tuple or list of ints; "
                            f"got unflattened_size={unflattened_size!r}.")
        sizes = tuple(C.as_int(op, "unflattened_size", s, minimum=-1) for s in unflattened_size)
        if sizes.count(-1) > 1:
            C.fail(op, "unflattened_size", "ints with at most one -1", unflattened_size)
        self.unflattened_size = unflattened_size

    def forward(self, input):
        x = as_tensor(input)
        d = _axis("Unflatten", "dim", self.dim, x.ndim)
        sizes = tuple(self.unflattened_size)
        known = math.prod(s for s in sizes if s != -1)
        n = x.shape[d]
        if (-1 in sizes and (known == 0 or n % known)) or (-1 not in sizes and known != n):
            raise ValueError(f"Unflatten: unflattened_size must multiply to input.shape[{self.dim}]={n}; "
                             f"got unflattened_size={self.unflattened_size!r}.")
        sizes = tuple(n // known if s == -1 else s for s in sizes)
        return x.reshape(x.shape[:d] + sizes + x.shape[d + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Identity(Module):
    """Return the input unchanged; any constructor arguments are accepted and ignored (as PyTorch).

    >>> Identity(54, unused="x")(3)
    3
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


__all__ = ["Flatten", "Unflatten", "Identity"]
