"""benchmarks/onnx_bench.py's floor: it finds every Conv node's shapes and times products of those shapes."""
import importlib.util
import os

import numpy as np
import pytest

pytest.importorskip("onnx")

import convkit.onnx  # noqa: E402

_PATH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "onnx_bench.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("onnx_bench", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conv_shapes_lists_every_conv_node_of_resnet18(bench):
    sess = convkit.onnx.load(bench.resnet18().SerializeToString())
    shapes = bench.conv_shapes(sess, np.zeros((1, 3, 224, 224), np.float32))
    assert len(shapes) == 20
    assert shapes[0] == ((1, 3, 224, 224), (64, 3, 7, 7), (2, 2))
    assert shapes[-1] == ((1, 512, 7, 7), (512, 512, 3, 3), (1, 1))
    assert sum(s == (2, 2) for *_, s in shapes) == 7     # the stem, three strided 3x3 and three 1x1 shortcuts
    assert sess._nodes and all(not getattr(fn, "__name__", "") == "record" for *_, fn, _ in sess._nodes)


def test_products_floor_runs_each_layer_in_one_of_its_forms(bench):
    shapes = [((2, 8, 12, 12), (16, 8, 3, 3), (1, 1)), ((2, 8, 12, 12), (16, 8, 3, 3), (2, 2))]
    run, lines = bench.products_floor(shapes, np.random.default_rng(0))
    run()
    assert len(lines) == 2
    assert any(form in lines[0] for form in ("cols @ W", "W @ cols", "Winograd multiply"))
    assert "Winograd" not in lines[1]    # stride 2: no Winograd form
