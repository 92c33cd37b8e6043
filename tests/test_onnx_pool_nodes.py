"""The ONNX backend node tests for the pooling ops, as independent answers.

Each case's node attributes are translated into a convkit.functional.pool call.
ONNX MaxPool/MaxUnpool indices are flat over the whole (N, C, *spatial) tensor;
ours are flat per (n, c) plane, so the tests convert between the two.
"""
import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from helpers import onnx_node_cases  # noqa: E402

from convkit import shapes  # noqa: E402
from convkit.functional import pool as F  # noqa: E402

OPS = ("MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "MaxUnpool")


CASES = onnx_node_cases(OPS)


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _window_args(attrs, x):
    """kernel_size, stride, padding, dilation, ceil_mode from ONNX attributes (ONNX strides default to 1)."""
    k = tuple(attrs["kernel_shape"])
    n = len(k)
    s = tuple(attrs.get("strides", (1,) * n))
    d = tuple(attrs.get("dilations", (1,) * n))
    auto_pad = attrs.get("auto_pad", b"NOTSET").decode()
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        padding = shapes.resolve_padding("same" if auto_pad == "SAME_UPPER" else "same_lower",
                                         x.shape[2:], k, s, d)
    elif auto_pad == "VALID":
        padding = 0
    else:
        pads = attrs.get("pads", (0,) * 2 * n)
        padding = tuple(zip(pads[:n], pads[n:]))
    return dict(kernel_size=k, stride=s, padding=padding, dilation=d, ceil_mode=bool(attrs.get("ceil_mode", 0)))


def _plane_offsets(shape):
    """Flat offset of each (n, c) plane in a (N, C, *spatial) tensor, shaped to broadcast."""
    N, C = shape[:2]
    plane = math.prod(shape[2:])
    return (np.arange(N * C).reshape(N, C) * plane).reshape((N, C) + (1,) * (len(shape) - 2))


def _run(case, inputs):
    node = case.model.graph.node[0]
    attrs = _attrs(node)
    op = node.op_type
    x = inputs[0]
    if op == "GlobalAveragePool":
        return [F.global_avg_pool(x)]
    if op == "GlobalMaxPool":
        return [F.global_max_pool(x)]
    if op == "MaxUnpool":
        k = tuple(attrs["kernel_shape"])
        n = len(k)
        s = tuple(attrs.get("strides", (1,) * n))
        pads = attrs.get("pads", (0,) * 2 * n)
        padding = tuple(zip(pads[:n], pads[n:]))
        default = shapes.conv_transpose_output_shape(x.shape[2:], k, s, padding)
        out = tuple(int(v) for v in inputs[2][2:]) if len(inputs) > 2 else default
        # ONNX's indices (as its reference and test data read them) are flat over the tensor of the
        # default shape, an output_shape then pads at the end; ours are flat over the output plane.
        # (onnxruntime instead reads them flat over output_shape, as PyTorch does.)
        idx = np.unravel_index(inputs[1], x.shape[:2] + default)[2:]
        return [F.max_unpool(x, np.ravel_multi_index(idx, out), k, s, padding, output_size=out)]
    kw = _window_args(attrs, x)
    if op == "AveragePool":
        return [F.avg_pool(x, kw["kernel_size"], kw["stride"], kw["padding"], kw["ceil_mode"],
                           count_include_pad=bool(attrs.get("count_include_pad", 0)), dilation=kw["dilation"])]
    if op == "LpPool":
        return [F.lp_pool(x, attrs.get("p", 2), **kw)]
    y, idx = F.max_pool(x, **kw, return_indices=True)
    sp = x.shape[2:]
    if attrs.get("storage_order", 0) == 1:  # column-major: the first spatial dim varies fastest
        idx = np.ravel_multi_index(np.unravel_index(idx, sp), sp, order="F")
    return [y, idx + _plane_offsets(x.shape)][:len(node.output)]


# Expected outputs stored rounded to 4 decimals.
ATOL = {"test_averagepool_2d_ceil_last_window_starts_on_pad": 1e-4}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_node(case):
    for inputs, expected in case.data_sets:
        got = _run(case, inputs)
        assert len(got) == len(expected), case.name
        for g, e in zip(got, expected):
            assert g.shape == e.shape, case.name
            assert g.dtype == e.dtype, (case.name, g.dtype, e.dtype)
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=ATOL.get(case.name, 1e-6), err_msg=case.name)


def test_all_pool_ops_have_cases():
    seen = {c.model.graph.node[0].op_type for c in CASES}
    assert seen == set(OPS)
