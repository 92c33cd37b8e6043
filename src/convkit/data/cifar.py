"""CIFAR-10 from its binary or python batches; the pickles are read without running their code.

The python version of CIFAR-10 is a set of pickles, and ``pickle.load`` will
call any function a file names. :class:`SafeUnpickler` only lets through what
rebuilds plain NumPy arrays (``_reconstruct``, ``ndarray``, ``dtype``,
``_frombuffer``, and a latin-1 ``_codecs.encode`` used for bytes by protocol 2)
and refuses every other global, naming it; the result is then checked to hold
only dicts, lists, tuples, str, bytes, ints, floats, None and non-object arrays.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from .dataset import ArrayDataset, check_bool

__all__ = ["cifar10", "read_cifar_batch", "safe_unpickle", "SafeUnpickler", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_RECORD = 1 + 3 * 32 * 32


def _latin1_encode(obj, encoding="latin1", errors="strict"):
    # protocol 2 pickles bytes as _codecs.encode(str, "latin1"); nothing else is needed
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode is only allowed as encode(str, 'latin1'); "
                                     f"got encode({type(obj).__name__}, {encoding!r}, {errors!r}).")
    return obj.encode("latin1")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "ndarray"): np.ndarray,
    ("numpy._core.multiarray", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "dtype"): np.dtype,
    ("numpy._core.multiarray", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` allows only the globals that rebuild NumPy arrays.

    Any other global (``os.system``, ``builtins.eval``, ...) raises
    ``pickle.UnpicklingError`` naming it, before anything is called.
    Persistent ids are refused too (the base class does that).
    """

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global '{module}.{name}': only NumPy array "
                                         f"reconstruction is allowed.") from None


def _check_plain(obj, depth=0):
    if depth > 32:
        raise pickle.UnpicklingError("the unpickled object is nested more than 32 levels deep.")
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return
    if type(obj) is np.ndarray:
        if obj.dtype.hasobject:
            raise pickle.UnpicklingError(f"refused an object array (dtype={obj.dtype}).")
        return
    if type(obj) is dict:
        for k, v in obj.items():
            _check_plain(k, depth + 1)
            _check_plain(v, depth + 1)
        return
    if type(obj) in (list, tuple):
        for v in obj:
            _check_plain(v, depth + 1)
        return
    raise pickle.UnpicklingError(f"refused an object of type {type(obj).__module__}.{type(obj).__qualname__}; "
                                 "only dicts, lists, tuples, str, bytes, numbers, None and arrays are allowed.")


def safe_unpickle(data, *, source="<bytes>"):
    """Unpickle ``data`` (bytes) with :class:`SafeUnpickler` and check the result is plain data.

    Python 2 strings come back as bytes (``encoding="bytes"``), as in the CIFAR
    files. Any failure is a ``pickle.UnpicklingError`` naming ``source``.
    """
    try:
        obj = SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
        _check_plain(obj)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(f"{source}: {e}") from None
    except Exception as e:  # a damaged stream fails in many ways (EOFError, ValueError, TypeError, ...)
        raise pickle.UnpicklingError(f"{source}: not a readable pickle ({type(e).__name__}: {e}).") from None
    return obj


def _key(d, name):
    for k in (name, name.encode()):
        if k in d:
            return d[k]
    return None


def read_cifar_batch(path):
    """(images, labels) from one CIFAR-10 batch file: ``*.bin`` binary records, otherwise a python pickle.

    Binary: records of 1 label byte + 3072 pixel bytes (1024 red, 1024 green,
    1024 blue, each row-major 32x32), so the size must be a multiple of 3073.
    Python: a dict with ``b"data"`` (N, 3072) uint8 and ``b"labels"`` (N ints),
    read with :func:`safe_unpickle`.

    Shape: images (N, 3, 32, 32) uint8, labels (N,) int64 in [0, 10).
    """
    op, path = "read_cifar_batch", Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{op}: no such file: '{path}'.")
    data = path.read_bytes()
    if path.suffix == ".bin":
        if len(data) == 0 or len(data) % _RECORD:
            raise ValueError(f"{op}: '{path}' must hold whole records of {_RECORD} bytes (1 label + 3072 pixels); "
                             f"got {len(data)} bytes.")
        rec = np.frombuffer(data, np.uint8).reshape(-1, _RECORD)
        labels, images = rec[:, 0].astype(np.int64), rec[:, 1:].reshape(-1, 3, 32, 32).copy()
    else:
        d = safe_unpickle(data, source=str(path))
        if not isinstance(d, dict):
            raise ValueError(f"{op}: '{path}' must hold a dict with 'data' and 'labels'; got {type(d).__name__}.")
        images, labels = _key(d, "data"), _key(d, "labels")
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
                or images.shape[1] != 3072:
            shown = (f"array(shape={images.shape}, dtype={images.dtype})" if isinstance(images, np.ndarray)
                     else type(images).__name__)
            raise ValueError(f"{op}: '{path}' must hold data as a uint8 array of shape (N, 3072); got data={shown}.")
        if not isinstance(labels, (list, tuple, np.ndarray)) or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
            raise ValueError(f"{op}: '{path}' must hold labels as a list of ints.")
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{op}: '{path}' must hold as many labels as images; "
                             f"got {images.shape[0]} images and {labels.shape[0]} labels.")
        images = images.reshape(-1, 3, 32, 32)
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise ValueError(f"{op}: labels must be in [0, 10); got labels in [{labels.min()}, {labels.max()}] "
                         f"in '{path}'.")
    return images, labels


def _batch_files(root, train):
    root = Path(root)
    stems = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    dirs = [root, root / "cifar-10-batches-bin", root / "cifar-10-batches-py"]
    for d in dirs:
        for names in ([s + ".bin" for s in stems], stems):
            if all((d / n).is_file() for n in names):
                return [d / n for n in names]
    raise FileNotFoundError(
        f"cifar10: expected {', '.join(s + '.bin' for s in stems)} (binary version) or "
        f"{', '.join(stems)} (python version) in one of {', '.join(repr(str(d)) for d in dirs)}; not found.")


def cifar10(root, train=True, transform=None):
    """CIFAR-10 from the binary (``data_batch_1.bin`` ...) or python (``data_batch_1`` ...) batches.

    Parameters
    ----------
    root : str or Path
        Directory holding the batches, or its parent holding
        ``cifar-10-batches-bin/`` or ``cifar-10-batches-py/``. Binary files
        are preferred when both versions are there.
    train : bool
        ``data_batch_1`` .. ``data_batch_5`` (50,000 images) or ``test_batch`` (10,000).
    transform : callable t(x, rng) or None
        Batch transform, e.g. ``ToFloat()``.

    Shape: ``images`` (N, 3, 32, 32) uint8 RGB, ``labels`` (N,) int64.
    Classes: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck.
    """
    files = _batch_files(root, check_bool("cifar10", "train", train))
    parts = [read_cifar_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return ArrayDataset(images, labels, transform=transform, classes=CIFAR10_CLASSES)
