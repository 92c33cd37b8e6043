"""Whole models through convkit.onnx.load against onnxruntime (2 threads) and stored outputs.

The onnx package's light zoo (resnet50, vgg19, inception v1/v2, densenet121, squeezenet,
shufflenet, alexnet, zfnet512) has every weight one constant, so small CNN graphs with real
random weights are built here too (at several opsets, where attributes became inputs), and a
small PyTorch model is exported when torch is installed.
"""
import glob
import io
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convkit import onnx as conv_onnx  # noqa: E402

LIGHT = sorted(glob.glob(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "*.onnx")))


def _ort(model_or_path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def test_the_light_zoo_is_there():
    names = {os.path.basename(p)[6:-5] for p in LIGHT}
    assert {"resnet50", "vgg19", "inception_v1", "inception_v2", "densenet121", "squeezenet", "shufflenet",
            "bvlc_alexnet", "zfnet512"} <= names


@pytest.mark.parametrize("path", LIGHT, ids=[os.path.basename(p)[6:-5] for p in LIGHT])
def test_light_model(path):
    sess = conv_onnx.load(path)
    (inp,) = sess.get_inputs()
    shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in inp.shape)
    n = int(np.prod(shape))
    x = (np.arange(n).reshape(shape) / n).astype(np.float32)  # the onnx backend runner's input
    (got,) = sess.run(None, {inp.name: x})
    stored = numpy_helper.to_array(onnx.load_tensor(path[:-5] + "_output_0.pb"))
    (ref,) = _ort(path).run(None, {inp.name: x})
    assert got.shape == stored.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, stored, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- random weights
