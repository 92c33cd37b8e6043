"""Pooling: fast ops vs the loop reference, gradients, PyTorch, and bad arguments."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convkit._config import workspace_limit
from convkit.functional import pool as F
from convkit.reference import pool as R
from helpers import check_grad_fd

WINDOWS = [  # (spatial shape, window keywords): odd sizes, overhang, wide padding, dilation, untiled strides
    ((7,), dict(kernel_size=(3,), stride=(2,), padding=1, ceil_mode=True)),
    ((8,), dict(kernel_size=(2,), stride=(3,), padding=((3, 0),), dilation=(3,))),
    ((5, 6), dict(kernel_size=(2, 3))),
    ((7, 5), dict(kernel_size=(3, 3), stride=(2, 2), padding=1, ceil_mode=True)),
    ((6, 7), dict(kernel_size=(2, 3), stride=(3, 1), padding=((0, 2), (3, 1)), dilation=(2, 1), ceil_mode=True)),
    ((4, 4), dict(kernel_size=(1, 2), stride=(2, 2), padding=((2, 2), (0, 1)), ceil_mode=True)),
    ((3, 4, 5), dict(kernel_size=(2, 2, 3), stride=(1, 2, 2), padding=((1, 0), (0, 1), (1, 1)), ceil_mode=True)),
    ((4, 3, 3), dict(kernel_size=(3, 1, 2), stride=(2, 1, 1), dilation=(1, 1, 2), padding=1)),
]
ADAPTIVE = [((7,), (3,)), ((5,), (8,)), ((6, 5), (4, 2)), ((5, 7), (None, 3)), ((4, 5), (1, 1)),
            ((3, 4, 5), (2, 3, 2)), ((2, 3, 4), (3, None, 5))]


def _x(rng, shape, kind="normal"):
    if kind == "ties":
        return rng.integers(-2, 3, shape).astype(np.float64)
    if kind == "negative":
        return -rng.uniform(1, 5, shape)
    return rng.standard_normal(shape)


def _windowed_ops(x, kw, rng, p=2.0, count_include_pad=True, divisor_override=None):
    """Forward and vjp of max, avg and lp pool: fast vs reference."""
    y, i = F.max_pool(x, **kw, return_indices=True)
    yr, ir = R.max_pool(x, **kw, return_indices=True)
    np.testing.assert_array_equal(y, yr)
    np.testing.assert_array_equal(i, ir)
    np.testing.assert_array_equal(F.max_pool(x, **kw), yr)   # without winners: the separable max
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(F.max_pool_vjp(g, x, **kw), R.max_pool_vjp(g, x, **kw), atol=1e-12)
    akw = dict(kw, count_include_pad=count_include_pad, divisor_override=divisor_override)
    np.testing.assert_allclose(F.avg_pool(x, **akw), R.avg_pool(x, **akw), atol=1e-12)
    np.testing.assert_allclose(F.avg_pool_vjp(g, x, **akw), R.avg_pool_vjp(g, x, **akw), atol=1e-12)
    np.testing.assert_allclose(F.lp_pool(x, p, **kw), R.lp_pool(x, p, **kw), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.lp_pool_vjp(g, x, p, **kw), R.lp_pool_vjp(g, x, p, **kw), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["normal", "ties", "negative"])
@pytest.mark.parametrize("spatial,kw", WINDOWS)
def test_windowed_vs_reference(spatial, kw, kind):
    rng = np.random.default_rng(0)
    x = _x(rng, (2, 2) + spatial, kind)
    _windowed_ops(x, kw, rng, p=3.0, count_include_pad=kind != "ties", divisor_override=3 if kind == "ties" else None)


@st.composite
def window_configs(draw):
    n = draw(st.integers(1, 3))
    k, s, d, pads, sizes = [], [], [], [], []
    for _ in range(n):
        k.append(draw(st.integers(1, 3)))
        s.append(draw(st.integers(1, 3)))
        d.append(draw(st.integers(1, 2)))
        pads.append((draw(st.integers(0, 3)), draw(st.integers(0, 3))))
        need = max(1, d[-1] * (k[-1] - 1) + 1 - sum(pads[-1]))
        sizes.append(draw(st.integers(need, max(need, (8, 6, 4)[n - 1]))))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *sizes)
    kw = dict(kernel_size=tuple(k), stride=tuple(s), padding=tuple(pads), dilation=tuple(d),
              ceil_mode=draw(st.booleans()))
    return shape, kw


@settings(max_examples=150, deadline=None)
@given(window_configs(), st.sampled_from(["normal", "ties", "negative"]), st.sampled_from([1.0, 1.5, 2.0, 3.0]),
       st.booleans(), st.integers(0, 2**16))
def test_windowed_hypothesis(config, kind, p, count_include_pad, seed):
    shape, kw = config
    rng = np.random.default_rng(seed)
    _windowed_ops(_x(rng, shape, kind), kw, rng, p, count_include_pad)


@st.composite
def adaptive_configs(draw):
    n = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, (9, 6, 4)[n - 1])) for _ in range(n)]
    out = [draw(st.one_of(st.none(), st.integers(1, (9, 6, 4)[n - 1]))) for _ in range(n)]
    return (draw(st.integers(1, 2)), 2, *sizes), tuple(out)


def _adaptive_ops(x, out, rng):
    y, i = F.adaptive_max_pool(x, out, return_indices=True)
    yr, ir = R.adaptive_max_pool(x, out, return_indices=True)
    np.testing.assert_array_equal(y, yr)
    np.testing.assert_array_equal(i, ir)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(F.adaptive_max_pool_vjp(g, x, out), R.adaptive_max_pool_vjp(g, x, out), atol=1e-12)
    np.testing.assert_allclose(F.adaptive_avg_pool(x, out), R.adaptive_avg_pool(x, out), atol=1e-12)
    np.testing.assert_allclose(F.adaptive_avg_pool_vjp(g, x, out), R.adaptive_avg_pool_vjp(g, x, out), atol=1e-12)


@pytest.mark.parametrize("kind", ["normal", "ties"])
@pytest.mark.parametrize("spatial,out", ADAPTIVE)
def test_adaptive_vs_reference(spatial, out, kind):
    rng = np.random.default_rng(1)
    _adaptive_ops(_x(rng, (2, 3) + spatial, kind), out, rng)


@settings(max_examples=80, deadline=None)
@given(adaptive_configs(), st.sampled_from(["normal", "ties"]), st.integers(0, 2**16))
def test_adaptive_hypothesis(config, kind, seed):
    shape, out = config
    rng = np.random.default_rng(seed)
    _adaptive_ops(_x(rng, shape, kind), out, rng)


def test_max_pool_uint8_and_int_dtypes():
    rng = np.random.default_rng(2)
    for dtype in (np.uint8, np.int16):
        x = rng.integers(0, 4, (2, 2, 6, 5)).astype(dtype)  # many ties, and 0 is uint8's pad value
        kw = dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True)
        y, i = F.max_pool(x, **kw, return_indices=True)
        yr, ir = R.max_pool(x, **kw, return_indices=True)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, yr)
        np.testing.assert_array_equal(i, ir)
        assert F.max_pool(x, **kw).dtype == dtype
        np.testing.assert_array_equal(F.max_pool(x, **kw), yr)
        assert F.adaptive_max_pool(x, (2, 3)).dtype == dtype
        assert F.global_max_pool(x).dtype == dtype
    assert F.avg_pool(np.ones((1, 1, 4), np.int32), 2).dtype == np.float64
    for dtype in (np.float16, np.float32):
        x = rng.standard_normal((1, 2, 5, 5)).astype(dtype)
        for y in (F.max_pool(x, 2), F.avg_pool(x, 2), F.lp_pool(x, 2, 2), F.adaptive_avg_pool(x, 2),
                  F.global_avg_pool(x)):
            assert y.dtype == dtype
        np.testing.assert_allclose(F.avg_pool(x, 2), R.avg_pool(x.astype(float), (2, 2)), rtol=2e-3)


TILED = [  # windows that tile the input (stride == kernel, no padding or dilation): the fast path
    ((8, 8), 2), ((9, 7), 2), ((12, 10), (3, 2)), ((6, 8, 4), (2, 2, 2)), ((11,), 3), ((7, 9), (1, 3)),
    ((6, 6), (1, 1)), ((40, 40), (16, 16)), ((34, 36), (17, 18)),  # 256 and 306 offsets: wider codes
]


@pytest.mark.parametrize("kind", ["normal", "ties", "nan", "inf", "int16", "bool", "float32", "float32 nan"])
@pytest.mark.parametrize("spatial,k", TILED)
def test_tiled_max_pool_matches_reference_and_its_vjp(spatial, k, kind):
    """The tiled fast path: first max on ties, last NaN, -inf and integer windows, cropped edges; and the
    autograd route (tile codes, no indices) gives max_pool_vjp's gradient, non-finite grad_out included."""
    rng = np.random.default_rng(len(spatial) * 10 + len(kind))
    shape = (2, 3) + spatial
    x = {"normal": lambda: rng.standard_normal(shape), "ties": lambda: _x(rng, shape, "ties"),
         "nan": lambda: np.where(rng.random(shape) < 0.2, np.nan, _x(rng, shape, "ties")),
         "inf": lambda: np.where(rng.random(shape) < 0.5, -np.inf, _x(rng, shape, "ties")),
         "int16": lambda: rng.integers(-3, 3, shape).astype(np.int16),
         "bool": lambda: rng.random(shape) < 0.3,
         "float32": lambda: _x(rng, shape, "ties").astype(np.float32),
         "float32 nan": lambda: np.where(rng.random(shape) < 0.2, np.nan, _x(rng, shape, "ties")).astype(np.float32),
         }[kind]()
    y, i = F.max_pool(x, k, return_indices=True)
    if kind != "bool":
        yr, ir = R.max_pool(x, k, return_indices=True)
        np.testing.assert_array_equal(y, yr)
        np.testing.assert_array_equal(i, ir)
    assert y.dtype == x.dtype
    yt, it, route = F._max_pool_taped("max_pool", x, k, return_indices=True)
    np.testing.assert_array_equal(yt, y)
    np.testing.assert_array_equal(it, i)
    g = rng.standard_normal(y.shape).astype(x.dtype if x.dtype.kind == "f" else np.float64)
    np.testing.assert_array_equal(F._max_pool_route_vjp(g, route), F.max_pool_vjp(g, x, k, indices=i))
    g[0, 1] = np.inf  # a non-finite grad_out must not leak into the cells that did not win
    g[1, 2] = np.nan
    gx = F._max_pool_route_vjp(g, route)
    np.testing.assert_array_equal(gx, F.max_pool_vjp(g, x, k, indices=i))
    assert not np.signbit(gx[gx == 0]).any()  # +0 where a cell did not win, as PyTorch's zero-filled gradient


