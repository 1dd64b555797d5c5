"""The timing rules for choosing between implementations of the same work, below everything else.

``best_time_s``: the fastest of a few calls after a warm-up, since noise on a shared machine only
ever adds time (crossover.py; ``tinyeff.timing`` re-exports it). ``race``: alternatives timed back
to back in rounds and judged by the median of their in-round time ratios, since two calls a few
milliseconds apart see about the same load while the best single time of each is often luck (the
conv lowering, the int8 models' sparse-or-dense choice).
"""
import time

import numpy as np


def best_time_s(fn, repeats):
    """Fastest of ``repeats`` calls of ``fn()`` after one warm-up call (JIT compile, caches, page faults)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def race(fns, repeats):
    """Time ``fns`` in ``repeats`` rounds after one warm-up call each, every round calling each once
    (the order reversed from round to round).

    Returns:
        (the fastest call of each, the index of the winner, the median over rounds of each one's
        time over the first one's time in the same round); the winner has the least median ratio.
    """
    for fn in fns:
        fn()
    times = np.empty((repeats, len(fns)))
    order = list(range(len(fns)))
    for r in range(repeats):
        for k in order:
            t0 = time.perf_counter()
            fns[k]()
            times[r, k] = time.perf_counter() - t0
        order.reverse()
    ratios = np.median(times / np.maximum(times[:, :1], 1e-12), axis=0)
    return [float(t) for t in times.min(axis=0)], int(np.argmin(ratios)), [float(r) for r in ratios]
