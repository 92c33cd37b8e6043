"""Pooling: max, average, Lp, adaptive, global and max-unpool, each forward beside its vjp.

A windowed pool is a loop over the kernel offsets. For offset ``(a0, a1, ...)``
the cells that offset sees in every window form one strided slice of the padded
input, ``xp[..., a0*d0 : a0*d0 + (o0-1)*s0 + 1 : s0, ...]``. The forward reduces
these slices; the vjp adds the output gradient back into the same slices, which
scatters without ``np.add.at`` because one slice never meets a cell twice.
Adaptive pools gather a bin's cells the same way, one offset into the bin at a
time. Planes ``(n, c)`` are independent, so work runs in blocks of planes that
keep every temporary under :func:`convkit._config.get_workspace_limit`.

Inputs are channels-first ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``.
The generic functions take the number of spatial dims from ``len(kernel_size)``
(or ``len(output_size)``) when it is a tuple, else from ``x.ndim - 2``; the
``*1d/2d/3d`` aliases fix it and accept unbatched input with an int size.

Legend: k kernel size, s stride, d dilation, (lo, hi) padding, o output size,
L input size, O adaptive output size, span the padded extent the windows reach.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import _checks as C
from .. import shapes
from .._config import get_workspace_limit
from .._parallel import run_blocks
from .._scratch import pooled
from .padding import pad_nd, pad_nd_vjp

_WHAT = "(N, C, *spatial) or (C, *spatial) with {n} spatial dims"


# --------------------------------------------------------------------------- shared machinery

class _Geom(NamedTuple):
    spatial: tuple
    k: tuple
    s: tuple
    d: tuple
    pads: tuple
    out: tuple
    span: tuple


def _rank(op, n, x, size):
    if n is not None:
        return n
    return len(size) if isinstance(size, (tuple, list)) else C.spatial_rank(op, x)


def _windowed(op, n, x, kernel_size, stride, padding, dilation, ceil_mode, *, keep_int=False):
    """Validate everything a windowed pool takes; return (x with batch axis, unbatched, geometry)."""
    x = C.as_float_array(op, "input", x, keep_int=keep_int)
    n = _rank(op, n, x, kernel_size)
    xb, unbatched = C.batched(op, x, n, what=_WHAT.format(n=n))
    g = _geometry(op, n, xb.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    # at least one padded plane, and the kernel-offset tables, are made whatever the workspace limit
    _check_memory(op, xb, g.out, 2 * C.nbytes(g.span, np.float64) + C.nbytes(g.k, np.int64) * (len(g.k) + 1))
    return xb, unbatched, g


def _geometry(op, n, sp, kernel_size, stride, padding, dilation, ceil_mode):
    """The windows' geometry over spatial shape ``sp``, every argument checked."""
    k = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) else \
        C.ntuple(op, "stride", stride, n, minimum=1)
    d = C.ntuple(op, "dilation", dilation, n, minimum=1)
    pads = shapes.resolve_padding(padding, sp, k, s, d, op=op)
    out = shapes.pool_output_shape(sp, k, s, pads, d, bool(ceil_mode), op=op)
    span = tuple((o - 1) * st + dl * (f - 1) + 1 for o, st, dl, f in zip(out, s, d, k))
    return _Geom(tuple(sp), k, s, d, pads, out, span)


def _check_memory(op, xb, out, extra=0):
    """Before any work: the output (and its int64 indices), or for a vjp the input-sized gradient, must fit."""
    if op.endswith("_vjp"):
        C.check_alloc(op, 2 * C.nbytes(xb.shape, np.float64) + extra, "gradient and temporaries")
    else:
        C.check_alloc(op, C.nbytes(xb.shape[:2] + tuple(out), np.float64) * 2 + extra, "output and temporaries")


def _grad(op, grad_out, unbatched, shape, dtype=None):
    """grad_out as a float array with a batch axis, after checking it has the output's shape."""
    g = C.as_float_array(op, "grad_out", grad_out)
    C.same_shape(op, "grad_out", g.shape, shape[1:] if unbatched else shape, "the output shape")
    g = g[None] if unbatched else g
    return g if dtype is None else g.astype(np.result_type(g.dtype, dtype), copy=False)


def _ret(a, unbatched):
    return a[0] if unbatched and a is not None else a


def _lowest(dtype):
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def _improves(v, best):
    """Where v replaces the running max: strictly greater (ties keep the first), or NaN (PyTorch's rule)."""
    upd = v > best
    return upd | np.isnan(v) if v.dtype.kind == "f" else upd


def _outer(arrays):
    """1-d arrays reshaped to broadcast against each other as the axes of an n-d grid."""
    n = len(arrays)
    return [np.asarray(a).reshape((1,) * i + (-1,) + (1,) * (n - i - 1)) for i, a in enumerate(arrays)]


_CACHE_BYTES = 1 << 22  # a block of planes whose passes stay in the CPU's L2 cache


