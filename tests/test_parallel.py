"""Threaded blocks give the same numbers as one thread, and ops are safe to call from several threads."""
import threading

import numpy as np
import pytest

import convkit.functional as F
from convkit import _parallel


@pytest.fixture
def one_thread():
    old = _parallel.num_threads()
    _parallel.set_num_threads(1)
    yield
    _parallel.set_num_threads(old)


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


def test_set_num_threads_rejects_bad_values():
    with pytest.raises(ValueError, match=r"set_num_threads: n must be an int >= 1; got n=0\."):
        _parallel.set_num_threads(0)
