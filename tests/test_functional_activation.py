"""Activations, erf and dropout: finite differences, PyTorch, dtypes, layouts and bad arguments."""
import math
import re
import warnings

import numpy as np
import pytest

from convkit.functional import activation as A
from helpers import check_grad_fd

# (name, keyword arguments, points where the derivative jumps: kept away from in finite differences)
ELEMENTWISE = [
    ("relu", {}, (0,)),
    ("relu6", {}, (0, 6)),
    ("leaky_relu", {}, (0,)),
    ("leaky_relu", dict(negative_slope=-0.3), (0,)),
    ("leaky_relu", dict(negative_slope=2.5), (0,)),
    ("elu", {}, (0,)),
    ("elu", dict(alpha=0.4), (0,)),
    ("elu", dict(alpha=-0.5), (0,)),
    ("selu", {}, (0,)),
    ("sigmoid", {}, ()),
    ("tanh", {}, ()),
    ("silu", {}, ()),
    ("softplus", {}, ()),
    ("softplus", dict(beta=2.0, threshold=3.0), (1.5,)),
    ("softplus", dict(beta=-0.5, threshold=1.0), (-2.0,)),
    ("gelu", {}, ()),
    ("gelu", dict(approximate="tanh"), ()),
    ("hardsigmoid", {}, (-3, 3)),
    ("hardswish", {}, (-3, 3)),
]
IDS = [f"{n}-{kw}" for n, kw, _ in ELEMENTWISE]


def _x(rng, shape, kinks=(), scale=4.0):
    x = rng.standard_normal(shape) * scale
    for k in kinks:  # finite differences straddling a kink measure neither side
        near = np.abs(x - k) < 1e-3
        x[near] += 1e-2
    return x


def _ops(name):
    return getattr(A, name), getattr(A, name + "_vjp")


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("name,kw,kinks", ELEMENTWISE, ids=IDS)
def test_elementwise_fd(name, kw, kinks, rng):
    f, vjp = _ops(name)
    x = _x(rng, (3, 4, 5), kinks)
    g = rng.standard_normal(x.shape)
    grad = vjp(g, x, **kw)
    check_grad_fd(lambda v: np.sum(f(v, **kw) * g), grad, x, rng)
    np.testing.assert_allclose(vjp(g, x, **kw, out=f(x, **kw)), grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), 1)])
