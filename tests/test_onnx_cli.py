"""`convkit run` and `convkit inspect` on small ONNX files."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convkit import cli  # noqa: E402
from convkit import onnx as conv_onnx  # noqa: E402


def _save(tmp_path, two_inputs=False):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="head")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])]
    if two_inputs:
        nodes.append(helper.make_node("Add", ["y", "bias"], ["z"]))
        inputs.append(helper.make_tensor_value_info("bias", TensorProto.FLOAT, [3]))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3]))
    m = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / ("two.onnx" if two_inputs else "m.onnx")
    onnx.save(m, path)
    return path


def test_run_writes_the_output(tmp_path, capsys):
    path = _save(tmp_path)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out" / "y.npy"
    assert cli.main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "y: shape (2, 3) float32" in text and "argmax per row" in text and f"wrote {out}" in text
    expected = conv_onnx.load(path).run(None, {"x": x})[0]
    np.testing.assert_array_equal(np.load(out), expected)
    assert [p.name for p in out.parent.iterdir()] == ["y.npy"]  # no temporary file left behind


def test_run_named_inputs_npz_and_float64_cast(tmp_path, capsys):
    path = _save(tmp_path, two_inputs=True)
    x = np.random.default_rng(2).standard_normal((1, 2, 5, 5))  # float64: cast, with a note
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "b.npy", np.arange(3, dtype=np.float32))
    out = tmp_path / "all.npz"
    assert cli.main(["run", str(path), "--input", f"bias={tmp_path / 'b.npy'}", "--input",
                     f"x={tmp_path / 'x.npy'}", "--output", str(out)]) == 0
    assert "cast from float64 to float32" in capsys.readouterr().out
    with np.load(out) as z:
        np.testing.assert_allclose(z["z"] - z["y"], np.arange(3)[None].astype(np.float32), atol=1e-6)
    assert cli.main(["run", str(path), "--input", f"x={tmp_path / 'x.npy'}", "--input",
                     f"bias={tmp_path / 'b.npy'}", "--output", str(tmp_path / "one.npy")]) == 2
    assert "--output must end in .npz" in capsys.readouterr().err


def test_run_errors_are_one_line(tmp_path, capsys):
    path = _save(tmp_path)
    np.save(tmp_path / "bad.npy", np.zeros((1, 3, 5, 5), np.float32))
    assert cli.main(["run", str(path), "--input", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "input 'x' must have shape ['N', 2, 5, 5]" in err
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07junk" * 3)
    assert cli.main(["run", str(tmp_path / "junk.onnx"), "--input", str(tmp_path / "bad.npy")]) == 2
    assert "junk.onnx is not a valid ONNX model" in capsys.readouterr().err


def test_inspect(tmp_path, capsys):
    path = _save(tmp_path)
    assert cli.main(["inspect", str(path), "--shape", "x=3x2x5x5"]) == 0
    out = capsys.readouterr().out
    assert "opset   ai.onnx 17" in out
    assert "x: tensor(float) ['N', 2, 5, 5]" in out and "y: tensor(float) ['N', 3]" in out
    assert "Conv                         1" in out
    lines = [ln.split() for ln in out.splitlines() if ln.strip().startswith(("0 ", "4 "))]
    assert lines[0][:3] == ["0", "Conv", "conv"] and "(3, 4, 5, 5)" in " ".join(lines[0]) and lines[0][-1] == "72"
    assert lines[1][:3] == ["4", "Gemm", "head"] and "(3, 3)" in " ".join(lines[1])
    assert cli.main(["inspect", str(path), "--no-layers"]) == 0
    assert "layers" not in capsys.readouterr().out
