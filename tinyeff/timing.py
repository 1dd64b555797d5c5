"""Wall-clock timing helpers shared by everything in tinyeff that reports a speed.

Three rules make the figures comparable on a shared, noisy machine: warm up first (JIT compilation,
packed weights, caches and page faults are not the steady state), report a median (or, for picking
between two kernels, the best) over several calls rather than one, and time alternatives *side by
side* (``time_side_by_side``: every round runs each candidate in turn, so a quiet or busy moment of
the machine falls on all of them). Speed claims themselves live in ``bench/``.
"""
import time

import numpy as np

from tinyeff.kernels.blas import blas_threads
from tinyeff.kernels.stopwatch import best_time_s  # noqa: F401  (part of this module's API)
from tinyeff.tensor import Tensor, no_grad


def median_time(fn, min_time_s=0.5, min_repeats=5, warmup=1):
    """Median wall time of ``fn()`` over at least ``min_repeats`` calls and ``min_time_s`` seconds,
    with its inter-quartile range and the number of calls."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_time_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.percentile(times, 75) - np.percentile(times, 25)), len(times)


def time_side_by_side(fns, rounds=7, min_time_s=0.05):
    """Interleaved timing of several callables: per round, each runs for at least ``min_time_s``.

    Args:
        fns: dict name -> zero-argument callable.
        rounds: rounds of one turn per callable; ``min_time_s=0`` makes a turn exactly one call.
    Returns:
        dict name -> (median seconds per call, inter-quartile range) over all calls of all rounds.
    """
    samples = {name: [] for name in fns}
    with blas_threads(1):                               # as in training and predict (kernels/blas.py)
        for fn in fns.values():
            fn()                                        # warm-up: JIT, packed weights, caches
        for _ in range(rounds):
            for name, fn in fns.items():
                end = time.perf_counter() + min_time_s
                while True:
                    t0 = time.perf_counter()
                    fn()
                    t1 = time.perf_counter()
                    samples[name].append(t1 - t0)
                    if t1 >= end:
                        break
    return {name: (float(np.median(t)), float(np.percentile(t, 75) - np.percentile(t, 25)))
            for name, t in samples.items()}


def inference_fn(model, x):
    """A closure running ``model`` on array ``x`` in eval mode without recording a graph."""
    model.eval()
    tensor = Tensor(x)

    def run():
        with no_grad():
            return model(tensor)
    return run
