"""convkit.onnx.export: every layer kind and every model in convkit.models, run by onnxruntime
against convkit's own output (rtol 1e-5), at the traced batch size and at another one."""
import numpy as np
import pytest

import convkit
import convkit.functional as F
from convkit import models, nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from convkit.onnx import ExportError, export  # noqa: E402


def _session(proto):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _ours(net, x):
    xs = [convkit.tensor(a) for a in (x if isinstance(x, tuple) else (x,))]
    with convkit.no_grad():
        out = net(*xs)
    return [o.data for o in (out if isinstance(out, (tuple, list)) else (out,))]


def check(net, x, other_batch=3, opset=17, **kw):
    """Export, run with onnxruntime at the traced batch and at ``other_batch``; compare with convkit."""
    net.eval()
    proto = export(net, x, None, opset=opset, **kw)
    sess = _session(proto)
    names = [i.name for i in sess.get_inputs()]
    xs = x if isinstance(x, tuple) else (x,)
    batches = [xs]
    if other_batch:
        rng = np.random.default_rng(7)
        batches.append(tuple(rng.normal(size=(other_batch, *a.shape[1:])).astype(a.dtype) for a in xs))
    for b in batches:
        got = sess.run(None, dict(zip(names, b)))
        want = _ours(net, b if len(b) > 1 else b[0])
        assert len(got) == len(want)
        for g_, w in zip(got, want):
            assert g_.shape == w.shape
            np.testing.assert_allclose(g_, w, rtol=1e-5, atol=1e-6)
    return proto


def ops_of(proto):
    return [n.op_type for n in proto.graph.node]


def randn(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _randomize_bn(net, seed=1):
    rng = np.random.default_rng(seed)
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and m.running_mean is not None:
            m.running_mean.data[...] = rng.normal(size=m.running_mean.shape) * 0.1
            m.running_var.data[...] = rng.uniform(0.5, 2.0, size=m.running_var.shape)
            if m.weight is not None:
                m.weight.data[...] = rng.uniform(0.5, 1.5, size=m.weight.shape)
                m.bias.data[...] = rng.normal(size=m.bias.shape) * 0.1
    return net


class Lambda(nn.Module):
    def __init__(self, fn, *mods):
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(mods)

    def forward(self, *x):
        return self.fn(self, *x)


# ---------------------------------------------------------------- models

MODEL_INPUTS = {"mnist_cnn": (2, 1, 28, 28), "lenet5": (2, 1, 28, 28), "digits_cnn": (2, 1, 8, 8),
                "resnet8": (2, 3, 32, 32), "resnet20": (2, 3, 32, 32)}


@pytest.mark.parametrize("name", sorted(MODEL_INPUTS))
def test_every_model_matches_onnxruntime(name, tmp_path):
    convkit.manual_seed(0)
    net = _randomize_bn(models.get_model(name))
    x = randn(*MODEL_INPUTS[name])
    proto = check(net, x)
    # initializers are the state_dict's own names (num_batches_tracked is never used)
    inits = {i.name for i in proto.graph.initializer}
    params = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    assert params <= inits
    if name == "resnet8":
        path = export(net, x, tmp_path / "r8.onnx")
        assert (tmp_path / "r8.onnx").read_bytes() == path.SerializeToString()


@pytest.mark.parametrize("head", ["conv", "gap"])
def test_fcn_heads(head):
    convkit.manual_seed(0)
    proto = check(models.fcn(head=head), randn(2, 1, 28, 28))
    assert ("GlobalAveragePool" in ops_of(proto)) == (head == "gap")


def test_fcn_conv_head_on_a_larger_image_keeps_its_score_map():
    convkit.manual_seed(0)
    check(models.fcn(), randn(2, 1, 36, 36))


def test_export_restores_training_flag_and_runs_in_eval_mode():
    convkit.manual_seed(0)
    net = models.mnist_cnn().train()
    proto = export(net, randn(2, 1, 28, 28), None)
    assert net.training and all(m.training for m in net.modules())
    assert "Identity" in ops_of(proto) and "Dropout" not in ops_of(proto)
    net.eval()
    export(net, randn(2, 1, 28, 28), None)
    assert not net.training


# ---------------------------------------------------------------- convolutions

CONV_CASES = [
    (1, dict(kernel_size=3, padding=1)),
    (1, dict(kernel_size=4, padding="same", dilation=2)),
    (1, dict(kernel_size=3, padding=2, padding_mode="circular")),
    (2, dict(kernel_size=3, stride=2, padding=((1, 2), (0, 1)))),
    (2, dict(kernel_size=(3, 2), padding="same", stride=2)),
    (2, dict(kernel_size=4, padding="same_lower")),
    (2, dict(kernel_size=3, padding="valid", dilation=(2, 1), groups=2)),
    (2, dict(kernel_size=3, padding=1, padding_mode="reflect")),
    (2, dict(kernel_size=3, padding=(2, 1), padding_mode="replicate", stride=2)),
    (2, dict(kernel_size=3, padding=1, padding_mode="circular", bias=False)),
    (2, dict(kernel_size=3, padding=1, groups=4, data_format="channels_last")),
    (3, dict(kernel_size=3, padding=1, stride=(1, 2, 2))),
    (3, dict(kernel_size=2, padding="same", padding_mode="reflect", groups=2)),
]


@pytest.mark.parametrize("n,kw", CONV_CASES, ids=[f"{n}d-{i}" for i, (n, _) in enumerate(CONV_CASES)])
@pytest.mark.parametrize("opset", [17, 13])
def test_conv(n, kw, opset):
    convkit.manual_seed(0)
    layer = getattr(nn, f"Conv{n}d")(4, 8, **kw)
    size = (7, 9, 6)[:n]
    shape = (2, *size, 4) if kw.get("data_format") == "channels_last" else (2, 4, *size)
    proto = check(layer, randn(*shape), opset=opset)
    assert "Conv" in ops_of(proto)
    if kw.get("padding_mode", "zeros") != "zeros":
        assert ops_of(proto)[0] in ("Pad", "Slice")


def test_conv_unbatched_input():
    convkit.manual_seed(0)
    check(nn.Conv2d(3, 4, 3, padding=1), randn(3, 6, 6), other_batch=0, dynamic_batch=False)


def test_unbatched_pools_and_flatten_unflatten():
    net = nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(2, padding=1), nn.AdaptiveAvgPool2d((2, 3)),
                        nn.Flatten(0), nn.Unflatten(0, (3, 6)))
    check(net, randn(3, 7, 9), other_batch=0, dynamic_batch=False)
    check(nn.Sequential(nn.Flatten(), nn.Unflatten(1, (2, 6))), randn(2, 3, 4))


