"""Shape arithmetic of one convolution, transposed convolution or pooling layer, explained.

Each function returns an object holding the numbers as attributes; ``str()``
gives the explanation a learner reads. The sizes themselves come from
:mod:`convkit.shapes` (the one place the arithmetic lives); this module only
fills the formulas in with the user's numbers.

Input shapes are N x C x spatial or C x spatial, with 1-3 spatial dims. How
many spatial dims there are comes from ``spatial_dims`` when given, else from
the length of a tuple ``kernel_size``, else (an int kernel size) from the
number of sizes, 2-D first: 2 -> C x L; 3 -> C x H x W; 4 -> N x C x H x W;
5 -> N x C x D x H x W. So a batched 1-d input (N x C x L) or an unbatched 3-d
one (C x D x H x W) needs a 1- or 3-element kernel_size, or spatial_dims.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import _checks as C
from .. import shapes

DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def fmt_shape(shape):
    """``(1, 32, 28, 28)`` -> ``"1x32x28x28"``."""
    return "x".join(str(int(s)) for s in shape)


def parse_shape(text, op="explain", name="input"):
    """Sizes joined by "x" or "," (``"1x192x28x28"``, ``"1,192,28,28"``) as a tuple of ints.

    >>> parse_shape("1x192x28x28")
    (1, 192, 28, 28)
    >>> parse_shape("3, 32, 32")
    (3, 32, 32)
    """
    if isinstance(text, (tuple, list)):
        parts = list(text)
    else:
        parts = str(text).lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{op}: {name} must be positive sizes joined by x or ',', as 1x192x28x28; "
                         f"got {name}={text!r}.")
    return shape


def split_input(op, input_shape, kernel_size, spatial_dims=None, data_format="channels_first"):
    """(N or None, C, spatial sizes) of an input shape; see the module docstring for the rule."""
    shape = parse_shape(input_shape, op)
    fmt = C.data_format(op, data_format)
    if spatial_dims is not None:
        n = C.as_int(op, "spatial_dims", spatial_dims, minimum=1)
    elif isinstance(kernel_size, (tuple, list)):
        n = len(kernel_size)
    else:
        n = {2: 1, 3: 2, 4: 2, 5: 3}.get(len(shape), 0)
    if not 1 <= n <= 3 or len(shape) not in (n + 1, n + 2):
        raise ValueError(f"{op}: input must be N x C x spatial or C x spatial with 1-3 spatial dims"
                         f"{'' if not n else f' ({n} here, from kernel_size or spatial_dims)'}; "
                         f"got input={fmt_shape(shape)}.")
    batch = shape[0] if len(shape) == n + 2 else None
    rest = shape[1:] if batch is not None else shape
    if fmt == "channels_last":
        return batch, rest[-1], tuple(rest[:-1])
    return batch, rest[0], tuple(rest[1:])


def layout_shape(batch, channels, spatial, data_format):
    """The full shape in the given layout (without N when ``batch`` is None)."""
    body = (*spatial, channels) if data_format == "channels_last" else (channels, *spatial)
    return body if batch is None else (batch, *body)


def layout_names(batched, n, data_format, channel="C"):
    names = DIM_NAMES[n]
    body = (*names, channel) if data_format == "channels_last" else (channel, *names)
    return " x ".join((("N",) if batched else ()) + body)


def _prod_text(values):
    return "*".join(str(v) for v in values)


def _num(v):
    return f"{v:,}"


@dataclass(frozen=True)
class DimArithmetic:
    """One spatial dim: input size W, kernel F, stride S, dilation D, padding (lo, hi), output size."""

    name: str
    size: int
    kernel: int
    stride: int
    dilation: int
    pad: tuple
    out: int
    text: str


def _conv_dim(name, w, f, s, d, pad, out, ceil_mode=False):
    lo, hi = pad
    span = w + lo + hi - d * (f - 1) - 1
    rnd = "ceil" if ceil_mode else "floor"
    text = (f"{name}: {rnd}(({w} + {lo} + {hi} - {d}*({f}-1) - 1)/{s}) + 1 = {rnd}({span}/{s}) + 1 = {out}")
    if span % s and not ceil_mode:
        text += (f"   ({span}/{s} = {span / s:g} rounds down: the last {span % s} cell(s) of the padded "
                 f"input are never read)")
    elif ceil_mode and out - 1 != -(-span // s):
        text += "   (the last window would start in the right padding, so it is dropped)"
    return DimArithmetic(name, w, f, s, d, (lo, hi), out, text)


def _padding_note(padding, pads, names):
    if not isinstance(padding, str):
        return None
    per = ", ".join(f"{nm} ({lo}, {hi})" for nm, (lo, hi) in zip(names, pads))
    rule = {"valid": "no padding", "same": "output ceil(W/S); an odd total puts the extra cell at the end",
            "same_lower": "output ceil(W/S); an odd total puts the extra cell at the start"}[padding.lower()]
    return f'padding "{padding}" ({rule}) resolves to (P_lo, P_hi): {per}'


@dataclass
class ConvExplanation:
    """What ``explain.conv`` computed; ``str()`` gives the explanation."""

    input_shape: tuple
    output_shape: tuple
    data_format: str
    batched: bool
    in_channels: int
    out_channels: int
    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    weight_shape: tuple
    weight_shape_tf: tuple
    bias_shape: tuple
    params: int
    macs: int
    flops: int
    receptive_field: shapes.ReceptiveField
    dims: list = field(default_factory=list)
    padding_note: str = None
    im2col: str = ""
    pointwise: str = None

    def __str__(self):
        n = len(self.kernel_size)
        c, k, g, ks = self.in_channels, self.out_channels, self.groups, self.kernel_size
        nb = self.input_shape[0] if self.batched else 1
        ks_x = fmt_shape(ks)
        lines = [f"conv: input {fmt_shape(self.input_shape)} ({layout_names(self.batched, n, self.data_format)})"
                 f" -> output {fmt_shape(self.output_shape)} "
                 f"({layout_names(self.batched, n, self.data_format, 'K')})", "",
                 "output size per spatial dim: out = floor((W + P_lo + P_hi - D*(F-1) - 1)/S) + 1"]
        if self.padding_note:
            lines.append("  " + self.padding_note)
        lines += ["  " + d.text for d in self.dims]
        lines += ["", "channels, filters and kernels:",
                  f"  input channels C = {c}, output channels K = {k}, groups G = {g}",
                  f"  {k} filters, each C/G x {' x '.join('k' + d for d in DIM_NAMES[n])} = {c // g}x{ks_x}: a filter "
                  f"spans the {c // g} input channel(s) of its group and makes one output channel",
                  f"  a kernel is one {ks_x} slice of a filter, one per input channel: "
                  f"{k}*{c // g} = {_num(k * (c // g))} kernels of {ks_x}",
                  f"  weight, PyTorch/ONNX order (K, C/G, {', '.join('k' + d for d in DIM_NAMES[n])}): "
                  f"{self.weight_shape}",
                  f"  kernel, TF/Keras order ({', '.join('k' + d for d in DIM_NAMES[n])}, C/G, K): "
                  f"{self.weight_shape_tf}",
                  f"  bias: {self.bias_shape if self.bias_shape else 'none'}",
                  f"  parameters: {k}*{c // g}*{_prod_text(ks)}"
                  + (f" + {k} = {_num(self.params - k)} + {k}" if self.bias_shape else "")
                  + f" = {_num(self.params)}",
                  f"  MACs: N*K*{'*'.join('O' + d for d in DIM_NAMES[n])} * C/G*{'*'.join('k' + d for d in DIM_NAMES[n])}"
                  f" = {nb}*{k}*{_prod_text(self._out_spatial())} * {c // g}*{_prod_text(ks)} = {_num(self.macs)};"
                  f" FLOPs = 2 x MACs = {_num(self.flops)}",
                  "", "im2col: the convolution as one matrix product", "  " + self.im2col]
        if self.pointwise:
            lines.append("  " + self.pointwise)
        rf, jump = self.receptive_field.size, self.receptive_field.jump
        lines += ["", f"receptive field of one output cell: {fmt_shape(rf)} input cells (D*(F-1) + 1 per dim); "
                      f"neighbouring output cells are {fmt_shape(jump)} input cells apart (the stride)"]
        return "\n".join(lines)

    def _out_spatial(self):
        return tuple(d.out for d in self.dims)


def _im2col_text(nb, c, k, g, ks, out_sp, batched):
    n_rows = nb * math.prod(out_sp)
    depth = (c // g) * math.prod(ks)
    rows = f"(N*{'*'.join('O' + d for d in DIM_NAMES[len(ks)])} = {nb}*{_prod_text(out_sp)} = {_num(n_rows)})"
    cols = f"(C/G*{'*'.join('k' + d for d in DIM_NAMES[len(ks)])} = {c // g}*{_prod_text(ks)} = {_num(depth)})"
    if g == 1:
        return f"{rows} x {cols} @ {depth} x {k} (K) = {_num(n_rows)} x {k}"
    return (f"G = {g} products, one per group: {rows} x {cols} @ {depth} x {k // g} (K/G) "
            f"= {_num(n_rows)} x {k // g} each, side by side {_num(n_rows)} x {k}")


def _pointwise_text(c, k, g, spatial, out_sp, pads, stride):
    hw = math.prod(spatial)
    names = "*".join(DIM_NAMES[len(spatial)])
    if g != 1:
        return (f"1x1 kernel: each output pixel mixes the {c // g} channels of its group, per group "
                f"(pixels, C/G) @ (C/G, K/G) = ({_num(hw)}, {c // g}) @ ({c // g}, {k // g})")
    if any(lo or hi for lo, hi in pads) or any(s != 1 for s in stride):
        o = math.prod(out_sp)
        return (f"1x1 kernel: each output pixel is a dot product across channels of one (padded, strided) input "
                f"pixel: (pixels, C) @ (C, K) = ({_num(o)}, {c}) @ ({c}, {k}) = ({_num(o)}, {k}) per image")
    return (f"1x1 kernel: each output pixel is a dot product across channels, so the layer is (H*W, C) @ (C, K): "
            f"({hw}, {c}) @ ({c}, {k}) = ({hw}, {k}) per image, with {names} = {_prod_text(spatial)} = {hw}")


def conv(input_shape, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
         strict=False, data_format="channels_first", spatial_dims=None):
    """Explain the shapes, weights, cost, im2col view and receptive field of one convolution.

    ``input_shape`` is N x C x spatial or C x spatial (a tuple or a string
    like ``"1x192x28x28"``); padding is an int, ints, (lo, hi) pairs, "valid",
    "same" or "same_lower". ``strict=True`` makes a stride that does not tile
    the padded input an error showing the arithmetic.

    Shape
    -----
    ``out = floor((W + P_lo + P_hi - D*(F-1) - 1)/S) + 1`` per spatial dim.

    >>> e = conv("1x192x28x28", 32, 1)
    >>> e.output_shape, e.weight_shape, e.weight_shape_tf, e.params, e.macs
    ((1, 32, 28, 28), (32, 192, 1, 1), (1, 1, 192, 32), 6176, 4816896)
    """
    op = "explain conv"
    batch, c, spatial = split_input(op, input_shape, kernel_size, spatial_dims, data_format)
    n = len(spatial)
    k = C.as_int(op, "out_channels", out_channels, minimum=1)
    g = C.as_int(op, "groups", groups, minimum=1)
    if c % g:
        raise ValueError(f"{op}: groups must divide in_channels; got in_channels={c}, groups={g}.")
    if k % g:
        raise ValueError(f"{op}: groups must divide out_channels; got out_channels={k}, groups={g}.")
    ks = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    st = C.ntuple(op, "stride", stride, n, minimum=1)
    dl = C.ntuple(op, "dilation", dilation, n, minimum=1)
    pads = shapes.resolve_padding(padding, spatial, ks, st, dl, op=op)
    out_sp = shapes.conv_output_shape(spatial, ks, st, padding, dl, strict=strict, op=op)
    fmt = C.data_format(op, data_format)
    nb = 1 if batch is None else batch
    params = k * (c // g) * math.prod(ks) + (k if bias else 0)
    macs = nb * k * math.prod(out_sp) * (c // g) * math.prod(ks)
    dims = [_conv_dim(*a) for a in zip(DIM_NAMES[n], spatial, ks, st, dl, pads, out_sp)]
    return ConvExplanation(
        input_shape=layout_shape(batch, c, spatial, fmt), output_shape=layout_shape(batch, k, out_sp, fmt),
        data_format=fmt, batched=batch is not None, in_channels=c, out_channels=k, kernel_size=ks, stride=st,
        padding=pads, dilation=dl, groups=g, weight_shape=(k, c // g, *ks), weight_shape_tf=(*ks, c // g, k),
        bias_shape=(k,) if bias else (), params=params, macs=macs, flops=2 * macs,
        receptive_field=shapes.receptive_field([{"kernel_size": ks, "stride": st, "dilation": dl}], ndim=n),
        dims=dims, padding_note=_padding_note(padding, pads, DIM_NAMES[n]),
        im2col=_im2col_text(nb, c, k, g, ks, out_sp, batch is not None),
        pointwise=_pointwise_text(c, k, g, spatial, out_sp, pads, st) if all(f == 1 for f in ks) else None)


# ---------------------------------------------------------------- transposed convolution
def _gather_count(f, s, d):
    """Most kernel taps that land on one output cell of a transposed conv (per dim)."""
    return max(sum(1 for t in range(f) if (r - t * d) % s == 0) for r in range(s))


@dataclass
class ConvTransposeExplanation:
    """What ``explain.conv_transpose`` computed; ``str()`` gives the explanation."""

    input_shape: tuple
    output_shape: tuple
    data_format: str
    batched: bool
    in_channels: int
    out_channels: int
    kernel_size: tuple
    stride: tuple
    padding: tuple
    output_padding: tuple
    dilation: tuple
    groups: int
    weight_shape: tuple
    weight_shape_tf: tuple
    bias_shape: tuple
    params: int
    macs: int
    flops: int
    dims: list = field(default_factory=list)
    gathers: tuple = ()

    def __str__(self):
        n = len(self.kernel_size)
        c, k, g, ks = self.in_channels, self.out_channels, self.groups, self.kernel_size
        nb = self.input_shape[0] if self.batched else 1
        in_sp = tuple(d.size for d in self.dims)
        kd = ", ".join("k" + d for d in DIM_NAMES[n])
        lines = [f"conv_transpose: input {fmt_shape(self.input_shape)} "
                 f"({layout_names(self.batched, n, self.data_format)}) -> output {fmt_shape(self.output_shape)} "
                 f"({layout_names(self.batched, n, self.data_format, 'K')})", "",
                 "output size per spatial dim: out = (W - 1)*S - P_lo - P_hi + D*(F-1) + output_padding + 1"]
        lines += ["  " + d.text for d in self.dims]
        depth = (k // g) * math.prod(ks)
        rows = nb * math.prod(in_sp)
        lines += ["", "channels, filters and kernels:",
                  f"  input channels C = {c}, output channels K = {k}, groups G = {g}",
                  f"  each input channel owns a {k // g}x{fmt_shape(ks)} stamp (K/G x kernel) that it scales and "
                  f"adds into the output",
                  f"  weight, PyTorch/ONNX order (C, K/G, {kd}): {self.weight_shape}",
                  f"  kernel, TF/Keras Conv{n}DTranspose order ({kd}, K/G, C): {self.weight_shape_tf}",
                  f"  bias: {self.bias_shape if self.bias_shape else 'none'}",
                  f"  parameters: {c}*{k // g}*{_prod_text(ks)}"
                  + (f" + {k}" if self.bias_shape else "") + f" = {_num(self.params)}",
                  f"  MACs: N*{'*'.join(DIM_NAMES[n])}*C * K/G*{'*'.join('k' + d for d in DIM_NAMES[n])} = "
                  f"{nb}*{_prod_text(in_sp)}*{c} * {k // g}*{_prod_text(ks)} = {_num(self.macs)}; "
                  f"FLOPs = 2 x MACs = {_num(self.flops)}",
                  "", "as matrix products (the gradient of a convolution, run forwards):",
                  f"  (N*{'*'.join(DIM_NAMES[n])} = {nb}*{_prod_text(in_sp)} = {_num(rows)}) x (C/G = {c // g}) @ {c // g} x "
                  f"(K/G*{'*'.join('k' + d for d in DIM_NAMES[n])} = {_num(depth)})"
                  + (f", per group (G = {g})" if g > 1 else "")
                  + f" = {_num(rows)} x {_num(depth)} columns, then col2im (fold) adds the overlapping stamps "
                  f"into {fmt_shape(self.output_shape[-n:] if self.data_format == 'channels_first' else self.output_shape[-n - 1:-1])}",
                  "  equivalently a stride-1 convolution: insert S-1 zeros between input cells, pad "
                  "D*(F-1)-P_lo before and D*(F-1)-P_hi+output_padding after, and correlate with the kernel "
                  "rotated 180 degrees (C and K swapped):"]
        for d, op_ in zip(self.dims, self.output_padding):
            lo, hi = d.pad
            fe = d.dilation * (d.kernel - 1)
            lines.append(f"    {d.name}: {d.size} -> {(d.size - 1) * d.stride + 1} with zeros, padded by "
                         f"{fe - lo} and {fe - hi + op_} -> {(d.size - 1) * d.stride + 1 + 2 * fe - lo - hi + op_}, "
                         f"window {fe + 1} -> {d.out}")
        lines += ["", f"each output cell gathers at most {fmt_shape(self.gathers)} input cells; "
                      f"each input cell spreads over {fmt_shape(tuple(d.dilation * (d.kernel - 1) + 1 for d in self.dims))}"
                      f" output cells, neighbours {fmt_shape(self.stride)} apart (the stride)"]
        return "\n".join(lines)


def conv_transpose(input_shape, out_channels, kernel_size, stride=1, padding=0, output_padding=0, dilation=1,
                   groups=1, bias=True, data_format="channels_first", spatial_dims=None):
    """Explain one transposed convolution (PyTorch's ConvTranspose, ONNX ConvTranspose).

    Shape
    -----
    ``out = (W - 1)*S - P_lo - P_hi + D*(F-1) + output_padding + 1`` per spatial dim.

    >>> e = conv_transpose("1x64x14x14", 32, 4, stride=2, padding=1)
    >>> e.output_shape, e.weight_shape, e.params
    ((1, 32, 28, 28), (64, 32, 4, 4), 32800)
    """
    op = "explain conv_transpose"
    batch, c, spatial = split_input(op, input_shape, kernel_size, spatial_dims, data_format)
    n = len(spatial)
    k = C.as_int(op, "out_channels", out_channels, minimum=1)
    g = C.as_int(op, "groups", groups, minimum=1)
    if c % g or k % g:
        raise ValueError(f"{op}: groups must divide in_channels and out_channels; got in_channels={c}, "
                         f"out_channels={k}, groups={g}.")
    ks = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    st = C.ntuple(op, "stride", stride, n, minimum=1)
    dl = C.ntuple(op, "dilation", dilation, n, minimum=1)
    pads = C.padding_arg(op, padding, n, allow_strings=False)
    opad = C.ntuple(op, "output_padding", output_padding, n, minimum=0)
    out_sp = shapes.conv_transpose_output_shape(spatial, ks, st, pads, opad, dl, op=op)
    fmt = C.data_format(op, data_format)
    nb = 1 if batch is None else batch
    macs = nb * math.prod(spatial) * c * (k // g) * math.prod(ks)
    dims = []
    for name, w, f, s, d, (lo, hi), o, out in zip(DIM_NAMES[n], spatial, ks, st, dl, pads, opad, out_sp):
        text = f"{name}: ({w} - 1)*{s} - {lo} - {hi} + {d}*({f}-1) + {o} + 1 = {out}"
        dims.append(DimArithmetic(name, w, f, s, d, (lo, hi), out, text))
    return ConvTransposeExplanation(
        input_shape=layout_shape(batch, c, spatial, fmt), output_shape=layout_shape(batch, k, out_sp, fmt),
        data_format=fmt, batched=batch is not None, in_channels=c, out_channels=k, kernel_size=ks, stride=st,
        padding=pads, output_padding=opad, dilation=dl, groups=g, weight_shape=(c, k // g, *ks),
        weight_shape_tf=(*ks, k // g, c), bias_shape=(k,) if bias else (),
        params=c * (k // g) * math.prod(ks) + (k if bias else 0), macs=macs, flops=2 * macs, dims=dims,
        gathers=tuple(_gather_count(f, s, d) for f, s, d in zip(ks, st, dl)))


# ---------------------------------------------------------------- pooling
@dataclass
class PoolExplanation:
    """What ``explain.pool`` computed; ``str()`` gives the explanation."""

    kind: str
    input_shape: tuple
    output_shape: tuple
    data_format: str
    batched: bool
    channels: int
    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    ceil_mode: bool
    ops: int
    receptive_field: shapes.ReceptiveField
    dims: list = field(default_factory=list)
    padding_note: str = None

    def __str__(self):
        n = len(self.kernel_size)
        rnd = "ceil" if self.ceil_mode else "floor"
        what = {"max": "comparisons", "avg": "additions (and one division per output)"}[self.kind]
        lines = [f"{self.kind}_pool: input {fmt_shape(self.input_shape)} "
                 f"({layout_names(self.batched, n, self.data_format)}) -> output {fmt_shape(self.output_shape)}",
                 "", f"output size per spatial dim: out = {rnd}((W + P_lo + P_hi - D*(F-1) - 1)/S) + 1 "
                     f"(stride defaults to the kernel size)"]
        if self.padding_note:
            lines.append("  " + self.padding_note)
        lines += ["  " + d.text for d in self.dims]
        w = math.prod(self.kernel_size)
        lines += ["", f"channels: pooling works on each of the {self.channels} channels alone, so C stays "
                      f"{self.channels}; it has no parameters",
                  f"each output is the {'maximum' if self.kind == 'max' else 'mean'} of a {fmt_shape(self.kernel_size)}"
                  f" window ({w} values): {w - 1} {what} per output, {_num(self.ops)} in all",
                  f"receptive field of one output cell: {fmt_shape(self.receptive_field.size)} input cells; "
                  f"neighbouring output cells are {fmt_shape(self.receptive_field.jump)} input cells apart"]
        return "\n".join(lines)


def pool(input_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, kind="max", strict=False,
         data_format="channels_first", spatial_dims=None):
    """Explain one max or average pooling layer (stride defaults to kernel_size).

    Shape
    -----
    ``out = floor((W + P_lo + P_hi - D*(F-1) - 1)/S) + 1`` per spatial dim (ceil with ``ceil_mode``).

    >>> pool("1x64x28x28", 2).output_shape
    (1, 64, 14, 14)
    """
    op = "explain pool"
    if kind not in ("max", "avg"):
        C.fail(op, "kind", "'max' or 'avg'", kind)
    batch, c, spatial = split_input(op, input_shape, kernel_size, spatial_dims, data_format)
    n = len(spatial)
    ks = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    st = ks if stride is None else C.ntuple(op, "stride", stride, n, minimum=1)
    dl = C.ntuple(op, "dilation", dilation, n, minimum=1)
    if kind == "avg" and any(d != 1 for d in dl):
        C.fail(op, "dilation", "1 for average pooling", dilation)
    pads = shapes.resolve_padding(padding, spatial, ks, st, dl, op=op)
    out_sp = shapes.pool_output_shape(spatial, ks, st, pads, dl, ceil_mode, strict=strict, op=op)
    fmt = C.data_format(op, data_format)
    nb = 1 if batch is None else batch
    dims = [_conv_dim(*a, ceil_mode=ceil_mode) for a in zip(DIM_NAMES[n], spatial, ks, st, dl, pads, out_sp)]
    return PoolExplanation(
        kind=kind, input_shape=layout_shape(batch, c, spatial, fmt), output_shape=layout_shape(batch, c, out_sp, fmt),
        data_format=fmt, batched=batch is not None, channels=c, kernel_size=ks, stride=st, padding=pads,
        dilation=dl, ceil_mode=bool(ceil_mode), ops=nb * c * math.prod(out_sp) * (math.prod(ks) - 1),
        receptive_field=shapes.receptive_field([{"kernel_size": ks, "stride": st, "dilation": dl}], ndim=n),
        dims=dims, padding_note=_padding_note(padding, pads, DIM_NAMES[n]))
