"""State dicts as files: safetensors and npz, read and written without PyTorch (and without pickle).

A PyTorch state_dict saved with ``safetensors.torch.save_file`` (or as an
npz of ``t.numpy()`` arrays) loads into the matching convkit model by name::

    net.load_state_dict(load_weights("model.safetensors"))

safetensors layout: 8 bytes little-endian u64 N, N bytes of JSON header
``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
"__metadata__": {...}}`` (offsets relative to the data after the header),
then the raw little-endian tensor bytes. Every part is checked before any
array is made; BF16 becomes float32 (NumPy has no bfloat16).
"""
from __future__ import annotations

import json
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

MAX_HEADER = 100_000_000  # as the safetensors library: a larger header is a corrupt or hostile file

# safetensors dtype -> NumPy little-endian dtype (BF16 is read as its top 16 bits of a float32)
_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?", "BF16": "<u2"}
_NAMES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items() if k != "BF16"}


def _bad(path, why):
    return ValueError(f"load_weights: '{path}' must be a valid safetensors file; {why}.")


def _no_duplicates(pairs):
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise KeyError(k)
        seen.add(k)
    return dict(pairs)


def read_safetensors(path):
    """(OrderedDict name -> array, metadata dict) from a safetensors file; ValueError naming it if malformed."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 8:
        raise _bad(path, f"it has {len(raw)} bytes, fewer than the 8-byte header length")
    n = int.from_bytes(raw[:8], "little")
    if n < 2 or n > MAX_HEADER or n > len(raw) - 8:
        raise _bad(path, f"its header length {n} must be between 2 and min({MAX_HEADER}, file size - 8 = "
                         f"{len(raw) - 8})")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except KeyError as e:
        raise _bad(path, f"its header names tensor {e.args[0]!r} twice") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise _bad(path, f"its header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise _bad(path, f"its header must be a JSON object; got {type(header).__name__}")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _bad(path, "its __metadata__ must map strings to strings")
    data = memoryview(raw)[8 + n:]
    spans, out = [], OrderedDict()
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise _bad(path, f"tensor {name!r} must have exactly dtype, shape and data_offsets; got {info!r}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _DTYPES:
            raise _bad(path, f"tensor {name!r} has dtype {dtype!r}; known: {', '.join(sorted(_DTYPES))}")
        if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
            raise _bad(path, f"tensor {name!r} must have a shape of ints >= 0; got shape={shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= len(data)):
            raise _bad(path, f"tensor {name!r} has data_offsets={offsets!r}; they must lie within the "
                             f"{len(data)} data bytes")
        itemsize = np.dtype(_DTYPES[dtype]).itemsize
        count = int(np.prod(shape, dtype=object))
        if count * itemsize != offsets[1] - offsets[0]:
            raise _bad(path, f"tensor {name!r} of shape {tuple(shape)} and dtype {dtype} needs "
                             f"{count * itemsize} bytes; its data_offsets span {offsets[1] - offsets[0]}")
        spans.append((offsets[0], offsets[1], name))
        a = np.frombuffer(data[offsets[0]:offsets[1]], dtype=_DTYPES[dtype]).reshape(shape)
        if dtype == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.astype(a.dtype.newbyteorder("="), copy=True)
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise _bad(path, f"tensors {n0!r} and {n1!r} overlap (bytes {b0}-{e0} and {b1}-{e1})")
    return out, dict(meta)


def write_safetensors(path, state_dict, metadata=None):
    """Write name -> array (Tensors and anything np.asarray takes) as a safetensors file, atomically."""
    from ..train.checkpoint import atomic_write  # a file writer; imported here so nn never imports train at load

    arrays, header, offset = [], OrderedDict(), 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError(f"save_weights: metadata must map str to str; got {metadata!r}.")
        header["__metadata__"] = dict(metadata)
    for name, v in state_dict.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"save_weights: names must be strings other than '__metadata__'; got {name!r}.")
        a = _as_array(v)
        key = _NAMES.get(a.dtype.newbyteorder("="))
        if key is None:
            raise TypeError(f"save_weights: {name} must have a dtype safetensors stores "
                            f"(float16/32/64, int8-64, uint8-64, bool); got dtype={a.dtype}.")
        b = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype)
        header[name] = {"dtype": key, "shape": list(a.shape), "data_offsets": [offset, offset + b.nbytes]}
        offset += b.nbytes
        arrays.append(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(text) + 8) % 8)  # the data starts 8-byte aligned, as the library writes it

    def write(f):
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in arrays:
            f.write(b.tobytes())
    return atomic_write(path, write)


def _as_array(v):
    if hasattr(v, "detach") and hasattr(v, "cpu"):   # a torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(getattr(v, "data", v) if not isinstance(v, np.ndarray) else v)


def load_weights(path):
    """A state dict (OrderedDict name -> NumPy array) from a .safetensors or .npz file.

    The format is taken from the file's first bytes (an npz is a zip). npz is
    read with ``allow_pickle=False``. Malformed files raise ValueError naming
    the file; a missing one FileNotFoundError.

    >>> import numpy as np, tempfile, os, convkit.nn as nn
    >>> net = nn.Linear(3, 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
    >>> _ = save_weights(path, net.state_dict())
    >>> nn.Linear(3, 2).load_state_dict(load_weights(path))
    IncompatibleKeys(missing_keys=[], unexpected_keys=[])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_weights: path must be an existing .safetensors or .npz file; got '{path}'.")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):
        return _read_npz(path)
    return read_safetensors(path)[0]


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            if "__meta__" in z.files:
                raise ValueError(f"load_weights: '{path}' is a convkit checkpoint, not a state dict; read it with "
                                 "convkit.train.load_checkpoint (its 'model' entry) or load_trained.")
            return OrderedDict((k, z[k]) for k in z.files)
    except ValueError as e:
        if str(e).startswith("load_weights:"):
            raise
        raise ValueError(f"load_weights: '{path}' must be a valid .npz of arrays; {e}.") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, RuntimeError, NotImplementedError) as e:
        raise ValueError(f"load_weights: '{path}' must be a valid .npz of arrays; it is truncated or corrupted "
                         f"({type(e).__name__}: {e}).") from None


def save_weights(path, state_dict, metadata=None):
    """Write a state dict atomically: safetensors unless ``path`` ends in .npz. Returns the path."""
    path = Path(path)
    if path.suffix == ".npz":
        from ..train.checkpoint import atomic_write

        arrays = {k: _as_array(v) for k, v in state_dict.items()}
        return atomic_write(path, lambda f: np.savez(f, **arrays))
    return write_safetensors(path, state_dict, metadata)


__all__ = ["load_weights", "save_weights", "read_safetensors", "write_safetensors"]
