"""A session runs parts of a batch side by side only when every node keeps the samples apart: the results
match the whole batch run as one, graphs that mix samples run whole, and BLAS gets its threads back."""
import threading

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convkit import _blas, _parallel  # noqa: E402
from convkit import onnx as conv_onnx  # noqa: E402
from convkit.onnx import _batch, session as session_mod  # noqa: E402
from test_onnx_load import _model, _vi  # noqa: E402

needs_blas = pytest.mark.skipif(not _blas.can_set_threads(), reason="NumPy's BLAS threads cannot be set here")


def _init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


@pytest.fixture
def split_small(monkeypatch):
    """Every batch of two or more samples is split, over two convkit threads."""
    old = _parallel.num_threads()
    _parallel.set_num_threads(2)
    monkeypatch.setattr(session_mod, "_SPLIT_MIN_SAMPLES", 1)
    monkeypatch.setattr(session_mod, "_SPLIT_MIN_ELEMENTS", 0)
    yield
    _parallel.set_num_threads(old)


def _spy(monkeypatch, sess):
    """A list that gets True for every run done in parts, False for every whole-batch run."""
    seen = []
    real = sess._run_parts

    def spy(feed, parts, names):
        got = real(feed, parts, names)
        seen.append(got is not None)
        return got

    monkeypatch.setattr(sess, "_run_parts", spy)
    return seen


def _cnn(reshape=(0, -1), extra=()):
    """Conv -> Relu -> MaxPool -> Reshape(``reshape``) -> Gemm -> Softmax, plus ``extra`` nodes."""
    rng = np.random.default_rng(0)
    inits = [_init("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
             _init("b", rng.standard_normal(4).astype(np.float32)),
             _init("shape", np.array(reshape, np.int64)),
             _init("fc", rng.standard_normal((5, 4 * 4 * 4)).astype(np.float32)),
             _init("fcb", rng.standard_normal(5).astype(np.float32))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["p", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["z"], transB=1),
             helper.make_node("Softmax", ["z"], ["y"], axis=-1), *extra]
    return _model(nodes, [_vi("x", ["N", 3, 8, 8])], [_vi("y", ["N", 5])], inits)


def _whole(sess, feed, names=None):
    old = _parallel.num_threads()
    _parallel.set_num_threads(1)
    try:
        return sess.run(names, feed)
    finally:
        _parallel.set_num_threads(old)


@needs_blas
@pytest.mark.parametrize("n", [2, 3, 8])
def test_parts_match_the_whole_batch(split_small, monkeypatch, n):
    sess = conv_onnx.load(_cnn())
    seen = _spy(monkeypatch, sess)
    x = np.random.default_rng(n).standard_normal((n, 3, 8, 8)).astype(np.float32)
    before = _blas.blas_threads()
    (got,) = sess.run(None, {"x": x})
    assert seen == [True]
    assert _blas.blas_threads() == before
    np.testing.assert_allclose(got, _whole(sess, {"x": x})[0], rtol=1e-5, atol=1e-6)
    # every sample alone gives the same
    np.testing.assert_allclose(got, np.concatenate([_whole(sess, {"x": x[i:i + 1]})[0] for i in range(n)]),
                               rtol=1e-5, atol=1e-6)


@needs_blas
@pytest.mark.parametrize("case", ["batch in the shape", "flatten by Shape", "softmax over the batch",
                                  "sum over the batch", "static bias per sample"])
def test_graphs_that_mix_samples_run_whole(split_small, monkeypatch, case):
    n = 4
    if case == "batch in the shape":   # pairs of samples become one row: Reshape to [2, -1]
        m = _cnn()
        m.graph.initializer[2].CopyFrom(_init("shape", np.array([2, -1], np.int64)))
        m.graph.initializer[3].CopyFrom(_init("fc", np.ones((5, 128), np.float32)))
        m.graph.output[0].CopyFrom(_vi("y", [2, 5]))
    elif case == "flatten by Shape":    # torch.onnx's x.view(x.size(0), -1)
        m = _cnn()
        g = m.graph
        reshape = next(nd for nd in g.node if nd.op_type == "Reshape")
        reshape.input[1] = "dyn"
        g.node.insert(3, helper.make_node("Shape", ["p"], ["s"]))
        g.node.insert(4, helper.make_node("Gather", ["s", "zero"], ["n"], axis=0))
        g.node.insert(5, helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]))
        g.node.insert(6, helper.make_node("Concat", ["n1", "minus1"], ["dyn"], axis=0))
        g.initializer.extend([_init("zero", np.array(0, np.int64)), _init("ax0", np.array([0], np.int64)),
                              _init("minus1", np.array([-1], np.int64))])
    elif case == "softmax over the batch":
        m = _cnn()
        next(nd for nd in m.graph.node if nd.op_type == "Softmax").attribute[0].i = 0
    elif case == "sum over the batch":
        m = _cnn(extra=[helper.make_node("ReduceSum", ["y", "ax"], ["t"], keepdims=1)])
        m.graph.initializer.append(_init("ax", np.array([0], np.int64)))
        m.graph.output.append(_vi("t", [1, 5]))
    else:                                # a static (N, 5) bias: its rows belong to samples
        m = _cnn(extra=[helper.make_node("Add", ["y", "rows"], ["t"])])
        m.graph.initializer.append(_init("rows", np.arange(n * 5, dtype=np.float32).reshape(n, 5)))
        m.graph.output.append(_vi("t", [n, 5]))
    sess = conv_onnx.load(m)
    seen = _spy(monkeypatch, sess)
    x = np.random.default_rng(0).standard_normal((n, 3, 8, 8)).astype(np.float32)
    before = _blas.blas_threads()
    got = sess.run(None, {"x": x})
    want = _whole(sess, {"x": x})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert seen == [False] and _blas.blas_threads() == before
    assert sess._signature({"x": x}) in sess._mixed
    sess.run(None, {"x": x})             # known to mix: not tried again
    assert seen == [False]


