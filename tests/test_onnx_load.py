"""convkit.onnx.load: the session interface, the Module interface, old-opset forms of ops
(attributes that later became inputs) against onnxruntime, and bad files."""
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import convkit  # noqa: E402
from convkit import onnx as conv_onnx  # noqa: E402


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _linear_model():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "fc.weight")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "fc.bias")
    nodes = [helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], transB=1, name="fc"),
             helper.make_node("Relu", ["h"], ["y"], name="act")]
    return _model(nodes, [_vi("x", ["N", 3])], [_vi("y", ["N", 4])], [w, b])


def test_session_interface_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    m = _linear_model()
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for src in (str(path), path, path.read_bytes(), m):
        s = conv_onnx.load(src)
        assert [(a.name, a.shape, a.type) for a in s.get_inputs()] == \
               [(a.name, a.shape, a.type) for a in ref.get_inputs()]
        assert [(a.name, a.shape, a.type) for a in s.get_outputs()] == \
               [(a.name, a.shape, a.type) for a in ref.get_outputs()]
        (got,) = s.run(None, {"x": x})
        np.testing.assert_allclose(got, ref.run(None, {"x": x})[0], rtol=1e-6, atol=1e-6)
        assert s.run(["y"], {"x": x})[0].shape == (5, 4)


def test_session_is_a_module_with_the_initializers_as_state():
    s = conv_onnx.load(_linear_model())
    assert isinstance(s, convkit.nn.Module)
    sd = s.state_dict()
    assert list(sd) == ["fc.weight", "fc.bias"]
    x = np.ones((2, 3), np.float32)
    y = s(x)
    assert isinstance(y, np.ndarray) and y.shape == (2, 4)
    t = s(convkit.tensor(x))
    assert isinstance(t, convkit.Tensor) and np.array_equal(t.data, y)
    sd["fc.weight"][:] = 0
    sd["fc.bias"][:] = np.arange(4)
    s.load_state_dict(sd)
    np.testing.assert_array_equal(s(x), np.tile(np.arange(4, dtype=np.float32), (2, 1)))
    assert "nodes=2" in repr(s)


# ----------------------------------------------------------------------------- old opsets
def _single(op, opset, inputs, attrs=None, inits=(), n_out=1, out_type=TensorProto.FLOAT):
    names = [f"i{k}" for k in range(len(inputs))] + [t.name for t in inits]
    node = helper.make_node(op, names, [f"o{k}" for k in range(n_out)], **(attrs or {}))
    vis = [_vi(f"i{k}", list(a.shape)) for k, a in enumerate(inputs)]
    return _model([node], vis, [helper.make_tensor_value_info(f"o{k}", out_type, None) for k in range(n_out)],
                  inits, opset)


