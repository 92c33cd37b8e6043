"""Scratch buffers: reused per (thread, slot), never above the workspace limit, zeroed on request."""
import threading

import numpy as np

import convkit
import convkit.reference
from convkit import _scratch


def test_a_slot_reuses_its_buffer_and_grows():
    _scratch.release()
    a = _scratch.scratch("t", (4, 8), np.float32)
    a[...] = 7
    b = _scratch.scratch("t", (2, 8), np.float32)  # smaller: same memory
    assert np.shares_memory(a, b) and b.shape == (2, 8) and b.dtype == np.float32
    c = _scratch.scratch("t", (64, 64), np.float64, zero=True)  # larger: a new buffer, zeroed
    assert not np.shares_memory(a, c) and c.shape == (64, 64) and not c.any()
    assert _scratch.held_bytes() >= c.nbytes
    _scratch.release()
    assert _scratch.held_bytes() == 0


def test_slots_are_separate_and_per_thread():
    _scratch.release()
    a = _scratch.scratch("one", (16,), np.float64)
    b = _scratch.scratch("two", (16,), np.float64)
    assert not np.shares_memory(a, b)
    seen = []
    t = threading.Thread(target=lambda: seen.append(_scratch.scratch("one", (16,), np.float64)))
    t.start()
    t.join()
    assert not np.shares_memory(a, seen[0])


def test_above_the_workspace_limit_nothing_is_kept():
    _scratch.release()
    with convkit.workspace_limit(4096):
        a = _scratch.scratch("big", (2048,), np.float32, zero=True)
    assert a.shape == (2048,) and not a.any() and _scratch.held_bytes() == 0


def test_convolutions_give_the_same_numbers_with_warm_buffers(rng, monkeypatch):
    """The folded paths take their temporaries from scratch: a second call (warm, stale buffers) and a
    call after release give bitwise the results of the first."""
    import convkit.functional as F
    from convkit.functional import _conv_core
    calls = []
    by_sample = _conv_core._forward_fold_by_sample
    monkeypatch.setattr(_conv_core, "_forward_fold_by_sample", lambda *a: calls.append(1) or by_sample(*a))
    for x_shape, w_shape in [((2, 6, 6, 40, 40), (4, 6, 3, 3, 3)), ((3, 8, 5000), (6, 8, 3))]:
        x = rng.standard_normal(x_shape)
        w = rng.standard_normal(w_shape)
        first = F.conv(x, w, padding=1)
        g = np.ones_like(first)
        grads = F.conv_vjp(g, x, w, padding=1)
        np.testing.assert_array_equal(F.conv(x, w, padding=1), first)
        _scratch.release()
        for a, b in zip(F.conv_vjp(g, x, w, padding=1), grads):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(first, convkit.reference.conv(x, w, padding=1), rtol=1e-10, atol=1e-10)
    assert calls  # the sample-major folded path ran


def test_place_copies_the_inside_and_zeroes_a_dirty_border():
    a = np.full((2, 4, 5), 7.0)
    src = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    out = _scratch.place(a, (slice(None), slice(1, 3), slice(2, 5)), src)
    expected = np.zeros((2, 4, 5))
    expected[:, 1:3, 2:5] = src
    assert out is a and np.array_equal(a, expected)
