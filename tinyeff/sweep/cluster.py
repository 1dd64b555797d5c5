"""Running a sweep on a Dask distributed cluster: ``tinyeff sweep ... --cluster tcp://HOST:PORT``.

The one idea: a sweep point is one Dask task, ``job.execute(run_id, config, threads)``, and the
driver (the machine that ran ``tinyeff sweep``) keeps the results store; workers only compute and
send back a plain dict. Start the cluster so that each worker runs one run at a time on one thread:

    dask scheduler --host HOST --port 8786
    dask worker tcp://HOST:8786 --nthreads 1          # on every machine, with tinyeff installed

A worker that dies mid-run loses only its task: the scheduler notices the dropped connection and
runs the task again on another worker (up to ``distributed.scheduler.allowed-failures`` deaths,
then the run is recorded as failed). The driver gets exactly one result per future and writes it
once, keyed by the config hash, so nothing is lost or stored twice. Each submission carries a
fresh key, so a stale task from an earlier, killed driver is never mistaken for this one's.

Per-epoch progress travels as Dask worker events (``log_event`` on the topic ``tinyeff-sweep``),
which the driver subscribes to for its forecast.

NOTE: security. Dask moves tasks and results with pickle, so anyone who can reach the scheduler can
run code on every worker and on the driver. Use a cluster on a trusted network only (or Dask's TLS
security options); the local pool (the default) needs none of this.
"""
import queue
import uuid

from tinyeff.sweep import job

TOPIC = "tinyeff-sweep"


class DaskProgress:
    """What a task reports progress into: a Dask worker event the driver subscribes to."""

    def put(self, message):
        from distributed import get_worker
        try:
            worker = get_worker()
        except ValueError:             # not running on a Dask worker (a direct call): nobody listens
            return
        worker.log_event(TOPIC, message)


class DaskPool:
    """Runs sweep points as tasks of the Dask scheduler at ``address``."""

    where = "cluster"

    def __init__(self, address, threads=None, root=None, timeout_s=10):
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("sweep: --cluster needs Dask distributed; pip install 'tinyeff[cluster]'") from None
        self.address, self.threads, self.root = address, threads or 1, root
        try:
            self.client = Client(address, timeout=timeout_s)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"sweep: cannot reach the Dask scheduler at {address} ({exc}); start one with "
                             f"`dask scheduler` and workers with `dask worker {address} --nthreads 1`") from None
        self._messages = queue.Queue()
        self.client.subscribe_topic(TOPIC, self._on_event)

    def _on_event(self, event):
        _, message = event                     # (timestamp, message)
        self._messages.put(message)

    def describe(self):
        workers = self.client.nthreads()
        return (f"Dask cluster {self.address} ({len(workers)} worker(s), {sum(workers.values())} thread(s)), "
                f"{self.threads} thread(s) per run")

    def capacity(self):
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, run_id, config):
        return self.client.submit(job.execute, run_id, config, self.threads, self.root, DaskProgress(),
                                  key=f"tinyeff-run-{run_id}-{uuid.uuid4().hex[:8]}", pure=False)

    def wait(self, handles, timeout):
        from distributed import wait
        try:
            wait(handles, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            pass
        return [h for h in handles if h.done()]

    def outcome(self, handle):
        """(result dict, None) or (None, error text)."""
        from distributed import KilledWorker
        try:
            return handle.result(), None
        except KilledWorker:
            return None, ("the run's worker died on every attempt (allowed-failures reached); "
                          "check the workers' memory and logs, then re-run the sweep")
        except Exception as exc:                # the run's own error, raised on the worker
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            handle.release()

    def progress(self):
        messages = []
        while True:
            try:
                messages.append(self._messages.get_nowait())
            except queue.Empty:
                return messages

    def close(self, cancel=False):
        self.client.close()
