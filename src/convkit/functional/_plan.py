"""Which algorithm computes a convolution: the heuristics, a forced choice, and the measured
autotune mode (like cuDNN's benchmark flag) with its plan cache.

Algorithms (every one gives the same result up to rounding; tests check each against
convkit.reference):

    "direct"    shifted multiply-accumulate over the kernel taps, for depthwise convolutions
                (groups == in_channels) with stride 1
    "gemm"      one matrix product per sample, for 1x1 kernels without padding
    "implicit"  implicit GEMM: one product per kernel tap read straight from the padded input, summed
                by BLAS (no columns), for stride 1 without groups: the forward, the input gradient
                (a forward of grad_out) and the weight gradient
    "winograd"  Winograd F(4x4, 3x3) and F(2x2, 5x5) for 3x3 and 5x5 kernels (2-D, or the planes
                of 3-D ones) with stride 1, dilation 1 and no groups: the forward, the input gradient,
                and the weight gradient from the transformed input a training forward kept (else
                im2col's)
    "fft"       the convolution theorem with every DFT a matrix product, for 2-D convolutions with
                stride 1 and no groups on small planes (circular plane sides at most _fft.MAX_SIDE): the
                forward, the input gradient and the weight gradient, which share the spectra a
                training forward kept
    "im2col"    im2col + one GEMM per chunk: every convolution

A pass is "forward" or "backward" (the input and weight gradients; the transposed convolution's
forward is the backward's input gradient).
"""
from __future__ import annotations

import contextlib
import math
import threading
import time

from .. import _blas
from . import _depthwise, _fft, _implicit, _winograd

ALGORITHMS = ("direct", "gemm", "implicit", "winograd", "fft", "im2col")

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
    if _implicit.applicable(w, stride, pads, groups):
        found.append("implicit")
    if _winograd.applicable(w, stride, dilation, groups):
        found.append("winograd")
    if _fft.applicable(x_shape, w, stride, pads, dilation, groups):
        found.append("fft")
    found.append("im2col")
    return found


# Batch-1 forwards on an AVX-512 Xeon, ms, im2col vs F(4x4, 3x3): 64->64 at 56x56 (196 tiles) 1.92 vs 1.65;
# 128->128 at 28x28 (49 tiles) 1.52 vs 1.45; 256->256 at 14x14 (16 tiles) 1.38 vs 1.88.
_WINOGRAD_MIN_TILES = 48
# With the weight's transform U kept between calls (an ONNX session), ms, the default vs F(4x4, 3x3), each
# layer alone: batch 1: 128->128 at 28x28 1.31 (implicit) vs 1.17, 256->256 at 14x14 1.29 (im2col) vs 1.16,
# 512->512 at 7x7 (4 tiles) 1.56 (im2col) vs 2.04; batch 8: 128->128 at 28x28 9.20 (implicit) vs 7.93, 256->256
# at 14x14 7.61 vs 6.96, 512->512 at 7x7 (32 tiles, 1.31 of them output) 8.18 vs 6.00. Since the output tiles
# are scattered as whole rows (session 11), inside ResNet-18 (the same nodes' medians, default vs Winograd):
# batch 8: 128->128 at 28x28 9.0 -> 7.2, 256->256 at 14x14 8.2 -> 6.8, 64->64 at 56x56 even (10.8 vs 10.9);
# batch 1: 128->128 (49 tiles) 1.54 -> 1.45, but 256->256 (16 tiles) 1.49 vs 1.60 and 64->64 1.56 vs 1.66.
# So Winograd goes first from 128 channels, with tiles x channels at least this much work.
_WINOGRAD_MIN_WORK_CACHED = 6144
_WINOGRAD_FIRST_MAX_WASTE = 1.35
_WINOGRAD_FIRST_CHANNELS = 128
# Without a kept U (U made on every call), the input gradient, batch 8, ms, the default vs Winograd: 256->256 at
# 14x14 8.8 (im2col) vs 7.5, 128->128 at 28x28 9.0 (implicit) vs 7.9; but 512->512 at 7x7 10.6 vs 16.2 (the
# weight's transform, 38 MB a call) and 64->64 at 56x56 11.2 vs 12.4. Winograd goes first up to this weight.
_WINOGRAD_FIRST_MAX_WEIGHT = 256 * 256


