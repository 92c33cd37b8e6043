"""Module mechanics (registration, names, modes, state_dict), repr, initialisation and bad arguments."""
import math
import re

import numpy as np
import pytest

import convkit as ck
import convkit.nn as nn


def _populate(m, lib):
    """The same attributes on a convkit or a torch Module."""
    m.scale = lib.Parameter(_array(lib, np.ones(1, np.float32)))
    m.register_buffer("steps", _array(lib, np.zeros((), np.int64)))
    m.features = lib.Sequential(lib.Conv2d(1, 4, 3), lib.BatchNorm2d(4), lib.ReLU(), lib.Dropout(0.5))
    m.head = lib.Linear(4, 2)
    m.note = "a plain attribute"


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        _populate(self, nn)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3))) * self.scale


def _array(lib, a):
    if lib is nn:
        return a
    import torch
    return torch.from_numpy(a)


def _torch_net():
    torch = pytest.importorskip("torch")

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            _populate(self, torch.nn)

    return TorchNet()


NET_PARAMS = ["scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
              "head.weight", "head.bias"]
NET_STATE = ["scale", "steps", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
             "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked", "head.weight",
             "head.bias"]


# ---------------------------------------------------------------- registration and names

def test_registration_and_names():
    net = Net()
    assert [k for k, _ in net.named_parameters()] == NET_PARAMS
    assert list(net.state_dict()) == NET_STATE
    assert [k for k, _ in net.named_buffers()] == ["steps", "features.1.running_mean", "features.1.running_var",
                                                   "features.1.num_batches_tracked"]
    assert [k for k, _ in net.named_children()] == ["features", "head"]
    assert [k for k, _ in net.named_modules()] == ["", "features", "features.0", "features.1", "features.2",
                                                   "features.3", "head"]
    assert len(list(net.modules())) == 7
    assert net.note == "a plain attribute" and "note" not in net.state_dict()
    assert isinstance(net.features[0].weight, nn.Parameter) and net.features[0].weight.requires_grad
    assert net.features[1].num_batches_tracked.dtype == np.int64 and net.features[1].num_batches_tracked.shape == ()
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert [k for k, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(seq[1], nn.ReLU) and len(seq[1:]) == 2


def test_names_and_state_dict_match_torch():
    t = _torch_net()
    net = Net()
    assert [k for k, _ in net.named_parameters()] == [k for k, _ in t.named_parameters()]
    assert [(k, v.shape) for k, v in net.state_dict().items()] == [(k, tuple(v.shape))
                                                                  for k, v in t.state_dict().items()]
    net.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    assert repr(net).replace("Net", "TorchNet", 1) == repr(t)


def test_reassignment_and_removal():
    lin = nn.Linear(3, 2)
    lin.bias = None
    assert [k for k, _ in lin.named_parameters()] == ["weight"]
    assert lin(np.ones((1, 3), np.float32)).shape == (1, 2)
    lin.weight = nn.Parameter(np.zeros((2, 3), np.float32))
    assert np.all(lin.state_dict()["weight"] == 0)
    bn = nn.BatchNorm1d(2)
    bn.running_mean = np.full(2, 5.0, np.float32)   # a registered buffer stays a buffer
    assert isinstance(bn.running_mean, ck.Tensor) and bn.state_dict()["running_mean"][0] == 5


def test_shared_parameter_listed_once():
    a = nn.Linear(2, 2)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.features.train(False)
    assert net.training and not net.features[3].training


def test_dropout_modes_and_reproducibility():
    d = nn.Dropout(0.5)
    x = np.ones((200,), np.float32)
    ck.manual_seed(3)
    a = d(x).data
    ck.manual_seed(3)
    b = d(x).data
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 2.0}
    d.eval()
    np.testing.assert_array_equal(d(x).data, x)
    d2 = nn.Dropout2d(1.0)
    assert np.all(d2(np.ones((2, 3, 4, 4))).data == 0)


def test_manual_seed_makes_models_reproducible():
    ck.manual_seed(0)
    a = Net().state_dict()
    ck.manual_seed(0)
    b = Net().state_dict()
    ck.manual_seed(1)
    c = Net().state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["head.weight"], c["head.weight"])


