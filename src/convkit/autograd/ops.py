"""Tensor ops: each builds its output and defines its backward right beside it.

Broadcast operands get their gradient summed back to their own shape
(:func:`unbroadcast`). Every backward returns fresh arrays or read-only
views and never writes into the incoming gradient.
"""
from __future__ import annotations

import builtins
import functools
from collections import namedtuple

import numpy as np

from .tensor import Tensor, result

# ------------------------------------------------------------------ helpers


def unbroadcast(g, shape):
    """Sum g over the axes NumPy broadcast to reach it from ``shape``."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def lift(x, like=None):
    """x as a Tensor; a Python number takes the dtype of ``like`` (no upcast), as in PyTorch."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool)) and not isinstance(x, np.generic):
        kind = like.dtype.kind
        if kind in "fc":
            return Tensor(np.asarray(x, dtype=like.dtype))
        if isinstance(x, float):
            return Tensor(np.asarray(x, dtype=np.float32))
        return Tensor(np.asarray(x, dtype=like.dtype if kind in "iu" else None))
    return Tensor(x)


def _axes(dim, ndim, op):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < builtins.max(ndim, 1):
            raise IndexError(f"{op}: dim must be in [{-ndim}, {ndim}); got dim={dim!r}.")
        out.append(d % builtins.max(ndim, 1))
    return tuple(out)


def _expand_to(g, shape, axes, keepdim):
    """g reduced over ``axes`` broadcast back to ``shape``."""
    if not keepdim:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def _dim_arg(dim, axis):
    return axis if dim is None else dim


# ------------------------------------------------------------------ arithmetic


def add(a, b):
    a, b = lift(a, b if isinstance(b, Tensor) else None), lift(b, a)
    return result(a.data + b.data, (a, b),
                  lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)), "AddBackward")


def sub(a, b):
    a, b = lift(a, b if isinstance(b, Tensor) else None), lift(b, a)
    return result(a.data - b.data, (a, b),
                  lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)), "SubBackward")


def mul(a, b):
    a, b = lift(a, b if isinstance(b, Tensor) else None), lift(b, a)

    def backward(g):
        return (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
    return result(a.data * b.data, (a, b), backward, "MulBackward")


def div(a, b):
    a, b = lift(a, b if isinstance(b, Tensor) else None), lift(b, a)
    out = np.true_divide(a.data, b.data)
    if out.dtype == np.float64 and a.data.dtype.kind in "iub" and b.data.dtype.kind in "iub":
        out = out.astype(np.float32)

    def backward(g):
        return (unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None)
    return result(out, (a, b), backward, "DivBackward")


def pow(a, b):  # noqa: A001 - the operator's name
    a, b = lift(a, b if isinstance(b, Tensor) else None), lift(b, a)
    out = np.power(a.data, b.data)

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g * b.data * np.power(a.data, b.data - 1), a.shape)
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(g * out * np.log(a.data), b.shape)
        return ga, gb
    return result(out, (a, b), backward, "PowBackward")


