"""Every convolution algorithm (F.conv(..., algorithm=...)) against the loop reference, through the
same grids as the core ops: float64 exact to rounding, float32 within tolerance; the automatic and
autotuned choices; and clear errors for an algorithm that does not apply."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import convkit
import convkit.functional as F
import convkit.reference as R
from convkit.functional import _plan
from test_conv import GRID, TRANSPOSE_GRID, conv_configs

WINOGRAD_GRID = [
    # x shape, weight shape, keywords: 2-D 3x3 stride 1, every padding form
    ((2, 3, 7, 9), (4, 3, 3, 3), dict(padding=1)),
    ((1, 2, 5, 5), (3, 2, 3, 3), dict()),
    ((2, 4, 12, 10), (5, 4, 3, 3), dict(padding=((3, 0), (1, 2)))),
    ((1, 1, 3, 3), (1, 1, 3, 3), dict()),
    ((3, 2, 8, 8), (2, 2, 3, 3), dict(padding="same")),
    ((1, 2, 4, 6), (3, 2, 3, 3), dict(padding=4)),                       # padding wider than the kernel
    ((2, 3, 9, 11), (2, 3, 3, 3), dict(padding=1, padding_mode="reflect")),
    ((2, 3, 9, 7), (4, 3, 5, 5), dict(padding=2)),                      # F(2x2, 5x5)
    ((1, 2, 6, 8), (3, 2, 5, 5), dict(padding=((0, 3), (4, 1)))),
    ((1, 2, 5, 5), (3, 2, 5, 5), dict(padding=6)),
    ((1, 2, 6, 8), (3, 2, 5, 5), dict(padding=2)),                      # whole 2x2 tiles
    ((2, 3, 7, 8), (4, 3, 5, 5), dict(padding=2)),                      # whole tile rows, a partial last row
    ((2, 3, 6, 6), (4, 3, 3, 3), dict(padding=1, data_format="channels_last")),
    # dilated: the phases of the dilated grid as samples
    ((2, 3, 12, 13), (4, 3, 3, 3), dict(padding=2, dilation=2)),
    ((2, 4, 16, 16), (3, 4, 3, 3), dict(padding=2, dilation=2)),                 # whole tiles in every phase
    ((1, 2, 11, 9), (3, 2, 3, 3), dict(padding=((1, 3), (0, 2)), dilation=(2, 3))),
    ((2, 2, 7, 20), (2, 2, 3, 3), dict(padding=((3, 3), (1, 1)), dilation=(3, 1))),
    ((1, 2, 9, 9), (3, 2, 3, 3), dict(padding=6, dilation=2)),                  # pads wider than the kernel
    ((1, 2, 10, 10), (3, 2, 5, 5), dict(padding=4, dilation=2)),                # F(2x2, 5x5)
    ((2, 3, 10, 12), (4, 3, 3, 3), dict(padding="same", dilation=2, data_format="channels_last")),
]


def _algorithms(x_shape, w_shape, groups, kw):
    kw = {k: v for k, v in kw.items() if k in ("stride", "padding", "dilation")}
    return F.conv_algorithms(x_shape, w_shape, groups=groups, **kw)["applicable"]


def _check(rng, x_shape, w_shape, groups, kw, algorithm, dtype=np.float64):
    xr, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1]))
    ref_kw = {k: v for k, v in kw.items() if k != "data_format"}
    x = np.moveaxis(xr, 1, -1) if kw.get("data_format") == "channels_last" else xr   # x_shape is channels first
    y_ref = R.conv(xr.astype(np.float64), w.astype(np.float64), b.astype(np.float64), groups=groups, **ref_kw)
    y = F.conv(x, w, b, groups=groups, algorithm=algorithm, **kw)
    assert y.dtype == dtype
    yc = np.moveaxis(y, -1, 1) if kw.get("data_format") == "channels_last" else y
    g = rng.standard_normal(y.shape).astype(dtype)
    gr = np.moveaxis(g, -1, 1) if kw.get("data_format") == "channels_last" else g
    refs = R.conv_vjp(gr.astype(np.float64), xr.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                      groups=groups, **ref_kw)
    got = F.conv_vjp(g, x, w, b, groups=groups, algorithm=algorithm, **kw)
    if kw.get("data_format") == "channels_last":
        got = (np.moveaxis(got[0], -1, 1),) + tuple(got[1:])
    for a, e in zip((yc,) + tuple(got), (y_ref,) + tuple(refs)):
        if dtype == np.float64:
            np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10)
        else:  # float32: within 1e-4 of the float64 reference, relative to its largest value
            assert np.abs(a - e).max() <= 1e-4 * max(1.0, np.abs(e).max())


@pytest.mark.parametrize("x_shape,w_shape,groups,kw", GRID)
def test_every_applicable_algorithm_matches_reference(rng, x_shape, w_shape, groups, kw):
    for algorithm in _algorithms(x_shape, w_shape, groups, kw):
        _check(rng, x_shape, w_shape, groups, kw, algorithm)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,kw", WINOGRAD_GRID)
def test_winograd_matches_reference(rng, x_shape, w_shape, kw, dtype):
    assert "winograd" in _algorithms(x_shape, w_shape, 1, kw)
    _check(rng, x_shape, w_shape, 1, kw, "winograd", dtype)


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (2, 5), (4, 5)])
def test_winograd_float32_error_on_a_real_layer_size(rng, m, r):
    """F(m x m, r x r) in float32 on a 64-channel layer stays within 1e-4 relative of the float64 reference."""
    from convkit.functional import _winograd
    x = rng.standard_normal((2, 64, 20, 20))
    w = rng.standard_normal((32, 64, r, r)) * 0.1
    p = r // 2
    pads = ((p, p), (p, p))
    ref = F.conv(x, w, padding=p, algorithm="im2col")
    y = _winograd.forward(x.astype(np.float32), w.astype(np.float32), pads, (20, 20), m=m)
    assert np.abs(y - ref).max() <= 1e-4 * np.abs(ref).max()
    g = rng.standard_normal(ref.shape)
    gx = _winograd.input_grad(g.astype(np.float32), w.astype(np.float32), (20, 20), pads, m=m)
    gref = F.conv_vjp(g, x, w, padding=p, algorithm="im2col")[0]
    assert np.abs(gx - gref).max() <= 1e-4 * np.abs(gref).max()


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (2, 5), (3, 5), (4, 5)])
def test_winograd_matrices_compute_a_correlation(rng, m, r):
    """The Toom-Cook matrices: A^T [(G g) * (B^T d)] is the correlation of d with g, and B^T is integer."""
    from convkit.functional import _winograd
    at, g_, bt = _winograd.matrices(m, r)
    d, g = rng.standard_normal(m + r - 1), rng.standard_normal(r)
    np.testing.assert_allclose(at @ ((g_ @ g) * (bt @ d)), np.correlate(d, g, "valid"), atol=1e-12)
    np.testing.assert_array_equal(bt, np.round(bt))


def test_winograd_under_a_tiny_workspace_takes_one_sample_at_a_time(rng):
    with convkit.workspace_limit(1024):
        _check(rng, (3, 2, 9, 7), (4, 2, 3, 3), 1, dict(padding=1), "winograd")
        _check(rng, (3, 2, 9, 7), (4, 2, 3, 3), 1, dict(padding=2, dilation=2), "winograd")


def test_winograd_takes_dilation_in_2d_only(rng):
    assert "winograd" in _algorithms((1, 2, 9, 9), (3, 2, 3, 3), 1, dict(dilation=2))
    assert "winograd" not in _algorithms((1, 2, 5, 9, 9), (3, 2, 3, 3, 3), 1, dict(dilation=(1, 2, 2)))
    with pytest.raises(ValueError, match="applies to this convolution"):
        F.conv(np.ones((1, 2, 5, 9, 9)), np.ones((3, 2, 1, 3, 3)), dilation=(1, 2, 2), algorithm="winograd")


def test_dilated_layers_take_winograd_by_default_only_when_wide():
    w_wide, w_narrow = np.ones((256, 256, 3, 3), np.float32), np.ones((64, 64, 3, 3), np.float32)
    pick = _plan.heuristic
    assert pick("forward", (8, 256, 14, 14), w_wide, (1, 1), ((2, 2), (2, 2)), (2, 2), 1, (14, 14), keep=True) \
        == "winograd"
    assert pick("forward", (8, 64, 56, 56), w_narrow, (1, 1), ((2, 2), (2, 2)), (2, 2), 1, (56, 56), keep=True) \
        != "winograd"
    assert pick("forward", (8, 64, 56, 56), w_narrow, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, (56, 56), keep=True) \
        == "winograd"


def test_winograd_gathers_tiles_in_blocks_of_samples_over_a_dirty_scratch(rng, monkeypatch):
    # blocks of one sample each (a batch larger than the threads), after a larger call of another shape has
    # left its values in the scratch buffers: the padding must be zeroed, not inherited
    from convkit.functional import _winograd
    F.conv(rng.standard_normal((4, 3, 20, 20)) + 5.0, rng.standard_normal((2, 3, 3, 3)), algorithm="winograd")
    monkeypatch.setattr(_winograd, "_GATHER_BLOCK_BYTES", 1)
    _check(rng, (5, 2, 9, 7), (4, 2, 3, 3), 1, dict(padding=((2, 1), (1, 2))), "winograd")
    _check(rng, (5, 2, 9, 7), (3, 2, 5, 5), 1, dict(padding=2), "winograd")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,kw", WINOGRAD_GRID)
def test_winograd_whole_tile_gather_matches_reference(rng, monkeypatch, x_shape, w_shape, kw, dtype):
    # narrow planes gather whole tiles (rows of a values as single elements) once the transformed input is
    # large; lowered here so that every shape of the grid takes that path, over a dirty scratch
    from convkit.functional import _winograd
    F.conv(rng.standard_normal((4, 3, 20, 20)) + 5.0, rng.standard_normal((2, 3, 3, 3)), algorithm="winograd")
    monkeypatch.setattr(_winograd, "_THREADED_COPY_BYTES", 0)
    monkeypatch.setattr(_winograd, "_ROW_GATHER_MAX_TW", 10**6)
    _check(rng, x_shape, w_shape, 1, kw, "winograd", dtype)


@given(conv_configs(), st.integers(0, 2**31))
def test_algorithms_hypothesis(cfg, seed):
    rng = np.random.default_rng(seed)
    kw = {k: cfg[k] for k in ("stride", "padding", "dilation", "padding_mode")}
    for algorithm in _algorithms(cfg["x_shape"], cfg["w_shape"], cfg["groups"], kw):
        _check(rng, cfg["x_shape"], cfg["w_shape"], cfg["groups"], kw, algorithm)


@pytest.mark.parametrize("x_shape,w_shape,groups,kw", TRANSPOSE_GRID + [
    ((2, 3, 6, 5), (3, 4, 3, 3), 1, dict(padding=1)),        # stride 1 3x3: Winograd applies
])
def test_conv_transpose_algorithms_match_reference(rng, x_shape, w_shape, groups, kw):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y_ref = R.conv_transpose(x, w, groups=groups, **kw)
    g = rng.standard_normal(y_ref.shape)
    refs = R.conv_transpose_vjp(g, x, w, groups=groups, **kw)
    full = tuple((i - 1) * kw.get("stride", 1) + 3 for i in x_shape[2:]) if w_shape[2:] == (3, 3) else None
    algorithms = ["im2col"] + (["winograd"] if full and "stride" not in kw else [])
    for algorithm in algorithms:
        np.testing.assert_allclose(F.conv_transpose(x, w, groups=groups, algorithm=algorithm, **kw), y_ref,
                                   atol=1e-10)
        got = F.conv_transpose_vjp(g, x, w, groups=groups, algorithm=algorithm, **kw)
        for a, e in zip(got[:2], refs[:2]):
            np.testing.assert_allclose(a, e, atol=1e-10)


@pytest.mark.parametrize("call,pattern", [
    (lambda: F.conv(np.ones((1, 2, 5, 5)), np.ones((3, 2, 4, 4)), algorithm="winograd"),
     r"conv2d: algorithm must be one that applies to this convolution \('implicit', 'fft', 'im2col'\); "
     r"got algorithm='winograd'\."),
    (lambda: F.conv(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), stride=2, algorithm="winograd"),
     "applies to this convolution"),
    (lambda: F.conv(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), algorithm="gemm"), "got algorithm='gemm'"),
    (lambda: F.conv(np.ones((1, 4, 5, 5)), np.ones((2, 2, 3, 3)), groups=2, algorithm="direct"),
     "got algorithm='direct'"),
    (lambda: F.conv(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), algorithm="fast"),
     r"algorithm must be None, 'auto' or one of 'direct', 'gemm', 'implicit', 'winograd', 'fft', 'im2col'; "
     r"got algorithm='fast'"),
    (lambda: F.conv(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), stride=2, algorithm="implicit"),
     r"\('im2col'\); got algorithm='implicit'"),
    (lambda: F.conv(np.ones((1, 2, 5, 5)), np.ones((2, 1, 3, 3)), groups=2, algorithm="implicit"),
     "got algorithm='implicit'"),
    (lambda: F.conv_transpose(np.ones((1, 2, 5, 5)), np.ones((2, 3, 3, 3)), stride=2, algorithm="winograd"),
     "conv_transpose2d: algorithm must be one that applies"),
])
def test_an_algorithm_that_does_not_apply_is_a_clear_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_auto_is_the_default():
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    np.testing.assert_array_equal(F.conv(x, w, algorithm="auto"), F.conv(x, w))


def test_the_automatic_choice_per_shape():
    from convkit import _blas
    # implicit GEMM needs BLAS to add the taps' products itself (NumPy's OpenBLAS called directly)
    fast = "implicit" if _blas.direct_gemm(np.float32) else "winograd"
    assert F.conv_algorithms((8, 64, 56, 56), (64, 64, 3, 3), padding=1) == {
        "applicable": ["implicit", "winograd", "im2col"], "forward": fast, "forward_autograd": "winograd",
        "forward_fixed_weight": fast, "backward": fast, "by_group": False}
    # wide groups, over enough output positions, run one at a time as dense convolutions (not a kept weight's)
    grouped = F.conv_algorithms((8, 64, 56, 56), (64, 32, 3, 3), padding=1, groups=2)
    assert grouped["by_group"] and grouped["forward_autograd"] == "winograd" and grouped["backward"] == fast
    assert grouped["applicable"] == ["im2col"] and grouped["forward_fixed_weight"] == "im2col"
    for x_shape, w_shape, groups in [((8, 128, 28, 28), (128, 8, 3, 3), 16), ((1, 256, 14, 14), (256, 32, 3, 3), 8)]:
        assert not F.conv_algorithms(x_shape, w_shape, padding=1, groups=groups)["by_group"], x_shape
    # a training forward keeps Winograd's transformed input for the weight gradient: 3x3 kernels with
    # enough channels and tiles, up to a 256x256 weight, and the planes of 3-D kernels (whose other
    # passes stay on the other algorithms)
    for x_shape, w_shape, autograd in [((8, 512, 7, 7), (512, 512, 3, 3), "im2col"),
                                       ((8, 256, 28, 28), (256, 256, 3, 3), "winograd"),
                                       ((8, 512, 14, 14), (512, 512, 3, 3), "im2col"),
                                       ((64, 32, 14, 14), (64, 32, 5, 5), "fft"),
                                       ((8, 8, 56, 56), (8, 8, 3, 3), "im2col"),
                                       ((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), "winograd")]:
        assert F.conv_algorithms(x_shape, w_shape, padding=w_shape[-1] // 2)["forward_autograd"] == autograd, x_shape
    # 3x3 layers on small planes with few channels train by FFT, before Winograd: circular planes of up to 9
    # cells, 6 to 64 channels each way, from 16 samples; a forward that keeps nothing does not
    for x_shape, k, fft in [((64, 32, 8, 8), 32, True), ((16, 64, 7, 7), 64, True), ((64, 32, 4, 4), 64, True),
                            ((128, 32, 16, 16), 32, False), ((64, 128, 8, 8), 128, False), ((8, 32, 8, 8), 32, False),
                            ((32, 64, 9, 9), 64, False), ((64, 64, 8, 8), 128, False), ((64, 4, 8, 8), 16, False)]:
        c = F.conv_algorithms(x_shape, (k, x_shape[1], 3, 3), padding=1)
        assert (c["forward_autograd"] == "fft") == fft and (c["backward"] == "fft") == fft, x_shape
        assert c["forward"] != "fft", x_shape
    c3 = F.conv_algorithms((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1)
    assert "winograd" in c3["applicable"] and c3["forward"] != "winograd" and c3["backward"] != "winograd"
    # from 128 channels Winograd goes first, up to a 256x256 weight when U is made on every call
    assert F.conv_algorithms((8, 256, 14, 14), (256, 256, 3, 3), padding=1)["forward"] == "winograd"
    assert F.conv_algorithms((8, 128, 28, 28), (128, 128, 3, 3), padding=1)["backward"] == "winograd"
    assert F.conv_algorithms((2, 256, 14, 14), (256, 256, 3, 3), padding=1)["forward"] == "im2col"   # 32 tiles
    assert F.conv_algorithms((16, 64, 4096), (64, 64, 3), padding=1)["forward"] == (
        "implicit" if fast == "implicit" else "im2col")
    assert F.conv_algorithms((8, 512, 7, 7), (512, 512, 3, 3), padding=1)["forward"] == "im2col"
    # a fixed weight (an ONNX session's) makes Winograd's U once: then it pays from 128 channels with
    # tiles x channels >= 6144, and not for less
    for x_shape, fixed in [((8, 512, 7, 7), "winograd"), ((1, 512, 7, 7), "im2col"), ((1, 512, 14, 14), "winograd"),
                           ((1, 256, 14, 14), "im2col"), ((2, 256, 14, 14), "winograd"),
                           ((1, 128, 28, 28), "winograd")]:
        c = x_shape[1]
        assert F.conv_algorithms(x_shape, (c, c, 3, 3), padding=1)["forward_fixed_weight"] == fixed, x_shape
    # with BLAS held to one thread (an ONNX session's parts of a batch), kept-U forwards take Winograd from 64
    # channels, with twice the tiles x channels
    from convkit import _blas
    if _blas.can_set_threads():
        for x_shape, held, free in [((4, 64, 56, 56), "winograd", fast), ((4, 512, 7, 7), "im2col", "winograd"),
                                    ((4, 256, 14, 14), "winograd", "winograd")]:
            c = x_shape[1]
            with _blas.one_thread():
                assert F.conv_algorithms(x_shape, (c, c, 3, 3), padding=1)["forward_fixed_weight"] == held, x_shape
            assert F.conv_algorithms(x_shape, (c, c, 3, 3), padding=1)["forward_fixed_weight"] == free, x_shape
    # input gradients take implicit GEMM from 4 channels each way (3x3x3 32->16 at 16x32x32: 17.6 -> 13.3 ms),
    # but not for 3 input channels (three rows per product)
    narrow = "implicit" if fast == "implicit" else "im2col"
    assert F.conv_algorithms((2, 16, 16, 32, 32), (32, 16, 3, 3, 3), padding=1)["backward"] == narrow
    assert F.conv_algorithms((64, 4, 28, 28), (8, 4, 3, 3), padding=1)["backward"] == narrow
    assert F.conv_algorithms((8, 3, 112, 112), (64, 3, 3, 3), padding=1)["backward"] == "im2col"
    assert F.conv_algorithms((8, 192, 28, 28), (64, 192, 1, 1))["forward"] == "gemm"
    assert F.conv_algorithms((8, 144, 56, 56), (144, 1, 3, 3), padding=1, groups=144)["forward"] == "direct"
    assert F.conv_algorithms((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)["applicable"] == ["im2col"]


def test_autotune_measures_once_per_shape_and_agrees_with_the_default(rng):
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    F.clear_plans()
    assert not F.get_autotune()
    with F.autotune():
        assert F.get_autotune()
        y = F.conv(x, w, padding=1)
        gx, gw, _ = F.conv_vjp(np.ones_like(y), x, w, padding=1)
        plans = F.conv_plans()
        assert {k[0] for k in plans} == {"forward", "backward"}
        for plan in plans.values():
            assert (set(plan["seconds"]) == {"implicit", "winograd", "fft", "im2col"}
                    and plan["algorithm"] in plan["seconds"])
        F.conv(x, w, padding=1)
        assert len(F.conv_plans()) == len(plans)          # the second call of a shape measures nothing
    assert not F.get_autotune()
    np.testing.assert_allclose(y, R.conv(x, w, padding=1), atol=1e-10)
    for a, e in zip((gx, gw), R.conv_vjp(np.ones_like(y), x, w, padding=1)[:2]):
        np.testing.assert_allclose(a, e, atol=1e-10)
    F.clear_plans()
    assert F.conv_plans() == {}
    with pytest.raises(TypeError, match="set_autotune: enabled must be a bool; got enabled=1"):
        F.set_autotune(1)


def test_autograd_forward_keeps_winograds_input_for_the_weight_gradient(rng, monkeypatch):
    """Through autograd a 3x3 layer where Winograd pays runs Winograd's forward and keeps its transformed
    input; the backward takes the weight gradient from it (no im2col columns) and the input gradient by
    Winograd; a weight over _WINOGRAD_KEEP_MAX_WEIGHT keeps im2col's columns instead."""
    from convkit.functional import _conv_core, _winograd
    calls = []
    for name in ("forward", "input_grad", "weight_grad"):
        fn = getattr(_winograd, name)
        monkeypatch.setattr(_winograd, name, lambda *a, _fn=fn, _n=name, **k: calls.append(_n) or _fn(*a, **k))
    made = []
    columns = _conv_core._columns
    monkeypatch.setattr(_conv_core, "_columns", lambda *a, **k: made.append(1) or columns(*a, **k))
    monkeypatch.setattr(_plan, "_winograd_pays", lambda *a, **k: True)
    x = convkit.tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    w = convkit.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv(x, w, padding=1)
    assert calls[:1] == ["forward"]
    y.sum().backward()
    assert "weight_grad" in calls and "input_grad" in calls and not made
    g = np.ones(y.shape)
    for a, e in zip((x.grad, w.grad), R.conv_vjp(g, x.data, w.data, padding=1)[:2]):
        np.testing.assert_allclose(a, e, atol=1e-10)
    calls.clear()
    monkeypatch.setattr(_plan, "_WINOGRAD_KEEP_MAX_WEIGHT", 11)
    w.grad = None
    F.conv(x, w, padding=1).sum().backward()
    assert "weight_grad" not in calls and made
    np.testing.assert_allclose(w.grad, R.conv_vjp(g, x.data, w.data, padding=1)[1], atol=1e-10)