X = np.random.default_rng(2).standard_normal((2, 3, 4, 5)).astype(np.float32)
OLD = [
    ("Softmax", 11, {"axis": 1}, ()),          # before 13: flattened to 2-D at axis
    ("LogSoftmax", 9, {}, ()),
    ("Clip", 7, {"min": -0.5, "max": 0.5}, ()),
    ("ReduceSum", 11, {"axes": [1, 3], "keepdims": 0}, ()),
    ("ReduceMean", 13, {"axes": [-1]}, ()),
    ("ReduceMax", 13, {"axes": [2], "keepdims": 0}, ()),
    ("Squeeze", 11, {"axes": [0]}, ()),
    ("Unsqueeze", 11, {"axes": [0, 5]}, ()),
    ("Slice", 9, {"starts": [1, 0], "ends": [100, -1], "axes": [1, 3]}, ()),
    ("Pad", 7, {"pads": [0, 0, 1, 2, 0, 0, 2, 1], "value": 1.5}, ()),
    ("Split", 11, {"axis": 1, "split": [1, 2]}, ()),
    ("Dropout", 7, {"ratio": 0.3}, ()),
    ("Upsample", 7, {"scales": [1.0, 1.0, 2.0, 3.0], "mode": "nearest"}, ()),
    ("Resize", 10, {"mode": "nearest"}, (numpy_helper.from_array(np.array([1, 1, 0.5, 1.5], np.float32), "s"),)),
    ("Resize", 10, {"mode": "linear"}, (numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s"),)),
    ("Resize", 11, {"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn"},
     (numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
      numpy_helper.from_array(np.array([1, 1, 1.5, 0.6], np.float32), "s"))),
    ("BatchNormalization", 7, {"epsilon": 1e-3},
     tuple(numpy_helper.from_array(v, n) for n, v in [("sc", np.array([1., 2., 3.], np.float32)),
                                                       ("bi", np.array([0., .5, 1.], np.float32)),
                                                       ("me", np.array([.1, .2, .3], np.float32)),
                                                       ("va", np.array([1., .5, 2.], np.float32))])),
]


@pytest.mark.parametrize("op,opset,attrs,inits", OLD, ids=[f"{o[0]}-{o[1]}-{i}" for i, o in enumerate(OLD)])
def test_old_opset_forms_match_onnxruntime(op, opset, attrs, inits):
    ort = pytest.importorskip("onnxruntime")
    x = X[:1] if op == "Squeeze" else X
    n_out = 2 if op == "Split" else 1
    m = _single(op, opset, [x], attrs, inits, n_out)
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"i0": x})
    got = conv_onnx.load(m).run(None, {"i0": x})
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == r.dtype
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- bad files
def test_truncated_and_corrupt_files(tmp_path):
    data = _linear_model().SerializeToString()
    for name, blob in [("cut.onnx", data[: len(data) // 2]), ("cut2.onnx", data[:-3]),
                       ("junk.onnx", b"\xff\xfe not a model \x00" * 10), ("empty.onnx", b"")]:
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(ValueError, match=name):
            conv_onnx.load(p)
    with pytest.raises(ValueError, match="<bytes>"):
        conv_onnx.load(data[:40])
    with pytest.raises(TypeError, match="path, bytes or an onnx.ModelProto"):
        conv_onnx.load(3)


def test_unknown_op_named_with_its_node_at_load(monkeypatch):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="first"),
             helper.make_node("Hardmax", ["a"], ["b"], name="weird"),
             helper.make_node("Relu", ["b"], ["c"]),
             helper.make_node("Gelu2", ["c"], ["y"], name="custom", domain="com.example")]
    m = _model(nodes, [_vi("x", [2])], [_vi("y", [2])])
    calls = []
    monkeypatch.setattr(conv_onnx.ops, "Relu", lambda *a: calls.append(a))
    with pytest.raises(ValueError, match=r"Hardmax \(first at node 1, 'weird'\).*com\.example::Gelu2 "
                                         r"\(first at node 3, 'custom'\)"):
        conv_onnx.load(m)
    assert not calls  # refused before anything ran


def test_missing_initializer_and_bad_graphs():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")]
    m = _model(nodes, [_vi("x", [1, 1, 3, 3])], [_vi("y", None)])
    with pytest.raises(ValueError, match=r"node 0 \('conv1', Conv\): input 'w' is not a graph input, an initializer"):
        conv_onnx.load(m)
    m = _model([helper.make_node("Relu", ["x"], ["a"])], [_vi("x", [2])], [_vi("y", [2])])
    with pytest.raises(ValueError, match="graph output 'y' is produced by no node"):
        conv_onnx.load(m)
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])], opset=6)
    with pytest.raises(ValueError, match="opset must be 7 to"):
        conv_onnx.load(m)
    m = _model([helper.make_node("Relu", ["x"], ["y"], bogus=3)], [_vi("x", [2])], [_vi("y", [2])])
    with pytest.raises(ValueError, match=r"node 0 .*attributes \['bogus'\] are not Relu's"):
        conv_onnx.load(m)
    m = _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)], [_vi("x", [2])],
               [_vi("y", [2], TensorProto.FLOAT)])
    with pytest.raises(ValueError, match="Cast: to must be a tensor type NumPy has"):
        conv_onnx.load(m)


