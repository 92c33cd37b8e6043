"""convkit.nn.weights: safetensors and npz state dicts, PyTorch's loaded by name without PyTorch."""
import json

import numpy as np
import pytest

import convkit
from convkit import models, nn
from convkit.nn.weights import load_weights, read_safetensors, save_weights, write_safetensors


def _file(tmp_path, header, data=b"", name="w.safetensors", n=None):
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path = tmp_path / name
    path.write_bytes((len(text) if n is None else n).to_bytes(8, "little") + text + data)
    return path


def test_round_trip_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    sd = {"f16": rng.normal(size=(2, 3)).astype(np.float16), "f32": rng.normal(size=(4,)).astype(np.float32),
          "f64": rng.normal(size=(2, 2, 2)), "i64": np.arange(5), "i32": np.arange(3, dtype=np.int32),
          "i16": np.array([-3, 4], np.int16), "i8": np.array([-1, 2], np.int8), "u8": np.arange(4, dtype=np.uint8),
          "u16": np.array([7], np.uint16), "bool": np.array([True, False]), "scalar": np.array(3, np.int64),
          "empty": np.zeros((0, 3), np.float32), "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
          "big_endian": np.arange(3, dtype=">f4"), "tensor": convkit.tensor([1.0, 2.0])}
    path = write_safetensors(tmp_path / "all.safetensors", sd, metadata={"format": "pt"})
    raw = path.read_bytes()
    assert (8 + int.from_bytes(raw[:8], "little")) % 8 == 0   # data starts aligned
    back, meta = read_safetensors(path)
    assert meta == {"format": "pt"} and list(back) == list(sd)
    for k, v in sd.items():
        want = np.asarray(v.data if isinstance(v, convkit.Tensor) else v)
        assert back[k].dtype == want.dtype.newbyteorder("=") and back[k].shape == want.shape, k
        np.testing.assert_array_equal(back[k], want)
        assert back[k].flags.writeable
    assert list(load_weights(path)) == list(sd)


def test_bf16_reads_as_float32(tmp_path):
    values = np.array([1.5, -2.0, 0.15625, 2.0**100], np.float32)   # exact in bfloat16
    bf16 = (values.view(np.uint32) >> 16).astype("<u2")
    path = _file(tmp_path, {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, bf16.tobytes())
    w = load_weights(path)["w"]
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, values.reshape(2, 2))


def test_npz_and_save_weights_suffix(tmp_path):
    net = nn.Conv2d(2, 3, 3)
    p = save_weights(tmp_path / "c.npz", net.state_dict())
    assert p.read_bytes()[:2] == b"PK"
    other = nn.Conv2d(2, 3, 3)
    other.load_state_dict(load_weights(p))
    np.testing.assert_array_equal(other.weight.data, net.weight.data)
    q = save_weights(tmp_path / "c.safetensors", net.state_dict())
    assert q.read_bytes()[:2] != b"PK"
    assert {k: v.shape for k, v in load_weights(q).items()} == {k: v.shape for k, v in net.state_dict().items()}


def test_safetensors_package_cross_check(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    sd = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int64)}
    write_safetensors(tmp_path / "ours.safetensors", sd)
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    for k in sd:
        np.testing.assert_array_equal(theirs[k], sd[k])
    st.save_file(sd, str(tmp_path / "theirs.safetensors"))
    for k, v in load_weights(tmp_path / "theirs.safetensors").items():
        np.testing.assert_array_equal(v, sd[k])


# ---------------------------------------------------------------- PyTorch state dicts by name

def _torch_twin(tnn, name):
    if name == "mnist_cnn":
        return tnn.Sequential(
            tnn.Conv2d(1, 32, 5, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 5, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(3136, 1024), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(1024, 10))
    if name == "lenet5":
        return tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5), tnn.ReLU(),
            tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
            tnn.Linear(84, 10))

    class Block(tnn.Module):   # the same attribute names as convkit.models.resnet.BasicBlock
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.shortcut = tnn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn1(self.conv1(x)).relu()
            return (self.bn2(self.conv2(out)) + self.shortcut(x)).relu()

    class ResNet8(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            self.layer1 = tnn.Sequential(Block(16, 16, 1))
            self.layer2 = tnn.Sequential(Block(16, 32, 2))
            self.layer3 = tnn.Sequential(Block(32, 64, 2))
            self.pool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(64, 10)

        def forward(self, x):
            x = self.bn1(self.conv1(x)).relu()
            return self.fc(self.pool(self.layer3(self.layer2(self.layer1(x)))).flatten(1))
    return ResNet8()


TWINS = {"mnist_cnn": (2, 1, 28, 28), "lenet5": (2, 1, 28, 28), "resnet8": (2, 3, 32, 32)}


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
@pytest.mark.parametrize("name", sorted(TWINS))
def test_torch_state_dict_loads_by_name(torch, tmp_path, name, fmt):
    torch.manual_seed(0)
    tnet = _torch_twin(torch.nn, name)
    for m in tnet.modules():   # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    tnet.eval()
    arrays = {k: v.detach().numpy() for k, v in tnet.state_dict().items()}
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "npz":
        np.savez(path, **arrays)
    else:
        try:
            from safetensors.torch import save_file
            save_file(tnet.state_dict(), str(path))
        except ImportError:
            write_safetensors(path, arrays)
    net = models.get_model(name).eval()
    result = net.load_state_dict(load_weights(path))
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = np.random.default_rng(1).normal(size=TWINS[name]).astype(np.float32)
    with torch.no_grad():
        want = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x).data, want, rtol=1e-5, atol=1e-5)


