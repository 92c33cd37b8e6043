"""Which nodes keep the samples of a batch apart, so that a session may run parts of a batch side by side.

A value is *batched* when its axis 0 is the batch: the graph inputs, and what nodes that keep samples
apart make of them. Every other value is *static*: initializers, constants, and what is computed from
them alone. A node keeps samples apart when sample i of its output depends on sample i of its batched
inputs alone, whatever the batch size: a Conv of a batched X with static weights, the Add of two
batched values of one rank, a Reshape to [0, -1]. Not: a Reshape to [8, -1] (a batch size written into
the graph), Shape over axis 0, a Softmax over axis 0, MaxPool's indices (counted over the whole batch),
a Dropout in training mode (its random mask).

The rules need the actual arrays (ranks, axes, shapes passed as inputs), so :func:`check` runs as each
node is about to run on a part of the batch. A node that breaks them raises :class:`Mixed`; the
session then runs the whole batch as one (see InferenceSession.run).
"""
from __future__ import annotations

import numpy as np


class Mixed(Exception):
    """A node (may) mix the samples of a batch: the batch cannot be run in parts."""


# the first input is the batched one, every other input static, and the output's axis 0 is its batch
_FIRST_ONLY = frozenset({
    "Conv", "ConvTranspose", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "Col2Im",
    "InstanceNormalization", "LRN", "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish",
    "Tanh", "Sqrt", "Exp", "Log", "Erf", "Identity", "Cast", "Clip", "BatchNormalization", "MaxPool", "Dropout",
    "PRelu", "Softmax", "LogSoftmax", "Flatten", "Split", "Slice", "Reshape", "Transpose", "Squeeze",
    "Unsqueeze", "Pad", "ReduceMean", "ReduceMax", "ReduceSum", "Resize", "Upsample"})
# numpy broadcasting over all inputs
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Sum", "Mean", "Max", "Min"})


def _ints(v):
    return [] if v is None else [int(a) for a in np.asarray(v).ravel()]


def _norm(axes, ndim):
    return [a % ndim if ndim else 0 for a in _ints(axes)]


def check(op, params, args, attrs, batched, opset):
    """Whether the outputs of this node are batched, given its inputs ``args`` (positional, in ONNX's
    order; ``params`` names them), its attributes and which inputs are ``batched``. Raises Mixed when
    the node may mix samples."""
    if not any(batched):
        return False

    def mixed(why):
        return Mixed(f"{op} {why}")

    def value(name):
        i = params.index(name) if name in params else -1
        if 0 <= i < len(args) and args[i] is not None:
            if batched[i]:
                raise mixed(f"reads its {name} from the batch")
            return args[i]
        return attrs.get(name)

    if op in _ELEMENTWISE:
        nd = max(np.ndim(a) for a in args)
        for a, b in zip(args, batched):
            if b and np.ndim(a) != nd:
                raise mixed(f"broadcasts a batched input of rank {np.ndim(a)} to rank {nd}")
            if not b and np.ndim(a) == nd and np.shape(a)[0] != 1:
                raise mixed("broadcasts a static input along the batch axis")
        return True
    if op == "Concat":
        if not all(batched) or np.ndim(args[0]) == 0 or int(attrs["axis"]) % np.ndim(args[0]) == 0:
            raise mixed("joins static values or joins along the batch axis")
        return True
    if op == "Gemm":
        c = args[2] if len(args) > 2 else None
        if (not batched[0] or any(batched[1:]) or attrs.get("transA", 0)
                or (c is not None and np.ndim(c) == 2 and np.shape(c)[0] != 1)):
            raise mixed("does not take its batch from the rows of A alone")
        return True
    if op == "MatMul":
        return _matmul(args, batched, mixed)
    if op == "Gather":
        data, idx = args[0], args[1]
        axis = int(attrs.get("axis", 0)) % max(np.ndim(data), 1)
        if batched[0] and not batched[1] and axis != 0:
            return True
        if batched[1] and not batched[0] and axis == 0 and np.ndim(idx) >= 1:
            return True
        raise mixed("gathers along the batch")
    if op == "Shape":
        start = int(attrs.get("start", 0))
        if (start + np.ndim(args[0]) if start < 0 else start) >= 1:
            return False   # the sizes of the sample axes: the same for every part
        raise mixed("reads the batch size")
    if op not in _FIRST_ONLY:
        raise mixed("is not known to keep the samples of a batch apart")
    if not batched[0] or any(batched[1:]) or np.ndim(args[0]) == 0:
        raise mixed("reads a batched value where it takes a static one")
    _first_only(op, args, value, attrs, opset, mixed)
    return True


