"""linear: finite differences, PyTorch, layouts and bad arguments."""
import numpy as np
import pytest

from convkit.functional.linear import linear, linear_vjp
from helpers import check_grad_fd

SHAPES = [(5,), (4, 5), (2, 3, 5), (0, 5)]


@pytest.mark.parametrize("xshape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_fd(xshape, bias, rng):
    x = rng.standard_normal(xshape)
    w = rng.standard_normal((3, 5))
    b = rng.standard_normal(3) if bias else None
    g = rng.standard_normal(xshape[:-1] + (3,))
    gx, gw, gb = linear_vjp(g, x, w, b)
    assert gx.shape == x.shape and gw.shape == w.shape and (gb is None) == (b is None)
    check_grad_fd(lambda v: np.sum(linear(v, w, b) * g), gx, x, rng)
    check_grad_fd(lambda v: np.sum(linear(x, v, b) * g), gw, w, rng)
    if bias:
        check_grad_fd(lambda v: np.sum(linear(x, w, v) * g), gb, b, rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xshape", SHAPES[:3])
def test_linear_vs_torch(xshape, dtype, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal((3, 5)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    g = rng.standard_normal(xshape[:-1] + (3,)).astype(dtype)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = torch.nn.functional.linear(*ts)
    y.backward(torch.tensor(g))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    out = linear(x, w, b)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, y.detach().numpy(), rtol=tol, atol=tol)
    for a, t in zip(linear_vjp(g, x, w, b), ts):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("xshape", [(7,), (1, 7), (1, 1, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_row_weight_gradient_is_the_outer_product_bitwise(xshape, dtype, rng):
    """One row takes the outer product by broadcasting (BLAS is slow with an inner dim of 1): each entry is
    g_i * x_j rounded once, as the product computes it."""
    x = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal((4, 7)).astype(dtype)
    g = rng.standard_normal(xshape[:-1] + (4,)).astype(dtype)
    gw = linear_vjp(g, x, w)[1]
    assert gw.dtype == dtype and gw.shape == w.shape
    np.testing.assert_array_equal(gw, g.reshape(4, 1) * x.reshape(1, 7))
    np.testing.assert_array_equal(gw, np.concatenate([g.reshape(1, 4), np.zeros((1, 4), dtype)]).T
                                  @ np.concatenate([x.reshape(1, 7), np.zeros((1, 7), dtype)]))


def test_linear_layouts(rng):
    x = rng.standard_normal((6, 10))[::2, ::2]
    w = rng.standard_normal((5, 3)).T
    for a in (x, w):
        a.flags.writeable = False
    g = rng.standard_normal((3, 3))
    ref = [np.ascontiguousarray(a) for a in (x, w)]
    np.testing.assert_allclose(linear(x, w), linear(*ref), rtol=1e-14)
    for a, b in zip(linear_vjp(g, x, w)[:2], linear_vjp(g, *ref)[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    assert linear([[1, 2]], [[1, 1]]).dtype == np.float64


BAD = [
    (lambda: linear(np.zeros((2, 4)), np.zeros((3, 5))), ValueError,
     r"linear: input\.shape\[-1\] must equal weight\.shape\[1\] \(in_features\); got input\.shape=\(2, 4\) and weight\.shape=\(3, 5\)"),
    (lambda: linear(np.zeros((2, 5)), np.zeros(5)), ValueError, r"linear: weight\.ndim must be 2: \(out_features, in_features\); got weight\.ndim=1"),
    (lambda: linear(np.float64(1), np.zeros((3, 1))), ValueError, r"linear: input\.ndim must be >= 1"),
    (lambda: linear(np.zeros((2, 5)), np.zeros((3, 5)), np.zeros(2)), ValueError,
     r"linear: bias\.shape must equal \(out_features,\) = \(3,\); got bias\.shape=\(2,\)"),
    (lambda: linear_vjp(np.zeros((2, 2)), np.zeros((2, 5)), np.zeros((3, 5))), ValueError,
     r"linear_vjp: grad_out\.shape must equal the output shape \(2, 3\); got grad_out\.shape=\(2, 2\)"),
    (lambda: linear(np.zeros((2, 5)), "w"), TypeError, r"linear: weight must be a NumPy array"),
]


@pytest.mark.parametrize("call,exc,pattern", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