def test_double_and_forward_dtype():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.features[1].running_var.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype == np.int64
    y = net.eval()(np.ones((2, 1, 5, 5)))
    assert y.dtype == np.float64 and y.shape == (2, 2)


def test_layers_take_arrays_and_return_tensors():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    for layer in (nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Softmax(dim=1), nn.BatchNorm2d(3),
                  nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Dropout(0.1).eval()):
        y = layer(x)
        assert isinstance(y, ck.Tensor) and y.dtype == np.float32, layer


# ---------------------------------------------------------------- load_state_dict

def test_load_state_dict_reports_every_problem_and_changes_nothing():
    net = Net()
    before = net.state_dict()
    bad = dict(before)
    del bad["head.bias"]
    bad["features.0.weight"] = np.zeros((4, 1, 5, 5))
    bad["extra.weight"] = np.zeros(3)
    with pytest.raises(ValueError) as e:
        net.load_state_dict(bad)
    msg = str(e.value)
    assert msg.startswith("load_state_dict: state_dict must match Net")
    assert "features.0.weight: shape (4, 1, 5, 5) in the state_dict, (4, 1, 3, 3) in the model" in msg
    assert "missing keys: head.bias" in msg and "unexpected keys: extra.weight" in msg
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_load_state_dict_non_strict_returns_keys():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["head.weight"] = np.full((2, 4), 0.5)
    sd["other"] = np.zeros(1)
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["other"]
    assert net.head.weight.dtype == np.float32 and np.all(net.head.weight.data == 0.5)
    with pytest.raises(ValueError, match="shape"):
        net.load_state_dict({"head.weight": np.zeros((3, 3))}, strict=False)


def test_state_dict_is_a_copy():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    sd["weight"][...] = 7
    assert not np.any(lin.weight.data == 7)


# ---------------------------------------------------------------- repr

