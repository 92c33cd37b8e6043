"""F.conv / F.conv_transpose and their vjps against the loop reference, PyTorch,
finite differences and the adjoint identity."""
import functools
import importlib
import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

import convkit
import convkit.functional as F
import convkit.reference as R
from convkit import shapes
from helpers import check_grad_fd

MODES = ["zeros", "reflect", "replicate", "circular"]


def _arrays(rng, x_shape, w_shape, k):
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(k)


def _check_conv(rng, x_shape, w_shape, groups=1, **kw):
    x, w, b = _arrays(rng, x_shape, w_shape, w_shape[0])
    y = F.conv(x, w, b, groups=groups, **kw)
    np.testing.assert_allclose(y, R.conv(x, w, b, groups=groups, **kw), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    for a, e in zip(F.conv_vjp(g, x, w, b, groups=groups, **kw), R.conv_vjp(g, x, w, b, groups=groups, **kw)):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10)


GRID = [
    # x shape, weight shape, groups, keywords
    ((2, 3, 7), (4, 3, 3), 1, dict(stride=2, padding=1)),
    ((2, 4, 9), (4, 2, 2), 2, dict(stride=3, padding=(2,), dilation=2)),
    ((1, 2, 6), (3, 2, 1), 1, dict()),
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, dict(padding="same")),
    ((2, 3, 7, 6), (4, 3, 2, 3), 1, dict(stride=2, padding="same")),
    ((2, 3, 7, 6), (4, 3, 2, 3), 1, dict(stride=(2, 3), padding="same_lower")),
    ((2, 3, 5, 5), (2, 3, 3, 3), 1, dict(padding="valid")),
    ((2, 4, 6, 7), (6, 2, 3, 2), 2, dict(stride=(2, 1), padding=((1, 2), (0, 3)), dilation=(1, 2))),
    ((2, 4, 6, 6), (4, 1, 3, 3), 4, dict(padding=1)),            # depthwise
    ((2, 4, 6, 6), (8, 1, 3, 3), 4, dict(padding=1, stride=2)),  # depthwise, multiplier 2
    ((2, 5, 6, 6), (3, 5, 1, 1), 1, dict()),                     # 1x1
    ((2, 5, 7, 7), (3, 5, 1, 1), 1, dict(stride=2)),             # 1x1 stride 2
    ((1, 2, 5, 5), (3, 2, 2, 2), 1, dict(stride=3)),             # stride does not tile
    ((1, 2, 4, 4), (3, 2, 2, 2), 1, dict(padding=4)),            # padding wider than the kernel
    ((2, 2, 4, 5, 4), (3, 2, 2, 3, 2), 1, dict(stride=(1, 2, 1), padding=1)),
    ((1, 4, 4, 4, 4), (4, 2, 3, 1, 2), 2, dict(padding="same", dilation=(1, 1, 2))),
]


@pytest.mark.parametrize("x_shape,w_shape,groups,kw", GRID)
def test_conv_matches_reference(rng, x_shape, w_shape, groups, kw):
    _check_conv(rng, x_shape, w_shape, groups, **kw)


@pytest.mark.parametrize("mode", MODES[1:])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_padding_modes_match_reference(rng, mode, n):
    sp = (5, 4, 3)[:n]
    _check_conv(rng, (2, 2) + sp, (3, 2) + (2, 3, 2)[:n], padding=((1, 2), (2, 1), (0, 2))[:n],
                stride=(1, 2, 1)[:n], padding_mode=mode)


@st.composite
def conv_configs(draw):
    n = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    cg, kg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    mode = draw(st.sampled_from(MODES))
    batch = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(n))
    size = tuple(draw(st.integers(1, 6 if n < 3 else 4)) for _ in range(n))
    limit = {"zeros": 4, "reflect": 0, "replicate": 3, "circular": 0}[mode]
    pads = []
    for s in size:
        cap = {"reflect": s - 1, "circular": s}.get(mode, limit)
        pads.append((draw(st.integers(0, max(cap, 0))), draw(st.integers(0, max(cap, 0)))))
    padding = draw(st.sampled_from([tuple(pads), "same", "valid"]))
    if padding == "same" and mode in ("reflect", "circular"):
        padding = tuple(pads)
    eff = [d * (k - 1) + 1 for k, d in zip(kernel, dil)]
    resolved = shapes.resolve_padding(padding, size, kernel, stride, dil)
    if any(s + lo + hi < e for s, (lo, hi), e in zip(size, resolved, eff)):
        padding, mode = "same", "zeros"
    return dict(x_shape=(batch, cg * groups) + size, w_shape=(kg * groups, cg) + kernel, groups=groups,
                stride=stride, padding=padding, dilation=dil, padding_mode=mode)


@given(conv_configs(), st.integers(0, 2**31))
def test_conv_hypothesis(cfg, seed):
    _check_conv(np.random.default_rng(seed), **cfg)


