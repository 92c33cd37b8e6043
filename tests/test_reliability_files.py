"""Checkpoint files under faults: SIGKILL in the middle of saves, and damaged or foreign files.

A child process saves checkpoints in a loop (a few MB each, so a save takes milliseconds) and is
killed with SIGKILL at a random moment, many times over. After every kill the checkpoint must
load, and hold either the generation the child last reported saved or the next one (saved, but
killed before it could report). Temporary files of killed writers may remain; the next save
removes them. Damaged and foreign files must give a clear ValueError and leave the file as it was.
"""
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from convkit.train import checkpoint as ckpt
from convkit.train import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork semantics")

KILLS = int(os.environ.get("CONVKIT_KILLS", "40"))
SIZE = 1 << 19  # float64 elements: 4 MiB per array

# The child loads checkpoint.py on its own (numpy only), so each start costs a NumPy import, not convkit's.
CHILD = r"""
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("ck", sys.argv[1])
ck = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ck)
path, size = sys.argv[2], int(sys.argv[3])
gen = ck.load_checkpoint(path)["gen"]
print("ready", flush=True)
while True:
    gen += 1
    ck.save_checkpoint(path, {"gen": gen, "w": np.full(size, float(gen)), "b": np.arange(gen % 97, dtype=np.int32),
                              "meta": {"note": "x" * (gen % 50), "gen": gen}})
    print(gen, flush=True)
"""


def _check(state):
    g = state["gen"]
    assert state["meta"]["gen"] == g and state["meta"]["note"] == "x" * (g % 50)
    assert state["w"].shape == (SIZE,) and (state["w"] == g).all()
    np.testing.assert_array_equal(state["b"], np.arange(g % 97, dtype=np.int32))
    return g