def test_tiled_max_pool_unbatched_float32_non_contiguous():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 8, 10)).astype(np.float32)
    xt = rng.standard_normal((2, 3, 10, 8))[:, :, ::-1].transpose(0, 1, 3, 2)
    y, i, route = F._max_pool_taped("max_pool2d", x, 2, return_indices=True)
    np.testing.assert_array_equal(y, R.max_pool(x[None], (2, 2))[0])
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = F._max_pool_route_vjp(g, route)
    assert gx.dtype == np.float32 and gx.shape == x.shape
    np.testing.assert_array_equal(gx, F.max_pool_vjp(g, x, (2, 2), indices=i))
    np.testing.assert_array_equal(F.max_pool(xt, 2, return_indices=True)[1], R.max_pool(xt, 2, return_indices=True)[1])


def test_window_wholly_in_padding():
    x = np.arange(1.0, 4.0).reshape(1, 1, 3)
    y, i = F.max_pool(x, 1, stride=1, padding=2, return_indices=True)
    np.testing.assert_array_equal(y[0, 0], [-np.inf, -np.inf, 1, 2, 3, -np.inf, -np.inf])
    np.testing.assert_array_equal(i[0, 0], [-1, -1, 0, 1, 2, -1, -1])
    np.testing.assert_array_equal(F.avg_pool(x, 1, 1, 2, count_include_pad=False)[0, 0], [0, 0, 1, 2, 3, 0, 0])
    np.testing.assert_array_equal(F.max_pool_vjp(np.ones((1, 1, 7)), x, 1, 1, 2), [[[1, 1, 1]]])


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf + -inf
def test_nan_and_inf_propagate():
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 2.0, np.inf, -np.inf, 0.0]]])
    y, i = F.max_pool(x, 4, return_indices=True)
    assert np.isnan(y[0, 0, 0]) and y[0, 0, 1] == np.inf
    y = F.max_pool(x, 3, 2, 1)  # overlapping windows, no winners: the separable max
    assert np.isnan(y[0, 0, :3]).all() and y[0, 0, 3] == np.inf
    assert i[0, 0, 0] == 3  # the last NaN, as PyTorch on CPU
    assert np.isnan(F.avg_pool(x, 4)[0, 0, 0]) and np.isnan(F.avg_pool(x, 4)[0, 0, 1])
    assert np.isnan(F.lp_pool(x, 2, 4)[0, 0, 0]) and F.lp_pool(x, 2, 4)[0, 0, 1] == np.inf
    assert np.isnan(F.adaptive_max_pool(x, 2)[0, 0, 0]) and np.isnan(F.global_max_pool(x)).all()
    assert np.isnan(F.adaptive_avg_pool(x, 2)).all() and np.isnan(F.global_avg_pool(x)).all()


