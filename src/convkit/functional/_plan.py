"""Which algorithm computes a convolution: the heuristics, a forced choice, and the measured
autotune mode (like cuDNN's benchmark flag) with its plan cache.

Algorithms (every one gives the same result up to rounding; tests check each against
convkit.reference):

    "direct"    shifted multiply-accumulate over the kernel taps, for depthwise convolutions
                (groups == in_channels) with stride 1
    "gemm"      one matrix product per sample, for 1x1 kernels without padding
    "winograd"  Winograd F(4x4, 3x3) and F(2x2, 5x5) for 2-D 3x3 and 5x5 kernels with stride 1,
                dilation 1 and no groups: the forward and the input gradient (the weight gradient
                uses im2col)
    "im2col"    im2col + one GEMM per chunk: every convolution

A pass is "forward" or "backward" (the input and weight gradients; the transposed convolution's
forward is the backward's input gradient).
"""
from __future__ import annotations

import contextlib
import threading
import time

from . import _depthwise, _winograd

ALGORITHMS = ("direct", "gemm", "winograd", "im2col")

_lock = threading.Lock()
_plans: dict = {}
_settings = {"autotune": False}


def applicable(x_shape, w, stride, pads, dilation, groups):
    """The algorithms that can compute this convolution, in the order the heuristics prefer them."""
    found = []
    if _depthwise.applicable(x_shape[1], w, stride, groups):
        found.append("direct")
    if groups == 1 and all(k == 1 for k in w.shape[2:]) and all(lo == 0 == hi for lo, hi in pads):
        found.append("gemm")
    if _winograd.applicable(w, stride, dilation, groups):
        found.append("winograd")
    found.append("im2col")
    return found


def _winograd_pays(x_shape, w, out):
    """F(4x4, 3x3) beats im2col when there are enough input channels to share the transforms, enough
    tiles to amortise the weight transform, and the tiles waste little of the output (measured in
    benchmarks/conv_suite.py). F(2x2, 5x5) saves too few products to pay for its transforms in NumPy
    (it runs when forced or autotuned)."""
    if w.shape[-1] != 3:
        return False
    m = _winograd.TILE[3]
    tiles = [-(-o // m) for o in out]
    waste = (tiles[0] * tiles[1] * m * m) / max(1, out[0] * out[1])
    return x_shape[1] >= 16 and x_shape[0] * tiles[0] * tiles[1] >= 256 and waste <= 1.2


def heuristic(pass_, x_shape, w, stride, pads, dilation, groups, out, keep=False, cands=None):
    """The default choice among ``cands`` (default: the applicable algorithms). A forward that keeps
    its columns for the weight gradient (autograd) stays on im2col: Winograd would save the forward's
    product but the backward would then have to make the columns again."""
    cands = applicable(x_shape, w, stride, pads, dilation, groups) if cands is None else cands
    for alg in cands:
        if alg == "winograd" and (keep or not _winograd_pays(x_shape, w, out)):
            continue
        return alg
    return "im2col"


def check(op, algorithm, x_shape, w, stride, pads, dilation, groups):
    """A user's ``algorithm=`` argument: None/"auto", or one that applies to this convolution."""
    if algorithm is None or algorithm == "auto":
        return None
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{op}: algorithm must be None, 'auto' or one of {', '.join(map(repr, ALGORITHMS))}; "
                         f"got algorithm={algorithm!r}.")
    cands = applicable(x_shape, w, stride, pads, dilation, groups)
    if algorithm not in cands:
        raise ValueError(f"{op}: algorithm must be one that applies to this convolution "
                         f"({', '.join(map(repr, cands))}); got algorithm={algorithm!r}.")
    return algorithm


def choose(pass_, x, w, stride, pads, dilation, groups, out, algorithm=None, keep=False, trial=None):
    """The algorithm for one pass. ``algorithm`` (already checked) wins; otherwise, in autotune mode,
    the fastest of the applicable ones measured once per shape by ``trial(alg)``; otherwise the heuristic."""
    if algorithm is not None:
        return algorithm
    cands = applicable(x.shape, w, stride, pads, dilation, groups)
    if not _settings["autotune"] or trial is None or len(cands) == 1:
        return heuristic(pass_, x.shape, w, stride, pads, dilation, groups, out, keep, cands)
    key = (pass_, keep, x.shape, w.shape, str(x.dtype), tuple(stride), tuple(pads), tuple(dilation), groups)
    with _lock:
        hit = _plans.get(key)
    if hit is not None:
        return hit["algorithm"]
    times = {}
    for alg in cands:
        t0 = time.perf_counter()
        trial(alg)
        times[alg] = time.perf_counter() - t0
    best = min(times, key=times.get)
    with _lock:
        _plans[key] = {"algorithm": best, "seconds": times}
    return best


def set_autotune(enabled: bool) -> None:
    """Measure every applicable algorithm the first time a convolution shape is seen and keep the
    fastest for that shape (cuDNN's ``benchmark`` flag). Off by default: results do not depend on
    it beyond rounding, but the first call of each shape runs every candidate."""
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autotune: enabled must be a bool; got enabled={enabled!r}.")
    _settings["autotune"] = enabled


def get_autotune() -> bool:
    return _settings["autotune"]


@contextlib.contextmanager
def autotune(enabled: bool = True):
    """``with autotune(): ...`` turns the measured choice on for the block (process-wide)."""
    old = _settings["autotune"]
    set_autotune(enabled)
    try:
        yield
    finally:
        _settings["autotune"] = old


def plans():
    """The autotuned plans so far: {(pass, keep, x.shape, w.shape, dtype, stride, pads, dilation, groups):
    {"algorithm": name, "seconds": {name: time of its trial}}}."""
    with _lock:
        return {k: dict(v) for k, v in _plans.items()}


def clear_plans() -> None:
    with _lock:
        _plans.clear()
