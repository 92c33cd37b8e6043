"""Winograd convolution F(m x m, r x r) for stride-1, dilation-1 convolutions without groups:
F(4x4, 3x3) for 3x3 kernels and F(2x2, 5x5) for 5x5 ones, 2-D, or 3-D over the last two dims with
the depth taps summed in the products (see :func:`forward`).

Lavin and Gray (2016), "Fast Algorithms for Convolutional Neural Networks". Each m x m tile
of the output is computed from the a x a input tile d that it reads (a = m + r - 1 points):

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise)

so a tile costs a^2 multiplies per (input channel, filter) pair instead of r^2 m^2: 4x fewer
for F(4x4, 3x3) and 2.8x fewer for F(2x2, 5x5). Summed over the input channels the elementwise
products become a^2 matrix products, one per transform point:

    M[p] (K, T) = U[p] (K, C) @ V[p] (C, T)       p = 0 .. a^2-1, T = tiles in the batch

Every transform is one matrix product too: with the tiles flattened row-major, B^T d B is
kron(B^T, B^T) @ vec(d), and likewise for G and A. So the whole layer is four BLAS calls and two
copies (gather the overlapping input tiles, scatter the output tiles), nothing elementwise.

The matrices come from the Toom-Cook construction (:func:`matrices`) at the points 0, +-1, +-2
and infinity; float32 results stay within a few 1e-6 relative of the float64 reference.
The input gradient of a stride-1 convolution is itself one (a full correlation of grad_out with
the kernel rotated 180 degrees and its channel axes swapped), so the same code serves both. The
weight gradient runs the forward's products backwards on the transformed input the forward kept
(:func:`weight_grad`).
"""
from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._config import get_workspace_limit
from .._parallel import num_threads, run_blocks
from .._parallel import parts as _parts
from .._scratch import kept_or_scratch, place, pooled, scratch
from ..shapes import full_correlation_padding, phase_cells
from ._weights import derived, rotated

# Interpolation points in the order they are used (infinity is added last): F(m, r) takes the
# first m + r - 2. F(4x4, 3x3) and F(2x2, 5x5) both use 0, +-1, +-2 and infinity.
POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))
TILE = {3: 4, 5: 2}    # output tile per kernel size


def applicable(w, stride, dilation, groups):
    """A 2-D 3x3 or 5x5 kernel, or a 3-D one of any depth whose last two dims are 3x3 or 5x5; stride 1,
    no groups; dilation 1, or any dilation for a 2-D kernel (each phase of the dilated grid is a plain
    convolution, see :func:`forward`)."""
    return w.ndim in (4, 5) and w.shape[-2] == w.shape[-1] and w.shape[-1] in TILE and all(s == 1 for s in stride) \
        and (w.ndim == 4 or all(d == 1 for d in dilation)) and groups == 1