@pytest.mark.parametrize("layout", ["reversed", "fortran", "strided", "readonly"])
def test_layouts_match_contiguous(layout):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2, 3, 9, 8))
    x = {"reversed": base[:, ::-1, ::-1], "fortran": np.asfortranarray(base),
         "strided": base[:, :, ::2, 1:], "readonly": base.copy()}[layout]
    x.setflags(write=False)
    c = np.ascontiguousarray(x)
    kw = dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True)
    g = rng.standard_normal(F.max_pool(c, **kw).shape)
    for f in (F.max_pool, F.avg_pool, lambda v, **k: F.lp_pool(v, 2, **k)):
        np.testing.assert_array_equal(f(x, **kw), f(c, **kw))
    for vjp in (F.max_pool_vjp, F.avg_pool_vjp):
        np.testing.assert_array_equal(vjp(g, x, **kw), vjp(g, c, **kw))
    np.testing.assert_array_equal(F.adaptive_max_pool(x, (3, 2), True)[1], F.adaptive_max_pool(c, (3, 2), True)[1])
    np.testing.assert_allclose(F.adaptive_avg_pool(x, (3, 2)), F.adaptive_avg_pool(c, (3, 2)))
    y, i = F.max_pool(x, 2, return_indices=True)
    np.testing.assert_array_equal(F.max_unpool(y, i, 2, output_size=x.shape), F.max_unpool(y.copy(), i, 2, output_size=c.shape))


