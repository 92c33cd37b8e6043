"""One harness that every layer in convkit.nn goes through.

Each case is a factory taking the ``nn`` namespace (``convkit.nn`` or
``torch.nn``: the constructor call is the same text), an input shape and the
expected output shape. Every case checks: output shape, state_dict round trip
into a fresh layer, one SGD step lowering a loss, float64 finite-difference
gradients of the input and every parameter (train and eval mode); with
PyTorch installed also parameter count, state_dict keys/shapes/dtypes, and
outputs, gradients and running statistics against PyTorch in float64.
"""
from dataclasses import dataclass, field

import numpy as np
import pytest

import convkit as ck
import convkit.nn as cnn
from helpers import directional_fd


@dataclass
class Case:
    id: str
    make: object            # nn -> layer
    shape: tuple             # input shape
    out: tuple               # expected output shape
    torch: bool = True       # PyTorch has the same constructor call
    random: bool = False     # output depends on the global generator in training (dropout)
    extra: object = None     # lib -> extra positional forward args (e.g. unpool indices)
    kwargs: dict = field(default_factory=dict)   # forward keyword arguments
    positive: bool = False   # input drawn > 0
    rtol: float = 1e-10      # against PyTorch in float64


def _unpool_indices(shape, n):
    """Indices from max-pooling (kernel 2) a fixed random input twice the size of ``shape``."""
    import convkit.functional as F
    x = np.random.default_rng(7).standard_normal(shape[:2] + tuple(2 * s for s in shape[2:]))
    return F.max_pool(x, 2, return_indices=True)[1]


def _extra_indices(shape, n):
    idx = _unpool_indices(shape, n)

    def extra(lib):
        if lib == "torch":
            import torch
            return (torch.from_numpy(idx),)
        return (ck.tensor(idx),)
    return extra