WINOGRAD_3D_GRID = [
    # the planes of 3-D kernels: Winograd over the last two dims, the depth taps summed in the products
    ((2, 3, 5, 7, 9), (4, 3, 3, 3, 3), dict(padding=1)),
    ((1, 2, 4, 6, 5), (3, 2, 2, 5, 5), dict(padding=((1, 0), (2, 2), (0, 3)))),
    ((1, 2, 3, 5, 6), (3, 2, 1, 3, 3), dict(padding=((0, 0), (1, 2), (3, 0)))),     # depth 1: no stacking
    ((2, 2, 6, 4, 4), (3, 2, 4, 3, 3), dict(padding=((0, 2), (1, 1), (0, 0)))),     # whole tiles, depth cropped
    ((1, 2, 3, 5, 5), (2, 2, 3, 3, 3), dict(padding=1, padding_mode="circular")),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,kw", WINOGRAD_3D_GRID)
def test_winograd_3d_matches_reference(rng, x_shape, w_shape, kw, dtype):
    assert "winograd" in _algorithms(x_shape, w_shape, 1, kw)
    _check(rng, x_shape, w_shape, 1, kw, "winograd", dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,kw", WINOGRAD_GRID + WINOGRAD_3D_GRID)
def test_winograd_weight_gradient_from_the_kept_input_matches_reference(rng, x_shape, w_shape, kw, dtype):
    """A taped (autograd) forward forced to Winograd keeps its transformed input; the weight gradient made
    from it, with the input and bias gradients, matches the reference (float32 within 1e-4 of the largest
    value), over dirty scratch buffers."""
    import importlib
    from convkit.functional import _winograd
    conv_mod = importlib.import_module("convkit.functional.conv")
    F.conv(rng.standard_normal((4, 3, 20, 20)) + 5.0, rng.standard_normal((2, 3, 3, 3)), algorithm="winograd")
    xr, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1]))
    x = np.moveaxis(xr, 1, -1) if kw.get("data_format") == "channels_last" else xr
    ref_kw = {k: v for k, v in kw.items() if k != "data_format"}
    y, tape = conv_mod._conv_taped("conv", x, w, b, algorithm="winograd", **kw)
    assert isinstance(tape[-1], _winograd.Kept)
    g = rng.standard_normal(y.shape).astype(dtype)
    gr = np.moveaxis(g, -1, 1) if kw.get("data_format") == "channels_last" else g
    got = conv_mod._conv_taped_vjp(g, tape)
    if kw.get("data_format") == "channels_last":
        got = (np.moveaxis(got[0], -1, 1),) + tuple(got[1:])
    refs = R.conv_vjp(gr.astype(np.float64), xr.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                      **ref_kw)
    for a, e in zip(got, refs):
        assert a.dtype == dtype
        if dtype == np.float64:
            np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10)
        else:
            assert np.abs(a - e).max() <= 1e-4 * max(1.0, np.abs(e).max())