def test_unbatched_aliases():
    rng = np.random.default_rng(4)
    for n in (1, 2, 3):
        xb = rng.standard_normal((1, 2) + (5,) * n)
        x = xb[0]
        for name, args in [("max_pool", (2,)), ("avg_pool", (3, 2, 1)), ("lp_pool", (2.0, 2)),
                           ("adaptive_avg_pool", (3,)), ("adaptive_max_pool", (2,))]:
            alias = getattr(F, f"{name}{n}d")
            np.testing.assert_array_equal(alias(x, *args), alias(xb, *args)[0])
        y, i = F.max_pool(xb, (2,) * n, return_indices=True)
        size = (5,) * n
        np.testing.assert_array_equal(getattr(F, f"max_unpool{n}d")(y[0], i[0], 2, output_size=size),
                                      F.max_unpool(y, i, (2,) * n, output_size=size)[0])
        np.testing.assert_array_equal(F.max_pool_vjp(np.ones(y.shape[1:]), x, (2,) * n),
                                      F.max_pool_vjp(np.ones(y.shape), xb, (2,) * n)[0])
    assert F.max_pool2d.__name__ == "max_pool2d"


def test_workspace_chunking_gives_the_same_answer():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 10, 9))
    kw = dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True)
    g = rng.standard_normal(F.max_pool(x, **kw).shape)
    ga = rng.standard_normal((3, 4, 4, 5))
    calls = [lambda: F.max_pool(x, **kw, return_indices=True), lambda: F.max_pool_vjp(g, x, **kw),
             lambda: F.avg_pool_vjp(g, x, **kw), lambda: F.lp_pool_vjp(g, x, 3, **kw),
             lambda: F.adaptive_max_pool_vjp(ga, x, (4, 5)), lambda: F.adaptive_avg_pool(x, (4, 5))]
    want = [c() for c in calls]
    with workspace_limit(1024):
        for c, w in zip(calls, want):
            np.testing.assert_array_equal(np.asarray(c(), dtype=object), np.asarray(w, dtype=object))