# Dilated 3x3 layers by Winograd (its phases as samples: see _winograd.forward), dilation 2 unless said, ms, the
# default before (im2col forward, implicit GEMM input gradient) vs Winograd; forward + both gradients, then the
# inference forward: 256->256 at 14x14, batch 8, 24.7 vs 21.0-21.3, 8.1 vs 7.4; at 28x28, batch 4, 46.3 vs 38.7,
# 15.1 vs 13.3; dilation 4 at 14x14, batch 8, 24.9 vs 23.0, 8.2 vs 8.2. But 128->128 at 28x28, batch 8, 27.7-28.4
# vs 28.3-29.7, 10.0 vs 10.4-10.7; 64->64 at 56x56, batch 8, 37.5-39.4 vs 35.6-39.3 (three runs), 12.1 vs 12.2;
# 32->32 at 56x56, batch 4, 6.8 vs 7.1, 2.5 vs 3.3: phases interleaved back into y cost a pass that the
# products of fewer channels do not pay for. So dilated layers take it from this many channels each way.
_WINOGRAD_DILATED_MIN_CHANNELS = 256


def _winograd_pays(x_shape, w, out, min_tiles=_WINOGRAD_MIN_TILES, max_waste=1.2, dilation=(1, 1)):
    """F(4x4, 3x3) beats im2col when there are enough input channels to share the transforms, enough
    tiles to amortise the weight transform, and the tiles waste little of the output (measured in
    benchmarks/conv_suite.py). F(2x2, 5x5) saves too few products to pay for its transforms in NumPy (it
    runs when forced or autotuned). A dilated layer's tiles are those of all its phases, and it needs
    _WINOGRAD_DILATED_MIN_CHANNELS channels each way."""
    if w.shape[-1] != 3 or (math.prod(dilation) > 1 and min(w.shape[:2]) < _WINOGRAD_DILATED_MIN_CHANNELS):
        return False
    m = _winograd.TILE[3]
    tiles = _winograd.all_tiles(out, m, dilation)
    waste = (tiles * m * m) / max(1, out[-2] * out[-1])
    return x_shape[1] >= 16 and x_shape[0] * math.prod(out[:-2]) * tiles >= min_tiles and waste <= max_waste


# With every product on one thread (an ONNX session running parts of a batch side by side, _blas.one_thread),
# inside ResNet-18 at batch 8 (two parts of 4 samples; each node's median, ms, the default vs forced): 64->64 at
# 56x56 implicit 9.0 vs Winograd 7.1-7.5; 512->512 at 7x7 (16 tiles) Winograd 8.3 vs im2col 7.5-7.7; 256->256 at
# 14x14 (64 tiles) Winograd 5.6-5.8 vs im2col 7.1-7.7. So Winograd goes first from 64 channels, with twice the work.
_WINOGRAD_FIRST_CHANNELS_ONE_THREAD = 64
_WINOGRAD_MIN_WORK_CACHED_ONE_THREAD = 2 * _WINOGRAD_MIN_WORK_CACHED


