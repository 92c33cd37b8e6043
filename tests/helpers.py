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


_ONNX_CASES = []


def onnx_node_cases(op_types):
    """The onnx package's backend node test cases whose graph is one node of these op types
    (generated once per test session: collect_testcases takes seconds)."""
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    if not _ONNX_CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _ONNX_CASES.extend(collect_testcases())
    return [c for c in _ONNX_CASES if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in op_types]
