"""Normalisation: finite differences, PyTorch (outputs, gradients, running stats), layouts and bad arguments."""
import itertools

import numpy as np
import pytest

from convkit.functional import norm as N
from helpers import check_grad_fd

SHAPES = [(4, 3), (4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 2, 3)]


def _params(rng, c, dtype=np.float64):
    w = rng.uniform(0.5, 2, c).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    rm = rng.standard_normal(c).astype(dtype)
    rv = rng.uniform(0.5, 2, c).astype(dtype)
    return w, b, rm, rv


def _check_all(rng, f, vjp, x, w, b):
    """Finite differences w.r.t. x, weight and bias, for f(x, w, b) and vjp(g, x, w, b) -> (gx, gw, gb)."""
    g = rng.standard_normal(x.shape)
    gx, gw, gb = vjp(g, x, w, b)
    check_grad_fd(lambda v: np.sum(f(v, w, b) * g), gx, x, rng)
    if w is None:
        assert gw is None and gb is None
        return
    check_grad_fd(lambda v: np.sum(f(x, v, b) * g), gw, w, rng)
    check_grad_fd(lambda v: np.sum(f(x, w, v) * g), gb, b, rng)


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training,affine", itertools.product([True, False], [True, False]))
def test_batch_norm_fd(shape, training, affine, rng):
    x = rng.standard_normal(shape) * 2 + 1
    w, b, rm, rv = _params(rng, shape[1])
    w, b = (w, b) if affine else (None, None)
    rm0, rv0 = rm.copy(), rv.copy()
    _check_all(rng, lambda v, w_, b_: N.batch_norm(v, None if training else rm, None if training else rv, w_, b_,
                                                   training, 0.1, 1e-3),
               lambda g, v, w_, b_: N.batch_norm_vjp(g, v, rm, rv, w_, b_, training, 0.1, 1e-3), x, w, b)
    np.testing.assert_array_equal(rm, rm0)  # the vjp never writes the running stats
    np.testing.assert_array_equal(rv, rv0)