TRANSPOSE_GRID = [
    ((2, 3, 5), (3, 2, 3), 1, dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 4), (4, 1, 2), 2, dict(stride=3, padding=0, dilation=2, output_padding=2)),
    ((2, 4, 4, 5), (4, 3, 4, 3), 1, dict(stride=2, padding=1)),
    ((2, 4, 4, 5), (4, 3, 4, 3), 2, dict(stride=(2, 3), padding=((1, 0), (2, 1)), output_padding=(1, 0))),
    ((1, 3, 3, 3), (3, 1, 3, 3), 3, dict(stride=2, padding=2)),
    ((1, 2, 3, 2, 3), (2, 2, 2, 3, 2), 1, dict(stride=(2, 1, 2), padding=(0, 1, 1), output_padding=(1, 0, 0))),
]


@pytest.mark.parametrize("x_shape,w_shape,groups,kw", TRANSPOSE_GRID)
def test_conv_transpose_matches_reference(rng, x_shape, w_shape, groups, kw):
    x, w, b = _arrays(rng, x_shape, w_shape, w_shape[1] * groups)
    y = F.conv_transpose(x, w, b, groups=groups, **kw)
    np.testing.assert_allclose(y, R.conv_transpose(x, w, b, groups=groups, **kw), atol=1e-10)
    g = rng.standard_normal(y.shape)
    got = F.conv_transpose_vjp(g, x, w, b, groups=groups, **kw)
    for a, e in zip(got, R.conv_transpose_vjp(g, x, w, b, groups=groups, **kw)):
        np.testing.assert_allclose(a, e, atol=1e-10)


SUBPIXEL_GRID = [
    ((2, 3, 5, 6), (3, 4, 4, 4), dict(stride=2, padding=1)),
    ((2, 3, 5, 6), (3, 4, 3, 3), dict(stride=2, padding=1, output_padding=1)),     # taps padded to 4x4
    ((1, 2, 4, 3), (2, 3, 2, 3), dict(stride=(2, 3), padding=((1, 0), (2, 1)))),
    ((2, 2, 3, 4), (2, 2, 5, 3), dict(stride=(3, 2), padding=((0, 4), (1, 0)), output_padding=(2, 1))),
    ((1, 2, 1, 1), (2, 2, 3, 3), dict(stride=3, output_padding=2)),
    ((2, 3, 7), (3, 2, 4), dict(stride=2, padding=1)),
    ((1, 2, 2, 3, 2), (2, 2, 2, 3, 2), dict(stride=(2, 1, 2), padding=(0, 1, 1), output_padding=(1, 0, 0))),
]


@pytest.mark.parametrize("x_shape,w_shape,kw", SUBPIXEL_GRID)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last", "unbatched"])
def test_conv_transpose_by_phases_matches_reference(rng, monkeypatch, x_shape, w_shape, kw, layout):
    """Both passes forced through the stride-1 convolution of the output's phases (sub-pixel), whatever
    the defaults would choose."""
    conv_mod = importlib.import_module("convkit.functional.conv")
    monkeypatch.setattr(conv_mod, "_subpixel_ok", lambda x_shape, weight, spec, vjp=False:
                        conv_mod._subpixel_applies(weight, spec))
    x, w, b = _arrays(rng, x_shape, w_shape, w_shape[1])
    y_ref = R.conv_transpose(x, w, b, **kw)
    g = rng.standard_normal(y_ref.shape)
    refs = R.conv_transpose_vjp(g, x, w, b, **kw)
    fmt = "channels_last" if layout == "channels_last" else "channels_first"
    if layout == "channels_last":
        move = functools.partial(np.moveaxis, source=1, destination=-1)
    elif layout == "unbatched":           # the first sample alone, without its batch axis
        x, g, y_ref = x[:1], g[:1], y_ref[:1]
        refs = R.conv_transpose_vjp(g, x, w, b, **kw)

        def move(a):
            return a[0]
    else:
        def move(a):
            return a
    y = F.conv_transpose(move(x), w, b, data_format=fmt, **kw)
    np.testing.assert_allclose(y, move(y_ref), atol=1e-10)
    got = F.conv_transpose_vjp(move(g), move(x), w, b, data_format=fmt, **kw)
    for a, e in zip(got, (move(refs[0]),) + tuple(refs[1:])):
        np.testing.assert_allclose(a, e, atol=1e-10)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2),
       st.integers(1, 4), st.integers(0, 2**31))
def test_conv_transpose_hypothesis(n, k, s, p, d, size, seed):
    rng = np.random.default_rng(seed)
    op = rng.integers(0, max(s, d)) if max(s, d) > 1 else 0
    full = (size - 1) * s + d * (k - 1) + 1 + op
    if full - 2 * p < 1:
        p = 0
    x, w = rng.standard_normal((2, 2) + (size,) * n), rng.standard_normal((2, 3) + (k,) * n)
    kw = dict(stride=s, padding=p, dilation=d, output_padding=int(op))
    y = F.conv_transpose(x, w, **kw)
    np.testing.assert_allclose(y, R.conv_transpose(x, w, **kw), atol=1e-10)
    g = rng.standard_normal(y.shape)
    for a, e in zip(F.conv_transpose_vjp(g, x, w, **kw)[:2], R.conv_transpose_vjp(g, x, w, **kw)[:2]):
        np.testing.assert_allclose(a, e, atol=1e-10)


