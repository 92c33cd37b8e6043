"""Run independent blocks of NumPy work on a few threads.

NumPy releases the GIL inside its loops, so elementwise passes over disjoint
blocks (pooling windows, depthwise taps, im2col copies) run side by side on
several cores, as BLAS does for the matrix products. Each block writes only
its own part of the output, so no locking is needed.

Short blocks go to the pool only while BLAS's workers are not running. After a
matrix product on several threads, OpenBLAS's workers spin for about 0.1 s waiting
for the next one, so in a network (a conv, then a pool, then a conv) they hold the
other cores nearly all the time. A worker woken then shares a core with a spinning
thread, and the block takes longer than on the calling thread alone. Measured on 2
cores (ms, threads vs inline): the max pool 3x3/2 of 64x112x112 at batch 8 7.35 vs
6.53 right after a product, but 3.7 vs 7.5 with OpenBLAS asleep; always the pool vs
this rule: ResNet-18 at batch 1 in an ONNX session 31.5 vs 30.2, an mnist_cnn
training step 61.4 vs 59.6 (docs/performance.md, session 15). Whether BLAS spins is
read from the state of OpenBLAS's first worker in /proc. The machine's count of
runnable threads (/proc/loadavg) also counts short-lived ones: it sent a fifth of
the depthwise layer's calls inline for nothing (25.0 -> 27.5 ms a step).
"""
from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_lock = threading.Lock()
_pool = None
_threads = None


def num_threads() -> int:
    """Threads convkit uses for its own loops (CONVKIT_NUM_THREADS, default: the CPU count, at most 8)."""
    global _threads
    if _threads is None:
        env = os.environ.get("CONVKIT_NUM_THREADS", "")
        _threads = int(env) if env.isdigit() and int(env) > 0 else min(os.cpu_count() or 1, 8)
    return _threads


def set_num_threads(n: int) -> None:
    """Set the number of threads for convkit's own loops (BLAS keeps its own setting)."""
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1; got n={n!r}.")
    with _lock:
        _threads = n
        if _pool is not None:
            _pool.shutdown(wait=False)
            _pool = None


def parts(size, pieces):
    """About ``pieces`` contiguous slices covering range(size): how blocks are shared out over the threads."""
    step = -(-size // max(1, min(pieces, size)))
    return [slice(i, min(size, i + step)) for i in range(0, size, step)]


def _executor():
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=num_threads(), thread_name_prefix="convkit")
        return _pool


_worker = threading.local()


def in_worker() -> bool:
    """Whether the calling thread is one of convkit's workers running a block (nested blocks run inline)."""
    return getattr(_worker, "busy", False)


_blas_thread = {"path": None, "looked": False}


def _foreign_stat():
    """The /proc stat file of this process's first thread that Python did not start (OpenBLAS's first
    worker, made when NumPy loads), or None."""
    own = {t.native_id for t in threading.enumerate()} | {os.getpid()}
    try:
        tids = sorted(int(t) for t in os.listdir("/proc/self/task"))
    except (OSError, ValueError):
        return None
    return next((f"/proc/self/task/{t}/stat" for t in tids if t not in own), None)


def _blas_running():
    """Whether that thread is running now: OpenBLAS's workers spin for about 0.1 s after a product on
    several threads. False where this cannot be told (no /proc, no such thread)."""
    if not _blas_thread["looked"]:
        _blas_thread["path"], _blas_thread["looked"] = _foreign_stat(), True
    path = _blas_thread["path"]
    if path is None:
        return False
    try:
        with open(path, "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] == b"R"
    except (OSError, IndexError):     # the thread is gone: look again next time
        _blas_thread["looked"] = False
        return False


def run_blocks(fn, blocks, always=False):
    """Call fn(block) for every block, on the thread pool when there are several and BLAS's workers are
    not running (``always``: even when they are, for blocks long enough to share a core with them, such
    as a batch's parts).

    Results come back in order. The calling thread takes blocks too, from the same queue as the pool's
    threads, while they wake up: a pool thread that has slept takes 50-180 us to start on this VM (a
    call of two no-op blocks after a pause of 0.2-20 ms, against 7 us back to back), and one that has
    not started by the time the blocks are done is not waited for. Calls made from inside a block run
    inline, so nested use cannot deadlock the pool.
    """
    blocks = list(blocks)
    if len(blocks) < 2 or num_threads() < 2 or in_worker() or not always and _blas_running():
        return [fn(b) for b in blocks]
    err = np.geterr()   # the caller's floating-point error handling (np.errstate) holds on the workers too
    results = [None] * len(blocks)
    queue = itertools.count()      # next() on it is atomic under the GIL
    failed = []

    def drain():
        _worker.busy = True
        try:
            with np.errstate(**err):
                for i in queue:
                    if i >= len(blocks) or failed:
                        return
                    results[i] = fn(blocks[i])
        except BaseException:
            failed.append(True)    # the others stop at their next block
            raise
        finally:
            _worker.busy = False

    helpers = [_executor().submit(drain) for _ in range(min(num_threads(), len(blocks)) - 1)]
    try:
        drain()
    finally:
        # a helper not started yet has nothing left to do: cancelled, it is not waited for
        errors = [None if f.cancel() else f.exception() for f in helpers]
    for e in errors:
        if e is not None:
            raise e
    return results
