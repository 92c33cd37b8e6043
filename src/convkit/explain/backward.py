"""How gradients flow back through a convolution, built by hand and checked against F.conv_vjp.

For ``y = conv(x, w)`` (a correlation with stride S, dilation D, padding P)
and ``g = dL/dy``:

- ``grad_x`` is the full correlation of g (dilated by S: S-1 zeros between
  its entries) with the kernel rotated by 180 degrees, input and output
  channels swapped: pad by D*(F-1) on every side, correlate with dilation D,
  then drop the padding P (and give zero gradient to cells no window read);
- ``grad_w`` is the correlation of the padded input with g (g dilated by S),
  read every D cells: the batch and channel axes swap roles;
- ``grad_b`` is g summed over the batch and every spatial position.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks as C
from .. import functional as F
from .. import shapes
from .element import num


def dilate(g, stride):
    """Insert ``stride - 1`` zeros between neighbouring entries of the spatial dims of g (N, K, *spatial)."""
    spatial = g.shape[2:]
    out = np.zeros(g.shape[:2] + tuple((o - 1) * s + 1 for o, s in zip(spatial, stride)), g.dtype)
    out[(slice(None), slice(None), *(slice(None, None, s) for s in stride))] = g
    return out


def show_array(a, indent="    "):
    """A small array as a learner reads it: planes of integers without the trailing '.'."""
    a = np.asarray(a)
    ints = np.all(np.isclose(a, np.round(a))) and np.all(np.abs(a) < 1e12)
    text = np.array2string(np.round(a).astype(np.int64) if ints else a, precision=4, suppress_small=True,
                           max_line_width=100, threshold=400)
    return "\n".join(indent + line for line in text.splitlines())


@dataclass
class Step:
    """One named array of the hand computation, with how it was made."""

    name: str
    how: str
    value: np.ndarray


@dataclass
class BackwardExplanation:
    """What ``explain.backward`` computed; ``str()`` gives the explanation."""

    x: np.ndarray
    w: np.ndarray
    grad_out: np.ndarray
    stride: tuple
    padding: tuple
    dilation: tuple
    grad_x: np.ndarray
    grad_w: np.ndarray
    grad_b: np.ndarray
    vjp: tuple
    steps: list = field(default_factory=list)
    show_values: bool = True
    transpose_call: str = ""
    transpose_matches: bool = False

    @property
    def max_diff(self):
        """Largest |hand - F.conv_vjp| over grad_x, grad_w and grad_b."""
        return max(float(np.max(np.abs(a - b))) for a, b in zip((self.grad_x, self.grad_w, self.grad_b), self.vjp))

    @property
    def matches(self):
        return all(np.allclose(a, b, rtol=1e-9, atol=1e-9) for a, b in zip((self.grad_x, self.grad_w, self.grad_b),
                                                                            self.vjp))

    def __str__(self):
        lines = [f"y = conv(x, w), stride {self.stride}, padding (lo, hi) {self.padding}, dilation {self.dilation}: "
                 f"x {self.x.shape} (N, C, ...), w {self.w.shape} (K, C, ...) -> y {self.grad_out.shape}", ""]
        for s in self.steps:
            lines.append(f"{s.name} {s.value.shape}: {s.how}")
            if self.show_values:
                lines.append(show_array(s.value))
        lines += ["", f"check against F.conv_vjp: max |hand - conv_vjp| = {self.max_diff:.1e} "
                      + ("(matches)" if self.matches else "(DIFFERS)"),
                  f"grad_x is the transposed convolution of g with the same w: {self.transpose_call} "
                  + ("(matches)" if self.transpose_matches else "(DIFFERS)")]
        return "\n".join(lines)


def _ints(rng, shape):
    return rng.integers(-2, 3, size=shape).astype(np.float64)


def backward(x=None, w=None, grad_out=None, stride=1, padding=0, dilation=1, *, input_shape=(1, 1, 5, 5),
             kernel_size=3, out_channels=1, seed=0, show_values=None):
    """Build grad_x, grad_w and grad_b of a convolution by hand and check them against F.conv_vjp.

    Arrays not given are small random integers (``seed``): x of ``input_shape``
    (N, C, *spatial), w of (out_channels, C, *kernel_size), grad_out of y's
    shape. Unbatched x (C, *spatial) is taken as a batch of one. groups is 1.

    >>> e = backward(stride=2)
    >>> e.grad_x.shape, e.grad_w.shape, e.matches
    ((1, 1, 5, 5), (1, 1, 3, 3), True)
    """
    op = "explain backward"
    rng = np.random.default_rng(seed)
    if x is None:
        x = _ints(rng, tuple(C.as_int(op, "input_shape", s, minimum=1) for s in input_shape))
    x = np.asarray(C.as_float_array(op, "x", x), np.float64)
    if w is None:
        n_sp = max(x.ndim - 2, 1)
        ks = C.ntuple(op, "kernel_size", kernel_size, n_sp, minimum=1)
        w = _ints(rng, (C.as_int(op, "out_channels", out_channels, minimum=1), x.shape[1 if x.ndim > 2 else 0], *ks))
    w = np.asarray(C.as_float_array(op, "w", w), np.float64)
    n = w.ndim - 2
    if n < 1 or x.ndim not in (n + 1, n + 2):
        raise ValueError(f"{op}: x must be (N, C, *spatial) or (C, *spatial) and w (K, C, *kernel_size) with "
                         f"1-3 spatial dims; got x.shape={x.shape}, w.shape={w.shape}.")
    if x.ndim == n + 1:
        x = x[None]
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"{op}: w must have C={x.shape[1]} input channels (groups is 1 here); "
                         f"got x.shape={x.shape}, w.shape={w.shape}.")
    ks, spatial = w.shape[2:], x.shape[2:]
    st = C.ntuple(op, "stride", stride, n, minimum=1)
    dl = C.ntuple(op, "dilation", dilation, n, minimum=1)
    pads = shapes.resolve_padding(padding, spatial, ks, st, dl, op=op)
    y = F.conv(x, w, None, st, pads, dl)
    g = _ints(rng, y.shape) if grad_out is None else np.asarray(C.as_float_array(op, "grad_out", grad_out), np.float64)
    if g.shape != y.shape:
        g = g.reshape(y.shape) if g.size == y.size else None
    if g is None:
        raise ValueError(f"{op}: grad_out must have y's shape {y.shape}; got grad_out.shape={np.shape(grad_out)}.")
    steps = [Step("x", "the input", x), Step("w", "the kernel", w),
             Step("grad_out", "g = dL/dy, one value per output cell", g)]

    # grad_x: full correlation of the (dilated) g with the rotated kernel.
    gd = dilate(g, st) if any(s > 1 for s in st) else g
    if gd is not g:
        steps.append(Step("g dilated", f"{', '.join(str(s - 1) for s in st)} zero(s) between entries (the stride)",
                          gd))
    full = tuple(d * (f - 1) for f, d in zip(ks, dl))
    gp = np.pad(gd, ((0, 0), (0, 0), *((e, e) for e in full)))
    steps.append(Step("g padded", f"D*(F-1) = {', '.join(map(str, full))} zero(s) on every side (full correlation)",
                      gp))
    w_rot = np.flip(w, axis=tuple(range(2, w.ndim))).swapaxes(0, 1)
    steps.append(Step("w rotated", "w turned 180 degrees, K and C swapped: (C, K, ...)", w_rot))
    gx_core = F.conv(gp, w_rot, dilation=dl)
    padded_in = shapes.padded_shape(spatial, pads)
    rest = tuple(p - c for p, c in zip(padded_in, gx_core.shape[2:]))
    gxp = np.pad(gx_core, ((0, 0), (0, 0), *((0, r) for r in rest)))
    how = "correlate g padded with w rotated" + (f" (dilation {dl})" if any(d > 1 for d in dl) else "")
    if any(rest):
        how += f", then {rest} zero(s) at the end for the cells no window read"
    steps.append(Step("grad_x padded", how, gxp))
    grad_x = gxp[(slice(None), slice(None), *(slice(lo, p - hi) for (lo, hi), p in zip(pads, padded_in)))]
    if any(lo or hi for lo, hi in pads):
        steps.append(Step("grad_x", f"drop the padding {pads}", grad_x))
    else:
        steps[-1] = Step("grad_x", how, grad_x)

    # grad_w: correlate the padded input with (dilated) g; batch and channels swap roles.
    xp = np.pad(x, ((0, 0), (0, 0), *pads))
    gw_full = F.conv(xp.swapaxes(0, 1), g.swapaxes(0, 1), dilation=st, stride=dl)
    grad_w = gw_full[(slice(None), slice(None), *(slice(0, f) for f in ks))].swapaxes(0, 1)
    steps.append(Step("grad_w", "correlate x" + (" padded" if any(lo or hi for lo, hi in pads) else "")
                      + " with g" + (f" dilated by {st}" if any(s > 1 for s in st) else "")
                      + (f", every {dl} cells" if any(d > 1 for d in dl) else "") + ", summed over the batch", grad_w))
    grad_b = g.sum(axis=(0, *range(2, g.ndim)))
    steps.append(Step("grad_b", "g summed over the batch and every position", grad_b))
    vjp = F.conv_vjp(g, x, w, np.zeros(w.shape[0]), st, pads, dl)
    gt = F.conv_transpose(g, w, stride=st, padding=pads, output_padding=rest, dilation=dl)
    call = (f"F.conv_transpose(g, w, stride={st}, padding={pads}"
            + (f", output_padding={rest}" if any(rest) else "") + (f", dilation={dl}" if any(d > 1 for d in dl) else "")
            + ")")
    if show_values is None:
        show_values = max(x.size, g.size, w.size) <= 400
    return BackwardExplanation(x=x, w=w, grad_out=g, stride=st, padding=pads, dilation=dl, grad_x=grad_x,
                               grad_w=grad_w, grad_b=grad_b, vjp=tuple(vjp), steps=steps, show_values=show_values,
                               transpose_call=call, transpose_matches=bool(np.allclose(gt, grad_x, atol=1e-9)))


__all__ = ["backward", "dilate", "show_array", "num"]
