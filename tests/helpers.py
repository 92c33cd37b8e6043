"""Shared test tools: finite differences along a random direction, the adjoint identity."""
import numpy as np


def directional_fd(f, x, direction, eps=1e-6):
    """(f(x + eps*d) - f(x - eps*d)) / (2*eps) for a scalar function f."""
    return (f(x + eps * direction) - f(x - eps * direction)) / (2 * eps)


def check_grad_fd(f, grad, x, rng, rtol=1e-6, atol=1e-8):
    """Compare <grad, d> with the directional derivative of scalar f at x along a random d."""
    d = rng.standard_normal(x.shape)
    lhs = float(np.sum(grad * d))
    rhs = directional_fd(f, x, d)
    np.testing.assert_allclose(lhs, rhs, rtol=rtol, atol=atol)


def torch_or_skip():
    import pytest

    return pytest.importorskip("torch")