def test_winograd_keeps_nothing_when_the_batch_takes_several_chunks(rng):
    """Under a workspace too small for the whole batch Winograd's forward goes a few samples at a time and
    keeps nothing; the weight gradient then makes im2col's columns and still matches the reference."""
    import importlib
    conv_mod = importlib.import_module("convkit.functional.conv")
    x, w = rng.standard_normal((3, 2, 4, 9, 7)), rng.standard_normal((4, 2, 3, 3, 3))
    with convkit.workspace_limit(20000):
        y, tape = conv_mod._conv_taped("conv", x, w, None, padding=1, algorithm="winograd")
        assert tape[-1] is None
        g = rng.standard_normal(y.shape)
        got = conv_mod._conv_taped_vjp(g, tape)
    for a, e in zip((y,) + tuple(got[:2]), (R.conv(x, w, padding=1),) + tuple(R.conv_vjp(g, x, w, padding=1)[:2])):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("x_shape,w_shape", [((1, 8, 3, 3), (32, 8, 3, 3)), ((2, 16, 2, 5), (48, 16, 2, 3)),
                                             ((1, 20, 4), (40, 20, 3))])
def test_heavy_weight_layers_keep_consistent_columns_through_autograd(rng, x_shape, w_shape):
    """Fewer output positions than filters: the forward takes channels-first columns (no weight
    reorder) and the backward must read the kept columns in that layout."""
    import importlib
    conv_mod = importlib.import_module("convkit.functional.conv")
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    y, tape = conv_mod._conv_taped("conv", x, w, b, padding=1)
    np.testing.assert_allclose(y, R.conv(x, w, b, padding=1), atol=1e-10)
    g = rng.standard_normal(y.shape)
    for a, e in zip(conv_mod._conv_taped_vjp(g, tape), R.conv_vjp(g, x, w, b, padding=1)):
        np.testing.assert_allclose(a, e, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((2, 8, 6, 7), (16, 8, 3, 3), dict(padding=1)),
    ((2, 6, 9, 8), (24, 6, 3, 3), dict(padding=2, dilation=2)),
    ((1, 4, 5, 6, 4), (8, 4, 3, 3, 3), dict(padding=((1, 0), (2, 1), (1, 1)))),
    ((2, 5, 7, 6), (8, 5, 2, 3), dict(padding=((1, 0), (0, 2)))),
])
def test_stride1_input_gradient_as_a_forward_convolution(rng, monkeypatch, x_shape, w_shape, kw, dtype):
    """With stride 1 the im2col input gradient may be computed as the forward convolution of grad_out
    with the rotated kernel (folded columns); check that path is taken and agrees with the reference."""
    from convkit.functional import _conv_core
    taken = []
    real = _conv_core._rotated
    monkeypatch.setattr(_conv_core, "_rotated", lambda w: taken.append(1) or real(w))
    _check(rng, x_shape, w_shape, 1, kw, "im2col", dtype)
    assert taken


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_implicit_gemm_in_several_sample_groups_matches_reference(rng, dtype):
    """A workspace limit smaller than the batch's padded input splits the implicit GEMM into groups of
    samples; forward, input and weight gradients still match the reference."""
    x_shape, w_shape, kw = (5, 3, 9, 8), (4, 3, 3, 2), dict(padding=((2, 1), (0, 1)), dilation=(1, 2))
    with convkit.workspace_limit(3 * 11 * 10 * 8 * 2):
        _check(rng, x_shape, w_shape, 1, kw, "implicit", dtype)


