"""End to end: the 4-run grid locally, re-run (nothing new), on a real Dask cluster, and with a worker killed."""
import os
import threading
import time

import pytest

from tinyeff.cli import main
from tinyeff.sweep import grid
from tinyeff.sweep.store import Store

GRID = ["--model", "mlp,seed-cnn", "--lr", "0.001,0.01", "--epochs", "1", "--data", "fashion-mnist-sample",
        "--limit", "300", "--threads", "1"]


def _accuracies(out):
    with Store(out) as store:
        return {r["id"]: r["final_accuracy"] for r in store.runs()}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sweep") / "local")
    assert main(["sweep", *GRID, "--workers", "2", "--out", out]) == 0
    return out


def test_local_grid_runs_every_point_once(local_sweep):
    with Store(local_sweep) as store:
        runs = store.runs(status=None)
    assert len(runs) == 4 and {r["status"] for r in runs} == {"done"}
    assert {(r["config"]["model"], r["config"]["lr"]) for r in runs} == {
        ("mlp", 0.001), ("mlp", 0.01), ("seed-cnn", 0.001), ("seed-cnn", 0.01)}
    assert all(len(r["epochs"]) == 1 and r["attempts"] == 1 and r["threads"] == 1 for r in runs)
    assert all(0.1 < r["final_accuracy"] <= 1 and r["energy_j"] > 0 for r in runs)
    with open(os.path.join(local_sweep, "results.csv")) as f:
        assert len(f.read().strip().splitlines()) == 1 + 4


def test_report_embeds_every_plot(local_sweep):
    with open(os.path.join(local_sweep, "report.html")) as f:
        page = f.read()
    assert page.count("data:image/png;base64,") == 4          # no depth axis and no pruning: 4 plots
    assert "Efficiency ranking" in page and "ESTIMATED" in page


def test_rerun_executes_nothing_new(local_sweep, capsys):
    before = _accuracies(local_sweep)
    assert main(["sweep", *GRID, "--workers", "2", "--out", local_sweep, "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "4 already done, 0 to run" in out and "0 run(s) finished in this sweep" in out
    with Store(local_sweep) as store:
        assert all(r["attempts"] == 1 for r in store.runs())
    assert _accuracies(local_sweep) == before


def test_interrupted_run_is_retried(local_sweep, tmp_path):
    out = str(tmp_path / "retry")
    config = grid.resolve({"model": "mlp", "lr": 0.01, "epochs": 1, "limit": 300})
    with Store(out) as store:                 # as a killed sweep leaves it: launched, never finished
        store.add(grid.config_id(config), config)
        store.mark_running(grid.config_id(config))
    assert main(["sweep", "--model", "mlp", "--lr", "0.01", "--epochs", "1", "--limit", "300", "--threads", "1",
                 "--workers", "1", "--out", out, "--no-report"]) == 0
    with Store(out) as store:
        [run] = store.runs(status=None)
    assert run["status"] == "done" and run["attempts"] == 2
    assert run["final_accuracy"] == _accuracies(local_sweep)[grid.config_id(config)]


def test_dask_cluster_gives_the_same_accuracies(local_sweep, loopback_cluster, tmp_path):
    from distributed import Client
    with Client(loopback_cluster.address) as client:
        loopback_cluster.wait_for_workers(client, 2)
    out = str(tmp_path / "cluster")
    assert main(["sweep", *GRID, "--cluster", loopback_cluster.address, "--out", out, "--no-report"]) == 0
    assert _accuracies(out) == _accuracies(local_sweep)


def test_killed_worker_still_completes_every_run_exactly_once(local_sweep, loopback_cluster, tmp_path):
    from distributed import Client
    watcher = Client(loopback_cluster.address)
    loopback_cluster.wait_for_workers(watcher, 2)
    killed = threading.Event()

    def kill_w0_mid_run():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed.is_set():
            names = {addr: w["name"] for addr, w in watcher.scheduler_info()["workers"].items()}
            busy = [names.get(addr) for addr, keys in watcher.processing().items() if keys]
            if "w0" in busy:
                time.sleep(0.3)                # well inside a run (data loading, first batches)
                loopback_cluster.kill_worker(0)
                killed.set()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=kill_w0_mid_run)
    thread.start()
    out = str(tmp_path / "killed")
    try:
        assert main(["sweep", *GRID, "--cluster", loopback_cluster.address, "--out", out, "--no-report"]) == 0
    finally:
        thread.join()
        watcher.close()
    assert killed.is_set()
    with Store(out) as store:
        runs = store.runs(status=None)
        epoch_rows = store.db.execute("SELECT run_id, COUNT(*) FROM epochs GROUP BY run_id").fetchall()
    assert len(runs) == 4 and all(r["status"] == "done" and r["attempts"] == 1 for r in runs)
    assert sorted(n for _, n in epoch_rows) == [1, 1, 1, 1]
    assert {r["host"] for r in runs} and _accuracies(out) == _accuracies(local_sweep)
