"""convkit.data: the bundled digits, IDX / CIFAR-10 readers (and their refusals), ArrayDataset,
DataLoader order and reproducibility, batch transforms."""
import doctest
import gzip
import hashlib
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

import convkit.data as D
from convkit.data import (ArrayDataset, Compose, DataLoader, Lambda, Normalize, RandomCrop, RandomHorizontalFlip,
                          ToFloat, cifar10, digits, fashion_mnist, mnist, read_cifar_batch, read_idx, safe_unpickle)

HERE = Path(__file__).resolve()
SHARED = next((p for p in (HERE.parents[2] / "shared" / "data", HERE.parents[1] / ".." / "shared" / "data")
               if p.is_dir()), None)


# --------------------------------------------------------------------------- digits

def test_digits_counts_values_and_checksum():
    tr, te = digits(), digits(train=False)
    assert (len(tr), len(te)) == (1438, 359)
    assert tr.images.shape == (1438, 1, 8, 8) and tr.images.dtype == np.uint8
    assert te.images.shape == (359, 1, 8, 8)
    assert tr.labels.dtype == np.int64 and tr.classes == tuple("0123456789")
    images = np.concatenate([tr.images, te.images])
    assert images.min() == 0 and images.max() == D.DIGITS_SCALE == 16
    counts = np.bincount(np.concatenate([tr.labels, te.labels]), minlength=10)
    assert counts.sum() == 1797 and len(counts) == 10 and counts.min() >= 170 and counts.max() <= 190
    # the bundled file is the published data, byte for byte
    z = D._digits._load()
    assert hashlib.sha256(z["images"].tobytes()).hexdigest() == \
        "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"
    assert hashlib.sha256(z["labels"].tobytes()).hexdigest() == \
        "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0"


def test_digits_split_is_fixed_stratified_and_disjoint():
    np.random.seed(99)  # the global state must not matter
    a = digits()
    np.random.seed(7)
    b = digits()
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    te = digits(train=False)
    assert list(np.bincount(te.labels)) == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    ratio = np.bincount(te.labels) / (np.bincount(te.labels) + np.bincount(a.labels))
    assert np.all(np.abs(ratio - 0.2) < 0.01)
    z = D._digits._load()
    assert z["train"].sum() == 1438
    # train and test partition the file, each in file order
    assert np.array_equal(a.images[:, 0], z["images"][z["train"]])
    assert np.array_equal(te.images[:, 0], z["images"][~z["train"]])


def test_digits_fresh_arrays_and_transform():
    a = digits(transform=ToFloat(16))
    a.images[0] = 0  # the next call is not affected
    assert digits().images[0].any()
    x, y = a[0]
    assert x.dtype == np.float32 and x.shape == (1, 8, 8) and x.max() <= 1.0
    with pytest.raises(TypeError, match="digits: train must be a bool"):
        digits(train="test")


# --------------------------------------------------------------------------- IDX