def test_direct_gemm_sums_into_strided_outputs_and_falls_back_to_matmul(rng, monkeypatch):
    """convkit._blas.gemm: out = a @ b + beta * out for windows, transposes and strided outputs, through
    OpenBLAS itself where NumPy's is found, and through np.matmul where it is not (or for other dtypes)."""
    from convkit import _blas
    base = rng.standard_normal((12, 40))
    a, b = base[1:6, 3:10], base[:, 5:30].T[2:9]            # a window; b column-major
    expect = a @ b
    for dtype in (np.float64, np.float32, np.float16):
        for fns in (None, {}):
            if fns is not None:
                monkeypatch.setattr(_blas, "_gemm_fns", fns)
            out = np.ones((9, 30), dtype)[2:7, 3:15]
            got = _blas.gemm(a.astype(dtype), b.astype(dtype), out, beta=2.0)
            assert got is out
            np.testing.assert_allclose(out, expect + 2, rtol=1e-2 if dtype == np.float16 else 1e-5, atol=1e-2)
            monkeypatch.undo()
    with pytest.raises(ValueError, match=r"gemm: operands must be \(m, k\) @ \(k, n\) -> \(m, n\); got a=\(5, 7\)"):
        _blas.gemm(a, b, np.ones((5, 13)))


@pytest.mark.parametrize("x_shape,w_shape,kw,algorithm,kept", [
    ((2, 8, 9, 9), (5, 8, 3, 3), dict(padding=1), "winograd", 1),        # U
    ((2, 8, 9, 9), (5, 8, 3, 3), dict(padding=1), "implicit", 1),        # the tap-major copy
    ((2, 8, 9, 9), (5, 8, 3, 3), dict(padding=1), "im2col", 1),          # folded columns' weight order
    ((2, 16, 9, 9), (5, 16, 3, 3), dict(padding=1, stride=2), "im2col", 1),  # channels-last order
    ((2, 2, 9, 9), (5, 2, 3, 3), dict(padding=1, stride=2), "im2col", 0),  # channels first: w as it is
    ((2, 8, 9, 9), (5, 8, 1, 1), dict(), "gemm", 0),
    ((2, 8, 9, 9), (5, 8, 5, 5), dict(padding=2), "fft", 1),             # the weight's spectrum
    ((2, 8, 9, 9), (5, 8, 3, 3), dict(padding=2, dilation=2), "fft", 1),
])
def test_a_fixed_weight_keeps_its_transforms_and_gives_the_same_result(rng, x_shape, w_shape, kw, algorithm, kept):
    from convkit.functional._weights import WeightCache
    from convkit.functional.conv import conv_fixed_weight
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (x_shape, w_shape, w_shape[:1]))
    cache = WeightCache(w)
    expected = F.conv(x, w, b, algorithm=algorithm, **kw)
    got = _conv_with_cache(cache, x, w, b, algorithm, kw)
    np.testing.assert_array_equal(got, expected)
    assert len(cache) == kept
    made = list(cache._made.values())
    assert all(not a.flags.writeable for a in made)
    np.testing.assert_array_equal(_conv_with_cache(cache, x, w, b, algorithm, kw), expected)
    assert [id(a) for a in cache._made.values()] == [id(a) for a in made]     # made once, reused
    y_ref = R.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **kw)
    assert np.abs(got - y_ref).max() <= 1e-4 * max(1.0, np.abs(y_ref).max())
    # the public entry point: the automatic choice with the cache, and a cast weight is not cached
    np.testing.assert_allclose(conv_fixed_weight(cache, x, w, b, **kw), y_ref, rtol=1e-4, atol=1e-4)
    other = WeightCache(w)
    np.testing.assert_allclose(conv_fixed_weight(other, x.astype(np.float64), w, b, **kw), y_ref, atol=1e-5)
    assert len(other) == 0


