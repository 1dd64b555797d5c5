"""tinyeff's BLAS calls run on the calling thread: two thread pools must not share two cores.

NumPy's BLAS (OpenBLAS) starts one worker per core, and after every multi-threaded call its workers
keep spinning (a ``sched_yield`` loop) for OpenBLAS's thread timeout, 2^28 cycles, before they sleep.
We measured that idle spin on this 2-core machine: 100 ms of CPU per call, one worker busy the whole
time (the spin-measurement recipe is in bench/twins.py, ``idle_cpu``). Any tinyeff OpenMP kernel in
those 100 ms shares a core with the spinning worker: inside a training step the seed CNN's conv
kernels ran 1.9x slower than alone, and batch-256 inference of the seed CNN ran its direct convolutions
at 17 ms a call with 2-thread BLAS between them against 9 ms with 1-thread BLAS. Even a batch-1
linear layer wakes the workers (OpenBLAS threads a GEMV above 9216 elements). OpenBLAS reads its timeout
only when it loads (OPENBLAS_THREAD_TIMEOUT), so the one fix left at run time is never to wake them.

So tinyeff's own float GEMMs go through ``matmul`` here, which sets every loaded BLAS library to one
thread for the call and restores the previous count after it (3.7 us a call through threadpoolctl,
the library scikit-learn uses for exactly this; it finds OpenBLAS, MKL or BLIS under whatever symbol
names the wheel uses). The user's own NumPy keeps its threads. The GEMMs tinyeff sends to BLAS are
small (linear layers, convolutions whose im2col lowering was measured faster; see
kernels/conv/lowering.py, which times the lowerings through the same call), so one thread costs them
little, and the OpenMP kernels own the cores (see tinyeff/threads.py for the whole design).

``blas_threads(n)`` does the same for a whole block (``train.fit``, ``predict`` and the timings run
inside one), which also covers the BLAS calls NumPy makes outside the GEMM kernel.
"""
import contextlib
import sys


@contextlib.contextmanager
def blas_threads(n=1):
    """Within the block, BLAS libraries use at most ``n`` threads (a no-op without threadpoolctl)."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=n, user_api="blas"):
        yield


def matmul(a, b):
    """``a @ b`` with BLAS on the calling thread for this call only (see the module docstring).

    NOTE: the BLAS thread count is one setting per process, so two Python threads multiplying at
    once may see each other's setting; that changes only which pool runs a call, never its result.
    """
    raised = [(lib, lib.get_num_threads()) for lib in _blas_libraries()]
    raised = [(lib, n) for lib, n in raised if n is not None and n > 1]
    if not raised:
        return a @ b
    for lib, _ in raised:
        lib.set_num_threads(1)
    try:
        return a @ b
    finally:
        for lib, n in raised:
            lib.set_num_threads(n)


_CONTROLLER = []     # [threadpoolctl controller or None, its BLAS libraries, len(sys.modules) then]


def _controller():
    """threadpoolctl's view of the loaded BLAS libraries, looked up again whenever Python has
    imported something since (0.3 ms): a BLAS can load after tinyeff, e.g. SciPy's OpenBLAS when
    Numba compiles its first ``np.dot``, and one left out would spin beside our kernels. Imports
    stop once a program runs, so a training loop pays one length check per call."""
    if not _CONTROLLER or _CONTROLLER[2] != len(sys.modules):
        try:
            import threadpoolctl
            controller = threadpoolctl.ThreadpoolController()
            libraries = controller.select(user_api="blas").lib_controllers
        except ImportError:          # NOTE: an optional speed-up; nothing else depends on it
            controller, libraries = None, ()
        _CONTROLLER[:] = [controller, libraries, len(sys.modules)]
    return _CONTROLLER[0]


def _blas_libraries():
    """The loaded BLAS libraries (NumPy's among them), as threadpoolctl controllers."""
    _controller()
    return _CONTROLLER[1]