def idx_bytes(arr, magic=None):
    arr = np.asarray(arr)
    code = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
            np.float64: 0x0E}[arr.dtype.type]
    if magic is None:
        magic = (code << 8) | arr.ndim
    head = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, data, gz=False):
    path = Path(str(path) + ".gz") if gz else Path(path)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_mnist(root, n=(7, 3), gz=False, hw=(28, 28), rng=None):
    rng = rng or np.random.default_rng(0)
    out = {}
    for prefix, k in zip(("train", "t10k"), n):
        images = rng.integers(0, 256, size=(k, *hw), dtype=np.uint8)
        labels = rng.integers(0, 10, size=k).astype(np.uint8)
        write(root / f"{prefix}-images-idx3-ubyte", idx_bytes(images), gz)
        write(root / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels), gz)
        out[prefix] = images, labels
    return out


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_round_trip(tmp_path, gz, dtype):
    arr = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        arr = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    out = read_idx(write(tmp_path / "a-idx3", idx_bytes(arr), gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_and_fashion_from_fake_files(tmp_path, gz):
    truth = fake_mnist(tmp_path, gz=gz)
    for fn, classes in ((mnist, D.MNIST_CLASSES), (fashion_mnist, D.FASHION_MNIST_CLASSES)):
        for train, key in ((True, "train"), (False, "t10k")):
            ds = fn(tmp_path, train=train)
            images, labels = truth[key]
            assert ds.images.shape == (len(labels), 1, 28, 28) and ds.images.dtype == np.uint8
            np.testing.assert_array_equal(ds.images[:, 0], images)
            np.testing.assert_array_equal(ds.labels, labels)
            assert ds.labels.dtype == np.int64 and ds.classes == classes
    assert D.FASHION_MNIST_CLASSES[9] == "Ankle boot"


def test_mnist_finds_subdirectory_layouts(tmp_path):
    (tmp_path / "mnist").mkdir()
    fake_mnist(tmp_path / "mnist", gz=True)
    assert len(mnist(tmp_path)) == 7
    (tmp_path / "FashionMNIST" / "raw").mkdir(parents=True)
    fake_mnist(tmp_path / "FashionMNIST" / "raw")
    assert len(fashion_mnist(tmp_path, train=False)) == 3


def test_mnist_missing_files_list_expected_names(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mnist: expected the files train-images-idx3-ubyte, "
                                                r"train-labels-idx1-ubyte"):
        mnist(tmp_path)
    fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        mnist(tmp_path, train=False)
    with pytest.raises(FileNotFoundError, match="read_idx: no such file: .*nope"):
        read_idx(tmp_path / "nope")


IMG = np.zeros((4, 28, 28), np.uint8)
LBL = np.arange(4, dtype=np.uint8)


@pytest.mark.parametrize("name, images, labels, pattern", [
    ("labels as images", idx_bytes(LBL), idx_bytes(LBL), r"train-images-idx3-ubyte(\.gz)?' must be an IDX image file "
                                                          r"\(magic 0x00000803.*got magic=0x00000801"),
    ("images as labels", idx_bytes(IMG), idx_bytes(IMG), r"train-labels-idx1-ubyte(\.gz)?' must be an IDX label file "
                                                          r"\(magic 0x00000801.*got magic=0x00000803"),
    ("garbage magic", b"\x12\x34\x56\x78" + bytes(100), idx_bytes(LBL), r"must start with an IDX magic number.*"
                                                                         r"got magic=0x12345678"),
    ("unknown type", idx_bytes(IMG, magic=0x00000703) + b"", idx_bytes(LBL), r"got magic=0x00000703"),
    ("float images", idx_bytes(IMG.astype(np.float32)), idx_bytes(LBL), r"got magic=0x00000d03"),
    ("truncated data", idx_bytes(IMG)[:-5], idx_bytes(LBL), r"train-images-idx3-ubyte(\.gz)?' is truncated: "
                                                             r"header dims \(4, 28, 28\) of uint8 need 3152 bytes; "
                                                             r"got 3147 bytes"),
    ("truncated header", idx_bytes(IMG)[:10], idx_bytes(LBL), r"is truncated: its header needs 16 bytes; got 10"),
    ("too short", b"\0\0", idx_bytes(LBL), r"too short for an IDX header"),
    ("trailing bytes", idx_bytes(IMG) + b"\0", idx_bytes(LBL), r"longer than its header says"),
    ("count mismatch", idx_bytes(IMG), idx_bytes(LBL[:3]), r"image and label counts must be equal; got 4 images "
                                                           r"in .*train-images-idx3-ubyte(\.gz)?' and 3 labels in "
                                                           r".*train-labels-idx1-ubyte(\.gz)?'"),
    ("label range", idx_bytes(IMG), idx_bytes(LBL + 7), r"labels must be in \[0, 10\); got a label 10 in "
                                                        r".*train-labels-idx1-ubyte(\.gz)?'"),
], ids=lambda v: v if isinstance(v, str) and " " in v else "")
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_bad_content_gives_value_error_naming_the_file(tmp_path, name, images, labels, pattern, gz):
    write(tmp_path / "train-images-idx3-ubyte", images, gz)
    write(tmp_path / "train-labels-idx1-ubyte", labels, gz)
    with pytest.raises(ValueError, match="mnist: .*" + pattern):
        mnist(tmp_path)


def test_damaged_gzip_gives_value_error(tmp_path):
    data = gzip.compress(idx_bytes(IMG))
    (tmp_path / "cut.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r"read_idx: '.*cut.gz' is a damaged or truncated gzip file"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "bad.gz").write_bytes(data[:10] + b"\xff" * 40 + data[50:])
    with pytest.raises(ValueError, match=r"bad.gz' is a damaged"):
        read_idx(tmp_path / "bad.gz")


@pytest.mark.skipif(SHARED is None, reason="shared/data not found")
@pytest.mark.parametrize("fn, sub", [(mnist, "mnist"), (fashion_mnist, "fashion-mnist")])
def test_real_mnist_files(fn, sub):
    if not (SHARED / sub).is_dir():
        pytest.skip(f"{SHARED / sub} not present")
    for train, n in ((True, 60000), (False, 10000)):
        ds = fn(SHARED / sub, train=train)
        assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == np.uint8
        assert ds.labels.shape == (n,) and ds.labels.min() == 0 and ds.labels.max() == 9
        assert ds.images.max() == 255
    assert len(fn(SHARED, train=False)) == 10000  # the parent directory works too
    if fn is mnist:
        assert list(np.bincount(ds.labels)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --------------------------------------------------------------------------- CIFAR-10

def cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), rng.integers(0, 10, size=n)


def write_cifar_bin(d, n=2):
    d.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = cifar_arrays(n, i)
        rec = np.concatenate([labels.astype(np.uint8)[:, None], data], axis=1)
        (d / f"{name}.bin").write_bytes(rec.tobytes())
        truth[name] = data, labels
    return truth


class Py2StylePickler(pickle._Pickler):
    """Writes str and bytes as Python 2 byte strings (BINSTRING), like the original CIFAR pickles."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        b = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(pickle.BINSTRING + struct.pack("<i", len(b)) + b)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def py2_dumps(obj):
    import io
    f = io.BytesIO()
    Py2StylePickler(f, protocol=2).dump(obj)
    return f.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def write_cifar_py(d, n=2, style="py3"):
    d.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = cifar_arrays(n, i)
        batch = {"batch_label": f"batch {i}", "labels": [int(v) for v in labels], "data": data,
                 "filenames": [f"img_{j}.png" for j in range(n)]}
        if style == "py2":
            blob = py2_dumps(batch)
        elif style == "bytes-keys":
            blob = pickle.dumps({k.encode(): v for k, v in batch.items()}, protocol=2)
        else:
            blob = pickle.dumps(batch, protocol=2 if style == "py3" else 5)
        (d / name).write_bytes(blob)
        truth[name] = data, labels
    return truth


def check_cifar(root, truth):
    tr, te = cifar10(root), cifar10(root, train=False)
    data = np.concatenate([truth[f"data_batch_{k}"][0] for k in range(1, 6)])
    labels = np.concatenate([truth[f"data_batch_{k}"][1] for k in range(1, 6)])
    assert tr.images.shape == (10, 3, 32, 32) and tr.images.dtype == np.uint8
    np.testing.assert_array_equal(tr.images.reshape(10, -1), data)
    np.testing.assert_array_equal(tr.labels, labels)
    np.testing.assert_array_equal(te.images.reshape(2, -1), truth["test_batch"][0])
    assert te.labels.dtype == np.int64 and tr.classes == D.CIFAR10_CLASSES and tr.classes[0] == "airplane"
    # channel planes: the first 1024 bytes are red, row-major
    np.testing.assert_array_equal(tr.images[0, 0, 1], data[0, 32:64])


def test_cifar_binary(tmp_path):
    check_cifar(tmp_path, write_cifar_bin(tmp_path))
    check_cifar(tmp_path / "x", write_cifar_bin(tmp_path / "x" / "cifar-10-batches-bin"))


@pytest.mark.parametrize("style", ["py3", "py2", "bytes-keys", "protocol5"])
def test_cifar_python(tmp_path, style):
    check_cifar(tmp_path, write_cifar_py(tmp_path / "cifar-10-batches-py", style=style))


def test_py2_style_pickle_is_really_py2_style():
    blob = py2_dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [3]})
    assert b"numpy.core.multiarray\n_reconstruct" in blob and b"_codecs" not in blob
    d = safe_unpickle(blob)
    assert set(d) == {b"data", b"labels"} and d[b"labels"] == [3]


def test_cifar_missing_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar10: expected data_batch_1.bin, .*data_batch_5.bin "
                                                r"\(binary version\) or data_batch_1, .*\(python version\)"):
        cifar10(tmp_path)
    write_cifar_bin(tmp_path)
    (tmp_path / "data_batch_3.bin").write_bytes(bytes(3073 * 2 + 5))
    with pytest.raises(ValueError, match=r"data_batch_3.bin' must hold whole records of 3073 bytes.*got 6151"):
        cifar10(tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        cifar10(tmp_path, train=False)


@pytest.mark.parametrize("batch, pattern", [
    ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, r"uint8 array of shape \(N, 3072\)"),
    ({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, r"got data=array\(shape=\(2, 100\)"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, r"as many labels as images; got 2 images and 1"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": ["a", "b"]}, r"labels as a list of ints"),
    ([1, 2], r"must hold a dict"),
])
def test_cifar_python_bad_content(tmp_path, batch, pattern):
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=pattern):
        read_cifar_batch(tmp_path / "test_batch")


class Evil:
    def __reduce__(self):
        return os.system, ("echo pwned > pwned.txt",)


class EvalEvil:
    def __reduce__(self):
        return eval, ("__import__('os').system('echo pwned > pwned.txt')",)


@pytest.mark.parametrize("payload, refused", [
    (Evil(), r"refused global '(posix|nt|os)\.system'"),
    ({"data": EvalEvil(), "labels": [0]}, r"refused global '(builtins|__builtin__)\.eval'"),
    ({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": Path("p")}, r"refused global 'pathlib\."),
    (np.array([None, 1], dtype=object), r"refused an object array"),
])
def test_malicious_pickle_is_refused_without_running(tmp_path, monkeypatch, payload, refused):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "cifar-10-batches-py"
    write_cifar_py(d)
    (d / "data_batch_2").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_2: " + refused):
        cifar10(tmp_path)
    assert not (tmp_path / "pwned.txt").exists()


def test_safe_unpickle_rejects_codecs_misuse_and_garbage():
    blob = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(pickle.UnpicklingError, match="only allowed as encode"):
        safe_unpickle(blob)
    with pytest.raises(pickle.UnpicklingError, match="<bytes>: not a readable pickle"):
        safe_unpickle(b"\x80\x02}q\x00(")
    with pytest.raises(pickle.UnpicklingError, match="persistent"):
        safe_unpickle(b"\x80\x02X\x01\x00\x00\x00aQ.")


# --------------------------------------------------------------------------- ArrayDataset

def test_array_dataset_items_and_batches():
    images = np.arange(5 * 2 * 3 * 3, dtype=np.uint8).reshape(5, 2, 3, 3)
    ds = ArrayDataset(images, [4, 3, 2, 1, 0], transform=ToFloat(), classes="abcde")
    assert len(ds) == 5 and ds.classes == tuple("abcde") and ds.labels.dtype == np.int64
    x, y = ds[-1]
    assert y == 0 and x.dtype == np.float32 and x.shape == (2, 3, 3)
    np.testing.assert_allclose(x, images[4] / 255, rtol=1e-6)
    xb, yb = ds.batch([3, 1])
    assert xb.shape == (2, 2, 3, 3) and list(yb) == [1, 3]
    with pytest.raises(IndexError, match=r"index must be in \[-5, 5\); got index=5"):
        ds[5]
    with pytest.raises(TypeError, match="index must be an int"):
        ds[1:2]


@pytest.mark.parametrize("args, exc, pattern", [
    ((np.zeros((3, 1)), [0, 1]), ValueError, r"same length N; got images.shape=\(3, 1\), labels.shape=\(2,\)"),
    ((np.zeros((2, 1)), [[0, 1]]), ValueError, r"labels must be 1-D"),
    ((np.zeros((2, 1)), [0.5, 1.0]), TypeError, r"labels must have an integer dtype"),
    ((np.zeros((2, 1)), [0, 1], 3), TypeError, r"ArrayDataset: transform must be None or a callable"),
    ((np.zeros((2, 1)), [0, 1], None, [1, 2]), TypeError, r"classes must be None or a sequence of str"),
])
def test_array_dataset_bad_args(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ArrayDataset(*args)


# --------------------------------------------------------------------------- DataLoader

def toy(n=10):
    return ArrayDataset(np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1), np.arange(n) % 3)


class ListDataset:
    """A generic dataset: only __len__ and __getitem__."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((1, 1, 1), i, np.uint8), i % 3


@pytest.mark.parametrize("n, bs, drop_last, sizes", [
    (10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, True, [4, 4]), (8, 4, False, [4, 4]),
    (3, 5, False, [3]), (3, 5, True, []), (0, 2, False, []), (5, 1, False, [1] * 5),
])
@pytest.mark.parametrize("generic", [False, True])
def test_loader_batching_and_len(n, bs, drop_last, sizes, generic):
    ds = ListDataset(n) if generic else toy(n)
    loader = DataLoader(ds, batch_size=bs, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) == len(batches)
    assert [len(y) for _, y in batches] == sizes
    if batches:
        x = np.concatenate([b[0] for b in batches]).ravel()
        assert list(x) == list(range(sum(sizes)))  # no shuffle: dataset order
        assert batches[0][1].dtype == np.int64 and batches[0][0].shape[1:] == (1, 1, 1)


def order(loader):
    return np.concatenate([x.ravel() for x, _ in loader]).astype(int)


@pytest.mark.parametrize("generic", [False, True])
def test_loader_shuffle_is_seeded_per_epoch(generic):
    make = (lambda: DataLoader(ListDataset(50) if generic else toy(50), batch_size=8, shuffle=True, seed=3))
    a, b = make(), make()
    e0, e1, e2 = order(a), order(a), order(a)
    assert sorted(e0) == list(range(50))
    assert not np.array_equal(e0, e1) and not np.array_equal(e1, e2)  # a new order every epoch
    assert np.array_equal(order(b), e0) and np.array_equal(order(b), e1)  # same seed, same epochs
    c = make()
    c.set_epoch(2)  # resume at epoch 2 without replaying 0 and 1
    assert np.array_equal(order(c), e2) and c.epoch == 3
    assert np.array_equal(a.indices(1), e1)
    assert not np.array_equal(order(DataLoader(toy(50), batch_size=8, shuffle=True, seed=4)), e0)
    np.random.seed(0)  # the global state does not matter
    assert np.array_equal(order(make()), e0)


def test_loader_without_seed_records_one():
    loader = DataLoader(toy(30), batch_size=30, shuffle=True)
    again = DataLoader(toy(30), batch_size=30, shuffle=True, seed=loader.seed)
    assert np.array_equal(order(loader), order(again))


def test_loader_fast_path_fancy_indexes_once_per_batch(monkeypatch):
    ds = toy(20)
    calls = []
    monkeypatch.setattr(ArrayDataset, "__getitem__", lambda self, i: calls.append(i))
    assert [len(y) for _, y in DataLoader(ds, batch_size=8, shuffle=True, seed=0)] == [8, 8, 4]
    assert calls == []


@pytest.mark.parametrize("args, exc, pattern", [
    ({"batch_size": 0}, ValueError, r"DataLoader: batch_size must be >= 1; got batch_size=0\."),
    ({"batch_size": 2.5}, TypeError, r"batch_size must be an int"),
    ({"shuffle": 1}, TypeError, r"DataLoader: shuffle must be a bool; got shuffle=1\."),
    ({"drop_last": None}, TypeError, r"drop_last must be a bool"),
    ({"seed": -1}, ValueError, r"seed must be >= 0"),
    ({"transform": "flip"}, TypeError, r"transform must be None or a callable"),
])
def test_loader_bad_args(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        DataLoader(toy(), **args)
    with pytest.raises(TypeError, match="dataset must be an object with __len__"):
        DataLoader(5)


def test_loader_transforms_reproducible_and_batched():
    ds = ArrayDataset(np.random.default_rng(0).integers(0, 17, size=(40, 1, 8, 8), dtype=np.uint8), np.zeros(40, int),
                      transform=ToFloat(16))
    aug = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip()])

    def run(epoch):
        loader = DataLoader(ds, batch_size=16, shuffle=True, seed=11, transform=aug)
        loader.set_epoch(epoch)
        return [x for x, _ in loader]

    a, b, c = run(0), run(0), run(1)
    assert [x.shape for x in a] == [(16, 1, 8, 8), (16, 1, 8, 8), (8, 1, 8, 8)]
    assert all(x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 for x in a)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))


