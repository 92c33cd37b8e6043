"""Convolution and transposed convolution, 1-3D (N-d), each forward beside its vjp.

Legend: N batch, C input channels, K output channels (filters), G groups,
W spatial input size, F kernel size, S stride, P padding, D dilation.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .. import _checks as C
from .. import shapes
from . import _conv_core as core
from . import _plan
from .padding import _check_pairs, pad_nd, pad_nd_vjp


@dataclass(frozen=True)
class _Spec:
    op: str
    stride: tuple
    pads: tuple          # (lo, hi) per spatial dim
    dilation: tuple
    groups: int
    mode: str
    out: tuple           # spatial output size
    unbatched: bool
    channels_last: bool
    algorithm: str | None = None   # a forced algorithm (see _plan), None for the automatic choice


def _op_name(base, n):
    return f"{base}{n}d" if n <= 3 else base


def _prepare(base, x, weight, bias, n_expected, data_format):
    """Validate arrays; returns (op, n, x channels-first batched, weight, bias, unbatched, cl)."""
    wdim = getattr(weight, "ndim", None)
    if n_expected:
        op = _op_name(base, n_expected)
    else:
        op = _op_name(base, wdim - 2) if isinstance(wdim, int) and wdim >= 3 else base
    x = C.as_float_array(op, "input", x)
    weight = C.as_float_array(op, "weight", weight)
    if weight.ndim < 3:
        C.fail(op, "weight.ndim", ">= 3: (out_channels, in_channels/groups, *kernel_size)", weight.ndim)
    n = weight.ndim - 2
    if n_expected and n != n_expected:
        C.fail(op, "weight.ndim", f"{n_expected + 2} for a {n_expected}-d convolution", weight.ndim)
    cl = C.data_format(op, data_format) == "channels_last"
    x, unbatched = C.batched(op, x, n)
    if cl:
        x = np.moveaxis(x, -1, 1)
    if bias is not None:
        bias = C.as_float_array(op, "bias", bias)
    dtype = C.result_dtype(x, weight, bias)
    x, weight = x.astype(dtype, copy=False), weight.astype(dtype, copy=False)
    bias = None if bias is None else bias.astype(dtype, copy=False)
    C.positive_shape(op, "input.shape", x.shape[1:])
    C.positive_shape(op, "weight.shape", weight.shape)
    return op, n, x, weight, bias, unbatched, cl


def _check_groups(op, groups, c_in, c_out_w, w_in, x_shape, w_shape, transpose):
    groups = C.as_int(op, "groups", groups, minimum=1)
    if c_in % groups:
        raise ValueError(f"{op}: groups must divide in_channels; got in_channels={c_in}, groups={groups}.")
    if transpose:
        if w_in != c_in:
            raise ValueError(f"{op}: weight.shape[0] must equal the input channels; got input shape "
                             f"{x_shape} and weight shape {w_shape}.")
    else:
        if c_out_w % groups:
            raise ValueError(f"{op}: groups must divide out_channels; got out_channels={c_out_w}, groups={groups}.")
        if w_in * groups != c_in:
            raise ValueError(f"{op}: weight.shape[1] * groups must equal the input channels; got input shape "
                             f"{x_shape} and weight shape {w_shape} with groups={groups}.")
    return groups


def _check_bias(op, bias, k):
    if bias is not None and bias.shape != (k,):
        C.fail(op, "bias.shape", f"(out_channels,) = ({k},)", bias.shape)


def _conv_spec(base, x, weight, bias, stride, padding, dilation, groups, padding_mode, data_format, n_expected=None,
               algorithm=None):
    op, n, x, weight, bias, unbatched, cl = _prepare(base, x, weight, bias, n_expected, data_format)
    groups = _check_groups(op, groups, x.shape[1], weight.shape[0], weight.shape[1], x.shape, weight.shape, False)
    _check_bias(op, bias, weight.shape[0])
    mode = C.padding_mode(op, padding_mode)
    kernel = weight.shape[2:]
    stride = C.ntuple(op, "stride", stride, n, minimum=1)
    dilation = C.ntuple(op, "dilation", dilation, n, minimum=1)
    pads = shapes.resolve_padding(padding, x.shape[2:], kernel, stride, dilation, op=op)
    out = shapes.conv_output_shape(x.shape[2:], kernel, stride, pads, dilation, op=op)
    if mode != "zeros":
        _check_pairs(op, x.shape, pads, mode, name="padding")
    stride, dilation = shapes.bounded_steps(out, kernel, stride, dilation, shapes.padded_shape(x.shape[2:], pads))
    algorithm = _plan.check(op, algorithm, x.shape, weight, stride, pads, dilation, groups)
    spec = _Spec(op, stride, pads, dilation, groups, mode, out, unbatched, cl, algorithm)
    # output, plus an input-sized gradient or padded copy (depthwise and non-zero modes pad it whole)
    C.check_alloc(op, C.nbytes((x.shape[0], weight.shape[0]) + out, x.dtype)
                  + C.nbytes(x.shape[:2] + shapes.padded_shape(x.shape[2:], pads), x.dtype), "output and padded input")
    return spec, x, weight, bias


def _finish(y, spec):
    if spec.channels_last:
        y = np.ascontiguousarray(np.moveaxis(y, 1, -1))
    return y[0] if spec.unbatched else y


def _start_grad(spec, grad_out, expected, dtype):
    """grad_out as a batched channels-first array, after checking it has the
    output's shape in the caller's own layout (expected is batched, channels first)."""
    g = C.as_float_array(spec.op, "grad_out", grad_out).astype(dtype, copy=False)
    want = tuple(expected)
    if spec.channels_last:
        want = (want[0],) + want[2:] + (want[1],)
    if spec.unbatched:
        want = want[1:]
    C.same_shape(spec.op, "grad_out", g.shape, want, "the output shape")
    if spec.unbatched:
        g = g[None]
    return np.moveaxis(g, -1, 1) if spec.channels_last else g


def _padded_input(x, spec):
    if spec.mode == "zeros":
        return x, spec.pads
    return pad_nd(x, spec.pads, spec.mode), ((0, 0),) * len(spec.pads)


def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
         data_format="channels_first", algorithm=None):
    """N-d convolution (cross-correlation, as in every deep-learning library).

    ``y[n, k, o] = bias[k] + sum_{c, f} weight[k, c, f] * xpad[n, g*C/G + c, o*S + f*D]``

    Parameters
    ----------
    x : array (N, C, *spatial) or unbatched (C, *spatial); channels last with
        ``data_format="channels_last"``: (N, *spatial, C).
    weight : array (K, C/G, *kernel_size).
    bias : array (K,) or None.
    stride, dilation : int or one int per spatial dim.
    padding : int, one int per dim, one (lo, hi) pair per dim, "valid",
        "same" (TF/ONNX SAME_UPPER: output ceil(W/S), odd cell at the end) or
        "same_lower".
    groups : int dividing C and K; groups == C is a depthwise convolution.
    padding_mode : "zeros", "reflect", "replicate" or "circular".
    algorithm : None (automatic), "im2col", "implicit", "winograd", "fft", "gemm" or "direct": forces
        one where it applies (see :func:`conv_algorithms`); results agree to rounding.

    Shape
    -----
    ``out = floor((W + P_lo + P_hi - D*(F-1) - 1)/S) + 1`` per spatial dim.

    >>> import numpy as np
    >>> x = np.arange(8.).reshape(2, 2, 2) + 1          # (C=2, H=2, W=2)
    >>> conv(x, np.array([2., 3.]).reshape(1, 2, 1, 1))  # a 1x1 filter across depth
    array([[[17., 22.],
            [27., 32.]]])
    """
    spec, x, weight, bias = _conv_spec("conv", x, weight, bias, stride, padding, dilation, groups,
                                       padding_mode, data_format, algorithm=algorithm)
    return _finish(_conv_forward(x, weight, bias, spec), spec)


def _conv_forward(x, weight, bias, spec, keep=False, weights=None):
    xp, pads = _padded_input(x, spec)
    return core.forward(xp, weight, spec.stride, pads, spec.dilation, spec.groups, spec.out, keep=keep, bias=bias,
                        algorithm=spec.algorithm, weights=weights)


def conv_fixed_weight(weights, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """:func:`conv` of a weight that does not change between calls (an inference engine's): ``weights``,
    a ``_weights.WeightCache`` of ``weight``, keeps the weight's transforms (Winograd's U, ...) for the
    next call, and the algorithm is chosen knowing that. (A weight cast to the input's dtype is another
    array: its transforms are then not kept.)"""
    spec, x, weight, bias = _conv_spec("conv", x, weight, bias, stride, padding, dilation, groups, "zeros",
                                       "channels_first")
    kept = weights if weights is not None and weights.weight is weight else None
    return _finish(_conv_forward(x, weight, bias, spec, weights=kept), spec)


def conv_vjp(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
             data_format="channels_first", output_mask=(True, True, True), algorithm=None):
    """Gradients of :func:`conv`: returns (grad_x, grad_weight, grad_bias or None).

    grad_x is the transposed convolution of grad_out with the same weight
    (a full correlation with the 180-degree rotated kernel, grad_out dilated
    by the stride); grad_weight is the correlation of the input with grad_out.
    ``output_mask`` (three bools, as PyTorch's ``convolution_backward``) skips
    the gradients not wanted; a skipped one is returned as None.
    """
    spec, x, weight, bias = _conv_spec("conv", x, weight, bias, stride, padding, dilation, groups,
                                       padding_mode, data_format, algorithm=algorithm)
    return _conv_grads(spec, x, weight, bias, grad_out, _output_mask("conv_vjp", output_mask))


def _conv_grads(spec, x, weight, bias, grad_out, mask, cols=None):
    need_x, need_w, need_b = mask
    g = _start_grad(spec, grad_out, (x.shape[0], weight.shape[0]) + spec.out, x.dtype)
    gx = gw = None
    if need_x or need_w:
        xp, pads = _padded_input(x, spec)
        gx, gw = core.backward(xp, weight, g, spec.stride, pads, spec.dilation, spec.groups, need_x, need_w,
                               cols=cols, algorithm=spec.algorithm)
        if gx is not None:
            gx = _finish(gx if spec.mode == "zeros" else pad_nd_vjp(gx, x.shape, spec.pads, spec.mode), spec)
    gb = None if bias is None or not need_b else g.sum(axis=(0, *range(2, g.ndim)))
    return gx, gw, gb


def _conv_taped(name, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
                data_format="channels_first", algorithm=None, need_w=True):
    """conv (or its alias ``name``) for autograd: (y, tape); ``_conv_taped_vjp(g, tape, mask)`` is conv_vjp.

    When grad_weight will be wanted (need_w) the tape keeps what the forward made that the weight
    gradient needs (im2col's columns or Winograd's transformed input), if the batch took one chunk (so
    it fits in the workspace), and the backward skips making it again.
    """
    n = int(name[-2]) if name[-1] == "d" else None
    spec, x, weight, bias = _conv_spec("conv", x, weight, bias, stride, padding, dilation, groups,
                                       padding_mode, data_format, n_expected=n, algorithm=algorithm)
    # a forward that keeps nothing (no weight gradient wanted) chooses its algorithm as an inference forward
    if need_w:
        y, cols = _conv_forward(x, weight, bias, spec, keep=True)
    else:
        y, cols = _conv_forward(x, weight, bias, spec), None
    return _finish(y, spec), (spec, x, weight, bias, cols)


def _conv_taped_vjp(grad_out, tape, output_mask=(True, True, True)):
    spec, x, weight, bias, cols = tape
    return _conv_grads(spec, x, weight, bias, grad_out, _output_mask("conv_vjp", output_mask), cols=cols)


def _output_mask(op, mask):
    if not (isinstance(mask, (tuple, list)) and len(mask) == 3):
        C.fail(op, "output_mask", "three bools (grad_x, grad_weight, grad_bias)", mask, TypeError)
    return tuple(bool(m) for m in mask)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
           data_format="channels_first", algorithm=None):
    """:func:`conv` for 1 spatial dim: x (N, C, L) or (C, L), weight (K, C/G, F)."""
    return _conv_n(1, x, weight, bias, stride, padding, dilation, groups, padding_mode, data_format, algorithm)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
           data_format="channels_first", algorithm=None):
    """:func:`conv` for 2 spatial dims: x (N, C, H, W) or (C, H, W), weight (K, C/G, FH, FW)."""
    return _conv_n(2, x, weight, bias, stride, padding, dilation, groups, padding_mode, data_format, algorithm)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
           data_format="channels_first", algorithm=None):
    """:func:`conv` for 3 spatial dims: x (N, C, D, H, W) or (C, D, H, W), weight (K, C/G, FD, FH, FW)."""
    return _conv_n(3, x, weight, bias, stride, padding, dilation, groups, padding_mode, data_format, algorithm)


def _conv_n(n, x, weight, bias, stride, padding, dilation, groups, padding_mode, data_format, algorithm):
    spec, x, weight, bias = _conv_spec("conv", x, weight, bias, stride, padding, dilation, groups,
                                       padding_mode, data_format, n_expected=n, algorithm=algorithm)
    return _finish(_conv_forward(x, weight, bias, spec), spec)


# ---------------------------------------------------------------- transposed


def _conv_transpose_spec(x, weight, bias, stride, padding, output_padding, groups, dilation, output_size,
                         data_format, n_expected=None, algorithm=None):
    op, n, x, weight, bias, unbatched, cl = _prepare("conv_transpose", x, weight, bias, n_expected, data_format)
    groups = _check_groups(op, groups, x.shape[1], None, weight.shape[0], x.shape, weight.shape, True)
    k_out = weight.shape[1] * groups
    _check_bias(op, bias, k_out)
    kernel = weight.shape[2:]
    stride = C.ntuple(op, "stride", stride, n, minimum=1)
    dilation = C.ntuple(op, "dilation", dilation, n, minimum=1)
    pads = C.padding_arg(op, padding, n, allow_strings=False)
    if output_size is not None:
        size = C.ntuple(op, "output_size", tuple(output_size), len(tuple(output_size)), minimum=1)
        size = size[-n:] if len(size) in (n + 1, n + 2) else size
        if len(size) != n:
            C.fail(op, "output_size", f"{n} spatial sizes (or the full shape)", output_size)
        base = shapes.conv_transpose_output_shape(x.shape[2:], kernel, stride, pads, 0, dilation, op=op)
        extra = tuple(s - b for s, b in zip(size, base))
        if any(e < 0 or e >= max(st, d) for e, st, d in zip(extra, stride, dilation)):
            hi = tuple(b + max(st, d) - 1 for b, st, d in zip(base, stride, dilation))
            C.fail(op, "output_size", f"between {base} and {hi} for this input, stride and padding", output_size)
        output_padding = extra
    out = shapes.conv_transpose_output_shape(x.shape[2:], kernel, stride, pads, output_padding, dilation, op=op)
    full = tuple((i - 1) * s + d * (f - 1) + 1 for i, f, s, d in zip(x.shape[2:], kernel, stride, dilation))
    # the algorithm of the convolution whose input gradient this is: input (N, K, *full), no padding
    algorithm = _plan.check(op, algorithm, (x.shape[0], k_out) + full, weight, stride, ((0, 0),) * n, dilation, groups)
    spec = _Spec(op, stride, pads, dilation, groups, "zeros", out, unbatched, cl, algorithm)
    C.check_alloc(op, C.nbytes((x.shape[0], k_out) + out, x.dtype) + C.nbytes((x.shape[0], k_out) + full, x.dtype),
                  "output and uncropped output")
    return spec, x, weight, bias


def _full_shape(x, weight, spec):
    return tuple((i - 1) * s + d * (k - 1) + 1
                 for i, k, s, d in zip(x.shape[2:], weight.shape[2:], spec.stride, spec.dilation))


def _crop_pairs(full, spec):
    """pad_nd pairs that turn the un-padded full output into the final output (negative = crop)."""
    return tuple((-lo, o + lo - f) for f, o, (lo, _) in zip(full, spec.out, spec.pads))


def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                   output_size=None, data_format="channels_first", algorithm=None):
    """N-d transposed convolution (the gradient of :func:`conv` with respect to its input).

    Each input cell scatters ``x[n, c, i] * weight[c, k, :]`` into the output
    at ``i*S + f*D - P_lo``.

    Parameters
    ----------
    x : array (N, C, *spatial) or (C, *spatial).
    weight : array (C, K/G, *kernel_size).
    padding : int, ints or (lo, hi) pairs: cells cropped from each side.
    output_padding : extra cells at the end of each dim (< max(S, D)).
    output_size : the wanted spatial size; chooses output_padding.
    algorithm : as in :func:`conv`, for the convolution whose input gradient this is.

    Shape
    -----
    ``out = (W - 1)*S - P_lo - P_hi + D*(F-1) + output_padding + 1``.

    >>> import numpy as np
    >>> conv_transpose(np.ones((1, 1, 2)), np.ones((1, 1, 3)), stride=2)
    array([[[1., 1., 2., 1., 1.]]])
    """
    spec, x, weight, bias = _conv_transpose_spec(x, weight, bias, stride, padding, output_padding, groups,
                                                 dilation, output_size, data_format, algorithm=algorithm)
    return _finish(_conv_transpose_forward(x, weight, bias, spec), spec)


def _conv_transpose_forward(x, weight, bias, spec):
    if _subpixel_ok(x.shape, weight, spec):
        return _subpixel_forward(x, weight, bias, spec)
    full = _full_shape(x, weight, spec)
    no_pad = ((0, 0),) * len(full)
    y = core.input_grad(x, weight, full, spec.stride, no_pad, spec.dilation, spec.groups, spec.algorithm)
    y = pad_nd(y, _crop_pairs(full, spec), "zeros")
    if bias is not None:
        y = y + bias.reshape((-1,) + (1,) * len(full))
    return np.ascontiguousarray(y)


# Transposed convolutions with a stride can run as stride-1 convolutions, one per output phase (sub-pixel;
# see shapes.subpixel_phases): the phases are the filters of one convolution, whose outputs are then
# interleaved into y. Against the input gradient of the strided convolution (columns, then their overlapping
# sums), ms, before vs sub-pixel, forward then vjp (both gradients): 4x4/2 64->32 at 28x28, batch 8: 6.47 vs
# 3.85, 7.53 vs 7.82; 3x3/2 (output_padding 1): 4.88 vs 3.83, 5.15 vs 7.87 (the 3x3 taps padded to 4x4);
# 2x2/2 128->64: 6.54 vs 3.82, 8.15 vs 6.04; 1-D 4/2 32->16 at 1024, batch 16: 2.64 vs 2.08, 3.35 vs 3.11;
# 3-D 2/2 32->16 at 8x16x16, batch 2: 1.58 vs 0.86, 1.98 vs 1.21; but at batch 1, 4x4/2 256->128 at 14x14
# (225 phase cells, 512 phase filters): 1.68 vs 3.01, 2.59 vs 6.59. So the forward goes sub-pixel where the
# phases' convolution has at least as many output cells as filters, the vjp where every phase has one tap.
def _subpixel_applies(weight, spec):
    """Sub-pixel can compute a strided, undilated, ungrouped transposed convolution whose kernel is at least
    its stride in every dim (smaller kernels leave whole phases empty), unless an algorithm is forced."""
    return (spec.algorithm is None and spec.groups == 1 and any(s > 1 for s in spec.stride)
            and all(d == 1 for d in spec.dilation) and all(f >= s for f, s in zip(weight.shape[2:], spec.stride)))


def _subpixel_ok(x_shape, weight, spec, vjp=False):
    """Where sub-pixel applies, whether this pass takes it (see above)."""
    kernel, stride = weight.shape[2:], spec.stride
    if not _subpixel_applies(weight, spec):
        return False
    if vjp:
        return tuple(kernel) == tuple(stride)
    cells = x_shape[0] * math.prod(p[2] for p in shapes.subpixel_phases(x_shape[2:], kernel, stride, spec.pads,
                                                                        spec.out))
    return cells >= math.prod(stride) * weight.shape[1]


def _subpixel_weight(weight, spec, phases):
    """V (prod(S)*K, C, *E): the phases' filters, phase-major: V[(a..), k, c, e..] = w[c, k, a + S*(E-1-e)]
    (zero past the kernel)."""
    c, k = weight.shape[:2]
    n = len(phases)
    es = [p[0] for p in phases]
    wp = np.zeros((c, k) + tuple(e * s for e, s in zip(es, spec.stride)), weight.dtype)
    wp[(slice(None), slice(None)) + tuple(slice(0, f) for f in weight.shape[2:])] = weight
    wp = wp.reshape((c, k) + sum(((e, s) for e, s in zip(es, spec.stride)), ()))      # tap e*S + a -> (e, a)
    wp = wp[(slice(None), slice(None)) + (slice(None, None, -1), slice(None)) * n]   # e -> E-1-e
    order = [3 + 2 * i for i in range(n)] + [1, 0] + [2 + 2 * i for i in range(n)]
    return np.ascontiguousarray(wp.transpose(order)).reshape((-1, c) + tuple(es))


def _subpixel_weight_grad(gv, weight, spec, phases):
    """grad_w (C, K, *F) from the phases' filters' gradient gV, the adjoint of _subpixel_weight."""
    c, k = weight.shape[:2]
    n = len(phases)
    es = [p[0] for p in phases]
    g = gv.reshape(tuple(spec.stride) + (k, c) + tuple(es))                         # (a.., K, C, e..)
    g = g[(slice(None),) * (n + 2) + (slice(None, None, -1),) * n]
    order = [n + 1, n] + sum(([n + 2 + i, i] for i in range(n)), [])                # (C, K, e, a, ...)
    g = g.transpose(order).reshape((c, k) + tuple(e * s for e, s in zip(es, spec.stride)))
    return np.ascontiguousarray(g[(slice(None), slice(None)) + tuple(slice(0, f) for f in weight.shape[2:])])


def _subpixel_forward(x, weight, bias, spec):
    phases = shapes.subpixel_phases(x.shape[2:], weight.shape[2:], spec.stride, spec.pads, spec.out)
    n, k, nd = x.shape[0], weight.shape[1], len(phases)
    v = _subpixel_weight(weight, spec, phases)
    vb = None if bias is None else np.tile(bias.astype(x.dtype, copy=False), math.prod(spec.stride))
    q = tuple(p[2] for p in phases)
    yp = core.forward(x, v, (1,) * nd, tuple(p[1] for p in phases), (1,) * nd, 1, q, bias=vb)
    yp = yp.reshape((n,) + tuple(spec.stride) + (k,) + q)
    y = np.empty((n, k) + tuple(spec.out), x.dtype)
    for a, out_sl, ph_sl in _phase_slices(phases, spec.stride):
        y[(slice(None), slice(None)) + out_sl] = yp[(slice(None),) + a + (slice(None),) + ph_sl]
    return y


def _phase_slices(phases, stride):
    """For every phase that reaches the output: (its index tuple, its output cells, its phase-plane cells)."""
    for combo in itertools.product(*(p[3] for p in phases)):
        yield (tuple(r[0] for r in combo), tuple(slice(r[1], None, s) for r, s in zip(combo, stride)),
               tuple(slice(r[2], r[2] + r[3]) for r in combo))


def _subpixel_vjp(g, x, weight, spec, need_x, need_w):
    """(grad_x, grad_w) of the sub-pixel forward: grad_out split into its phases (zero where the output was
    cropped), then the phases' convolution's gradients."""
    phases = shapes.subpixel_phases(x.shape[2:], weight.shape[2:], spec.stride, spec.pads, spec.out)
    n, k, nd = x.shape[0], weight.shape[1], len(phases)
    q = tuple(p[2] for p in phases)
    gp = np.zeros((n,) + tuple(spec.stride) + (k,) + q, g.dtype)
    for a, out_sl, ph_sl in _phase_slices(phases, spec.stride):
        gp[(slice(None),) + a + (slice(None),) + ph_sl] = g[(slice(None), slice(None)) + out_sl]
    v = _subpixel_weight(weight, spec, phases)
    gx, gv = core.backward(x, v, gp.reshape((n, -1) + q), (1,) * nd, tuple(p[1] for p in phases), (1,) * nd, 1,
                           need_x=need_x, need_w=need_w)
    return gx, (_subpixel_weight_grad(gv, weight, spec, phases) if need_w else None)


def conv_transpose_vjp(grad_out, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1, output_size=None, data_format="channels_first", output_mask=(True, True, True),
                       algorithm=None):
    """Gradients of :func:`conv_transpose`: (grad_x, grad_weight, grad_bias or None).

    grad_x is the ordinary convolution of grad_out with the same weight;
    ``output_mask`` skips unwanted gradients as in :func:`conv_vjp`.
    """
    spec, x, weight, bias = _conv_transpose_spec(x, weight, bias, stride, padding, output_padding, groups,
                                                 dilation, output_size, data_format, algorithm=algorithm)
    need_x, need_w, need_b = _output_mask("conv_transpose_vjp", output_mask)
    g = _start_grad(spec, grad_out, (x.shape[0], weight.shape[1] * spec.groups) + spec.out, x.dtype)
    if (need_x or need_w) and _subpixel_ok(x.shape, weight, spec, vjp=True):
        gx, gw = _subpixel_vjp(g, x, weight, spec, need_x, need_w)
        gb = None if bias is None or not need_b else g.sum(axis=(0, *range(2, g.ndim)))
        return (_finish(gx, spec) if need_x else None), gw, gb
    full = _full_shape(x, weight, spec)
    g_full = pad_nd(g, tuple((-a, -b) for a, b in _crop_pairs(full, spec)), "zeros")
    no_pad = ((0, 0),) * len(full)
    gx = gw = kept = None
    if need_x:
        # grad_x is the convolution of g with the weight; made as a training forward, it keeps its columns of g
        # (or transforms), which the weight gradient then reads instead of making them again
        gx = core.forward(g_full, weight, spec.stride, no_pad, spec.dilation, spec.groups, x.shape[2:],
                          keep=need_w, algorithm=spec.algorithm)
        gx, kept = gx if need_w else (gx, None)
        gx = _finish(gx, spec)
    if need_w:
        _, gw = core.backward(g_full, weight, x, spec.stride, no_pad, spec.dilation, spec.groups, need_x=False,
                              cols=kept)
    gb = None if bias is None or not need_b else g.sum(axis=(0, *range(2, g.ndim)))
    return gx, gw, gb


def _conv_transpose_n(n):
    def f(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, output_size=None,
          data_format="channels_first", algorithm=None):
        spec, x, weight, bias = _conv_transpose_spec(x, weight, bias, stride, padding, output_padding, groups,
                                                     dilation, output_size, data_format, n_expected=n,
                                                     algorithm=algorithm)
        return _finish(_conv_transpose_forward(x, weight, bias, spec), spec)
    f.__name__ = f.__qualname__ = f"conv_transpose{n}d"
    f.__doc__ = f":func:`conv_transpose` for {n} spatial dim{'s' if n > 1 else ''}; weight (C, K/G, *kernel)."
    return f


conv_transpose1d = _conv_transpose_n(1)
conv_transpose2d = _conv_transpose_n(2)
conv_transpose3d = _conv_transpose_n(3)

def conv_algorithms(x_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1):
    """Which algorithms can compute this convolution and which one each pass would use.

    Returns ``{"applicable": [...], "forward": name, "forward_autograd": name, "forward_fixed_weight":
    name, "backward": name, "by_group": bool}`` ("forward_autograd" is the forward of a Tensor that will
    need the weight gradient: it keeps what the weight gradient needs, Winograd's transformed input or
    im2col's columns; "forward_fixed_weight" that of a weight that never changes, an ONNX session's, whose
    transforms are made once and kept; "by_group": wide groups run one at a time, each a dense convolution,
    and the names are those of one group's passes). In autotune mode (:func:`set_autotune`) the choice is
    measured instead, on the first call of each shape.

    >>> conv_algorithms((8, 64, 56, 56), (64, 64, 3, 3), padding=1)["applicable"]
    ['implicit', 'winograd', 'im2col']
    >>> conv_algorithms((8, 512, 7, 7), (512, 512, 3, 3), padding=1)["forward"]
    'im2col'
    >>> conv_algorithms((8, 512, 7, 7), (512, 512, 3, 3), padding=1)["forward_fixed_weight"]
    'winograd'
    >>> conv_algorithms((8, 64, 56, 56), (64, 64, 3, 3), padding=1)["forward_autograd"]
    'winograd'
    >>> conv_algorithms((8, 144, 56, 56), (144, 1, 3, 3), padding=1, groups=144)["applicable"]
    ['direct', 'im2col']
    """
    op = "conv_algorithms"
    x_shape = C.ntuple(op, "x_shape", tuple(x_shape), len(tuple(x_shape)), minimum=1)
    w = np.broadcast_to(np.zeros((), np.float32), C.ntuple(op, "weight_shape", tuple(weight_shape),
                                                           len(tuple(weight_shape)), minimum=1))
    spec, x, w, _ = _conv_spec("conv", np.broadcast_to(np.zeros((), np.float32), x_shape), w, None, stride, padding,
                               dilation, groups, "zeros", "channels_first")
    args = (x.shape, w, spec.stride, spec.pads, spec.dilation, spec.groups, spec.out)
    # wide groups run one at a time, each a dense convolution (not with a weight whose transforms are kept)
    by_group = core._split_groups(x.shape, w, spec.groups, spec.out, None)
    each = (((x.shape[0], w.shape[1]) + x.shape[2:], w[:w.shape[0] // spec.groups]) + args[2:5] + (1, spec.out)
            if by_group else args)
    return {"applicable": _plan.applicable(*args[:-1]),
            "forward": _plan.heuristic("forward", *each),
            "forward_autograd": _plan.heuristic("forward", *each, keep=True),
            "forward_fixed_weight": _plan.heuristic("forward", *args, cached=True),
            "backward": _plan.heuristic("backward", *each),
            "by_group": by_group}


__all__ = ["conv", "conv1d", "conv2d", "conv3d", "conv_vjp", "conv_transpose", "conv_transpose1d",
           "conv_transpose2d", "conv_transpose3d", "conv_transpose_vjp"]
