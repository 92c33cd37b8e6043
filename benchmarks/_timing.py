"""Timing shared by the benchmarks: interleaved repeats after a pause, and medians of back-to-back calls."""
from __future__ import annotations

import statistics
import time

# Pause before each timed run: OpenBLAS's idle threads spin for up to ~0.1 s after convkit's last
# matrix product (and a peer's threads after its own), and would steal the next run's cores.
SETTLE = 0.25


def interleaved(runs, repeats):
    """{name: [seconds, ...]}: each repeat calls every callable of ``runs`` (a dict, in its order) once,
    each after a pause of SETTLE seconds, so that all of them see the same machine load."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            time.sleep(SETTLE)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median_time(fn, repeats=5):
    """Median seconds of ``repeats`` back-to-back calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
