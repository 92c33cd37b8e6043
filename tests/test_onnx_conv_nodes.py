"""The ONNX backend node tests for Conv, ConvTranspose and Col2Im, as independent answers."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402
from helpers import onnx_node_cases  # noqa: E402

from convkit.onnx import ops  # noqa: E402

OPS = {"Conv", "ConvTranspose", "Col2Im"}
CASES = onnx_node_cases(OPS)


def test_the_cases_were_found():
    assert {c.model.graph.node[0].op_type for c in CASES} == OPS
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node(case):
    node = case.model.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    fn = getattr(ops, node.op_type)
    for inputs, outputs in case.data_sets:
        got = fn(*inputs, **attrs)
        assert got.shape == outputs[0].shape
        assert got.dtype == outputs[0].dtype
        np.testing.assert_allclose(got, outputs[0], rtol=1e-5, atol=1e-6)