def _conv_with_cache(cache, x, w, b, algorithm, kw):
    from convkit.functional import _conv_core
    from convkit.functional.conv import _conv_spec
    spec, x, w, b = _conv_spec("conv", x, w, b, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1), 1,
                               "zeros", "channels_first", algorithm=algorithm)
    return _conv_core.forward(x, w, spec.stride, spec.pads, spec.dilation, 1, spec.out, bias=b, algorithm=algorithm,
                              weights=cache)


def test_arrays_passed_as_shapes_are_named_by_shape_in_the_error():
    with pytest.raises(TypeError) as err:
        F.conv_algorithms(np.ones((2, 3, 4, 4)), (1, 3, 3, 3))
    msg = str(err.value)
    assert msg == ("conv_algorithms: x_shape must be ints >= 1; got x_shape=(array(shape=(3, 4, 4), dtype=float64), "
                   "array(shape=(3, 4, 4), dtype=float64)).")


FFT_GRID = [
    # x shape, weight shape, keywords: 2-D, stride 1, no groups, circular planes (each side the input and its
    # wider pad) of at most 32 a side
    ((2, 3, 7, 9), (4, 3, 3, 3), dict(padding=1)),
    ((2, 3, 9, 7), (4, 3, 5, 5), dict(padding=2)),
    ((1, 2, 6, 8), (3, 2, 5, 2), dict(padding=((2, 0), (1, 3)))),         # asymmetric, even plane side
    ((3, 2, 10, 8), (5, 2, 3, 3), dict(padding=((0, 0), (2, 2)), dilation=(2, 3))),
    ((2, 4, 5, 5), (3, 4, 1, 1), dict(padding=2)),                        # 1x1 with padding: no gemm
    ((1, 2, 5, 5), (3, 2, 5, 5), dict(padding=6)),                        # padding wider than the kernel
    ((2, 3, 30, 30), (4, 3, 5, 5), dict(padding=2)),                      # a 32 x 32 plane, the largest
    ((2, 3, 9, 11), (2, 3, 3, 3), dict(padding=1, padding_mode="reflect")),
    ((2, 3, 6, 6), (4, 3, 7, 7), dict(padding="same", data_format="channels_last")),
    ((1, 1, 4, 4), (1, 1, 4, 4), dict()),                                 # one output cell
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,kw", FFT_GRID)
def test_fft_matches_reference(rng, x_shape, w_shape, kw, dtype):
    assert "fft" in _algorithms(x_shape, w_shape, 1, kw)
    _check(rng, x_shape, w_shape, 1, kw, "fft", dtype)


@st.composite
def fft_configs(draw):
    """2-D stride-1 convolutions whose circular planes wrap in every way: pads from 0 to 7 on each side
    independently (wider than the kernel too), kernels up to 5 taps, dilation up to 3."""
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(2))
    dil = tuple(draw(st.integers(1, 3)) for _ in range(2))
    size, pads = [], []
    for k, d in zip(kernel, dil):
        lo, hi = draw(st.integers(0, 7)), draw(st.integers(0, 7))
        least = max(1, d * (k - 1) + 1 - lo - hi)                        # at least one output
        size.append(draw(st.integers(least, max(least, 10))))
        pads.append((lo, hi))
    return dict(x_shape=(draw(st.integers(1, 3)), draw(st.integers(1, 3))) + tuple(size),
                k=draw(st.integers(1, 3)), kernel=kernel, padding=tuple(pads), dilation=dil)