C = Case
CASES = [
    # ------------------------------------------------------------ convolution
    C("conv1d", lambda nn: nn.Conv1d(3, 4, 3), (2, 3, 8), (2, 4, 6)),
    C("conv1d_pad_stride_dil", lambda nn: nn.Conv1d(2, 4, 3, stride=2, padding=2, dilation=2), (2, 2, 9), (2, 4, 5)),
    C("conv1d_same_even_k", lambda nn: nn.Conv1d(2, 3, 4, padding="same"), (2, 2, 7), (2, 3, 7)),
    C("conv1d_valid_nobias", lambda nn: nn.Conv1d(2, 3, 3, padding="valid", bias=False), (2, 2, 7), (2, 3, 5)),
    C("conv1d_reflect", lambda nn: nn.Conv1d(2, 2, 3, padding=1, padding_mode="reflect"), (2, 2, 6), (2, 2, 6)),
    C("conv1d_circular", lambda nn: nn.Conv1d(2, 2, 3, padding=2, padding_mode="circular"), (1, 2, 5), (1, 2, 7)),
    C("conv2d", lambda nn: nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6), (2, 4, 6, 6)),
    C("conv2d_unbatched", lambda nn: nn.Conv2d(2, 3, (2, 3), stride=(2, 1)), (2, 5, 6), (3, 2, 4)),
    C("conv2d_groups", lambda nn: nn.Conv2d(4, 6, 3, groups=2, padding=(1, 0)), (2, 4, 5, 5), (2, 6, 5, 3)),
    C("conv2d_depthwise", lambda nn: nn.Conv2d(3, 3, 3, groups=3, bias=False), (2, 3, 5, 5), (2, 3, 3, 3)),
    C("conv2d_same_dilated", lambda nn: nn.Conv2d(2, 2, 3, padding="same", dilation=2), (1, 2, 6, 5), (1, 2, 6, 5)),
    C("conv2d_replicate", lambda nn: nn.Conv2d(2, 2, 3, padding=1, padding_mode="replicate"), (1, 2, 4, 5),
      (1, 2, 4, 5)),
    C("conv2d_pairs", lambda nn: nn.Conv2d(2, 3, 3, padding=((0, 2), (1, 0))), (2, 2, 5, 5), (2, 3, 5, 4),
      torch=False),
    C("conv2d_same_strided", lambda nn: nn.Conv2d(2, 3, 3, stride=2, padding="same"), (1, 2, 7, 6), (1, 3, 4, 3),
      torch=False),
    C("conv2d_same_lower", lambda nn: nn.Conv2d(2, 2, 2, padding="same_lower"), (1, 2, 4, 4), (1, 2, 4, 4),
      torch=False),
    C("conv2d_channels_last", lambda nn: nn.Conv2d(3, 4, 3, data_format="channels_last"), (2, 5, 5, 3),
      (2, 3, 3, 4), torch=False),
    C("conv3d", lambda nn: nn.Conv3d(2, 3, 2, padding=(1, 0, 0)), (2, 2, 3, 4, 3), (2, 3, 4, 3, 2)),
    C("conv3d_groups_stride", lambda nn: nn.Conv3d(2, 4, 3, stride=2, groups=2, padding=1), (1, 2, 4, 5, 3),
      (1, 4, 2, 3, 2)),
    C("convT1d", lambda nn: nn.ConvTranspose1d(3, 2, 3, stride=2), (2, 3, 4), (2, 2, 9)),
    C("convT1d_outpad_groups", lambda nn: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                                             groups=2), (2, 4, 4), (2, 6, 8)),
    C("convT2d", lambda nn: nn.ConvTranspose2d(3, 2, (2, 3), stride=(2, 1), padding=(0, 1)), (2, 3, 3, 4),
      (2, 2, 6, 4)),
    C("convT2d_dilation_nobias", lambda nn: nn.ConvTranspose2d(2, 2, 3, dilation=2, bias=False), (1, 2, 3, 3),
      (1, 2, 7, 7)),
    C("convT2d_output_size", lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), (2, 2, 3, 3),
      (2, 3, 6, 6), kwargs={"output_size": (6, 6)}),
    C("convT3d", lambda nn: nn.ConvTranspose3d(2, 2, 2, stride=2), (1, 2, 2, 3, 2), (1, 2, 4, 6, 4)),
    # ------------------------------------------------------------ linear
    C("linear", lambda nn: nn.Linear(5, 3), (4, 5), (4, 3)),
    C("linear_3d_nobias", lambda nn: nn.Linear(4, 2, bias=False), (2, 3, 4), (2, 3, 2)),
    # ------------------------------------------------------------ normalisation
    C("bn1d", lambda nn: nn.BatchNorm1d(3), (5, 3), (5, 3)),
    C("bn1d_seq", lambda nn: nn.BatchNorm1d(3, momentum=None), (4, 3, 5), (4, 3, 5)),
    C("bn2d", lambda nn: nn.BatchNorm2d(3), (2, 3, 4, 4), (2, 3, 4, 4)),
    C("bn2d_noaffine", lambda nn: nn.BatchNorm2d(2, eps=1e-3, momentum=0.3, affine=False), (3, 2, 3, 3),
      (3, 2, 3, 3)),
    C("bn2d_notrack", lambda nn: nn.BatchNorm2d(2, track_running_stats=False), (3, 2, 3, 3), (3, 2, 3, 3)),
    C("bn2d_nobias", lambda nn: nn.BatchNorm2d(2, bias=False), (3, 2, 3, 3), (3, 2, 3, 3)),
    C("bn3d", lambda nn: nn.BatchNorm3d(2), (2, 2, 3, 2, 2), (2, 2, 3, 2, 2)),
    C("in1d", lambda nn: nn.InstanceNorm1d(3), (2, 3, 6), (2, 3, 6)),
    C("in1d_unbatched_affine", lambda nn: nn.InstanceNorm1d(3, affine=True), (3, 6), (3, 6)),
    C("in2d_track", lambda nn: nn.InstanceNorm2d(2, affine=True, track_running_stats=True), (3, 2, 3, 4),
      (3, 2, 3, 4)),
    C("in3d", lambda nn: nn.InstanceNorm3d(2), (2, 2, 2, 3, 2), (2, 2, 2, 3, 2)),
    C("layernorm", lambda nn: nn.LayerNorm(5), (3, 5), (3, 5)),
    C("layernorm_2d_nobias", lambda nn: nn.LayerNorm((3, 4), bias=False), (2, 2, 3, 4), (2, 2, 3, 4)),
    C("layernorm_noaffine", lambda nn: nn.LayerNorm([4], elementwise_affine=False), (3, 4), (3, 4)),
    C("groupnorm", lambda nn: nn.GroupNorm(2, 4), (2, 4, 3, 3), (2, 4, 3, 3)),
    C("groupnorm_nobias", lambda nn: nn.GroupNorm(1, 3, bias=False), (2, 3, 4), (2, 3, 4)),
    C("groupnorm_noaffine", lambda nn: nn.GroupNorm(3, 6, eps=1e-3, affine=False), (2, 6, 5), (2, 6, 5)),
    C("lrn", lambda nn: nn.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=1.5), (2, 5, 3, 3), (2, 5, 3, 3)),
    C("lrn_even", lambda nn: nn.LocalResponseNorm(2), (2, 4, 5), (2, 4, 5)),
    # ------------------------------------------------------------ activations
    C("relu", lambda nn: nn.ReLU(), (3, 4), (3, 4)),
    C("relu6", lambda nn: nn.ReLU6(), (3, 4), (3, 4)),
    C("leaky_relu", lambda nn: nn.LeakyReLU(0.2), (3, 4), (3, 4)),
    C("sigmoid", lambda nn: nn.Sigmoid(), (3, 4), (3, 4)),
    C("tanh", lambda nn: nn.Tanh(), (3, 4), (3, 4)),
    C("gelu", lambda nn: nn.GELU(), (3, 4), (3, 4)),
    C("gelu_tanh", lambda nn: nn.GELU(approximate="tanh"), (3, 4), (3, 4)),
    C("silu", lambda nn: nn.SiLU(), (3, 4), (3, 4)),
    C("elu", lambda nn: nn.ELU(alpha=0.7), (3, 4), (3, 4)),
    C("selu", lambda nn: nn.SELU(), (3, 4), (3, 4)),
    C("softplus", lambda nn: nn.Softplus(beta=2.0, threshold=1.0), (3, 4), (3, 4)),
    C("hardswish", lambda nn: nn.Hardswish(), (3, 4), (3, 4)),
    # PyTorch's hardsigmoid backward multiplies by 1/6 rounded to float32, even in float64
    C("hardsigmoid", lambda nn: nn.Hardsigmoid(), (3, 4), (3, 4), rtol=1e-7),
    C("prelu", lambda nn: nn.PReLU(), (3, 4), (3, 4)),
    C("prelu_channels", lambda nn: nn.PReLU(3, init=0.1), (2, 3, 4), (2, 3, 4)),
    C("softmax", lambda nn: nn.Softmax(dim=1), (3, 4), (3, 4)),
    C("log_softmax", lambda nn: nn.LogSoftmax(dim=-1), (2, 3, 4), (2, 3, 4)),
    # ------------------------------------------------------------ pooling
    C("maxpool1d", lambda nn: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 8), (2, 3, 4)),
    C("maxpool2d", lambda nn: nn.MaxPool2d(2), (2, 3, 6, 6), (2, 3, 3, 3)),
    C("maxpool2d_dil_ceil", lambda nn: nn.MaxPool2d(2, stride=2, dilation=2, ceil_mode=True), (1, 2, 7, 6),
      (1, 2, 3, 3)),
    C("maxpool2d_indices", lambda nn: nn.MaxPool2d(2, return_indices=True), (1, 2, 4, 4), (1, 2, 2, 2)),
    C("maxpool3d", lambda nn: nn.MaxPool3d((1, 2, 2)), (1, 2, 3, 4, 4), (1, 2, 3, 2, 2)),
    C("avgpool1d", lambda nn: nn.AvgPool1d(3, stride=2, padding=1), (2, 3, 7), (2, 3, 4)),
    C("avgpool2d_excl_ceil", lambda nn: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                                     count_include_pad=False), (1, 2, 6, 6), (1, 2, 4, 4)),
    C("avgpool2d_divisor", lambda nn: nn.AvgPool2d(2, divisor_override=3), (2, 2, 4, 4), (2, 2, 2, 2)),
    C("avgpool3d", lambda nn: nn.AvgPool3d(2), (1, 2, 4, 4, 2), (1, 2, 2, 2, 1)),
    C("lppool1d", lambda nn: nn.LPPool1d(2, 3, stride=2), (2, 3, 7), (2, 3, 3), positive=True),
    C("lppool2d", lambda nn: nn.LPPool2d(2, 2), (1, 2, 4, 6), (1, 2, 2, 3)),
    C("lppool3d", lambda nn: nn.LPPool3d(2, 2), (1, 1, 2, 4, 4), (1, 1, 1, 2, 2)),
    C("adaptive_avg1d", lambda nn: nn.AdaptiveAvgPool1d(3), (2, 3, 7), (2, 3, 3)),
    C("adaptive_avg2d_global", lambda nn: nn.AdaptiveAvgPool2d(1), (2, 3, 5, 4), (2, 3, 1, 1)),
    C("adaptive_avg2d_none", lambda nn: nn.AdaptiveAvgPool2d((3, None)), (2, 2, 5, 4), (2, 2, 3, 4)),
    C("adaptive_avg3d", lambda nn: nn.AdaptiveAvgPool3d((2, 3, 2)), (1, 2, 3, 5, 4), (1, 2, 2, 3, 2)),
    C("adaptive_max1d", lambda nn: nn.AdaptiveMaxPool1d(3), (2, 3, 7), (2, 3, 3)),
    C("adaptive_max2d_indices", lambda nn: nn.AdaptiveMaxPool2d((2, 3), return_indices=True), (1, 2, 5, 7),
      (1, 2, 2, 3)),
    C("adaptive_max3d", lambda nn: nn.AdaptiveMaxPool3d(2), (1, 2, 3, 4, 5), (1, 2, 2, 2, 2)),
    C("maxunpool1d", lambda nn: nn.MaxUnpool1d(2), (2, 2, 3), (2, 2, 6), extra=_extra_indices((2, 2, 3), 1)),
    C("maxunpool2d", lambda nn: nn.MaxUnpool2d(2, stride=2), (1, 2, 2, 3), (1, 2, 4, 6),
      extra=_extra_indices((1, 2, 2, 3), 2)),
    C("maxunpool3d", lambda nn: nn.MaxUnpool3d(2), (1, 1, 2, 2, 1), (1, 1, 4, 4, 2),
      extra=_extra_indices((1, 1, 2, 2, 1), 3)),
    # ------------------------------------------------------------ dropout, reshaping
    C("dropout", lambda nn: nn.Dropout(0.3), (4, 5), (4, 5), random=True),
    C("dropout1d", lambda nn: nn.Dropout1d(0.5), (3, 4, 5), (3, 4, 5), random=True),
    C("dropout2d", lambda nn: nn.Dropout2d(0.5), (3, 4, 2, 2), (3, 4, 2, 2), random=True),
    C("dropout3d", lambda nn: nn.Dropout3d(0.25), (2, 4, 2, 2, 1), (2, 4, 2, 2, 1), random=True),
    C("flatten", lambda nn: nn.Flatten(), (2, 3, 4, 5), (2, 60)),
    C("flatten_middle", lambda nn: nn.Flatten(1, 2), (2, 3, 4, 5), (2, 12, 5)),
    C("unflatten", lambda nn: nn.Unflatten(1, (2, -1)), (3, 6, 2), (3, 2, 3, 2)),
    C("identity", lambda nn: nn.Identity(3, foo=1), (2, 3), (2, 3)),
]
IDS = [c.id for c in CASES]
TORCH_CASES = [c for c in CASES if c.torch]