@needs_blas
def test_static_outputs_and_chosen_outputs(split_small, monkeypatch):
    """A graph output computed from initializers alone comes back once, not once per part."""
    m = _cnn(extra=[helper.make_node("Mul", ["fcb", "fcb"], ["sq"]),
                    helper.make_node("Shape", ["y"], ["dims"], start=1)])
    m.graph.output.extend([_vi("sq", [5]), _vi("dims", [1], TensorProto.INT64)])
    sess = conv_onnx.load(m)
    seen = _spy(monkeypatch, sess)
    x = np.random.default_rng(1).standard_normal((6, 3, 8, 8)).astype(np.float32)
    y, sq, dims = sess.run(None, {"x": x})
    assert seen == [True]
    assert y.shape == (6, 5) and sq.shape == (5,) and dims.tolist() == [5]
    np.testing.assert_allclose(sq, numpy_helper.to_array(m.graph.initializer[4]) ** 2)
    (sq2,) = sess.run(["sq"], {"x": x})
    sq2[:] = 0                            # the caller's copy
    assert np.all(sess.run(["sq"], {"x": x})[0] == sq)


@needs_blas
def test_a_failing_node_reports_the_whole_batch(split_small, monkeypatch):
    """A part that fails is not what the caller sees: the whole batch runs and reports its own error, and BLAS's
    threads are given back."""
    m = _cnn()
    m.graph.initializer[3].CopyFrom(_init("fc", np.ones((5, 7), np.float32)))  # does not fit 64 features
    sess = conv_onnx.load(m)
    x = np.zeros((4, 3, 8, 8), np.float32)
    before = _blas.blas_threads()
    with pytest.raises(ValueError, match=r"node 4 .*Gemm") as split_err:
        sess.run(None, {"x": x})
    with pytest.raises(ValueError) as whole_err:
        _whole(sess, {"x": x})
    assert str(split_err.value) == str(whole_err.value)
    assert _blas.blas_threads() == before


@needs_blas
def test_parts_run_side_by_side_even_while_blas_spins(split_small, monkeypatch):
    # a part is a whole network: worth sharing a core with BLAS's spinning workers (short blocks run inline)
    monkeypatch.setattr(_parallel, "_blas_running", lambda: True)
    sess = conv_onnx.load(_cnn())
    ran_on, real = [], sess._execute
    meet = threading.Barrier(2, timeout=10)    # each part waits for the other: they must run at once

    def spy(*a, **k):
        ran_on.append(threading.get_ident())
        meet.wait()
        return real(*a, **k)

    monkeypatch.setattr(sess, "_execute", spy)
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    sess.run(None, {"x": x})
    assert len(ran_on) == 2 and len(set(ran_on)) == 2     # the calling thread takes one part itself