# --------------------------------------------------------------------------- transforms

def test_to_float_and_normalize_values():
    x = np.array([[[[0, 8, 16]]]], np.uint8)
    np.testing.assert_array_equal(ToFloat(16)(x, None), [[[[0, 0.5, 1]]]])
    assert ToFloat()(np.array([255], np.uint8), None)[0] == 1.0
    assert ToFloat()(np.array([1.5]), None).dtype == np.float32
    x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)])[None].repeat(3, 0)  # (3, 2, 2, 2)
    y = Normalize([1.0, 2.0], [0.5, 2.0])(x, None)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y[:, 0], 0.0)
    np.testing.assert_allclose(y[:, 1], 0.5)
    np.testing.assert_allclose(Normalize(1.0, 2.0)(x, None)[:, 1], 1.0)
    with pytest.raises(ValueError, match=r"Normalize: x.shape\[1\] must equal the 2 channels of mean/std; "
                                         r"got x.shape=\(1, 3, 1, 1\)"):
        Normalize([0, 0], [1, 1])(np.zeros((1, 3, 1, 1)), None)


def test_random_crop_matches_loop_and_padding():
    rng = np.random.default_rng(5)
    x = rng.integers(1, 255, size=(6, 2, 5, 7), dtype=np.uint8)
    out = RandomCrop((3, 4), padding=(1, 2))(x, np.random.default_rng(9))
    assert out.shape == (6, 2, 3, 4) and out.dtype == np.uint8
    draw = np.random.default_rng(9)
    oy, ox = draw.integers(0, 5 + 2 - 3 + 1, size=6), draw.integers(0, 7 + 4 - 4 + 1, size=6)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)))
    for i in range(6):
        np.testing.assert_array_equal(out[i], xp[i, :, oy[i]:oy[i] + 3, ox[i]:ox[i] + 4])
    # same size and padding 0: identity
    np.testing.assert_array_equal(RandomCrop((5, 7))(x, rng), x)
    # a padded crop of the full size shifts each sample by at most `padding`, filling with zeros
    shifted = RandomCrop(5, padding=2)(np.ones((50, 1, 5, 5)), np.random.default_rng(1))
    assert shifted.min() == 0 and shifted.max() == 1 and (shifted.sum(axis=(1, 2, 3)) >= 9).all()


