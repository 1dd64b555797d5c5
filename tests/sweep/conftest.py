"""A real Dask scheduler and workers on 127.0.0.1, started as processes for the cluster tests."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


class LoopbackCluster:
    """``dask scheduler`` + N ``dask worker --nthreads 1 --no-nanny`` processes on 127.0.0.1."""

    def __init__(self, tmp_path, workers=2):
        self.env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                        OMP_NUM_THREADS="1")
        self.file = str(tmp_path / "scheduler.json")
        self.scheduler = self._start("dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                     "--no-dashboard", "--scheduler-file", self.file)
        _wait_for(lambda: os.path.exists(self.file), 30, "the Dask scheduler")
        with open(self.file) as f:
            self.address = json.load(f)["address"]
        self.workers = [self._start("dask_worker", self.address, "--nthreads", "1", "--no-nanny",
                                    "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}")
                        for i in range(workers)]

    def _start(self, module, *args):
        return subprocess.Popen([sys.executable, "-m", f"distributed.cli.{module}", *args], cwd=ROOT, env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for_workers(self, client, n):
        _wait_for(lambda: len(client.nthreads()) >= n, 60, f"{n} Dask workers")

    def kill_worker(self, index):
        self.workers[index].send_signal(signal.SIGKILL)
        self.workers[index].wait()

    def close(self):
        for p in self.workers + [self.scheduler]:    # test processes: no graceful shutdown to wait for
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture(scope="module")
def loopback_cluster(tmp_path_factory):
    """One scheduler + 2 workers for a test module; a test may kill worker 0 (run it last)."""
    pytest.importorskip("distributed", reason="the cluster tests need Dask: pip install 'tinyeff[cluster]'")
    cluster = LoopbackCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster
    finally:
        cluster.close()