def test_wrong_names_are_reported(tmp_path):
    path = save_weights(tmp_path / "l.safetensors", {"weight": np.zeros((2, 3), np.float32)})
    with pytest.raises(ValueError, match="missing keys: bias"):
        nn.Linear(3, 2).load_state_dict(load_weights(path))


# ---------------------------------------------------------------- bad files

def _raw(tmp_path, data):
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    return path


F32 = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize("make, pattern", [
    (lambda t: _raw(t, b"\x01\x00"), "fewer than the 8-byte"),
    (lambda t: _file(t, F32, b"\0" * 8, n=10**12), "header length 1000000000000 must be between"),
    (lambda t: _file(t, F32, b"\0" * 8, n=200), "header length 200"),
    (lambda t: _file(t, b"{not json}", b""), "header is not JSON"),
    (lambda t: _file(t, b"[1, 2]", b""), "must be a JSON object"),
    (lambda t: _file(t, b'{"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "a": {"dtype": "F32", '
                        b'"shape": [0], "data_offsets": [0, 0]}}'), "names tensor 'a' twice"),
    (lambda t: _file(t, {"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0\0"),
     "dtype 'F8_E4M3'; known"),
    (lambda t: _file(t, F32, b"\0" * 4), r"data_offsets=\[0, 8\]; they must lie within the 4 data bytes"),
    (lambda t: _file(t, {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
     "needs 12 bytes; its data_offsets span 8"),
    (lambda t: _file(t, {"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8),
     "shape of ints >= 0"),
    (lambda t: _file(t, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12), "overlap"),
    (lambda t: _file(t, {"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8), "exactly dtype, shape and data_offsets"),
    (lambda t: _file(t, {"__metadata__": {"a": 1}}), "__metadata__ must map strings to strings"),
])
def test_bad_safetensors(tmp_path, make, pattern):
    path = make(tmp_path)
    with pytest.raises(ValueError, match=pattern) as e:
        load_weights(path)
    assert str(path) in str(e.value)


def test_truncated_file_is_an_error(tmp_path):
    path = save_weights(tmp_path / "t.safetensors", {"a": np.arange(10.0), "b": np.arange(4.0)})
    raw = path.read_bytes()
    for cut in (len(raw) - 1, len(raw) - 40, 20, 9):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="t.safetensors"):
            load_weights(path)


def test_bad_npz(tmp_path):
    good = save_weights(tmp_path / "g.npz", {"a": np.arange(3.0)})
    bad = tmp_path / "b.npz"
    bad.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(ValueError, match="b.npz' must be a valid .npz"):
        load_weights(bad)
    objects = tmp_path / "o.npz"
    np.savez(objects, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="o.npz' must be a valid .npz"):
        load_weights(objects)
    from convkit.train.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "ck.npz", {"model": {"a": np.zeros(2)}})
    with pytest.raises(ValueError, match="is a convkit checkpoint"):
        load_weights(tmp_path / "ck.npz")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_weights(tmp_path / "missing.safetensors")


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="dtype=complex128"):
        save_weights(tmp_path / "c.safetensors", {"c": np.zeros(2, complex)})
    with pytest.raises(ValueError, match="__metadata__"):
        save_weights(tmp_path / "c.safetensors", {"__metadata__": np.zeros(2)})
    assert not (tmp_path / "c.safetensors").exists()


def test_bf16_matches_torch(torch, tmp_path):
    t = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
    path = _file(tmp_path, {"t": {"dtype": "BF16", "shape": [3, 5], "data_offsets": [0, 30]}}, raw)
    np.testing.assert_array_equal(load_weights(path)["t"], t.float().numpy())