TRANSPOSE_CASES = [
    (1, dict(kernel_size=3, stride=2, padding=1, output_padding=1)),
    (2, dict(kernel_size=3, stride=2, padding=((1, 0), (0, 2)))),
    (2, dict(kernel_size=2, stride=2, groups=2, bias=False)),
    (2, dict(kernel_size=3, stride=3, dilation=2, output_padding=(1, 2))),
    (3, dict(kernel_size=2, stride=(1, 2, 2), padding=1)),
]


@pytest.mark.parametrize("n,kw", TRANSPOSE_CASES, ids=[f"{n}d-{i}" for i, (n, _) in enumerate(TRANSPOSE_CASES)])
def test_conv_transpose(n, kw):
    convkit.manual_seed(0)
    layer = getattr(nn, f"ConvTranspose{n}d")(4, 6, **kw)
    assert "ConvTranspose" in ops_of(check(layer, randn(2, 4, *(5, 6, 4)[:n])))


def test_conv_transpose_with_output_size():
    convkit.manual_seed(0)
    up = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    check(Lambda(lambda self, x: self.mods[0](x, output_size=(10, 9)), up), randn(2, 3, 5, 5))


# ---------------------------------------------------------------- pooling

POOL_CASES = [
    (nn.MaxPool1d, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (nn.MaxPool2d, dict(kernel_size=2)),
    (nn.MaxPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (nn.MaxPool2d, dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    (nn.MaxPool2d, dict(kernel_size=2, stride=3, padding=1, ceil_mode=True)),
    (nn.MaxPool2d, dict(kernel_size=2, padding=((2, 0), (0, 3)))),   # wider than the kernel: a Pad first
    (nn.MaxPool3d, dict(kernel_size=2, stride=(1, 2, 2), ceil_mode=True)),
    (nn.AvgPool1d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (nn.AvgPool2d, dict(kernel_size=2, stride=2, padding=1, divisor_override=3)),
    (nn.AvgPool3d, dict(kernel_size=2, ceil_mode=True)),
    (nn.LPPool2d, dict(norm_type=2, kernel_size=2, stride=2, ceil_mode=True)),
    (nn.LPPool1d, dict(norm_type=3, kernel_size=3)),
    (nn.AdaptiveAvgPool2d, dict(output_size=1)),
    (nn.AdaptiveAvgPool2d, dict(output_size=(2, 3))),
    (nn.AdaptiveAvgPool2d, dict(output_size=(3, 4))),     # 7x9 -> 3x4 does not divide: bin matrices
    (nn.AdaptiveAvgPool2d, dict(output_size=(None, 3))),
    (nn.AdaptiveAvgPool1d, dict(output_size=4)),
    (nn.AdaptiveAvgPool3d, dict(output_size=(1, 2, 3))),
    (nn.AdaptiveMaxPool2d, dict(output_size=(1, 3))),
    (nn.AdaptiveMaxPool2d, dict(output_size=1)),
]


@pytest.mark.parametrize("cls,kw", POOL_CASES, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(POOL_CASES)])
def test_pool(cls, kw):
    n = int(cls.__name__[-2])
    x = randn(2, 3, *(7, 9, 6)[:n])
    if cls.__name__.startswith("LP"):
        x = np.abs(x)
    check(cls(**kw), x)


def test_global_pool_functions():
    check(Lambda(lambda self, x: F.global_avg_pool(x) + F.global_max_pool(x)), randn(2, 3, 5, 4))


# ---------------------------------------------------------------- normalisation, linear, activations

def test_batch_norm_eval_and_without_running_stats():
    convkit.manual_seed(0)
    for layer, shape in [(nn.BatchNorm1d(5), (4, 5)), (nn.BatchNorm1d(5), (4, 5, 6)), (nn.BatchNorm2d(5), (2, 5, 4, 3)),
                         (nn.BatchNorm3d(5, affine=False), (2, 5, 3, 3, 2))]:
        proto = check(_randomize_bn(layer), randn(*shape))
        assert ops_of(proto) == ["BatchNormalization"]
    # no running statistics: batch statistics in eval too, so only the traced batch can match
    check(nn.BatchNorm2d(5, track_running_stats=False), randn(3, 5, 4, 4), other_batch=0)


@pytest.mark.parametrize("opset", [17, 13])
def test_layer_group_instance_lrn(opset):
    convkit.manual_seed(0)
    for layer in [nn.LayerNorm(6), nn.LayerNorm((4, 6)), nn.LayerNorm((4, 6), elementwise_affine=False),
                  nn.GroupNorm(2, 4), nn.GroupNorm(4, 4, affine=False), nn.InstanceNorm2d(4),
                  nn.InstanceNorm2d(4, affine=True), nn.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=2.0)]:
        for p in layer.parameters():
            p.data[...] = randn(*p.shape, seed=3)
        check(layer, randn(2, 4, 4, 6), opset=opset)


def test_instance_norm_with_running_stats_in_eval():
    layer = nn.InstanceNorm1d(3, track_running_stats=True)
    layer.running_mean.data[...] = [0.1, -0.2, 0.3]
    layer.running_var.data[...] = [1.5, 0.5, 2.0]
    check(layer, randn(2, 3, 5))


def test_linear_gemm_and_matmul():
    convkit.manual_seed(0)
    assert ops_of(check(nn.Linear(5, 3), randn(4, 5))) == ["Gemm"]
    check(nn.Linear(5, 3, bias=False), randn(4, 5))
    check(nn.Linear(5, 3), randn(2, 7, 5))
    w = convkit.tensor(randn(5, 2, seed=4))
    check(Lambda(lambda self, x: (x @ w) @ (x @ w).transpose(1, 2)), randn(3, 4, 5))


ACTIVATIONS = [nn.ReLU(), nn.ReLU6(), nn.LeakyReLU(0.2), nn.ELU(0.7), nn.SELU(), nn.Sigmoid(), nn.Tanh(),
               nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Softmax(dim=1), nn.LogSoftmax(dim=-1), nn.Hardswish(),
               nn.Hardsigmoid(), nn.PReLU(), nn.PReLU(4), nn.Softplus(), nn.Softplus(beta=2, threshold=3),
               nn.Dropout(0.3), nn.Dropout2d(0.2), nn.Identity()]


@pytest.mark.parametrize("layer", ACTIVATIONS, ids=[repr(a) for a in ACTIVATIONS])
@pytest.mark.parametrize("opset", [17, 13, 20])
def test_activation(layer, opset):
    if isinstance(layer, nn.PReLU):
        layer.weight.data[...] = np.linspace(-0.5, 0.5, layer.weight.numel())
    check(layer, randn(2, 4, 3, 5) * 3, opset=opset)


def test_activation_ops_used():
    x = randn(2, 4, 3, 3)
    assert ops_of(check(nn.ReLU6(), x)) == ["Clip"]
    assert ops_of(check(nn.Hardswish(), x)) == ["HardSwish"]
    assert ops_of(check(nn.Dropout(), x)) == ["Identity"]
    assert ops_of(check(nn.GELU(), x, opset=20)) == ["Gelu"]


# ---------------------------------------------------------------- Tensor ops

TENSOR_OPS = {
    "arith": lambda self, x: ((x + 1) * 2 - x / 3) ** 2 + 0.5 - (1 - x) * (2 / (x * x + 1)),
    "unary": lambda self, x: (-x).exp().clip(0.1, 5).log() + x.abs().sqrt() + x.clamp(max=0.5) + x.clip(min=-1),
    "reduce": lambda self, x: x.mean((2, 3)) + x.sum((2, 3), keepdim=True)[:, :, 0, 0] + x.var(2).sum(-1) + x.std(3, keepdim=True).sum(
        (2, 3)) + x.amax((2, 3)) - x.amin(-1).mean(-1),
    "max_dim": lambda self, x: x.max(1).values + x.min(dim=1, keepdim=True)[0].squeeze(1) + x.max(1).indices,
    "argmax": lambda self, x: convkit.autograd.argmax(x, 1),
    "shape": lambda self, x: x.reshape(x.shape[0], 4, -1).transpose(1, 2).permute(0, 2, 1).flatten(1).view(
        -1, 2, 30)[:, 1].unsqueeze(1).squeeze(),
    "slicing": lambda self, x: x[:, 1:3, ::2, -3:] + x[..., 0:1, 1:4][:, :2] * x[:, None, 2, 1:4, 0].sum(),
    "negative_step": lambda self, x: x[:, ::-1, 3:0:-2],
    "gather": lambda self, x: x[:, [3, 0, 1]],
    "cat": lambda self, x: convkit.cat([x, 2 * x, x[:, :1]], 1) + 0 * convkit.cat([x, x, x], dim=-3)[:, :9],
    "stack": lambda self, x: convkit.stack([x, x.exp()], dim=-1),
    "mean_all": lambda self, x: x - x.mean(),
    "T": lambda self, x: x.reshape(x.shape[0], -1) @ x.reshape(x.shape[0], -1).T,
    "maximum": lambda self, x: convkit.maximum(x, 0.25) + convkit.minimum(x, x * 0.5),
    "where": lambda self, x: convkit.where(np.arange(5) % 2 == 0, x, -x),
    "cast": lambda self, x: x.double().float() + x.astype(np.float32),
    "pad": lambda self, x: F.pad(x, (1, 2, 0, 1)) + F.pad(x, (1, 2, 0, 1), mode="reflect") + F.pad(
        x, (1, 2, 0, 1), mode="replicate") + F.pad(x, (1, 2, 0, 1), mode="circular") + F.pad(x, (1, 2, 0, 1),
                                                                                           value=3.0),
    "crop": lambda self, x: F.pad(x, (-1, 1, 1, -1)),
    "detach": lambda self, x: x.detach() * 2,
}


@pytest.mark.parametrize("name", sorted(TENSOR_OPS))
@pytest.mark.parametrize("opset", [17, 13, 19])
def test_tensor_ops(name, opset):
    x = randn(2, 4, 3, 5)
    if name == "unary":
        x = np.abs(x) + 0.1
    check(Lambda(TENSOR_OPS[name]), x, opset=opset)


def test_several_inputs_and_outputs():
    convkit.manual_seed(0)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    net = Lambda(lambda self, a, b: (self.mods[0](a) + b, a * 2, a), conv)
    proto = check(net, (randn(2, 3, 4, 4), randn(2, 3, 4, 4, seed=1)), input_names=["a", "b"],
                  output_names=["y", "twice", "same"])
    assert [i.name for i in proto.graph.input] == ["a", "b"]
    assert [o.name for o in proto.graph.output] == ["y", "twice", "same"]


def test_dynamic_batch_shapes_and_static_export():
    convkit.manual_seed(0)
    net = models.lenet5()
    proto = export(net, randn(2, 1, 28, 28), None)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    fixed = export(net, randn(2, 1, 28, 28), None, dynamic_batch=False)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    with pytest.raises(Exception):
        _session(fixed).run(None, {"input": randn(3, 1, 28, 28)})


@pytest.mark.parametrize("name", ["resnet8", "digits_cnn", "fcn", "tensor_ops"])
def test_round_trip_through_convkit_onnx_load(name):
    import convkit.onnx as conx
    if not hasattr(conx, "load"):
        pytest.skip("convkit.onnx.load is not available yet")
    convkit.manual_seed(0)
    if name == "tensor_ops":
        net, x = Lambda(lambda self, x: TENSOR_OPS["slicing"](self, x).sum() + TENSOR_OPS["arith"](self, x)
                        + F.pad(x, (1, 1, 1, 1), mode="circular")[:, :, 1:-1, 1:-1]), randn(2, 4, 3, 5)
    else:
        net = _randomize_bn(models.get_model(name))
        x = randn(*MODEL_INPUTS.get(name, (2, 1, 28, 28)))
    net.eval()
    proto = export(net, x, None)
    (y,) = conx.load(proto).run(None, {"input": x})
    np.testing.assert_allclose(y, _ours(net, x)[0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- errors

def test_unsupported_op_names_op_and_module():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), Lambda(lambda self, x: F.unfold(x, 2))))
    with pytest.raises(ExportError, match=r"F\.unfold .*module '1\.1', Lambda"):
        export(net, randn(1, 1, 6, 6), None)
    assert net.training


def test_reading_traced_values_is_an_error():
    def branchy(self, x):
        return x * 2 if float(x.sum()) > 0 else x

    with pytest.raises(ExportError, match="reads the values of a traced tensor"):
        export(Lambda(branchy), randn(1, 3), None)
    with pytest.raises(ExportError, match="reads the values"):
        export(Lambda(lambda self, x: convkit.tensor(np.asarray(x) + 1)), randn(1, 3), None)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: export(nn.ReLU(), randn(1, 3), None, opset=7), ValueError, "opset must be an int from 13"),
    (lambda: export(nn.ReLU(), randn(1, 3), None, input_names=["a", "b"]), ValueError, "input_names must be 1"),
    (lambda: export(nn.ReLU(), np.float32(1), None), ValueError, "sample_input must be"),
    (lambda: export(nn.MaxPool2d(2, return_indices=True), randn(1, 1, 4, 4), None), ExportError, "return_indices"),
    (lambda: export(nn.LocalResponseNorm(2), randn(1, 3, 4, 4), None), ExportError, "even size"),
    (lambda: export(Lambda(lambda self, x: 3), randn(1, 3), None), ExportError, "must return a Tensor"),
    (lambda: export(nn.AdaptiveMaxPool2d(3), randn(1, 1, 7, 7), None), ExportError, "do not divide"),
])
def test_bad_exports(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_failed_export_writes_nothing(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    with pytest.raises(ExportError):
        export(Lambda(lambda self, x: F.unfold(x, 2)), randn(1, 1, 4, 4), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# ---------------------------------------------------------------- convkit export

def test_cli_export_of_a_checkpoint(tmp_path, capsys):
    from convkit.cli import main
    from convkit.train.checkpoint import save_checkpoint
    from convkit.train.run import build_model

    convkit.manual_seed(0)
    net = _randomize_bn(build_model("digits_cnn", "digits")).eval()
    ckpt = save_checkpoint(tmp_path / "checkpoint.npz", {"config": {"model": "digits_cnn", "dataset": "digits",
                                                                     "data": "digits"}, "model": net.state_dict()})
    out = tmp_path / "digits.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = randn(5, 1, 8, 8)
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], net(x).data, rtol=1e-5, atol=1e-6)
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o13.onnx"), "--opset", "13"]) == 0
    assert onnx.load(str(tmp_path / "o13.onnx")).opset_import[0].version == 13


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    from convkit.cli import main
    assert main(["export", "--checkpoint", str(tmp_path / "none.npz"), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convkit export:") and "none.npz" in err and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()