def test_global_pools():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(F.global_avg_pool(x), x.mean(axis=(2, 3), keepdims=True))
    np.testing.assert_array_equal(F.global_max_pool(x), F.adaptive_max_pool(x, (1, 1)))
    g = rng.standard_normal((2, 3, 1, 1))
    np.testing.assert_allclose(F.global_avg_pool_vjp(g, x), F.adaptive_avg_pool_vjp(g, x, 1))
    np.testing.assert_array_equal(F.global_max_pool_vjp(g, x), R.adaptive_max_pool_vjp(g, x, (1, 1)))


def test_max_unpool_vs_reference():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 7, 6))
    y, i = F.max_pool(x, 2, stride=2, padding=((1, 0), (0, 1)), return_indices=True)
    for size in ((7, 6), (2, 2, 8, 6), (2, 7, 6)):
        kw = dict(kernel_size=(2, 2), stride=2, padding=((1, 0), (0, 1)), output_size=size)
        u = F.max_unpool(y, i, **kw)
        np.testing.assert_array_equal(u, R.max_unpool(y, i, **kw))
        g = rng.standard_normal(u.shape)
        np.testing.assert_array_equal(F.max_unpool_vjp(g, y, i, **kw), R.max_unpool_vjp(g, y, i, **kw))
    u = F.max_unpool(y, i, (2, 2), 2, ((1, 0), (0, 1)), output_size=(7, 6))
    np.testing.assert_array_equal(u.reshape(2, 2, -1)[np.arange(2)[:, None, None], np.arange(2)[:, None], i.reshape(2, 2, -1)],
                                  y.reshape(2, 2, -1))  # each value sits at its index
    assert np.count_nonzero(u) == y.size


# ------------------------------------------------------------------ gradients: finite differences, adjoint

def _fd_check(f, vjp, x, rng):
    """<vjp(g), d> against the central difference of <f(x), g> along a random direction d."""
    g = rng.standard_normal(f(x).shape)
    check_grad_fd(lambda v: np.vdot(f(v), g), vjp(g, x), x, rng, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spatial,kw", WINDOWS)
def test_finite_differences(spatial, kw):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 2) + spatial)
    _fd_check(lambda v: F.avg_pool(v, **kw), lambda g, v: F.avg_pool_vjp(g, v, **kw), x, rng)
    for p in (1.5, 2.0, 3.0):
        _fd_check(lambda v: F.lp_pool(v, p, **kw), lambda g, v: F.lp_pool_vjp(g, v, p, **kw), x, rng)
    if not np.isneginf(F.max_pool(x, **kw)).any():  # no window wholly in padding, and no ties (continuous x)
        _fd_check(lambda v: F.max_pool(v, **kw), lambda g, v: F.max_pool_vjp(g, v, **kw), x, rng)


@pytest.mark.parametrize("spatial,out", ADAPTIVE)
def test_adaptive_finite_differences(spatial, out):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2) + spatial)
    _fd_check(lambda v: F.adaptive_avg_pool(v, out), lambda g, v: F.adaptive_avg_pool_vjp(g, v, out), x, rng)
    _fd_check(lambda v: F.adaptive_max_pool(v, out), lambda g, v: F.adaptive_max_pool_vjp(g, v, out), x, rng)


def _adjoint(f, vjp, x_shape, rng):
    x = rng.standard_normal(x_shape)
    y = f(x)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, vjp(g, x)), rtol=1e-12)


@pytest.mark.parametrize("spatial,kw", WINDOWS)
def test_adjoint_avg_pool(spatial, kw):
    rng = np.random.default_rng(10)
    for cip in (True, False):
        _adjoint(lambda v: F.avg_pool(v, **kw, count_include_pad=cip),
                 lambda g, v: F.avg_pool_vjp(g, v, **kw, count_include_pad=cip), (2, 2) + spatial, rng)


@pytest.mark.parametrize("spatial,out", ADAPTIVE)
def test_adjoint_adaptive_avg_pool(spatial, out):
    _adjoint(lambda v: F.adaptive_avg_pool(v, out), lambda g, v: F.adaptive_avg_pool_vjp(g, v, out),
             (2, 2) + spatial, np.random.default_rng(11))


