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


# ------------------------------------------------------------ pooled arrays (outputs, kept columns)

MB = 1 << 20


def _busy():
    return sum(b.busy for b in _scratch._pool)


def test_a_pooled_buffer_is_lent_until_the_last_view_of_its_array_is_gone():
    import gc
    _scratch.release_pool()
    a = _scratch.pooled((512, 1024), np.float32)       # 2 MiB
    assert a.ctypes.data % 64 == 0 and _busy() == 1
    views = [a.reshape(-1)[7:], a.T, a[::2].T.reshape(-1), np.asarray(a), memoryview(a)]
    addr = a.ctypes.data
    del a
    gc.collect()
    for i in range(len(views)):
        assert _busy() == 1                            # some view still reads the buffer
        b = _scratch.pooled((512, 1024), np.float32)
        assert b.ctypes.data != addr and not np.shares_memory(b, np.asarray(views[-1]))
        del b
        views.pop()
    gc.collect()
    assert _busy() == 0
    c = _scratch.pooled((1024, 512), np.float32)      # same size: the same buffer again
    assert c.ctypes.data == addr


def test_live_pooled_arrays_never_share_memory_and_dirty_buffers_are_zeroed_on_request():
    _scratch.release_pool()
    arrays = [_scratch.pooled((MB // 4 + i,), np.float32) for i in range(4)]
    for i, a in enumerate(arrays):
        a[...] = i + 1
    for i, a in enumerate(arrays):
        assert (a == i + 1).all()
        assert not any(np.shares_memory(a, b) for b in arrays[i + 1:])
    del arrays
    z = _scratch.pooled((MB // 4,), np.float32, zero=True)
    assert not z.any()


def test_the_pool_holds_at_most_the_workspace_limit():
    _scratch.release_pool()
    with convkit.workspace_limit(4 * MB):
        small = _scratch.pooled((10,), np.float32)            # below the pool's minimum: plain NumPy
        huge = _scratch.pooled((2 * MB,), np.float32)          # 8 MiB, above the limit: plain NumPy
        held = [_scratch.pooled((MB // 4,), np.float32) for _ in range(6)]   # 1 MiB each
        assert small.flags.owndata and huge.flags.owndata
        assert sum(not h.flags.owndata for h in held) == 4     # the fifth and sixth do not fit
        assert sum(_scratch.pooled_bytes()) <= 4 * MB
        del held[3:]
        assert _scratch.pooled_bytes() == (3 * MB, MB)
        big = _scratch.pooled((MB // 2,), np.float32)           # 2 MiB: the busy 3 MiB leave no room
        assert big.flags.owndata and _scratch.pooled_bytes() == (3 * MB, MB)   # and the free one stays
        del held
        big = _scratch.pooled((3 * MB // 4,), np.float32)       # 3 MiB: free 1 MiB buffers dropped to make room
        assert not big.flags.owndata and sum(_scratch.pooled_bytes()) <= 4 * MB
        del big
    convkit.release_memory()
    assert _scratch.pooled_bytes() == (0, 0) and _scratch.held_bytes() == 0


def test_pooled_arrays_from_many_threads_never_overlap():
    _scratch.release_pool()
    barrier = threading.Barrier(4)
    got, errors = [], []

    def work(k):
        barrier.wait()
        for i in range(50):
            a = _scratch.pooled((MB // 4,), np.float32)
            a[...] = k
            got.append(a) if i % 10 == 0 else None
            if not (a == k).all():
                errors.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, a in enumerate(got):
        assert not any(np.shares_memory(a, b) for b in got[i + 1:])


def test_training_steps_on_a_warm_pool_give_the_same_numbers(rng):
    """Two autograd steps whose forwards run before either backward (each keeping its columns or
    Winograd's transformed input on pooled buffers), then again on the warm pool: the same results,
    bitwise, and the outputs those of forwards that keep nothing."""
    import convkit.functional as F
    # Winograd (3x3, 16 channels), folded columns (5x5), im2col's (stride 2), a 1-D padded input
    for x_shape, w_shape, pad, stride in [((16, 16, 32, 32), (16, 16, 3, 3), 1, 1),
                                          ((16, 8, 32, 32), (16, 8, 5, 5), 2, 1),
                                          ((16, 16, 64, 64), (16, 16, 3, 3), 1, 2),
                                          ((2, 16, 20000), (8, 16, 3), 1, 1)]:
        x = rng.standard_normal(x_shape).astype(np.float32)
        ws = [rng.standard_normal(w_shape).astype(np.float32) * 0.1 for _ in range(2)]

        def steps():
            tx = [convkit.Tensor(x, requires_grad=True) for _ in ws]
            tw = [convkit.Tensor(w, requires_grad=True) for w in ws]
            ys = [F.conv(a, b, padding=pad, stride=stride) for a, b in zip(tx, tw)]
            for y in ys:
                (y * y).sum().backward()
            return [y.data.copy() for y in ys] + [t.grad.data.copy() for t in tx + tw]

        _scratch.release_pool()
        first = steps()
        for _ in range(2):
            for a, b in zip(steps(), first):
                np.testing.assert_array_equal(a, b)
        for y, w in zip(first, ws):   # the same as a forward that keeps nothing
            np.testing.assert_allclose(y, F.conv(x, w, padding=pad, stride=stride), rtol=1e-5, atol=1e-5)
