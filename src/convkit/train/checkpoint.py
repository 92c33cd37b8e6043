"""Checkpoints as .npz files: no pickle, written atomically, versioned and checksummed.

A checkpoint holds a tree of dicts (str or int keys), lists, strings, numbers and NumPy arrays
(a model's and an optimizer's state_dict, the epoch, the history, random
states). Arrays go into the npz as ``a/0``, ``a/1``, ...; the rest of the tree
is JSON in ``__meta__`` with ``{"__ndarray__": i}`` where array i was; a
SHA-256 over the JSON and every array's dtype, shape and bytes sits in
``__checksum__``. It is written to a temporary file in the same folder,
fsynced, then renamed over the old file, so a crash at any moment leaves
either the old checkpoint or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "convkit-checkpoint"
VERSION = 1


def _flatten(tree, arrays, path="state"):
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree):
            return {k: _flatten(v, arrays, f"{path}.{k}") for k, v in tree.items()}
        if not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in tree):
            raise TypeError(f"save_checkpoint: keys must be str or int; got keys {list(tree)!r} at {path}.")
        # JSON keys are strings: a dict with int keys (an optimizer's state) is kept as its item list
        return {"__items__": [[k, _flatten(v, arrays, f"{path}[{k!r}]")] for k, v in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return [_flatten(v, arrays, f"{path}[{i}]") for i, v in enumerate(tree)]
    if hasattr(tree, "data") and isinstance(getattr(tree, "data"), np.ndarray):  # a Tensor
        tree = tree.data
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind not in "biufc":
            raise TypeError(f"save_checkpoint: arrays must be numeric or bool; got dtype={tree.dtype} at {path}.")
        arrays.append(tree if tree.flags.c_contiguous else np.array(tree, order="C"))
        return {"__ndarray__": len(arrays) - 1}
    if isinstance(tree, np.generic):
        return tree.item()
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"save_checkpoint: values must be dicts, lists, str, numbers, None or arrays; "
                    f"got {type(tree).__name__} at {path}.")


def _unflatten(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"__ndarray__"}:
            return arrays[tree["__ndarray__"]]
        if set(tree) == {"__items__"}:
            return {k: _unflatten(v, arrays) for k, v in tree["__items__"]}
        return {k: _unflatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, arrays) for v in tree]
    return tree


def _digest(meta_bytes, arrays):
    h = hashlib.sha256(meta_bytes)
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _remove_stale_temporaries(path):
    """Delete ``.NAME.PID.*.tmp`` files beside ``path`` left by writers that no longer run (killed mid-write).

    Temporary files of live processes are left alone; so is anything not named like ours.
    """
    if os.name != "posix":
        return
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # the writer is gone: its file can never be renamed into place
            try:
                os.unlink(path.parent / name)
            except OSError:
                pass
        except OSError:  # alive, under another user: not ours to judge
            pass


def atomic_write(path, write, mode="wb"):
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, and rename it over ``path``.

    A crash at any moment leaves either the old file or the whole new one; on an error the
    temporary file is removed and ``path`` is untouched. The temporary file's name holds the
    writer's process id, so a later write removes those of writers that were killed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def save_checkpoint(path, state):
    """Write ``state`` (a dict tree of plain values and arrays) to ``path`` atomically.

    Returns the path. Nothing at ``path`` changes unless the whole file was written.
    """
    path = Path(path)
    arrays = []
    meta = {"format": FORMAT, "version": VERSION, "state": _flatten(state, arrays)}
    meta_bytes = json.dumps(meta, allow_nan=True).encode()
    entries = {"__meta__": np.frombuffer(meta_bytes, np.uint8),
               "__checksum__": np.frombuffer(_digest(meta_bytes, arrays).encode(), np.uint8)}
    entries.update({f"a/{i}": a for i, a in enumerate(arrays)})
    atomic_write(path, lambda f: np.savez(f, **entries))
    return path


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`; returns its state tree.

    A missing file raises FileNotFoundError; a truncated, corrupted or foreign
    file raises ValueError naming the file. Nothing is modified either way.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: path must be an existing checkpoint file; got path='{path}'.")
    bad = f"load_checkpoint: '{path}' must be a convkit checkpoint"
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # not a zip: say so, rather than np.load's guess (a pickle?)
        raise ValueError(f"{bad}; it is empty." if not head else
                         f"{bad}; it is not an .npz (zip) file: it starts with {head!r}.")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if "__meta__" not in names or "__checksum__" not in names:
                raise ValueError(f"{bad}; it has no convkit header (a foreign .npz?).")
            meta_bytes = z["__meta__"].tobytes()
            checksum = z["__checksum__"].tobytes().decode("ascii")
            meta = json.loads(meta_bytes)
            n = sum(1 for k in names if k.startswith("a/"))
            arrays = [z[f"a/{i}"] for i in range(n)]
    except ValueError as e:
        if str(e).startswith(bad):
            raise
        raise ValueError(f"{bad}; it could not be read ({e}).") from None
    except Exception as e:  # zipfile raises many kinds (BadZipFile, NotImplementedError, RuntimeError, ...)
        raise ValueError(f"{bad}; it is truncated or corrupted ({type(e).__name__}: {e}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{bad}; its header names format {meta.get('format') if isinstance(meta, dict) else None!r}.")
    if meta.get("version") != VERSION:
        raise ValueError(f"{bad} of version {VERSION}; got version={meta.get('version')!r}.")
    if _digest(meta_bytes, arrays) != checksum:
        raise ValueError(f"{bad}; its checksum does not match its contents (the file is corrupted).")
    return _unflatten(meta["state"], arrays)
