"""One thread count for every pool tinyeff computes with, and one pool that owns the cores.

The one idea: NumPy's BLAS, Numba and OpenMP each start a pool of threads sized to the machine, and
an idle pool is not always asleep. Measured on a 2-core machine (CPU this process burns while its
main thread sleeps after one call; bench/twins.py, ``idle_cpu``): OpenBLAS's workers spin about
100 ms after every multi-threaded call, ONNX Runtime's about 50 ms, PyTorch's bundled libgomp about
6 ms; tinyeff's libgomp, with the PASSIVE wait policy tinyeff sets before it loads
(kernels/__init__.py), sleeps at once. A kernel of one pool that runs inside another pool's spin
shares a core with it and runs up to 2x slower.

The design: tinyeff's OpenMP kernels own the cores, and everything else tinyeff calls runs on the
calling thread. Its float GEMMs call BLAS through ``kernels/blas.matmul``, one BLAS thread per call
(the user's own NumPy keeps its threads; an inference pass through ``Sequential`` sets it once for
the pass), so OpenBLAS's workers are never woken and never spin between two OpenMP kernels. The alternatives, and why not:

- BLAS owns the cores, OpenMP runs one thread: most of tinyeff's work (direct convolutions, pooling,
  batch norm, int8 GEMMs) is its own C, so that would leave a core idle most of the time.
- A passive wait policy for OpenBLAS: it reads its spin time (OPENBLAS_THREAD_TIMEOUT) only when it
  loads, before tinyeff is imported, and has no call to change it later.
- Spinning libgomp workers, for a faster start of the next kernel: on a shared machine a spinning
  worker holds a core another process wants, and every region waits at its end for a worker the
  OS descheduled. NOTE: libgomp reads OMP_WAIT_POLICY once, when it loads, and a process holds one
  copy: if PyTorch is imported first, its libgomp spins and tinyeff shares it. Measured (seed CNN
  training step, batch 64, load ~5 on 2 cores): 2 threads took 0.31x the speed of 1 thread with
  PyTorch imported first, 0.94x with tinyeff's passive default. Import tinyeff first or set
  OMP_WAIT_POLICY=PASSIVE in the environment (importing tinyeff after PyTorch without it warns).

Small kernels stay on one thread: every kernel's OpenMP region in csrc/ forks only above a work
threshold (TINYEFF_PARALLEL_MIN_MACS / _ELEMS in csrc/tinyeff.h), so batch-1 inference of the seed CNN
forks no thread and a second thread cannot make it slower. The largest regions, the direct
convolution's, hand out their tasks dynamically, so a thread the OS deschedules on a loaded machine
delays the region by one task, not by half of its work.

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