@given(fft_configs(), st.integers(0, 2**31))
def test_fft_hypothesis(cfg, seed):
    x_shape = cfg["x_shape"]
    kw = dict(padding=cfg["padding"], dilation=cfg["dilation"])
    _check(np.random.default_rng(seed), x_shape, (cfg["k"], x_shape[1]) + cfg["kernel"], 1, kw, "fft")


def test_fft_float32_error_on_a_real_layer_size(rng):
    """5x5 32->64 at 14x14 (MNIST's second layer) in float32 by FFT: forward and both gradients within 1e-5
    of the float64 reference, relative to its largest value."""
    x, w = rng.standard_normal((4, 32, 14, 14)), rng.standard_normal((64, 32, 5, 5)) * 0.1
    y = F.conv(x, w, padding=2)
    g = rng.standard_normal(y.shape)
    want = (y,) + tuple(F.conv_vjp(g, x, w, padding=2)[:2])
    f32 = [a.astype(np.float32) for a in (x, w, g)]
    got = (F.conv(f32[0], f32[1], padding=2, algorithm="fft"),) + tuple(
        F.conv_vjp(f32[2], f32[0], f32[1], padding=2, algorithm="fft")[:2])
    for a, e in zip(got, want):
        assert a.dtype == np.float32
        assert np.abs(a - e).max() <= 1e-5 * np.abs(e).max()