@pytest.mark.parametrize("layer, text", [
    (lambda: nn.Conv2d(1, 32, 5, padding="same"), "Conv2d(1, 32, kernel_size=(5, 5), stride=(1, 1), padding=same)"),
    (lambda: nn.Conv2d(3, 8, 3), "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))"),
    (lambda: nn.Conv1d(4, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=False, padding_mode="reflect"),
     "Conv1d(4, 4, kernel_size=(3,), stride=(2,), padding=(1,), dilation=(2,), groups=2, bias=False, "
     "padding_mode=reflect)"),
    (lambda: nn.Conv2d(2, 2, 3, padding=((0, 1), (1, 1))),
     "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=((0, 1), (1, 1)))"),
    (lambda: nn.Conv2d(2, 2, 3, data_format="channels_last"),
     "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), data_format=channels_last)"),
    (lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1),
     "ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))"),
    (lambda: nn.Linear(3, 4, bias=False), "Linear(in_features=3, out_features=4, bias=False)"),
    (lambda: nn.BatchNorm2d(8, momentum=None),
     "BatchNorm2d(8, eps=1e-05, momentum=None, affine=True, bias=True, track_running_stats=True)"),
    (lambda: nn.LayerNorm((2, 3)), "LayerNorm((2, 3), eps=1e-05, elementwise_affine=True, bias=True)"),
    (lambda: nn.GroupNorm(2, 4), "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"),
    (lambda: nn.ReLU(), "ReLU()"),
    (lambda: nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (lambda: nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    (lambda: nn.GELU(), "GELU(approximate='none')"),
    (lambda: nn.Softmax(dim=1), "Softmax(dim=1)"),
    (lambda: nn.MaxPool2d(2), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"),
    (lambda: nn.AvgPool1d(3), "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"),
    (lambda: nn.AdaptiveAvgPool2d((1, 1)), "AdaptiveAvgPool2d(output_size=(1, 1))"),
    (lambda: nn.Dropout(0.2), "Dropout(p=0.2, inplace=False)"),
    (lambda: nn.Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
    (lambda: nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Tanh())),
     "Sequential(\n  (0): Linear(in_features=2, out_features=2, bias=True)\n"
     "  (1): Sequential(\n    (0): Tanh()\n  )\n)"),
])
def test_repr(layer, text):
    assert repr(layer()) == text


def test_repr_matches_torch_across_layers():
    torch = pytest.importorskip("torch")

    def build(lib):
        return lib.Sequential(
            lib.Conv2d(1, 32, 5, padding="same"), lib.ReLU(inplace=True), lib.Conv2d(2, 4, (1, 3), (2, 1), (0, 1)),
            lib.ConvTranspose3d(2, 2, 2, stride=2, groups=2, dilation=1), lib.BatchNorm1d(3, affine=False),
            lib.InstanceNorm2d(2), lib.LayerNorm(4, elementwise_affine=False), lib.LocalResponseNorm(2),
            lib.LeakyReLU(0.2), lib.ELU(), lib.Softplus(), lib.PReLU(3), lib.SiLU(), lib.Hardswish(), lib.Sigmoid(),
            lib.LogSoftmax(dim=-1), lib.MaxPool1d(3, 2, 1), lib.AvgPool2d(2, divisor_override=3),
            lib.LPPool2d(2, 3), lib.AdaptiveMaxPool3d(2), lib.MaxUnpool2d(2), lib.Dropout3d(), lib.Unflatten(1, (2, 5)),
            lib.Identity(), lib.Linear(3, 1))

    assert repr(build(nn)) == repr(build(torch.nn))


# ---------------------------------------------------------------- initialisation

def _uniform_bound_check(a, bound):
    a = np.asarray(a, np.float64).ravel()
    assert np.abs(a).max() <= bound
    assert np.abs(a).max() > 0.97 * bound
    assert abs(a.mean()) < 0.05 * bound
    assert abs(a.std() - bound / math.sqrt(3)) < 0.05 * bound


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(16, 32, 5), 16 * 25),
    (lambda: nn.Conv2d(16, 32, 3, groups=4), 4 * 9),
    (lambda: nn.Conv1d(8, 64, 7), 8 * 7),
    (lambda: nn.ConvTranspose2d(32, 16, 4), 16 * 16),   # fan_in from weight.shape[1]
    (lambda: nn.Linear(300, 40), 300),
])
def test_default_init_is_torchs(make, fan_in):
    ck.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    assert layer.weight.dtype == np.float32
    _uniform_bound_check(layer.weight.data, bound)
    b = layer.bias.data
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.5 * bound


def test_default_init_of_norms_and_prelu():
    bn = nn.BatchNorm2d(3)
    assert np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)
    assert np.all(bn.running_mean.data == 0) and np.all(bn.running_var.data == 1)
    assert int(bn.num_batches_tracked.data) == 0
    assert np.all(nn.PReLU(3, init=0.1).weight.data == np.float32(0.1))
    assert nn.InstanceNorm2d(3).state_dict() == {}


def test_init_functions():
    ck.manual_seed(0)
    w = nn.Parameter(np.zeros((64, 32, 3, 3), np.float32))
    assert nn.init.kaiming_uniform_(w) is w
    _uniform_bound_check(w.data, math.sqrt(2) * math.sqrt(3 / (32 * 9)))   # a=0: the ReLU gain
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2 / (64 * 9))) < 0.02 * math.sqrt(2 / (64 * 9))
    nn.init.xavier_uniform_(w, gain=2.0)
    _uniform_bound_check(w.data, 2 * math.sqrt(6 / (32 * 9 + 64 * 9)))
    nn.init.xavier_normal_(w)
    assert abs(w.data.std() - math.sqrt(2 / (32 * 9 + 64 * 9))) < 0.02 * math.sqrt(2 / (32 * 9 + 64 * 9))
    nn.init.trunc_normal_(w, std=0.5, a=-0.3, b=0.6)
    assert w.data.min() >= -0.3 and w.data.max() <= 0.6 and w.dtype == np.float32
    nn.init.normal_(w, 1.0, 0.1)
    assert abs(w.data.mean() - 1) < 0.01 and abs(w.data.std() - 0.1) < 0.005
    nn.init.uniform_(w, -2, -1)
    assert w.data.min() >= -2 and w.data.max() <= -1
    nn.init.constant_(w, 0.5)
    assert np.all(w.data == 0.5)
    assert np.all(nn.init.zeros_(w).data == 0) and np.all(nn.init.ones_(w).data == 1)
    a = np.zeros((3, 3))
    nn.init.eye_(a)
    np.testing.assert_array_equal(a, np.eye(3))


