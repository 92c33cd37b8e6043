"""Losses: finite differences, every cross-entropy option against PyTorch, layouts and bad arguments."""
import itertools

import numpy as np
import pytest

from convkit.functional import loss as L
from helpers import check_grad_fd

REDUCTIONS = ["none", "mean", "sum"]
# (input shape, class dim): 2-d, unbatched, K-dim
SHAPES = [((5, 4), 1), ((4,), 0), ((3, 4, 2, 3), 1)]


def _case(rng, shape, cdim, dtype=np.float64, ignore_index=-100):
    """logits, index targets (one ignored, when there is room), probability targets, class weights."""
    c = shape[cdim]
    tshape = shape[:cdim] + shape[cdim + 1:]
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    t = np.asarray(rng.integers(0, c, tshape))
    if t.size > 1:
        t.flat[0] = ignore_index
    p = rng.dirichlet(np.ones(c), size=max(t.size, 1)).reshape(tshape + (c,))
    p = np.moveaxis(p, -1, cdim).astype(dtype)
    w = rng.uniform(0.2, 2.0, c).astype(dtype)
    return x, t, p, w


def _grad_out(rng, loss, reduction):
    return rng.standard_normal(loss.shape) if reduction == "none" else np.asarray(rng.standard_normal())


# --------------------------------------------------------------------------- gradients

CE_OPTIONS = list(itertools.product(REDUCTIONS, [False, True], [0.0, 0.25], ["index", "prob"]))


@pytest.mark.parametrize("shape,cdim", SHAPES)
@pytest.mark.parametrize("reduction,weighted,eps,kind", CE_OPTIONS)
def test_cross_entropy_fd(shape, cdim, reduction, weighted, eps, kind, rng):
    x, t, p, w = _case(rng, shape, cdim)
    kw = dict(weight=w if weighted else None, reduction=reduction, label_smoothing=eps)
    target = t if kind == "index" else p
    g = _grad_out(rng, L.cross_entropy(x, target, **kw), reduction)
    grad = L.cross_entropy_vjp(g, x, target, **kw)
    assert grad.shape == x.shape
    check_grad_fd(lambda v: np.sum(L.cross_entropy(v, target, **kw) * g), grad, x, rng)


@pytest.mark.parametrize("shape,cdim", SHAPES)
@pytest.mark.parametrize("reduction,weighted", itertools.product(REDUCTIONS, [False, True]))
def test_nll_loss_fd(shape, cdim, reduction, weighted, rng):
    x, t, _, w = _case(rng, shape, cdim)
    kw = dict(weight=w if weighted else None, reduction=reduction, ignore_index=3)
    t = np.where(t == -100, 3, t)
    g = _grad_out(rng, L.nll_loss(x, t, **kw), reduction)
    check_grad_fd(lambda v: np.sum(L.nll_loss(v, t, **kw) * g), L.nll_loss_vjp(g, x, t, **kw), x, rng)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_fd(name, reduction, rng):
    f, vjp = getattr(L, name), getattr(L, name + "_vjp")
    x, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    g = _grad_out(rng, f(x, t, reduction), reduction)
    gx, gt = vjp(g, x, t, reduction)
    check_grad_fd(lambda v: np.sum(f(v, t, reduction) * g), gx, x, rng)
    check_grad_fd(lambda v: np.sum(f(x, v, reduction) * g), gt, t, rng)


BCE_WEIGHTS = [(None, None), ((3, 1), None), (None, (4,)), ((4,), (3, 4))]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wshape,pwshape", BCE_WEIGHTS)
def test_bce_fd(reduction, wshape, pwshape, rng):
    x = rng.standard_normal((3, 4)) * 3
    t = rng.uniform(0, 1, (3, 4))
    w = None if wshape is None else rng.uniform(0.2, 2, wshape)
    pw = None if pwshape is None else rng.uniform(0.2, 3, pwshape)
    kw = dict(weight=w, reduction=reduction, pos_weight=pw)
    f, vjp = L.binary_cross_entropy_with_logits, L.binary_cross_entropy_with_logits_vjp
    g = _grad_out(rng, f(x, t, **kw), reduction)
    check_grad_fd(lambda v: np.sum(f(v, t, **kw) * g), vjp(g, x, t, **kw), x, rng)
    prob = rng.uniform(0.05, 0.95, (3, 4))
    kw = dict(weight=w, reduction=reduction)
    f, vjp = L.binary_cross_entropy, L.binary_cross_entropy_vjp
    check_grad_fd(lambda v: np.sum(f(v, t, **kw) * g), vjp(g, prob, t, **kw), prob, rng)


