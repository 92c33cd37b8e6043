"""Models: shapes, parameter counts, summary numbers, the FCN on larger images, PyTorch parity."""
import numpy as np
import pytest

import convkit
from convkit import models, optim

CASES = [  # name, kwargs, input shape, output shape, parameters
    ("mnist_cnn", {}, (2, 1, 28, 28), (2, 10), 3_274_634),
    ("lenet5", {}, (2, 1, 28, 28), (2, 10), 61_706),
    ("digits_cnn", {}, (2, 1, 8, 8), (2, 10), 30_762),
    ("resnet8", {}, (2, 3, 32, 32), (2, 10), 78_042),
    ("resnet20", {}, (2, 3, 32, 32), (2, 10), 272_474),
    ("fcn", {}, (2, 1, 28, 28), (2, 10), 50_186),
    ("fcn", {"head": "gap"}, (2, 1, 28, 28), (2, 10), 19_466),
]


@pytest.mark.parametrize("name,kwargs,shape,out,params", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_model_shapes_and_parameter_counts(name, kwargs, shape, out, params):
    convkit.manual_seed(0)
    net = models.get_model(name, **kwargs)
    y = net(np.zeros(shape, np.float32))
    assert y.shape == out and y.dtype == np.float32
    assert sum(p.numel() for p in net.parameters()) == params
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_fcn_gives_a_map_on_larger_images():
    convkit.manual_seed(0)
    net = models.fcn().eval()
    assert net(np.zeros((1, 1, 28, 28), np.float32)).shape == (1, 10)
    assert net(np.zeros((1, 1, 60, 44), np.float32)).shape == (1, 10, 9, 5)
    gap = models.fcn(head="gap").eval()
    assert gap(np.zeros((3, 1, 60, 44), np.float32)).shape == (3, 10)
    dense = models.mnist_cnn().eval()
    with pytest.raises(ValueError, match="linear"):
        dense(np.zeros((1, 1, 60, 44), np.float32))


def test_get_model_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"get_model: name must be one of \['digits_cnn'"):
        models.get_model("vgg")


def test_summary_numbers():
    s = models.summary(models.mnist_cnn(), (1, 28, 28))
    rows = {r.name: r for r in s.rows}
    assert rows["0"].output_shape == (32, 28, 28) and rows["0"].params == 832 and rows["0"].macs == 28 * 28 * 32 * 25
    assert rows["3"].macs == 14 * 14 * 64 * 32 * 25
    assert rows["7"].macs == 3136 * 1024 and rows["7"].params == 3136 * 1024 + 1024
    assert s.total_params == 3_274_634 and s.output_shape == (10,)
    text = str(s)
    assert "total parameters: 3,274,634" in text and "64x7x7" in text
    with pytest.raises(ValueError, match="summary: input_shape must be positive"):
        models.summary(models.mnist_cnn(), (0, 28, 28))


def _torch_mnist_cnn(tnn):
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 5, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 5, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(3136, 1024), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(1024, 10))


def test_mnist_cnn_matches_torch_with_copied_weights():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tnet = _torch_mnist_cnn(torch.nn).double().eval()
    net = models.mnist_cnn().double().eval()
    net.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 1, 28, 28)), rng.integers(0, 10, 4)
    out = net(x)
    tout = tnet(torch.from_numpy(x))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    loss = convkit.functional.cross_entropy(out, y)
    tloss = torch.nn.functional.cross_entropy(tout, torch.from_numpy(y))
    opt, topt = optim.Adam(net.parameters(), lr=1e-3), torch.optim.Adam(tnet.parameters(), lr=1e-3)
    loss.backward()
    tloss.backward()
    for (k, p), tp in zip(net.named_parameters(), tnet.parameters()):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=k)
    opt.step()
    topt.step()
    for (k, p), tp in zip(net.named_parameters(), tnet.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def test_resnet20_matches_torch_in_train_mode():
    torch = pytest.importorskip("torch")
    import importlib.util
    import pathlib
    spec = importlib.util.spec_from_file_location(
        "train_mnist", pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "train_mnist.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tnet = bench.torch_resnet20().double()
    net = models.resnet20().double()
    ours_keys = list(net.state_dict())
    theirs = list(tnet.state_dict().values())
    assert [v.shape for v in net.state_dict().values()] == [tuple(v.shape) for v in theirs]
    net.load_state_dict({k: v.detach().numpy() for k, v in zip(ours_keys, theirs)})
    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32))
    out, tout = net(x), tnet(torch.from_numpy(x))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-9, atol=1e-10)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(net.conv1.weight.grad.data, tnet[0].weight.grad.numpy(), rtol=1e-7, atol=1e-9)
