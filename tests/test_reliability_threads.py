"""Ops are thread-safe: convolutions (every algorithm path), their gradients, and pooling run from
8 threads at once, some under a tiny workspace limit (chunked paths), some with the autotune plan
cache filling up, and every result is checked against a single-threaded computation."""
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import convkit
import convkit.functional as F
from convkit import workspace_limit
from convkit._config import alloc_limit

R = np.random.default_rng(0)


def a(*shape):
    return R.standard_normal(shape).astype(np.float32)


X = a(3, 16, 13, 12)
X1, X3 = a(3, 6, 40), a(2, 4, 6, 7, 5)
# name -> (x, weight, conv kwargs): depthwise, 1x1, dense 3x3 (im2col and winograd), strided, grouped,
# dilated, 5x5, 1-d and 3-d
CONVS = {
    "depthwise": (X, a(16, 1, 3, 3), dict(padding=1, groups=16)),
    "1x1": (X, a(8, 16, 1, 1), {}),
    "3x3 im2col": (X, a(8, 16, 3, 3), dict(padding=1, algorithm="im2col")),
    "3x3 winograd": (X, a(8, 16, 3, 3), dict(padding=1, algorithm="winograd")),
    "strided": (X, a(8, 16, 3, 3), dict(stride=2, padding=1)),
    "grouped": (X, a(8, 4, 3, 3), dict(padding=1, groups=4)),
    "dilated": (X, a(8, 16, 3, 3), dict(padding=2, dilation=2)),
    "5x5 reflect": (X, a(4, 16, 5, 5), dict(padding=2, padding_mode="reflect")),
    "conv1d": (X1, a(5, 6, 3), dict(stride=2)),
    "conv3d": (X3, a(3, 4, 3, 3, 3), dict(padding=1)),
}


def conv_job(name):
    x, w, kw = CONVS[name]
    y = F.conv(x, w, **kw)
    g = np.cos(y)
    return [y, *F.conv_vjp(g, x, w, **kw)[:2]]


WT = a(8, 4, 3, 3)


def transpose_job():
    x, w = X[:, :8], WT
    y = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    return [y, *F.conv_transpose_vjp(np.sin(y), x, w, stride=2, padding=1, output_padding=1)[:2]]


def pool_job():
    y, i = F.max_pool2d(X, 3, stride=2, padding=1, return_indices=True)
    out = [y, i, F.max_pool_vjp(np.cos(y), X, 3, stride=2, padding=1)]
    z = F.avg_pool2d(X, 3, stride=1, padding=1, count_include_pad=False)
    out += [z, F.avg_pool_vjp(np.cos(z), X, 3, stride=1, padding=1, count_include_pad=False)]
    q = F.adaptive_max_pool2d(X, (5, 4))
    out += [q, F.adaptive_avg_pool3d(X3, (2, 3, 2)), F.lp_pool1d(X1, 2, 4)]
    return out


JOBS = {**{f"conv {k}": (lambda k=k: conv_job(k)) for k in CONVS}, "conv_transpose": transpose_job,
        "pooling": pool_job}


def _small_workspace(job):
    def run():
        with workspace_limit(64 * 1024), alloc_limit(2**30):  # thread-local: chunked paths in this thread only
            return job()
    return run


@pytest.fixture
def two_inner_threads():
    old = convkit.num_threads()
    convkit.set_num_threads(2)  # the ops' own thread pool is shared by all callers too
    yield
    convkit.set_num_threads(old)


def _run_all(tasks, workers=8):
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futures = [(name, ex.submit(fn)) for name, fn in tasks]
        return [(name, f.result()) for name, f in futures]


def test_ops_from_eight_threads_match_one_thread(two_inner_threads):
    expected = {name: job() for name, job in JOBS.items()}
    small = {name: _small_workspace(job)() for name, job in JOBS.items()}
    for name in JOBS:  # the chunked paths agree with the one-chunk ones
        for p, q in zip(expected[name], small[name]):
            np.testing.assert_allclose(p, q, rtol=0, atol=1e-5 * np.abs(q).max(), err_msg=name)  # float32 sums
    tasks = []
    for _ in range(8):
        for name, job in JOBS.items():
            tasks.append((name, job))
            tasks.append(("small " + name, _small_workspace(job)))
    random.Random(0).shuffle(tasks)
    checked = 0
    for name, got in _run_all(tasks):
        want = small[name[6:]] if name.startswith("small ") else expected[name]
        assert len(got) == len(want)
        for p, q in zip(got, want):
            np.testing.assert_array_equal(p, q, err_msg=name)  # bitwise: the same path, whatever the threads
            checked += 1
    assert checked > 400


def test_autotune_plan_cache_under_threads(two_inner_threads):
    """Threads that meet new shapes at once all fill the (locked) plan cache; answers agree to rounding."""
    shapes = [(2, 16, 9 + i, 10) for i in range(6)]
    w = a(8, 16, 3, 3)
    xs = [a(*s) for s in shapes]
    expected = [F.conv(x, w, padding=1) for x in xs]
    F.clear_plans()
    try:
        with F.autotune():
            tasks = [(i, lambda x=x: F.conv(x, w, padding=1)) for _ in range(4) for i, x in enumerate(xs)]
            results = _run_all(tasks)
        plans = F.conv_plans()
    finally:
        F.clear_plans()
    for i, y in results:
        np.testing.assert_allclose(y, expected[i], rtol=0, atol=1e-5 * np.abs(expected[i]).max())
    assert {k[2] for k in plans} >= set(shapes)  # one plan per shape, whichever thread made it