def test_adjoint_max_unpool():
    rng = np.random.default_rng(12)
    _, i = F.max_pool(rng.standard_normal((2, 3, 7, 9)), (2, 3), return_indices=True)  # distinct per plane
    _adjoint(lambda v: F.max_unpool(v, i, (2, 3), output_size=(7, 9)),
             lambda g, v: F.max_unpool_vjp(g, v, i, (2, 3), output_size=(7, 9)), i.shape, rng)


# ------------------------------------------------------------------ PyTorch as an independent answer

TORCH_WINDOWS = [
    (1, (9,), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, (10,), dict(kernel_size=4, stride=3, padding=2)),
    (2, (7, 8), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1))),
    (2, (7, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, (6, 9), dict(kernel_size=(2, 4), stride=(3, 2), padding=(1, 2), ceil_mode=True)),
    (3, (5, 6, 5), dict(kernel_size=2, stride=2, ceil_mode=True)),
    (3, (4, 5, 6), dict(kernel_size=(3, 2, 3), stride=(1, 2, 2), padding=1)),
]


def _torch_grad(fn, x, g):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    out = fn(t)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(torch.tensor(g))
    return out.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("n,spatial,kw", TORCH_WINDOWS)
def test_against_torch_windowed(n, spatial, kw):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3) + spatial)
    for dilation in (1, 2):
        mkw = dict(kw, dilation=dilation)
        try:
            y, i = F.max_pool(x, **mkw, return_indices=True)
        except ValueError:
            continue  # dilated kernel larger than the input
        ty, ti = getattr(TF, f"max_pool{n}d")(torch.tensor(x), **mkw, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(i, ti.numpy())
        g = rng.standard_normal(y.shape)
        _, tg = _torch_grad(lambda t: getattr(TF, f"max_pool{n}d")(t, **mkw), x, g)
        np.testing.assert_allclose(F.max_pool_vjp(g, x, **mkw), tg, atol=1e-12)
    for cip, override in ((True, None), (False, None), (True, 5)):
        akw = dict(kw, count_include_pad=cip)
        if n > 1:
            akw["divisor_override"] = override
        y = F.avg_pool(x, **akw)
        g = rng.standard_normal(y.shape)
        ty, tg = _torch_grad(lambda t: getattr(TF, f"avg_pool{n}d")(t, **akw), x, g)
        np.testing.assert_allclose(y, ty, atol=1e-12)
        np.testing.assert_allclose(F.avg_pool_vjp(g, x, **akw), tg, atol=1e-12)
    lkw = dict(kernel_size=kw["kernel_size"], stride=kw["stride"])  # torch's lp_pool: no padding, no ceil rescale
    for p, xx in ((2.0, x), (3.0, np.abs(x))):
        y = F.lp_pool(xx, p, **lkw)
        g = rng.standard_normal(y.shape)
        ty, tg = _torch_grad(lambda t: getattr(TF, f"lp_pool{n}d")(t, p, **lkw), xx, g)
        np.testing.assert_allclose(y, ty, rtol=1e-10)
        np.testing.assert_allclose(F.lp_pool_vjp(g, xx, p, **lkw), tg, rtol=1e-8, atol=1e-12)


def test_against_torch_uint8_max_pool():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(14).integers(0, 3, (2, 2, 7, 6)).astype(np.uint8)
    y, i = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(i, ti.numpy())


@pytest.mark.parametrize("spatial,out", [s for s in ADAPTIVE if None not in s[1]])
def test_against_torch_adaptive(spatial, out):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    n = len(spatial)
    rng = np.random.default_rng(15)
    x = _x(rng, (2, 3) + spatial, "ties")
    y, i = F.adaptive_max_pool(x, out, return_indices=True)
    ty, ti = getattr(TF, f"adaptive_max_pool{n}d")(torch.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    g = rng.standard_normal(y.shape)
    _, tg = _torch_grad(lambda t: getattr(TF, f"adaptive_max_pool{n}d")(t, out), x, g)
    np.testing.assert_allclose(F.adaptive_max_pool_vjp(g, x, out), tg, atol=1e-12)
    ty, tg = _torch_grad(lambda t: getattr(TF, f"adaptive_avg_pool{n}d")(t, out), x, g)
    np.testing.assert_allclose(F.adaptive_avg_pool(x, out), ty, atol=1e-12)
    np.testing.assert_allclose(F.adaptive_avg_pool_vjp(g, x, out), tg, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_against_torch_unpool(n):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = np.random.default_rng(16)
    x = rng.standard_normal((2, 2) + (6,) * n)
    y, i = F.max_pool(x, (2,) * n, 2, 1, return_indices=True)
    for size in (None, (7,) * n):
        u = F.max_unpool(y, i, (2,) * n, 2, 1, output_size=size)
        g = rng.standard_normal(u.shape)
        tu, tg = _torch_grad(lambda t: getattr(TF, f"max_unpool{n}d")(t, torch.tensor(i), 2, 2, 1, size), y, g)
        np.testing.assert_array_equal(u, tu)
        np.testing.assert_array_equal(F.max_unpool_vjp(g, y, i, (2,) * n, 2, 1, size), tg)


# ------------------------------------------------------------------ bad arguments

X4 = np.zeros((1, 1, 4, 4))
I4 = np.zeros((1, 1, 2, 2), np.int64)
BAD = [
    (lambda: F.max_pool(np.zeros((2, 3, 8)), (2, 2, 2)), ValueError, r"max_pool: input\.ndim must be 4 or 5 .*got input\.ndim=3\."),
    (lambda: F.max_pool2d(np.zeros(8), 2), ValueError, r"max_pool2d: input\.ndim must be 3 or 4"),
    (lambda: F.avg_pool2d(X4, (2, 2, 2)), ValueError, r"avg_pool2d: kernel_size must be an int or a sequence of 2 ints; got kernel_size=\(2, 2, 2\)\."),
    (lambda: F.max_pool(X4, 2, stride=0), ValueError, r"max_pool: stride must be >= 1; got stride=0\."),
    (lambda: F.avg_pool(X4, 2, stride=(1, 0)), ValueError, r"avg_pool: stride must be ints >= 1; got stride=\(1, 0\)\."),
    (lambda: F.max_pool(X4, 2, padding=-1), ValueError, r"max_pool: padding must be >= 0"),
    (lambda: F.lp_pool(X4, 2, 2, padding=((0, 1), (-1, 0))), ValueError, r"lp_pool: padding must be >= 0 on every side"),
    (lambda: F.max_pool(X4, 5), ValueError, r"max_pool: output size must be >= 1 in spatial dim 0"),
    (lambda: F.max_pool(X4, 2, dilation=0), ValueError, r"max_pool: dilation must be >= 1"),
    (lambda: F.max_pool(X4, 2.5), TypeError, r"max_pool: kernel_size must be an int; got kernel_size=2\.5\."),
    (lambda: F.max_pool(X4.astype(complex), 2), TypeError, r"max_pool: input must have a real .*dtype; got input\.dtype=complex128\."),
    (lambda: F.avg_pool("abc", 2), TypeError, r"avg_pool: input must be a NumPy array or array-like of real numbers; got input of type str\."),
    (lambda: F.avg_pool(X4, 2, divisor_override=0), ValueError, r"avg_pool: divisor_override must be a non-zero int or None"),
    (lambda: F.avg_pool(X4, 2, padding="full"), ValueError, r"avg_pool: padding must be an int, .*; got padding='full'\."),
    (lambda: F.lp_pool(X4, 0, 2), ValueError, r"lp_pool: norm_type must be a finite number > 0; got norm_type=0\."),
    (lambda: F.lp_pool(X4, "2", 2), TypeError, r"lp_pool: norm_type must be a real number; got norm_type='2'\."),
    (lambda: F.adaptive_avg_pool(X4, (0, 2)), ValueError, r"adaptive_avg_pool: output_size must be ints >= 1"),
    (lambda: F.adaptive_max_pool1d(X4[0], (2, 2)), ValueError, r"adaptive_max_pool1d: output_size must be an int or a sequence of 1 ints"),
    (lambda: F.adaptive_avg_pool(X4, (2,)), ValueError, r"adaptive_avg_pool: input\.ndim must be 2 or 3"),
    (lambda: F.adaptive_max_pool(np.zeros((1, 1, 0, 3)), 2), ValueError, r"adaptive_max_pool: input spatial shape must be all >= 1"),
    (lambda: F.global_avg_pool(np.zeros((3, 4))), ValueError, r"global_avg_pool: input\.ndim must be >= 3"),
    (lambda: F.max_pool_vjp(np.zeros((1, 1, 3, 3)), X4, 2), ValueError,
     r"max_pool_vjp: grad_out\.shape must equal the output shape \(1, 1, 2, 2\); got grad_out\.shape=\(1, 1, 3, 3\)\."),
    (lambda: F.adaptive_avg_pool_vjp(np.zeros((1, 1, 2)), X4, 2), ValueError, r"adaptive_avg_pool_vjp: grad_out\.shape must equal"),
    (lambda: F.max_unpool(X4[..., :2, :2], I4 + 16, 2), ValueError,
     r"max_unpool: indices must lie in \[0, 16\) .*; got indices\.min\(\)=16, indices\.max\(\)=16\."),
    (lambda: F.max_unpool(X4[..., :2, :2], I4.astype(float), 2), TypeError, r"max_unpool: indices must have an integer dtype"),
    (lambda: F.max_unpool(X4[..., :2, :2], I4[..., :1], 2), ValueError,
     r"max_unpool: indices\.shape must equal input\.shape \(1, 1, 2, 2\); got indices\.shape=\(1, 1, 2, 1\)\."),
    (lambda: F.max_unpool(X4[..., :2, :2], I4, 2, output_size=(6, 4)), ValueError, r"max_unpool: output_size must be within stride"),
    (lambda: F.max_unpool(X4[..., :2, :2], I4, 2, stride=2, padding=2), ValueError, r"max_unpool: output size must be all >= 1"),
]


@pytest.mark.parametrize("call,exc,pattern", BAD, ids=[re.sub(r"\W+", "_", b[2][:40]) for b in BAD])
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3), stride=1, padding=((3, 0), (0, 2)), dilation=(2, 1),
                                     ceil_mode=True)])