# --------------------------------------------------------------------------- PyTorch

def _torch_loss(torch, name, args, kw, g):
    ts = [torch.tensor(a, requires_grad=i == 0 or name in ("mse_loss", "l1_loss")) for i, a in enumerate(args)]
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    y = getattr(torch.nn.functional, name)(*ts, **tkw)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), [t.grad.numpy() if t.grad is not None else None for t in ts]


def _tol(dtype):
    return dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,cdim", SHAPES)
def test_cross_entropy_vs_torch(shape, cdim, dtype, torch, rng):
    for reduction, weighted, eps, kind, ignore_index in itertools.product(
            REDUCTIONS, [False, True], [0.0, 0.3, 1.0], ["index", "prob"], [-100, 2]):
        if kind == "prob" and ignore_index >= 0:
            continue
        x, t, p, w = _case(rng, shape, cdim, dtype, ignore_index)
        target = t if kind == "index" else p
        kw = dict(weight=w if weighted else None, ignore_index=ignore_index, reduction=reduction,
                  label_smoothing=eps)
        y = L.cross_entropy(x, target, **kw)
        g = _grad_out(rng, y, reduction).astype(dtype)
        yt, (gt, _) = _torch_loss(torch, "cross_entropy", (x, target), kw, g)
        gx = L.cross_entropy_vjp(g, x, target, **kw)
        assert y.dtype == gx.dtype == dtype and y.shape == yt.shape, (y.dtype, gx.dtype, y.shape, yt.shape)
        np.testing.assert_allclose(y, yt, **_tol(dtype), err_msg=str(kw))
        np.testing.assert_allclose(gx, gt, **_tol(dtype), err_msg=str(kw))
        if kind == "index":
            lp = torch.log_softmax(torch.tensor(x), cdim).numpy()
            nkw = dict(weight=kw["weight"], ignore_index=ignore_index, reduction=reduction)
            yt, (gt, _) = _torch_loss(torch, "nll_loss", (lp, t), nkw, g)
            np.testing.assert_allclose(L.nll_loss(lp, t, **nkw), yt, **_tol(dtype))
            np.testing.assert_allclose(L.nll_loss_vjp(g, lp, t, **nkw), gt, **_tol(dtype))


