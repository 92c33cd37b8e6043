"""Matrix products alone: how fast a convolution built on them could be (shared by conv_suite.py and onnx_bench.py).

Every algorithm convkit has computes a convolution as matrix products plus the memory passes
around them (columns, transforms, copies into the result). Timing the products alone, operands
already in place and each in its faster form, gives a floor that no such algorithm can go under:
a layer whose products alone take longer than a peer's whole run cannot match it by removing
overhead, only by doing fewer multiplications.

A depthwise layer (one filter per channel) has no product worth BLAS: each output is a sum of
kernel-many input cells times its channel's weights. Its floor (:func:`depthwise_pass_forms`) is
the arithmetic of convkit's shifted multiply-accumulates alone, over the same cache-sized blocks of
planes on convkit's threads, operands already padded and flattened: per tap one multiply of the
shifted input by the plane's weight and one add into the sum (forward, and the input gradient,
which is the same sum over grad_out), and one dot product per tap and plane (the weight
gradient). NumPy has no fused multiply-add, so no NumPy computation of these sums does fewer
passes (np.einsum over the taps' strided view, and np.matmul over them, measured 8x and 2x slower).

Forms per pass of a convolution with P output positions, depth Ck = C * prod(kernel) and K filters:

- im2col's product in both orientations, (P, Ck) @ (Ck, K) and (K, Ck) @ (Ck, P), for the forward;
  (P, K) @ (K, Ck) (col2im's) and, at stride 1, the forward of grad_out with the rotated kernel,
  (P_in, K * prod(kernel)) @ (., C), for the input gradient; (Ck, P) @ (P, K) for the weight's;
- for 2-D 3x3 and 5x5 stride-1 layers, Winograd's multiply phase: a^2 products (K, C) @ (C, T)
  over T tiles of F(m x m, r x r) for the forward and (C, K) @ (K, T) for the input gradient, and
  a^2 products (K, T) @ (T, C) of F(r x r, m x m) for the weight gradient (on the input transform
  the forward kept); a dilated layer's tiles are those of all its phases, and a 3-D kernel's depth
  taps are summed in the products, (K, kd*C) @ (kd*C, T) over the tiles of every output depth.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from _timing import median_time
from convkit._parallel import run_blocks
from convkit.functional import _depthwise, _winograd


def product_forms(rows, inner, cols, rng, name="cols @ W"):
    """The two orientations of one (rows, inner) @ (inner, cols) float32 product, operands in place:
    {name: fn, name transposed: fn}."""
    a, b = rng.standard_normal((rows, inner), dtype=np.float32), rng.standard_normal((inner, cols), dtype=np.float32)
    a_t, b_t = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    out, out_t = np.empty((rows, cols), np.float32), np.empty((cols, rows), np.float32)
    left, right = name.split(" @ ")
    return {name: lambda: np.matmul(a, b, out=out),
            f"{right} @ {left}": lambda: np.matmul(b_t, a_t, out=out_t)}


def stacked_products(count, rows, inner, cols, rng):
    """``count`` products (rows, inner) @ (inner, cols) in one batched matmul, operands in place."""
    a = rng.standard_normal((count, rows, inner), dtype=np.float32)
    b = rng.standard_normal((count, inner, cols), dtype=np.float32)
    out = np.empty((count, rows, cols), np.float32)
    return lambda: np.matmul(a, b, out=out)


def fastest(forms, repeats=5):
    """(name, fn, seconds) of the form with the smallest median time."""
    times = {name: median_time(fn, repeats) for name, fn in forms.items()}
    best = min(times, key=times.get)
    return best, forms[best], times[best]


def _winograd_tile(kernel, stride, dilation):
    """The output tile m of convkit's Winograd where it applies (see convkit.functional._winograd): a 2-D
    square 3x3 or 5x5 kernel at stride 1 (any dilation: its phases are planes of their own), or a 3-D one
    whose last two dims are such, at dilation 1; else None."""
    r = kernel[-1]
    square = len(kernel) in (2, 3) and kernel[-2] == r and r in _winograd.TILE and all(s == 1 for s in stride)
    if square and (len(kernel) == 2 or all(d == 1 for d in dilation)):
        return _winograd.TILE[r]
    return None


def _tiles(n, sp, m, dilation):
    """Winograd's columns: samples x leading depth x phases x tiles of each phase's last two dims."""
    return n * math.prod(sp[:-2]) * _winograd.all_tiles(sp, m, dilation)


def forward_forms(n, c, k, out_sp, kernel, stride, dilation, rng):
    """{form: fn} for the forward products of a convolution without groups: k filters of size ``kernel``
    over c channels, output (n, k, *out_sp); im2col's both ways, and Winograd's multiply where it applies
    (a 3-D kernel's depth taps summed in its products: (K, kd*C) @ (kd*C, tiles))."""
    forms = product_forms(n * math.prod(out_sp), c * math.prod(kernel), k, rng, "cols @ W")
    m = _winograd_tile(kernel, stride, dilation)
    if m is not None:
        kd = math.prod(kernel[:-2])
        forms["Winograd multiply"] = stacked_products((m + kernel[-1] - 1) ** 2, k, kd * c,
                                                      _tiles(n, out_sp, m, dilation), rng)
    return forms


def conv_pass_forms(n, c, k, in_sp, out_sp, kernel, stride, dilation, rng):
    """{pass: {form: fn}} for the forward, input gradient and weight gradient of a convolution without
    groups: x (n, c, *in_sp), k filters of size ``kernel``, output (n, k, *out_sp)."""
    taps = math.prod(kernel)
    p_out, p_in, ck = n * math.prod(out_sp), n * math.prod(in_sp), c * taps
    passes = {"forward": forward_forms(n, c, k, out_sp, kernel, stride, dilation, rng),
              "grad_x": product_forms(p_out, k, ck, rng, "g @ W"),
              "grad_w": product_forms(ck, p_out, k, rng, "cols^T @ g")}
    if all(s == 1 for s in stride) and taps > 1:   # with one tap it is col2im's product itself
        passes["grad_x"].update({f"rotated {name}": fn for name, fn in
                                 product_forms(p_in, k * taps, c, rng, "cols @ W").items()})
    m = _winograd_tile(kernel, stride, dilation)
    if m is not None:
        a2, kd = (m + kernel[-1] - 1) ** 2, math.prod(kernel[:-2])
        passes["grad_x"]["Winograd multiply"] = stacked_products(a2, c, kd * k, _tiles(n, in_sp, m, dilation), rng)
        passes["grad_w"]["Winograd multiply"] = stacked_products(a2, k, _tiles(n, out_sp, m, dilation), kd * c, rng)
    return passes


def depthwise_pass_forms(n, c, out_sp, kernel, rng):
    """{pass: {form: fn}} for a stride-1 depthwise layer's arithmetic alone: n*c planes of output ``out_sp``
    and a kernel of ``kernel`` taps, on the padded planes' flat grid (as wide as a padded row; see
    convkit.functional._depthwise), in blocks of _depthwise._BLOCK_ELEMENTS over convkit's threads or on
    one. The weight gradient's forms return it, (n*c, taps); "arrays" holds the operands (x, g, w)."""
    padded = tuple(o + k - 1 for o, k in zip(out_sp, kernel))
    row = [math.prod(padded[i + 1:]) for i in range(len(padded))]
    offsets = [sum(t * r for t, r in zip(tap, row)) for tap in itertools.product(*map(range, kernel))]
    length = out_sp[0] * row[0]
    planes = n * c
    x = rng.standard_normal((planes, offsets[-1] + length), dtype=np.float32)
    g = rng.standard_normal((planes, offsets[-1] + length), dtype=np.float32)
    w = rng.standard_normal((planes, len(offsets)), dtype=np.float32)
    gw = np.empty((planes, len(offsets)), np.float32)
    blocks = _depthwise._blocks(planes, length)      # convkit's blocks of planes

    def sums(src):
        def block(rows):
            p0, p1 = rows
            acc, tmp = np.empty((p1 - p0, length), np.float32), np.empty((p1 - p0, length), np.float32)
            np.multiply(src[p0:p1, :length], w[p0:p1, :1], out=acc)
            for t, off in enumerate(offsets[1:], 1):
                np.multiply(src[p0:p1, off:off + length], w[p0:p1, t:t + 1], out=tmp)
                np.add(acc, tmp, out=acc)
        return block

    def dots(rows):
        p0, p1 = rows
        for t, off in enumerate(offsets):
            gw[p0:p1, t] = np.vecdot(g[p0:p1, :length], x[p0:p1, off:off + length])

    def forms(name, block, result=None):   # convkit's threads, and one thread (often as fast for such passes)
        def threaded():
            run_blocks(block, blocks)
            return result

        def inline():
            for b in blocks:
                block(b)
            return result
        return {name: threaded, f"{name}, one thread": inline}

    return {"forward": forms("multiply-adds", sums(x)), "grad_x": forms("multiply-adds", sums(g)),
            "grad_w": forms("dots", dots, gw), "arrays": {"x": x, "g": g, "w": w}}