# ---------------------------------------------------------------- helpers

def _input(case, rng):
    x = rng.standard_normal(case.shape)
    return np.abs(x) + 0.1 if case.positive else x


def _forward(case, layer, x, lib="ck", seed=None):
    """Call the layer (reseeding first when random); the first output when it returns (out, indices)."""
    if seed is not None:
        ck.manual_seed(seed)
    extra = case.extra(lib) if case.extra else ()
    out = layer(x, *extra, **case.kwargs)
    return out[0] if isinstance(out, tuple) else out


def _randomise_state(layer, rng):
    """Random parameters and float buffers (positive running_var), so a fresh layer differs."""
    sd = {}
    for k, v in layer.state_dict().items():
        if v.dtype.kind == "f":
            v = rng.standard_normal(v.shape).astype(v.dtype)
            if k.endswith("running_var"):
                v = np.abs(v) + 0.5
        elif k.endswith("num_batches_tracked"):
            v = np.array(3, v.dtype)
        sd[k] = v
    layer.load_state_dict(sd)


def _build(case, seed=0):
    ck.manual_seed(seed)
    return case.make(cnn)


# ---------------------------------------------------------------- shape and state


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shape_and_state_round_trip(case, rng):
    layer = _build(case)
    x = ck.tensor(_input(case, rng).astype(np.float32))
    for mode in (True, False):
        layer.train(mode)
        y = _forward(case, layer, x, seed=0)
        assert isinstance(y, ck.Tensor)
        assert y.shape == case.out
        assert y.dtype == np.float32
    _randomise_state(layer, rng)
    fresh = _build(case, seed=1)
    fresh.load_state_dict(layer.state_dict())
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v, err_msg=k)
    for mode in (False, True):
        layer.train(mode)
        fresh.train(mode)
        np.testing.assert_array_equal(_forward(case, fresh, x, seed=3).data, _forward(case, layer, x, seed=3).data)


