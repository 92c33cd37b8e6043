"""How one output value of a convolution is computed, term by term.

``element(x, w, b, at=...)`` lists the input window behind ``y[at]`` (padded
cells marked), every product ``x * w``, the sum, and checks the sum against
:func:`convkit.functional.conv`.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .. import _checks as C
from .. import functional as F
from .. import shapes

MAX_TERMS_IN_SUM = 64  # longer sums are shortened in the one-line formula (every term is still listed)


def num(v):
    """A number as a learner would write it: 17 not 17.0, 0.25, -3 in parentheses when multiplied."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def _factor(v):
    s = num(v)
    return f"({s})" if s.startswith("-") else s


def idx(index):
    return "[" + ",".join(str(int(i)) for i in index) + "]"


@dataclass(frozen=True)
class Term:
    """One product of the sum: the input cell (its index in x, or its padded coordinate), the weight."""

    x_index: tuple
    x_value: float
    w_index: tuple
    w_value: float
    padded: bool

    @property
    def product(self):
        return self.x_value * self.w_value


@dataclass
class ElementExplanation:
    """What ``explain.element`` computed; ``str()`` gives the explanation."""

    at: tuple
    terms: list
    bias: float
    value: float
    conv_value: float
    window: list = field(default_factory=list)
    channel: int = 0  # the output channel k of ``at``, whose filter and bias are used

    @property
    def matches(self):
        return bool(np.isclose(self.value, self.conv_value, rtol=1e-9, atol=1e-9))

    def formula(self):
        parts = [f"{_factor(t.x_value)}*{_factor(t.w_value)}" for t in self.terms]
        if len(parts) > MAX_TERMS_IN_SUM:
            parts = parts[:MAX_TERMS_IN_SUM // 2] + [f"... ({len(parts) - MAX_TERMS_IN_SUM} more) ..."] + \
                parts[-(MAX_TERMS_IN_SUM // 2):]
        if self.bias is not None:
            parts.append(f"{_factor(self.bias)} (bias)")
        return f"y{idx(self.at)} = " + " + ".join(parts) + f" = {num(self.value)}"

    def __str__(self):
        n_pad = sum(t.padded for t in self.terms)
        lines = [f"y{idx(self.at)}: {len(self.terms)} products of an input cell and a weight"
                 + (f" ({n_pad} of them on padding, which is 0)" if n_pad else "")
                 + (", plus the bias" if self.bias is not None else ""), ""]
        lines += ["input window:"] + ["  " + w for w in self.window] + [""]
        wx = max(len(f"x{idx(t.x_index)}") for t in self.terms)
        for t in self.terms:
            name = f"x{idx(t.x_index)}"
            lines.append(f"  {name:<{wx}} = {num(t.x_value):>6}{' (pad)' if t.padded else '      '}  *  "
                         f"w{idx(t.w_index)} = {num(t.w_value):>6}   -> {num(t.product)}")
        if self.bias is not None:
            lines.append(f"  bias b[{self.channel}] = {num(self.bias)}")
        lines += ["", self.formula(),
                  f"check: F.conv gives y{idx(self.at)} = {num(self.conv_value)} "
                  + ("(matches)" if self.matches else "(DIFFERS)")]
        return "\n".join(lines)


def _array(op, name, a):
    arr = C.as_float_array(op, name, a)
    return np.asarray(arr, dtype=np.float64)


def element(x, w, b=None, at=None, stride=1, padding=0, dilation=1, groups=1, data_format="channels_first"):
    """Explain how ``y[at]`` of ``y = F.conv(x, w, b, ...)`` is computed.

    ``x`` is (N, C, *spatial) or unbatched (C, *spatial) (channels last with
    ``data_format="channels_last"``), ``w`` is (K, C/G, *kernel_size), ``at``
    indexes the output in the same layout as ``x``. Returns the terms, the sum
    and F.conv's own value at that index.

    >>> x = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]      # (C=2, H=2, W=2)
    >>> e = element(x, [[[[2]], [[3]]]], at=(0, 0, 0))  # one 1x1 filter of depth 2
    >>> e.formula()
    'y[0,0,0] = 1*2 + 5*3 = 17'
    """
    op = "explain element"
    x, w = _array(op, "x", x), _array(op, "w", w)
    fmt = C.data_format(op, data_format)
    if w.ndim < 3 or w.ndim > 5:
        raise ValueError(f"{op}: w must be (K, C/G, *kernel_size) with 1-3 spatial dims; got w.shape={w.shape}.")
    n = w.ndim - 2
    if x.ndim not in (n + 1, n + 2):
        raise ValueError(f"{op}: x must be (N, C, *spatial) or (C, *spatial) with {n} spatial dims to match "
                         f"w.shape={w.shape}; got x.shape={x.shape}.")
    batched = x.ndim == n + 2
    xb = x if batched else x[None]
    if fmt == "channels_last":
        xb = np.moveaxis(xb, -1, 1)
    nb, c, spatial = xb.shape[0], xb.shape[1], xb.shape[2:]
    k, cg, ks = w.shape[0], w.shape[1], w.shape[2:]
    g = C.as_int(op, "groups", groups, minimum=1)
    if c % g or k % g or cg != c // g:
        raise ValueError(f"{op}: w must be (K, C/G, *kernel_size) with G dividing C and K; got x with C={c}, "
                         f"w.shape={w.shape}, groups={g}.")
    bias = None
    if b is not None:
        bvec = _array(op, "b", b).reshape(-1)
        if bvec.shape != (k,):
            raise ValueError(f"{op}: b must have K={k} values; got b.shape={np.shape(b)}.")
    st = C.ntuple(op, "stride", stride, n, minimum=1)
    dl = C.ntuple(op, "dilation", dilation, n, minimum=1)
    pads = shapes.resolve_padding(padding, spatial, ks, st, dl, op=op)
    out = shapes.conv_output_shape(spatial, ks, st, pads, dl, op=op)
    y_shape = (nb, k, *out) if fmt == "channels_first" else (nb, *out, k)
    y_shape = y_shape if batched else y_shape[1:]
    if at is None:
        raise ValueError(f"{op}: at must be an index into the output of shape {y_shape}; got at=None.")
    at = tuple(int(i) for i in (at if isinstance(at, (tuple, list)) else (at,)))
    if len(at) != len(y_shape) or any(not -s <= i < s for i, s in zip(at, y_shape)):
        raise ValueError(f"{op}: at must be an index into the output of shape {y_shape}; got at={at}.")
    at = tuple(i % s for i, s in zip(at, y_shape))
    full = at if batched else (0, *at)
    if fmt == "channels_last":
        ni, ki, o = full[0], full[-1], full[1:-1]
    else:
        ni, ki, o = full[0], full[1], full[2:]

    def x_index(ch, cell):
        body = (*cell, ch) if fmt == "channels_last" else (ch, *cell)
        return (ni, *body) if batched else body

    gi = ki // (k // g)
    terms, window = [], []
    starts = [oi * s - lo for oi, s, (lo, _) in zip(o, st, pads)]
    for ci in range(cg):
        ch = gi * cg + ci
        for f in itertools.product(*(range(kk) for kk in ks)):
            cell = tuple(s0 + fi * d for s0, fi, d in zip(starts, f, dl))
            inside = all(0 <= p < size for p, size in zip(cell, spatial))
            xv = float(xb[(ni, ch, *cell)]) if inside else 0.0
            terms.append(Term(x_index(ch, cell), xv, (ki, ci, *f), float(w[(ki, ci, *f)]), not inside))
        window.append(_window_text(xb[ni, ch], ch, starts, ks, dl, spatial))
    if b is not None:
        bias = float(bvec[ki])
    value = float(sum(t.product for t in terms) + (bias or 0.0))
    y = F.conv(x, w, None if b is None else bvec, st, pads, dl, g, data_format=fmt)
    return ElementExplanation(at=at, terms=terms, bias=bias, value=value, conv_value=float(np.asarray(y)[at]),
                              window=[line for block in window for line in block], channel=ki)


def _window_text(plane, ch, starts, ks, dl, spatial):
    """The window over one input channel: its coordinate ranges, and for 1-2-d inputs the values as a grid."""
    names = {1: ("cols",), 2: ("rows", "cols"), 3: ("depths", "rows", "cols")}[len(ks)]
    ranges = []
    for name, s0, f, d, size in zip(names, starts, ks, dl, spatial):
        last = s0 + (f - 1) * d
        pad = " (cells < 0 or >= %d are padding)" % size if s0 < 0 or last >= size else ""
        ranges.append(f"{name} {s0}..{last}" + (f" step {d}" if d > 1 else "") + pad)
    lines = [f"channel {ch}: " + ", ".join(ranges)]
    if len(ks) <= 2:
        rows = [[0]] if len(ks) == 1 else [range(starts[0] + i * dl[0], starts[0] + i * dl[0] + 1)
                                          for i in range(ks[0])]
        cols_axis = len(ks) - 1
        for r in rows:
            cells = []
            for j in range(ks[cols_axis]):
                cc = starts[cols_axis] + j * dl[cols_axis]
                pos = (cc,) if len(ks) == 1 else (r[0], cc)
                inside = all(0 <= p < size for p, size in zip(pos, spatial))
                cells.append(f"{num(plane[pos]):>5}" if inside else f"{'pad':>5}")
            lines.append("  " + " ".join(cells))
    return lines
