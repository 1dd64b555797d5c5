"""The local executor: a pool of worker processes on this machine, each run on its own share of cores.

The one idea: a run is single-process NumPy + OpenMP + Numba work, so runs side by side must split
the cores between them, not each start a thread per core. ``LocalPool(workers, threads)`` starts
``workers`` processes (the "spawn" start method: a fresh interpreter, no OpenMP or BLAS thread pool
inherited through fork) and every run sets its thread count to ``threads`` (default: cores //
workers, at least 1). Progress (one message per finished epoch) comes back through a
``multiprocessing.Manager`` queue, whose proxy can travel with each task.

Both this pool and ``cluster.DaskPool`` offer the same small interface to the driver (``driver.py``):
``capacity()``, ``submit(run_id, config)``, ``wait(handles, timeout)``, ``outcome(handle)``,
``progress()`` and ``close()``.
"""
import concurrent.futures as cf
import multiprocessing
import queue

from tinyeff.sweep import job
from tinyeff.threads import cores


def default_workers(threads=None):
    """Workers that fill the cores with ``threads`` threads each (one thread each if not given)."""
    return max(1, cores() // (threads or 1))


class LocalPool:
    """``workers`` spawned processes, each run with ``threads`` threads."""

    where = "local"

    def __init__(self, workers=None, threads=None, root=None):
        if workers is not None and workers < 1:
            raise ValueError(f"sweep: --workers {workers} must be >= 1")
        self.workers = workers or default_workers(threads)
        self.threads = threads or max(1, cores() // self.workers)
        self.root = root
        context = multiprocessing.get_context("spawn")
        self._manager = context.Manager()
        self._queue = self._manager.Queue()
        self._context = context
        self._executor = cf.ProcessPoolExecutor(self.workers, mp_context=context)
        self._generation = {}           # handle -> the executor that ran it (restarts make new ones)

    def describe(self):
        return f"{self.workers} local worker process(es), {self.threads} thread(s) per run"

    def capacity(self):
        return self.workers

    def submit(self, run_id, config):
        handle = self._executor.submit(job.execute, run_id, config, self.threads, self.root, self._queue)
        self._generation[handle] = self._executor
        return handle

    def wait(self, handles, timeout):
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def outcome(self, handle):
        """(result dict, None) or (None, error text); a crashed pool is restarted for the next runs."""
        executor = self._generation.pop(handle, None)
        try:
            return handle.result(), None
        except cf.process.BrokenProcessPool:
            if executor is self._executor:      # every run of a broken pool lands here; restart once
                self._restart()
            return None, "the worker process died (killed, or out of memory?); re-run the sweep to retry"
        except Exception as exc:            # the run's own error, raised in the worker
            return None, f"{type(exc).__name__}: {exc}"

    def _restart(self):
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = cf.ProcessPoolExecutor(self.workers, mp_context=self._context)

    def progress(self):
        messages = []
        while True:
            try:
                messages.append(self._queue.get_nowait())
            except (queue.Empty, EOFError, OSError):
                return messages

    def close(self, cancel=False):
        self._executor.shutdown(wait=not cancel, cancel_futures=cancel)
        self._manager.shutdown()