def test_conv_transpose_output_size(rng):
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 3, 3, 3))
    assert F.conv_transpose(x, w, stride=2, padding=1).shape == (1, 3, 7, 7)
    y = F.conv_transpose(x, w, stride=2, padding=1, output_size=(8, 8))
    np.testing.assert_allclose(y, F.conv_transpose(x, w, stride=2, padding=1, output_padding=1))
    assert F.conv_transpose(x, w, stride=2, padding=1, output_size=(1, 3, 8, 7)).shape == (1, 3, 8, 7)
    with pytest.raises(ValueError, match="output_size must be between"):
        F.conv_transpose(x, w, stride=2, padding=1, output_size=(9, 9))


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(padding="same", padding_mode="reflect"),
                                dict(groups=2, dilation=2, padding=((2, 1), (0, 3)), padding_mode="circular")])
def test_conv_gradients_finite_differences(rng, kw):
    x, w, b = _arrays(rng, (2, 4, 7, 6), (4, 2 if kw.get("groups") else 4, 3, 2), 4)
    g = rng.standard_normal(F.conv(x, w, b, **kw).shape)
    gx, gw, gb = F.conv_vjp(g, x, w, b, **kw)
    check_grad_fd(lambda v: np.sum(F.conv(v, w, b, **kw) * g), gx, x, rng)
    check_grad_fd(lambda v: np.sum(F.conv(x, v, b, **kw) * g), gw, w, rng)
    check_grad_fd(lambda v: np.sum(F.conv(x, w, v, **kw) * g), gb, b, rng)


def test_conv_transpose_gradients_finite_differences(rng):
    x, w, b = _arrays(rng, (2, 4, 4, 5), (4, 1, 3, 4), 2)
    kw = dict(stride=(2, 3), padding=((1, 0), (2, 1)), output_padding=(1, 0), groups=2)
    g = rng.standard_normal(F.conv_transpose(x, w, b, **kw).shape)
    gx, gw, gb = F.conv_transpose_vjp(g, x, w, b, **kw)
    check_grad_fd(lambda v: np.sum(F.conv_transpose(v, w, b, **kw) * g), gx, x, rng)
    check_grad_fd(lambda v: np.sum(F.conv_transpose(x, v, b, **kw) * g), gw, w, rng)
    check_grad_fd(lambda v: np.sum(F.conv_transpose(x, w, v, **kw) * g), gb, b, rng)


@pytest.mark.parametrize("n,stride,dilation", [(1, 3, 1), (2, 2, 2), (3, 1, 1)])
def test_adjoint_identity(rng, n, stride, dilation):
    """<conv(x, w), g> = <x, grad_x(g)>: the input gradient is the adjoint (transposed conv)."""
    x = rng.standard_normal((2, 3) + (7,) * n)
    w = rng.standard_normal((4, 3) + (3,) * n)
    y = F.conv(x, w, stride=stride, dilation=dilation, padding=1)
    g = rng.standard_normal(y.shape)
    gx = F.conv_vjp(g, x, w, stride=stride, dilation=dilation, padding=1)[0]
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, gx), rtol=1e-10)
    # and conv_transpose is that same adjoint, up to output_padding
    gx2 = F.conv_transpose(g, w, stride=stride, dilation=dilation, padding=1, output_size=x.shape[2:])
    np.testing.assert_allclose(gx, gx2, atol=1e-10)


# ------------------------------------------------------------ inputs and dtypes


def test_unbatched_input(rng):
    x, w, b = _arrays(rng, (3, 6, 5), (4, 3, 3, 3), 4)
    y = F.conv(x, w, b, padding=1)
    assert y.shape == (4, 6, 5)
    np.testing.assert_allclose(y, F.conv(x[None], w, b, padding=1)[0])
    gx, gw, gb = F.conv_vjp(np.ones_like(y), x, w, b, padding=1)
    assert gx.shape == x.shape
    assert F.conv_transpose(x, rng.standard_normal((3, 2, 2, 2)), stride=2).shape == (2, 12, 10)


@pytest.mark.parametrize("make", [
    lambda a: np.asfortranarray(a),
    lambda a: a[:, :, ::-1, ::-1],
    lambda a: np.swapaxes(np.swapaxes(a, 2, 3).copy(), 2, 3),
    lambda a: a.repeat(2, axis=3)[:, :, :, ::2],
])
def test_non_contiguous_and_read_only(rng, make):
    x, w, b = _arrays(rng, (2, 3, 6, 5), (4, 3, 3, 2), 4)
    xv, wv = make(x), make(w)
    xr, wr = np.array(xv, order="C"), np.array(wv, order="C")  # same values, plain layout
    xv.flags.writeable = False
    wv.flags.writeable = False
    got = F.conv(xv, wv, b, stride=2, padding=1)
    np.testing.assert_allclose(got, F.conv(xr, wr, b, stride=2, padding=1), atol=1e-12)
    g = np.ones_like(got)
    for a, e in zip(F.conv_vjp(g, xv, wv, b, stride=2, padding=1), F.conv_vjp(g, xr, wr, b, stride=2, padding=1)):
        np.testing.assert_allclose(a, e, atol=1e-12)


