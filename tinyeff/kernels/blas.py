"""One BLAS thread while tinyeff's own kernels run: two thread pools must not share two cores.

NumPy's BLAS (OpenBLAS) starts one worker per core, and after every call its workers keep spinning
for a while (OpenBLAS's default thread timeout is 2^28 cycles, about 0.1 s) before they sleep. In a
training step the linear layers call BLAS, and the next conv kernel, an OpenMP region over the same
cores, then shares each core with a spinning BLAS worker: we measured the seed CNN's conv kernels
1.9x slower inside a step than alone, and the whole step 10-25% slower (``bench/bench_train_step.py``,
side by side, ``OPENBLAS_NUM_THREADS=1`` against the default). The GEMMs tinyeff sends to BLAS are
small (linear layers, convs on tiny planes), so one BLAS thread costs them little.

``blas_threads(1)`` limits every loaded BLAS library to one thread for the duration of a block, through
threadpoolctl (the library scikit-learn uses for exactly this; it finds OpenBLAS, MKL or BLIS under
whatever symbol names the wheel uses) and restores the previous setting afterwards. ``train.fit``,
``predict`` and the comparison's timings run inside it; code that calls a model directly can too.
"""
import contextlib


@contextlib.contextmanager
def blas_threads(n=1):
    """Within the block, BLAS libraries use at most ``n`` threads (a no-op without threadpoolctl)."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=n, user_api="blas"):
        yield


_CONTROLLER = []


def _controller():
    if not _CONTROLLER:
        try:
            import threadpoolctl
            _CONTROLLER.append(threadpoolctl.ThreadpoolController())
        except ImportError:          # NOTE: an optional speed-up; nothing else depends on it
            _CONTROLLER.append(None)
    return _CONTROLLER[0]