@pytest.mark.parametrize("shape,ns", [((4, 5), (5,)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((6,), 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_fd(shape, ns, affine, rng):
    x = rng.standard_normal(shape) * 2 + 1
    wshape = (ns,) if isinstance(ns, int) else ns
    w = rng.uniform(0.5, 2, wshape) if affine else None
    b = rng.standard_normal(wshape) if affine else None
    _check_all(rng, lambda v, w_, b_: N.layer_norm(v, ns, w_, b_, 1e-3),
               lambda g, v, w_, b_: N.layer_norm_vjp(g, v, ns, w_, b_, 1e-3), x, w, b)


@pytest.mark.parametrize("shape,groups", [((2, 6), 3), ((2, 6, 5), 2), ((2, 6, 3, 4), 6), ((1, 4, 3, 2, 2), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_fd(shape, groups, affine, rng):
    x = rng.standard_normal(shape) * 2 + 1
    w, b, _, _ = _params(rng, shape[1])
    w, b = (w, b) if affine else (None, None)
    _check_all(rng, lambda v, w_, b_: N.group_norm(v, groups, w_, b_, 1e-3),
               lambda g, v, w_, b_: N.group_norm_vjp(g, v, groups, w_, b_, 1e-3), x, w, b)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 2, 3)])
@pytest.mark.parametrize("use_input_stats,affine", itertools.product([True, False], [True, False]))
def test_instance_norm_fd(shape, use_input_stats, affine, rng):
    x = rng.standard_normal(shape) * 2 + 1
    w, b, rm, rv = _params(rng, shape[1])
    w, b = (w, b) if affine else (None, None)
    rs = (None, None) if use_input_stats else (rm, rv)
    _check_all(rng, lambda v, w_, b_: N.instance_norm(v, *rs, w_, b_, use_input_stats, 0.1, 1e-3),
               lambda g, v, w_, b_: N.instance_norm_vjp(g, v, *rs, w_, b_, use_input_stats, 0.1, 1e-3), x, w, b)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("shape", [(2, 5, 3), (1, 4, 2, 3)])
def test_lrn_fd(size, shape, rng):
    x = rng.standard_normal(shape) * 2
    g = rng.standard_normal(shape)
    kw = dict(alpha=0.3, beta=0.7, k=1.2)
    check_grad_fd(lambda v: np.sum(N.local_response_norm(v, size, **kw) * g),
                  N.local_response_norm_vjp(g, x, size, **kw), x, rng)


# --------------------------------------------------------------------------- PyTorch

def _tol(dtype):
    return dict(rtol=1e-11, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=2e-5)


def _torch_run(torch, fn, x, g, *grads_of, **kw):
    """Run a torch function; returns (output, grad of x, grads of the named extra tensors)."""
    xt = torch.tensor(x, requires_grad=True)
    extra = [None if a is None else torch.tensor(a, requires_grad=True) for a in grads_of]
    y = fn(xt, *extra, **kw)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), xt.grad.numpy(), [None if e is None else e.grad.numpy() for e in extra]


def _same(ours, theirs, dtype):
    for a, b in zip(ours, theirs):
        if b is None:
            assert a is None
        else:
            assert a.dtype == dtype
            np.testing.assert_allclose(a, b, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_vs_torch(shape, dtype, torch, rng):
    x = (rng.standard_normal(shape) * 2 + 5).astype(dtype)
    w, b, rm, rv = _params(rng, shape[1], dtype)
    for training, affine, momentum in itertools.product([True, False], [True, False], [0.1, 0.7]):
        W, B = (w, b) if affine else (None, None)
        ours_rm, ours_rv, t_rm, t_rv = rm.copy(), rv.copy(), torch.tensor(rm), torch.tensor(rv)
        g = rng.standard_normal(shape).astype(dtype)
        yt, gxt, (gwt, gbt) = _torch_run(torch, lambda v, w_, b_: torch.nn.functional.batch_norm(
            v, t_rm, t_rv, w_, b_, training, momentum, 1e-3), x, g, W, B)
        y = N.batch_norm(x, ours_rm, ours_rv, W, B, training, momentum, 1e-3)
        _same([y, ours_rm, ours_rv], [yt, t_rm.numpy(), t_rv.numpy()], dtype)
        _same(N.batch_norm_vjp(g, x, ours_rm, ours_rv, W, B, training, momentum, 1e-3), [gxt, gwt, gbt], dtype)


def test_float32_large_offset(torch, rng):
    """A large mean over a small spread: float32 stays within ~1e-6 of the float64 answer
    (the float32 mean alone is off by up to 3e-5 here, 3e-3 of a standard deviation; PyTorch's
    own float32 result is off by about that much, so it is compared loosely)."""
    x = (rng.standard_normal((64, 4, 8, 8)) * 0.01 + 1000).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    for f, vjp in [(lambda v: N.batch_norm(v, None, None, training=True),
                    lambda g_, v: N.batch_norm_vjp(g_, v, None, None, training=True)[0]),
                   (lambda v: N.layer_norm(v, (4, 8, 8)), lambda g_, v: N.layer_norm_vjp(g_, v, (4, 8, 8))[0]),
                   (lambda v: N.group_norm(v, 2), lambda g_, v: N.group_norm_vjp(g_, v, 2)[0])]:
        np.testing.assert_allclose(f(x), f(x64), atol=2e-6)
        gx64 = vjp(g64, x64)
        np.testing.assert_allclose(vjp(g, x) / np.abs(gx64).max(), gx64 / np.abs(gx64).max(), atol=2e-6)
    yt = torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True).numpy()
    np.testing.assert_allclose(N.batch_norm(x, None, None, training=True), yt, atol=2e-2)


def test_float32_long_rows(rng):
    """Float32 statistics over long rows (40,000 cells a plane, each row summed in float32 first) stay
    within the float32 output's rounding of the float64 answer."""
    x = (rng.standard_normal((4, 3, 200, 200)) * 2 + 5).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    for f, vjp in [(lambda v: N.batch_norm(v, None, None, training=True),
                    lambda g_, v: N.batch_norm_vjp(g_, v, None, None, training=True)),
                   (lambda v: N.group_norm(v, 3), lambda g_, v: N.group_norm_vjp(g_, v, 3))]:
        np.testing.assert_allclose(f(x), f(x64), atol=2e-6)
        for a, e in zip(vjp(g, x), vjp(g64, x64)):
            if e is not None:
                np.testing.assert_allclose(a / np.abs(e).max(), e / np.abs(e).max(), atol=2e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES[1:])
def test_layer_group_instance_vs_torch(shape, dtype, torch, rng):
    F = torch.nn.functional
    x = (rng.standard_normal(shape) * 2 + 5).astype(dtype)
    c = shape[1]
    w, b, rm, rv = _params(rng, c, dtype)
    for ns, affine in itertools.product([shape[-1:], shape[1:]], [True, False]):
        W = rng.uniform(0.5, 2, ns).astype(dtype) if affine else None
        B = rng.standard_normal(ns).astype(dtype) if affine else None
        g = rng.standard_normal(shape).astype(dtype)
        yt, gxt, gwb = _torch_run(torch, lambda v, w_, b_: F.layer_norm(v, ns, w_, b_, 1e-4), x, g, W, B)
        _same([N.layer_norm(x, ns, W, B, 1e-4)], [yt], dtype)
        _same(N.layer_norm_vjp(g, x, ns, W, B, 1e-4), [gxt, *gwb], dtype)
    for groups, affine in itertools.product([1, c], [True, False]):
        W, B = (w, b) if affine else (None, None)
        g = rng.standard_normal(shape).astype(dtype)
        yt, gxt, gwb = _torch_run(torch, lambda v, w_, b_: F.group_norm(v, groups, w_, b_, 1e-4), x, g, W, B)
        _same([N.group_norm(x, groups, W, B, 1e-4)], [yt], dtype)
        _same(N.group_norm_vjp(g, x, groups, W, B, 1e-4), [gxt, *gwb], dtype)
    for use, affine, stats in itertools.product([True, False], [True, False], [True, False]):
        if not use and not stats:
            continue
        W, B = (w, b) if affine else (None, None)
        ours = (rm.copy(), rv.copy()) if stats else (None, None)
        theirs = (torch.tensor(rm), torch.tensor(rv)) if stats else (None, None)
        g = rng.standard_normal(shape).astype(dtype)
        yt, gxt, gwb = _torch_run(torch, lambda v, w_, b_: F.instance_norm(v, *theirs, w_, b_, use, 0.3, 1e-4),
                                  x, g, W, B)
        _same([N.instance_norm(x, *ours, W, B, use, 0.3, 1e-4)], [yt], dtype)
        if stats:
            _same(ours, [t.numpy() for t in theirs], dtype)
        _same(N.instance_norm_vjp(g, x, *ours, W, B, use, 0.3, 1e-4), [gxt, *gwb], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(2, 6, 5), (2, 5, 3, 4), (1, 4, 2, 2, 3)])
def test_lrn_vs_torch(shape, dtype, torch, rng):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    for size, (alpha, beta, k) in itertools.product([1, 2, 3, 5, 8], [(1e-4, 0.75, 1.0), (0.5, 0.6, 0.5)]):
        g = rng.standard_normal(shape).astype(dtype)
        yt, gxt, _ = _torch_run(torch, lambda v: torch.nn.functional.local_response_norm(v, size, alpha, beta, k), x, g)
        _same([N.local_response_norm(x, size, alpha, beta, k), N.local_response_norm_vjp(g, x, size, alpha, beta, k)],
              [yt, gxt], dtype)


# --------------------------------------------------------------------------- running stats, layouts, dtypes

def test_running_stats_updated_in_place(rng):
    x = rng.standard_normal((8, 3, 4))
    rm, rv = np.zeros(3), np.ones(3)
    ids = id(rm), id(rv)
    N.batch_norm(x, rm, rv, training=True, momentum=0.25)
    assert (id(rm), id(rv)) == ids
    np.testing.assert_allclose(rm, 0.25 * x.mean((0, 2)))
    np.testing.assert_allclose(rv, 0.75 + 0.25 * x.var((0, 2), ddof=1))
    rm2, rv2 = rm.copy(), rv.copy()
    N.batch_norm(x, rm, rv, training=False)  # evaluation leaves them
    np.testing.assert_array_equal(rm, rm2)
    np.testing.assert_array_equal(rv, rv2)
    rm32, rv32 = np.zeros(3, np.float32), np.ones(3, np.float32)
    N.batch_norm(x, rm32, rv32, training=True)
    assert rm32.dtype == np.float32 and rm32.any()


def test_layouts_and_dtypes(rng):
    base = rng.standard_normal((4, 6, 5, 2))
    x = base[:, ::2, :, 0]  # (4, 3, 5), non-contiguous
    x.flags.writeable = False
    xc = np.ascontiguousarray(x)
    w, b, rm, rv = _params(rng, 3)
    for a in (w, b, rm, rv):
        a.flags.writeable = False
    g = rng.standard_normal(x.shape)
    before = x.copy()
    calls = [
        lambda v: N.batch_norm(v, rm, rv, w, b), lambda v: N.batch_norm_vjp(g, v, rm, rv, w, b, True)[0],
        lambda v: N.layer_norm(v, (3, 5), None, None), lambda v: N.layer_norm_vjp(g, v, 5)[0],
        lambda v: N.group_norm(v, 3, w, b), lambda v: N.group_norm_vjp(g, v, 1, w, b)[0],
        lambda v: N.instance_norm(v, None, None, w, b), lambda v: N.instance_norm_vjp(g, v, rm, rv, w, b, False)[0],
        lambda v: N.local_response_norm(v, 2), lambda v: N.local_response_norm_vjp(g, v, 3),
    ]
    for call in calls:
        np.testing.assert_allclose(call(x), call(xc), rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(x, before)
    x32 = x.astype(np.float32)
    w32, b32 = w.astype(np.float32), b.astype(np.float32)
    assert N.batch_norm(x32, None, None, w32, b32, True).dtype == np.float32
    assert all(a.dtype == np.float32 for a in N.batch_norm_vjp(g.astype(np.float32), x32, None, None, w32, b32, True))
    assert N.layer_norm(x32, 5, eps=1e-3).dtype == np.float32
    assert N.group_norm(x32, 3).dtype == np.float32
    assert N.local_response_norm(x32, 3, alpha=1e-3).dtype == np.float32
    assert N.batch_norm(np.arange(6).reshape(3, 2), None, None, training=True).dtype == np.float64


# --------------------------------------------------------------------------- bad arguments

X = np.zeros((2, 3, 4))
RO = np.zeros(3)
RO.flags.writeable = False
BAD = [
    (lambda: N.batch_norm(np.zeros(3), None, None, training=True), ValueError, r"batch_norm: input\.ndim must be >= 2: \(N, C, \*\); got input\.ndim=1"),
    (lambda: N.batch_norm(X, None, None), ValueError,
     r"batch_norm: running_mean must be an array when training=False \(evaluation uses the running statistics\); got running_mean=None"),
    (lambda: N.batch_norm(X, np.zeros(3), None, training=True), ValueError,
     r"batch_norm: running_mean and running_var must both be arrays or both be None"),
    (lambda: N.batch_norm(X, np.zeros(4), np.ones(4), training=True), ValueError,
     r"batch_norm: running_mean\.shape must equal \(C,\) = \(3,\); got running_mean\.shape=\(4,\)"),
    (lambda: N.batch_norm(X, [0., 0., 0.], np.ones(3), training=True), TypeError,
     r"batch_norm: running_mean must be a writable float ndarray to be updated in place in training"),
    (lambda: N.batch_norm(X, RO, np.ones(3), training=True), TypeError, r"running_mean=array\(shape=\(3,\), dtype=float64\) \(read-only\)"),
    (lambda: N.batch_norm(X, np.zeros(3, int), np.ones(3), training=True), TypeError, r"writable float ndarray"),
    (lambda: N.batch_norm(np.zeros((1, 3)), None, None, training=True), ValueError,
     r"batch_norm: input must have more than 1 value per channel when training; got input\.shape=\(1, 3\)"),
    (lambda: N.batch_norm(X, None, None, training=True, momentum=None), TypeError, r"batch_norm: momentum must be a real number \(None"),
    (lambda: N.batch_norm(X, None, None, training="yes"), TypeError, r"batch_norm: training must be a bool; got training='yes'"),
    (lambda: N.batch_norm(X, None, None, np.ones(4), training=True), ValueError,
     r"batch_norm: weight\.shape must equal the normalised shape \(3,\); got weight\.shape=\(4,\)"),
    (lambda: N.batch_norm(X, None, None, training=True, eps=-1), ValueError, r"batch_norm: eps must be a finite number >= 0; got eps=-1"),
    (lambda: N.batch_norm_vjp(np.zeros((2, 3)), X, None, None, training=True), ValueError,
     r"batch_norm_vjp: grad_out\.shape must equal input\.shape \(2, 3, 4\); got grad_out\.shape=\(2, 3\)"),
    (lambda: N.layer_norm(X, (3,)), ValueError, r"layer_norm: input\.shape must end with normalized_shape \(3,\); got input\.shape=\(2, 3, 4\)"),
    (lambda: N.layer_norm(X, (1, 2, 3, 4)), ValueError, r"layer_norm: input\.shape must end with normalized_shape"),
    (lambda: N.layer_norm(X, ()), ValueError, r"layer_norm: normalized_shape must be an int or a non-empty sequence of ints; got normalized_shape=\(\)"),
    (lambda: N.layer_norm(X, "4"), TypeError, r"layer_norm: normalized_shape must be an int or a non-empty sequence"),
    (lambda: N.layer_norm(X, 4, np.ones(3)), ValueError, r"layer_norm: weight\.shape must equal the normalised shape \(4,\)"),
    (lambda: N.group_norm(X, 2), ValueError, r"group_norm: num_groups must divide the channels; got channels=3, num_groups=2"),
    (lambda: N.group_norm(X, 0), ValueError, r"group_norm: num_groups must be >= 1; got num_groups=0"),
    (lambda: N.group_norm(X, 1.0), TypeError, r"group_norm: num_groups must be an int"),
    (lambda: N.instance_norm(np.zeros((2, 3)),), ValueError,
     r"instance_norm: input must have more than 1 spatial element when using input statistics; got input\.shape=\(2, 3\)"),
    (lambda: N.instance_norm(X, use_input_stats=False), ValueError,
     r"instance_norm: running_mean must be an array when use_input_stats=False; got running_mean=None"),
    (lambda: N.local_response_norm(np.zeros((2, 3)), 2), ValueError, r"local_response_norm: input\.ndim must be >= 3: \(N, C, \*spatial\); got input\.ndim=2"),
    (lambda: N.local_response_norm(X, 0), ValueError, r"local_response_norm: size must be >= 1; got size=0"),
    (lambda: N.local_response_norm(X, 2, alpha="a"), TypeError, r"local_response_norm: alpha must be a real number"),
]


@pytest.mark.parametrize("call,exc,pattern", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_autograd_backward_reuses_the_forward_statistics_bitwise(dtype, affine, rng, monkeypatch):
    """Through autograd the backward centres x on the forward's saved shifts instead of summing again,
    and gives batch_norm_vjp's numbers bitwise (a large mean makes float32's residual shift matter)."""
    import convkit
    import convkit.functional as F

    x = (rng.standard_normal((6, 3, 5, 4)) * 0.1 + 1e3).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    w, b, rm, rv = _params(rng, 3, dtype)
    w, b = (w, b) if affine else (None, None)
    xt = convkit.tensor(x, requires_grad=True)
    params = [None if a is None else convkit.tensor(a, requires_grad=True) for a in (w, b)]
    y = F.batch_norm(xt, rm.copy(), rv.copy(), *params, training=True, momentum=0.1, eps=1e-3)
    np.testing.assert_array_equal(y.data, N.batch_norm(x, rm.copy(), rv.copy(), w, b, True, 0.1, 1e-3))
    calls = []
    monkeypatch.setattr(N, "_bn_stats", lambda *a, **k: calls.append(1))
    y.backward(g)
    assert calls == []
    monkeypatch.undo()
    gx, gw, gb = N.batch_norm_vjp(g, x, None, None, w, b, True, 0.1, 1e-3)
    np.testing.assert_array_equal(xt.grad.data, gx)
    if affine:
        np.testing.assert_array_equal(params[0].grad.data, gw)
        np.testing.assert_array_equal(params[1].grad.data, gb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_in_blocks_of_channels_is_bitwise_the_whole(dtype, training, rng, monkeypatch):
    """Batch norm's passes run over blocks of channels on convkit's threads (N._BN_BLOCK_BYTES): every
    channel's sums, output, statistics and gradients are the same bits as in one block."""
    x = (rng.standard_normal((9, 7, 6, 3)) * 2 + 40).astype(dtype)     # 9 samples: NumPy's pairwise sums
    g = rng.standard_normal(x.shape).astype(dtype)
    w, b, rm, rv = _params(rng, 7, dtype)

    def run():
        rm_, rv_ = rm.copy(), rv.copy()
        y, st = N._batch_norm(x, rm_, rv_, w, b, training, 0.1, 1e-3)
        grads = N._batch_norm_taped_vjp(g, x, rm_, rv_, w, b, training, 0.1, 1e-3, stats=st)
        return [y, rm_, rv_, *grads, *N.batch_norm_vjp(g, x, rm_, rv_, w, b, training, 0.1, 1e-3)]
    monkeypatch.setattr(N, "_BN_BLOCK_BYTES", 10**9)
    whole = run()
    monkeypatch.setattr(N, "_BN_BLOCK_BYTES", 1)         # blocks of two channels, the last of three
    for a, e in zip(run(), whole):
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("op", ["layer_norm", "group_norm"])
def test_per_sample_norms_in_blocks_match_one_block(op, rng, monkeypatch):
    """Layer and group norm run over blocks of samples (N._NORM_BLOCK_BYTES): the output bitwise, the
    weight's and bias's gradients (summed over the blocks in float64) to rounding."""
    x = (rng.standard_normal((6, 4, 5, 3)) + 3).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    if op == "layer_norm":
        args, w, b = ((5, 3),), rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 3))
    else:
        args, w, b = (2,), rng.standard_normal(4).astype(np.float32), rng.standard_normal(4)
    b = b.astype(np.float32)
    f, vjp = getattr(N, op), getattr(N, op + "_vjp")
    monkeypatch.setattr(N, "_NORM_BLOCK_BYTES", 10**9)
    whole = [f(x, *args, w, b), *vjp(g, x, *args, w, b)]
    monkeypatch.setattr(N, "_NORM_BLOCK_BYTES", 1)
    blocked = [f(x, *args, w, b), *vjp(g, x, *args, w, b)]
    np.testing.assert_array_equal(blocked[0], whole[0])
    np.testing.assert_array_equal(blocked[1], whole[1])
    for a, e in zip(blocked[2:], whole[2:]):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6)