def test_cross_entropy_all_ignored(torch):
    x = np.random.default_rng(0).standard_normal((3, 4))
    t = np.full(3, -100)
    for eps in (0.0, 0.2):
        y = L.cross_entropy(x, t, label_smoothing=eps)
        assert np.isnan(y) and np.isnan(torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t)).item())
        np.testing.assert_array_equal(L.cross_entropy_vjp(1.0, x, t, label_smoothing=eps), np.zeros((3, 4)))
    np.testing.assert_array_equal(L.nll_loss_vjp(1.0, x, t), np.zeros((3, 4)))
    np.testing.assert_array_equal(L.cross_entropy(x, t, reduction="sum"), 0.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_other_losses_vs_torch(dtype, torch, rng):
    x = (rng.standard_normal((4, 3, 5)) * 3).astype(dtype)
    t = rng.standard_normal(x.shape).astype(dtype)
    tb = rng.uniform(0, 1, x.shape).astype(dtype)
    prob = rng.uniform(0, 1, x.shape).astype(dtype)
    prob.flat[:2] = [0, 1]  # the log clamp and the gradient's guard
    w = rng.uniform(0.1, 2, (3, 1)).astype(dtype)
    pw = rng.uniform(0.1, 3, (5,)).astype(dtype)
    cases = [("mse_loss", (x, t), {}), ("l1_loss", (x, t), {}),
             ("binary_cross_entropy_with_logits", (x, tb), {}),
             ("binary_cross_entropy_with_logits", (x, tb), dict(weight=w, pos_weight=pw)),
             ("binary_cross_entropy", (prob, tb), {}), ("binary_cross_entropy", (prob, tb), dict(weight=w))]
    for (name, args, kw), reduction in itertools.product(cases, REDUCTIONS):
        kw = dict(kw, reduction=reduction)
        y = getattr(L, name)(*args, **kw)
        g = _grad_out(rng, y, reduction).astype(dtype)
        grads = getattr(L, name + "_vjp")(g, *args, **kw)
        grads = grads if isinstance(grads, tuple) else (grads,)
        yt, gts = _torch_loss(torch, name, args, kw, g)
        assert y.dtype == dtype and all(a.dtype == dtype for a in grads)
        np.testing.assert_allclose(y, yt, **_tol(dtype), err_msg=name)
        for a, b in zip(grads, gts):
            scale = max(1.0, np.abs(b).max())  # the BCE guard makes gradients of 1e11 at 0 and 1
            np.testing.assert_allclose(a / scale, b / scale, **_tol(dtype), err_msg=name)


# --------------------------------------------------------------------------- shapes, dtypes, layouts

def test_reductions_shapes(rng):
    x, t, p, _ = _case(rng, (3, 4, 2, 3), 1)
    assert L.cross_entropy(x, t, reduction="none").shape == (3, 2, 3)
    assert L.cross_entropy(x, p, reduction="none").shape == (3, 2, 3)
    assert L.cross_entropy(x, t).shape == ()
    assert L.cross_entropy(x[:, :, 0, 0].T[0], np.array(2), reduction="none").shape == ()
    np.testing.assert_allclose(L.cross_entropy(np.zeros(4), np.array(1)), np.log(4))
    np.testing.assert_allclose(L.mse_loss(np.zeros((0, 3)), np.zeros((0, 3)), reduction="sum"), 0.0)
    assert np.isnan(L.mse_loss(np.zeros((0, 3)), np.zeros((0, 3))))


def test_layouts_and_dtypes(rng):
    base = rng.standard_normal((8, 6))
    x = base[::2, ::2]  # (4, 3), non-contiguous
    x.flags.writeable = False
    t = np.array([0, 2, 1, 2], dtype=np.uint8)
    t.flags.writeable = False
    before = x.copy()
    xc = np.ascontiguousarray(x)
    np.testing.assert_array_equal(L.cross_entropy(x, t, label_smoothing=0.1), L.cross_entropy(xc, t, label_smoothing=0.1))
    np.testing.assert_array_equal(L.cross_entropy_vjp(1.0, x, t), L.cross_entropy_vjp(1.0, xc, t))
    np.testing.assert_array_equal(x, before)
    x32 = x.astype(np.float32)
    assert L.cross_entropy(x32, t, weight=np.ones(3, np.float32), label_smoothing=0.1).dtype == np.float32
    assert L.cross_entropy_vjp(np.float32(1), x32, t).dtype == np.float32
    assert L.mse_loss(x32, np.zeros((4, 3), np.int64)).dtype == np.float32  # int targets take the input's dtype
    gx, gt = L.mse_loss_vjp(1.0, x32, np.zeros((4, 3), np.float32))
    assert gx.dtype == gt.dtype == np.float32
    assert L.binary_cross_entropy_with_logits(x32, np.ones((4, 3), np.float32), pos_weight=np.ones(3, np.float32)).dtype == np.float32
    assert L.l1_loss([1, 2], [0, 0]).dtype == np.float64


def test_stability():
    x = np.array([1000., -1000., 0.])
    t = np.array([0., 1., 1.])
    y = L.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(y, [1000, 1000, np.log(2)])
    np.testing.assert_allclose(L.binary_cross_entropy(np.array([0., 1.]), np.array([1., 0.]), reduction="none"), [100, 100])
    assert np.isfinite(L.cross_entropy(np.array([[1e4, -1e4]]), np.array([1])))


# --------------------------------------------------------------------------- bad arguments

X, T = np.zeros((3, 4)), np.array([0, 1, 2])
BAD = [
    (lambda: L.cross_entropy(X, np.array([0, 1, 4])), ValueError,
     r"cross_entropy: target values must be class indices in \[0, 4\) or ignore_index=-100; got target value 4\."),
    (lambda: L.cross_entropy(X, np.array([0, -1, 2])), ValueError, r"got target value -1\."),
    (lambda: L.nll_loss(X, np.array([0, 1, 9]), ignore_index=9), None, None),
    (lambda: L.cross_entropy(X, np.array([0, 1])), ValueError,
     r"cross_entropy: target\.shape must equal input\.shape without the class dim \(3,\); got target\.shape=\(2,\)"),
    (lambda: L.cross_entropy(X, np.zeros(3)), TypeError,
     r"cross_entropy: target must be class indices \(an integer array of shape \(3,\)\) or class probabilities "
     r"\(a float array of shape \(3, 4\)\); got target\.shape=\(3,\), target\.dtype=float64"),
    (lambda: L.cross_entropy(X, np.zeros((3, 4), bool)), TypeError, r"cross_entropy: target must be class indices"),
    (lambda: L.cross_entropy(X, np.zeros((3, 4)), ignore_index=0), ValueError,
     r"cross_entropy: ignore_index must be negative \(unsupported\) for class-probability targets; got ignore_index=0"),
    (lambda: L.cross_entropy(X, T, weight=np.ones(3)), ValueError,
     r"cross_entropy: weight\.shape must be \(C,\) = \(4,\); got weight\.shape=\(3,\)"),
    (lambda: L.cross_entropy(X, T, reduction="avg"), ValueError,
     r"cross_entropy: reduction must be 'none', 'mean' or 'sum'; got reduction='avg'"),
    (lambda: L.cross_entropy(X, T, label_smoothing=1.5), ValueError, r"cross_entropy: label_smoothing must be in \[0, 1\]; got label_smoothing=1\.5"),
    (lambda: L.cross_entropy(X, T, ignore_index=1.5), TypeError, r"cross_entropy: ignore_index must be an int; got ignore_index=1\.5"),
    (lambda: L.cross_entropy(np.float64(1), np.array(0)), ValueError, r"cross_entropy: input\.ndim must be >= 1"),
    (lambda: L.cross_entropy_vjp(np.ones(3), X, T), ValueError,
     r"cross_entropy_vjp: grad_out\.shape must equal the loss shape \(\); got grad_out\.shape=\(3,\)"),
    (lambda: L.cross_entropy_vjp(np.ones(2), X, T, reduction="none"), ValueError,
     r"grad_out\.shape must equal the loss shape \(3,\); got grad_out\.shape=\(2,\)"),
    (lambda: L.nll_loss(X, np.zeros(3)), TypeError, r"nll_loss: target must have an integer dtype \(class indices\); got target\.dtype=float64"),
    (lambda: L.mse_loss(np.zeros((3, 1)), np.zeros(3)), ValueError,
     r"mse_loss: target\.shape must equal input\.shape \(3, 1\); got target\.shape=\(3,\)"),
    (lambda: L.l1_loss(X, "x"), TypeError, r"l1_loss: target must be a NumPy array"),
    (lambda: L.binary_cross_entropy(np.array([1.5]), np.array([1.])), ValueError,
     r"binary_cross_entropy: input values must be probabilities in \[0, 1\]; got input value 1\.5"),
    (lambda: L.binary_cross_entropy(np.array([np.nan]), np.array([1.])), ValueError, r"got input value nan"),
    (lambda: L.binary_cross_entropy(np.array([0.5]), np.array([2.])), ValueError, r"target values must be probabilities"),
    (lambda: L.binary_cross_entropy_with_logits(X, X, weight=np.ones(3)), ValueError,
     r"binary_cross_entropy_with_logits: weight\.shape must broadcast to input\.shape \(3, 4\); got weight\.shape=\(3,\)"),
    (lambda: L.binary_cross_entropy_with_logits(X, X, pos_weight=np.ones((2, 3, 4))), ValueError, r"pos_weight\.shape must broadcast"),
]


@pytest.mark.parametrize("call,exc,pattern", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments(call, exc, pattern):
    if exc is None:  # a target equal to ignore_index may lie outside [0, C)
        call()
        return
    with pytest.raises(exc, match=pattern):
        call()