def test_dtypes(rng):
    x32 = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w32 = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    assert F.conv(x32, w32).dtype == np.float32
    assert F.conv(x32, w32.astype(np.float64)).dtype == np.float64
    xi = rng.integers(0, 255, (1, 2, 5, 5)).astype(np.uint8)
    y = F.conv(xi, w32)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, F.conv(xi.astype(np.float64), w32.astype(np.float64)))
    assert F.conv(xi.astype(bool), w32).dtype == np.float64
    with pytest.raises(TypeError, match="conv2d: input must have a real"):
        F.conv(x32.astype(np.complex64), w32)
    with pytest.raises(TypeError, match="conv2d: weight must have a real"):
        F.conv(x32, w32.astype(object))
    # float32 agrees with the float64 reference to float32 rounding
    y64 = R.conv(x32, w32, padding=1)
    np.testing.assert_allclose(F.conv(x32, w32, padding=1), y64, rtol=1e-4, atol=1e-4)


def test_nan_and_inf_propagate(rng):
    x, w, _ = _arrays(rng, (1, 1, 5, 5), (1, 1, 3, 3), 1)
    x[0, 0, 2, 2] = np.nan
    x[0, 0, 0, 0] = np.inf
    y = F.conv(x, w)
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y).sum() == 9


def test_channels_last(rng):
    x, w, b = _arrays(rng, (2, 3, 7, 6), (4, 3, 3, 3), 4)
    xl = convkit.layout.to_channels_last(x)
    yl = F.conv(xl, w, b, padding="same", stride=2, data_format="channels_last")
    y = F.conv(x, w, b, padding="same", stride=2)
    np.testing.assert_allclose(yl, convkit.layout.to_channels_last(y))
    g = rng.standard_normal(yl.shape)
    gxl, gwl, _ = F.conv_vjp(g, xl, w, b, padding="same", stride=2, data_format="channels_last")
    gx, gw, _ = F.conv_vjp(convkit.layout.to_channels_first(g), x, w, b, padding="same", stride=2)
    np.testing.assert_allclose(gxl, convkit.layout.to_channels_last(gx))
    np.testing.assert_allclose(gwl, gw)
    # a TF/Keras HWIO kernel converts to (O, I, H, W) and back
    hwio = convkit.layout.oihw_to_hwio(w)
    assert hwio.shape == (3, 3, 3, 4)
    np.testing.assert_array_equal(convkit.layout.hwio_to_oihw(hwio), w)


def test_rank_checked_aliases(rng):
    x, w, _ = _arrays(rng, (1, 2, 5, 5), (3, 2, 3, 3), 3)
    np.testing.assert_allclose(F.conv2d(x, w), F.conv(x, w))
    with pytest.raises(ValueError, match=r"conv1d: weight.ndim must be 3 for a 1-d convolution; got weight.ndim=4"):
        F.conv1d(x, w)
    assert F.conv3d(rng.standard_normal((1, 2, 3, 3, 3)), rng.standard_normal((1, 2, 1, 1, 1))).shape == (1, 1, 3, 3, 3)
    assert F.conv_transpose2d(x, rng.standard_normal((2, 1, 2, 2)), stride=2).shape == (1, 1, 10, 10)


# ------------------------------------------------------------ bad arguments

X = np.zeros((1, 6, 8, 8))
W = np.zeros((4, 6, 3, 3))

BAD = [
    (lambda: F.conv(X, np.zeros((4, 3, 3, 3)), groups=4), ValueError,
     r"conv2d: groups must divide in_channels; got in_channels=6, groups=4\."),
    (lambda: F.conv(X, np.zeros((4, 4, 3, 3))), ValueError,
     r"conv2d: weight.shape\[1\] \* groups must equal the input channels; got input shape \(1, 6, 8, 8\) "
     r"and weight shape \(4, 4, 3, 3\) with groups=1\."),
    (lambda: F.conv(X, np.zeros((3, 3, 3, 3)), groups=2), ValueError, r"groups must divide out_channels"),
    (lambda: F.conv(X, W, stride=0), ValueError, r"conv2d: stride must be >= 1; got stride=0\."),
    (lambda: F.conv(X, W, stride=(1, 2, 3)), ValueError, r"conv2d: stride must be an int or a sequence of 2 ints"),
    (lambda: F.conv(X, W, stride=1.5), TypeError, r"conv2d: stride must be an int; got stride=1\.5\."),
    (lambda: F.conv(X, W, padding=-1), ValueError, r"conv2d: padding must be >= 0; got padding=-1\."),
    (lambda: F.conv(X, W, padding="full"), ValueError, r"conv2d: padding must be an int.*got padding='full'"),
    (lambda: F.conv(X, W, padding_mode="mirror"), ValueError, r"conv2d: padding_mode must be one of"),
    (lambda: F.conv(X, W, dilation=0), ValueError, r"conv2d: dilation must be >= 1"),
    (lambda: F.conv(X, W, groups=0), ValueError, r"conv2d: groups must be >= 1; got groups=0\."),
    (lambda: F.conv(X, W, bias=np.zeros(3)), ValueError, r"conv2d: bias.shape must be \(out_channels,\) = \(4,\)"),
    (lambda: F.conv(np.zeros((1, 6, 2, 2)), W), ValueError, r"conv2d: output size must be >= 1 in spatial dim 0"),
    (lambda: F.conv(np.zeros((6, 8)), W), ValueError, r"conv2d: input.ndim must be 3 or 4"),
    (lambda: F.conv(X, np.zeros((4, 6))), ValueError, r"conv: weight.ndim must be >= 3"),
    (lambda: F.conv(X, W, padding=8, padding_mode="reflect"), ValueError, r"conv2d: padding must be smaller"),
    (lambda: F.conv(X, W, data_format="NHWC"), ValueError, r"conv2d: data_format must be"),
    (lambda: F.conv("x", W), TypeError, r"conv2d: input must be a NumPy array"),
    (lambda: F.conv(np.zeros((1, 6, 0, 8)), W), ValueError, r"conv2d: input.shape must be all >= 1"),
    (lambda: F.conv_vjp(np.zeros((1, 4, 5, 5)), X, W), ValueError,
     r"conv2d: grad_out.shape must equal the output shape \(1, 4, 6, 6\); got grad_out.shape=\(1, 4, 5, 5\)"),
    (lambda: F.conv_transpose(X, np.zeros((5, 2, 3, 3))), ValueError,
     r"conv_transpose2d: weight.shape\[0\] must equal the input channels"),
    (lambda: F.conv_transpose(X, np.zeros((6, 2, 3, 3)), stride=2, output_padding=2), ValueError,
     r"conv_transpose2d: output_padding must be smaller than stride or dilation"),
    (lambda: F.conv_transpose(np.zeros((1, 6, 1, 1)), np.zeros((6, 2, 1, 1)), padding=1), ValueError,
     r"conv_transpose2d: output size must be all >= 1"),
]


