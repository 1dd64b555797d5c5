"""One thread count for every pool tinyeff computes with: OpenMP (C kernels), Numba and BLAS.

The one idea: three libraries each start their own pool of threads, sized to the machine by default,
so two runs side by side on a 2-core machine would start 3 x 2 threads each and fight over the
cores. ``set_threads(n)`` sizes all three at run time, which works whatever was imported first:

- OpenMP: ``omp_set_num_threads`` through the C extension. NOTE: OpenMP keeps this per calling
  thread, so call ``set_threads`` from the thread that will train (a Dask task does, in the task).
- Numba: ``numba.set_num_threads`` (capped at the pool size Numba started with, NUMBA_NUM_THREADS).
- BLAS: threadpoolctl's limit (training already runs BLAS single-threaded; see kernels/blas.py).

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