def _matmul(args, batched, mixed):
    a, b = args
    na, nb = np.ndim(a), np.ndim(b)
    if batched[0] and not batched[1] and (na == 2 and nb <= 2 or na > 2 and (nb < na or np.shape(b)[0] == 1)):
        return True
    if batched[1] and not batched[0] and nb > 2 and (na < nb or np.shape(a)[0] == 1):
        return True
    if all(batched) and na == nb > 2:
        return True
    raise mixed("multiplies along the batch axis")


def _first_only(op, args, value, attrs, opset, mixed):
    """The attributes and static inputs of an op whose first input is the batched one."""
    x = args[0]
    nd = np.ndim(x)
    if op == "BatchNormalization" and attrs.get("training_mode", 0):
        raise mixed("in training mode uses the batch's statistics")
    if op == "MaxPool" and attrs.get("return_indices"):
        raise mixed("counts its indices over the whole batch")
    if op == "Dropout" and bool(np.any(value("training_mode"))):
        raise mixed("in training mode draws a random mask")
    if op == "PRelu":
        slope = args[1] if len(args) > 1 else None
        if np.ndim(slope) == nd and np.shape(slope)[0] != 1:
            raise mixed("broadcasts its slope along the batch axis")
    if op in ("Softmax", "LogSoftmax"):
        if int(attrs.get("axis", 1 if opset < 13 else -1)) % nd == 0:
            raise mixed("normalises over the batch axis")
    if op == "Flatten":
        axis = int(attrs.get("axis", 1))
        if (axis + nd if axis < 0 else axis) < 1:
            raise mixed("flattens the batch axis")
    if op == "Split" and int(attrs.get("axis", 0)) % nd == 0:
        raise mixed("splits the batch axis")
    if op == "Transpose":
        perm = attrs.get("perm")
        if (list(reversed(range(nd))) if perm is None else _ints(perm))[0] != 0:
            raise mixed("moves the batch axis")
    if op in ("Slice", "Squeeze") and (value("axes") is None or 0 in _norm(value("axes"), nd)):
        raise mixed("may act on the batch axis")
    if op == "Unsqueeze" and 0 in _norm(value("axes"), nd + len(_ints(value("axes")))):
        raise mixed("inserts an axis before the batch")
    if op.startswith("Reduce"):
        axes = _ints(value("axes"))
        if (not axes and not attrs.get("noop_with_empty_axes", 0)) or 0 in _norm(axes, nd):
            raise mixed("reduces over the batch axis")
    if op == "Pad":
        _pad(_ints(value("pads")), value("axes"), nd, mixed)
    if op == "Reshape":
        _reshape(x, _ints(value("shape")), attrs.get("allowzero", 0), mixed)
    if op in ("Resize", "Upsample"):
        scales = np.asarray(() if value("scales") is None else value("scales"), np.float64).ravel()
        sizes = value("sizes")
        if ((sizes is not None and np.size(sizes)) or attrs.get("axes") is not None or len(scales) == 0
                or scales[0] != 1 or attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize"):
            raise mixed("may resize the batch axis")


def _pad(pads, axes, nd, mixed):
    axes = list(range(nd)) if axes is None else _norm(axes, nd)
    m = len(axes)
    if len(pads) != 2 * m:
        raise mixed("has pads that do not match its axes")
    if any(a == 0 and (pads[i] or pads[i + m]) for i, a in enumerate(axes)):
        raise mixed("pads the batch axis")


def _reshape(x, shape, allowzero, mixed):
    """A Reshape keeps samples apart when its axis 0 is the batch: shape[0] == 0 (copied), or -1 with
    the other sizes making exactly one sample."""
    if not shape or allowzero or shape[0] not in (0, -1):
        raise mixed("writes a batch size into its shape")
    if shape[0] == 0:
        return
    rest = [x.shape[i + 1] if s == 0 and i + 1 < x.ndim else s for i, s in enumerate(shape[1:])]
    if -1 in rest or int(np.prod(rest)) != int(np.prod(x.shape[1:])):
        raise mixed("moves elements between samples")