@needs_blas
def test_sessions_run_in_parts_from_several_threads(split_small):
    sess = conv_onnx.load(_cnn())
    xs = [np.random.default_rng(i).standard_normal((4, 3, 8, 8)).astype(np.float32) for i in range(6)]
    want = [_whole(sess, {"x": x})[0] for x in xs]
    before = _blas.blas_threads()
    got = [None] * len(xs)

    def work(i):
        for _ in range(3):
            got[i] = sess.run(None, {"x": xs[i]})[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert _blas.blas_threads() == before


@needs_blas
def test_one_thread_nests_and_restores():
    before = _blas.blas_threads()
    with _blas.one_thread() as ok:
        assert ok and _blas.blas_threads() == 1 and _blas.held_to_one_thread()
        with _blas.one_thread():
            assert _blas.blas_threads() == 1
        assert _blas.blas_threads() == 1
    assert _blas.blas_threads() == before and not _blas.held_to_one_thread()
    with pytest.raises(RuntimeError):
        with _blas.one_thread():
            raise RuntimeError("boom")
    assert _blas.blas_threads() == before


def test_small_feeds_and_one_thread_run_whole(monkeypatch):
    sess = conv_onnx.load(_cnn())
    seen = _spy(monkeypatch, sess)
    x = np.zeros((4, 3, 8, 8), np.float32)
    sess.run(None, {"x": x})                       # 768 numbers: below _SPLIT_MIN_ELEMENTS
    old = _parallel.num_threads()
    _parallel.set_num_threads(1)
    try:
        monkeypatch.setattr(session_mod, "_SPLIT_MIN_ELEMENTS", 0)
        sess.run(None, {"x": x})                   # one convkit thread
    finally:
        _parallel.set_num_threads(old)
    assert seen == []


# ------------------------------------------------------------------ the rules, node by node
def _check(op, args, batched, attrs=None, params=None, opset=17):
    args = [np.asarray(a) if a is not None else None for a in args]
    return _batch.check(op, params or tuple(f"in{i}" for i in range(len(args))), args, attrs or {}, batched, opset)


X = np.zeros((4, 3, 5, 5), np.float32)


@pytest.mark.parametrize("op, args, batched, attrs, params", [
    ("Conv", [X, np.zeros((2, 3, 3, 3))], [True, False], {}, None),
    ("Add", [X, np.zeros((3, 1, 1))], [True, False], {}, None),
    ("Add", [X, np.zeros((1, 3, 5, 5))], [True, False], {}, None),
    ("Add", [X, X], [True, True], {}, None),
    ("Sum", [X, X, np.zeros(5)], [True, True, False], {}, None),
    ("Reshape", [X, [0, -1]], [True, False], {}, ("data", "shape")),
    ("Reshape", [X, [-1, 75]], [True, False], {}, ("data", "shape")),
    ("Reshape", [X, [-1, 0, 25]], [True, False], {}, ("data", "shape")),
    ("Flatten", [X], [True], {"axis": 1}, None),
    ("Flatten", [X], [True], {"axis": -3}, None),
    ("Transpose", [X], [True], {"perm": [0, 2, 3, 1]}, None),
    ("Softmax", [X], [True], {}, None),
    ("Softmax", [X], [True], {"axis": 1}, None),
    ("Gemm", [np.zeros((4, 3)), np.zeros((3, 2)), np.zeros((1, 2))], [True, False, False], {}, None),
    ("MatMul", [np.zeros((4, 3)), np.zeros((3, 2))], [True, False], {}, None),
    ("MatMul", [np.zeros((4, 2, 3)), np.zeros((3, 2))], [True, False], {}, None),
    ("MatMul", [np.zeros((5, 3)), np.zeros((4, 3, 2))], [False, True], {}, None),
    ("Concat", [X, X], [True, True], {"axis": 1}, None),
    ("Split", [X], [True], {"axis": 1, "num_outputs": 3}, None),
    ("Slice", [X, [0], [2], [1]], [True, False, False, False], {}, ("data", "starts", "ends", "axes")),
    ("Squeeze", [np.zeros((4, 1, 3)), [1]], [True, False], {}, ("data", "axes")),
    ("Unsqueeze", [X, [1]], [True, False], {}, ("data", "axes")),
    ("Pad", [X, [0, 0, 1, 1, 0, 0, 1, 1]], [True, False], {}, ("data", "pads")),
    ("Pad", [X, [1, 1], None, [2]], [True, False, False, False], {}, ("data", "pads", "constant_value", "axes")),
    ("ReduceMean", [X, [2, 3]], [True, False], {}, ("data", "axes")),
    ("Gather", [X, [0, 2]], [True, False], {"axis": 1}, None),
    ("Gather", [np.zeros((10, 3)), np.zeros((4, 2), np.int64)], [False, True], {"axis": 0}, None),
    ("Resize", [X, None, [1, 1, 2, 2]], [True, False, False], {}, ("X", "roi", "scales", "sizes")),
    ("Dropout", [X], [True], {}, ("data", "ratio", "training_mode")),
    ("BatchNormalization", [X] + [np.ones(3)] * 4, [True] + [False] * 4, {}, None),
    ("PRelu", [X, np.ones((3, 1, 1))], [True, False], {}, None),
])
def test_nodes_that_keep_samples_apart(op, args, batched, attrs, params):
    assert _check(op, args, batched, attrs, params) is True


@pytest.mark.parametrize("op, args, batched, attrs, params", [
    ("Conv", [X, X], [True, True], {}, None),                      # a batched weight
    ("Add", [X, np.zeros((4, 3, 5, 5))], [True, False], {}, None),  # a static value per sample
    ("Add", [X, np.zeros((5, 5))], [False, True], {}, None),        # the batched input broadcast
    ("Reshape", [X, [2, -1]], [True, False], {}, ("data", "shape")),
    ("Reshape", [X, [-1, 25]], [True, False], {}, ("data", "shape")),
    ("Reshape", [X, [0, -1]], [True, True], {}, ("data", "shape")),
    ("Flatten", [X], [True], {"axis": 0}, None),
    ("Transpose", [X], [True], {}, None),
    ("Transpose", [X], [True], {"perm": [1, 0, 2, 3]}, None),
    ("Softmax", [X], [True], {"axis": 0}, None),
    ("Softmax", [np.zeros(4)], [True], {}, None),
    ("Gemm", [np.zeros((4, 3)), np.zeros((3, 2)), np.zeros((4, 2))], [True, False, False], {}, None),
    ("Gemm", [np.zeros((3, 4)), np.zeros((3, 2))], [True, False], {"transA": 1}, None),
    ("MatMul", [np.zeros((5, 4)), np.zeros((4, 2))], [False, True], {}, None),
    ("Concat", [X, X], [True, False], {"axis": 1}, None),
    ("Concat", [X, X], [True, True], {"axis": 0}, None),
    ("Split", [X], [True], {"axis": 0, "num_outputs": 2}, None),
    ("Slice", [X, [0], [2]], [True, False, False], {}, ("data", "starts", "ends", "axes")),
    ("Slice", [X, [0], [2], [-4]], [True, False, False, False], {}, ("data", "starts", "ends", "axes")),
    ("Squeeze", [np.zeros((4, 1, 3))], [True], {}, ("data", "axes")),
    ("Unsqueeze", [X, [0]], [True, False], {}, ("data", "axes")),
    ("Pad", [X, [1, 0, 0, 0, 0, 0, 0, 0]], [True, False], {}, ("data", "pads")),
    ("Pad", [X, [1, 0], None, [0]], [True, False, False, False], {}, ("data", "pads", "constant_value", "axes")),
    ("ReduceMean", [X], [True], {}, ("data", "axes")),
    ("ReduceSum", [X, [0]], [True, False], {}, ("data", "axes")),
    ("Gather", [X, [0, 2]], [True, False], {"axis": 0}, None),
    ("Gather", [np.zeros((10, 3)), np.zeros((4, 2), np.int64)], [False, True], {"axis": 1}, None),
    ("Resize", [X, None, [2, 1, 2, 2]], [True, False, False], {}, ("X", "roi", "scales", "sizes")),
    ("Resize", [X, None, None, [4, 3, 10, 10]], [True, False, False, False], {}, ("X", "roi", "scales", "sizes")),
    ("Dropout", [X, 0.5, True], [True, False, False], {}, ("data", "ratio", "training_mode")),
    ("BatchNormalization", [X] + [np.ones(3)] * 4, [True] + [False] * 4, {"training_mode": 1}, None),
    ("MaxPool", [X], [True], {"return_indices": True}, None),
    ("MaxUnpool", [X, X], [True, True], {}, None),
    ("PRelu", [X, np.ones((4, 3, 5, 5))], [True, False], {}, None),
    ("Shape", [X], [True], {}, None),
    ("ConstantOfShape", [[4, 2]], [True], {}, None),
])
def test_nodes_that_mix_samples(op, args, batched, attrs, params):
    with pytest.raises(_batch.Mixed, match=op):
        _check(op, args, batched, attrs, params)


def test_static_nodes_and_sample_shapes():
    assert _check("Shape", [X], [True], {"start": 1}) is False      # (3, 5, 5): the same for every part
    assert _check("Shape", [X], [True], {"start": -3}) is False
    assert _check("Reshape", [X, [4, -1]], [False, False], {}, ("data", "shape")) is False   # nothing batched
    assert _check("Softmax", [X], [True], {}, opset=11) is True     # before opset 13: rows from axis 1


# ------------------------------------------------------------------ a Relu moved after the MaxPool that reads it
@pytest.mark.parametrize("case", ["moved", "read twice", "indices", "graph output", "wide pads", "dilated"])
def test_relu_then_max_pool_runs_pool_first(case):
    rng = np.random.default_rng(3)
    # windows of padding alone (wide pads; dilated taps that skip the input) give -inf, and relu(-inf) is 0
    window = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}
    if case == "wide pads":
        window = {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [2, 2, 2, 2]}
    if case == "dilated":
        window = {"kernel_shape": [2, 2], "dilations": [10, 1], "pads": [1, 0, 1, 0]}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"] + (["i"] if case == "indices" else []), **window, name="pool")]
    outputs = [_vi("p", None)] + ([_vi("i", None, TensorProto.INT64)] if case == "indices" else [])
    if case == "read twice":
        nodes.append(helper.make_node("Sigmoid", ["r"], ["q"]))
        outputs.append(_vi("q", None))
    if case == "graph output":
        outputs.append(_vi("r", None))
    m = _model(nodes, [_vi("x", [2, 3, 9, 11])], outputs, [_init("w", rng.standard_normal((4, 3, 3, 3)).astype(
        np.float32))])
    sess = conv_onnx.load(m)
    order = [op for _, _, op, _, _, _, _ in sess._nodes]
    assert order == (["Conv", "MaxPool", "Relu"] if case == "moved" else ["Conv", "Relu", "MaxPool"] +
                     (["Sigmoid"] if case == "read twice" else []))
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    c = conv_onnx.ops.Conv(x, numpy_helper.to_array(m.graph.initializer[0]), pads=[1, 1, 1, 1])
    want = conv_onnx.ops.MaxPool(conv_onnx.ops.Relu(c), **window)
    got = sess.run(None, {"x": x})
    np.testing.assert_array_equal(got[0], want)
    assert np.isneginf(want).any() == (case in ("wide pads", "dilated"))
    if case == "graph output":
        np.testing.assert_array_equal(got[1], conv_onnx.ops.Relu(c))