@pytest.mark.parametrize("case", [c for c in CASES if list(c.make(cnn).parameters())],
                         ids=[c.id for c in CASES if list(c.make(cnn).parameters())])
def test_sgd_step_lowers_loss(case, rng):
    layer = _build(case).double()
    x = _input(case, rng)
    target = rng.standard_normal(case.out)

    def loss():
        y = _forward(case, layer, x, seed=0)
        return ((y - ck.tensor(target)) ** 2).mean()

    before = loss()
    layer.zero_grad()
    before.backward()
    grads = [p.grad.data for p in layer.parameters()]
    norm2 = sum(float(np.sum(g * g)) for g in grads)
    assert norm2 > 0
    lr = 1e-2 * float(before.data) / norm2   # a step expected to lower the loss by about 1%
    with ck.no_grad():
        for p, g in zip(layer.parameters(), grads):
            p.data -= lr * g
        after = float(loss().data)
    assert after < float(before.data)


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_finite_differences(case, training, rng):
    layer = _build(case).double().train(training)
    _randomise_state(layer, rng)
    x0 = _input(case, rng)
    x = ck.tensor(x0, requires_grad=True)
    y = _forward(case, layer, x, seed=5)
    r = rng.standard_normal(y.shape)
    (y * ck.tensor(r)).sum().backward()

    def scalar(run):
        with ck.no_grad():
            return float(np.sum(run().data * r))

    d = rng.standard_normal(x0.shape)
    fd = directional_fd(lambda v: scalar(lambda: _forward(case, layer, ck.tensor(v), seed=5)), x0, d)
    np.testing.assert_allclose(float(np.sum(x.grad.data * d)), fd, rtol=1e-6, atol=1e-8, err_msg="input")
    for name, p in layer.named_parameters():
        p0 = p.data.copy()
        d = rng.standard_normal(p0.shape)

        def at(v, p=p):
            p.data = v
            return scalar(lambda: _forward(case, layer, ck.tensor(x0), seed=5))

        fd = directional_fd(at, p0, d)
        p.data = p0
        np.testing.assert_allclose(float(np.sum(p.grad.data * d)), fd, rtol=1e-6, atol=1e-8, err_msg=name)


