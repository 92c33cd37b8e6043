"""FFT convolution for small planes, with every discrete Fourier transform a matrix product.

A stride-1 2-D convolution of a padded plane of P x Q cells is a circular correlation of size P x Q
(no output reads past the plane's end, so nothing wraps around). In the frequency domain it is one
complex product per frequency and channel pair, summed over the input channels:

    Y[f] (N, K) = X[f] (N, C) @ conj(W[f])^T (C, K)       f = (p, r), p < P, r < Q // 2 + 1

so the layer is P * (Q // 2 + 1) small matrix products (each complex one a real product of twice
the size: Y = [Yr | Yi] = [Xr | Xi] @ [[Wr^T, -Wi^T], [Wi^T, Wr^T]]) instead of one product as
long as the kernel has taps. For 5x5 32->64 at 14x14 (18 x 18 padded) that is 4 real multiplies per
frequency for 180 frequencies, against 25 taps for each of 196 outputs: 6.8x fewer.

NumPy's FFT runs one small plane at a time (about 3 us each, docs/performance.md); here each 1-D DFT
is instead a product with its DFT matrix over all planes at once, on the samples' channels-last
layout: along H (real in, complex out) for each sample, then along W (complex, only the
Q // 2 + 1 frequencies a real input needs) for each row of frequencies. The inverse runs the same
way back, W then H, keeping the real part. The input gradient is the same product with W[f] not
conjugated, and the weight gradient conj(G[f])^T @ X[f], transformed back only at the kernel's taps.

Legend: N samples, C input channels, K filters, (H, W) a plane, (P, Q) the padded plane, R = Q//2+1.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import _blas
from .._config import get_workspace_limit
from .._parallel import in_worker, num_threads, run_blocks
from .._scratch import pooled, scratch

# Largest padded plane side: each 1-D DFT costs a multiply per input cell and frequency, so larger
# planes pay more for the transforms than the products save (and Winograd's tiles serve them).
MAX_SIDE = 32


def applicable(x_shape, w, stride, pads, dilation, groups):
    """A 2-D convolution at stride 1 without groups whose padded planes are at most MAX_SIDE a side and
    whose weight spectrum takes at most a quarter of the workspace limit."""
    if w.ndim != 4 or groups != 1 or any(s != 1 for s in stride):
        return False
    plane = _plane(x_shape, pads)
    return max(plane) <= MAX_SIDE and weight_spectrum_bytes(plane, w) <= get_workspace_limit() // 4


def weight_spectrum_bytes(plane, w):
    """Bytes of the weight's spectrum in its real form (:func:`_weight_spectrum`): 4*C*K per frequency,
    P*R frequencies (3x3 256->256 at 14x14: 151 MB, against 2.4 MB of weight)."""
    return math.prod(_spectrum(plane, 4 * w.shape[0] * w.shape[1])) // 2 * w.itemsize


@functools.lru_cache(maxsize=64)
def _real_in(n_in, size, shift, step, dtype):
    """(2*size, n_in): the DFT along one axis of real values at positions ``shift + step*i``, rows
    (frequency, re/im)."""
    a = 2 * np.pi * ((np.arange(size)[:, None] * (np.arange(n_in)[None, :] * step + shift)) % size) / size
    m = np.stack([np.cos(a), -np.sin(a)], axis=1)                       # (size, 2, n_in)
    return m.reshape(2 * size, n_in).astype(dtype)


@functools.lru_cache(maxsize=64)
def _complex_half(n_in, size, shift, step, dtype):
    """(2R, 2*n_in): the DFT along one axis of complex values at positions ``shift + step*i`` (input
    (re/im, i)), only the R = size//2 + 1 frequencies a real plane needs, rows (frequency, re/im)."""
    r = size // 2 + 1
    a = 2 * np.pi * ((np.arange(r)[:, None] * (np.arange(n_in)[None, :] * step + shift)) % size) / size
    c, s = np.cos(a), np.sin(a)
    # (xr + i xi)(c - i s) = (xr c + xi s) + i (xi c - xr s)
    m = np.stack([np.concatenate([c, s], axis=1), np.concatenate([-s, c], axis=1)], axis=1)
    return m.reshape(2 * r, 2 * n_in).astype(dtype)