@pytest.mark.parametrize("call,exc,pattern", BAD)
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_errors_come_before_work(monkeypatch):
    from convkit.functional import _conv_core

    def boom(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(_conv_core, "forward", boom)
    with pytest.raises(ValueError):
        F.conv(X, W, stride=0)


@pytest.mark.parametrize("layout", ["channels_last", "channels_first", "channels_first_per_sample",
                                    "channels_first_per_sample_blocks"])
@pytest.mark.parametrize("x_shape,w_shape,groups,kw", GRID + [
    ((1, 3, 9, 7), (4, 3, 3, 4), 1, dict(stride=(1, 3), padding=((2, 0), (3, 1)))),  # kw > stride, not a multiple
    ((2, 2, 8, 9), (3, 2, 4, 3), 1, dict(stride=(2, 2), padding=1, dilation=(1, 3))),
    ((2, 3, 11), (2, 3, 5), 1, dict(stride=2, padding=((4, 1),))),
])
def test_column_layouts_match_reference(rng, monkeypatch, layout, x_shape, w_shape, groups, kw):
    """Channels-last columns (chosen for wide inputs) and channels-first ones (with per-sample products,
    chosen for large outputs), forced, on every geometry; also split into rows by a tiny workspace.
    grad_input's columns are made one sample at a time, or (``_blocks``) several samples at a time."""
    from convkit.functional import _conv_core

    monkeypatch.setattr(_conv_core, "_CL_MIN_RUN", 1 if layout == "channels_last" else 1 << 30)
    monkeypatch.setattr(_conv_core, "_PER_SAMPLE_MIN", 1 if "per_sample" in layout else 1 << 30)
    if not layout.endswith("_blocks"):
        monkeypatch.setattr(_conv_core, "_SUB_BYTES", 256)  # grad_input columns one sample at a time
    _check_conv(rng, x_shape, w_shape, groups, **kw)
    with convkit.workspace_limit(1024):
        _check_conv(rng, x_shape, w_shape, groups, **kw)


# ------------------------------------------------------------ memory


def test_workspace_limit_bounds_temporaries(rng):
    """Peak extra memory stays near the workspace limit however large the batch."""
    import tracemalloc

    x = rng.standard_normal((32, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    expected = F.conv(x, w, padding=1)
    out_bytes = expected.nbytes
    limit = 256 * 1024
    with convkit.workspace_limit(limit):
        tracemalloc.start()
        y = F.conv(x, w, padding=1)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
        g = np.ones_like(y)
        tracemalloc.start()
        gx, gw, _ = F.conv_vjp(g, x, w, padding=1)
        peak_b = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    cols_unchunked = 32 * 8 * 9 * 16 * 16 * 4  # what a single im2col would take: 2.25 MiB
    assert peak - out_bytes < 2 * limit < cols_unchunked
    assert peak_b - x.nbytes < 2 * limit + 64 * 1024
    np.testing.assert_allclose(gx, F.conv_vjp(g, x, w, padding=1)[0], rtol=1e-5, atol=1e-4)


def test_tiny_workspace_splits_rows(rng):
    """A single sample larger than the limit is split along its first output dim."""
    x, w, b = _arrays(rng, (2, 3, 9, 7), (4, 3, 3, 2), 4)
    kw = dict(stride=(2, 1), padding=((2, 1), (1, 0)), dilation=(2, 1))
    y = F.conv(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    grads = F.conv_vjp(g, x, w, b, **kw)
    with convkit.workspace_limit(1024):
        np.testing.assert_allclose(F.conv(x, w, b, **kw), y, atol=1e-12)
        for a, e in zip(F.conv_vjp(g, x, w, b, **kw), grads):
            np.testing.assert_allclose(a, e, atol=1e-12)


# ------------------------------------------------------------ PyTorch, when installed

TORCH_GRID = list(itertools.product(
    [((2, 4, 9, 8), (6, 2, 3, 2), 2, dict(stride=2, padding=1, dilation=(1, 2))),
     ((2, 3, 10), (4, 3, 3), 1, dict(stride=3, padding=2)),
     ((2, 3, 5, 6, 7), (4, 3, 2, 3, 2), 1, dict(stride=(1, 2, 1), padding=1)),
     ((2, 4, 9, 8), (4, 1, 3, 3), 4, dict(padding=1)),
     ((2, 4, 9, 8), (6, 4, 4, 3), 1, dict(padding="same")),
     ((2, 4, 9, 8), (6, 4, 3, 3), 1, dict(padding=2, padding_mode="reflect")),
     ((2, 4, 9, 8), (6, 4, 3, 3), 1, dict(padding=2, padding_mode="circular")),
     ((2, 4, 9, 8), (6, 4, 3, 3), 1, dict(padding=(2, 1), padding_mode="replicate"))],
    [np.float64, np.float32]))


@pytest.mark.parametrize("case,dtype", TORCH_GRID)
def test_conv_matches_torch(case, dtype, rng):
    torch = pytest.importorskip("torch")
    x_shape, w_shape, groups, kw = case
    n = len(x_shape) - 2
    x, w, b = (a.astype(dtype) for a in _arrays(rng, x_shape, w_shape, w_shape[0]))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    mod = torch.nn.__dict__[f"Conv{n}d"](x_shape[1], w_shape[0], w_shape[2:], groups=groups,
                                         **{k: v for k, v in kw.items()}).to(tx.dtype)
    ty = torch.nn.functional.__dict__[f"conv{n}d"]
    mode = kw.get("padding_mode", "zeros")
    if mode != "zeros":
        ty = mod._conv_forward
        mod.weight, mod.bias = torch.nn.Parameter(tw), torch.nn.Parameter(tb)
        out = mod(tx)
        tw, tb = mod.weight, mod.bias
    else:
        out = ty(tx, tw, tb, groups=groups, **kw)
    g = rng.standard_normal(out.shape).astype(dtype)
    out.backward(torch.tensor(g))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    y = F.conv(x, w, b, groups=groups, **kw)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, out.detach().numpy(), **tol)
    gx, gw, gb = F.conv_vjp(g, x, w, b, groups=groups, **kw)
    np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)
    np.testing.assert_allclose(gb, tb.grad.numpy(), **tol)


@pytest.mark.parametrize("x_shape,w_shape,groups,kw", [
    ((2, 4, 5, 6), (4, 3, 4, 3), 1, dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 5, 6), (4, 3, 4, 3), 2, dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 0), dilation=(1, 2))),
    ((2, 4, 5), (4, 3, 3), 1, dict(stride=3, padding=4)),
    ((1, 2, 3, 4, 3), (2, 2, 2, 2, 3), 1, dict(stride=2, padding=1)),
])
def test_conv_transpose_matches_torch(rng, x_shape, w_shape, groups, kw):
    torch = pytest.importorskip("torch")
    n = len(x_shape) - 2
    x, w, b = _arrays(rng, x_shape, w_shape, w_shape[1] * groups)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out = torch.nn.functional.__dict__[f"conv_transpose{n}d"](tx, tw, tb, groups=groups, **kw)
    g = rng.standard_normal(out.shape)
    out.backward(torch.tensor(g))
    np.testing.assert_allclose(F.conv_transpose(x, w, b, groups=groups, **kw), out.detach().numpy(), atol=1e-10)
    gx, gw, gb = F.conv_transpose_vjp(g, x, w, b, groups=groups, **kw)
    np.testing.assert_allclose(gx, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(gw, tw.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(gb, tb.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("n,mult,dil", [(1, 1, 1), (2, 1, 2), (2, 3, 1), (3, 2, 1)])
def test_depthwise_stride1_path_matches_reference_under_a_tiny_workspace(rng, n, mult, dil):
    """The shifted multiply-accumulate path (depthwise, stride 1), chunked by batch."""
    c = 3
    x, w, b = _arrays(rng, (3, c) + (5, 4, 3)[:n], (c * mult, 1) + (3, 2, 2)[:n], c * mult)
    kw = dict(groups=c, padding=((2, 1), (0, 2), (1, 1))[:n], dilation=dil, padding_mode="zeros")
    with convkit.workspace_limit(1024):
        _check_conv(rng, x.shape, w.shape, **kw)


GROUP_SPLIT_GRID = [
    # x shape, weight shape, groups, keywords: grouped convolutions run one group at a time
    ((2, 4, 9), (4, 2, 2), 2, dict(stride=3, padding=(2,), dilation=2)),
    ((2, 4, 6, 7), (6, 2, 3, 2), 2, dict(stride=(2, 1), padding=((1, 2), (0, 3)), dilation=(1, 2))),
    ((2, 6, 7, 8), (9, 2, 3, 3), 3, dict(padding=1)),                        # Winograd and implicit GEMM per group
    ((3, 4, 6, 6), (4, 2, 5, 5), 2, dict(padding=2)),
    ((2, 4, 6, 6), (8, 2, 3, 3), 2, dict(padding=1, data_format="channels_last")),
    ((1, 4, 4, 4, 4), (4, 2, 3, 1, 2), 2, dict(padding="same", dilation=(1, 1, 2))),
]


@pytest.mark.parametrize("x_shape,w_shape,groups,kw", GROUP_SPLIT_GRID)
def test_grouped_conv_by_group_matches_reference(rng, monkeypatch, x_shape, w_shape, groups, kw):
    """With the thresholds lowered so that every grouped layer runs group by group: F.conv, F.conv_vjp and the
    taped (autograd) forward, which keeps each group's columns or transforms, against the reference."""
    from convkit.functional import _conv_core
    monkeypatch.setattr(_conv_core, "_GROUP_SPLIT_MIN_CHANNELS", 1)
    monkeypatch.setattr(_conv_core, "_GROUP_SPLIT_MIN_POSITIONS", 1)
    conv_mod = importlib.import_module("convkit.functional.conv")
    x, w, b = _arrays(rng, x_shape, w_shape, w_shape[0])
    ref_kw = {k: v for k, v in kw.items() if k != "data_format"}
    y_ref = R.conv(x, w, b, groups=groups, **ref_kw)
    g = rng.standard_normal(y_ref.shape)
    refs = R.conv_vjp(g, x, w, b, groups=groups, **ref_kw)
    cl = kw.get("data_format") == "channels_last"
    move = functools.partial(np.moveaxis, source=1, destination=-1) if cl else (lambda a: a)
    assert F.conv_algorithms(x_shape, w_shape, groups=groups, stride=kw.get("stride", 1))["by_group"]
    np.testing.assert_allclose(F.conv(move(x), w, b, groups=groups, **kw), move(y_ref), atol=1e-10)
    y, tape = conv_mod._conv_taped("conv", move(x), w, b, groups=groups, **kw)
    assert isinstance(tape[-1], _conv_core._Groups)
    for got in (F.conv_vjp(move(g), move(x), w, b, groups=groups, **kw), conv_mod._conv_taped_vjp(move(g), tape)):
        for a, e in zip(got, (move(refs[0]),) + tuple(refs[1:])):
            np.testing.assert_allclose(a, e, atol=1e-10)


DEPTHWISE_STRIDED_GRID = [
    # x shape, weight shape (depthwise, groups = channels), keywords: the direct path over the input's phases
    ((2, 3, 9, 10), (3, 1, 3, 3), dict(stride=2, padding=1)),
    ((2, 3, 9, 10), (3, 1, 5, 5), dict(stride=2, padding=2)),
    ((1, 4, 11, 7), (8, 1, 3, 3), dict(stride=(2, 3), padding=((1, 0), (2, 1)))),    # multiplier 2
    ((2, 3, 8, 8), (3, 1, 3, 3), dict(stride=2, padding=1, dilation=2)),
    ((1, 2, 13), (2, 1, 4), dict(stride=3, padding=2)),
    ((1, 2, 5, 6, 7), (2, 1, 3, 3, 3), dict(stride=2, padding=1)),
    ((2, 3, 3, 3), (3, 1, 3, 3), dict(stride=3)),
    ((1, 2, 7, 7), (2, 1, 3, 3), dict(stride=2, padding=5)),                            # pads wider than the kernel
    ((1, 2, 6, 6), (6, 1, 2, 2), dict(stride=(1, 2))),                                  # stride 1 in one dim
    ((1, 2, 1), (2, 1, 2), dict(stride=2, padding=((0, 2),))),                          # last phase cells unread
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape,kw", DEPTHWISE_STRIDED_GRID)
def test_depthwise_strided_direct_matches_reference(rng, monkeypatch, x_shape, w_shape, kw, dtype):
    """Forward and both gradients by the direct path, in blocks of one plane (each block splits its own planes
    into phases and puts its input gradient's cells back) over dirty scratch buffers, and chunked by batch."""
    from convkit.functional import _depthwise
    F.conv(rng.standard_normal((2, 3, 9, 9)) + 9.0, np.ones((3, 1, 3, 3)), stride=2, groups=3, algorithm="direct")
    monkeypatch.setattr(_depthwise, "_BLOCK_ELEMENTS", 1)
    c = x_shape[1]
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1]))
    ref_kw = dict(kw, groups=c)
    g = rng.standard_normal(R.conv(x, w, b, **ref_kw).shape).astype(dtype)
    refs = (R.conv(x, w, b, **ref_kw),) + tuple(R.conv_vjp(g, x, w, b, **ref_kw))
    for limit in (convkit.get_workspace_limit(), 1024):
        with convkit.workspace_limit(limit):
            got = (F.conv(x, w, b, algorithm="direct", **ref_kw),) + tuple(
                F.conv_vjp(g, x, w, b, algorithm="direct", **ref_kw))
        for a, e in zip(got, refs):
            assert a.dtype == dtype
            np.testing.assert_allclose(a, e, rtol=1e-10 if dtype == np.float64 else 1e-4,
                                       atol=1e-10 if dtype == np.float64 else 1e-4 * np.abs(e).max())


def test_strided_depthwise_forward_keeps_no_columns_for_its_direct_backward(rng):
    conv_mod = importlib.import_module("convkit.functional.conv")
    x, w = rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((4, 1, 3, 3))
    algs = F.conv_algorithms(x.shape, w.shape, stride=2, padding=1, groups=4)
    assert (algs["forward_autograd"], algs["backward"]) == ("im2col", "direct")
    y, tape = conv_mod._conv_taped("conv", x, w, None, stride=2, padding=1, groups=4)
    assert tape[-1] is None
    g = rng.standard_normal(y.shape)
    got, refs = conv_mod._conv_taped_vjp(g, tape), R.conv_vjp(g, x, w, None, stride=2, padding=1, groups=4)
    for a, e in zip(got[:2], refs[:2]):
        np.testing.assert_allclose(a, e, atol=1e-10)


FOLD_GRID = [
    # x shape, weight shape, keywords: the folded-columns path (stride 1 in the first dim)
    ((2, 3, 7), (4, 3, 3), dict(padding=1)),
    ((1, 2, 9), (3, 2, 2), dict(padding=((2, 1),), dilation=3)),
    ((2, 3, 6, 5), (4, 3, 3, 3), dict(padding="same")),
    ((2, 3, 7, 6), (4, 3, 2, 3), dict(stride=(1, 2), padding=((0, 2), (1, 0)))),
    ((3, 2, 5, 7), (2, 2, 3, 2), dict(padding=((2, 1), (0, 1)), dilation=(2, 3))),
    ((1, 4, 6, 6), (3, 4, 1, 3), dict(padding=1)),
    ((1, 5, 5, 5), (2, 5, 5, 5), dict(padding=2)),
    ((2, 2, 4, 5, 4), (3, 2, 2, 3, 2), dict(stride=(1, 2, 1), padding=1)),
    ((1, 3, 5, 4, 6), (2, 3, 3, 2, 3), dict(padding=((1, 2), (0, 1), (2, 0)), dilation=(2, 1, 2))),
]


@pytest.mark.parametrize("variant", ["slabs", "one_product", "sample_major"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape,w_shape,kw", FOLD_GRID)
def test_folded_columns_match_reference(rng, monkeypatch, x_shape, w_shape, kw, dtype, variant):
    """All three folded layouts: batch-wide slabs one product per offset, one product for all offsets,
    and sample-major columns (one product per sample)."""
    from convkit.functional import _conv_core
    for name, value in [("_FOLD_MIN_RUN", 0), ("_FOLD_MIN_K0", 1), ("_FOLD_MIN_NDIM", 1),
                        ("_FOLD_MAX_K0_FORWARD", 99), ("_FOLD_ONE_PRODUCT_MAX_K", 99 if variant == "one_product" else 0),
                        ("_FOLD_SAMPLE_MAJOR_ROWS", 0 if variant == "sample_major" else 10 ** 12)]:
        monkeypatch.setattr(_conv_core, name, value)
    calls = []
    fold = _conv_core._fold_columns
    # which array each folded-columns call is made of: x (forward, weight gradient) or grad_out (the
    # input gradient of a stride-1 layer, as the forward convolution with the rotated kernel)
    monkeypatch.setattr(_conv_core, "_fold_columns", lambda *a, **k: calls.append(id(a[0])) or fold(*a, **k))
    x, w, b = (a.astype(dtype) for a in _arrays(rng, x_shape, w_shape, w_shape[0]))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    y = F.conv(x, w, b, **kw)
    assert y.dtype == dtype and calls
    np.testing.assert_allclose(y, R.conv(x, w, b, **kw), **tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    for a, e in zip(F.conv_vjp(g, x, w, b, **kw), R.conv_vjp(g, x, w, b, **kw)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, e, **tol)
    # the forward's kept (folded) columns serve the backward's weight gradient: x is folded once
    calls.clear()
    conv_mod = importlib.import_module("convkit.functional.conv")
    y2, tape = conv_mod._conv_taped("conv", x, w, b, **kw)
    assert calls == [id(tape[1])]
    np.testing.assert_allclose(y2, y, **tol)
    for a, e in zip(conv_mod._conv_taped_vjp(g, tape), R.conv_vjp(g, x, w, b, **kw)):
        np.testing.assert_allclose(a, e, **tol)
    assert calls.count(id(tape[1])) == 1


@pytest.mark.parametrize("x_shape,stride", [((2, 5, 7, 6), 1), ((2, 5, 7, 6), 2), ((2, 5, 7, 6), (2, 3)),
                                            ((3, 4, 9), 1), ((3, 4, 9), 2), ((1, 3, 4, 5, 6), (1, 2, 2)),
                                            ((4, 6, 5), 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pointwise_path_matches_reference(rng, x_shape, stride, dtype):
    """1x1 convolutions take a matrix-product path with no columns: check it against the loops."""
    nd = len(x_shape) - 2
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((3, x_shape[1]) + (1,) * nd).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    y = F.conv(x, w, b, stride=stride)
    np.testing.assert_allclose(y, R.conv(x, w, b, stride=stride), **tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    for ours, ref in zip(F.conv_vjp(g, x, w, b, stride=stride), R.conv_vjp(g, x, w, b, stride=stride)):
        np.testing.assert_allclose(ours, ref, **tol)
    with convkit.workspace_limit(1024):  # one sample per step
        np.testing.assert_allclose(F.conv(x, w, b, stride=stride), y, **tol)
        np.testing.assert_allclose(F.conv_vjp(g, x, w, b, stride=stride)[1],
                                   R.conv_vjp(g, x, w, b, stride=stride)[1], **tol)