# ---------------------------------------------------------------- PyTorch


def _torch_pair(case, torch):
    torch.manual_seed(0)
    t = case.make(torch.nn).double()
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.3 * torch.randn_like(p))
    ours = _build(case).double()
    ours.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    return t, ours


def _compare_step(case, torch, t, ours, x, g):
    rtol = case.rtol
    xt = torch.tensor(x, requires_grad=True)
    xc = ck.tensor(x, requires_grad=True)
    yt = _forward(case, t, xt, lib="torch")
    yc = _forward(case, ours, xc)
    np.testing.assert_allclose(yc.data, yt.detach().numpy(), rtol=rtol, atol=1e-12, err_msg="output")
    t.zero_grad()
    ours.zero_grad()
    yt.backward(torch.tensor(g))
    yc.backward(g)
    np.testing.assert_allclose(xc.grad.data, xt.grad.numpy(), rtol=rtol, atol=1e-12, err_msg="grad input")
    tp = dict(t.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, tp[name].grad.numpy(), rtol=rtol, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.id for c in TORCH_CASES])
def test_parameters_and_state_dict_match_torch(case):
    torch = pytest.importorskip("torch")
    t = case.make(torch.nn)
    ours = _build(case)
    assert sum(p.data.size for p in ours.parameters()) == sum(p.numel() for p in t.parameters())
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in t.named_parameters()]
    ts = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in t.state_dict().items()]
    assert [(k, v.shape, str(v.dtype)) for k, v in ours.state_dict().items()] == ts
    assert repr(ours) == repr(t)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.id for c in TORCH_CASES])
def test_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    t, ours = _torch_pair(case, torch)
    if not case.random:
        t.train()
        ours.train()
        for _ in range(3):   # several training steps: running statistics must follow torch's
            _compare_step(case, torch, t, ours, _input(case, rng), rng.standard_normal(case.out))
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    t.eval()
    ours.eval()
    _compare_step(case, torch, t, ours, _input(case, rng), rng.standard_normal(case.out))
