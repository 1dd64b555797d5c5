"""The one timing rule for choosing between two implementations of the same work: the fastest of a
few calls after a warm-up, since noise on a shared machine only ever adds time. Kernel choices
(crossover.py) use it from here, below everything else; ``tinyeff.timing`` re-exports it."""
import time


def best_time_s(fn, repeats):
    """Fastest of ``repeats`` calls of ``fn()`` after one warm-up call (JIT compile, caches, page faults)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