def test_softmax_fd(op, shape, dim, rng):
    f, vjp = _ops(op)
    x = rng.standard_normal(shape) * 3
    g = rng.standard_normal(shape)
    grad = vjp(g, x, dim)
    check_grad_fd(lambda v: np.sum(f(v, dim) * g), grad, x, rng)
    np.testing.assert_allclose(vjp(g, x, dim, out=f(x, dim)), grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("wshape", [(), (1,), (3,)])
def test_prelu_fd(wshape, rng):
    x = _x(rng, (2, 3, 4), (0,))
    w = rng.standard_normal(wshape)
    g = rng.standard_normal(x.shape)
    gx, gw = A.prelu_vjp(g, x, w)
    assert gw.shape == w.shape
    check_grad_fd(lambda v: np.sum(A.prelu(v, w) * g), gx, x, rng)
    check_grad_fd(lambda v: np.sum(A.prelu(x, v) * g), gw, w, rng)


def test_dropout_fd(rng):
    x = rng.standard_normal((3, 4, 2, 2))
    g = rng.standard_normal(x.shape)
    for f in (A.dropout, A.dropout2d):
        _, mask = f(x, 0.4, generator=np.random.default_rng(5), return_mask=True)
        check_grad_fd(lambda v: np.sum(f(v, 0.4, generator=np.random.default_rng(5)) * g),
                      A.dropout_vjp(g, mask), x, rng)


# --------------------------------------------------------------------------- PyTorch

def _torch_fn(torch, name):
    F = torch.nn.functional
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh}.get(name) or getattr(F, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw,kinks", ELEMENTWISE, ids=IDS)
def test_elementwise_vs_torch(name, kw, kinks, dtype, torch, rng):
    f, vjp = _ops(name)
    x = (rng.standard_normal((4, 3, 5)) * 5).astype(dtype)
    x.flat[:6] = [-3, 0, 3, 6, -40, 40]  # kinks and tails
    g = rng.standard_normal(x.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_fn(torch, name)(xt, **kw)
    yt.backward(torch.tensor(g))
    y, gx = f(x, **kw), vjp(g, x, **kw)
    assert y.dtype == dtype and gx.dtype == dtype
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (2e-6, 2e-6)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    # PyTorch's hardsigmoid gradient uses float(1/6) even in float64
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=max(rtol, 1e-7 if name == "hardsigmoid" else 0), atol=atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_vs_torch(op, dtype, torch, rng):
    f, vjp = _ops(op)
    for shape, dim in [((4, 7), 1), ((2, 3, 4), 0), ((5,), -1), ((), 0)]:
        x = (rng.standard_normal(shape) * 10).astype(dtype)
        g = np.asarray(rng.standard_normal(shape)).astype(dtype)
        xt = torch.tensor(x, requires_grad=True)
        yt = getattr(torch.nn.functional, op)(xt, dim)
        yt.backward(torch.tensor(g))
        tol = 1e-12 if dtype == np.float64 else 2e-6
        y = f(x, dim)
        assert y.shape == shape and y.dtype == dtype
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(vjp(g, x, dim), xt.grad.numpy(), rtol=tol, atol=tol)


def test_softmax_extremes():
    x = np.array([[1000., 0., -1000.], [-np.inf, 0., 0.]])
    np.testing.assert_allclose(A.softmax(x, 1), [[1, 0, 0], [0, 0.5, 0.5]])
    np.testing.assert_allclose(A.log_softmax(x, 1), [[0, -1000, -2000], [-np.inf, -math.log(2), -math.log(2)]])
    assert A.softmax(np.zeros((2, 0)), 1).shape == (2, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xshape,wshape", [((2, 3, 4), (3,)), ((2, 3), (1,)), ((5,), (1,)), ((), ()), ((2, 3, 2, 2), ())])
def test_prelu_vs_torch(xshape, wshape, dtype, torch, rng):
    x = np.asarray(rng.standard_normal(xshape)).astype(dtype)
    w = np.asarray(rng.standard_normal(wshape)).astype(dtype)
    g = np.asarray(rng.standard_normal(xshape)).astype(dtype)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.prelu(xt, wt)
    yt.backward(torch.tensor(g))
    gx, gw = A.prelu_vjp(g, x, w)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(A.prelu(x, w), yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=tol, atol=tol)
    assert gx.dtype == dtype and gw.dtype == dtype and gw.shape == wshape


# --------------------------------------------------------------------------- erf

def test_erf_vs_math(rng):
    x = np.concatenate([rng.uniform(-6, 6, 5000), rng.standard_normal(2000) * 0.3, np.linspace(-30, 30, 3001),
                        [0.46875, -0.46875, 4.0, -4.0, np.nextafter(4.0, 5), 26.5, 1e-300, -1e-20, 5e-324, 0.0]])
    ref = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(A.erf(x), ref, rtol=1e-14, atol=0)
    refc = np.array([math.erfc(v) for v in x])
    keep = refc > 1e-300
    np.testing.assert_allclose(A._erfc(x)[keep], refc[keep], rtol=1e-14, atol=0)
    np.testing.assert_array_equal(A.erf(np.array([np.inf, -np.inf, 40.0, -40.0])), [1, -1, 1, -1])
    assert np.isnan(A.erf(np.array([np.nan]))[0])
    assert A.erf(0.5).shape == () and A.erf(np.float32(0.5)).dtype == np.float32


def test_erf_float32_and_float16(rng):
    x = rng.uniform(-5, 5, 4000).astype(np.float32)
    ref = np.array([math.erf(v) for v in x.astype(np.float64)])
    np.testing.assert_allclose(A.erf(x), ref, rtol=0, atol=5e-7)
    h = x.astype(np.float16)
    assert A.erf(h).dtype == np.float16
    np.testing.assert_allclose(A.erf(h).astype(np.float64), [math.erf(v) for v in h.astype(np.float64)], atol=1e-3)


def test_erf_vs_torch(torch, rng):
    x = rng.standard_normal(1000) * 3
    np.testing.assert_allclose(A.erf(x), torch.special.erf(torch.tensor(x)).numpy(), rtol=1e-14, atol=1e-16)


# --------------------------------------------------------------------------- dropout

def test_dropout_statistics_and_scale():
    x = np.ones((200, 500), np.float32)
    y, mask = A.dropout(x, 0.3, generator=np.random.default_rng(0), return_mask=True)
    assert y.dtype == mask.dtype == np.float32 and mask.shape == x.shape
    assert set(np.unique(mask)) == {0, np.float32(1 / 0.7)}
    assert abs((mask == 0).mean() - 0.3) < 0.01
    np.testing.assert_array_equal(y, x * mask)
    assert abs(y.mean() - 1) < 0.02


def test_dropout_edges():
    x = np.arange(6.0).reshape(2, 3)
    assert A.dropout(x, 0.7, training=False) is x
    y, mask = A.dropout(x, 0.7, training=False, return_mask=True)
    np.testing.assert_array_equal(A.dropout_vjp(np.ones_like(x), mask), np.ones_like(x))
    np.testing.assert_array_equal(A.dropout(x, 0.0), x)
    np.testing.assert_array_equal(A.dropout(x, 1.0), np.zeros_like(x))
    np.testing.assert_array_equal(A.dropout2d(np.ones((2, 3, 2, 2)), 1.0), np.zeros((2, 3, 2, 2)))
    a = A.dropout(x, 0.5, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a, A.dropout(x, 0.5, generator=np.random.default_rng(3)))
    assert A.dropout([1, 2], 0.5).dtype == np.float64
    np.testing.assert_array_equal(A.dropout_vjp(np.ones(2), None), np.ones(2))


@pytest.mark.parametrize("n,shape,mshape", [
    (1, (4, 6, 7), (4, 6, 1)), (1, (6, 7), (6, 1)), (2, (4, 6, 3, 3), (4, 6, 1, 1)), (2, (6, 3, 3), (6, 1, 1)),
    (3, (2, 6, 2, 2, 2), (2, 6, 1, 1, 1)), (3, (6, 2, 2, 2), (6, 1, 1, 1))])
def test_channel_dropout(n, shape, mshape):
    f = getattr(A, f"dropout{n}d")
    x = np.random.default_rng(1).standard_normal(shape) + 10
    y, mask = f(x, 0.5, generator=np.random.default_rng(2), return_mask=True)
    assert mask.shape == mshape
    assert set(np.unique(mask)) <= {0.0, 2.0}
    np.testing.assert_array_equal(y, x * mask)
    flat = y.reshape(mask.shape[:-n] + (-1,))
    assert np.all((flat == 0).all(-1) | (flat != 0).all(-1))  # whole channels go
    g = np.ones(shape)
    np.testing.assert_array_equal(A.dropout_vjp(g, mask), np.broadcast_to(mask, shape))


def test_channel_dropout_rate():
    mask = A.dropout2d(np.ones((100, 100, 1, 1)), 0.25, generator=np.random.default_rng(0), return_mask=True)[1]
    assert abs((mask == 0).mean() - 0.25) < 0.02


# --------------------------------------------------------------------------- dtypes and layouts

@pytest.mark.parametrize("name,kw,kinks", ELEMENTWISE, ids=IDS)
def test_dtypes_layouts(name, kw, kinks, rng):
    f, vjp = _ops(name)
    base = rng.standard_normal((6, 8)) * 3
    x = base[::2, 1::3].T  # non-contiguous
    x.flags.writeable = False
    g = rng.standard_normal(x.shape)
    before = x.copy()
    np.testing.assert_array_equal(f(x, **kw), f(np.ascontiguousarray(x), **kw))
    np.testing.assert_array_equal(vjp(g, x, **kw), vjp(g, np.ascontiguousarray(x), **kw))
    np.testing.assert_array_equal(x, before)
    x32 = x.astype(np.float32)
    assert f(x32, **kw).dtype == np.float32 and vjp(g.astype(np.float32), x32, **kw).dtype == np.float32
    assert f(np.arange(3), **kw).dtype == np.float64
    y0 = f(1.5, **kw)  # unbatched all the way down: a 0-d input gives a 0-d array
    assert isinstance(y0, np.ndarray) and y0.shape == ()
    np.testing.assert_allclose(y0, f(np.array([1.5]), **kw)[0])
    np.testing.assert_allclose(vjp(2.0, 1.5, **kw), vjp(np.array([2.0]), np.array([1.5]), **kw)[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("name,kw,kinks", ELEMENTWISE + [("erf", {}, ())], ids=IDS + ["erf"])
def test_blocked_kernels_are_bitwise_the_whole_array_ones(name, kw, kinks, dtype, rng, monkeypatch):
    """Large inputs run in blocks on convkit's threads (activation._blockwise): the same bits as one pass over
    the whole array, with ragged last blocks, specials and the forward's out given or not."""
    x = (rng.standard_normal(1203) * 6).astype(dtype)     # more than _LIGHT_BLOCKS blocks of 64
    x[[3, 500, 1001]] = [np.inf, -np.inf, np.nan]
    g = rng.standard_normal(1203).astype(dtype)
    f, vjp = getattr(A, name), getattr(A, name + "_vjp", None)
    calls = [lambda: f(x, **kw)]
    if vjp is not None:
        calls += [lambda: vjp(g, x, **kw), lambda: vjp(g, x, **kw, out=f(x, **kw))]
    # the caller's error handling holds on convkit's threads too: nothing warns (it would raise here)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(A, "_BLOCK", 10**9)
        whole = [c() for c in calls]
        monkeypatch.setattr(A, "_BLOCK", 64)
        blocked = [c() for c in calls]
    for a, b in zip(blocked, whole):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_in_blocks_is_bitwise_the_whole(op, dim, rng, monkeypatch):
    """Softmax and log_softmax (and their vjps, with and without out) over blocks of the first dim, on
    convkit's threads (activation._along), give the whole-array bits."""
    x = (rng.standard_normal((7, 5, 3)) * 30).astype(np.float32)
    x[2, 1, 0] = np.inf
    g = rng.standard_normal(x.shape).astype(np.float32)
    f, vjp = getattr(A, op), getattr(A, op + "_vjp")

    def run():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("error")       # the caller's error handling holds on the threads too
            y = f(x, dim)
            return [y, vjp(g, x, dim), vjp(g, x, dim, out=y)]
    monkeypatch.setattr(A, "_ALONG_BLOCK_BYTES", 10**9)
    whole = run()
    monkeypatch.setattr(A, "_ALONG_BLOCK_BYTES", 1)
    for a, e in zip(run(), whole):
        np.testing.assert_array_equal(a, e)


def test_softmax_layouts(rng):
    x = rng.standard_normal((5, 6))[:, ::2]
    x.flags.writeable = False
    np.testing.assert_allclose(A.softmax(x, 0), A.softmax(np.ascontiguousarray(x), 0))
    np.testing.assert_allclose(A.softmax(2.0, 0), 1.0)
    assert A.softmax(x.astype(np.float32), 1).dtype == np.float32


# --------------------------------------------------------------------------- bad arguments

BAD = [
    (lambda: A.relu("abc"), TypeError, r"relu: input must be a NumPy array or array-like of real numbers; got input of type str"),
    (lambda: A.relu(object()), TypeError, r"relu: input must be a NumPy array"),
    (lambda: A.relu_vjp(np.ones(3), np.ones(2)), ValueError, r"relu_vjp: grad_out\.shape must equal input\.shape \(2,\); got grad_out\.shape=\(3,\)"),
    (lambda: A.sigmoid_vjp(np.ones(2), np.ones(2), out=np.ones(3)), ValueError, r"sigmoid_vjp: out\.shape must equal"),
    (lambda: A.leaky_relu(np.ones(2), "0.1"), TypeError, r"leaky_relu: negative_slope must be a real number; got negative_slope='0\.1'"),
    (lambda: A.elu(np.ones(2), alpha=np.nan), ValueError, r"elu: alpha must be a finite number"),
    (lambda: A.softplus(np.ones(2), beta=0), ValueError, r"softplus: beta must be nonzero; got beta=0"),
    (lambda: A.gelu(np.ones(2), approximate="erf"), ValueError, r"gelu: approximate must be 'none' or 'tanh'; got approximate='erf'"),
    (lambda: A.gelu(np.ones(2), approximate=None), ValueError, r"gelu: approximate must be"),
    (lambda: A.softmax(np.ones((2, 3)), 2), ValueError, r"softmax: dim must be in \[-2, 2\) for input\.ndim=2; got dim=2"),
    (lambda: A.log_softmax(np.ones((2, 3)), 1.0), TypeError, r"log_softmax: dim must be an int; got dim=1\.0"),
    (lambda: A.softmax_vjp(np.ones(3), np.ones(3), -2), ValueError, r"softmax_vjp: dim must be in \[-1, 1\)"),
    (lambda: A.prelu(np.ones((2, 3)), np.ones(2)), ValueError, r"prelu: weight must have 1 or input\.shape\[1\] = 3 elements.*got weight\.shape=\(2,\) and input\.shape=\(2, 3\)"),
    (lambda: A.prelu(np.ones(3), np.ones(3)), ValueError, r"prelu: weight must have 1 or input\.shape\[1\] = 1 elements"),
    (lambda: A.prelu(np.ones((2, 3)), np.ones((3, 1))), ValueError, r"prelu: weight\.ndim must be 0 or 1"),
    (lambda: A.dropout(np.ones(2), 1.5), ValueError, r"dropout: p must be in \[0, 1\]; got p=1\.5"),
    (lambda: A.dropout(np.ones(2), "0.5"), TypeError, r"dropout: p must be a real number"),
    (lambda: A.dropout(np.ones(2), 0.5, training=1), TypeError, r"dropout: training must be a bool; got training=1"),
    (lambda: A.dropout(np.ones(2), return_mask="yes"), TypeError, r"dropout: return_mask must be a bool"),
    (lambda: A.dropout(np.ones(2), generator=np.random.RandomState(0)), TypeError,
     r"dropout: generator must be a numpy\.random\.Generator or None; got generator of type RandomState"),
    (lambda: A.dropout2d(np.ones((2, 3)), 0.5), ValueError, r"dropout2d: input\.ndim must be 3 or 4 for \(N, C, H, W\) or \(C, H, W\); got input\.ndim=2"),
    (lambda: A.dropout1d(np.ones(3), 0.5), ValueError, r"dropout1d: input\.ndim must be 2 or 3"),
    (lambda: A.dropout3d(np.ones((2, 2, 2)), 0.5), ValueError, r"dropout3d: input\.ndim must be 4 or 5"),
    (lambda: A.dropout_vjp(np.ones((2, 3)), np.ones((3, 1))), ValueError, r"dropout_vjp: mask\.shape must broadcast to grad_out\.shape \(2, 3\); got mask\.shape=\(3, 1\)"),
    (lambda: A.erf(np.array(["a"])), TypeError, r"erf: input must have a real"),
]


@pytest.mark.parametrize("call,exc,pattern", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_error_format():
    with pytest.raises(ValueError) as e:
        A.dropout(np.ones(2), -0.1)
    assert re.fullmatch(r"dropout: p must be in \[0, 1\]; got p=-0\.1\.", str(e.value))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, 3000])
def test_gelu_through_autograd_keeps_its_erf_term_bitwise(approximate, dtype, n, rng, monkeypatch):
    """Through autograd gelu keeps erfc(-x/sqrt 2) (or its tanh term) for the backward, which then makes no
    erf: output and gradient are bitwise gelu's and gelu_vjp's (3000 values run in blocks of 64)."""
    import convkit
    import convkit.functional as F
    monkeypatch.setattr(A, "_BLOCK", 64)
    x = (rng.standard_normal(n) * 4).astype(dtype)
    x[:3] = [np.inf, -np.inf, 0.0]
    g = rng.standard_normal(n).astype(dtype)
    xt = convkit.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        y = F.gelu(xt, approximate=approximate)
        np.testing.assert_array_equal(y.data, A.gelu(x, approximate))
        made = []
        core = A._gelu_core
        monkeypatch.setattr(A, "_gelu_core", lambda *a, **k: made.append(1) or core(*a, **k))
        y.backward(g)
        assert made == []
        monkeypatch.undo()
        np.testing.assert_array_equal(xt.grad.data, A.gelu_vjp(g, x, approximate))
