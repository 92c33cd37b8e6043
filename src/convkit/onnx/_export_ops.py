"""Emitters for :func:`convkit.onnx.export`: one per convkit op, each writing the ONNX nodes that compute it.

An emitter is ``emit(g, a, out, name) -> output name(s)``: ``g`` the graph
being built (``convkit.onnx.export._Graph``), ``a`` the op's bound arguments
(defaults applied; traced tensors, parameters, arrays, numbers), ``out`` the
op's real output (its arrays), ``name`` the op's own name (``conv2d``...).
Padding and output sizes come from the same helpers the ops use, so the
file computes exactly what the op did.

Legend: n spatial dims, k kernel, s stride, d dilation, (lo, hi) padding, L input size, O output size.
"""
from __future__ import annotations

import numpy as np

from ..autograd import ops as T
from ..functional.conv import _conv_spec, _conv_transpose_spec
from ..functional.padding import _torch_pairs
from ..functional.pool import _windowed
from .export import ExportError

FUNCTIONAL_OPS = {}
TENSOR_OPS = {}
_BIG = np.iinfo(np.int64).max


def functional(*names):
    def deco(f):
        for n in names:
            FUNCTIONAL_OPS[n] = f
        return f
    return deco


def tensor_op(*names):
    def deco(f):
        for n in names:
            TENSOR_OPS[n] = f
        return f
    return deco


def _ranked(base):
    return (base, *(f"{base}{i}d" for i in (1, 2, 3)))


def _rank_of(name):
    return int(name[-2]) if name[-1] == "d" and name[-2].isdigit() else None


def _flat_pads(pairs):
    """((lo, hi), ...) -> ONNX's [lo..., hi...]."""
    return [int(lo) for lo, _ in pairs] + [int(hi) for _, hi in pairs]


# ---------------------------------------------------------------- layout helpers

def _batched(g, sym, unbatched):
    return g.node("Unsqueeze", [sym, g.ints([0])]) if unbatched else sym


def _unbatched(g, sym, unbatched):
    return g.node("Squeeze", [sym, g.ints([0])]) if unbatched else sym


def _nchw(g, x, n, unbatched, channels_last):
    """x as (N, C, *spatial) for an ONNX node."""
    sym = g.input(x)
    if channels_last:
        perm = [n, *range(n)] if unbatched else [0, n + 1, *range(1, n + 1)]
        sym = g.node("Transpose", [sym], perm=perm)
    return _batched(g, sym, unbatched)


def _from_nchw(g, sym, n, unbatched, channels_last):
    sym = _unbatched(g, sym, unbatched)
    if channels_last:
        perm = [*range(1, n + 1), 0] if unbatched else [0, *range(2, n + 2), 1]
        sym = g.node("Transpose", [sym], perm=perm)
    return sym


def _pad(g, sym, pairs, mode="constant", value=0.0, dtype=np.float32):
    """A Pad node over every dim (``pairs`` for all of them); modes as F.pad's."""
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return sym
    if mode == "circular" and g.opset < 19:
        return _circular(g, sym, pairs)
    onnx_mode = {"constant": "constant", "zeros": "constant", "reflect": "reflect", "replicate": "edge",
                 "circular": "wrap"}[mode]
    ins = [sym, g.ints(_flat_pads(pairs))]
    if onnx_mode == "constant" and value != 0:
        ins.append(g.const(np.asarray(value, dtype)))
    return g.node("Pad", ins, mode=onnx_mode)


def _circular(g, sym, pairs):
    """Circular padding before opset 19 (no Pad mode 'wrap'): the wrapped ends cut off and concatenated."""
    for ax, (lo, hi) in enumerate(pairs):
        if lo < 0 or hi < 0:
            raise ExportError("export: circular padding with negative (cropping) pads needs opset >= 19")
        parts = []
        if lo:
            parts.append(g.node("Slice", [sym, g.ints([-lo]), g.ints([_BIG]), g.ints([ax])]))
        parts.append(sym)
        if hi:
            parts.append(g.node("Slice", [sym, g.ints([0]), g.ints([hi]), g.ints([ax])]))
        if len(parts) > 1:
            sym = g.node("Concat", parts, axis=ax)
    return sym


def _channel_shape(c, ndim):
    """A per-channel (C,) parameter as broadcastable against (N, C, *spatial)."""
    return [c] + [1] * (ndim - 2)