def _weights_r(size):
    """c_r of the half-spectrum inverse: 1 for frequency 0 (and size/2 when even), else 2."""
    r = size // 2 + 1
    c = np.full(r, 2.0)
    c[0] = 1.0
    if size % 2 == 0:
        c[-1] = 1.0
    return c


@functools.lru_cache(maxsize=64)
def _inverse_half(n_out, size, shift, step, dtype):
    """(2*n_out, 2R): the inverse DFT along the half-spectrum axis (input (frequency, re/im)) at
    positions ``shift + step*o``, complex out (rows (re/im, o)), scaled by c_r / size."""
    r = size // 2 + 1
    a = 2 * np.pi * (((np.arange(n_out)[:, None] * step + shift) * np.arange(r)[None, :]) % size) / size
    c, s = np.cos(a) * _weights_r(size) / size, np.sin(a) * _weights_r(size) / size
    # (yr + i yi)(c + i s) = (yr c - yi s) + i (yr s + yi c)
    re = np.stack([c, -s], axis=2).reshape(n_out, 2 * r)
    im = np.stack([s, c], axis=2).reshape(n_out, 2 * r)
    return np.concatenate([re, im], axis=0).astype(dtype)


@functools.lru_cache(maxsize=64)
def _inverse_real(n_out, size, shift, step, dtype):
    """(n_out, 2*size): the real part of the inverse DFT along the full axis (input (frequency, re/im))
    at positions ``shift + step*o``, scaled by 1 / size."""
    a = 2 * np.pi * (((np.arange(n_out)[:, None] * step + shift) * np.arange(size)[None, :]) % size) / size
    return (np.stack([np.cos(a), -np.sin(a)], axis=2).reshape(n_out, 2 * size) / size).astype(dtype)