def test_bad_inputs_at_run():
    s = conv_onnx.load(_linear_model())
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"input 'x' must be tensor\(float\); got dtype='float64'"):
        s.run(None, {"x": x.astype(np.float64)})
    with pytest.raises(ValueError, match=r"input 'x' must have shape \['N', 3\]; got shape=\(2, 4\)"):
        s.run(None, {"x": np.ones((2, 4), np.float32)})
    with pytest.raises(ValueError, match=r"input_feed must name the model's inputs \['x'\]"):
        s.run(None, {"z": x})
    with pytest.raises(ValueError, match="output_names must be among"):
        s.run(["nope"], {"x": x})
    with pytest.raises(ValueError, match="forward takes the graph inputs"):
        s(x, x)
    # a failure inside an op names the node
    m = _model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")], [_vi("x", ["N", 3])],
               [_vi("y", None)], [numpy_helper.from_array(np.array([4, -1], np.int64), "shape")])
    with pytest.raises(ValueError, match=r"node 0 \('rs', Reshape\) failed"):
        conv_onnx.load(m).run(None, {"x": x})


def _external_model(location):
    t = numpy_helper.from_array(np.arange(3, dtype=np.float32), "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "12")):
        e = t.external_data.add()
        e.key, e.value = k, v
    return _model([helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x", [3])], [_vi("y", [3])], [t])


def test_external_data_only_inside_the_models_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(np.arange(3, dtype=np.float32).tobytes())
    (tmp_path / "secret.bin").write_bytes(np.full(3, 7, np.float32).tobytes())
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")
    good = folder / "good.onnx"
    good.write_bytes(_external_model("w.bin").SerializeToString())
    (y,) = conv_onnx.load(good).run(None, {"x": np.ones(3, np.float32)})
    np.testing.assert_array_equal(y, [1, 2, 3])
    for loc in ("../secret.bin", str(tmp_path / "secret.bin"), "sub/../../secret.bin", "link.bin"):
        p = folder / "bad.onnx"
        p.write_bytes(_external_model(loc).SerializeToString())
        with pytest.raises(ValueError, match=r"bad\.onnx: initializer 'w' refers to external data .*outside"):
            conv_onnx.load(p)
    with pytest.raises(ValueError, match="keeps its data in an external file"):
        conv_onnx.load(_external_model("w.bin").SerializeToString())
    p = folder / "missing.onnx"
    p.write_bytes(_external_model("nothere.bin").SerializeToString())
    with pytest.raises(ValueError, match="not a file"):
        conv_onnx.load(p)


def test_missing_onnx_package_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match="needs the onnx package.*pip install onnx"):
        conv_onnx.load(b"")


def test_every_truncation_is_refused_or_runs():
    """A file cut anywhere either fails with a ValueError or is a smaller valid model that runs."""
    data = _linear_model().SerializeToString()
    x = np.ones((2, 3), np.float32)
    outcomes = set()
    for cut in range(len(data)):
        try:
            conv_onnx.load(data[:cut]).run(None, {"x": x})
            outcomes.add("ran")
        except ValueError:
            outcomes.add("refused")
    assert "refused" in outcomes


def test_sizes_read_from_the_file_must_fit_in_memory():
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20, 1 << 10], np.int64), "shape")
    m = _model([helper.make_node("ConstantOfShape", ["shape"], ["y"], name="bomb")], [], [_vi("y", None)], [shape])
    with pytest.raises(ValueError, match=r"node 0 \('bomb', ConstantOfShape\) failed: ConstantOfShape: the output "
                                         r"must fit in memory"):
        conv_onnx.load(m).run(None, {})
    pads = numpy_helper.from_array(np.array([0, 1 << 40], np.int64), "pads")
    m = _model([helper.make_node("Pad", ["x", "pads"], ["y"])], [_vi("x", [2])], [_vi("y", None)], [pads])
    with pytest.raises(ValueError, match="Pad: the output must fit in memory"):
        conv_onnx.load(m).run(None, {"x": np.ones(2, np.float32)})