def test_fft_applies_to_small_planes_and_weight_spectra_only():
    ok = F.conv_algorithms((8, 16, 28, 28), (16, 16, 5, 5), padding=2)["applicable"]
    assert "fft" in ok
    for x_shape, w_shape, kw in [((8, 16, 31, 28), (16, 16, 5, 5), dict(padding=2)),     # a 33-cell side
                                 ((8, 16, 14, 14), (16, 16, 5, 5), dict(padding=2, stride=2)),
                                 ((8, 16, 14, 14), (16, 8, 5, 5), dict(padding=2, groups=2)),
                                 ((8, 16, 14), (16, 16, 5), dict(padding=2)),                # 1-D
                                 ((8, 256, 14, 14), (256, 256, 3, 3), dict(padding=1))]:   # 126 MB of spectrum
        groups = kw.pop("groups", 1)
        assert "fft" not in F.conv_algorithms(x_shape, w_shape, groups=groups, **kw)["applicable"], x_shape
    with convkit.workspace_limit(1 << 20):                # the 16x16 5x5 weight's spectrum is 2.0 MB
        assert "fft" not in F.conv_algorithms((8, 16, 28, 28), (16, 16, 5, 5), padding=2)["applicable"]


def test_fft_runs_on_the_smallest_circular_plane():
    """The DFTs run on the input and its wider pad per side (reads past the end wrap onto the narrower pad's
    zeros): fewer frequencies than the padded plane. FFT_GRID checks the results, pads wider than the
    kernel included."""
    from convkit.functional import _fft
    assert _fft._plane((64, 32, 14, 14), ((2, 2), (2, 2))) == (16, 16)
    assert _fft._plane((1, 2, 6, 8), ((2, 0), (1, 3))) == (8, 11)
    assert _fft._plane((1, 2, 5, 5), ((6, 6), (6, 6))) == (11, 11)       # 13 outputs a side


