"""One thread count for every pool tinyeff computes with, and one pool that owns the cores.

The one idea: NumPy's BLAS, Numba and OpenMP each start a pool of threads sized to the machine, and
an idle pool is not always asleep. Measured on a 2-core machine (CPU this process burns while its
main thread sleeps after one call; bench/twins.py, ``idle_cpu``): OpenBLAS's workers spin about
100 ms after every multi-threaded call, ONNX Runtime's about 50 ms, PyTorch's bundled libgomp about
6 ms; the system libgomp tinyeff's C extension links sleeps at once. A kernel of one pool that runs
inside another pool's spin shares a core with it and runs up to 2x slower.

The design: tinyeff's OpenMP kernels own the cores, and everything else tinyeff calls runs on the
calling thread. Its float GEMMs call BLAS through ``kernels/blas.matmul``, one BLAS thread per call
(the user's own NumPy keeps its threads), so OpenBLAS's workers are never woken and never spin
between two OpenMP kernels. The alternatives, and why not:

- BLAS owns the cores, OpenMP runs one thread: most of tinyeff's work (direct convolutions, pooling,
  batch norm, int8 GEMMs) is its own C, so that would leave a core idle most of the time.
- A passive wait policy for OpenBLAS: it reads its spin time (OPENBLAS_THREAD_TIMEOUT) only when it
  loads, before tinyeff is imported, and has no call to change it later.
- A passive policy for libgomp: it too reads OMP_WAIT_POLICY / GOMP_SPINCOUNT only at load, and
  the process may already hold PyTorch's copy (one soname, loaded once, shared by both). With BLAS
  on the calling thread, libgomp's workers spin only where the next OpenMP kernel wants them.

Small kernels stay on one thread: every OpenMP region in csrc/ has an ``if`` clause on its work
(TINYEFF_PARALLEL_MIN_MACS / _ELEMS in csrc/tinyeff.h), so batch-1 inference forks no thread and a
second thread cannot make it slower. Big regions hand out work dynamically where a task is large,
so a thread the OS deschedules on a loaded machine delays the region by one task, not half of it.

``set_threads(n)`` sizes the pools at run time, which works whatever was imported first:

- OpenMP: ``omp_set_num_threads`` through the C extension. NOTE: OpenMP keeps this per calling
  thread, so call ``set_threads`` from the thread that will train (a Dask task does, in the task).
- Numba: ``numba.set_num_threads`` (capped at the pool size Numba started with, NUMBA_NUM_THREADS).
- BLAS: threadpoolctl's limit, for the user's NumPy; tinyeff's own GEMMs still take one thread.

The environment variables (OMP_NUM_THREADS, ...) are set too, so child processes inherit the count.
"""
import os

ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def set_threads(n):
    """Use at most ``n`` threads in OpenMP, Numba and BLAS from now on; return what each got.

    Raises:
        ValueError: ``n`` is not a positive integer.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads: {n!r} must be a positive integer, e.g. --threads 1")
    for var in ENV_VARS:                 # child processes start with n threads everywhere
        os.environ[var] = str(n)
    got = {"openmp": None, "numba": None, "blas": None}
    from tinyeff.kernels import c
    if c.load_error() is None:
        c.set_num_threads(n)
        got["openmp"] = c.num_threads()
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        got["numba"] = numba.get_num_threads()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=n, user_api="blas")
        got["blas"] = n
    except ImportError:
        pass
    return got


def cores():
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