def _temporaries(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


def test_sigkill_mid_save_never_loses_the_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"gen": 0, "w": np.full(SIZE, 0.0), "b": np.arange(0, dtype=np.int32),
                           "meta": {"note": "", "gen": 0}})
    rng = np.random.default_rng(0)
    saves = left = mid = partial = reads = 0
    for _ in range(KILLS):
        before = _check(load_checkpoint(path))
        child = subprocess.Popen([sys.executable, "-c", CHILD, ckpt.__file__, str(path), str(SIZE)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        # for 0 to a few saves' time (kills then land in every phase of a save) read while the child writes
        end = time.monotonic() + rng.uniform(0, 0.08)
        while time.monotonic() < end:
            _check(load_checkpoint(path))  # a reader never sees half a file either
            reads += 1
        child.send_signal(signal.SIGKILL)
        child.wait()
        reported = [int(s) for s in child.stdout.read().split()]
        child.stdout.close()
        last = reported[-1] if reported else before
        after = _check(load_checkpoint(path))  # loads, and is whole
        assert after in (last, last + 1), (before, reported, after)
        saves += len(reported)
        mid += after == last + 1
        left = max(left, len(_temporaries(tmp_path)))
        partial += any(p.stat().st_size < os.path.getsize(path) for p in tmp_path.glob("*.tmp"))
    save_checkpoint(path, {"gen": -1, "w": np.full(SIZE, -1.0), "b": np.arange(96, dtype=np.int32),
                           "meta": {"note": "x" * 49, "gen": -1}})
    assert _temporaries(tmp_path) == []  # every killed writer's temporary file is gone after one more save
    assert _check(load_checkpoint(path)) == -1
    assert saves > 0  # (how many kills landed mid-write depends on the disk's speed: printed, not asserted)
    print(f"\n{KILLS} kills, {saves} completed saves, {reads} loads during saves, {partial} kills left a half-written "
          f"temporary file, {mid} came after the rename but before the report, at most {left} stale temporary "
          f"files, 0 checkpoints lost")


def test_stale_temporaries_of_live_writers_are_kept(tmp_path):
    path = tmp_path / "c.npz"
    mine = tmp_path / f".c.npz.{os.getppid()}.abc.tmp"  # the parent process is alive
    dead = tmp_path / ".c.npz.999999999.abc.tmp"  # no such process
    other = tmp_path / ".other.npz.999999999.abc.tmp"
    for p in (mine, dead, other):
        p.write_bytes(b"partial")
    save_checkpoint(path, {"w": np.ones(3)})
    assert mine.exists() and other.exists() and not dead.exists()


# ------------------------------------------------------------------ damaged and foreign files


def _good(tmp_path):
    path = tmp_path / "good.npz"
    save_checkpoint(path, {"epoch": 3, "w": np.arange(1000.0), "opt": {0: {"m": np.ones((4, 5), np.float32)}}})
    return path, path.read_bytes()


def _png():
    import zlib

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    raw = b"".join(b"\0" + bytes(8) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (8).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _variants(blob, tmp_path):
    """name -> bytes of a file that is not a whole convkit checkpoint."""
    out = {"empty": b"", "png": _png(), "text": b"epoch: 3\n", "zeros": bytes(4096)}
    for frac in (0.01, 0.3, 0.5, 0.9, 0.999):
        out[f"truncated {frac}"] = blob[: int(len(blob) * frac)]
    out["truncated by 1 byte"] = blob[:-1]
    np.savez(tmp_path / "foreign.npz", w=np.ones(3), b=np.arange(4))
    out["foreign npz"] = (tmp_path / "foreign.npz").read_bytes()
    np.savez(tmp_path / "obj.npz", __meta__=np.array([{"a": 1}], dtype=object), __checksum__=np.zeros(3))
    out["npz with an object array"] = (tmp_path / "obj.npz").read_bytes()
    np.save(tmp_path / "plain.npy", np.arange(10))
    out["npy"] = (tmp_path / "plain.npy").read_bytes()
    rng = np.random.default_rng(5)
    for i in range(12):  # flip one byte inside the stored data (past the local headers)
        bad = bytearray(blob)
        pos = int(rng.integers(len(blob) // 10, len(blob) * 9 // 10))
        bad[pos] ^= 1 << int(rng.integers(8))
        out[f"bit flip at {pos}"] = bytes(bad)
    return out


def _future_version(path, tmp_path):
    """A whole, checksummed checkpoint whose header says version 2."""
    old = ckpt.VERSION
    try:
        ckpt.VERSION = 2
        save_checkpoint(tmp_path / "v2.npz", {"w": np.ones(2)})
    finally:
        ckpt.VERSION = old
    return (tmp_path / "v2.npz").read_bytes()


def test_damaged_and_foreign_files_give_a_clear_error_and_change_nothing(tmp_path):
    path, blob = _good(tmp_path)
    cases = _variants(blob, tmp_path)
    cases["future version"] = _future_version(path, tmp_path)
    target = tmp_path / "ck.npz"
    refused = 0
    for name, data in cases.items():
        target.write_bytes(data)
        stat = target.stat()
        try:
            state = load_checkpoint(target)
        except ValueError as e:
            msg = str(e)
            assert msg.startswith(f"load_checkpoint: '{target}' must be a convkit checkpoint"), (name, msg)
            assert "\n" not in msg, name
            refused += 1
        else:  # a flipped bit in zip padding or a timestamp: then the contents must be exactly right
            assert name.startswith("bit flip"), name
            np.testing.assert_array_equal(state["w"], np.arange(1000.0))
        assert target.read_bytes() == data, name  # a failed load writes nothing
        assert target.stat().st_mtime_ns == stat.st_mtime_ns, name
    assert refused >= len(cases) - 3
    assert path.read_bytes() == blob
    assert _temporaries(tmp_path) == []


def test_loading_a_directory_or_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="must be an existing checkpoint file"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="must be an existing checkpoint file"):
        load_checkpoint(tmp_path / "nope.npz")


def test_checksum_covers_every_array(tmp_path):
    """Rewrite one array inside the zip with other values (a valid npz, a stale checksum): refused."""
    path, blob = _good(tmp_path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    np.save(tmp_path / "other.npy", np.arange(1000.0) + 1)
    members["a/0.npy"] = (tmp_path / "other.npy").read_bytes()
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(forged, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="checksum does not match"):
        load_checkpoint(forged)


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path, blob = _good(tmp_path)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.os, "fsync", boom)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"epoch": 4, "w": np.zeros(10)})
    assert path.read_bytes() == blob and _temporaries(tmp_path) == []