def test_autograd_fft_keeps_the_spectra_for_the_backward(rng, monkeypatch):
    """A 5x5 training layer with enough samples and channels runs FFT: the forward keeps the input's and the
    weight's spectra, and the backward transforms only grad_out; the gradients match the reference."""
    from convkit.functional import _fft
    assert F.conv_algorithms((16, 8, 10, 10), (12, 8, 5, 5), padding=2)["forward_autograd"] == "fft"
    made = []
    transform = _fft.transform
    monkeypatch.setattr(_fft, "transform", lambda a, *r, **k: made.append(a.shape[:2]) or transform(a, *r, **k))
    x = convkit.tensor(rng.standard_normal((16, 8, 10, 10)), requires_grad=True)
    w = convkit.tensor(rng.standard_normal((12, 8, 5, 5)), requires_grad=True)
    b = convkit.tensor(rng.standard_normal(12), requires_grad=True)
    y = F.conv(x, w, b, padding=2)
    assert made[0] == (8, 12)                            # the weight, its input channels as the batch
    assert {s[1] for s in made[1:]} == {8} and sum(s[0] for s in made[1:]) == 16     # then x's samples
    made.clear()
    g = rng.standard_normal(y.shape)
    y.backward(g)
    assert {s[1] for s in made} == {12} and sum(s[0] for s in made) == 16            # grad_out alone
    want = R.conv_vjp(g, x.data, w.data, b.data, padding=2)
    for a, e in zip((x.grad, w.grad, b.grad), want):
        np.testing.assert_allclose(a, e, atol=1e-10)


def test_fft_under_a_tiny_workspace_goes_a_few_samples_at_a_time(rng, monkeypatch):
    """A batch whose spectra do not fit the workspace runs in chunks: the forward keeps nothing and the
    backward makes the input's spectrum again, chunk by chunk, adding up the weight gradient."""
    from convkit.functional import _fft
    x = convkit.tensor(rng.standard_normal((12, 3, 6, 6)), requires_grad=True)
    w = convkit.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    chunks = []
    product = _fft._product
    monkeypatch.setattr(_fft, "_product", lambda s, *a, **k: chunks.append(s.shape[-1]) or product(s, *a, **k))
    with convkit.workspace_limit(45000):                 # 11 KB a sample on the 7 x 7 circular plane
        assert _fft._chunk(x.shape, w.shape, (7, 7), 8) == 4
        y = F.conv(x, w, padding=1, algorithm="fft")
        y.backward(np.ones(y.shape))
    assert chunks == [4, 4, 4] * 2                       # the forward's, then the input gradient's
    np.testing.assert_allclose(y.data, R.conv(x.data, w.data, padding=1), atol=1e-10)
    for a, e in zip((x.grad, w.grad), R.conv_vjp(np.ones(y.shape), x.data, w.data, padding=1)[:2]):
        np.testing.assert_allclose(a, e, atol=1e-10)