def test_split_batch_false_keeps_runs_whole(split_small, monkeypatch):
    sess = conv_onnx.load(_cnn(), split_batch=False)
    seen = _spy(monkeypatch, sess)
    sess.run(None, {"x": np.zeros((4, 3, 8, 8), np.float32)})
    assert seen == []
    with pytest.raises(TypeError, match="split_batch must be a bool"):
        conv_onnx.load(_cnn(), split_batch="no")


@needs_blas
@pytest.mark.parametrize("name, shape", [("mnist_cnn", (1, 28, 28)), ("lenet5", (1, 28, 28)), ("resnet8", (3, 16, 16)),
                                         ("fcn", (1, 28, 28)), ("digits_cnn", (1, 8, 8))])
def test_exported_models_run_in_parts(split_small, monkeypatch, tmp_path, name, shape):
    """convkit's own models, exported with a symbolic batch (BatchNorm, Flatten/Reshape, residual adds,
    global pools), split and match the whole batch and onnxruntime."""
    import convkit
    from convkit.models import get_model
    model = get_model(name, **({"in_channels": shape[0]} if name != "resnet8" else {}))
    model.eval()
    path = tmp_path / f"{name}.onnx"
    x = np.random.default_rng(5).standard_normal((6,) + shape).astype(np.float32)
    conv_onnx.export(model, convkit.Tensor(x[:2]), path)
    sess = conv_onnx.load(path)
    seen = _spy(monkeypatch, sess)
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    assert seen == [True]
    np.testing.assert_allclose(got, _whole(sess, {sess.get_inputs()[0].name: x})[0], rtol=1e-5, atol=1e-5)
    ort = pytest.importorskip("onnxruntime")
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {
        sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