def _per_channel(g, v, ndim):
    sym = g.input(v)
    return sym if ndim <= 2 else g.node("Reshape", [sym, g.ints(_channel_shape(g.arr(v).size, ndim))])


def _reduce(g, op, sym, axes, keepdims):
    """ReduceX over ``axes``: axes became an input in opset 18 (13 for ReduceSum)."""
    axes = [int(a) for a in axes]
    if op == "ReduceSum" or g.opset >= 18:
        return g.node(op, [sym, g.ints(axes)], keepdims=int(keepdims))
    return g.node(op, [sym], axes=axes, keepdims=int(keepdims))


# ---------------------------------------------------------------- convolution

@functional(*_ranked("conv"))
def conv(g, a, out, name):
    bias = a["bias"]
    spec, _, w, _ = _conv_spec("conv", g.arr(a["x"]), g.arr(a["weight"]), None if bias is None else g.arr(bias),
                               a["stride"], a["padding"], a["dilation"], a["groups"], a["padding_mode"],
                               a["data_format"])
    n = len(spec.stride)
    sym = _nchw(g, a["x"], n, spec.unbatched, spec.channels_last)
    pads = spec.pads
    if spec.mode != "zeros":
        sym = _pad(g, sym, ((0, 0), (0, 0), *pads), spec.mode)
        pads = ((0, 0),) * n
    ins = [sym, g.input(a["weight"], out.dtype)] + ([g.input(bias, out.dtype)] if bias is not None else [])
    y = g.node("Conv", ins, kernel_shape=list(w.shape[2:]), strides=list(spec.stride), pads=_flat_pads(pads),
               dilations=list(spec.dilation), group=spec.groups)
    return _from_nchw(g, y, n, spec.unbatched, spec.channels_last)


@functional(*_ranked("conv_transpose"))
def conv_transpose(g, a, out, name):
    bias = a["bias"]
    spec, x, w, _ = _conv_transpose_spec(g.arr(a["x"]), g.arr(a["weight"]), None if bias is None else g.arr(bias),
                                         a["stride"], a["padding"], a["output_padding"], a["groups"],
                                         a["dilation"], a["output_size"], a["data_format"])
    n = len(spec.stride)
    k = w.shape[2:]
    # what output_padding (given, or chosen by output_size) adds at the end of each dim
    extra = [o - ((i - 1) * s - lo - hi + d * (kk - 1) + 1)
             for o, i, s, (lo, hi), d, kk in zip(spec.out, x.shape[2:], spec.stride, spec.pads, spec.dilation, k)]
    sym = _nchw(g, a["x"], n, spec.unbatched, spec.channels_last)
    ins = [sym, g.input(a["weight"], out.dtype)] + ([g.input(bias, out.dtype)] if bias is not None else [])
    y = g.node("ConvTranspose", ins, kernel_shape=list(k), strides=list(spec.stride), pads=_flat_pads(spec.pads),
               dilations=list(spec.dilation), group=spec.groups, output_padding=extra)
    return _from_nchw(g, y, n, spec.unbatched, spec.channels_last)


# ---------------------------------------------------------------- pooling

def _window_geometry(g, a, name, dilation=1):
    _, unbatched, geo = _windowed(name, _rank_of(name), g.arr(a["x"]), a["kernel_size"], a["stride"], a["padding"],
                                  dilation, a["ceil_mode"])
    # ceil_mode as explicit padding at the end: enough that floor division gives the same output size
    pads = tuple((lo, max(hi, (o - 1) * s + dd * (k - 1) + 1 - L - lo))
                 for (lo, hi), o, s, dd, k, L in zip(geo.pads, geo.out, geo.s, geo.d, geo.k, geo.spatial))
    return unbatched, geo, pads


def _pool_attrs(geo, pads):
    return {"kernel_shape": list(geo.k), "strides": list(geo.s), "pads": _flat_pads(pads)}