def tiles(out, m, dilation=(1, 1)):
    """(th, tw) tiles of m x m outputs per phase of the dilated output grid (one phase without dilation)."""
    return tuple(-(-(-(-o // d)) // m) for o, d in zip(out[-2:], dilation))


def all_tiles(out, m, dilation=(1, 1)):
    """The tiles of every phase of one sample's output plane: what the products' columns count per plane."""
    return math.prod(dilation[-2:]) * math.prod(tiles(out, m, dilation[-2:]))


def _solve(matrix):
    """The inverse of a small square matrix of Fractions (Gauss-Jordan, exact)."""
    n = len(matrix)
    rows = [list(r) + [Fraction(int(i == j)) for j in range(n)] for i, r in enumerate(matrix)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if rows[i][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for i in range(n):
            if i != col and rows[i][col] != 0:
                rows[i] = [a - rows[i][col] * b for a, b in zip(rows[i], rows[col])]
    return [r[n:] for r in rows]


@functools.lru_cache(maxsize=None)
def matrices(m, r, points=None):
    """(A^T, G, B^T) of F(m, r) by the Toom-Cook construction, as float64 arrays.

    With E the evaluation matrix of a polynomial of degree a-1 at the points (and infinity),
    A and G evaluate the output tile's and the kernel's polynomials, and B^T = E^-T, the
    transposed interpolation: y = A^T [(G g) * (B^T d)] is then the correlation of d with g.
    Each row of B^T is scaled to integers and the factor moved into G, as Lavin does, so the
    transforms of the data are exact in floating point.
    """
    a = m + r - 1
    pts = [Fraction(p) for p in (points or POINTS[:a - 1])]
    if len(pts) != a - 1:
        raise ValueError(f"winograd: points must be {a - 1} for F({m}, {r}); got points={points!r}.")

    def evaluate(p, size):
        return [p ** i for i in range(size)]

    def at_infinity(size):
        return [Fraction(int(i == size - 1)) for i in range(size)]

    A = [evaluate(p, m) for p in pts] + [at_infinity(m)]
    G = [evaluate(p, r) for p in pts] + [at_infinity(r)]
    E = [evaluate(p, a) for p in pts] + [at_infinity(a)]
    e_inv = _solve(E)
    bt = [[e_inv[t][j] for t in range(a)] for j in range(a)]          # E^-T
    for j in range(a):
        scale = math.lcm(*(v.denominator for v in bt[j]))
        bt[j] = [v * scale for v in bt[j]]
        G[j] = [v / scale for v in G[j]]
    at = [[A[j][i] for j in range(a)] for i in range(m)]
    mats = tuple(np.array([[float(v) for v in row] for row in t]) for t in (at, G, bt))
    for t in mats:
        t.flags.writeable = False   # cached and shared between threads
    return mats


@functools.lru_cache(maxsize=None)
def _transforms(r, dtype, m):
    mats = tuple(np.kron(t, t).astype(dtype) for t in matrices(m, r))
    for t in mats:
        t.flags.writeable = False   # cached and shared between threads
    return mats


def transforms(r, dtype=np.float64, m=None):
    """The 2-D transforms (kron(A^T, A^T), kron(G, G), kron(B^T, B^T)) of F(m x m, r x r) as ``dtype``."""
    return _transforms(r, np.dtype(dtype), m or TILE[r])


def _place(x, pads, size):
    """x (n, c, H, W) in a scratch array (n, c, *size) at offset ``lo`` of each (lo, hi) pad, zeros around it;
    a negative lo or a size smaller than the padded input crops."""
    buf = scratch("winograd_input", x.shape[:2] + tuple(size), x.dtype)
    src, dst = [slice(None)] * 2, [slice(None)] * 2
    for length, (lo, _), s in zip(x.shape[2:], pads, size):
        a0, b0 = max(0, -lo), max(0, lo)
        n = min(length - a0, s - b0)
        if n <= 0:
            buf.fill(0)
            return buf
        src.append(slice(a0, a0 + n))
        dst.append(slice(b0, b0 + n))
    return place(buf, tuple(dst), x[tuple(src)])


# A block of the tile gather reads about this much of the padded input: every (i, j) point of the tiles
# sweeps the block once, so it should stay in a core's L2 cache. Gathering 64->64 at 56x56, batch 8 (ms):
# all samples at once 3.5-4.0, blocks of 1 sample 1.6, of 2 (1.7 MiB) 1.4; 32 channels at 28x28, batch 64:
# blocks of 1 sample 3.0, of 16 (1.8 MiB) 1.7.
_GATHER_BLOCK_BYTES = 2 << 20


def _gather(tiles, out):
    """out = tiles (a, a, c, n, th, tw), a strided view of the padded input, copied in blocks of samples
    small enough to stay in cache, over convkit's threads; a batch smaller than the threads splits by
    tile point instead."""
    c, n = tiles.shape[2:4]
    if n < num_threads():
        return _copy(tiles, 0, out=out)
    per_sample = c * tiles.shape[4] * tiles.strides[4]     # bytes of padded input per sample
    return _copy(tiles, 3, out, pieces=max(num_threads(), -(-n * per_sample // _GATHER_BLOCK_BYTES)))


def _place_phases(x, pads, size, dilation):
    """x (n, c, H, W) zero-padded by ``pads`` and split into the phases of the dilated grid, (n*dh*dw, c, *size)
    in a scratch array: phase (ph, pw) cell (u, v) is padded cell (ph + dh*u, pw + dw*v). Each phase is
    a plain (undilated) input for the taps of a dilated kernel."""
    n, c = x.shape[:2]
    buf = scratch("winograd_input", (n,) + tuple(dilation) + (c,) + tuple(size), x.dtype)
    for phase in itertools.product(*map(range, dilation)):
        cells = [phase_cells(n, lo, p, d, s) for n, (lo, _), p, d, s in zip(x.shape[2:], pads, phase, dilation, size)]
        place(buf[(slice(None),) + phase], (slice(None),) * 2 + tuple(c[0] for c in cells),
              x[(slice(None),) * 2 + tuple(c[1] for c in cells)])
    return buf.reshape((-1, c) + tuple(size))


# Planes narrower than this many tiles gather whole tiles instead (_gather_rows): _gather's copies run along
# a row of tiles, two to seven elements here. Gather and input transform, batch 8, ms, _gather vs whole
# tiles: 128 channels at 28x28 (7 tiles) 2.53 vs 2.23, 256 at 14x14 2.07 vs 1.54, 512 at 7x7 1.58 vs 0.85;
# but 64 at 56x56 (14 tiles) 3.39 vs 3.42, and at batch 1 the threads cost more than they save.
_ROW_GATHER_MAX_TW = 8


def _gather_rows(xp, a, m, th, tw, out):
    """out (c, n, th, tw, a, a) = the a x a tiles of the padded input xp (n, c, Hp, Wp), each tile row
    (a contiguous values) copied as one element of a * itemsize bytes, over convkit's threads."""
    s = xp.strides
    rows = np.ndarray((xp.shape[1], xp.shape[0], th, tw, a), dtype=np.dtype((np.void, a * xp.itemsize)),
                      buffer=xp, strides=(s[1], s[0], m * s[2], m * s[3], s[2]))
    _copy(rows, 0, _rows(out, a), pieces=num_threads())
    return out


def forward(x, w, pads, out, bias=None, m=None, weights=None, keep=False, dilation=(1, 1)):
    """y (N, K, *out) = conv(x, w) for x (N, C, H, W), w (K, C, r, r), or x (N, C, D, H, W), w (K, C, kd, r, r),
    zero padding ``pads`` (a (lo, hi) pair per spatial dim), stride 1. A bias (K,) is added to the products at
    the transform point whose outputs are all ones, so that no pass over y adds it. ``weights`` (a WeightCache
    of w) keeps the transformed weight U. With ``keep`` returns (y, :class:`Kept`), the transformed input for
    :func:`weight_grad`, or (y, None) when the batch took several chunks.

    ``dilation`` (dh, dw) (2-D kernels): output (ph + dh*q, pw + dw*u) reads only input cells of the same
    phase (ph, pw) of the dilated grid, at distances q + i, u + j in phase units. So each of the dh*dw phases
    is a plain convolution: the padded input is split into its phase planes (:func:`_place_phases`), which
    count as more samples, the products are unchanged, and the output tiles go into phase planes, then back
    into y at the dilation's stride (:func:`_scatter_dilated`).

    A 3-D kernel is Winograd over its last two dims with the depth taps summed in the products: each
    (sample, depth) plane is transformed once, V (a*a, C, Dp, T2), and the kd depth-shifted copies of V
    are stacked, (a*a, kd*C, OD*N*T2), so that every transform point is still one product
    M[p] (K, OD*N*T2) = U[p] (K, kd*C) @ Vs[p]; a 2-D kernel is the case kd = 1, D = 1.
    """
    if x.ndim == 4:
        res = forward(x[:, :, None], w[:, :, None], ((0, 0),) + tuple(pads), (1,) + tuple(out), bias, m, weights, keep,
                      dilation)
        y, kept = res if keep else (res, None)
        y = y.reshape(y.shape[:2] + y.shape[3:])
        return (y, kept) if keep else y
    n_, c = x.shape[:2]
    k, kd, r = w.shape[0], w.shape[2], w.shape[-1]
    m = m or TILE[r]
    a = m + r - 1
    od, oh, ow = out
    dp = od + kd - 1
    dh, dw = dilation
    dilated = dh * dw > 1          # (2-D only) then the phases of a sample count as samples below
    th, tw = tiles(out, m, dilation)
    t2 = dh * dw * th * tw
    size = (dp, (th - 1) * m + a, (tw - 1) * m + a)
    at2, g2, bt2 = transforms(r, x.dtype, m)
    u = derived(weights, ("winograd", m), lambda: (g2 @ w.transpose(0, 2, 1, 3, 4).reshape(k * kd * c, r * r).T)
                .reshape(a * a, k, kd * c))                                   # U[p] (K, kd*C), taps (kd, C)
    y = pooled((n_, k) + tuple(out), x.dtype)
    stacked = kd * a * a * c * od if kd > 1 else 0
    per_sample = x.itemsize * (c * math.prod(size)
                               + t2 * (2 * a * a * c * dp + stacked + od * (a * a * k + 2 * m * m * k)))
    step = max(1, min(n_, get_workspace_limit() // max(per_sample, 1)))
    kept = keep and step == n_        # several chunks: nothing kept (the weight gradient makes its own columns)
    for n0 in range(0, n_, step):
        n1 = min(n_, n0 + step)
        nb = n1 - n0
        nt = nb * t2
        if dilated:
            planes = _place_phases(x[n0:n1, :, 0], pads[1:], size[1:], dilation)
            nb = nb * dh * dw
        else:
            planes = _place(x[n0:n1], pads, size).reshape((nb, c * dp) + size[1:])  # every (channel, depth) a plane
        # a V that is kept is a pooled array; temporaries are scratch buffers
        v = kept_or_scratch((a * a, c * dp * nt), x.dtype, None if kept and kd == 1 else "winograd_v")
        if tw < _ROW_GATHER_MAX_TW and v.nbytes >= _THREADED_COPY_BYTES:
            # narrow planes: tiles gathered whole, (c, n, th, tw, a, a), and transformed as a transposed operand
            d = _gather_rows(planes, a, m, th, tw, scratch("winograd_d", (c * dp, nb, th, tw, a, a), x.dtype))
            np.matmul(bt2, d.reshape(c * dp * nt, a * a).T, out=v)
        else:
            s = planes.strides
            view = as_strided(planes, (a, a, c * dp, nb, th, tw), (s[2], s[3], s[1], s[0], m * s[2], m * s[3]),
                              writeable=False)
            d = _gather(view, scratch("winograd_d", view.shape, x.dtype)).reshape(a * a, c * dp * nt)  # vec(d)
            np.matmul(bt2, d, out=v)
        if kd == 1:
            vs = v.reshape(a * a, c, od * nt)                                # V[p] (C, OD*T)
        else:   # the depth taps side by side: Vs[p] (kd*C, OD*N*T2), rows (kd, C), columns (d, n, th, tw)
            v = v.reshape(a * a, c, dp, nt)
            vs = kept_or_scratch((a * a, kd, c, od * nt), x.dtype, None if kept else "winograd_vs")
            for j in range(kd):
                vs[:, j] = v[:, :, j:j + od].reshape(a * a, c, od * nt)
            vs = vs.reshape(a * a, kd * c, od * nt)
        prod = np.matmul(u, vs, out=scratch("winograd_m", (a * a, k, od * nt), x.dtype))  # M[p] (K, OD*T)
        if bias is not None:   # A^T's column at the point 1 is all ones: a bias there reaches every output
            prod[_ones_point(m, r)] += bias[:, None]
        # the output transform with the operands swapped, (K*T, a*a) @ (a*a, m*m): each tile's m*m outputs
        # come out together, rows of m contiguous values, which _scatter moves as single elements
        yt = np.matmul(prod.reshape(a * a, -1).T, at2.T, out=scratch("winograd_y", (k * od * nt, m * m), x.dtype))
        if dilated:
            _scatter_dilated(yt.reshape(k, nb, th, tw, m, m), y[n0:n1, :, 0], (dh, dw))
        else:
            _scatter(yt.reshape(k * od, nb, th, tw, m, m), y[n0:n1].reshape(nb, k * od, oh, ow))
    if not keep:
        return y
    return y, (Kept(vs, m, dilation) if kept else None)


class Kept:
    """A forward's transformed input, kept for :func:`weight_grad`: Vs (a*a, kd*C, OD*N*T2) (see
    :func:`forward`), its tile size m and its dilation."""

    def __init__(self, vs, m, dilation=(1, 1)):
        self.vs, self.m, self.dilation = vs, m, tuple(dilation)


def _phase_planes(shape, dilation, m, dtype, slot):
    """A scratch array (n, ph, pw, K, th*m, tw*m): every phase's outputs on whole tiles."""
    n, k, oh, ow = shape
    th, tw = tiles((oh, ow), m, dilation)
    return scratch(slot, (n,) + tuple(dilation) + (k, th * m, tw * m), dtype)


def _interleave(planes, y, to_y=True):
    """y (n, K, OH, OW) <-> its phase planes (n, ph, pw, K, >= ceil(OH/dh), >= ceil(OW/dw)): y[.., ph::dh, pw::dw]
    is phase (ph, pw), one strided copy per phase (one copy of the whole interleave runs along pw, two
    elements: 64->64 at 56x56, batch 8, dilation 2: 2.37 ms against 1.26 for the four copies)."""
    dh, dw = planes.shape[1:3]

    def copy(phase):
        ph, pw = phase
        dst = y[:, :, ph::dh, pw::dw]
        src = planes[:, ph, pw, :, :dst.shape[2], :dst.shape[3]]
        if to_y:
            dst[...] = src
        else:
            src[...] = dst

    phases = list(itertools.product(range(dh), range(dw)))
    if y.nbytes >= _THREADED_COPY_BYTES:
        run_blocks(copy, phases)
    else:
        for phase in phases:
            copy(phase)


def _scatter_dilated(yt, y, dilation):
    """y (n, K, OH, OW) = the output tiles yt (K, n*dh*dw, th, tw, m, m) of every phase: whole tile rows
    into phase planes (:func:`_scatter`), then each phase into its cells of y."""
    k, nbb, th, tw, m = yt.shape[:5]
    planes = _phase_planes(y.shape, dilation, m, y.dtype, "winograd_full")
    _scatter(yt, planes.reshape((nbb, k) + planes.shape[-2:]))
    _interleave(planes, y)


def weight_grad(kept, g, w_shape):
    """Gradient wrt w (of shape ``w_shape``) of the forward that kept ``kept``, given g = dL/dy (N, K, *out):
    the forward's products run backwards. With M[p] = U[p] @ Vs[p], Y = A^T M and U = G w,

        dM = A dY (each output tile's gradient through the output transform's adjoint)
        dU[p] (K, kd*C) = dM[p] (K, OD*T) @ Vs[p]^T
        dW = G^T dU

    so the input's transform is the forward's, and the products are as small as the forward's (F(3x3, 4x4)
    for the weight of a 3x3 kernel). Outputs the forward cropped off the last tiles have no gradient: g
    is zero there."""
    vs, m, (dh, dw) = kept.vs, kept.m, kept.dilation
    r, kd = w_shape[-1], (w_shape[2] if len(w_shape) == 5 else 1)
    a = m + r - 1
    planar = g.ndim == 4
    n_, k = g.shape[:2]
    oh, ow = g.shape[-2:]
    th, tw = tiles((oh, ow), m, (dh, dw))
    kod = k * math.prod(g.shape[2:-2])                 # K * OD
    at2, g2, _ = transforms(r, g.dtype, m)
    gp = np.ascontiguousarray(g).reshape(n_, kod, oh, ow)
    nb = n_
    if dh * dw > 1:
        # every phase's g on whole tiles, zero beyond it; the phases then count as samples (the forward's tile
        # order is (n, ph, pw, th, tw))
        planes = _phase_planes(gp.shape, (dh, dw), m, g.dtype, "winograd_full")
        planes.fill(0)
        _interleave(planes, gp, to_y=False)
        nb, gp = n_ * dh * dw, planes.reshape(n_ * dh * dw, kod, th * m, tw * m)
    elif (oh, ow) != (th * m, tw * m):                 # whole tiles, zero beyond the output
        gp = place(scratch("winograd_full", (n_, kod, th * m, tw * m), g.dtype),
                   (slice(None), slice(None), slice(0, oh), slice(0, ow)), gp)
    # each tile's m x m values together, (K*OD, N, th, tw, m, m), a tile row of m values copied as one element
    tile = scratch("winograd_y", (kod, nb, th, tw, m, m), g.dtype)
    src = _rows(_split(gp, (nb, kod, th, m, tw, m)), m).transpose(1, 0, 2, 4, 3)
    _copy(src, 0, out=_rows(tile, m))
    dm = np.matmul(at2.T, tile.reshape(-1, m * m).T, out=scratch("winograd_m", (a * a, tile.size // (m * m)),
                                                                  g.dtype))
    du = np.matmul(dm.reshape(a * a, k, -1), vs.transpose(0, 2, 1))           # (a*a, K, kd*C)
    c = du.shape[2] // kd
    dw = (g2.T @ du.reshape(a * a, -1)).reshape(r, r, k, kd, c).transpose(2, 4, 3, 0, 1)
    return np.ascontiguousarray(dw[:, :, 0] if planar else dw)


@functools.lru_cache(maxsize=None)
def _ones_point(m, r):
    """The transform point (flattened a x a index) where kron(A^T, A^T)'s column is all ones."""
    at = matrices(m, r)[0]
    i = next(j for j in range(at.shape[1]) if np.all(at[:, j] == 1))
    return i * at.shape[1] + i


def _rows(a, m):
    """``a`` with its last axis (m values) viewed as one element of m * itemsize bytes."""
    return a.view(np.dtype((np.void, m * a.itemsize)))[..., 0]


def _split(a, shape):
    """A view of ``a`` with its axes split to ``shape`` (never a copy: assigning .shape raises instead)."""
    v = a.view()
    v.shape = shape
    return v


def _scatter(yt, y):
    """y (n, K, OH, OW) = the output tiles yt (K, n, th, tw, m, m), cropped to y. Each tile row (m
    contiguous values) is copied as one element of m * itemsize bytes, through an (n, K, th, m, tw) view of
    y (whole tile rows, then the partial last one); when OW is not whole tiles the rows go through a scratch
    array of whole tiles first."""
    k, nb, th, tw, m = yt.shape[:5]
    oh, ow = y.shape[2:]
    src = _rows(yt, m).transpose(1, 0, 2, 4, 3)                      # (n, K, th, i, tw)
    if ow == tw * m:
        full, rest = divmod(oh, m)
        _copy(src[:, :, :full], 1, out=_rows(_split(y[:, :, :full * m], (nb, k, full, m, tw, m)), m))
        if rest:
            _copy(src[:, :, full, :rest], 1, out=_rows(_split(y[:, :, full * m:], (nb, k, rest, tw, m)), m))
        return
    full = scratch("winograd_full", (nb, k, th, m, tw, m), y.dtype)
    _copy(src, 1, out=_rows(full, m))
    _copy(full.reshape(nb, k, th * m, tw * m)[:, :, :oh, :ow], 1, out=y)


def input_grad(g, w, input_shape, pads, m=None, dilation=None):
    """Gradient wrt x (N, C, *input_shape) of y = conv(x, w, pads) with stride 1: the correlation of
    g (N, K, *out), padded by (d*(k-1) - lo, d*(k-1) - hi) per dim, with the kernel rotated 180 degrees in
    every spatial dim and its channel axes swapped."""
    dilation = tuple(dilation or (1,) * (w.ndim - 2))
    return forward(g, rotated(w), full_correlation_padding(w.shape[2:], dilation, pads), tuple(input_shape), m=m,
                   dilation=dilation[-2:])


# Copies smaller than this run on the calling thread: handing them to the pool costs more than it saves
# (the output scatter of 64->64 at 56x56, batch 1: 0.10 ms on two threads, 0.02 ms on one).
_THREADED_COPY_BYTES = 4 << 20


def _copy(src, axis, out, pieces=None):
    """out = the strided view ``src``, split along ``axis`` into ``pieces`` over convkit's threads (by default
    two per thread when it is large, else one)."""
    def part(sl):
        at = (slice(None),) * axis + (sl,)
        out[at] = src[at]
    if pieces is None:
        pieces = 2 * num_threads() if src.size * src.itemsize >= _THREADED_COPY_BYTES else 1
    run_blocks(part, _parts(src.shape[axis], pieces))
    return out

