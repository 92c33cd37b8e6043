"""Per-layer table of output shape, parameter count, multiply-accumulates (MACs), receptive field and jump.

A layer that cannot take what the layer before it gives (a Linear after
Flatten expecting another size, a conv expecting more channels) is reported
at that layer, with the size it should have had.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import nn, shapes
from .._config import check_alloc
from ..autograd import Tensor, enable_grad


@dataclass
class LayerRow:
    """One leaf layer. ``receptive_field`` and ``jump`` are per spatial dim, in input pixels: the input
    window one output cell sees and the input distance between neighbouring output cells; a
    receptive field of None means the whole input (after Flatten, Linear, global pooling)."""

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int
    receptive_field: tuple = None
    jump: tuple = None


def _fmt(t):
    return "x".join(f"{v:g}" for v in t)


@dataclass
class Summary:
    """What :func:`summary` measured; ``str()`` gives the table."""

    input_shape: tuple
    rows: list = field(default_factory=list)
    output_shape: tuple = ()
    total_params: int = 0

    @property
    def total_macs(self):
        return sum(r.macs for r in self.rows)

    def __str__(self):
        head = ("layer", "type", "output shape", "params", "MACs", "RF", "jump")
        body = [(r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.macs:,}",
                 "all" if r.receptive_field is None else _fmt(r.receptive_field),
                 "-" if r.jump is None else _fmt(r.jump)) for r in self.rows]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
        rule = "-" * len(fmt.format(*head))
        lines = [f"input {'x'.join(map(str, self.input_shape))}", fmt.format(*head), rule,
                 *(fmt.format(*b) for b in body), rule,
                 f"total parameters: {self.total_params:,}   total MACs: {self.total_macs:,} "
                 f"({self.total_macs / 1e6:.2f} M per image)",
                 "RF: receptive field of one output cell in input pixels (all: the whole input); "
                 "jump: input pixels between neighbouring output cells"]
        return "\n".join(lines)


def _macs(module, inputs, out):
    """Multiply-accumulates of one forward of a batch of one (convolutions and Linear; others count 0)."""
    if isinstance(module, nn.Linear):
        return math.prod(out.shape) * module.in_features
    if type(module).__name__.startswith("ConvTranspose"):
        w = module.weight.shape
        return math.prod(inputs[0].shape) * w[1] * math.prod(w[2:])
    if type(module).__name__.startswith("Conv"):
        w = module.weight.shape
        return math.prod(out.shape) * w[1] * math.prod(w[2:])
    return 0


# ---------------------------------------------------------------- receptive fields
def _field_after(module, rf, in_shape, out_shape):
    """The receptive field of ``module``'s output given its input's (None: the whole input)."""
    kind = type(module).__name__
    if rf is None:
        return None
    n = len(rf.size)
    if kind in ("Flatten", "Linear") or kind.startswith(("AdaptiveMax", "AdaptiveAvg", "GlobalAvg", "GlobalMax")):
        if kind.startswith("Adaptive") and len(out_shape) >= n + 1 and any(o > 1 for o in out_shape[-n:]):
            ins, outs = in_shape[-n:], out_shape[-n:]
            return shapes.receptive_field_step(rf, tuple(-(-i // o) for i, o in zip(ins, outs)),
                                               tuple(max(i // o, 1) for i, o in zip(ins, outs)))
        return None
    if kind.startswith("ConvTranspose"):
        ks, st, dl = module.kernel_size, module.stride, module.dilation
        jump = tuple(j / s for j, s in zip(rf.jump, st))
        size = tuple(r + (-(-(d * (f - 1) + 1) // s) - 1) * j for r, f, s, d, j in zip(rf.size, ks, st, dl, rf.jump))
        return shapes.ReceptiveField(size, jump)
    if kind.startswith("Conv") or (kind.endswith(("Pool1d", "Pool2d", "Pool3d")) and not kind.startswith("Adaptive")):
        if kind.startswith("MaxUnpool"):
            return rf
        stride = getattr(module, "stride", None)
        return shapes.receptive_field_step(rf, module.kernel_size, module.kernel_size if stride is None else stride,
                                           getattr(module, "dilation", 1))
    return rf


def _known_field(t, known, memo):
    """The receptive field of tensor ``t``: recorded for a layer's output, else the widest of its parents'
    (elementwise ops, additions, reshapes between layers), found through the autograd graph."""
    key = id(t)
    if key in known:
        return known[key]
    if key in memo:
        return memo[key]
    memo[key] = False
    node = getattr(t, "_node", None)
    found = [_known_field(p, known, memo) for p in (node.parents if node is not None else ()) if p is not None]
    found = [f for f in found if f is not False]
    if not found:
        res = False
    elif any(f is None for f in found):
        res = None
    else:
        res = shapes.ReceptiveField(tuple(max(s) for s in zip(*(f.size for f in found))),
                                    tuple(max(j) for j in zip(*(f.jump for f in found))))
    memo[key] = res
    return res


# ---------------------------------------------------------------- shape mismatches
def _x(shape):
    return "x".join(str(int(s)) for s in shape)


def _describe_source(trace, in_shape, model_input):
    """Where a layer's input came from: the previous layer's output, or the model input."""
    if not trace:
        return f"the input {_x(model_input)}"
    name, mod, _, out = trace[-1]
    return f"{type(mod).__name__}({name}) output {_x(out[1:])}"


def _is_chain(trace, model_input):
    prev = (1,) + tuple(model_input)
    for _, _, ins, outs in trace:
        if tuple(ins) != prev:
            return False
        prev = tuple(outs)
    return True


def _replay(trace, spatial):
    """The flattened size that ``trace`` (a chain of layers) gives for another input spatial size, or None."""
    sp = tuple(spatial)
    for _, m, ins, outs in trace:
        kind = type(m).__name__
        try:
            if kind.startswith("ConvTranspose"):
                return None
            if kind.startswith("Conv"):
                sp = shapes.conv_output_shape(sp, m.kernel_size, m.stride, m.padding, m.dilation)
            elif kind.startswith(("MaxPool", "AvgPool", "LPPool")):
                sp = shapes.pool_output_shape(sp, m.kernel_size, getattr(m, "stride", None), getattr(m, "padding", 0),
                                              getattr(m, "dilation", 1), getattr(m, "ceil_mode", False))
            elif kind == "Flatten":
                return outs[1] // math.prod(ins[2:]) * math.prod(sp) if len(ins) > 2 else None
            elif len(ins) != len(outs) or tuple(ins[2:]) != tuple(outs[2:]):
                return None  # a layer that changes sizes in a way not replayed here
        except ValueError:
            return None
    return None


def _suggest_input(trace, model_input, want):
    """An input C x S x S (square inputs only) whose flattened features would be ``want``, or None."""
    spatial = tuple(model_input[1:])
    if not spatial or len(set(spatial)) != 1 or not _is_chain(trace, model_input):
        return None
    for t in range(1, 8 * spatial[0] + 1):
        if _replay(trace, (t,) * len(spatial)) == want:
            return (model_input[0],) + (t,) * len(spatial)
    return None


def _mismatch(name, mod, x, trace, model_input, err):
    kind = type(mod).__name__
    label = f"{kind}({name})"
    shape = tuple(getattr(x, "shape", ()))
    src = _describe_source(trace, shape, model_input)
    if isinstance(mod, nn.Linear) and shape and shape[-1] != mod.in_features:
        got = shape[-1]
        flat = [t for t in trace if type(t[1]).__name__ == "Flatten"]
        if trace and flat and flat[-1] is trace[-1]:
            src = f"from Flatten of {_x(flat[-1][2][1:])}"
        else:
            src = f"from {src}"
        msg = (f"summary: {label} expects {mod.in_features} input features but receives {got} ({src}); "
               f"for input {_x(model_input)} it should have in_features={got}")
        if flat and flat[-1] is trace[-1]:
            fix = _suggest_input(trace, model_input, mod.in_features)
            if fix is not None:
                msg += f", or the input should be {_x(fix)}"
        return ValueError(msg + ".")
    want = getattr(mod, "in_channels", None) or getattr(mod, "num_features", None)
    if want is not None and len(shape) >= 2:
        cl = getattr(mod, "data_format", "channels_first") == "channels_last"
        got = shape[-1] if cl else shape[1]
        if got != want:
            what = "in_channels" if hasattr(mod, "in_channels") else "num_features"
            msg = (f"summary: {label} expects {want} input channel{'s' * (want != 1)} but receives {got} "
                   f"(from {src}); "
                   f"it should have {what}={got}")
            if not trace:
                msg += f", or the input should have {want} channel{'s' * (want != 1)}, as {_x((want,) + tuple(model_input[1:]))}"
            return ValueError(msg + ".")
    return ValueError(f"summary: {label} fails on its input {_x(shape[1:])} (from {src}): {err}")


class _Broken(ValueError):
    """A mismatch already reported at the layer that broke (not re-wrapped by outer layers)."""


def summary(model, input_shape, dtype=np.float32):
    """Run one zero image of ``input_shape`` (C, H, W ..., no batch dim) through ``model``
    and record, for each layer without children, its output shape (without the batch dim),
    its own parameter count, its MACs, its receptive field and its jump.

    A layer that breaks on what it receives raises ValueError naming that layer and the size
    it should have had.

    >>> from convkit import models
    >>> s = models.summary(models.mnist_cnn(), (1, 28, 28))
    >>> s.rows[0].output_shape, s.rows[0].macs, s.rows[3].receptive_field, s.rows[3].jump
    ((32, 28, 28), 627200, (14, 14), (2, 2))
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"summary: input_shape must be positive sizes (C, H, W, ...); got input_shape={input_shape!r}.")
    result = Summary(shape, total_params=sum(p.numel() for p in model.parameters()))
    check_alloc("summary", math.prod(shape) * np.dtype(dtype).itemsize, "the sample input")
    x = Tensor(np.zeros((1,) + shape, dtype), requires_grad=True)
    n_sp = max(len(shape) - 1, 1)
    known = {id(x): shapes.ReceptiveField((1,) * n_sp, (1,) * n_sp)}
    keep, trace, wrapped, handles = [x], [], [], []

    for name, m in model.named_modules():
        if next(m.children(), None) is not None:
            continue  # only leaf layers (or a model that is one layer)

        def hook(mod, inputs, out, name=name):
            o = out[0] if isinstance(out, tuple) else out
            i = inputs[0] if inputs else None
            rf_in = _known_field(i, known, {}) if i is not None else None
            rf = None if rf_in is None or rf_in is False else _field_after(mod, rf_in, tuple(i.shape), tuple(o.shape))
            known[id(o)] = rf
            keep.append(o)
            trace.append((name or type(mod).__name__, mod, tuple(getattr(i, "shape", ())), tuple(o.shape)))
            result.rows.append(LayerRow(name or type(mod).__name__, type(mod).__name__, tuple(o.shape[1:]),
                                        sum(p.numel() for p in mod.parameters(recurse=False)),
                                        _macs(mod, inputs, o), None if rf is None else rf.size,
                                        None if rf is None else rf.jump))
        handles.append(m.register_forward_hook(hook))

        def checked(*args, _m=m, _f=m.forward, _name=name, **kwargs):
            try:
                return _f(*args, **kwargs)
            except _Broken:
                raise
            except (ValueError, TypeError) as e:
                raise _Broken(str(_mismatch(_name or type(_m).__name__, _m, args[0] if args else None, trace,
                                            shape, e))) from None
        object.__setattr__(m, "forward", checked)
        wrapped.append(m)

    was_training = model.training
    model.eval()
    try:
        with enable_grad():
            out = model(x)
    except _Broken as e:
        raise ValueError(str(e)) from None
    except (ValueError, TypeError) as e:
        last = f" after layer {trace[-1][0]} (output {_x(trace[-1][3][1:])})" if trace else ""
        raise ValueError(f"summary: the model fails on input {_x(shape)}{last}: {e}") from None
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
        for m in wrapped:
            m.__dict__.pop("forward", None)
    result.output_shape = tuple(out.shape[1:])
    return result


__all__ = ["summary", "Summary", "LayerRow"]