def _ranges(n):
    """Up to one contiguous range of range(n) per convkit thread."""
    k = max(1, min(num_threads(), n))
    return [(i * n // k, (i + 1) * n // k) for i in range(k)]


def _side_by_side(fn, n):
    """fn(lo, hi) over ranges of range(n) side by side on convkit's threads, BLAS held to one thread each
    (the products here are small: one BLAS call on two threads runs them slower than one thread per range;
    the 180 frequency products of 5x5 32->64 at 14x14, batch 64: 1.36 ms vs 0.80)."""
    ranges = _ranges(n)
    if len(ranges) < 2 or in_worker():
        for lo, hi in ranges:
            fn(lo, hi)
        return
    with _blas.one_thread():
        run_blocks(lambda span: fn(*span), ranges, always=True)


def transform(a, plane, shift=(0, 0), step=(1, 1), out=None):
    """Spectrum (B, P, R, 2, Ch) of a (B, Ch, h, w): its values at positions shift + step * index of a
    P x Q plane (``plane``), zero elsewhere, into ``out`` (default: a new array)."""
    b, ch, h, w = a.shape
    p, q = plane
    r = q // 2 + 1
    mh = _real_in(h, p, shift[0], step[0], a.dtype)                      # (2P, h)
    mw = _complex_half(w, q, shift[1], step[1], a.dtype)                 # (2R, 2w)
    out = np.empty((b, p, r, 2, ch), a.dtype) if out is None else out

    def part(lo, hi):
        nb = hi - lo
        cl = scratch("fft_channels_last", (nb, h * w, ch), a.dtype)
        np.copyto(cl, a[lo:hi].reshape(nb, ch, h * w).transpose(0, 2, 1))
        t = np.matmul(mh, cl.reshape(nb, h, w * ch), out=scratch("fft_rows", (nb, 2 * p, w * ch), a.dtype))
        # along W, each (sample, p): input (re/im, w) rows, (Ch) columns; out rows (r, re/im)
        np.matmul(mw, t.reshape(nb * p, 2 * w, ch), out=out[lo:hi].reshape(nb * p, 2 * r, ch))

    _side_by_side(part, b)
    return out


def inverse(s, plane, out, shift=(0, 0), step=(1, 1), y=None):
    """(B, Ch, *out) real values at positions shift + step * index of the P x Q plane whose
    half spectrum is s (B, P, R, 2, Ch), into ``y`` (default: a pooled array)."""
    b, p, r, _, ch = s.shape
    q = plane[1]
    oh, ow = out
    bw = _inverse_half(ow, q, shift[1], step[1], s.dtype)                # (2*ow, 2R)
    bh = _inverse_real(oh, p, shift[0], step[0], s.dtype)                # (oh, 2P)
    y = pooled((b, ch, oh, ow), s.dtype) if y is None else y

    def part(lo, hi):
        nb = hi - lo
        z = np.matmul(bw, s[lo:hi].reshape(nb * p, 2 * r, ch), out=scratch("fft_rows", (nb * p, 2 * ow, ch), s.dtype))
        cl = np.matmul(bh, z.reshape(nb, 2 * p, ow * ch), out=scratch("fft_channels_last", (nb, oh, ow * ch), s.dtype))
        np.copyto(y[lo:hi].reshape(nb, ch, oh * ow), cl.reshape(nb, oh * ow, ch).transpose(0, 2, 1))

    _side_by_side(part, b)
    return y


def _weight_spectrum(w, plane, dilation):
    """A (P*R, 2C, 2K): per frequency the real form of conj(W[f])^T, rows (re/im, c), columns (re/im, k):
    [[Wr^T, -Wi^T], [Wi^T, Wr^T]], so that [Yr | Yi] = [Xr | Xi] @ A."""
    k, c = w.shape[:2]
    # the input channels as the batch, so that each frequency's (C, K) block is copied in rows of K
    ws = transform(w.transpose(1, 0, 2, 3), plane, step=dilation,
                   out=scratch("fft_weight", (c,) + _spectrum(plane, k), w.dtype))   # (C, P, R, 2, K)
    f = ws.shape[1] * ws.shape[2]
    wr = ws[:, :, :, 0].reshape(c, f, k).transpose(1, 0, 2)              # (F, C, K)
    wi = ws[:, :, :, 1].reshape(c, f, k).transpose(1, 0, 2)
    a = pooled((f, 2, c, 2, k), w.dtype)
    a[:, 0, :, 0] = wr
    np.negative(wi, out=a[:, 0, :, 1])
    a[:, 1, :, 0] = wi
    a[:, 1, :, 1] = wr
    return a.reshape(f, 2 * c, 2 * k)


def _spectrum(plane, ch):
    """The shape of one sample's spectrum: (P, R, 2, Ch)."""
    return (plane[0], plane[1] // 2 + 1, 2, ch)


def _product(spec, a, transpose=False):
    """(B, P, R, 2, Ch_out) = per frequency spec[b, f] (2*Ch_in) @ a[f] (or a[f]^T), on a scratch buffer."""
    b, p, r, _, ch = spec.shape
    f = p * r
    m = a.transpose(0, 2, 1) if transpose else a
    out = scratch("fft_product", (b, f, m.shape[2]), spec.dtype)
    src, dst = spec.reshape(b, f, 2 * ch).transpose(1, 0, 2), out.transpose(1, 0, 2)
    _side_by_side(lambda lo, hi: np.matmul(src[lo:hi], m[lo:hi], out=dst[lo:hi]), f)
    return out.reshape(b, p, r, 2, m.shape[2] // 2)


def _plane(x_shape, pads):
    return tuple(s + lo + hi for s, (lo, hi) in zip(x_shape[2:], pads))


def _chunk(x_shape, w_shape, pads, itemsize):
    """Samples per chunk: the spectra of a chunk's input and output, its products and its channels-last
    copies within the workspace limit."""
    plane = _plane(x_shape, pads)
    c, k = x_shape[1], w_shape[0]
    cells = math.prod(_spectrum(plane, 1))
    per_sample = itemsize * (2 * cells * (c + k) + 2 * plane[0] * plane[1] * max(c, k))
    return max(1, min(x_shape[0], get_workspace_limit() // max(per_sample, 1)))


class Kept:
    """What a training forward keeps for :func:`backward`: the input's spectrum (N, P, R, 2, C) and the
    weight's (A, see _weight_spectrum), the weight as the forward used it."""

    def __init__(self, spec, a, plane):
        self.spec, self.a, self.plane = spec, a, plane


def forward(x, w, pads, dilation, out, bias=None, keep=False):
    """y (N, K, *out) = conv(x, w) at stride 1 with zero padding ``pads``. With ``keep`` returns (y, Kept),
    or (y, None) when the batch took several chunks."""
    n = x.shape[0]
    plane = _plane(x.shape, pads)
    shift = tuple(lo for lo, _ in pads)
    a = _weight_spectrum(w, plane, dilation)
    step = _chunk(x.shape, w.shape, pads, x.itemsize)
    kept = keep and step >= n
    y = pooled((n, w.shape[0]) + tuple(out), x.dtype)
    xs = None
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        xs = transform(x[n0:n1], plane, shift, out=(pooled if kept else functools.partial(scratch, "fft_spectrum"))(
            (n1 - n0,) + _spectrum(plane, x.shape[1]), x.dtype))
        inverse(_product(xs, a), plane, out, y=y[n0:n1])
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return (y, Kept(xs, a, plane) if kept else None) if keep else y


def backward(x, w, g, pads, dilation, need_x=True, need_w=True, kept=None):
    """(grad_x, grad_w) of the forward, given g (N, K, *out): grad_x = G[f] W[f] back at the input's cells,
    grad_w = the sum over samples of conj(G[f])^T X[f], back at the kernel's taps. G's spectrum serves both;
    ``kept`` (the forward's) saves the input's and the weight's."""
    n, c = x.shape[:2]
    k = w.shape[0]
    plane = _plane(x.shape, pads)
    shift = tuple(lo for lo, _ in pads)
    a = kept.a if kept is not None else (_weight_spectrum(w, plane, dilation) if need_x else None)
    step = n if kept is not None else _chunk(x.shape, w.shape, pads, x.itemsize)
    gx = pooled(x.shape, x.dtype) if need_x else None
    m = None
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        gs = transform(g[n0:n1], plane, out=scratch("fft_grad_spectrum", (n1 - n0,) + _spectrum(plane, k), g.dtype))
        if need_x:
            inverse(_product(gs, a, transpose=True), plane, x.shape[2:], shift, y=gx[n0:n1])
        if need_w:
            xs = kept.spec if kept is not None else transform(
                x[n0:n1], plane, shift, out=scratch("fft_spectrum", (n1 - n0,) + _spectrum(plane, c), x.dtype))
            m = _weight_products(gs, xs, m)
    return gx, (_weight_from_products(m, plane, w.shape, dilation) if need_w else None)


def _weight_products(gs, xs, acc=None):
    """Per frequency (2K, N) @ (N, 2C) = [[Gr^T Xr, Gr^T Xi], [Gi^T Xr, Gi^T Xi]], (F, 2K, 2C), added to ``acc``."""
    n, p, r, _, k = gs.shape
    c = xs.shape[-1]
    f = p * r
    src_g, src_x = gs.reshape(n, f, 2 * k).transpose(1, 2, 0), xs.reshape(n, f, 2 * c).transpose(1, 0, 2)
    if acc is None:
        acc = scratch("fft_weight_products", (f, 2 * k, 2 * c), gs.dtype)
        _side_by_side(lambda lo, hi: np.matmul(src_g[lo:hi], src_x[lo:hi], out=acc[lo:hi]), f)
    else:
        def add(lo, hi):
            acc[lo:hi] += np.matmul(src_g[lo:hi], src_x[lo:hi])
        _side_by_side(add, f)
    return acc


def _weight_from_products(m, plane, w_shape, dilation):
    """grad_w from the summed products: conj(G) X has re = Gr Xr + Gi Xi, im = Gr Xi - Gi Xr, laid out
    (1, P, R, 2, K*C) for the inverse at the kernel's taps."""
    k, c = w_shape[:2]
    f = m.shape[0]
    m = m.reshape(f, 2, k, 2, c)
    s = scratch("fft_weight_spectrum", (f, 2, k, c), m.dtype)
    np.add(m[:, 0, :, 0], m[:, 1, :, 1], out=s[:, 0])
    np.subtract(m[:, 0, :, 1], m[:, 1, :, 0], out=s[:, 1])
    gw = inverse(s.reshape((1,) + _spectrum(plane, k * c)), plane, w_shape[2:], step=dilation,
                 y=np.empty((1, k * c) + tuple(w_shape[2:]), m.dtype))
    return gw.reshape(w_shape)
