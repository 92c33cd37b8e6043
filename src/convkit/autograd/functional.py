"""Binding of convkit.functional's array ops (forward + vjp) into the graph.

When an F.* op receives a Tensor it lands in :func:`dispatch`: the forward
runs on the arrays, and the recorded backward calls the op's own vjp
(``F.<name>_vjp``, or the generic op's for rank aliases such as conv2d).
Nothing here computes a gradient itself.
"""
from __future__ import annotations

import functools
import inspect
import re

from .. import _random
from .. import functional as F
from ..functional.activation import _gelu_taped, _gelu_taped_vjp
from ..functional.conv import _conv_taped, _conv_taped_vjp
from ..functional.norm import _batch_norm, _batch_norm_taped_vjp
from ..functional.pool import _max_pool_route_vjp, _max_pool_taped
from .tensor import Tensor, is_grad_enabled, result

# Arguments that receive gradients, in the order the op's vjp returns them.
# Any op not listed differentiates its first argument only.
_DIFFERENTIABLE = {
    "conv": ("x", "weight", "bias"),
    "conv_transpose": ("x", "weight", "bias"),
    "linear": ("input", "weight", "bias"),
    "prelu": ("x", "weight"),
    "batch_norm": ("input", "weight", "bias"),
    "layer_norm": ("input", "weight", "bias"),
    "group_norm": ("input", "weight", "bias"),
    "instance_norm": ("input", "weight", "bias"),
    "mse_loss": ("input", "target"),
    "l1_loss": ("input", "target"),
}


def _base(name):
    """The generic op behind a rank alias: conv2d -> conv, max_pool3d -> max_pool."""
    return re.sub(r"[123]d$", "", name)


@functools.cache
def _signature(fn):
    return inspect.signature(fn)


@functools.cache
def _vjp(name):
    """(vjp function, its parameter names) for the op called ``name``, or (None, ())."""
    vjp = getattr(F, f"{name}_vjp", None) or getattr(F, f"{_base(name)}_vjp", None)
    return (vjp, frozenset(_signature(vjp).parameters)) if vjp is not None else (None, frozenset())


def _wrap(out):
    if isinstance(out, tuple):
        return tuple(_wrap(o) for o in out)
    return Tensor(out) if hasattr(out, "dtype") and not isinstance(out, Tensor) else out


def _arrays(params):
    return {k: (v.data if isinstance(v, Tensor) else v) for k, v in params.items()}


def dispatch(fn, args, kwargs):
    """Run ``fn`` (an unwrapped F.* op) on Tensor arguments; record its backward."""
    name = fn.__name__
    params = _signature(fn).bind(*args, **kwargs).arguments
    arrays = _arrays(params)
    base = _base(name)
    first = next(iter(_signature(fn).parameters))
    diff = _DIFFERENTIABLE.get(base, (first,))
    parents = tuple(params.get(k) if isinstance(params.get(k), Tensor) else None for k in diff)
    if base.startswith("dropout") and arrays.get("generator") is None:
        arrays["generator"] = _random.default_generator()  # so manual_seed makes Tensor dropout repeatable
    if not (is_grad_enabled() and any(p is not None and p.requires_grad for p in parents)):
        return _wrap(fn(**arrays))
    special = _SPECIAL.get(base)
    if special is not None:
        return special(fn, name, arrays, parents)
    vjp, accepts = _vjp(name)
    if vjp is None:
        raise NotImplementedError(f"{name}: has no gradient; call it on arrays or under no_grad().")
    out = fn(**arrays)
    primary = out[0] if isinstance(out, tuple) else out
    extra = {}
    if "out" in accepts:
        extra["out"] = primary
    if "output_mask" in accepts:
        extra["output_mask"] = tuple(p is not None and p.requires_grad for p in parents)
    vjp_args = {k: v for k, v in arrays.items() if k in accepts}

    def backward(g):
        grads = vjp(g, **vjp_args, **extra)
        return grads if isinstance(grads, tuple) else (grads,)

    y = result(primary, parents, backward, f"{name}_backward")
    return (y, *_wrap(out[1:])) if isinstance(out, tuple) else y


def _max_pool(fn, name, arrays, parents):
    """Keep what the forward found (the winners) for the backward, as PyTorch keeps its argmax indices."""
    y, idx, route = _max_pool_taped(name, **arrays)
    t = result(y, parents, lambda g: (_max_pool_route_vjp(g, route),), f"{name}_backward")
    return (t, Tensor(idx)) if arrays.get("return_indices") else t


def _dropout(fn, name, arrays, parents):
    y, mask = fn(**dict(arrays, return_mask=True))
    t = result(y, parents, lambda g: (F.dropout_vjp(g, mask),), f"{name}_backward")
    return (t, Tensor(mask)) if arrays.get("return_mask") else t


def _conv(fn, name, arrays, parents):
    """Keep the forward's im2col columns for the weight gradient; freed with the closure after backward."""
    mask = tuple(p is not None and p.requires_grad for p in parents)
    y, tape = _conv_taped(name, **arrays, need_w=mask[1])
    return result(y, parents, lambda g: _conv_taped_vjp(g, tape, mask), f"{name}_backward")


def _batch_norm_kept(fn, name, arrays, parents):
    """Keep the batch's statistics for the backward, as PyTorch keeps its saved mean and inverse std."""
    y, stats = _batch_norm(**arrays)
    return result(y, parents, lambda g: _batch_norm_taped_vjp(g, **arrays, stats=stats), f"{name}_backward")


def _gelu_kept(fn, name, arrays, parents):
    """Keep gelu's erfc (or tanh) term for the backward instead of making it again (one more array kept)."""
    y, core = _gelu_taped(**arrays)
    return result(y, parents, lambda g: (_gelu_taped_vjp(g, arrays["x"], core, arrays.get("approximate", "none")),),
                  f"{name}_backward")


_SPECIAL = {"max_pool": _max_pool, "dropout": _dropout, "conv": _conv, "batch_norm": _batch_norm_kept,
            "gelu": _gelu_kept}
