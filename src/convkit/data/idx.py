"""IDX files (the MNIST format) and the MNIST / Fashion-MNIST readers.

An IDX file is a header, magic ``0x0000TTDD`` (TT the element type, DD the
number of dimensions) then DD big-endian uint32 sizes, followed by the
elements, row-major and big-endian. MNIST images are ``0x00000803`` (uint8,
3 dims: N, rows, cols), labels ``0x00000801`` (uint8, 1 dim: N). Files may be
gzip-compressed (detected from the content, not the name).
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset, check_bool

__all__ = ["read_idx", "mnist", "fashion_mnist", "MNIST_CLASSES", "FASHION_MNIST_CLASSES"]

IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801

MNIST_CLASSES = tuple(str(c) for c in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _read_bytes(op, path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{op}: no such file: '{path}'.")
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{op}: '{path}' is a damaged or truncated gzip file ({e}).") from None
    return data


def _parse_idx(op, path, data):
    """(array, magic) from the bytes of an IDX file; every size checked against the header."""
    if len(data) < 4:
        raise ValueError(f"{op}: '{path}' is too short for an IDX header; got {len(data)} bytes.")
    magic = struct.unpack(">I", data[:4])[0]
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in IDX_DTYPES or ndim < 1:
        raise ValueError(f"{op}: '{path}' must start with an IDX magic number 0x0000TTDD "
                         f"(TT one of {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}, DD >= 1); "
                         f"got magic=0x{magic:08x}.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{op}: '{path}' is truncated: its header needs {header} bytes; got {len(data)} bytes.")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(f"{op}: '{path}' is {what}: header dims {dims} of {dtype.name} need "
                         f"{expected} bytes; got {len(data)} bytes.")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("=")), magic


def read_idx(path):
    """Read an IDX file (raw or gzip) into a native-endian, writable ndarray.

    Raises FileNotFoundError for a missing file and ValueError, naming the
    file, for a bad magic number, a damaged gzip stream, or a size that does
    not match the header.

    Shape: the dims in the header, e.g. (60000, 28, 28) for MNIST training images.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
    >>> _ = open(p, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(p)
    array([7, 8, 9], dtype=uint8)
    """
    return _parse_idx("read_idx", path, _read_bytes("read_idx", path))[0]


def _find_files(op, root, subdirs, names):
    """The directory among root and root/subdir holding every name (raw or .gz); paths in names' order."""
    root = Path(root)
    dirs = [root] + [root / s for s in subdirs]
    for d in dirs:
        found = []
        for name in names:
            hit = next((d / (name + ext) for ext in ("", ".gz") if (d / (name + ext)).is_file()), None)
            if hit is None:
                break
            found.append(hit)
        else:
            return found
    raise FileNotFoundError(f"{op}: expected the files {', '.join(names)} (each raw or .gz) in one of "
                            f"{', '.join(repr(str(d)) for d in dirs)}; not found.")


def _idx_pair(op, root, train, subdirs, classes):
    prefix = "train" if check_bool(op, "train", train) else "t10k"
    img_path, lbl_path = _find_files(op, root, subdirs, [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"])
    images, magic = _parse_idx(op, img_path, _read_bytes(op, img_path))
    if magic != IMAGES_MAGIC:
        raise ValueError(f"{op}: '{img_path}' must be an IDX image file (magic 0x{IMAGES_MAGIC:08x}: uint8, "
                         f"3 dims); got magic=0x{magic:08x}.")
    labels, magic = _parse_idx(op, lbl_path, _read_bytes(op, lbl_path))
    if magic != LABELS_MAGIC:
        raise ValueError(f"{op}: '{lbl_path}' must be an IDX label file (magic 0x{LABELS_MAGIC:08x}: uint8, "
                         f"1 dim); got magic=0x{magic:08x}.")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{op}: the image and label counts must be equal; got {images.shape[0]} images in "
                         f"'{img_path}' and {labels.shape[0]} labels in '{lbl_path}'.")
    if labels.size and labels.max() >= len(classes):
        raise ValueError(f"{op}: labels must be in [0, {len(classes)}); got a label {labels.max()} in '{lbl_path}'.")
    return images[:, None], labels


def mnist(root, train=True, transform=None):
    """MNIST handwritten digits from the four IDX files in ``root``.

    Parameters
    ----------
    root : str or Path
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``),
        or a parent of such a directory named ``mnist`` or ``MNIST/raw``.
    train : bool
        60,000 training images or 10,000 test images.
    transform : callable t(x, rng) or None
        Batch transform, e.g. ``ToFloat()`` for float32 in [0, 1].

    Shape: ``images`` (N, 1, 28, 28) uint8 (0 background .. 255 ink), ``labels`` (N,) int64.
    """
    images, labels = _idx_pair("mnist", root, train, ["mnist", "MNIST/raw"], MNIST_CLASSES)
    return ArrayDataset(images, labels, transform=transform, classes=MNIST_CLASSES)


def fashion_mnist(root, train=True, transform=None):
    """Fashion-MNIST (Zalando article images) from the four IDX files in ``root``.

    Same files, layout and shapes as :func:`mnist`; the parent-directory names
    looked for are ``fashion-mnist`` and ``FashionMNIST/raw``. Classes:
    T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
    """
    images, labels = _idx_pair("fashion_mnist", root, train, ["fashion-mnist", "FashionMNIST/raw"],
                               FASHION_MNIST_CLASSES)
    return ArrayDataset(images, labels, transform=transform, classes=FASHION_MNIST_CLASSES)
