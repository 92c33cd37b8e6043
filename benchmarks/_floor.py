"""Matrix products alone: how fast a convolution built on them could be (shared by conv_suite.py and onnx_bench.py).

Every algorithm convkit has computes a convolution as matrix products plus the memory passes
around them (columns, transforms, copies into the result). Timing the products alone, operands
already in place and each in its faster form, gives a floor that no such algorithm can go under:
a layer whose products alone take longer than a peer's whole run cannot match it by removing
overhead, only by doing fewer multiplications.

Forms per pass of a convolution with P output positions, depth Ck = C * prod(kernel) and K filters:

- im2col's product in both orientations, (P, Ck) @ (Ck, K) and (K, Ck) @ (Ck, P), for the forward;
  (P, K) @ (K, Ck) (col2im's) and, at stride 1, the forward of grad_out with the rotated kernel,
  (P_in, K * prod(kernel)) @ (., C), for the input gradient; (Ck, P) @ (P, K) for the weight's;
- for 2-D 3x3 and 5x5 stride-1 layers, Winograd's multiply phase: a^2 products (K, C) @ (C, T)
  over T tiles of F(m x m, r x r) for the forward and (C, K) @ (K, T) for the input gradient, and
  a^2 products (K, T) @ (T, C) of F(r x r, m x m) for the weight gradient (on the input transform
  the forward kept).
"""
from __future__ import annotations

import math

import numpy as np

from _timing import median_time
from convkit.functional import _winograd


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
    """The output tile m of convkit's Winograd for a 2-D square kernel at stride 1 and dilation 1, else None."""
    r = kernel[0]
    if (len(kernel) == 2 and kernel[0] == kernel[1] and r in _winograd.TILE and all(s == 1 for s in stride)
            and all(d == 1 for d in dilation)):
        return _winograd.TILE[r]
    return None


def _tiles(n, sp, m):
    return n * math.prod(-(-o // m) for o in sp)


def forward_forms(n, c, k, out_sp, kernel, stride, dilation, rng):
    """{form: fn} for the forward products of a convolution without groups: k filters of size ``kernel``
    over c channels, output (n, k, *out_sp); im2col's both ways, and Winograd's multiply where it applies."""
    forms = product_forms(n * math.prod(out_sp), c * math.prod(kernel), k, rng, "cols @ W")
    m = _winograd_tile(kernel, stride, dilation)
    if m is not None:
        forms["Winograd multiply"] = stacked_products((m + kernel[0] - 1) ** 2, k, c, _tiles(n, out_sp, m), rng)
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
        a2 = (m + kernel[0] - 1) ** 2
        passes["grad_x"]["Winograd multiply"] = stacked_products(a2, c, k, _tiles(n, in_sp, m), rng)
        passes["grad_w"]["Winograd multiply"] = stacked_products(a2, k, _tiles(n, out_sp, m), c, rng)
    return passes
