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

``one_thread()`` is the cheap form for one inference pass (nn/simple.py's Sequential enters it when
no gradient is recorded): the block's first ``matmul`` sets the libraries to one thread, the later
ones call BLAS straight away, and the end of the block restores them. At batch 1 the per-call switch (a query and two sets through
threadpoolctl, 3-5 us) cost as much as the seed CNN's small GEMMs themselves. Every GEMM still runs
on one BLAS thread, so the results are the same bits.
"""
import contextlib
import sys
import threading


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
    if getattr(_held, "depth", 0):           # inside one_thread(): set once for the whole block
        if _held.raised is None:
            _held.raised = _lower_to_one()
        return a @ b
    raised = _lower_to_one()
    if not raised:
        return a @ b
    try:
        return a @ b
    finally:
        _restore(raised)


# per thread: depth, how many one_thread() blocks it is inside; raised, what the block's first
# matmul lowered to one thread (None before it)
_held = threading.local()


class one_thread:
    """Within the block, BLAS libraries run on one thread: set by the block's first ``matmul``
    (a block without a GEMM costs nothing), restored when the outermost block ends; ``matmul``
    skips its per-call switch. Nested blocks cost an attribute read.

    NOTE: everything in the block that calls BLAS runs on one thread, a hook's NumPy included; a
    thread count raised inside the block (``set_threads``, or another Python thread's block ending
    and restoring the process-wide count) holds until it ends. As for ``matmul``, that changes
    which pool runs a GEMM, never its result.
    """
    __slots__ = ()

    def __enter__(self):
        depth = getattr(_held, "depth", 0)
        if depth == 0:
            _held.raised = None
        _held.depth = depth + 1
        return self

    def __exit__(self, *exc):
        _held.depth -= 1
        if _held.depth == 0 and _held.raised:
            _restore(_held.raised)
            _held.raised = None
        return False


def _lower_to_one():
    """Set every loaded BLAS library running more than one thread to one; [(library, its count)]."""
    raised = [(lib, lib.get_num_threads()) for lib in _blas_libraries()]
    raised = [(lib, n) for lib, n in raised if n is not None and n > 1]
    for lib, _ in raised:
        lib.set_num_threads(1)
    return raised


def _restore(raised):
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