def test_init_generator_argument_is_reproducible():
    a, b = np.zeros((5, 4)), np.zeros((5, 4))
    nn.init.kaiming_uniform_(a, generator=np.random.default_rng(1))
    nn.init.kaiming_uniform_(b, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def test_gain_and_fans_match_torch():
    torch = pytest.importorskip("torch")
    for args in [("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",), ("leaky_relu",), ("leaky_relu", 0.2),
                 ("selu",), ("conv_transpose3d",)]:
        assert nn.init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args), rel=1e-15)
    for shape in [(3, 4), (8, 3, 5), (8, 2, 3, 3), (2, 4, 1, 2, 3)]:
        assert nn.init._calculate_fan_in_and_fan_out(np.zeros(shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))


# ---------------------------------------------------------------- behaviour details

def test_softmax_without_dim_uses_torchs_legacy_rule():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = nn.Softmax()(x)
    np.testing.assert_allclose(y.data.sum(0), 1)      # 3-d input: dim 0
    with pytest.warns(UserWarning):
        y = nn.LogSoftmax()(x[0])
    np.testing.assert_allclose(np.exp(y.data).sum(1), 1)


def test_maxpool_indices_feed_maxunpool():
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 6))
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    up = nn.MaxUnpool2d(2)(y, idx)
    assert up.shape == x.shape
    np.testing.assert_array_equal(up.data[up.data != 0], x[up.data != 0])
    assert nn.MaxUnpool2d(2)(y, idx, output_size=(5, 7)).shape == (1, 2, 5, 7)


def test_conv_transpose_output_size_and_unbatched():
    ct = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    assert ct(np.zeros((1, 2, 4, 4), np.float32)).shape == (1, 3, 7, 7)
    assert ct(np.zeros((1, 2, 4, 4), np.float32), output_size=(8, 8)).shape == (1, 3, 8, 8)
    assert ct(np.zeros((2, 4, 4), np.float32), output_size=[1, 3, 8, 8]).shape == (3, 8, 8)


def test_batchnorm_eval_without_running_stats_uses_batch_stats():
    bn = nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    y = bn(np.array([[1.0, 10.0], [3.0, 30.0]]))
    np.testing.assert_allclose(y.data, [[-1, -1], [1, 1]], atol=1e-4)


def test_batchnorm_counts_batches_and_cumulative_average():
    bn = nn.BatchNorm1d(1, momentum=None, affine=False)
    for v in (1.0, 3.0):
        bn(np.array([[v - 1], [v + 1]]))
    assert int(bn.num_batches_tracked.data) == 2
    np.testing.assert_allclose(bn.running_mean.data, [2.0])     # plain mean of the batch means
    np.testing.assert_allclose(bn.running_var.data, [2.0])
    bn.eval()(np.zeros((2, 1)))
    assert int(bn.num_batches_tracked.data) == 2


def test_identity_flatten_unflatten():
    x = ck.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert nn.Identity()(x) is x
    assert nn.Flatten(0)(x).shape == (24,)
    assert nn.Flatten(-2, -1)(x).shape == (2, 12)
    assert nn.Unflatten(-1, (2, 2))(x).shape == (2, 3, 2, 2)
    assert nn.Flatten()(np.zeros((0, 3, 4))).shape == (0, 12)


# ---------------------------------------------------------------- bad arguments