def test_constant_subgraphs_are_cached_but_follow_the_state():
    shape = numpy_helper.from_array(np.array([2, 3], np.int64), "shape")
    fill = helper.make_tensor("fill", TensorProto.FLOAT, [1], [1.5])
    m = _model([helper.make_node("ConstantOfShape", ["shape"], ["c"], value=fill),
                helper.make_node("Add", ["c", "x"], ["y"]),
                helper.make_node("Identity", ["c"], ["k"])],
               [_vi("x", [1])], [_vi("y", None), _vi("k", None)], [shape])
    s = conv_onnx.load(m)
    one = np.ones(1, np.float32)
    y, k = s.run(None, {"x": one})
    assert y.shape == (2, 3) and np.all(y == 2.5)
    k[...] = 99  # the caller's copy, not the cache
    np.testing.assert_array_equal(s.run(None, {"x": one})[1], np.full((2, 3), 1.5, np.float32))
    s.load_state_dict({"shape": np.array([4, 1])})
    assert s.run(None, {"x": one})[0].shape == (4, 1)


def _in_place_model():
    """conv -> relu -> add(relu, x) -> relu, with the conv output also a graph output and read twice."""
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((3, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"], pads=[1, 1, 1, 1]),   # c1: a graph output
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["x", "w"], ["c2"], pads=[1, 1, 1, 1]),   # c2: read by two nodes
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Sub", ["c2", "x"], ["n2"]),
             helper.make_node("Conv", ["x", "w"], ["c3"], pads=[1, 1, 1, 1]),   # c3: read by one Relu only
             helper.make_node("Relu", ["c3"], ["r3"]),
             helper.make_node("Add", ["r3", "x"], ["a3"]),                       # r3 overwritten by the Add
             helper.make_node("Relu", ["a3"], ["y"]),
             helper.make_node("Reshape", ["c1", "shape"], ["flat"]),            # a view of c1: not overwritten
             helper.make_node("Relu", ["flat"], ["z"])]
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    outs = [_vi(n, None) for n in ("c1", "r2", "n2", "y", "z", "r1")]
    return _model(nodes, [_vi("x", [1, 3, 5, 5])], outs, [w, shape])


