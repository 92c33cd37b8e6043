"""Threaded blocks give the same numbers as one thread, and ops are safe to call from several threads."""
import contextlib
import os
import threading

import numpy as np
import pytest

import convkit.functional as F
from convkit import _parallel


@contextlib.contextmanager
def _num_threads(n):
    old = _parallel.num_threads()
    _parallel.set_num_threads(n)
    try:
        yield
    finally:
        _parallel.set_num_threads(old)


@pytest.fixture
def one_thread():
    with _num_threads(1):
        yield


@pytest.fixture
def two_threads():
    with _num_threads(2):
        yield


def _workload(rng):
    x = rng.standard_normal((4, 6, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((5, 6, 3, 2)).astype(np.float32)
    y1 = F.conv(x, w, padding=1, groups=6)
    g1 = F.conv_vjp(np.ones_like(y1), x, w, padding=1, groups=6)
    y2 = F.conv(x, w2, padding=1, stride=2)
    g2 = F.conv_vjp(np.ones_like(y2), x, w2, padding=1, stride=2)
    y3, i3 = F.max_pool(x, 3, stride=2, padding=1, return_indices=True)
    g3 = F.max_pool_vjp(np.ones_like(y3), x, 3, stride=2, padding=1)
    return [y1, *g1[:2], y2, *g2[:2], y3, i3, g3]


def test_threads_change_nothing(rng, one_thread, monkeypatch):
    from convkit.functional import _depthwise, pool

    monkeypatch.setattr(_depthwise, "_BLOCK_ELEMENTS", 200)  # many small blocks, so threads share them
    monkeypatch.setattr(pool, "_CACHE_BYTES", 4096)
    monkeypatch.setattr(_parallel, "_blas_running", lambda: False)   # the pool takes the blocks
    serial = _workload(np.random.default_rng(0))
    _parallel.set_num_threads(4)
    threaded = _workload(np.random.default_rng(0))
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)


def test_ops_from_several_threads_at_once(monkeypatch):
    from convkit.functional import _depthwise, pool

    monkeypatch.setattr(_depthwise, "_BLOCK_ELEMENTS", 200)
    monkeypatch.setattr(pool, "_CACHE_BYTES", 4096)
    expected = _workload(np.random.default_rng(0))
    errors = []

    def run():
        try:
            for _ in range(3):
                for a, b in zip(_workload(np.random.default_rng(0)), expected):
                    np.testing.assert_array_equal(a, b)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def _threads_used(**kw):
    """The threads that ran four blocks, and whether the results came back in order."""
    def block(i):
        return i, threading.get_ident()
    got = _parallel.run_blocks(block, range(4), **kw)
    return {t for _, t in got}, [i for i, _ in got] == [0, 1, 2, 3]


def _side_by_side(**kw):
    """The threads that ran two blocks which can only finish together (each waits for the other at a
    barrier), and whether the results came back in order."""
    meet = threading.Barrier(2, timeout=10)

    def block(i):
        meet.wait()
        return i, threading.get_ident()
    got = _parallel.run_blocks(block, range(2), **kw)
    return {t for _, t in got}, [i for i, _ in got] == [0, 1]


@pytest.mark.parametrize("spinning", [False, True])
def test_short_blocks_run_inline_while_blas_spins(two_threads, monkeypatch, spinning):
    monkeypatch.setattr(_parallel, "_blas_running", lambda: spinning)
    if spinning:      # inline: every block on the calling thread
        used, ordered = _threads_used()
        assert ordered and used == {threading.get_ident()}
    else:             # the pool's thread and the calling thread run them side by side
        used, ordered = _side_by_side()
        assert ordered and len(used) == 2 and threading.get_ident() in used
    used, ordered = _side_by_side(always=True)                 # long blocks share the cores anyway
    assert ordered and len(used) == 2 and threading.get_ident() in used


def test_the_calling_thread_does_not_wait_for_a_helper_with_nothing_left(two_threads, monkeypatch):
    """The caller drains the queue itself when the pool's thread is slow to start; the helper, not yet
    started, is cancelled rather than waited for, and the pool stays usable."""
    monkeypatch.setattr(_parallel, "_blas_running", lambda: False)
    hold = threading.Event()
    blocker = _parallel._executor().submit(hold.wait, 10)     # keeps one of the pool's two threads busy
    other = _parallel._executor().submit(hold.wait, 10)       # ... and the other
    got = []
    caller = threading.Thread(target=lambda: got.append((threading.get_ident(), _threads_used())))
    try:
        caller.start()
        caller.join(timeout=5)        # not waiting for the held pool (which would hang until hold is set)
        assert not caller.is_alive(), "run_blocks waited for a helper that had nothing left to do"
        ident, (used, ordered) = got[0]
        assert ordered and used == {ident}
    finally:
        hold.set()
        blocker.result(), other.result()
    used, ordered = _side_by_side()
    assert ordered and len(used) == 2


def test_an_error_in_a_block_reaches_the_caller_and_stops_the_others(two_threads, monkeypatch):
    monkeypatch.setattr(_parallel, "_blas_running", lambda: False)
    ran = []

    def block(i):
        ran.append(i)
        if i == 1:
            raise KeyError("block 1")
    with pytest.raises(KeyError, match="block 1"):
        _parallel.run_blocks(block, range(200))
    assert len(ran) < 200
    assert not _parallel.in_worker()      # the calling thread is no longer marked as running a block


def test_blocks_inside_a_worker_run_inline(two_threads, monkeypatch):
    monkeypatch.setattr(_parallel, "_blas_running", lambda: False)
    got = _parallel.run_blocks(lambda b: (threading.get_ident(), _threads_used(always=True)[0]), range(2))
    assert all(used == {worker} for worker, used in got)


@pytest.mark.parametrize("stat, running", [(b"4242 (python3) R 1 4242 0", True),
                                           (b"4242 (python3) S 1 4242 0", False),
                                           (b"4242 (a) R (b) S 1 4242 0", False),   # the name may hold ") R "
                                           (b"", False)])
def test_blas_running_reads_the_thread_state(tmp_path, monkeypatch, stat, running):
    f = tmp_path / "stat"
    f.write_bytes(stat)
    monkeypatch.setitem(_parallel._blas_thread, "path", str(f))
    monkeypatch.setitem(_parallel._blas_thread, "looked", True)
    assert _parallel._blas_running() is running


def test_a_vanished_blas_thread_is_looked_up_again(tmp_path, monkeypatch):
    monkeypatch.setitem(_parallel._blas_thread, "path", str(tmp_path / "gone"))
    monkeypatch.setitem(_parallel._blas_thread, "looked", True)
    assert _parallel._blas_running() is False
    assert _parallel._blas_thread["looked"] is False
    assert _parallel._blas_running() in (True, False)        # found again (or None where there is none)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="no /proc here")
def test_the_thread_watched_is_not_one_python_started():
    path = _parallel._foreign_stat()
    if path is not None:
        tid = int(path.split("/")[-2])
        assert tid != os.getpid() and tid not in {t.native_id for t in threading.enumerate()}


def test_set_num_threads_rejects_bad_values():
    with pytest.raises(ValueError, match=r"set_num_threads: n must be an int >= 1; got n=0\."):
        _parallel.set_num_threads(0)


def test_run_blocks_keeps_the_callers_errstate_on_its_workers():
    """np.errstate is per thread: the workers take the caller's, so what the caller silenced stays silent
    there and what it made an error raises there."""
    import warnings
    from convkit._parallel import run_blocks

    def overflow(_):
        return np.exp(np.float32([100.0]))
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(np.isinf(r).all() for r in run_blocks(overflow, range(4), always=True))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        run_blocks(overflow, range(4), always=True)