def _winograd_first(pass_, x_shape, w, out, cached, dilation=(1, 1)):
    """Wide layers (from 128 channels) take Winograd before the other algorithms: with U kept between
    calls (``cached``, a forward) from _WINOGRAD_MIN_WORK_CACHED tiles x channels; with U made on every
    call, from a weight of at most _WINOGRAD_FIRST_MAX_WEIGHT and as many tiles as _winograd_pays asks.
    Kept-U forwards whose products run on one thread (_blas.held_to_one_thread) take it from 64 channels
    and _WINOGRAD_MIN_WORK_CACHED_ONE_THREAD."""
    channels = min(w.shape[:2])
    one = cached and pass_ == "forward" and _blas.held_to_one_thread()
    if channels < (_WINOGRAD_FIRST_CHANNELS_ONE_THREAD if one else _WINOGRAD_FIRST_CHANNELS):
        return False
    min_tiles = -(-(_WINOGRAD_MIN_WORK_CACHED_ONE_THREAD if one else _WINOGRAD_MIN_WORK_CACHED) // channels)
    if not (cached and pass_ == "forward"):
        if w.shape[0] * w.shape[1] > _WINOGRAD_FIRST_MAX_WEIGHT:
            return False
        min_tiles = max(min_tiles, _WINOGRAD_MIN_TILES)
    return _winograd_pays(x_shape, w, out, min_tiles, _WINOGRAD_FIRST_MAX_WASTE, dilation)


# Forwards on an AVX-512 Xeon, ms, the default before implicit GEMM vs implicit GEMM: 3x3 64->64 at 56x56,
# batch 1: 1.66 vs 1.29, batch 8: 14.6 vs 10.0 (its input gradient 14.6 vs 10.0); 128->128 at 28x28, batch 8:
# 8.6 vs 8.4; 3x3 dilation 2, 64->64 at 56x56, batch 8: 12.5 vs 11.4; conv1d 64->64, length 4096, batch 16:
# 12.5 vs 9.3. Slower: 256->256 at 14x14 (batch 1: 1.38 vs 1.94, the per-call tap-major weight copy),
# 512->512 at 7x7, 5x5 32->64 at 14x14 (batch 64: 7.9 vs 10.1), 3x3x3 16->32 (7.1 vs 7.8); its weight
# gradient is slower than im2col's on all of these but the 512-channel layers.
_IMPLICIT_MIN_CHANNELS = 64
# The input gradient (session 17, ms, the default then vs implicit GEMM): 3x3x3 32->16 at 16x32x32, batch 2, 17.6
# vs 13.3 (im2col's folded forward of g); 3x3x3 8->16, batch 4, 14.3 vs 11.1; 3x3x3 4->8 11.0 vs 5.7; 3x3 32->32
# at 56x56, batch 8, 10.4 vs 7.5 (Winograd); 3x3 16->16 at 32x32, batch 32, 7.9 vs 5.4; 3x3 4->8 at 28x28, batch
# 64, 5.2 vs 2.8; 7x7 16->16 at 56x56, batch 8, 29.1 vs 10.2; conv1d 32->32, length 4096, 10.5 vs 7.7; even on
# 16->16 at 16^3 (16.6 vs 16.8); slower for 5x5 32->32 at 28x28, batch 8 (6.4 vs 7.0), and for 3 input channels
# (64 filters at 112x112, batch 8: 11.7 vs 41.6: three rows per product).
_IMPLICIT_MIN_CHANNELS_INPUT_GRAD = 4
_IMPLICIT_MAX_WEIGHT = 128 * 128
_IMPLICIT_MIN_POSITIONS = 1024


def _implicit_pays(depth, filters, positions, w, min_channels=_IMPLICIT_MIN_CHANNELS):
    """Implicit GEMM beats the other algorithms when its products are deep and tall enough (``depth``
    channels summed per tap, ``filters`` rows; the input gradient of 5x5 32->64 at 14x14, batch 64, with
    32 rows: 26.6 -> 29.6 ms for the forward and both gradients), the weight small enough to copy
    tap-major on every call, there are enough output positions, and BLAS can add the taps' products
    up itself. Input gradients pay from far fewer channels (``min_channels``
    _IMPLICIT_MIN_CHANNELS_INPUT_GRAD: measured in session 17, above)."""
    return (min(depth, filters) >= min_channels and depth * filters <= _IMPLICIT_MAX_WEIGHT
            and positions >= _IMPLICIT_MIN_POSITIONS and math.prod(w.shape[2:]) > 1 and _blas.direct_gemm(w.dtype))


# A training forward (one that keeps what the weight gradient needs), forward + both gradients, batch 8
# unless said, ms, im2col's kept columns vs Winograd's kept transformed input: 3x3 64->64 at 56x56 41.1 vs 33.6
# (the weight gradient 11.3 vs 6.9), 128->128 at 28x28 28.4 vs 21.6, 256->256 at 14x14 26.1 vs 23.9, 32->32 at
# 56x56 18.1 vs 15.8, 3x3x3 16->32 at 16x32x32, batch 2, 31.8 vs 27.3; but 512->512 at 7x7 28.6 vs 44.3 (the
# weight's transforms, 38 MB each way) and 5x5 32->64 at 14x14, batch 64, 31.7 vs 37.8 (F(2x2, 5x5)).
_WINOGRAD_KEEP_MAX_WEIGHT = 256 * 256


def _winograd_keeps(x_shape, w, out, dilation=(1, 1)):
    """A training forward takes Winograd, keeping its transformed input for the weight gradient, for
    3x3 kernels (2-D, or 3-D with 3x3 planes) where _winograd_pays (with up to 35% of the tiles' outputs
    cropped: 256->256 at 14x14 is 16 tiles of 4x4 over 14x14) and the weight is at most
    _WINOGRAD_KEEP_MAX_WEIGHT."""
    return (w.shape[0] * w.shape[1] <= _WINOGRAD_KEEP_MAX_WEIGHT
            and _winograd_pays(x_shape, w, out, max_waste=_WINOGRAD_FIRST_MAX_WASTE, dilation=dilation))


# Forward + both gradients through autograd, ms, the default (im2col) vs FFT: 5x5 32->64 at 14x14, batch 64,
# 30.1 vs 21.7; 5x5 16->32 at 28x28, batch 32, 23.6 vs 16.4; 5x5 6->16 at 14x14 unpadded, batch 64, 6.1 vs 3.5;
# 7x7 32->32 at 14x14, batch 16, 15.8 vs 6.5; but 5x5 64->64 at 7x7, batch 8, 3.5 vs 5.8 (too few samples to
# pay for the weight's spectrum), and 3x3 kernels even or slower (32->32 at 28x28, batch 32: Winograd 16.3 vs
# 22.4). The forward alone gains less (it pays the weight's spectrum with one product instead of three):
# 5x5 32->64 9.2 vs 8.6, 5x5 16->32 7.0 vs 8.2, 7x7 32->32 5.1 vs 3.3; with the weight's spectrum kept between
# calls (an ONNX session's), ms: 5x5 32->64, batch 64, 13.1 vs 9.8, batch 16 4.1 vs 4.0, batch 1 1.01 vs 1.03;
# 5x5 16->32 at 28x28, batch 64, 19.1 vs 15.7; 5x5 6->16 at 14x14 unpadded, batch 64, 2.24 vs 1.55.
# Few channels leave each frequency's product too small: 5x5 at 28x28, batch 64, 1->32 7.9 vs 20.0, 3->32
# 18.6 vs 25.9, but 8->16 29.1 vs 16.8.
_FFT_MIN_CHANNELS = 6
_FFT_MIN_TAPS = 25
_FFT_MIN_TAPS_FORWARD = 49
_FFT_MIN_SAMPLES = 16


# 3x3 kernels on small planes with few channels, in training (session 18; forward + both gradients through
# autograd, ms, the default (Winograd forward, implicit GEMM input gradient) vs FFT): 32->32 at 8x8, batch 64,
# 3.65 vs 3.06; 64->64 at 8x8, batch 128, 16.87 vs 12.60; 32->64 at 4x4 2.10 vs 1.37; 64->64 at 7x7, batch 32,
# 6.56 vs 4.89. But 128->128 at 8x8 35.1 vs 40.7, 64->64 at 9x9 (a 10-cell plane) 11.7 vs 13.6, and batch 8
# even (1.02 vs 1.01). Training steps: digits_cnn 14.50 -> 12.35 ms, ResNet-20 (batch 128) 869.8 -> 837.8 and
# 863.4 -> 802.6 ms. Also taking 32-channel layers on 16x16 planes (alone 30.9 vs 27.4 ms at batch 128) gave
# ResNet-20 1.054x and 0.953x in two runs, so they are left out.
_FFT_SMALL_KERNEL = (3, 3)
_FFT_SMALL_SIDE = 9          # largest circular plane side
_FFT_SMALL_CHANNELS = 64     # most channels each way


def _fft_enough(x_shape, w):
    """At least _FFT_MIN_SAMPLES samples and _FFT_MIN_CHANNELS channels each way: what every FFT rule asks."""
    return x_shape[0] >= _FFT_MIN_SAMPLES and min(w.shape[:2]) >= _FFT_MIN_CHANNELS


def _fft_small_pays(x_shape, w, pads):
    """FFT for 3x3 kernels (where _fft_enough) on circular planes of at most _FFT_SMALL_SIDE a side, with at
    most _FFT_SMALL_CHANNELS channels each way: the transforms are shared by few channels there, and
    Winograd's weigh more than FFT's products do."""
    return (tuple(w.shape[2:]) == _FFT_SMALL_KERNEL and _fft_enough(x_shape, w)
            and max(w.shape[:2]) <= _FFT_SMALL_CHANNELS and max(_fft._plane(x_shape, pads)) <= _FFT_SMALL_SIDE)


def _fft_pays(pass_, x_shape, w, keep, cached):
    """FFT for kernels of at least _FFT_MIN_TAPS taps (forwards that keep nothing for a weight gradient and
    make the weight's spectrum on every call: at least _FFT_MIN_TAPS_FORWARD), where _fft_enough."""
    many = keep or cached or pass_ == "backward"
    return _fft_enough(x_shape, w) and math.prod(w.shape[2:]) >= (_FFT_MIN_TAPS if many else _FFT_MIN_TAPS_FORWARD)


# Strided depthwise layers (session 20), ms, im2col vs the shifted multiply-accumulates over the input's
# phases ("direct"), forward then vjp (both gradients): 3x3/2 96 channels at 112x112, batch 1: 1.78 vs 2.41,
# 7.01 vs 4.61; batch 8: 18.06 vs 17.97, 65.9 vs 37.9; 3x3/2 144 at 56x56, batch 1: 0.85 vs 1.14, 3.05 vs 2.06;
# 5x5/2 240 at 28x28, batch 1: 0.82 vs 1.10, 3.59 vs 1.77; 5x5/2 144 at 56x56, batch 8: 12.4 vs 12.7, 58.3 vs
# 24.2; 3x3/2 576 at 14x14: 0.47 vs 0.45, 1.39 vs 0.87; 1-D 7/2 64 channels at 1000, batch 16: 2.05 vs 2.04,
# 8.69 vs 3.78. So strided depthwise forwards stay im2col and their backwards go direct.


def heuristic(pass_, x_shape, w, stride, pads, dilation, groups, out, keep=False, cands=None, cached=False):
    """The default choice among ``cands`` (default: the applicable algorithms). A forward that keeps
    what the weight gradient needs (autograd) takes Winograd where its kept transformed input makes the
    weight gradient cheaper (_winograd_keeps), else im2col: implicit GEMM would save the forward's
    columns but the backward would then have to make them. A backward chosen as implicit computes the
    input gradient that way and the weight gradient with im2col's columns. Winograd runs 3-D kernels
    only in training forwards (elsewhere it was measured no faster). Large kernels over enough samples
    take FFT where it applies (_fft_pays), in training forwards (keeping both spectra), backwards and
    cached forwards; so do training forwards and backwards of 3x3 layers on small planes with few channels,
    before Winograd (_fft_small_pays). ``cached``: the forward's weight transforms are kept between calls
    (see _weights)."""
    cands = applicable(x_shape, w, stride, pads, dilation, groups) if cands is None else cands
    if "fft" in cands and (keep or pass_ == "backward") and _fft_small_pays(x_shape, w, pads):
        return "fft"           # 3x3 layers on small planes with few channels, in training
    if "winograd" in cands and (_winograd_keeps(x_shape, w, out, dilation) if keep else
                                w.ndim == 4 and _winograd_first(pass_, x_shape, w, out, cached, dilation)):
        return "winograd"      # wide layers: the transforms are shared by many channels
    if "fft" in cands and _fft_pays(pass_, x_shape, w, keep, cached):
        return "fft"           # large kernels: 4 multiplies per frequency instead of one per tap and output
    for alg in cands:
        if alg == "fft" or (alg == "direct" and pass_ == "forward" and any(s > 1 for s in stride)):
            continue           # strided depthwise forwards stay im2col (measured above)
        if alg == "winograd" and (keep or w.ndim != 4 or not _winograd_pays(x_shape, w, out, dilation=dilation)):
            continue
        if alg == "implicit" and (keep or not (
                _implicit_pays(w.shape[1], w.shape[0], x_shape[0] * math.prod(out), w) if pass_ == "forward" else
                _implicit_pays(w.shape[0], w.shape[1], x_shape[0] * math.prod(x_shape[2:]), w,
                               _IMPLICIT_MIN_CHANNELS_INPUT_GRAD))):
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


def choose(pass_, x, w, stride, pads, dilation, groups, out, algorithm=None, keep=False, trial=None, cached=False):
    """The algorithm for one pass. ``algorithm`` (already checked) wins; otherwise, in autotune mode,
    the fastest of the applicable ones measured once per shape by ``trial(alg)``; otherwise the heuristic.
    ``cached``: the weight's transforms are kept between calls (see _weights)."""
    if algorithm is not None:
        return algorithm
    cands = applicable(x.shape, w, stride, pads, dilation, groups)
    if not _settings["autotune"] or trial is None or len(cands) == 1:
        return heuristic(pass_, x.shape, w, stride, pads, dilation, groups, out, keep, cands, cached)
    key = (pass_, keep, x.shape, w.shape, str(x.dtype), tuple(stride), tuple(pads), tuple(dilation), groups, cached)
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
    """The autotuned plans so far: {(pass, keep, x.shape, w.shape, dtype, stride, pads, dilation, groups, cached):
    {"algorithm": name, "seconds": {name: time of its trial}}}."""
    with _lock:
        return {k: dict(v) for k, v in _plans.items()}


def clear_plans() -> None:
    with _lock:
        _plans.clear()