def _init(rng, name, *shape, scale=None, positive=False):
    fan = int(np.prod(shape[1:])) or 1
    a = rng.standard_normal(shape) * (scale if scale is not None else 1 / np.sqrt(fan))
    a = np.abs(a) + 0.5 if positive else a
    return numpy_helper.from_array(a.astype(np.float32), name)


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def small_cnn(opset, seed=0):
    """conv/bn/relu/pool/depthwise/convtranspose/concat/resize/pad/slice/split/reduce/gemm/softmax
    with random weights, written the way the given opset wants (attributes vs inputs)."""
    rng = np.random.default_rng(seed)
    N, C, H, W = 2, 3, 16, 16
    inits = [
        _init(rng, "w1", 8, 3, 3, 3), _init(rng, "b1", 8, scale=0.1),
        _init(rng, "g1", 8, positive=True), _init(rng, "be1", 8, scale=0.1), _init(rng, "m1", 8, scale=0.1),
        _init(rng, "v1", 8, positive=True),
        _init(rng, "wd", 8, 1, 3, 3), _init(rng, "w2", 8, 8, 1, 1),
        _init(rng, "wt", 8, 4, 2, 2), _init(rng, "bt", 4, scale=0.1),
        _init(rng, "slope", 12, 1, 1, scale=0.3),
        _init(rng, "fc", 10, 12), _init(rng, "fcb", 10, scale=0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g1", "be1", "m1", "v1"], ["bn1"], epsilon=1e-3),
        helper.make_node("Relu", ["bn1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),           # 8x8
        helper.make_node("Conv", ["p1", "wd"], ["dw"], group=8, pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Conv", ["dw", "w2"], ["pw"]),
        helper.make_node("Add", ["pw", "p1"], ["res"]),
        helper.make_node("HardSwish" if opset >= 14 else "Sigmoid", ["res"], ["act"]),
        helper.make_node("ConvTranspose", ["act", "wt", "bt"], ["up"], strides=[2, 2]),             # 4x16x16
        helper.make_node("AveragePool", ["up"], ["ap"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),                                                        # 4x8x8
        helper.make_node("Concat", ["act", "ap"], ["cat"], axis=1),                                 # 12x8x8
        helper.make_node("PRelu", ["cat", "slope"], ["pr"]),
        helper.make_node("LeakyRelu", ["pr"], ["lr"], alpha=0.2),
    ]
    if opset >= 11:
        inits += [_init(rng, "roi", 0), numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc"),
                  numpy_helper.from_array(np.array([0.0], np.float32), "lo"),
                  numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
                  _ints("pads", [0, 0, 1, 2, 0, 0, 2, 1]), _ints("st", [1, 1]), _ints("en", [-1, 100]),
                  _ints("ax", [2, 3])]
        nodes += [
            helper.make_node("Resize", ["lr", "roi", "sc"], ["rs"], mode="linear"),                 # 12x16x16
            helper.make_node("Clip", ["rs", "lo", "hi"], ["cl"]),
            helper.make_node("Pad", ["cl", "pads"], ["pd"], mode="reflect"),                        # 12x19x19
            helper.make_node("Slice", ["pd", "st", "en", "ax"], ["sl"]),                            # 12x17x18
        ]
    else:
        nodes += [
            helper.make_node("Upsample", ["lr", "sc"] if opset >= 9 else ["lr"], ["rs"], mode="linear",
                             **({} if opset >= 9 else {"scales": [1.0, 1.0, 2.0, 2.0]})),
            helper.make_node("Clip", ["rs"], ["cl"], min=0.0, max=6.0),
            helper.make_node("Pad", ["cl"], ["pd"], mode="reflect", pads=[0, 0, 1, 2, 0, 0, 2, 1]),
            helper.make_node("Slice", ["pd"], ["sl"], starts=[1, 1], ends=[-1, 100], axes=[2, 3]),
        ]
        if opset >= 9:
            inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc"))
    if opset >= 13:
        inits += [_ints("split", [6, 6])]
        nodes += [helper.make_node("Split", ["sl", "split"], ["s1", "s2"], axis=1)]
    else:
        nodes += [helper.make_node("Split", ["sl"], ["s1", "s2"], axis=1, split=[6, 6])]
    nodes += [helper.make_node("Mul", ["s1", "s2"], ["mu"]),
              helper.make_node("Concat", ["mu", "s2"], ["cat2"], axis=1)]
    if opset >= 18:
        inits += [_ints("rax", [2, 3])]
        nodes += [helper.make_node("ReduceMean", ["cat2", "rax"], ["gap"], keepdims=1)]
    else:
        nodes += [helper.make_node("ReduceMean", ["cat2"], ["gap"], axes=[2, 3], keepdims=1)]
    if opset >= 13:
        inits += [_ints("sq", [2, 3])]
        nodes += [helper.make_node("Squeeze", ["gap", "sq"], ["flat"])]
    else:
        nodes += [helper.make_node("Squeeze", ["gap"], ["flat"], axes=[2, 3])]
    nodes += [helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"], transB=1),
              helper.make_node("Softmax", ["logits"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "small_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  ["N", C, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10]),
                               helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8 if opset < 21 else 10)
    return model, np.random.default_rng(seed + 1).standard_normal((N, C, H, W)).astype(np.float32)


@pytest.mark.parametrize("opset", [7, 9, 11, 13, 17, 18])
def test_random_weight_cnn_matches_onnxruntime(opset):
    model, x = small_cnn(opset)
    onnx.checker.check_model(model)
    got = conv_onnx.load(model).run(None, {"x": x})
    ref = _ort(model).run(None, {"x": x})
    for g, r in zip(got, ref):
        assert g.shape == r.shape and g.dtype == r.dtype
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    assert np.abs(ref[1]).max() > 0.1  # not a degenerate all-equal output


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter's notice
def test_torch_exported_cnn_matches_torch_and_onnxruntime():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
            self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 16, 1), nn.Hardswish())
            self.head = nn.Linear(24, 5)

        def forward(self, x):
            a = self.a(x)
            b = self.b(a)
            up = nn.functional.interpolate(b, scale_factor=2, mode="bilinear", align_corners=False)
            z = torch.cat([nn.functional.avg_pool2d(up, 2), a], 1)
            return torch.softmax(self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(z, 1), 1)), -1)

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 12, 12)
    buf = io.BytesIO()
    try:
        torch.onnx.export(net, (x,), buf, opset_version=17, input_names=["x"], output_names=["y"], dynamo=False)
    except Exception as e:  # an exporter that needs packages this machine lacks
        pytest.skip(f"torch.onnx.export failed here: {e}")
    data = buf.getvalue()
    with torch.no_grad():
        expected = net(x).numpy()
    (got,) = conv_onnx.load(data).run(None, {"x": x.numpy()})
    (ref,) = _ort(onnx.load_from_string(data)).run(None, {"x": x.numpy()})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore")  # the TorchScript exporter's deprecation and tracer notices
def test_torch_exported_dynamic_batch_with_shape_ops():
    """x.view(x.size(0), -1) and a dynamic batch axis export as Shape/Gather/Unsqueeze/Concat/Reshape."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Conv2d(2, 6, 3, stride=2, padding=1), nn.InstanceNorm2d(6, affine=True),
                                     nn.LeakyReLU(0.1), nn.Conv2d(6, 6, 3, padding=1), nn.ELU())
            self.dec = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1)
            self.fc = nn.Linear(4 * 16 * 16, 3)

        def forward(self, x):
            h = self.enc(x)
            h = torch.sigmoid(self.dec(nn.functional.interpolate(h, scale_factor=2, mode="nearest")))
            h = nn.functional.max_pool2d(h, 2)
            return self.fc(h.view(h.size(0), -1)), h.mean(dim=(2, 3))

    torch.manual_seed(1)
    net = Net().eval()
    net(torch.randn(2, 2, 16, 16))  # the model itself is right before the exporter is tried
    buf = io.BytesIO()
    try:
        torch.onnx.export(net, (torch.randn(2, 2, 16, 16),), buf, opset_version=13, input_names=["x"],
                          output_names=["logits", "pooled"], dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    except Exception as e:
        pytest.skip(f"torch.onnx.export failed here: {e}")
    data = buf.getvalue()
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    sess = conv_onnx.load(data)
    ref = _ort(onnx.load_from_string(data))
    for n in (1, 5):
        x = torch.randn(n, 2, 16, 16)
        with torch.no_grad():
            expected = [t.numpy() for t in net(x)]
        got = sess.run(None, {"x": x.numpy()})
        theirs = ref.run(None, {"x": x.numpy()})
        for g, e, r in zip(got, expected, theirs):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    assert {"ConvTranspose", "InstanceNormalization", "Shape", "Gather", "Unsqueeze", "Concat", "Reshape"} <= ops
