"""Every ONNX backend node test case whose ops are all ones convkit.onnx runs, through
``convkit.onnx.load(case.model).run(...)``: the single-node cases, and the multi-node
(function-expanded) cases built only from those ops.

Cases are never skipped silently: those that need a feature convkit leaves out on purpose
(element types NumPy has no dtype for, random training-mode Dropout, sequence/optional
values) must be refused with a ValueError instead; ``test_refused_cases_are_listed`` prints them.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402
from helpers import onnx_node_cases  # noqa: E402

import helpers  # noqa: E402
from convkit import onnx as conv_onnx  # noqa: E402
from convkit.onnx import ops  # noqa: E402
from convkit.onnx.ops_tensor import DTYPES  # noqa: E402

OPS = set(ops.__all__)
onnx_node_cases(OPS)  # fills the shared cache (collect_testcases takes seconds)
ALL = [c for c in helpers._ONNX_CASES if {n.op_type for n in c.model.graph.node} <= OPS]

# Expected outputs stored rounded to 4 decimals.
ATOL = {"test_averagepool_2d_ceil_last_window_starts_on_pad": 1e-4}

_RANDOM = {"test_training_dropout", "test_training_dropout_mask", "test_training_dropout_default",
           "test_training_dropout_default_mask"}


def _refusal(case):
    """Why convkit refuses this case (it must raise ValueError), or None when it must pass."""
    g = case.model.graph
    if case.name in _RANDOM:
        return "Dropout in training mode with ratio > 0 is random"
    for vi in [*g.input, *g.output]:
        if not vi.type.HasField("tensor_type"):
            return "sequence/optional values"
        if vi.type.tensor_type.elem_type not in DTYPES:
            return f"{onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)} has no NumPy dtype"
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to" and a.i not in DTYPES:
                return f"{onnx.TensorProto.DataType.Name(a.i)} has no NumPy dtype"
    return None


RUN = [c for c in ALL if _refusal(c) is None]
REFUSED = [c for c in ALL if _refusal(c) is not None]


def _array(v):
    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v


def test_the_cases_were_found():
    assert {n.op_type for c in RUN for n in c.model.graph.node} == OPS
    assert len(RUN) >= 480
    assert sum(len(c.model.graph.node) > 1 for c in RUN) >= 60  # the expanded (multi-node) cases


@pytest.mark.parametrize("case", RUN, ids=[c.name for c in RUN])
def test_node_case(case):
    sess = conv_onnx.load(case.model)
    names = [vi.name for vi in case.model.graph.input]
    for inputs, expected in case.data_sets:
        feed = {n: _array(v) for n, v in zip(names, inputs)}
        got = sess.run(None, feed)
        assert len(got) == len(expected)
        for g, e in zip(got, map(_array, expected)):
            assert g.shape == e.shape, case.name
            assert g.dtype == e.dtype, (case.name, g.dtype, e.dtype)
            if e.dtype == object:
                assert g.tolist() == e.tolist()
            else:
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=ATOL.get(case.name, 1e-6), err_msg=case.name)


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_refused_case_raises(case):
    with pytest.raises(ValueError, match="convkit.onnx"):
        sess = conv_onnx.load(case.model)
        names = [vi.name for vi in case.model.graph.input]
        for inputs, _ in case.data_sets:
            sess.run(None, {n: _array(v) for n, v in zip(names, inputs)})


def test_refused_cases_are_listed(capsys):
    reasons = {}
    for c in REFUSED:
        reasons.setdefault(_refusal(c), []).append(c.name)
    with capsys.disabled():
        print(f"\n{len(RUN)} ONNX node cases run, {len(REFUSED)} refused on purpose:")
        for why, names in sorted(reasons.items()):
            print(f"  {why}: {len(names)} ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})")
    assert len(REFUSED) < 150