def test_in_place_relu_and_add_change_only_values_no_one_else_reads():
    """Relu and Add overwrite an input only where no other node, graph output or caller sees it: the results
    are those of onnxruntime (or of plain NumPy), and the feed and the weights are left as they were."""
    m = _in_place_model()
    s = conv_onnx.load(m)
    x = np.random.default_rng(3).standard_normal((1, 3, 5, 5)).astype(np.float32)
    x0, w0 = x.copy(), s.state_dict()["w"].copy()
    got = dict(zip(["c1", "r2", "n2", "y", "z", "r1"], s.run(None, {"x": x})))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(s.state_dict()["w"], w0)
    c = convkit.functional.conv2d(x, w0, padding=1)
    assert (got["c1"] < 0).any()                         # the graph output was not overwritten by its Relu
    np.testing.assert_allclose(got["c1"], c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["r1"], np.maximum(c, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["r2"], np.maximum(c, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["n2"], c - x, rtol=1e-5, atol=1e-5)   # read after the Relu of the same c2
    np.testing.assert_allclose(got["y"], np.maximum(np.maximum(c, 0) + x, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["z"], np.maximum(c, 0).reshape(1, -1), rtol=1e-5, atol=1e-5)
    ort = pytest.importorskip("onnxruntime")
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for name, want in zip(["c1", "r2", "n2", "y", "z", "r1"], ref.run(None, {"x": x})):
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-5)


def test_in_place_add_keeps_a_broadcast_input_and_the_second_run_agrees():
    """An Add whose donated input is smaller than the result (broadcast) makes a new array; running twice
    gives the same answer (no state is carried in overwritten buffers)."""
    rng = np.random.default_rng(4)
    w = numpy_helper.from_array(rng.standard_normal((2, 3, 1, 1)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("ReduceMean", ["c"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Add", ["m", "c2"], ["y"]),
             helper.make_node("Conv", ["x", "w"], ["c2"])]
    nodes = [nodes[0], nodes[1], nodes[3], nodes[2]]
    m = _model(nodes, [_vi("x", [1, 3, 4, 4])], [_vi("y", None)], [w], opset=13)
    s = conv_onnx.load(m)
    x = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    c = convkit.functional.conv2d(x, numpy_helper.to_array(w))
    want = c.mean(axis=1, keepdims=True) + c
    first = s.run(None, {"x": x})[0]
    np.testing.assert_allclose(first, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-6)


def _two_conv_model(c=512, hw=16):
    """conv(w) -> relu -> conv(w, bias): one weight initializer read by two Conv nodes, 512 channels at 16x16 so
    that the session's kept transforms choose Winograd (see F.conv_algorithms' "forward_fixed_weight")."""
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array((rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w", "b"], ["y"], pads=[1, 1, 1, 1])]
    return _model(nodes, [_vi("x", [1, c, hw, hw])], [_vi("y", None)], [w, b])


def test_conv_weights_are_read_only_and_their_transforms_are_made_once():
    """A session keeps each Conv weight initializer's transforms (Winograd's U here) between runs: the weight is
    read-only, load_state_dict still replaces it and the next run uses the new one."""
    assert convkit.functional.conv_algorithms((1, 512, 16, 16), (512, 512, 3, 3), padding=1)[
        "forward_fixed_weight"] == "winograd"
    m = _two_conv_model()
    s = conv_onnx.load(m)
    x = np.random.default_rng(6).standard_normal((1, 512, 16, 16)).astype(np.float32)
    w, b = (numpy_helper.to_array(t) for t in m.graph.initializer)

    def want(w):
        h = np.maximum(convkit.functional.conv2d(x, w, padding=1, algorithm="im2col"), 0)
        return convkit.functional.conv2d(h, w, b, padding=1, algorithm="im2col")

    np.testing.assert_allclose(s.run(None, {"x": x})[0], want(w), rtol=1e-4, atol=1e-4)
    kept = s._kept["w"].cache
    assert kept is not None and kept.weight is s._buffers["w"].data and len(kept) == 1
    u = next(iter(kept._made.values()))
    np.testing.assert_allclose(s.run(None, {"x": x})[0], want(w), rtol=1e-4, atol=1e-4)
    assert next(iter(s._kept["w"].cache._made.values())) is u            # the second run made nothing
    with pytest.raises(ValueError, match="read-only"):
        s._buffers["w"].data[...] = 0
    w2 = (w[::-1] * 0.5).copy()
    s.load_state_dict({"w": w2}, strict=False)
    assert not s._buffers["w"].data.flags.writeable
    np.testing.assert_array_equal(s.state_dict()["w"], w2)
    np.testing.assert_allclose(s.run(None, {"x": x})[0], want(w2), rtol=1e-4, atol=1e-4)
    ort = pytest.importorskip("onnxruntime")
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(w2, "w"))
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(s.run(None, {"x": x})[0], ref.run(None, {"x": x})[0], rtol=1e-4, atol=1e-4)


def test_a_conv_weight_fed_by_the_caller_is_not_kept():
    """An initializer also listed as a graph input may be fed: a fed weight's transforms are never kept (only
    the session's own read-only arrays' are), so changing it in place between runs gives the new answer."""
    m = _two_conv_model(c=4, hw=6)
    m.graph.input.append(_vi("w", [4, 4, 3, 3]))
    s = conv_onnx.load(m)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    b = numpy_helper.to_array(m.graph.initializer[1])
    fed = w.view()
    fed.flags.writeable = False      # read-only, but a view of an array the caller goes on changing
    for feed in (w, w, fed, fed):
        h = np.maximum(convkit.functional.conv2d(x, w, padding=1), 0)
        np.testing.assert_allclose(s.run(None, {"x": x, "w": feed})[0],
                                   convkit.functional.conv2d(h, w, b, padding=1), rtol=1e-5, atol=1e-5)
        w *= -2
    assert s._kept["w"].cache is None


def test_an_attribute_with_a_private_name_is_refused_at_load():
    m = _two_conv_model(c=2, hw=4)
    m.graph.node[0].attribute.append(helper.make_attribute("_weights", 1))
    with pytest.raises(ValueError, match=r"node 0 .*attributes \['_weights'\] are not Conv's"):
        conv_onnx.load(m)