@functional(*_ranked("max_pool"))
def max_pool(g, a, out, name):
    if a["return_indices"]:
        raise ExportError(f"export: F.{name} with return_indices=True has no ONNX export (ONNX's indices count "
                          "over the whole tensor, not per plane)")
    unbatched, geo, pads = _window_geometry(g, a, name, a["dilation"])
    sym = _batched(g, g.input(a["x"]), unbatched)
    if any(lo >= k or hi >= k for (lo, hi), k in zip(pads, geo.k)):  # onnxruntime wants pads < kernel
        lowest = -np.inf if out.dtype.kind == "f" else np.iinfo(out.dtype).min
        sym = _pad(g, sym, ((0, 0), (0, 0), *pads), "constant", lowest, out.dtype)
        pads = ((0, 0),) * len(pads)
    dil = list(geo.d) if any(d != 1 for d in geo.d) else None
    y = g.node("MaxPool", [sym], dilations=dil, **_pool_attrs(geo, pads))
    return _unbatched(g, y, unbatched)


@functional(*_ranked("avg_pool"))
def avg_pool(g, a, out, name):
    unbatched, geo, pads = _window_geometry(g, a, name, a.get("dilation", 1))
    sym = _batched(g, g.input(a["x"]), unbatched)
    dil = None
    if any(d != 1 for d in geo.d):
        if g.opset < 19:
            raise ExportError(f"export: F.{name} with dilation needs opset >= 19 (AveragePool dilations); "
                              f"got opset={g.opset}")
        dil = list(geo.d)
    zero = ((0, 0), (0, 0))
    if a["divisor_override"] is not None:
        # every window then lies inside the padded input: AveragePool gives sum / prod(k)
        sym = _pad(g, sym, (*zero, *pads), "constant", 0.0, out.dtype)
        y = g.node("AveragePool", [sym], dilations=dil, **_pool_attrs(geo, ((0, 0),) * len(pads)))
        scale = g.const(np.asarray(np.prod(geo.k) / float(a["divisor_override"]), out.dtype))
        return _unbatched(g, g.node("Mul", [y, scale]), unbatched)
    extra = tuple((0, hi - h0) for (lo, hi), (_, h0) in zip(pads, geo.pads))
    if a["count_include_pad"]:
        if all(e == 0 for _, e in extra) and all(lo < k and hi < k for (lo, hi), k in zip(pads, geo.k)):
            y = g.node("AveragePool", [sym], count_include_pad=1, dilations=dil, **_pool_attrs(geo, pads))
        else:  # the explicit padding counts, the ceil_mode overhang does not
            sym = _pad(g, sym, (*zero, *geo.pads), "constant", 0.0, out.dtype)
            pads = extra
            if any(e >= k for (_, e), k in zip(extra, geo.k)):
                raise ExportError(f"export: F.{name}: this ceil_mode overhang has no onnxruntime AveragePool form")
            y = g.node("AveragePool", [sym], count_include_pad=0, dilations=dil, **_pool_attrs(geo, pads))
    else:
        if any(lo >= k or hi >= k for (lo, hi), k in zip(pads, geo.k)):
            raise ExportError(f"export: F.{name} with count_include_pad=False and padding not smaller than "
                              "the kernel has no onnxruntime AveragePool form")
        y = g.node("AveragePool", [sym], count_include_pad=0, dilations=dil, **_pool_attrs(geo, pads))
    return _unbatched(g, y, unbatched)


@functional(*_ranked("lp_pool"))
def lp_pool(g, a, out, name):
    p = float(a["norm_type"])
    if p != int(p):
        raise ExportError(f"export: F.{name} needs an integer norm_type for ONNX LpPool; got norm_type={p!r}")
    unbatched, geo, pads = _window_geometry(g, a, name, a["dilation"])
    dil = None
    if any(d != 1 for d in geo.d):
        if g.opset < 18:
            raise ExportError(f"export: F.{name} with dilation needs opset >= 18; got opset={g.opset}")
        dil = list(geo.d)
    sym = _batched(g, g.input(a["x"]), unbatched)
    sym = _pad(g, sym, ((0, 0), (0, 0), *pads), "constant", 0.0, out.dtype)
    y = g.node("LpPool", [sym], p=int(p), dilations=dil, **_pool_attrs(geo, ((0, 0),) * len(pads)))
    return _unbatched(g, y, unbatched)


