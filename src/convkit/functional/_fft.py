"""FFT convolution for small planes, with every discrete Fourier transform a matrix product.

A stride-1 2-D convolution is a circular correlation on a plane of P x Q cells holding the input and its
wider pad per side (:func:`convkit.shapes.circular_shape`): a read past the plane's end wraps onto the
narrower pad's zeros. In the frequency domain it is one complex product per frequency and channel pair,
summed over the input channels:

    Y[f] (K, N) = conj(W[f]) (K, C) @ X[f] (C, N)       f = (p, r), p < P, r < Q // 2 + 1

so the layer is P * (Q // 2 + 1) small matrix products (each complex one a real product of twice
the size: [Yr; Yi] = [[Wr, Wi], [-Wi, Wr]] @ [Xr; Xi]) instead of one product as long as the kernel
has taps. For 5x5 32->64 at 14x14 (a 16 x 16 plane) that is 4 real multiplies per
frequency for 144 frequencies, against 25 taps for each of 196 outputs: 8.5x fewer.

NumPy's FFT runs one small plane at a time (about 3 us each, docs/performance.md); here each 1-D DFT
is instead a product with its DFT matrix over all planes at once. A spectrum is laid out (R, P, re/im,
channels, samples), samples last: then the DFT along W (real in, only the R frequencies a real plane
needs) is one product, the DFT along H (complex) one product per frequency column, and each
frequency's channels-by-samples block is a matrix the per-frequency products read in place. The inverse
runs the same way back, H then W, keeping the real part. The input gradient is the same product with
W[f] not conjugated, and the weight gradient conj(G[f]) X[f]^T, transformed back only at the kernel's taps.

Legend: N samples, C input channels, K filters, (H, W) a plane, (P, Q) the circular plane, R = Q//2+1.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .._config import get_workspace_limit
from .._scratch import pooled, scratch
from ..shapes import circular_shape
from ._weights import derived

# Largest circular plane side: each 1-D DFT costs a multiply per input cell and frequency, so larger
# planes pay more for the transforms than the products save (and Winograd's tiles serve them).
MAX_SIDE = 32


def applicable(x_shape, w, stride, pads, dilation, groups):
    """A 2-D convolution at stride 1 without groups whose circular planes are at most MAX_SIDE a side and
    whose weight spectrum takes at most a quarter of the workspace limit."""
    if w.ndim != 4 or groups != 1 or any(s != 1 for s in stride):
        return False
    plane = _plane(x_shape, pads)
    return max(plane) <= MAX_SIDE and weight_spectrum_bytes(plane, w) <= get_workspace_limit() // 4


def _plane(x_shape, pads):
    """The circular plane (P, Q) the DFTs run on: the input and its wider pad per dim (16 x 16 for 5x5 'same'
    at 14x14, against 18 x 18 padded), see :func:`convkit.shapes.circular_shape`."""
    return circular_shape(x_shape[2:], pads)


def weight_spectrum_bytes(plane, w):
    """Bytes of the weight's spectrum in its real form (:func:`_weight_spectrum`): 4*C*K per frequency,
    P*R frequencies (3x3 256->256 at 14x14: 126 MB, against 2.4 MB of weight)."""
    return _frequencies(plane) * 4 * w.shape[0] * w.shape[1] * w.itemsize


def _phase(freqs, positions, size):
    """2 pi f p / size for every pair of ``freqs`` (rows) and ``positions`` (columns), f * p reduced mod size
    first so that the angle is exact before the float64 division."""
    return 2 * np.pi * ((np.asarray(freqs)[:, None] * np.asarray(positions)[None, :]) % size) / size


def _positions(n, shift, step):
    """The plane cells ``shift + step*i`` of n values."""
    return np.arange(n) * step + shift


@functools.lru_cache(maxsize=64)
def _real_in(n_in, size, shift, step, dtype):
    """(2R, n_in): the DFT along one axis of real values at positions ``shift + step*i``, only the
    R = size//2 + 1 frequencies a real plane needs, rows (frequency, re/im)."""
    a = _phase(np.arange(size // 2 + 1), _positions(n_in, shift, step), size)
    return np.stack([np.cos(a), -np.sin(a)], axis=1).reshape(-1, n_in).astype(dtype)


@functools.lru_cache(maxsize=64)
def _complex_in(n_in, size, shift, step, dtype):
    """(2*size, 2*n_in): the DFT along one axis of complex values at positions ``shift + step*i`` (input
    (re/im, i)), every frequency, rows (frequency, re/im)."""
    a = _phase(np.arange(size), _positions(n_in, shift, step), size)
    c, s = np.cos(a), np.sin(a)
    # (xr + i xi)(c - i s) = (xr c + xi s) + i (xi c - xr s)
    m = np.stack([np.concatenate([c, s], axis=1), np.concatenate([-s, c], axis=1)], axis=1)
    return m.reshape(2 * size, 2 * n_in).astype(dtype)


def _weights_r(size):
    """c_r of the half-spectrum inverse: 1 for frequency 0 (and size/2 when even), else 2."""
    r = size // 2 + 1
    c = np.full(r, 2.0)
    c[0] = 1.0
    if size % 2 == 0:
        c[-1] = 1.0
    return c


@functools.lru_cache(maxsize=64)
def _complex_out(n_out, size, shift, step, dtype):
    """(2*n_out, 2*size): the inverse DFT along one axis (input (frequency, re/im)) at positions
    ``shift + step*o``, complex out (rows (re/im, o)), scaled by 1 / size."""
    a = _phase(_positions(n_out, shift, step), np.arange(size), size)
    c, s = np.cos(a) / size, np.sin(a) / size
    # (yr + i yi)(c + i s) = (yr c - yi s) + i (yr s + yi c)
    re = np.stack([c, -s], axis=2).reshape(n_out, 2 * size)
    im = np.stack([s, c], axis=2).reshape(n_out, 2 * size)
    return np.concatenate([re, im], axis=0).astype(dtype)


@functools.lru_cache(maxsize=64)
def _real_out(n_out, size, shift, step, dtype):
    """(n_out, 2R): the real values at positions ``shift + step*o`` of an axis whose half spectrum (input
    (frequency, re/im), R = size//2 + 1 frequencies) is given: the real part of the inverse DFT, each
    frequency scaled by c_r / size."""
    a = _phase(_positions(n_out, shift, step), np.arange(size // 2 + 1), size)
    c = _weights_r(size) / size
    return np.stack([np.cos(a) * c, -np.sin(a) * c], axis=2).reshape(n_out, -1).astype(dtype)


def transform(a, plane, out, shift=(0, 0), step=(1, 1)):
    """Spectrum (R, P, 2, Ch, B) of a (B, Ch, h, w): its values at positions shift + step * index of a
    P x Q plane (``plane``), zero elsewhere, into ``out``. The samples go last (two copies: a 2-D
    transpose, then runs of B into (w, h, Ch, B)), so that each DFT is one product over all of them: along
    W (real in, the R frequencies a real plane needs) one (2R, w) @ (w, h*Ch*B), along H (complex) one
    (2P, 2h) @ (2h, Ch*B) per frequency column."""
    b, ch, h, w = a.shape
    p, q = plane
    r = q // 2 + 1
    mw = _real_in(w, q, shift[1], step[1], a.dtype)                      # (2R, w)
    mh = _complex_in(h, p, shift[0], step[0], a.dtype)                   # (2P, 2h)
    last = scratch("fft_samples_last", (ch, h * w, b), a.dtype)
    np.copyto(last.reshape(ch * h * w, b), a.reshape(b, ch * h * w).T)
    cells = scratch("fft_cells", (w, h, ch, b), a.dtype)
    np.copyto(cells, last.reshape(ch, h, w, b).transpose(2, 1, 0, 3))
    t = np.matmul(mw, cells.reshape(w, h * ch * b), out=scratch("fft_rows", (2 * r, h * ch * b), a.dtype))
    np.matmul(mh, t.reshape(r, 2 * h, ch * b), out=out.reshape(r, 2 * p, ch * b))   # rows (p, re/im)
    return out


def inverse(s, plane, y, shift=(0, 0), step=(1, 1)):
    """y (B, Ch, oh, ow) = the real values at positions shift + step * index of the P x Q plane whose half
    spectrum is s (R, P, 2, Ch, B): along H one (2*oh, 2P) @ (2P, Ch*B) per frequency column, along W
    one (ow, 2R) @ (2R, oh*Ch*B) keeping the real part, then the samples back first."""
    r, p, _, ch, b = s.shape
    q = plane[1]
    oh, ow = y.shape[2:]
    bh = _complex_out(oh, p, shift[0], step[0], s.dtype)                 # (2*oh, 2P)
    bw = _real_out(ow, q, shift[1], step[1], s.dtype)                    # (ow, 2R)
    z = np.matmul(bh, s.reshape(r, 2 * p, ch * b), out=scratch("fft_rows", (r, 2 * oh, ch * b), s.dtype))
    cells = np.matmul(bw, z.reshape(2 * r, oh * ch * b), out=scratch("fft_cells", (ow, oh * ch * b), s.dtype))
    last = scratch("fft_samples_last", (ch, oh * ow, b), s.dtype)
    np.copyto(last.reshape(ch, oh, ow, b), cells.reshape(ow, oh, ch, b).transpose(2, 1, 0, 3))
    _samples_first(y.reshape(b, ch * oh * ow), last.reshape(ch * oh * ow, b))
    return y


# Rows of (M, B) per copy into (B, M): NumPy's one transposing copy of (12544, 64) takes 4.4 ms, in blocks of 64
# rows 0.57 (256: 0.76, 4096: 0.96); the other way, (64, 12544) into (12544, 64), one copy takes 0.35 ms.
_TRANSPOSE_ROWS = 64


def _samples_first(dst, src):
    """dst (B, M) = src (M, B)^T, a block of rows at a time (a few samples: in one copy)."""
    if src.shape[1] < 8:
        np.copyto(dst, src.T)
        return
    for j in range(0, src.shape[0], _TRANSPOSE_ROWS):
        np.copyto(dst[:, j:j + _TRANSPOSE_ROWS], src[j:j + _TRANSPOSE_ROWS].T)


def _weight_spectrum(w, plane, dilation, kept_long=False):
    """AT (P*R, 2K, 2C): per frequency the real form of conj(W[f]) (K, C), rows (re/im, k), columns
    (re/im, c): [[Wr, Wi], [-Wi, Wr]], so that [Yr; Yi] (2K, N) = AT @ [Xr; Xi] (2C, N); its transpose
    serves the input gradient, G[f] W[f]. (The input channels are the weight's samples, so that each block
    is copied in rows of C.) ``kept_long``: a plain array, for a cache that keeps it between calls, not one
    of the pool's."""
    k, c = w.shape[:2]
    ws = transform(w.transpose(1, 0, 2, 3), plane, scratch("fft_weight", _spectrum(plane, k, c), w.dtype),
                   step=dilation)                                        # (R, P, 2, K, C)
    f = ws.shape[0] * ws.shape[1]
    wr, wi = ws.reshape(f, 2, k, c)[:, 0], ws.reshape(f, 2, k, c)[:, 1]
    at = (np.empty if kept_long else pooled)((f, 2, k, 2, c), w.dtype)
    at[:, 0, :, 0] = wr
    at[:, 0, :, 1] = wi
    np.negative(wi, out=at[:, 1, :, 0])
    at[:, 1, :, 1] = wr
    return at.reshape(f, 2 * k, 2 * c)


def _spectrum(plane, ch, b):
    """The shape of a spectrum: (R, P, 2, Ch, B)."""
    return (plane[1] // 2 + 1, plane[0], 2, ch, b)


def _frequencies(plane):
    """P * R, the frequencies of a real P x Q plane's half spectrum."""
    return plane[0] * (plane[1] // 2 + 1)


def _product(spec, at, transpose=False):
    """(R, P, 2, Ch_out, B) = per frequency at[f] (or at[f]^T) @ spec[f] (2*Ch_in, B), on a scratch buffer.
    (Splitting the frequencies over convkit's threads, BLAS on one thread each, was slower inside a
    training step: 5x5 32->64 at 14x14, batch 64, forward + both gradients 17.1 vs 16.1 ms.)"""
    r, p, _, ch, b = spec.shape
    f = r * p
    m = at.transpose(0, 2, 1) if transpose else at
    out = scratch("fft_product", (f, m.shape[1], b), spec.dtype)
    np.matmul(m, spec.reshape(f, 2 * ch, b), out=out)
    return out.reshape(r, p, 2, m.shape[1] // 2, b)


def _chunk(x_shape, w_shape, plane, itemsize):
    """Samples per chunk: the spectra of a chunk's input and output, their products and copies within the
    workspace limit."""
    c, k = x_shape[1], w_shape[0]
    cells = math.prod(_spectrum(plane, 1, 1))
    per_sample = itemsize * (2 * cells * (c + k) + 3 * plane[0] * plane[1] * max(c, k))
    return max(1, min(x_shape[0], get_workspace_limit() // max(per_sample, 1)))


class Kept:
    """What a training forward keeps for :func:`backward`: the input's spectrum (R, P, 2, C, N) and the
    weight's (AT, see _weight_spectrum), the weight as the forward used it."""

    def __init__(self, spec, at, plane):
        self.spec, self.at, self.plane = spec, at, plane


def forward(x, w, pads, dilation, out, bias=None, keep=False, weights=None):
    """y (N, K, *out) = conv(x, w) at stride 1 with zero padding ``pads``. With ``keep`` returns (y, Kept),
    or (y, None) when the batch took several chunks. ``weights`` (a WeightCache of w) keeps the weight's
    spectrum for the next call."""
    n, c = x.shape[:2]
    plane = _plane(x.shape, pads)
    shift = tuple(lo for lo, _ in pads)
    at = (_weight_spectrum(w, plane, dilation) if weights is None else
          derived(weights, ("fft", plane, tuple(dilation)), lambda: _weight_spectrum(w, plane, dilation, True)))
    step = _chunk(x.shape, w.shape, plane, x.itemsize)
    kept = keep and step >= n
    y = pooled((n, w.shape[0]) + tuple(out), x.dtype)
    xs = None
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        xs = (pooled if kept else functools.partial(scratch, "fft_spectrum"))(_spectrum(plane, c, n1 - n0), x.dtype)
        transform(x[n0:n1], plane, xs, shift)
        ys = _product(xs, at)
        if bias is not None:    # at frequency 0, where the inverse gives every cell the value / (P*Q)
            ys[0, 0, 0] += bias[:, None] * (plane[0] * plane[1])
        inverse(ys, plane, y[n0:n1])
    return (y, Kept(xs, at, plane) if kept else None) if keep else y


def backward(x, w, g, pads, dilation, need_x=True, need_w=True, kept=None):
    """(grad_x, grad_w) of the forward, given g (N, K, *out): grad_x = G[f] W[f] back at the input's cells,
    grad_w = the sum over samples of conj(G[f])^T X[f], back at the kernel's taps. G's spectrum serves both;
    ``kept`` (the forward's) saves the input's and the weight's."""
    n, c = x.shape[:2]
    k = w.shape[0]
    plane = _plane(x.shape, pads)
    shift = tuple(lo for lo, _ in pads)
    at = kept.at if kept is not None else (_weight_spectrum(w, plane, dilation) if need_x else None)
    step = n if kept is not None else _chunk(x.shape, w.shape, plane, x.itemsize)
    gx = pooled(x.shape, x.dtype) if need_x else None
    sums = scratch("fft_weight_products", (_frequencies(plane), 2 * k, 2 * c), x.dtype) if need_w else None
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        gs = transform(g[n0:n1], plane, scratch("fft_grad_spectrum", _spectrum(plane, k, n1 - n0), g.dtype))
        if need_x:
            inverse(_product(gs, at, transpose=True), plane, gx[n0:n1], shift)
        if need_w:
            xs = kept.spec if kept is not None else transform(
                x[n0:n1], plane, scratch("fft_spectrum", _spectrum(plane, c, n1 - n0), x.dtype), shift)
            _weight_products(gs, xs, sums, add=n0 > 0)
    return gx, (_weight_from_products(sums, plane, w.shape, dilation) if need_w else None)


def _weight_products(gs, xs, acc, add=False):
    """Per frequency (2K, N) @ (N, 2C) = [[Gr Xr^T, Gr Xi^T], [Gi Xr^T, Gi Xi^T]], (F, 2K, 2C), into ``acc``
    (or added to it)."""
    r, p, _, k, n = gs.shape
    c = xs.shape[3]
    f = r * p
    src_g, src_x = gs.reshape(f, 2 * k, n), xs.reshape(f, 2 * c, n).transpose(0, 2, 1)
    if add:
        acc += np.matmul(src_g, src_x)
    else:
        np.matmul(src_g, src_x, out=acc)


def _weight_from_products(m, plane, w_shape, dilation):
    """grad_w from the summed products (F, 2K, 2C): conj(G) X has re = Gr Xr + Gi Xi, im = Gr Xi - Gi Xr,
    laid out (R, P, 2, K*C, 1) for the inverse at the kernel's taps."""
    k, c = w_shape[:2]
    f = m.shape[0]
    m = m.reshape(f, 2, k, 2, c)
    s = scratch("fft_weight_spectrum", (f, 2, k, c), m.dtype)
    np.add(m[:, 0, :, 0], m[:, 1, :, 1], out=s[:, 0])
    np.subtract(m[:, 0, :, 1], m[:, 1, :, 0], out=s[:, 1])
    gw = np.empty((1, k * c) + tuple(w_shape[2:]), m.dtype)
    return inverse(s.reshape(_spectrum(plane, k * c, 1)), plane, gw, step=dilation).reshape(w_shape)