BAD = [
    (lambda: nn.Conv2d(6, 4, 3, groups=4), ValueError,
     r"^Conv2d: groups must divide in_channels; got in_channels=6, groups=4\.$"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError,
     r"^Conv2d: groups must divide out_channels; got out_channels=6, groups=4\.$"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, r"^Conv2d: in_channels must be >= 1; got in_channels=0\.$"),
    (lambda: nn.Conv2d(1, 4, 3, groups=0), ValueError, r"^Conv2d: groups must be >= 1; got groups=0\.$"),
    (lambda: nn.Conv2d(1, 4, (3, 3, 3)), ValueError, r"^Conv2d: kernel_size must be an int or a sequence of 2 ints"),
    (lambda: nn.Conv2d(1, 4, 0), ValueError, r"^Conv2d: kernel_size must be >= 1; got kernel_size=0\.$"),
    (lambda: nn.Conv2d(1, 4, 2.5), TypeError, r"^Conv2d: kernel_size must be an int; got kernel_size=2\.5\.$"),
    (lambda: nn.Conv3d(1, 4, 3, stride=(1, 0, 1)), ValueError, r"^Conv3d: stride must be ints >= 1"),
    (lambda: nn.Conv2d(1, 4, 3, padding="full"), ValueError, r"^Conv2d: padding must be .*'same'.*padding='full'"),
    (lambda: nn.Conv2d(1, 4, 3, padding=-1), ValueError, r"^Conv2d: padding must be >= 0"),
    (lambda: nn.Conv2d(1, 4, 3, padding_mode="mirror"), ValueError, r"^Conv2d: padding_mode must be one of"),
    (lambda: nn.Conv2d(1, 4, 3, data_format="NHWC"), ValueError, r"^Conv2d: data_format must be"),
    (lambda: nn.Conv2d(1, 4, 3, bias="yes"), TypeError, r"^Conv2d: bias must be a bool; got bias='yes'\.$"),
    (lambda: nn.Conv2d(1, 4, 3, dtype=np.int32), TypeError, r"^Conv2d: dtype must be a floating-point dtype"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), ValueError,
     r"^ConvTranspose2d: output_padding must be smaller than max\(stride, dilation\)"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding="same"), ValueError, r"^ConvTranspose2d: padding must be"),
    (lambda: nn.ConvTranspose1d(2, 2, 3, padding_mode="reflect"), ValueError,
     r"^ConvTranspose1d: padding_mode must be 'zeros' for a transposed convolution"),
    (lambda: nn.Linear(-1, 3), ValueError, r"^Linear: in_features must be >= 0; got in_features=-1\.$"),
    (lambda: nn.Linear(3, 2.0), TypeError, r"^Linear: out_features must be an int"),
    (lambda: nn.BatchNorm2d(0), ValueError, r"^BatchNorm2d: num_features must be >= 1"),
    (lambda: nn.BatchNorm2d(3, momentum=2), ValueError, r"^BatchNorm2d: momentum must be in \[0, 1\]"),
    (lambda: nn.BatchNorm2d(3, eps=-1), ValueError, r"^BatchNorm2d: eps must be a finite number >= 0; got eps=-1"),
    (lambda: nn.BatchNorm1d(3, affine=1), TypeError, r"^BatchNorm1d: affine must be a bool"),
    (lambda: nn.GroupNorm(4, 6), ValueError,
     r"^GroupNorm: num_groups must divide num_channels; got num_channels=6, num_groups=4\.$"),
    (lambda: nn.LayerNorm("x"), TypeError, r"^LayerNorm: normalized_shape must be an int or a non-empty sequence"),
    (lambda: nn.LayerNorm((2, 0)), ValueError, r"^LayerNorm: normalized_shape must be ints >= 1"),
    (lambda: nn.LocalResponseNorm(0), ValueError, r"^LocalResponseNorm: size must be >= 1"),
    (lambda: nn.LeakyReLU("a"), TypeError, r"^LeakyReLU: negative_slope must be a real number"),
    (lambda: nn.ReLU(inplace="no"), TypeError, r"^ReLU: inplace must be a bool"),
    (lambda: nn.GELU("fast"), ValueError, r"^GELU: approximate must be 'none' or 'tanh'; got approximate='fast'\.$"),
    (lambda: nn.Softplus(beta=0), ValueError, r"^Softplus: beta must be a finite number > 0"),
    (lambda: nn.PReLU(0), ValueError, r"^PReLU: num_parameters must be >= 1"),
    (lambda: nn.Softmax(dim=1.5), TypeError, r"^Softmax: dim must be an int"),
    (lambda: nn.MaxPool2d(0), ValueError, r"^MaxPool2d: kernel_size must be >= 1"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, r"^MaxPool2d: stride must be >= 1"),
    (lambda: nn.MaxPool1d(2, return_indices=1), TypeError, r"^MaxPool1d: return_indices must be a bool"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError, r"^AvgPool2d: divisor_override must be a non-zero"),
    (lambda: nn.LPPool2d(0, 2), ValueError, r"^LPPool2d: norm_type must be a finite number > 0"),
    (lambda: nn.AdaptiveAvgPool2d((1, 2, 3)), ValueError, r"^AdaptiveAvgPool2d: output_size must be"),
    (lambda: nn.AdaptiveMaxPool1d(0), ValueError, r"^AdaptiveMaxPool1d: output_size must be >= 1"),
    (lambda: nn.MaxUnpool2d(2, padding=-1), ValueError, r"^MaxUnpool2d: padding must be >= 0"),
    (lambda: nn.Dropout(1.5), ValueError, r"^Dropout: p must be a probability in \[0, 1\]; got p=1\.5\.$"),
    (lambda: nn.Dropout2d("x"), TypeError, r"^Dropout2d: p must be a real number"),
    (lambda: nn.Flatten(1.5), TypeError, r"^Flatten: start_dim must be an int"),
    (lambda: nn.Unflatten(1, 6), TypeError, r"^Unflatten: unflattened_size must be a non-empty tuple"),
    (lambda: nn.Unflatten(1, (-1, -1)), ValueError, r"^Unflatten: unflattened_size must be ints with at most one -1"),
    (lambda: nn.init.calculate_gain("swish"), ValueError, r"^calculate_gain: nonlinearity must be one of"),
    (lambda: nn.init.kaiming_uniform_(np.zeros(3)), ValueError, r"tensor.ndim must be >= 2"),
    (lambda: nn.init.kaiming_normal_(np.zeros((2, 2)), mode="fan"), ValueError, r"mode must be 'fan_in' or"),
    (lambda: nn.init.uniform_(np.zeros(2, np.int64)), TypeError, r"^uniform_: tensor must have a floating-point"),
    (lambda: nn.init.normal_(np.zeros(2), generator=1), TypeError, r"^normal_: generator must be a numpy"),
    # errors found by the forward
    (lambda: nn.BatchNorm2d(3)(np.zeros((3, 4, 4))), ValueError,
     r"^BatchNorm2d: input.ndim must be 4 for \(N, C, H, W\); got input.ndim=3\.$"),
    (lambda: nn.BatchNorm1d(3)(np.zeros((2, 4))), ValueError,
     r"^BatchNorm1d: input.shape\[1\] must equal num_features=3; got input.shape=\(2, 4\)\.$"),
    (lambda: nn.InstanceNorm2d(3, affine=True)(np.zeros((2, 4, 3, 3))), ValueError,
     r"^InstanceNorm2d: input channels \(dim 1\) must equal num_features=3; got input.shape=\(2, 4, 3, 3\)\.$"),
    (lambda: nn.InstanceNorm1d(3)(np.zeros((2, 3, 4, 4))), ValueError, r"^InstanceNorm1d: input.ndim must be 2 or 3"),
    (lambda: nn.GroupNorm(2, 4)(np.zeros((2, 6, 3))), ValueError, r"^GroupNorm: input.shape must be \(N, 4, \*\)"),
    (lambda: nn.Flatten(2, 1)(np.zeros((2, 3, 4))), ValueError, r"^Flatten: start_dim must not come after end_dim"),
    (lambda: nn.Flatten(5)(np.zeros((2, 3))), ValueError, r"^Flatten: start_dim must be in \[-2, 2\)"),
    (lambda: nn.Unflatten(1, (4, 2))(np.zeros((3, 6))), ValueError,
     r"^Unflatten: unflattened_size must multiply to input.shape\[1\]=6; got unflattened_size=\(4, 2\)\.$"),
    (lambda: nn.Conv2d(3, 4, 3)(np.zeros((1, 2, 5, 5), np.float32)), ValueError,
     r"^conv2d: weight.shape\[1\] \* groups must equal the input channels"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc) as e:
        call()
    assert e.type is exc
    assert re.search(pattern, str(e.value)), str(e.value)


