"""Per-layer table of output shape, parameter count and multiply-accumulates (MACs)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..autograd import Tensor, no_grad


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int


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
        head = ("layer", "type", "output shape", "params", "MACs")
        body = [(r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.macs:,}")
                for r in self.rows]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
        rule = "-" * len(fmt.format(*head))
        lines = [f"input {'x'.join(map(str, self.input_shape))}", fmt.format(*head), rule,
                 *(fmt.format(*b) for b in body), rule,
                 f"total parameters: {self.total_params:,}   total MACs: {self.total_macs:,} "
                 f"({self.total_macs / 1e6:.2f} M per image)"]
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


def summary(model, input_shape, dtype=np.float32):
    """Run one zero image of ``input_shape`` (C, H, W ..., no batch dim) through ``model``
    and record, for each layer without children, its output shape (without the batch dim),
    its own parameter count and its MACs.

    >>> from convkit import models
    >>> s = models.summary(models.mnist_cnn(), (1, 28, 28))
    >>> s.rows[0].output_shape, s.rows[0].macs
    ((32, 28, 28), 627200)
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"summary: input_shape must be positive sizes (C, H, W, ...); got input_shape={input_shape!r}.")
    result = Summary(shape, total_params=sum(p.numel() for p in model.parameters()))
    handles = []
    for name, m in model.named_modules():
        if next(m.children(), None) is None:  # a leaf layer (or a model that is one layer)
            def hook(mod, inputs, out, name=name):
                o = out[0] if isinstance(out, tuple) else out
                result.rows.append(LayerRow(name or type(mod).__name__, type(mod).__name__, tuple(o.shape[1:]),
                                            sum(p.numel() for p in mod.parameters(recurse=False)),
                                            _macs(mod, inputs, o)))
            handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out = model(Tensor(np.zeros((1,) + shape, dtype)))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    result.output_shape = tuple(out.shape[1:])
    return result
