"""Output-size arithmetic, padding resolution and receptive fields.

This is the one place the convolution arithmetic lives. Every size here is a
spatial size: pass ``(H, W)``, not ``(N, C, H, W)``.

Legend: W input size, F kernel size, D dilation, S stride, P_lo/P_hi padding
before/after, F_eff = D*(F-1) + 1 the effective (dilated) kernel size.

    out = floor((W + P_lo + P_hi - F_eff) / S) + 1
"""
from __future__ import annotations


from dataclasses import dataclass

from . import _checks as C


def _norm(op, input_shape, kernel_size, stride, dilation):
    shape = tuple(C.as_int(op, "input_shape", s, minimum=1) for s in input_shape)
    if not shape:
        C.fail(op, "input_shape", "a non-empty sequence of spatial sizes", input_shape)
    n = len(shape)
    k = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    s = C.ntuple(op, "stride", stride, n, minimum=1)
    d = C.ntuple(op, "dilation", dilation, n, minimum=1)
    return shape, k, s, d


def _same_pairs(shape, k, s, d, lower):
    pairs = []
    for w, f, st, dl in zip(shape, k, s, d):
        out = -(-w // st)
        total = max((out - 1) * st + dl * (f - 1) + 1 - w, 0)
        small, big = total // 2, total - total // 2
        pairs.append((big, small) if lower else (small, big))
    return tuple(pairs)


def resolve_padding(padding, input_shape, kernel_size, stride=1, dilation=1, *, op="resolve_padding"):
    """The explicit (lo, hi) pair per spatial dim that a padding argument means.

    ``"same"`` follows TF/ONNX SAME_UPPER: out = ceil(W / S), and an odd total
    padding puts the extra cell at the end; ``"same_lower"`` puts it at the
    start; ``"valid"`` is no padding.

    >>> resolve_padding("same", (28, 28), 5)
    ((2, 2), (2, 2))
    >>> resolve_padding("same", (7,), 4, stride=2)
    ((1, 2),)
    """
    shape, k, s, d = _norm(op, input_shape, kernel_size, stride, dilation)
    p = C.padding_arg(op, padding, len(shape))
    if p == "valid":
        return ((0, 0),) * len(shape)
    if p in ("same", "same_lower"):
        return _same_pairs(shape, k, s, d, p == "same_lower")
    return p


def padded_shape(shape, pads):
    """Spatial sizes after zero padding by (lo, hi) pairs: ``W + P_lo + P_hi`` per dim.

    >>> padded_shape((28, 28), ((2, 2), (1, 0)))
    (32, 29)
    """
    return tuple(s + lo + hi for s, (lo, hi) in zip(shape, pads))


def circular_shape(shape, pads):
    """Sides of the smallest circular plane on which a stride-1 correlation of the input zero-padded by
    ``pads`` (each >= 0) gives the same outputs: per dim the input and its wider pad.

    A read past the plane's end wraps around to its start, where the narrower pad's zeros are, as the
    padded input has zeros there; so the rest of the wider pad need not be stored. An output past the
    plane's side (pads wider than the kernel) reads only zeros, as the output it wraps onto does.

    >>> circular_shape((14, 14), ((2, 2), (2, 2)))    # 5x5 'same' at 14x14: 16, not 18
    (16, 16)
    """
    return tuple(s + max(lo, hi) for s, (lo, hi) in zip(shape, pads))


def bounded_steps(out, kernel_size, stride, dilation, padded):
    """(stride, dilation) with the values that change nothing bounded: a stride past the padded input
    (one output) becomes at most its size, the dilation of a one-tap kernel 1; so a huge value cannot
    overflow the byte strides of a window view.

    >>> bounded_steps((1, 4), (3, 1), (2**62, 2), (1, 2**40), (5, 8))
    ((5, 2), (1, 1))
    """
    return (tuple(min(s, max(p, 1)) if o == 1 else s for o, s, p in zip(out, stride, padded)),
            tuple(1 if f == 1 else d for f, d in zip(kernel_size, dilation)))


def full_correlation_padding(kernel_size, dilation, pads):
    """Padding of grad_out that makes the input gradient of a stride-1 convolution a plain
    convolution of it with the rotated kernel: ``(D*(F-1) - P_lo, D*(F-1) - P_hi)`` per dim
    (negative where the forward padded more than the dilated kernel reaches).

    >>> full_correlation_padding((3, 5), (1, 2), ((1, 1), (0, 3)))
    ((1, 1), (8, 5))
    """
    return tuple((d * (k - 1) - lo, d * (k - 1) - hi) for k, d, (lo, hi) in zip(kernel_size, dilation, pads))


def phase_cells(size, lo, phase, step, cells):
    """Along one dim, which input cells land in one phase of the padded input split by ``step``: padded
    cell ``step*u + phase`` is input cell ``step*u + phase - lo``. Returns (the phase plane's slice of
    u, of at most ``cells``; the input's slice), both empty when no input cell lands there.

    >>> phase_cells(5, 1, 0, 2, 3)        # padded cells 0, 2, 4 are input cells -1, 1, 3
    (slice(1, 3, None), slice(1, 5, 2))
    """
    u0 = max(0, -(-(lo - phase) // step))
    u1 = max(u0, min(cells, -(-(size + lo - phase) // step)))
    i0 = phase + step * u0 - lo
    return slice(u0, u1), slice(i0, i0 + step * (u1 - u0), step)


def subpixel_phases(input_shape, kernel_size, stride, pads, out):
    """How a transposed convolution splits into stride-1 convolutions, one per output phase (sub-pixel).

    Along a dim, output cell ``t = s*q + a`` of the uncropped output receives x[q - e] * w[a + s*e]: each
    phase ``a`` (0 <= a < s) is a correlation of x with the taps a, a + s, ... reversed, E = ceil(F/s) of
    them (zero where a + s*e >= F). Returns per dim ``(E, (lo, hi), Q, runs)``: x padded by (lo, hi) gives
    Q phase cells; ``runs`` lists ``(a, h0, q0, n)``: output cells h0, h0 + s, ... (n of them) are phase
    a's cells q0, q0 + 1, ... (the output is the uncropped one less ``pads[0]`` at the start).

    >>> subpixel_phases((28,), (4,), (2,), ((1, 1),), (56,))
    ((2, (1, 1), 29, ((0, 1, 1, 28), (1, 0, 0, 28))),)
    """
    dims = []
    for length, f, s, (lo, _), o in zip(input_shape, kernel_size, stride, pads, out):
        e = -(-f // s)
        q = max(length + e - 1, (o - 1 + lo) // s + 1)      # enough phase cells for the output's last one
        runs = []
        for a in range(s):
            h0 = (a - lo) % s
            n = len(range(h0, o, s))
            if n:
                runs.append((a, h0, (h0 + lo - a) // s, n))
        dims.append((e, (e - 1, q - length), q, tuple(runs)))
    return tuple(dims)


def _arith(w, f, s, p, d):
    lo, hi = p
    fe = d * (f - 1) + 1
    pad = f"2*{lo}" if lo == hi else f"{lo} + {hi}"
    kern = f"{f}" if d == 1 else f"{fe}"
    note = "" if d == 1 else f" (dilated kernel {d}*({f}-1)+1 = {fe})"
    return f"({w} - {kern} + {pad})/{s} + 1", note


def _out_size(op, dim, w, f, s, p, d, *, ceil_mode=False, strict=False):
    lo, hi = p
    fe = d * (f - 1) + 1
    span = w + lo + hi - fe
    if span < 0:
        expr, note = _arith(w, f, s, p, d)
        raise ValueError(
            f"{op}: output size must be >= 1 in spatial dim {dim}; got {expr} = "
            f"{_fmt(span / s + 1)}{note}: the kernel is larger than the padded input "
            f"({w} + {lo} + {hi} = {w + lo + hi} < {fe})."
        )
    if strict and span % s:
        expr, note = _arith(w, f, s, p, d)
        raise ValueError(
            f"{op}: (W - F + 2P)/S + 1 must be an integer in strict mode; got {expr} = "
            f"{_fmt(span / s + 1)} is not an integer{note} in spatial dim {dim}."
        )
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= w + lo:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _fmt(v):
    return f"{v:g}"


def conv_output_shape(input_shape, kernel_size, stride=1, padding=0, dilation=1, *, strict=False, op="conv"):
    """Spatial output shape of a convolution.

    Shape: ``out = floor((W + P_lo + P_hi - D*(F-1) - 1) / S) + 1`` per dim.
    With ``strict=True`` a stride that does not tile the padded input exactly
    raises ValueError showing the arithmetic ("same" padding, defined as
    ceil(W/S) outputs, is exempt). An output below 1 always raises.

    >>> conv_output_shape((28, 28), 5, stride=1, padding=2)
    (28, 28)
    >>> conv_output_shape((28,), 5, stride=2, strict=True)
    Traceback (most recent call last):
    ...
    ValueError: conv: (W - F + 2P)/S + 1 must be an integer in strict mode; got (28 - 5 + 2*0)/2 + 1 = 12.5 is not an integer in spatial dim 0.
    """
    shape, k, s, d = _norm(op, input_shape, kernel_size, stride, dilation)
    pads = resolve_padding(padding, shape, k, s, d, op=op)
    # "same" is defined as ceil(W/S) outputs; strict mode checks explicit padding only
    strict = strict and not (isinstance(padding, str) and padding.lower().startswith("same"))
    return tuple(
        _out_size(op, i, *args, strict=strict) for i, args in enumerate(zip(shape, k, s, pads, d))
    )


def pool_output_shape(input_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                      *, strict=False, op="pool"):
    """Spatial output shape of a pooling window (stride defaults to kernel_size).

    ``ceil_mode`` rounds up, but a last window that would start in the right
    padding is dropped (PyTorch's and ONNX's rule).

    >>> pool_output_shape((112, 112), 3, stride=2, padding=1)
    (56, 56)
    >>> pool_output_shape((5,), 2, ceil_mode=True)
    (3,)
    """
    shape = tuple(input_shape)
    stride = kernel_size if stride is None else stride
    shape, k, s, d = _norm(op, shape, kernel_size, stride, dilation)
    pads = resolve_padding(padding, shape, k, s, d, op=op)
    return tuple(
        _out_size(op, i, *args, ceil_mode=ceil_mode, strict=strict)
        for i, args in enumerate(zip(shape, k, s, pads, d))
    )


def conv_transpose_output_shape(input_shape, kernel_size, stride=1, padding=0, output_padding=0,
                                dilation=1, *, op="conv_transpose"):
    """Spatial output shape of a transposed convolution.

    Shape: ``out = (W - 1)*S - P_lo - P_hi + D*(F-1) + output_padding + 1``.

    >>> conv_transpose_output_shape((14, 14), 4, stride=2, padding=1)
    (28, 28)
    """
    shape, k, s, d = _norm(op, input_shape, kernel_size, stride, dilation)
    n = len(shape)
    pads = C.padding_arg(op, padding, n, allow_strings=False)
    op_ = C.ntuple(op, "output_padding", output_padding, n, minimum=0)
    for i in range(n):
        if op_[i] >= max(s[i], d[i]):
            C.fail(op, "output_padding", f"smaller than stride or dilation in every dim (stride={s}, dilation={d})",
                   output_padding)
    out = tuple((w - 1) * st + dl * (f - 1) + 1 + o - lo - hi
                for w, f, st, dl, o, (lo, hi) in zip(shape, k, s, d, op_, pads))
    if any(o < 1 for o in out):
        C.fail(op, "output size", "all >= 1 (reduce padding)", out)
    return out


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one output cell in input pixels, and the jump (the
    input distance between neighbouring output cells), per spatial dim."""

    size: tuple
    jump: tuple

    def __str__(self):
        return f"receptive field {'x'.join(map(str, self.size))}, jump {'x'.join(map(str, self.jump))}"


def receptive_field(layers, ndim=None):
    """Receptive field of a stack of windowed layers, first layer first.

    Each layer is a kernel size (int or tuple), or a dict with ``kernel_size``
    and optional ``stride`` and ``dilation``. Padding shifts, never widens.

        r_out = r_in + D*(F-1)*j_in,   j_out = j_in*S

    >>> receptive_field([3, 3])
    ReceptiveField(size=(5,), jump=(1,))
    >>> receptive_field([{"kernel_size": 5, "stride": 2}, {"kernel_size": 5, "stride": 2}], ndim=2)
    ReceptiveField(size=(13, 13), jump=(4, 4))
    """
    op = "receptive_field"
    if isinstance(layers, (int, dict)):
        layers = [layers]
    specs = [lay if isinstance(lay, dict) else {"kernel_size": lay} for lay in layers]
    if ndim is None:
        ndim = max((len(s["kernel_size"]) for s in specs if isinstance(s["kernel_size"], (tuple, list))),
                   default=1)
    size, jump = [1] * ndim, [1] * ndim
    for s in specs:
        k = C.ntuple(op, "kernel_size", s["kernel_size"], ndim, minimum=1)
        st = C.ntuple(op, "stride", s.get("stride", 1), ndim, minimum=1)
        dl = C.ntuple(op, "dilation", s.get("dilation", 1), ndim, minimum=1)
        for i in range(ndim):
            size[i] += dl[i] * (k[i] - 1) * jump[i]
            jump[i] *= st[i]
    return ReceptiveField(tuple(size), tuple(jump))


def receptive_field_step(field, kernel_size, stride=1, dilation=1):
    """The receptive field after one more windowed layer on top of ``field``
    (a :class:`ReceptiveField`), per dim: ``r + D*(F-1)*j`` and ``j*S``.

    >>> receptive_field_step(ReceptiveField((5, 5), (2, 2)), 3, stride=2)
    ReceptiveField(size=(9, 9), jump=(4, 4))
    """
    op = "receptive_field_step"
    n = len(field.size)
    k = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    st = C.ntuple(op, "stride", stride, n, minimum=1)
    dl = C.ntuple(op, "dilation", dilation, n, minimum=1)
    return ReceptiveField(tuple(r + d * (f - 1) * j for r, f, d, j in zip(field.size, k, dl, field.jump)),
                          tuple(j * s for j, s in zip(field.jump, st)))


__all__ = ["conv_output_shape", "conv_transpose_output_shape", "pool_output_shape", "resolve_padding",
           "receptive_field", "receptive_field_step", "ReceptiveField"]