def _adaptive(g, a, out, name, kind):
    x = g.arr(a["x"])
    n = _rank_of(name) or (len(a["output_size"]) if isinstance(a["output_size"], (tuple, list)) else x.ndim - 2)
    unbatched = x.ndim == n + 1
    L, O = x.shape[-n:], out.shape[-n:]
    sym = _batched(g, g.input(a["x"]), unbatched)
    if all(o == 1 for o in O):
        y = g.node(f"Global{kind}Pool", [sym])
    elif all(lo % o == 0 for lo, o in zip(L, O)):
        k = [lo // o for lo, o in zip(L, O)]
        y = g.node(f"{kind}Pool", [sym], kernel_shape=k, strides=k)
    elif kind == "Average":
        y = _adaptive_avg_matmul(g, sym, L, O, out.dtype)
    else:
        raise ExportError(f"export: F.{name} from {tuple(L)} to {tuple(O)} has no ONNX form (the sizes do not "
                          "divide)")
    return _unbatched(g, y, unbatched)


def _adaptive_avg_matmul(g, sym, L, O, dtype):
    """Adaptive averaging one spatial axis at a time, as a product with a (L, O) matrix of bin weights."""
    n = len(L)
    for i, (li, oi) in enumerate(zip(L, O)):
        m = np.zeros((li, oi), dtype)
        for j in range(oi):
            lo, hi = (j * li) // oi, -((-(j + 1) * li) // oi)
            m[lo:hi, j] = 1.0 / (hi - lo)
        ax = 2 + i
        perm = list(range(n + 2))
        perm[ax], perm[-1] = perm[-1], perm[ax]
        t = g.node("Transpose", [sym], perm=perm) if ax != n + 1 else sym
        t = g.node("MatMul", [t, g.const(m)])
        sym = g.node("Transpose", [t], perm=perm) if ax != n + 1 else t
    return sym


@functional(*_ranked("adaptive_avg_pool"))
def adaptive_avg_pool(g, a, out, name):
    return _adaptive(g, a, out, name, "Average")


@functional(*_ranked("adaptive_max_pool"))
def adaptive_max_pool(g, a, out, name):
    if a["return_indices"]:
        raise ExportError(f"export: F.{name} with return_indices=True has no ONNX export")
    return _adaptive(g, a, out, name, "Max")


@functional("global_avg_pool", "global_max_pool")
def global_pool(g, a, out, name):
    x = g.arr(a["x"])
    y = g.node("GlobalAveragePool" if name == "global_avg_pool" else "GlobalMaxPool", [g.input(a["x"])])
    if out.ndim < x.ndim:
        y = g.node("Squeeze", [y, g.ints(range(out.ndim, x.ndim))])
    return y


# ---------------------------------------------------------------- normalisation

def _or_const(g, v, value, shape, dtype):
    return g.input(v, dtype) if v is not None else g.const(np.full(shape, value, dtype))


def _normalize(g, sym, axes, eps, dtype):
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance)."""
    d = g.node("Sub", [sym, _reduce(g, "ReduceMean", sym, axes, True)])
    var = _reduce(g, "ReduceMean", g.node("Mul", [d, d]), axes, True)
    return g.node("Div", [d, g.node("Sqrt", [g.node("Add", [var, g.const(np.asarray(eps, dtype))])])])


def _affine(g, sym, w, b, ndim, per_channel=True):
    if w is not None:
        sym = g.node("Mul", [sym, _per_channel(g, w, ndim) if per_channel else g.input(w)])
    if b is not None:
        sym = g.node("Add", [sym, _per_channel(g, b, ndim) if per_channel else g.input(b)])
    return sym


@functional("batch_norm")
def batch_norm(g, a, out, name):
    x = g.arr(a["input"])
    c, dt, eps = x.shape[1], out.dtype, float(a["eps"])
    if a["training"]:  # batch statistics (eval of a layer without running stats)
        y = _normalize(g, g.input(a["input"]), [0, *range(2, x.ndim)], eps, dt)
        return _affine(g, y, a["weight"], a["bias"], x.ndim)
    ins = [g.input(a["input"]), _or_const(g, a["weight"], 1, (c,), dt), _or_const(g, a["bias"], 0, (c,), dt),
           g.input(a["running_mean"], dt), g.input(a["running_var"], dt)]
    return g.node("BatchNormalization", ins, epsilon=eps)


@functional("instance_norm")
def instance_norm(g, a, out, name):
    if not a["use_input_stats"]:
        return batch_norm(g, dict(a, training=False), out, name)
    x = g.arr(a["input"])
    c, dt = x.shape[1], out.dtype
    ins = [g.input(a["input"]), _or_const(g, a["weight"], 1, (c,), dt), _or_const(g, a["bias"], 0, (c,), dt)]
    return g.node("InstanceNormalization", ins, epsilon=float(a["eps"]))


@functional("layer_norm")
def layer_norm(g, a, out, name):
    x = g.arr(a["input"])
    ns = a["normalized_shape"]
    ns = (ns,) if isinstance(ns, (int, np.integer)) else tuple(ns)
    axis = x.ndim - len(ns)
    dt, eps = out.dtype, float(a["eps"])
    if g.opset >= 17:
        ins = [g.input(a["input"]), _or_const(g, a["weight"], 1, ns, dt)]
        if a["bias"] is not None:
            ins.append(g.input(a["bias"], dt))
        return g.node("LayerNormalization", ins, axis=axis, epsilon=eps)
    y = _normalize(g, g.input(a["input"]), range(axis, x.ndim), eps, dt)
    return _affine(g, y, a["weight"], a["bias"], x.ndim, per_channel=False)


@functional("group_norm")
def group_norm(g, a, out, name):
    x = g.arr(a["input"])
    groups, dt = int(a["num_groups"]), out.dtype
    sym = g.input(a["input"])
    grouped = g.node("Reshape", [sym, g.ints([0, groups, -1])])
    y = g.node("InstanceNormalization", [grouped, g.const(np.ones(groups, dt)), g.const(np.zeros(groups, dt))],
               epsilon=float(a["eps"]))
    y = g.node("Reshape", [y, g.node("Shape", [sym])])
    return _affine(g, y, a["weight"], a["bias"], x.ndim)


@functional("local_response_norm")
def local_response_norm(g, a, out, name):
    size = int(a["size"])
    if size % 2 == 0:
        raise ExportError(f"export: F.{name} with an even size has no ONNX LRN form (ONNX centres the window "
                          f"differently); got size={size}")
    return g.node("LRN", [g.input(a["input"])], size=size, alpha=float(a["alpha"]), beta=float(a["beta"]),
                  bias=float(a["k"]))


# ---------------------------------------------------------------- linear and activations

@functional("linear")
def linear(g, a, out, name):
    x = g.arr(a["input"])
    w = g.input(a["weight"], out.dtype)
    b = None if a["bias"] is None else g.input(a["bias"], out.dtype)
    if x.ndim == 2:
        return g.node("Gemm", [g.input(a["input"]), w] + ([b] if b else []), transB=1)
    y = g.node("MatMul", [g.input(a["input"]), g.node("Transpose", [w], perm=[1, 0])])
    return g.node("Add", [y, b]) if b else y


def _scalar(g, value, dtype):
    return g.const(np.asarray(value, dtype))


_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "erf": "Erf", "hardswish": "HardSwish"}


@functional(*_UNARY)
def unary(g, a, out, name):
    x = g.input(a["x"])
    if name == "hardswish" and g.opset < 14:
        return g.node("Mul", [x, g.node("HardSigmoid", [x], alpha=1 / 6, beta=0.5)])
    return g.node(_UNARY[name], [x])


@functional("relu6")
def relu6(g, a, out, name):
    return g.node("Clip", [g.input(a["x"]), _scalar(g, 0, out.dtype), _scalar(g, 6, out.dtype)])


@functional("leaky_relu")
def leaky_relu(g, a, out, name):
    return g.node("LeakyRelu", [g.input(a["x"])], alpha=float(a["negative_slope"]))


@functional("elu")
def elu(g, a, out, name):
    return g.node("Elu", [g.input(a["x"])], alpha=float(a["alpha"]))


@functional("selu")
def selu(g, a, out, name):
    from ..functional.activation import _SELU_ALPHA, _SELU_SCALE
    return g.node("Selu", [g.input(a["x"])], alpha=_SELU_ALPHA, gamma=_SELU_SCALE)


@functional("silu")
def silu(g, a, out, name):
    x = g.input(a["x"])
    return g.node("Mul", [x, g.node("Sigmoid", [x])])


@functional("hardsigmoid")
def hardsigmoid(g, a, out, name):
    return g.node("HardSigmoid", [g.input(a["x"])], alpha=1 / 6, beta=0.5)


@functional("prelu")
def prelu(g, a, out, name):
    x = g.arr(a["x"])
    w = g.input(a["weight"], out.dtype)
    if x.ndim > 2 and g.arr(a["weight"]).size > 1:  # (C,) slopes against dim 1, not the last dim
        w = g.node("Reshape", [w, g.ints(_channel_shape(g.arr(a["weight"]).size, x.ndim))])
    return g.node("PRelu", [g.input(a["x"]), w])


@functional("softplus")
def softplus(g, a, out, name):
    x, dt = g.input(a["x"]), out.dtype
    beta, threshold = float(a["beta"]), float(a["threshold"])
    bx = x if beta == 1 else g.node("Mul", [x, _scalar(g, beta, dt)])
    soft = g.node("Softplus", [bx])
    if beta != 1:
        soft = g.node("Div", [soft, _scalar(g, beta, dt)])
    return g.node("Where", [g.node("Greater", [bx, _scalar(g, threshold, dt)]), x, soft])


@functional("gelu")
def gelu(g, a, out, name):
    x, dt = g.input(a["x"]), out.dtype
    approx = a["approximate"]
    if g.opset >= 20:
        return g.node("Gelu", [x], approximate=approx)
    half = g.node("Mul", [x, _scalar(g, 0.5, dt)])
    if approx == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, _scalar(g, 0.044715, dt)])])
        t = g.node("Tanh", [g.node("Mul", [inner, _scalar(g, np.sqrt(2 / np.pi), dt)])])
    else:
        t = g.node("Erf", [g.node("Mul", [x, _scalar(g, 1 / np.sqrt(2), dt)])])
    return g.node("Mul", [half, g.node("Add", [t, _scalar(g, 1, dt)])])


@functional("softmax", "log_softmax")
def softmax(g, a, out, name):
    axis = int(a["dim"]) % max(out.ndim, 1)
    return g.node("Softmax" if name == "softmax" else "LogSoftmax", [g.input(a["x"])], axis=axis)


@functional("dropout", "dropout1d", "dropout2d", "dropout3d")
def dropout(g, a, out, name):
    if a["return_mask"] or (a["training"] and a["p"] > 0):
        raise ExportError(f"export: F.{name} in training mode (or with return_mask) has no ONNX export; "
                          "the model runs in eval mode, so pass training=self.training")
    return g.node("Identity", [g.input(a["x"])])


@functional("pad")
def pad(g, a, out, name):
    x = g.arr(a["x"])
    pairs = _torch_pairs("pad", a["pad"], x.ndim)
    pairs = ((0, 0),) * (x.ndim - len(pairs)) + tuple(pairs)
    if a["mode"] != "constant" and any(lo < 0 or hi < 0 for lo, hi in pairs):
        raise ExportError(f"export: F.pad with mode={a['mode']!r} and negative pads has no ONNX export")
    return _pad(g, g.input(a["x"]), pairs, a["mode"], float(a["value"]), out.dtype)


# ---------------------------------------------------------------- Tensor ops

def _operands(g, values, dtype):
    """ONNX names for elementwise operands, all as ``dtype``; numbers take it as ops.lift gives them."""
    like = next(v for v in values if isinstance(v, T.Tensor))
    return [g.input(v if isinstance(v, T.Tensor) else T.lift(v, like), dtype) for v in values]


_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "matmul": "MatMul", "maximum": "Max",
           "minimum": "Min"}


@tensor_op(*_BINARY)
def binary(g, a, out, name):
    return g.node(_BINARY[name], _operands(g, [a["a"], a["b"]], out.dtype))


@tensor_op("pow")
def power(g, a, out, name):
    base, exp_ = a["a"], a["b"]
    like = base if isinstance(base, T.Tensor) else exp_
    ins = [g.input(v if isinstance(v, T.Tensor) else T.lift(v, like), out.dtype) for v in (base, exp_)]
    return g.node("Pow", ins)


_ELEMENTWISE = {"neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs"}


@tensor_op(*_ELEMENTWISE)
def elementwise(g, a, out, name):
    return g.node(_ELEMENTWISE[name], [g.input(a["a"])])


@tensor_op("clip")
def clip(g, a, out, name):
    ins = [g.input(a["a"])]
    ins.append("" if a["min"] is None else _scalar(g, a["min"], out.dtype))
    if a["max"] is not None:
        ins.append(_scalar(g, a["max"], out.dtype))
    return g.node("Clip", ins)


def _dim_keep(a):
    dim = a["dim"] if a["dim"] is not None else a.get("axis")
    keep = a["keepdim"] if a.get("keepdims") is None else a["keepdims"]
    return dim, bool(keep)


@tensor_op("sum", "mean")
def reduce_sum_mean(g, a, out, name):
    x = g.arr(a["a"])
    dim, keep = _dim_keep(a)
    if x.ndim == 0:
        return g.node("Identity", [g.input(a["a"])])
    axes = T._axes(dim, x.ndim, name)
    return _reduce(g, "ReduceSum" if name == "sum" else "ReduceMean", g.input(a["a"]), axes, keep)


@tensor_op("var", "std")
def reduce_var(g, a, out, name):
    x = g.arr(a["a"])
    dim, keep = _dim_keep(a)
    correction = a["correction"]
    if correction is None:
        correction = 1 if a["unbiased"] is None or a["unbiased"] else 0
    axes = T._axes(dim, x.ndim, name)
    count = int(np.prod([x.shape[i] for i in axes])) if x.ndim else 1
    sym = g.input(a["a"])
    d = g.node("Sub", [sym, _reduce(g, "ReduceMean", sym, axes, True)])
    s = _reduce(g, "ReduceSum", g.node("Mul", [d, d]), axes, keep)
    v = g.node("Div", [s, _scalar(g, max(count - correction, 0), out.dtype)])
    return g.node("Sqrt", [v]) if name == "std" else v


@tensor_op("max", "min", "amax", "amin")
def reduce_extreme(g, a, out, name):
    x = g.arr(a["a"])
    kind = "Max" if name in ("max", "amax") else "Min"
    dim, keep = _dim_keep(a)
    sym = g.input(a["a"])
    if name in ("max", "min") and isinstance(dim, (int, np.integer)) and x.ndim:
        (d,) = T._axes(dim, x.ndim, name)
        return (_reduce(g, f"Reduce{kind}", sym, [d], keep), g.node(f"Arg{kind}", [sym], axis=d, keepdims=int(keep)))
    return _reduce(g, f"Reduce{kind}", sym, T._axes(dim, x.ndim, name), keep)


@tensor_op("argmax", "argmin")
def arg_extreme(g, a, out, name):
    kind = "Max" if name == "argmax" else "Min"
    sym, keep = g.input(a["a"]), bool(a["keepdim"])
    if a["dim"] is None:
        y = g.node(f"Arg{kind}", [g.node("Reshape", [sym, g.ints([-1])])], axis=0, keepdims=0)
        return g.node("Reshape", [y, g.ints(out.shape)]) if keep else y
    return g.node(f"Arg{kind}", [sym], axis=int(a["dim"]), keepdims=int(keep))


def _reshape_to(g, v, shape):
    """Reshape to the traced ``shape``; with a dynamic batch, dim 0 is 0 (kept) or -1 (inferred)."""
    x = g.arr(v)
    shape = [int(s) for s in shape]
    if g.dynamic and shape and x.ndim:
        shape[0] = 0 if shape[0] == x.shape[0] else -1
    return g.node("Reshape", [g.input(v), g.ints(shape)])


@tensor_op("reshape", "flatten")
def reshape(g, a, out, name):
    return _reshape_to(g, a["a"], out.shape)


@tensor_op("squeeze")
def squeeze(g, a, out, name):
    x = g.arr(a["a"])
    if a["dim"] is None:
        axes = [i for i, s in enumerate(x.shape) if s == 1]
    else:
        axes = [i for i in T._axes(a["dim"], x.ndim, name) if x.shape[i] == 1]
    return g.node("Squeeze", [g.input(a["a"]), g.ints(axes)]) if axes else g.node("Identity", [g.input(a["a"])])


@tensor_op("unsqueeze")
def unsqueeze(g, a, out, name):
    (d,) = T._axes(a["dim"], g.arr(a["a"]).ndim + 1, name)
    return g.node("Unsqueeze", [g.input(a["a"]), g.ints([d])])


@tensor_op("transpose")
def transpose(g, a, out, name):
    x = g.arr(a["a"])
    d0, d1 = T._axes((a["dim0"], a["dim1"]), x.ndim, name)
    perm = list(range(x.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return g.node("Transpose", [g.input(a["a"])], perm=perm)


@tensor_op("permute")
def permute(g, a, out, name):
    dims = a["dims"]
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    return g.node("Transpose", [g.input(a["a"])], perm=list(T._axes(dims, g.arr(a["a"]).ndim, name)))


@tensor_op("cat", "stack")
def cat(g, a, out, name):
    ts = list(a["tensors"])
    like = next(t for t in ts if isinstance(t, T.Tensor))
    syms = [g.input(t if isinstance(t, T.Tensor) else T.lift(t, like), out.dtype) for t in ts]
    if name == "stack":
        d = T._axes(a["dim"], out.ndim, name)[0]
        syms = [g.node("Unsqueeze", [s, g.ints([d])]) for s in syms]
    else:
        d = T._axes(a["dim"], out.ndim, name)[0]
    return g.node("Concat", syms, axis=d)


@tensor_op("where")
def where(g, a, out, name):
    cond = a["condition"]
    c = g.input(cond if isinstance(cond, T.Tensor) else np.asarray(cond), np.bool_)
    return g.node("Where", [c, *_operands(g, [a["a"], a["b"]], out.dtype)])


@tensor_op("astype")
def astype(g, a, out, name):
    from .export import _tensor_type
    if g.arr(a["a"]).dtype == out.dtype:
        return g.input(a["a"])
    return g.node("Cast", [g.input(a["a"])], to=_tensor_type(out.dtype))


@tensor_op("getitem")
def getitem(g, a, out, name):
    x = g.arr(a["a"])
    idx = a["idx"]
    parts = idx if isinstance(idx, tuple) else (idx,)
    if any(isinstance(p, T.Tensor) and type(p) is not T.Tensor for p in parts):
        raise ExportError("export: indexing with a traced tensor has no ONNX export")
    parts = tuple(T._plain_index(p) if isinstance(p, T.Tensor) else p for p in parts)
    sym = g.input(a["a"])
    if not T._is_basic(parts):
        return _gather(g, sym, parts, x)
    used = sum(1 for p in parts if p is not None and p is not Ellipsis)
    expanded = []
    for p in parts:
        expanded.extend([slice(None)] * (x.ndim - used) if p is Ellipsis else [p])
    expanded.extend([slice(None)] * (x.ndim - sum(1 for p in expanded if p is not None)))
    starts, ends, axes, steps, drop, new = [], [], [], [], [], []
    ax = pos = 0
    for p in expanded:
        if p is None:
            new.append(pos)
            pos += 1
            continue
        if isinstance(p, slice):
            if p != slice(None):
                step = 1 if p.step is None else int(p.step)
                lo = (0 if step > 0 else _BIG) if p.start is None else int(p.start)
                hi = (_BIG if step > 0 else -_BIG - 1) if p.stop is None else int(p.stop)
                starts.append(lo), ends.append(hi), axes.append(ax), steps.append(step)
            pos += 1
        else:
            i = int(p)
            starts.append(i), ends.append(_BIG if i == -1 else i + 1), axes.append(ax), steps.append(1)
            drop.append(ax)
        ax += 1
    if axes:
        sym = g.node("Slice", [sym, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    if drop:
        sym = g.node("Squeeze", [sym, g.ints(drop)])
    if new:
        sym = g.node("Unsqueeze", [sym, g.ints(new)])
    return sym if axes or drop or new else g.node("Identity", [sym])


def _gather(g, sym, parts, x):
    """One integer array on one axis, every other index a full slice: a Gather."""
    arrays = [i for i, p in enumerate(parts) if not (p is None or p is Ellipsis or isinstance(p, (slice, int)))]
    full = all(p == slice(None) for i, p in enumerate(parts) if i not in arrays)
    if len(arrays) != 1 or not full or Ellipsis in parts or None in parts:
        raise ExportError("export: this advanced indexing has no ONNX export (one integer array on one axis, "
                          "with full slices elsewhere, is supported)")
    ix = np.asarray(parts[arrays[0]])
    if ix.dtype.kind not in "iu":
        raise ExportError(f"export: indexing with a {ix.dtype} array has no ONNX export (integer arrays only)")
    return g.node("Gather", [sym, g.const(ix.astype(np.int64))], axis=arrays[0])