# --------------------------------------------------------------------------- ReLU then max pool, pool first

def _relu_pool_pair(seed, pool, shape, pattern):
    """(fused Sequential's output and input gradient, the written order's), on input with ties, zeros and NaN."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    if pattern == "ties":         # few distinct values: ties inside windows, positive and negative
        x = np.round(x * 2) / 2
    elif pattern == "nan":
        x.flat[rng.integers(0, x.size, max(1, x.size // 20))] = np.nan
    elif pattern == "zeros":      # windows whose max is exactly 0
        x = np.minimum(x, 0)
        x.flat[rng.integers(0, x.size, x.size // 3)] = 0
    g = rng.standard_normal(pool(ck.tensor(x)).shape).astype(np.float32)
    fused = nn.Sequential(nn.ReLU(), pool)
    assert fused[1]._may_precede(fused[0], x)
    out = []
    for run in (fused, lambda t: pool(nn.ReLU()(t))):
        t = ck.tensor(x, requires_grad=True)
        y = run(t)
        y.backward(g)
        out.append((y.data, t.grad.data))
    return out


@pytest.mark.parametrize("pool, shape", [
    (nn.MaxPool2d(2), (2, 3, 8, 8)),
    (nn.MaxPool2d(3, 2, padding=1), (2, 3, 9, 10)),
    (nn.MaxPool2d(3, 2, ceil_mode=True), (1, 2, 8, 9)),
    (nn.MaxPool2d((2, 3), (1, 2), padding=(1, 1), dilation=(2, 1)), (2, 2, 7, 8)),
    (nn.MaxPool1d(3, 2, padding=1), (2, 3, 11)),
    (nn.MaxPool3d(2), (1, 2, 4, 6, 6)),
    (nn.MaxPool2d(2), (3, 8, 8)),             # unbatched
])
@pytest.mark.parametrize("pattern", ["normal", "ties", "nan", "zeros"])
def test_sequential_runs_max_pool_before_relu_bitwise_alike(pool, shape, pattern):
    (y, gx), (y_ref, gx_ref) = _relu_pool_pair(0, pool, shape, pattern)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(gx, gx_ref)
    # the pool ran first: the graph's last node is the ReLU, on the pool's output
    net = nn.Sequential(nn.ReLU(), pool)
    assert net(ck.tensor(np.ones(shape, np.float32), requires_grad=True))._node.name == "relu_backward"


def test_sequential_keeps_relu_first_where_the_orders_differ():
    x = -np.ones((1, 1, 4, 4), np.float32)
    # windows of padding alone (padding wider than convkit's pools allow in PyTorch): relu(-inf) would be 0
    wide = nn.MaxPool2d(2, 2, padding=2)
    net = nn.Sequential(nn.ReLU(), wide)
    assert not wide._may_precede(net[0], x)
    y = net(x).data
    assert np.isneginf(y[0, 0, 0, 0]) and y[0, 0, 1, 1] == 0
    # asked-for indices, a hooked module, an integer input, another activation, a shape the pool rejects
    assert not nn.MaxPool2d(2, return_indices=True)._may_precede(nn.ReLU(), x)
    hooked = nn.ReLU()
    seen = []
    hooked.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    assert not nn.MaxPool2d(2)._may_precede(hooked, x)
    nn.Sequential(hooked, nn.MaxPool2d(2))(x)
    assert seen == [(1, 1, 4, 4)]
    assert not nn.MaxPool2d(2)._may_precede(nn.ReLU(), x.astype(np.int64))
    assert not nn.MaxPool2d(2)._may_precede(nn.ReLU6(), x)
    assert not nn.MaxPool2d(5)._may_precede(nn.ReLU(), x)
    with pytest.raises(ValueError, match="max_pool2d"):
        nn.Sequential(nn.ReLU(), nn.MaxPool2d(5))(x)


def test_onnx_export_keeps_relu_then_max_pool_as_written():
    pytest.importorskip("onnx")
    import convkit.onnx
    proto = convkit.onnx.export(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)), np.ones((1, 1, 4, 4), np.float32), None)
    assert [n.op_type for n in proto.graph.node] == ["Relu", "MaxPool"]