def matmul(a, b):
    """Matrix product with NumPy's rules (1-D operands, batch broadcasting)."""
    a, b = lift(a), lift(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands must have at least one dim; got shapes {a.shape} and {b.shape}.")
    out = np.matmul(a.data, b.data)

    def backward(g):
        a2 = a.data[None] if a.ndim == 1 else a.data
        b2 = b.data[:, None] if b.ndim == 1 else b.data
        g2 = g[..., None] if b.ndim == 1 else g
        g2 = g2[..., None, :] if a.ndim == 1 else g2
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if b.requires_grad:
            gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return ga, gb
    return result(out, (a, b), backward, "MatmulBackward")


def neg(a):
    return result(-a.data, (a,), lambda g: (-g,), "NegBackward")


def exp(a):
    out = np.exp(a.data)
    return result(out, (a,), lambda g: (g * out,), "ExpBackward")


def log(a):
    return result(np.log(a.data), (a,), lambda g: (g / a.data,), "LogBackward")


def sqrt(a):
    out = np.sqrt(a.data)
    return result(out, (a,), lambda g: (g / (2 * out),), "SqrtBackward")


def abs(a):  # noqa: A001
    return result(np.abs(a.data), (a,), lambda g: (g * np.sign(a.data),), "AbsBackward")


def clip(a, min=None, max=None):  # noqa: A002 - PyTorch's argument names
    """Clamp to [min, max]; the gradient passes where min <= x <= max, as in PyTorch."""
    if min is None and max is None:
        raise ValueError("clip: min and max must not both be None; got min=None, max=None.")
    out = np.clip(a.data, min, max)

    def backward(g):
        keep = np.ones(a.shape, bool)
        if min is not None:
            keep &= a.data >= min
        if max is not None:
            keep &= a.data <= max
        return (g * keep,)
    return result(out, (a,), backward, "ClampBackward")


def _minmax(a, b, pick, name):
    a, b = lift(a, b if isinstance(b, Tensor) else None), lift(b, a)
    out = pick(a.data, b.data)

    def backward(g):
        wa = np.where(a.data == b.data, 0.5, (out == a.data).astype(g.dtype))
        return (unbroadcast(g * wa, a.shape) if a.requires_grad else None,
                unbroadcast(g * (1 - wa), b.shape) if b.requires_grad else None)
    return result(out, (a, b), backward, name)


def maximum(a, b):
    """Elementwise max; on ties the gradient is split equally (as PyTorch)."""
    return _minmax(a, b, np.maximum, "MaximumBackward")


def minimum(a, b):
    """Elementwise min; on ties the gradient is split equally (as PyTorch)."""
    return _minmax(a, b, np.minimum, "MinimumBackward")


# ------------------------------------------------------------------ reductions


def sum(a, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    dim, keepdim = _dim_arg(dim, axis), keepdim if keepdims is None else keepdims
    axes = _axes(dim, a.ndim, "sum")
    out = np.sum(a.data, axis=axes, keepdims=keepdim)
    return result(np.asarray(out), (a,), lambda g: (_expand_to(g, a.shape, axes, keepdim),), "SumBackward")


def mean(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = _dim_arg(dim, axis), keepdim if keepdims is None else keepdims
    axes = _axes(dim, a.ndim, "mean")
    count = int(np.prod([a.shape[i] for i in axes])) if a.ndim else 1
    out = np.mean(a.data, axis=axes, keepdims=keepdim)
    return result(np.asarray(out), (a,), lambda g: (_expand_to(g / count, a.shape, axes, keepdim),), "MeanBackward")


def var(a, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """Variance with Bessel's correction by default (``correction=1``), as torch.var."""
    dim, keepdim = _dim_arg(dim, axis), keepdim if keepdims is None else keepdims
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _axes(dim, a.ndim, "var")
    count = int(np.prod([a.shape[i] for i in axes])) if a.ndim else 1
    mu = np.mean(a.data, axis=axes, keepdims=True)
    dev = a.data - mu
    denom = builtins.max(count - correction, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sum(dev * dev, axis=axes, keepdims=keepdim) / denom

    def backward(g):
        return (_expand_to(g, a.shape, axes, keepdim) * (2.0 / denom) * dev,)
    return result(np.asarray(out, a.dtype), (a,), backward, "VarBackward")


def std(a, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    return sqrt(var(a, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims))


MaxResult = namedtuple("MaxResult", "values indices")


def _extreme(a, dim, keepdim, axis, keepdims, arg, red, name):
    dim, keepdim = _dim_arg(dim, axis), keepdim if keepdims is None else keepdims
    if a.data.size == 0:
        raise ValueError(f"{name.lower()}: the tensor must not be empty; got shape={a.shape}.")
    if isinstance(dim, (int, np.integer)) and a.ndim:
        (ax,) = _axes(dim, a.ndim, name.lower())
        idx = np.expand_dims(arg(a.data, axis=ax), ax)
        vals = np.take_along_axis(a.data, idx, ax)

        def backward(g):
            ga = np.zeros(a.shape, g.dtype)
            np.put_along_axis(ga, idx, g if keepdim else np.expand_dims(g, ax), ax)
            return (ga,)
        out = result(vals if keepdim else vals.squeeze(ax), (a,), backward, name + "Backward")
        return MaxResult(out, Tensor(idx if keepdim else idx.squeeze(ax)))
    axes = _axes(dim, a.ndim, name.lower())
    vals = red(a.data, axis=axes, keepdims=True)

    def backward(g):
        hit = a.data == vals
        share = hit / hit.sum(axis=axes, keepdims=True)
        return (_expand_to(g, a.shape, axes, keepdim) * share,)
    return result(np.asarray(vals if keepdim else np.squeeze(vals, axis=axes)), (a,), backward, name + "Backward")


def max(a, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """Max over all elements, or (values, indices) over one int ``dim`` as torch.max;
    a tuple of dims gives values only (torch.amax). Ties share the gradient equally
    in a full reduction; along one dim the gradient goes to the returned index."""
    return _extreme(a, dim, keepdim, axis, keepdims, np.argmax, np.max, "Max")


def min(a, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    return _extreme(a, dim, keepdim, axis, keepdims, np.argmin, np.min, "Min")


def amax(a, dim=None, keepdim=False):
    return _extreme(a, tuple(_axes(dim, a.ndim, "amax")), keepdim, None, None, None, np.max, "Amax")


def amin(a, dim=None, keepdim=False):
    return _extreme(a, tuple(_axes(dim, a.ndim, "amin")), keepdim, None, None, None, np.min, "Amin")


def argmax(a, dim=None, keepdim=False):
    return Tensor(np.argmax(a.data, axis=dim, keepdims=keepdim))


def argmin(a, dim=None, keepdim=False):
    return Tensor(np.argmin(a.data, axis=dim, keepdims=keepdim))


# ------------------------------------------------------------------ shape ops


def reshape(a, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: shape must keep the element count {a.data.size}; got shape={tuple(shape)!r} "
                         f"for a tensor of shape {a.shape}.") from None
    return result(out, (a,), lambda g: (g.reshape(a.shape),), "ReshapeBackward")


def transpose(a, dim0=-2, dim1=-1):
    d0, d1 = _axes((dim0, dim1), a.ndim, "transpose")
    return result(np.swapaxes(a.data, d0, d1), (a,), lambda g: (np.swapaxes(g, d0, d1),), "TransposeBackward")


def permute(a, *dims):
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    if sorted(_axes(dims, a.ndim, "permute")) != list(range(a.ndim)):
        raise ValueError(f"permute: dims must be a permutation of 0..{a.ndim - 1}; got dims={tuple(dims)!r}.")
    dims = _axes(dims, a.ndim, "permute")
    inv = np.argsort(dims)
    return result(np.transpose(a.data, dims), (a,), lambda g: (np.transpose(g, inv),), "PermuteBackward")


def flatten(a, start_dim=0, end_dim=-1):
    if a.ndim == 0:
        return reshape(a, 1)
    s, e = _axes((start_dim, end_dim), a.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim must not come after end_dim; got start_dim={start_dim}, "
                         f"end_dim={end_dim}.")
    return reshape(a, a.shape[:s] + (-1,) + a.shape[e + 1:])


def squeeze(a, dim=None):
    if dim is None:
        axes = tuple(i for i, s in enumerate(a.shape) if s == 1)
    else:
        axes = tuple(i for i in _axes(dim, a.ndim, "squeeze") if a.shape[i] == 1)
    return reshape(a, tuple(s for i, s in enumerate(a.shape) if i not in axes))


def unsqueeze(a, dim):
    (d,) = _axes(dim, a.ndim + 1, "unsqueeze")
    return reshape(a, a.shape[:d] + (1,) + a.shape[d:])


def _plain_index(idx):
    if isinstance(idx, Tensor):
        return idx.data
    if isinstance(idx, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in idx)
    return idx


def _is_basic(idx):
    parts = idx if isinstance(idx, tuple) else (idx,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts)


def getitem(a, idx):
    """Indexing and slicing with NumPy's rules; repeated advanced indices add their gradients."""
    idx = _plain_index(idx)
    out = a.data[idx]

    def backward(g):
        ga = np.zeros(a.shape, g.dtype)
        if _is_basic(idx):
            ga[idx] = g
        else:
            np.add.at(ga, idx, g)
        return (ga,)
    return result(np.asarray(out), (a,), backward, "IndexBackward")


def cat(tensors, dim=0):
    """Concatenate along ``dim`` (torch.cat; also ``concatenate``)."""
    ts = [lift(t) for t in tensors]
    if not ts:
        raise ValueError("cat: tensors must be a non-empty sequence; got tensors=[].")
    (d,) = _axes(dim, ts[0].ndim, "cat")
    try:
        out = np.concatenate([t.data for t in ts], axis=d)
    except ValueError:
        raise ValueError(f"cat: tensors must match in every dim but {d}; got shapes "
                         f"{[t.shape for t in ts]}.") from None
    cuts = np.cumsum([t.shape[d] for t in ts])[:-1]
    return result(out, tuple(ts), lambda g: tuple(np.split(g, cuts, axis=d)), "CatBackward")


concatenate = cat


def stack(tensors, dim=0):
    ts = [lift(t) for t in tensors]
    if not ts:
        raise ValueError("stack: tensors must be a non-empty sequence; got tensors=[].")
    if len({t.shape for t in ts}) != 1:
        raise ValueError(f"stack: tensors must all have one shape; got shapes {[t.shape for t in ts]}.")
    (d,) = _axes(dim, ts[0].ndim + 1, "stack")
    out = np.stack([t.data for t in ts], axis=d)
    return result(out, tuple(ts), lambda g: tuple(np.moveaxis(g, d, 0)), "StackBackward")


def where(condition, a, b):
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    a, b = lift(a, b if isinstance(b, Tensor) else None), lift(b, a)

    def backward(g):
        return (unbroadcast(np.where(cond, g, 0), a.shape) if a.requires_grad else None,
                unbroadcast(np.where(cond, 0, g), b.shape) if b.requires_grad else None)
    return result(np.where(cond, a.data, b.data), (a, b), backward, "WhereBackward")


def astype(a, dtype):
    """A cast; the gradient is cast back to the source dtype."""
    dtype = np.dtype(dtype)
    if dtype == a.dtype:
        return a
    src = a.dtype
    return result(a.data.astype(dtype), (a,), lambda g: (g.astype(src),), "CastBackward")


# ------------------------------------------------------------------ overriding
# As the F.* ops do (functional/_dispatch.py), these ops hand the call to a Tensor subclass
# that overrides __convkit_function__: the ONNX exporter's tracing tensor records them so.
_BASE_HANDLER = Tensor.__convkit_function__.__func__
_HANDLERS = {}   # type -> its overriding handler, or None


def _handler_of(t):
    h = None
    if issubclass(t, Tensor) and t.__convkit_function__.__func__ is not _BASE_HANDLER:
        h = t.__convkit_function__
    _HANDLERS[t] = h
    return h


def _overrider(values):
    for a in values:
        t = type(a)
        if t is list or t is tuple:
            h = _overrider(a)
        else:
            h = _HANDLERS[t] if t in _HANDLERS else _handler_of(t)
        if h is not None:
            return h
    return None


def _overridable(fn):
    @functools.wraps(fn)
    def op(*args, **kwargs):
        h = _overrider(args) or (_overrider(kwargs.values()) if kwargs else None)
        return fn(*args, **kwargs) if h is None else h(fn, args, kwargs)
    op.__convkit_op__ = fn
    return op


for _name in ("add", "sub", "mul", "div", "pow", "matmul", "neg", "exp", "log", "sqrt", "abs", "clip", "maximum",
              "minimum", "sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "reshape",
              "transpose", "permute", "flatten", "squeeze", "unsqueeze", "getitem", "cat", "stack", "where",
              "astype"):
    globals()[_name] = _overridable(globals()[_name])
concatenate = cat