def _blocks(shape, per_plane, cache=False):
    """Index tuples over blocks of (n, c) planes, each block within the workspace limit
    (and, with cache=True, about one L2 cache, so the per-offset passes stay in cache)."""
    N, nc = shape[:2]
    limit = min(get_workspace_limit(), _CACHE_BYTES) if cache else get_workspace_limit()
    if nc * per_plane <= limit or nc <= 1:
        nb = max(1, limit // max(nc * per_plane, 1))
        return [(slice(i, i + nb),) for i in range(0, N, nb)]
    cb = max(1, limit // per_plane)
    return [(slice(i, i + 1), slice(j, j + cb)) for i in range(N) for j in range(0, nc, cb)]


def _plane_bytes(*sizes):
    return 8 * sum(3 * math.prod(s) for s in sizes)


def _frame(g):
    """Per dim: the input cells some window reaches, and the (lo, hi) padding that makes them span long."""
    keep, pairs = [], []
    for w, (lo, _), sp in zip(g.spatial, g.pads, g.span):
        lo = min(lo, sp)
        keep.append(min(w, sp - lo))
        pairs.append((lo, sp - lo - keep[-1]))
    return keep, pairs


def _pad(xc, g, fill):
    keep, pairs = _frame(g)
    return pad_nd(xc[(Ellipsis, *map(slice, keep))], pairs, "constant", fill)


def _unpad(buf, g):
    keep, pairs = _frame(g)
    gx = np.zeros(buf.shape[:2] + g.spatial, buf.dtype)
    gx[(Ellipsis, *map(slice, keep))] = pad_nd_vjp(buf, buf.shape[:2] + tuple(keep), pairs)
    return gx


def _offsets(g):
    """(j, view index) per kernel offset j, row-major: the cells offset j sees in every window."""
    for j, kk in enumerate(itertools.product(*map(range, g.k))):
        yield j, (Ellipsis,) + tuple(slice(a * dl, a * dl + (o - 1) * st + 1, st)
                                     for a, dl, o, st in zip(kk, g.d, g.out, g.s))


def _window_sum(xp, g, dtype):
    y = np.zeros(xp.shape[:2] + g.out, dtype)
    for _, sl in _offsets(g):
        y += xp[sl]
    return y


def _spread(gy, g):
    """Adjoint of _window_sum: every window's gradient added back onto its cells."""
    buf = np.zeros(gy.shape[:2] + g.span, gy.dtype)
    for _, sl in _offsets(g):
        buf[sl] += gy
    return buf


def _window_max(xp, g, first):
    """Running max over the offsets, and the winning offset per window.

    The max is one np.maximum pass per offset (NaN propagates). The winner is
    tracked in the same scan: an offset whose value is strictly greater takes
    over, so ties go to the first offset; the update is arithmetic on a small
    integer code (arg += (j - arg) * hit), cheaper than a masked copy. A window
    holding NaN is indexed at its last NaN (PyTorch's CPU rule). first is the
    first real cell of each window (-1 if the window is all padding).
    """
    offsets = list(_offsets(g))
    best = np.array(xp[offsets[0][1]])
    n = len(offsets)
    code = np.int8 if n < 2**7 else np.int16 if n < 2**15 else np.int32
    arg = np.zeros(best.shape, code)
    hit = np.empty(best.shape, bool)
    step = np.empty(best.shape, code)
    for j, sl in offsets[1:]:
        v = xp[sl]
        np.greater(v, best, out=hit)
        np.maximum(best, v, out=best)
        np.subtract(code(j), arg, out=step)
        np.multiply(step, hit, out=step)
        arg += step
    # where the max is the padding's fill value, a padding cell may have won:
    # the first real cell wins, as with a strict running comparison over real cells
    np.equal(best, _lowest(best.dtype), out=hit)
    np.copyto(arg, np.broadcast_to(first, best.shape), where=hit)
    if best.dtype.kind == "f":
        nan = np.isnan(best)
        if nan.any():
            for j, sl in offsets:
                np.copyto(arg, j, where=nan & np.isnan(xp[sl]))
    return best, arg


def _separable_max(xc, g, out):
    """The max over each window, without winners, one dim at a time: a box's max is the max over its rows of
    each row's max, so a 3x3 window costs 2 + 2 passes (the second over an array already shrunk by the
    stride) instead of 8 over the output, and no padded copy is made: each tap runs over the outputs whose
    cell lies in the input, so padding never wins (a window wholly in the padding gives the lowest value).
    Writes into ``out``. 64 planes of 112x112, 3x3 stride 2 padding 1, batch 8: 3.8 ms (the padded scan of
    9 passes: 8.3 and 13.2 ms in two runs). The first dims go first: their taps are whole rows, read
    contiguously, and they shrink the array before the last dim's strided reads (one thread, ms, last dim
    first vs first dim first: that pool at batch 4 3.02 vs 2.54, batch 1 0.89 vs 0.75; 3x3/2 of 256x14x14,
    batch 8, 0.92 vs 0.71; 3x3x3/2 of 16x16x32x32, batch 2, 0.81 vs 0.61; 2x2 pools and stride 1 even)."""
    cur = xc
    for axis in range(len(g.k)):
        length, lo, o = cur.shape[2 + axis], g.pads[axis][0], g.out[axis]
        head = (slice(None),) * (2 + axis)
        spans = []
        for t in range(g.k[axis]):
            off = t * g.d[axis] - lo                      # output j reads input cell j * stride + off
            j0 = max(0, -(off // g.s[axis]))
            j1 = max(0, min(o, (length - 1 - off) // g.s[axis] + 1))
            if j1 > j0:
                spans.append((j0, j1, off))

        def cells(sp):
            j0, j1, off = sp
            return cur[head + (slice(j0 * g.s[axis] + off, (j1 - 1) * g.s[axis] + off + 1, g.s[axis]),)]

        res = out if axis == len(g.k) - 1 else np.empty(cur.shape[:2 + axis] + (o,) + cur.shape[3 + axis:], cur.dtype)
        full = [sp for sp in spans if sp[:2] == (0, o)]
        rest = [sp for sp in spans if sp[:2] != (0, o)]
        if len(full) >= 2:    # the first pass writes the max of two taps
            np.maximum(cells(full[0]), cells(full[1]), out=res)
        elif full:
            np.copyto(res, cells(full[0]))
        else:
            res.fill(_lowest(cur.dtype))
        for sp in full[2:] + rest:
            dst = res[head + (slice(sp[0], sp[1]),)]
            np.maximum(dst, cells(sp), out=dst)
        cur = res


def _first_cells(g):
    """Per dim: each window's start, its first offset on an input cell, and whether it has one at all."""
    starts = [np.arange(o) * st - lo for o, st, (lo, _) in zip(g.out, g.s, g.pads)]
    kfirst = [np.maximum(d - 1 - a, 0) // d for a, d in zip(starts, g.d)]
    ok = [(kf < k) & (a + kf * d < w) for a, kf, k, d, w in zip(starts, kfirst, g.k, g.d, g.spatial)]
    return starts, kfirst, ok


def _max_tables(g):
    """First real offset of each window (-1 if none), flat input index of each window start and offset."""
    pstride = [math.prod(g.spatial[i + 1:]) for i in range(len(g.k))]
    kstride = [math.prod(g.k[i + 1:]) for i in range(len(g.k))]
    starts, kfirst, ok = _first_cells(g)
    first = sum(_outer([kf * ks for kf, ks in zip(kfirst, kstride)]))
    first = np.where(functools.reduce(np.logical_and, _outer(ok)), first, -1)
    base = sum(_outer([a * ps for a, ps in zip(starts, pstride)]))
    table = np.array([sum(a * d * ps for a, d, ps in zip(kk, g.d, pstride))
                      for kk in itertools.product(*map(range, g.k))], np.int64)
    return first, base, table


def _tiles(g):
    """Whether the windows tile the input: stride == kernel, no dilation, no padding (the common 2x2/2)."""
    return (g.k == g.s and all(d == 1 for d in g.d) and all(p == (0, 0) for p in g.pads)
            and all(o * k <= w for o, k, w in zip(g.out, g.k, g.spatial)))


def _tile_view(a, g):
    """View (N, C, o0, k0, o1, k1, ...) of a (N, C, *spatial) for tiling windows: [., i, t, .] = a[., i*k + t, .]."""
    st = a.strides
    shape = a.shape[:2] + sum(((o, k) for o, k in zip(g.out, g.k)), ())
    strides = st[:2] + sum(((s * k, s) for s, k in zip(st[2:], g.k)), ())
    return as_strided(a, shape, strides, writeable=a.flags.writeable)


def _tile_code_dtype(g):
    return np.uint8 if math.prod(g.k) <= 256 else np.uint32


def _tiled_max(xc, g, want_arg):
    """Max over tiling windows and (want_arg) each window's winning offset j, row-major in the window.

    Reduces one dim's offsets at a time, the last dim first. A candidate replaces the
    running max when strictly greater (ties keep the earlier offset) or NaN (the
    last NaN wins), so this tree of scans picks what the row-major running scan
    picks. The NaN tests cost two passes per dim, so they run only for a block
    whose max holds a NaN (np.maximum propagates it).
    """
    best, j = _tiled_scan(xc, g, want_arg, nan=False)
    if want_arg and xc.dtype.kind == "f" and np.isnan(best).any():
        best, j = _tiled_scan(xc, g, want_arg, nan=True)
    return best, j


def _tiled_scan(xc, g, want_arg, nan):
    """_tiled_max's scan. j is accumulated in small unsigned ints: j <- j + upd * (j_cand - j) is a
    select without np.where (slow on random masks); wrap-around cancels exactly."""
    jt = _tile_code_dtype(g)
    best, j, m = _tile_view(xc, g), None, 1
    for i in reversed(range(len(g.k))):
        at = (slice(None),) * (3 + 2 * i)
        run, jn = best[at + (0,)], None if j is None else np.array(j[at + (0,)])
        for t in range(1, g.k[i]):
            cand = best[at + (t,)]
            if want_arg:
                upd = np.greater(cand, run)
                if nan:
                    upd |= np.isnan(cand)
                cj = jt(t * m) if j is None else j[at + (t,)] + jt(t * m)
                u = upd.view(np.uint8)
                if jn is None:
                    jn = u * cj
                else:
                    jn += u * (cj - jn)
            run = np.maximum(run, cand, out=None if t == 1 else run)
        best, j, m = run, jn, m * g.k[i]
    if want_arg and j is None:
        j = np.zeros(best.shape, jt)
    return best, j


def _tiled_spread(gx, gy, j, g):
    """Adjoint of the tiled max: gx (zero outside the tiles) gets gy at each window's winner j.

    Bitwise: gy's bits, as unsigned integers, times the bool j == t: the bits themselves or 0. Exact
    for any gy, NaN and inf included, and a cell that did not win gets +0, as in PyTorch. (A float
    product with the bool mask needed a pass checking that gy is finite, NaN * 0 being NaN; bits ANDed
    with an all-ones integer mask took two more passes to build it: 64x32x28x28, one thread, 1.90 ms
    against 1.54 for this.)
    """
    bits = np.dtype(f"u{gy.dtype.itemsize}")
    gv = _tile_view(gx, g).view(bits)
    gb = gy.view(bits)
    won = np.empty(j.shape, bool)
    for t, at in enumerate(_taps(g)):
        np.equal(j, t, out=won)
        np.multiply(gb, won, out=gv[at])


def _taps(g):
    """The index of each window offset, row-major, into a _tile_view of tiling windows g."""
    return [(slice(None),) * 2 + sum(((slice(None), a) for a in kk), ()) for kk in itertools.product(*map(range, g.k))]


def _fixed_rank(generic, impl, n):
    """generic's rank-checked alias ``{name}{n}d``: n spatial dims, unbatched input allowed."""
    name = f"{generic.__name__}{n}d"

    def alias(*args, **kwargs):
        return impl(name, n, *args, **kwargs)

    alias.__name__ = alias.__qualname__ = name
    alias.__signature__ = inspect.signature(generic)
    alias.__doc__ = (f"{generic.__name__} over exactly {n} spatial dim(s): input (N, C, *{n} dims) or "
                     f"(C, *{n} dims).\n\nSee :func:`{generic.__name__}`; errors name ``{name}``.")
    return alias


# --------------------------------------------------------------------------- max pool

def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over each (dilated) window, as ``torch.nn.functional.max_pool{1,2,3}d``.

    Parameters
    ----------
    x : array, (N, C, *spatial) or (C, *spatial); any real dtype, which is kept.
    kernel_size, stride, dilation : int or tuple; stride defaults to kernel_size.
    padding : int, tuple of ints, or (lo, hi) pairs per dim; any size >= 0
        (asymmetric and wider than half the kernel allowed, unlike PyTorch);
        or "valid", "same", "same_lower" (TF/ONNX SAME_UPPER/SAME_LOWER).
        Padding cells hold -inf (the dtype's minimum for integers) and never win.
    ceil_mode : round the output size up (a window starting in the right padding is dropped).
    return_indices : also return int64 indices, flat over each (n, c) plane of
        the unpadded input (PyTorch's convention, what :func:`max_unpool` takes).

    Ties go to the first cell in window (row-major) order; a NaN replaces the
    running max, so a window holding NaN gives NaN (indexed at its last NaN, as
    PyTorch on CPU). A window lying wholly in the padding gives -inf and index -1.

    Shape
    -----
    ``o = floor((L + lo + hi - d*(k-1) - 1) / s) + 1`` per dim (ceil with ceil_mode).

    Examples
    --------
    >>> x = np.arange(16.).reshape(1, 1, 4, 4)
    >>> max_pool(x, 2)
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    >>> max_pool(x, 2, return_indices=True)[1]
    array([[[[ 5,  7],
             [13, 15]]]])
    """
    return _max_pool("max_pool", None, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _max_pool(op, n, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    y, idx, _ = _max_pool_impl(op, n, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, False)
    return (y, idx) if return_indices else y


class _Route(NamedTuple):
    """What the forward leaves for the vjp: the winners, as tile codes j (tiled) or as flat indices."""
    shape: tuple        # batched input shape
    unbatched: bool
    geom: _Geom
    j: np.ndarray       # tiled windows: winning offset per window; else None
    idx: np.ndarray     # other windows: flat indices (batched); else None


def _max_pool_impl(op, n, x, kernel_size, stride, padding, dilation, ceil_mode, want_idx, want_route):
    """(y, indices or None, _Route or None) of max_pool; the route is what :func:`_max_pool_route_vjp` needs."""
    xb, unbatched, g = _windowed(op, n, x, kernel_size, stride, padding, dilation, ceil_mode, keep_int=True)
    first, base, table = _max_tables(g)
    all_pad_windows = bool((first < 0).any())
    tiled = _tiles(g)
    y = pooled(xb.shape[:2] + g.out, xb.dtype)
    idx = pooled(y.shape, np.int64) if want_idx or (want_route and not tiled) else None
    j = pooled(y.shape, _tile_code_dtype(g)) if tiled and want_route else None

    def block(b):
        if tiled:
            y[b], jb = _tiled_max(xb[b], g, want_arg=idx is not None or j is not None)
            if j is not None:
                j[b] = jb
            if idx is not None:
                ib = idx[b]
                np.take(table, jb, out=ib, mode="clip")  # clip: no bounds check, no buffering
                ib += base
            return
        if idx is None:
            _separable_max(xb[b], g, y[b])
            return
        y[b], arg = _window_max(_pad(xb[b], g, _lowest(xb.dtype)), g, first)
        ib = idx[b]
        np.take(table, arg, out=ib, mode="wrap")   # wrap: -1 (a window of padding only) is fixed below
        ib += base
        if all_pad_windows:
            np.copyto(ib, -1, where=arg < 0)

    # the separable max keeps far less per plane than the scans with winners (the input plane, one plane of
    # partial maxima and the output): larger blocks, fewer of them to hand to the threads
    per_plane = xb.itemsize * (2 * math.prod(g.spatial) + math.prod(g.out)) if idx is None and not tiled else \
        _plane_bytes(g.span, g.out)
    run_blocks(block, _blocks(xb.shape, per_plane, cache=True))
    route = _Route(xb.shape, unbatched, g, j, None if tiled else idx) if want_route else None
    return _ret(y, unbatched), (_ret(idx, unbatched) if want_idx else None), route


def _max_pool_taped(name, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                    return_indices=False):
    """max_pool (or its alias ``name``) for autograd: (y, indices or None, route for _max_pool_route_vjp).

    For tiling windows the route holds one small code per window instead of int64 indices,
    and the vjp writes each cell once instead of scattering with np.bincount.
    """
    n = int(name[-2]) if name[-1] == "d" else None
    return _max_pool_impl(name, n, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, True)


def _relu_commutes(shape, n, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Whether ``max_pool(relu(x)) == relu(max_pool(x))`` for every x of ``shape``, gradient included, so
    a ReLU then a max pool may run as the pool then the ReLU, on the pool's smaller output.

    relu is monotone, so the max of a window's relu'd cells is relu of their max. Where that max is > 0
    both orders pick the same cell (the first of equals) and pass it the same gradient; where it is
    <= 0 or NaN, relu's gradient is 0 in both orders. They differ only on a window of padding alone
    (-inf from the pool, but relu(-inf) = 0), so this is True when every window reaches an input cell.
    False also when the arguments do not fit ``shape``: the plain order then raises its own error.
    """
    if len(shape) < n + 1:
        return False
    try:
        g = _geometry("max_pool", n, tuple(shape[-n:]), kernel_size, stride, padding, dilation, ceil_mode)
    except (TypeError, ValueError):
        return False
    return all(ok.all() for ok in _first_cells(g)[2])


def _max_pool_route_vjp(grad_out, route):
    """max_pool's gradient from the forward's route: gy to each window's winner."""
    g = route.geom
    gy = _grad("max_pool_vjp", grad_out, route.unbatched, route.shape[:2] + g.out)
    if route.j is None:
        return _ret(_route_indices(gy, route.idx, route.shape), route.unbatched)
    exact = all(o * k == w for o, k, w in zip(g.out, g.k, g.spatial))
    gx = pooled(route.shape, gy.dtype, zero=not exact)

    def block(b):
        _tiled_spread(gx[b], gy[b], route.j[b], g)

    run_blocks(block, _blocks(route.shape, _plane_bytes(g.spatial, g.out), cache=True))
    return _ret(gx, route.unbatched)


def max_pool_vjp(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False, indices=None):
    """Gradient of :func:`max_pool` w.r.t. x: each output's gradient goes to its argmax.

    Same arguments as the forward (``return_indices`` is ignored). Ties go to the
    first cell, as in PyTorch; a cell that wins several windows sums their gradients.
    Pass the forward's ``indices`` (from ``return_indices=True``) to skip finding
    the winners again, as PyTorch's backward does with its saved indices.

    Shape
    -----
    grad_out: the forward output's shape; returns x's shape, grad_out's float dtype.

    Examples
    --------
    >>> x = np.array([[[1., 3., 2., 0.]]])
    >>> max_pool_vjp(np.ones((1, 1, 2)), x, 2)
    array([[[0., 1., 1., 0.]]])
    >>> y, i = max_pool(x, 2, return_indices=True)
    >>> max_pool_vjp(np.ones((1, 1, 2)), x, 2, indices=i)
    array([[[0., 1., 1., 0.]]])
    """
    op = "max_pool_vjp"
    xb, unbatched, g = _windowed(op, None, x, kernel_size, stride, padding, dilation, ceil_mode, keep_int=True)
    gy = _grad(op, grad_out, unbatched, xb.shape[:2] + g.out)
    if indices is None:
        _, idx = _max_pool(op, None, xb, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    else:
        idx = _saved_indices(op, indices, unbatched, gy.shape, math.prod(xb.shape[2:]))
    return _ret(_route_indices(gy, idx, xb.shape), unbatched)


def _saved_indices(op, indices, unbatched, out_shape, plane):
    """A user's saved indices, checked: integer, the output's shape, each in [-1, plane)."""
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must have an integer dtype; got indices.dtype={idx.dtype}.")
    idx = idx[None] if unbatched else idx
    C.same_shape(op, "indices", idx.shape, out_shape, "the output shape")
    if idx.size and (idx.min() < -1 or idx.max() >= plane):
        raise ValueError(f"{op}: indices must lie in [-1, {plane}) (flat positions in one input plane); "
                         f"got indices.min()={idx.min()}, indices.max()={idx.max()}.")
    return idx


def _route_indices(gy, idx, x_shape):
    """grad_x from per-plane flat indices: one np.add.at per block, in grad_out's dtype (-1 sends
    nothing). Measured 4x faster than np.bincount, which sums in float64 over every cell."""
    plane = math.prod(x_shape[2:])
    gx = pooled(x_shape, gy.dtype, zero=True)
    per_plane = 4 * plane + 24 * math.prod(gy.shape[2:])

    def block(b):
        ib, gb = idx[b], gy[b]
        planes = ib.shape[0] * ib.shape[1]
        flat = ib + (np.arange(planes) * plane).reshape(ib.shape[:2] + (1,) * (ib.ndim - 2))
        if ib.size and ib.min() < 0:
            gb = np.where(ib >= 0, gb, 0)
            flat = np.maximum(flat, 0)
        dst = gx[b].view()
        dst.shape = (-1,)   # blocks are whole planes of a C-contiguous array: a view, never a copy (else raises)
        np.add.at(dst, flat.ravel(), gb.ravel())

    run_blocks(block, _blocks(x_shape, per_plane, cache=True))
    return gx


# --------------------------------------------------------------------------- average pool

def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None, dilation=1):
    """Mean over each window, as ``torch.nn.functional.avg_pool{1,2,3}d`` and ONNX AveragePool.

    The divisor is ``divisor_override`` if given, else the number of window
    cells inside the explicitly padded input (``count_include_pad=True``) or
    inside the unpadded input (False). Cells a ceil_mode window runs past the
    padded input never count. A window with nothing to count averages to 0.
    Integer and bool input becomes float64; float16/32/64 are kept.
    ``dilation`` (last, beyond PyTorch's arguments) serves ONNX AveragePool.

    Shape
    -----
    ``o = floor((L + lo + hi - d*(k-1) - 1) / s) + 1`` per dim (ceil with ceil_mode).

    Examples
    --------
    >>> avg_pool(np.array([[[1., 2., 3., 4., 5.]]]), 2, ceil_mode=True)
    array([[[1.5, 3.5, 5. ]]])
    """
    return _avg_pool("avg_pool", None, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, dilation)


def _divisor(op, g, count_include_pad, divisor_override):
    if divisor_override is not None:
        if C.as_int(op, "divisor_override", divisor_override) == 0:
            C.fail(op, "divisor_override", "a non-zero int or None", divisor_override)
        return float(divisor_override)
    counts = []
    for o, k, s, d, (lo, hi), w in zip(g.out, g.k, g.s, g.d, g.pads, g.spatial):
        cells = (np.arange(o) * s - lo)[:, None] + np.arange(k) * d
        lo_, hi_ = (-lo, w + hi) if count_include_pad else (0, w)
        counts.append(((cells >= lo_) & (cells < hi_)).sum(1))
    div = functools.reduce(np.multiply, _outer(counts))
    return np.where(div == 0, 1, div)


# Tiling windows (stride == kernel, no padding or dilation) of at most this many cells sum their cells' views
# one add per cell; larger ones (an adaptive pool's whole plane) reduce the tile axes in one call. Average
# pools' blocks of planes run on convkit's threads. 32x64x56x56 float32, ms, forward / gradient, before vs
# now: avg_pool2d(2) 7.7 / 36.4 -> 5.3 / 5.4; adaptive_avg_pool2d(1) 11.4 / 27.7 -> 2.2 / 2.2.
_TAP_VIEWS_MAX = 16


def _tiled_sum(xc, g, acc):
    """Window sums of tiling windows (_tiles), in ``acc``: the taps' views added in row-major order, as
    _window_sum adds them, or for many taps one sum over the tile axes."""
    v = _tile_view(xc, g)
    if math.prod(g.k) > _TAP_VIEWS_MAX:
        return v.sum(axis=tuple(3 + 2 * i for i in range(len(g.k))), dtype=acc)
    at = _taps(g)
    y = v[at[0]].astype(acc)
    for sl in at[1:]:
        y += v[sl]
    return y


def _tiled_fill(gx, gy, g):
    """Adjoint of _tiled_sum: every cell of a tile gets its window's gy (gx zero outside the tiles)."""
    v = _tile_view(gx, g)
    if math.prod(g.k) > _TAP_VIEWS_MAX:
        v[...] = gy[(Ellipsis,) + sum(((slice(None), None) for _ in g.k), ())]
        return
    for at in _taps(g):
        v[at] = gy


def _avg_pool(op, n, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
              divisor_override=None, dilation=1):
    xb, unbatched, g = _windowed(op, n, x, kernel_size, stride, padding, dilation, ceil_mode)
    div = _divisor(op, g, count_include_pad, divisor_override)
    return _ret(_avg_forward(xb, g, div), unbatched)


def _avg_forward(xb, g, div):
    """Window means of xb (N, C, *S) over the geometry g, ``div`` the divisor (per window or one number)."""
    acc = np.result_type(xb.dtype, np.float32)
    y = np.empty(xb.shape[:2] + g.out, xb.dtype)
    tiled = _tiles(g)

    def block(b):
        s = _tiled_sum(xb[b], g, acc) if tiled else _window_sum(_pad(xb[b], g, 0), g, acc)
        np.divide(s, div, out=y[b], casting="unsafe")
    run_blocks(block, _blocks(xb.shape, _plane_bytes(g.span, g.out), cache=True))
    return y


def avg_pool_vjp(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, dilation=1):
    """Gradient of :func:`avg_pool` w.r.t. x (its adjoint: it is linear).

    Shape
    -----
    grad_out: the forward output's shape; returns x's shape.

    Examples
    --------
    >>> avg_pool_vjp(np.ones((1, 1, 2)), np.zeros((1, 1, 3)), 2, stride=1)
    array([[[0.5, 1. , 0.5]]])
    """
    op = "avg_pool_vjp"
    xb, unbatched, g = _windowed(op, None, x, kernel_size, stride, padding, dilation, ceil_mode)
    div = _divisor(op, g, count_include_pad, divisor_override)
    gy = _grad(op, grad_out, unbatched, xb.shape[:2] + g.out, xb.dtype)
    return _ret(_avg_backward(gy, xb.shape, g, div), unbatched)


def _avg_backward(gy, shape, g, div):
    """Adjoint of _avg_forward: gy / div back onto the cells of each window."""
    tiled = _tiles(g)
    exact = tiled and all(o * k == w for o, k, w in zip(g.out, g.k, g.spatial))
    gx = np.zeros(shape, gy.dtype) if tiled and not exact else np.empty(shape, gy.dtype)

    def block(b):
        gd = gy[b] / div
        if tiled:
            _tiled_fill(gx[b], gd.astype(gy.dtype, copy=False), g)
        else:
            gx[b] = _unpad(_spread(gd, g), g)
    run_blocks(block, _blocks(shape, _plane_bytes(g.span, g.out), cache=True))
    return gx


# --------------------------------------------------------------------------- Lp pool

def lp_pool(x, norm_type, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Lp norm of each window, ``y = (sum over window of |x|**p) ** (1/p)``: ONNX LpPool.

    Padding and ceil_mode overhang contribute 0. For p = 2 and inputs >= 0 this
    equals ``torch.nn.functional.lp_pool{1,2,3}d``, with two differences:
    PyTorch raises x (not |x|) to the power p, so for odd p and negative
    inputs it gives the signed sum (p = 1) or NaN; and with ceil_mode PyTorch
    rescales a window cut by the input's edge by ``prod(k) / cells inside``.
    The vjp sets the gradient to 0 where y = 0 (and, for p <= 1, where x = 0).
    Argument order follows ONNX: padding and dilation come before ceil_mode
    (PyTorch's 4th positional argument is ceil_mode: pass it by keyword).

    Shape
    -----
    ``o = floor((L + lo + hi - d*(k-1) - 1) / s) + 1`` per dim (ceil with ceil_mode).

    Examples
    --------
    >>> lp_pool(np.array([[[3., -4., 0., 0.]]]), 2, 2)
    array([[[5., 0.]]])
    """
    return _lp_pool("lp_pool", None, x, norm_type, kernel_size, stride, padding, dilation, ceil_mode)


def _lp_forward(xc, p, g, acc):
    return _window_sum(_pad(np.abs(xc).astype(acc) ** p, g, 0), g, acc) ** (1 / p)


def _lp_pool(op, n, x, norm_type, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    p = C.real_number(op, "norm_type", norm_type, positive=True)
    xb, unbatched, g = _windowed(op, n, x, kernel_size, stride, padding, dilation, ceil_mode)
    acc = np.result_type(xb.dtype, np.float32)
    y = np.empty(xb.shape[:2] + g.out, xb.dtype)
    for b in _blocks(xb.shape, _plane_bytes(g.span, g.span, g.out)):
        y[b] = _lp_forward(xb[b], p, g, acc)
    return _ret(y, unbatched)


def lp_pool_vjp(grad_out, x, norm_type, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Gradient of :func:`lp_pool` w.r.t. x: ``dy/dx = sign(x) |x|**(p-1) / y**(p-1)``.

    Shape
    -----
    grad_out: the forward output's shape; returns x's shape.

    Examples
    --------
    >>> lp_pool_vjp(np.ones((1, 1, 1)), np.array([[[3., -4.]]]), 2, 2)
    array([[[ 0.6, -0.8]]])
    """
    op = "lp_pool_vjp"
    p = C.real_number(op, "norm_type", norm_type, positive=True)
    xb, unbatched, g = _windowed(op, None, x, kernel_size, stride, padding, dilation, ceil_mode)
    gy = _grad(op, grad_out, unbatched, xb.shape[:2] + g.out, xb.dtype)
    acc = np.result_type(gy.dtype, np.float32)
    gx = np.empty(xb.shape, gy.dtype)
    for b in _blocks(xb.shape, _plane_bytes(g.span, g.span, g.span, g.out)):
        xc = xb[b].astype(acc)
        y = _lp_forward(xc, p, g, acc)
        coef = np.where(y > 0, gy[b] * np.where(y > 0, y, 1) ** (1 - p), 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            dabs = np.where(xc != 0, np.sign(xc) * np.abs(xc) ** (p - 1), 0)
        gx[b] = _unpad(_spread(coef, g), g) * dabs
    return _ret(gx, unbatched)


# --------------------------------------------------------------------------- adaptive pools

def _adaptive(op, n, x, output_size, *, keep_int=False):
    x = C.as_float_array(op, "input", x, keep_int=keep_int)
    n = _rank(op, n, x, output_size)
    xb, unbatched = C.batched(op, x, n, what=_WHAT.format(n=n))
    C.positive_shape(op, "input spatial shape", xb.shape[2:])
    out = C.optional_ntuple(op, "output_size", output_size, n, minimum=1)
    out = tuple(L if o is None else o for o, L in zip(out, xb.shape[2:]))
    _check_memory(op, xb, out)
    return xb, unbatched, out


def _bins(L, O):
    """Bin i covers [floor(i*L/O), ceil((i+1)*L/O)), PyTorch's rule."""
    i = np.arange(O)
    return i * L // O, -(-(i + 1) * L // O)


def _bins_containing(L, O):
    """For each input cell l, the bins [lo, hi) that contain it (the transpose of _bins)."""
    start, end = _bins(L, O)
    cells = np.arange(L)
    return np.searchsorted(end, cells, "right"), np.searchsorted(start, cells, "right")


def _ranges(a, b):
    """Row m covers [a[m], b[m]): a (K, M) table of its entries (clipped to the last) and which are real."""
    j = np.arange(int((b - a).max()))[:, None]
    return np.minimum(a + j, b - 1), a + j < b


def _gather_sum(x, axis, idx, w):
    """``sum_k w[k] * take(x, idx[k], axis)``: a banded linear map along one axis."""
    tail = (1,) * (x.ndim - axis - 1)
    return sum(np.take(x, ik, axis) * wk.reshape(-1, *tail) for ik, wk in zip(idx, w))


def adaptive_avg_pool(x, output_size):
    """Mean over adaptive bins, as ``torch.nn.functional.adaptive_avg_pool{1,2,3}d``.

    Bin i of a dim of size L covers ``[floor(i*L/O), ceil((i+1)*L/O))``. An
    entry None in output_size keeps that dim. Computed one axis at a time.

    Shape
    -----
    (N, C, *L) -> (N, C, *O); unbatched likewise.

    Examples
    --------
    >>> adaptive_avg_pool(np.array([[[1., 2., 3., 4., 5.]]]), 2)
    array([[[2., 4.]]])
    """
    return _adaptive_avg_pool("adaptive_avg_pool", None, x, output_size)


def _even_bins(op, xb, out):
    """The geometry of tiling windows when every dim's bins are whole and equal (L a multiple of O: then
    the adaptive pool is a plain one with kernel = stride = L/O), else None."""
    if any(L % o for L, o in zip(xb.shape[2:], out)):
        return None
    k = tuple(L // o for L, o in zip(xb.shape[2:], out))
    return _geometry(op, len(out), xb.shape[2:], k, k, 0, 1, False)


def _adaptive_avg_pool(op, n, x, output_size):
    xb, unbatched, out = _adaptive(op, n, x, output_size)
    g = _even_bins(op, xb, out)
    if g is not None:
        return _ret(_avg_forward(xb, g, float(math.prod(g.k))), unbatched)
    acc = np.result_type(xb.dtype, np.float32)
    y = np.empty(xb.shape[:2] + out, xb.dtype)
    for b in _blocks(xb.shape, _plane_bytes(xb.shape[2:], out)):
        yc = xb[b].astype(acc)
        for ax, (L, O) in enumerate(zip(xb.shape[2:], out), start=2):
            start, end = _bins(L, O)
            idx, inside = _ranges(start, end)
            yc = _gather_sum(yc, ax, idx, inside / (end - start))
        y[b] = yc
    return _ret(y, unbatched)


def adaptive_avg_pool_vjp(grad_out, x, output_size):
    """Gradient of :func:`adaptive_avg_pool` w.r.t. x: each cell gathers g/|bin| from the bins holding it.

    Shape
    -----
    grad_out: (N, C, *O); returns x's shape.

    Examples
    --------
    >>> adaptive_avg_pool_vjp(np.ones((1, 1, 2)), np.zeros((1, 1, 3)), 2)
    array([[[0.5, 1. , 0.5]]])
    """
    op = "adaptive_avg_pool_vjp"
    xb, unbatched, out = _adaptive(op, None, x, output_size)
    gy = _grad(op, grad_out, unbatched, xb.shape[:2] + out, xb.dtype)
    g = _even_bins(op, xb, out)
    if g is not None:
        return _ret(_avg_backward(gy, xb.shape, g, float(math.prod(g.k))), unbatched)
    gx = np.empty(xb.shape, gy.dtype)
    for b in _blocks(xb.shape, _plane_bytes(xb.shape[2:], out)):
        gc = gy[b]
        for ax, (L, O) in enumerate(zip(xb.shape[2:], out), start=2):
            start, end = _bins(L, O)
            idx, inside = _ranges(*_bins_containing(L, O))
            gc = _gather_sum(gc, ax, idx, inside / (end - start)[idx])
        gx[b] = gc
    return _ret(gx, unbatched)


def _adaptive_argmax(xc, out):
    """Max and flat argmax per bin, reducing the last axis first so ties keep row-major order."""
    val, pos = xc, {}
    for ax in reversed(range(2, xc.ndim)):
        idx, _ = _ranges(*_bins(xc.shape[ax], out[ax - 2]))  # clipped repeats never win
        col = (-1,) + (1,) * (xc.ndim - ax - 1)
        best = np.take(val, idx[0], ax)
        at = np.array(np.broadcast_to(idx[0].reshape(col), best.shape))
        for ik in idx[1:]:
            v = np.take(val, ik, ax)
            upd = _improves(v, best)
            np.copyto(best, v, where=upd)
            np.copyto(at, ik.reshape(col), where=upd)
        pos = {a: np.take_along_axis(p, at, ax) for a, p in pos.items()}
        pos[ax], val = at, best
    sp = xc.shape[2:]
    return val, sum(pos[ax] * math.prod(sp[ax - 1:]) for ax in pos)


def adaptive_max_pool(x, output_size, return_indices=False):
    """Max over adaptive bins, as ``torch.nn.functional.adaptive_max_pool{1,2,3}d``.

    Bins as in :func:`adaptive_avg_pool`; dtype kept; ties go to the first
    cell in row-major order, NaN propagates. Indices are flat per (n, c) plane.

    Shape
    -----
    (N, C, *L) -> (N, C, *O); unbatched likewise.

    Examples
    --------
    >>> adaptive_max_pool(np.array([[[1., 5., 3., 4., 2.]]]), 2, return_indices=True)
    (array([[[5., 4.]]]), array([[[1, 3]]]))
    """
    return _adaptive_max_pool("adaptive_max_pool", None, x, output_size, return_indices)


def _even_max(op, xb, out, g):
    """(max, flat per-plane argmax) over whole, equal bins (the geometry g of tiling windows): the max pool's
    tiled scan for few taps; for more than _TAP_VIEWS_MAX (global pooling's whole plane), one max and one
    argmax over each window's cells laid out last. np.argmax picks the first of equals, as the scan does,
    but the first NaN where the scan (and PyTorch) keep the last: windows holding NaN are looked at again."""
    if math.prod(g.k) <= _TAP_VIEWS_MAX:
        y, idx, _ = _max_pool_impl(op, len(out), xb, g.k, g.k, 0, 1, False, True, False)
        return y, idx
    nd, lead = len(out), xb.shape[:2]
    win = xb.reshape(lead + sum(((o, k) for o, k in zip(out, g.k)), ()))
    win = win.transpose((0, 1) + tuple(2 + 2 * i for i in range(nd)) + tuple(3 + 2 * i for i in range(nd)))
    win = win.reshape(lead + tuple(out) + (-1,))                        # a copy unless every o is 1
    t = np.argmax(win, axis=-1)
    y = np.take_along_axis(win, t[..., None], -1)[..., 0]
    if xb.dtype.kind == "f" and np.isnan(y).any():
        nan = np.isnan(y)
        last = win.shape[-1] - 1 - np.argmax(np.isnan(win[nan])[..., ::-1], axis=-1)
        t[nan] = last
    # window cell t -> its offset per dim (row-major in the window), then the flat index in the plane
    offs = np.unravel_index(t, g.k)
    starts = np.meshgrid(*[np.arange(o) * k for o, k in zip(out, g.k)], indexing="ij")
    pstride = [math.prod(xb.shape[3 + i:]) for i in range(nd)]
    idx = sum((st + of) * ps for st, of, ps in zip(starts, offs, pstride))
    return y, idx.astype(np.int64)


def _adaptive_max_pool(op, n, x, output_size, return_indices=False):
    xb, unbatched, out = _adaptive(op, n, x, output_size, keep_int=True)
    g = _even_bins(op, xb, out)
    if g is not None:
        y, idx = _even_max(op, xb, out, g)
        return (_ret(y, unbatched), _ret(idx, unbatched)) if return_indices else _ret(y, unbatched)
    y = np.empty(xb.shape[:2] + out, xb.dtype)
    idx = np.empty(y.shape, np.int64)
    for b in _blocks(xb.shape, _plane_bytes(xb.shape[2:], out)):
        y[b], idx[b] = _adaptive_argmax(xb[b], out)
    return (_ret(y, unbatched), _ret(idx, unbatched)) if return_indices else _ret(y, unbatched)


def adaptive_max_pool_vjp(grad_out, x, output_size, return_indices=False):
    """Gradient of :func:`adaptive_max_pool` w.r.t. x: each bin's gradient goes to its argmax.

    Each input cell gathers from the few bins that contain it (no scatter).

    Shape
    -----
    grad_out: (N, C, *O); returns x's shape, grad_out's float dtype.

    Examples
    --------
    >>> adaptive_max_pool_vjp(np.ones((1, 1, 2)), np.array([[[1., 5., 3., 4., 2.]]]), 2)
    array([[[0., 1., 0., 1., 0.]]])
    """
    return _adaptive_max_vjp("adaptive_max_pool_vjp", grad_out, x, output_size)


def _adaptive_max_vjp(op, grad_out, x, output_size):
    xb, unbatched, out = _adaptive(op, None, x, output_size, keep_int=True)
    gy = _grad(op, grad_out, unbatched, xb.shape[:2] + out)
    g = _even_bins(op, xb, out)
    if g is not None:    # whole, equal bins: each cell is in one bin, its winner found as the forward finds it
        return _ret(_route_indices(gy, _even_max(op, xb, out, g)[1], xb.shape), unbatched)
    sp = xb.shape[2:]
    tabs = [_ranges(*_bins_containing(L, O)) for L, O in zip(sp, out)]
    here = np.arange(math.prod(sp)).reshape(sp)
    gx = np.zeros(xb.shape, gy.dtype)
    for b in _blocks(xb.shape, _plane_bytes(sp, sp, out)):
        _, flat = _adaptive_argmax(xb[b], out)
        for ts in itertools.product(*(range(len(idx)) for idx, _ in tabs)):
            sel = (Ellipsis, *_outer([idx[t] for (idx, _), t in zip(tabs, ts)]))
            inside = functools.reduce(np.logical_and, _outer([ins[t] for (_, ins), t in zip(tabs, ts)]))
            np.add(gx[b], gy[b][sel], out=gx[b], where=(flat[sel] == here) & inside)
    return _ret(gx, unbatched)


# --------------------------------------------------------------------------- global pools

def _global(op, x, keep_int=False):
    x = C.as_float_array(op, "input", x, keep_int=keep_int)
    C.spatial_rank(op, x)
    C.positive_shape(op, "input spatial shape", x.shape[2:])
    _check_memory(op, x, (1,) * (x.ndim - 2))
    return x, tuple(range(2, x.ndim))


def global_avg_pool(x):
    """Mean over all spatial dims, kept as size 1 (ONNX GlobalAveragePool).

    Shape
    -----
    (N, C, *spatial) -> (N, C, 1, ..., 1). Integer input becomes float64.

    Examples
    --------
    >>> global_avg_pool(np.arange(8.).reshape(1, 2, 2, 2))
    array([[[[1.5]],
    <BLANKLINE>
            [[5.5]]]])
    """
    x, axes = _global("global_avg_pool", x)
    return x.mean(axis=axes, keepdims=True, dtype=np.result_type(x.dtype, np.float32)).astype(x.dtype)


def global_avg_pool_vjp(grad_out, x):
    """Gradient of :func:`global_avg_pool`: g / (number of spatial cells), broadcast.

    Shape
    -----
    grad_out: (N, C, 1, ..., 1); returns x's shape.

    Examples
    --------
    >>> global_avg_pool_vjp(np.ones((1, 1, 1)), np.zeros((1, 1, 4)))
    array([[[0.25, 0.25, 0.25, 0.25]]])
    """
    op = "global_avg_pool_vjp"
    x, axes = _global(op, x)
    gy = _grad(op, grad_out, False, x.shape[:2] + (1,) * len(axes), x.dtype)
    return np.array(np.broadcast_to(gy / math.prod(x.shape[2:]), x.shape))


def global_max_pool(x):
    """Max over all spatial dims, kept as size 1 (ONNX GlobalMaxPool); dtype kept, NaN propagates.

    Shape
    -----
    (N, C, *spatial) -> (N, C, 1, ..., 1).

    Examples
    --------
    >>> global_max_pool(np.array([[[3, 1, 2]]], dtype=np.uint8))
    array([[[3]]], dtype=uint8)
    """
    x, axes = _global("global_max_pool", x, keep_int=True)
    return x.max(axis=axes, keepdims=True)


def global_max_pool_vjp(grad_out, x):
    """Gradient of :func:`global_max_pool`: to the first maximum of each plane (last NaN if any).

    Shape
    -----
    grad_out: (N, C, 1, ..., 1); returns x's shape, grad_out's float dtype.

    Examples
    --------
    >>> global_max_pool_vjp(np.ones((1, 1, 1)), np.array([[[3., 1., 3.]]]))
    array([[[1., 0., 0.]]])
    """
    op = "global_max_pool_vjp"
    x, axes = _global(op, x, keep_int=True)
    return _adaptive_max_vjp(op, grad_out, x, (1,) * len(axes))


# --------------------------------------------------------------------------- max unpool

def _unpool(op, n, x, indices, kernel_size, stride, padding, output_size):
    x = C.as_float_array(op, "input", x, keep_int=True)
    n = _rank(op, n, x, kernel_size)
    xb, unbatched = C.batched(op, x, n, what=_WHAT.format(n=n))
    k = C.ntuple(op, "kernel_size", kernel_size, n, minimum=1)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) else \
        C.ntuple(op, "stride", stride, n, minimum=1)
    pads = C.padding_arg(op, padding, n, allow_strings=False)
    default = shapes.conv_transpose_output_shape(xb.shape[2:], k, s, pads, op=op)
    out = default
    if output_size is not None:
        sizes = list(output_size) if isinstance(output_size, (list, tuple, np.ndarray)) else output_size
        if not isinstance(sizes, list) or len(sizes) not in (n, n + 1, n + 2):
            C.fail(op, "output_size", f"a sequence of {n} spatial sizes or the full output shape", output_size)
        out = C.ntuple(op, "output_size", sizes[-n:], n, minimum=1)
        if any(not (dd - st < o < dd + st) for o, dd, st in zip(out, default, s)):
            C.fail(op, "output_size", f"within stride of the default {default} (strictly, per dim)", output_size)
    P = math.prod(out)
    # before reading the indices (a pass over all of them): the output, or the vjp's input-sized gradient
    C.check_alloc(op, C.nbytes(xb.shape if op.endswith("_vjp") else xb.shape[:2] + out, xb.dtype))
    idx = C.index_array(op, "indices", indices, x.shape, P, f"flat positions in an output plane of shape {out}")
    return xb, idx.reshape(xb.shape[:2] + (math.prod(xb.shape[2:]),)), unbatched, out


def max_unpool(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of :func:`max_pool`: put each value at its index, zeros elsewhere.

    As ``torch.nn.functional.max_unpool{1,2,3}d``: ``indices`` are flat per
    (n, c) plane of the output (what ``max_pool(..., return_indices=True)``
    returns); ``output_size`` is the spatial size or the full shape and must
    lie strictly within stride of the default. If two values share an index,
    which one is kept is unspecified (as in PyTorch); the vjp reads both.

    Shape
    -----
    ``o = (L - 1)*s - lo - hi + k`` per dim unless output_size is given.

    Examples
    --------
    >>> y, i = max_pool(np.array([[[1., 3., 4., 2.]]]), 2, return_indices=True)
    >>> max_unpool(y, i, 2)
    array([[[0., 3., 4., 0.]]])
    """
    return _max_unpool("max_unpool", None, x, indices, kernel_size, stride, padding, output_size)


def _max_unpool(op, n, x, indices, kernel_size, stride=None, padding=0, output_size=None):
    xb, idx, unbatched, out = _unpool(op, n, x, indices, kernel_size, stride, padding, output_size)
    y = np.zeros(xb.shape[:2] + (math.prod(out),), xb.dtype)
    np.put_along_axis(y, idx, xb.reshape(idx.shape), axis=2)
    return _ret(y.reshape(xb.shape[:2] + out), unbatched)


def max_unpool_vjp(grad_out, x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Gradient of :func:`max_unpool` w.r.t. x: the output gradient read back at the indices.

    Shape
    -----
    grad_out: the unpooled output's shape; returns x's shape.

    Examples
    --------
    >>> max_unpool_vjp(np.arange(4.).reshape(1, 1, 4), np.ones((1, 1, 2)), np.array([[[1, 2]]]), 2)
    array([[[1., 2.]]])
    """
    op = "max_unpool_vjp"
    xb, idx, unbatched, out = _unpool(op, None, x, indices, kernel_size, stride, padding, output_size)
    gy = _grad(op, grad_out, unbatched, xb.shape[:2] + out)
    return _ret(np.take_along_axis(gy.reshape(idx.shape[:2] + (-1,)), idx, axis=2).reshape(xb.shape), unbatched)


# --------------------------------------------------------------------------- rank-checked aliases

max_pool1d, max_pool2d, max_pool3d = (_fixed_rank(max_pool, _max_pool, n) for n in (1, 2, 3))
avg_pool1d, avg_pool2d, avg_pool3d = (_fixed_rank(avg_pool, _avg_pool, n) for n in (1, 2, 3))
lp_pool1d, lp_pool2d, lp_pool3d = (_fixed_rank(lp_pool, _lp_pool, n) for n in (1, 2, 3))
adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d = (
    _fixed_rank(adaptive_avg_pool, _adaptive_avg_pool, n) for n in (1, 2, 3))
adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d = (
    _fixed_rank(adaptive_max_pool, _adaptive_max_pool, n) for n in (1, 2, 3))
max_unpool1d, max_unpool2d, max_unpool3d = (_fixed_rank(max_unpool, _max_unpool, n) for n in (1, 2, 3))

_GENERIC = ["max_pool", "avg_pool", "lp_pool", "adaptive_avg_pool", "adaptive_max_pool", "max_unpool"]
__all__ = [
    *_GENERIC, *(f"{g}_vjp" for g in _GENERIC), *(f"{g}{n}d" for g in _GENERIC for n in (1, 2, 3)),
    "global_avg_pool", "global_max_pool", "global_avg_pool_vjp", "global_max_pool_vjp",
]