def test_max_pool_vjp_from_saved_indices(kw):
    """The vjp from the forward's indices equals the one that finds the winners again."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 6))
    x[0, 0, :2, :2] = 1.0  # ties
    y, idx = F.max_pool(x, **kw, return_indices=True)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(F.max_pool_vjp(g, x, **kw, indices=idx), F.max_pool_vjp(g, x, **kw))
    with pytest.raises(ValueError, match=r"max_pool_vjp: indices must lie in \[-1, 42\)"):
        F.max_pool_vjp(g, x, **kw, indices=idx + 100)
    with pytest.raises(TypeError, match=r"max_pool_vjp: indices must have an integer dtype"):
        F.max_pool_vjp(g, x, **kw, indices=idx.astype(float))


def test_max_pool_vjp_from_indices_under_a_tiny_workspace():
    import convkit

    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 6, 6))
    y, idx = F.max_pool(x, 3, stride=2, padding=1, return_indices=True)
    g = rng.standard_normal(y.shape)
    expected = F.max_pool_vjp(g, x, 3, stride=2, padding=1)
    with convkit.workspace_limit(1024):
        np.testing.assert_allclose(F.max_pool_vjp(g, x, 3, stride=2, padding=1, indices=idx), expected)


@pytest.mark.parametrize("shape,out", [((2, 3, 12), 1), ((2, 3, 12), 4), ((2, 2, 8, 6), 1), ((2, 2, 8, 6), (2, 3)),
                                       ((1, 2, 20, 20), 1), ((1, 2, 20, 20), 2), ((1, 2, 4, 6, 8), (2, 1, 2))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_adaptive_max_pool_with_even_bins_matches_the_general_path(shape, out, dtype, rng, monkeypatch):
    """Whole, equal bins take the max pool's tiled scan (few cells) or one max and argmax per window (many):
    the values, indices and gradient are the general path's, ties to the first cell and NaN to the last."""
    from convkit.functional import pool as P
    x = rng.integers(-3, 3, shape).astype(dtype)           # many ties
    if dtype != np.int32:
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, flat.size // 7, replace=False)] = np.nan
    n = len(shape) - 2
    f = getattr(P, f"adaptive_max_pool{n}d")
    y, i = f(x, out, return_indices=True)
    g = rng.standard_normal(y.shape)
    gx = P.adaptive_max_pool_vjp(g, x, out)
    monkeypatch.setattr(P, "_even_bins", lambda *a: None)
    y0, i0 = f(x, out, return_indices=True)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(i, i0)
    assert i.dtype == i0.dtype
    np.testing.assert_array_equal(gx, P.adaptive_max_pool_vjp(g, x, out))