def test_random_flip_per_sample():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4).repeat(200, 0)
    out = RandomHorizontalFlip(0.5)(x, np.random.default_rng(0))
    flipped = np.array([np.array_equal(o, x[0, ..., ::-1]) for o in out])
    kept = np.array([np.array_equal(o, x[0]) for o in out])
    assert (flipped ^ kept).all() and 60 < flipped.sum() < 140
    assert x[0, 0, 0, 0] == 0  # input untouched
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x, None), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x, None), x[..., ::-1])


def test_transforms_reproducible_from_generator():
    x = np.random.default_rng(0).random((32, 3, 8, 8)).astype(np.float32)
    t = Compose([RandomCrop(6, padding=1), RandomHorizontalFlip(), Lambda(lambda v: v * 2)])
    a = t(x, np.random.default_rng(123))
    b = t(x, np.random.default_rng(123))
    assert a.shape == (32, 3, 6, 6) and np.array_equal(a, b)
    assert not np.array_equal(a, t(x, np.random.default_rng(124)))


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: ToFloat(0), ValueError, r"ToFloat: scale must be a finite number > 0; got scale=0\."),
    (lambda: ToFloat("16"), TypeError, r"ToFloat: scale must be a real number"),
    (lambda: ToFloat()(np.array(["a"]), None), TypeError, r"ToFloat: x.dtype must be a real"),
    (lambda: Normalize(0.5, 0), ValueError, r"Normalize: std must be a finite number > 0; got std=0\."),
    (lambda: Normalize([0.1, 0.2], [1, 2, 3]), ValueError, r"mean and std must have the same length"),
    (lambda: Normalize([], 1), TypeError, r"Normalize: mean must be a number or a non-empty"),
    (lambda: RandomCrop(0), ValueError, r"RandomCrop: size must be >= 1; got size=0\."),
    (lambda: RandomCrop(3, padding=-1), ValueError, r"RandomCrop: padding must be >= 0; got padding=-1\."),
    (lambda: RandomCrop((3, 3, 3)), ValueError, r"RandomCrop: size must be an int or a sequence of 2 ints"),
    (lambda: RandomCrop(9)(np.zeros((1, 1, 8, 8)), None), ValueError,
     r"RandomCrop: size must fit in the padded input .*=\(8, 8\); got size=\(9, 9\), x.shape=\(1, 1, 8, 8\)"),
    (lambda: RandomCrop(2)(np.zeros((1, 8, 8)), None), ValueError, r"RandomCrop: x.ndim must be 4 .*; got x.ndim=3"),
    (lambda: RandomHorizontalFlip(1.5), ValueError, r"RandomHorizontalFlip: p must be in \[0, 1\]; got p=1\.5\."),
    (lambda: Compose(ToFloat()), TypeError, r"Compose: transforms must be a sequence of callables"),
    (lambda: Compose([ToFloat(), 3]), TypeError, r"Compose: transforms\[1\] must be a callable t\(x, rng\); got "
                                                 r"transforms\[1\]=3\."),
    (lambda: Lambda(3), TypeError, r"Lambda: fn must be callable"),
])
def test_transform_bad_args(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# --------------------------------------------------------------------------- docstrings

@pytest.mark.parametrize("module", ["convkit.data", "convkit.data.transforms", "convkit.data.dataset",
                                    "convkit.data.loader", "convkit.data.idx", "convkit.data._digits"])
def test_docstring_examples(module):
    import importlib
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
