"""The SQLite results store: statuses, one transaction per finished run, NaN refused, CSV export."""
import csv
import sqlite3

from tinyeff.sweep import grid
from tinyeff.sweep.store import Store


def _result(accuracy=0.8, epochs=2):
    return {"final_accuracy": accuracy, "train_time_s": 1.5, "energy_j": 2.0, "energy_source": "model",
            "macs_dense": 100, "macs_effective": 60, "params": 10, "params_final": 6, "host": "h", "threads": 1,
            "epochs": [{"epoch": e + 1, "test_accuracy": accuracy, "time_s": 0.7, "energy_j": 1.0}
                       for e in range(epochs)]}


def test_new_run_is_pending_then_running_then_done(tmp_path):
    config = grid.resolve({"model": "mlp"})
    run_id = grid.config_id(config)
    with Store(tmp_path) as store:
        store.add(run_id, config)
        assert store.status(run_id) == "pending"
        store.mark_running(run_id)
        assert store.status(run_id) == "running"
        assert store.finish(run_id, _result()) == "done"
        [run] = store.runs()
    assert run["status"] == "done" and run["attempts"] == 1 and run["config"] == config
    assert [e["epoch"] for e in run["epochs"]] == [1, 2] and run["macs_effective"] == 60


def test_adding_a_known_run_keeps_its_result(tmp_path):
    config = grid.resolve({"model": "mlp"})
    run_id = grid.config_id(config)
    with Store(tmp_path) as store:
        store.add(run_id, config)
        store.mark_running(run_id)
        store.finish(run_id, _result())
        store.add(run_id, config)
        assert store.status(run_id) == "done" and store.counts() == {"done": 1}


def test_nan_loss_is_stored_as_diverged_never_as_a_number(tmp_path):
    result = _result(accuracy=0.1)
    result["epochs"][1]["train_loss"] = float("nan")
    with Store(tmp_path) as store:
        store.add("r", grid.resolve({"model": "mlp"}))
        assert store.finish("r", result) == "diverged"
        [run] = store.runs(status="diverged")
        assert run["final_accuracy"] is None and "epoch 2" in run["error"]
        assert [e["train_loss"] for e in run["epochs"]] == [None, None]


def test_missing_accuracy_is_not_a_result(tmp_path):
    with Store(tmp_path) as store:
        store.add("r", grid.resolve({"model": "mlp"}))
        assert store.finish("r", _result(accuracy=float("nan"))) == "diverged"
        assert store.runs() == []


def test_finishing_twice_keeps_one_set_of_epochs(tmp_path):
    with Store(tmp_path) as store:
        store.add("r", grid.resolve({"model": "mlp"}))
        store.finish("r", _result(epochs=3))
        store.finish("r", _result(epochs=3))
        assert store.db.execute("SELECT COUNT(*) FROM epochs WHERE run_id='r'").fetchone()[0] == 3


def test_csv_has_one_row_per_run_with_its_status(tmp_path):
    with Store(tmp_path) as store:
        for lr in (0.1, 0.01):
            config = grid.resolve({"model": "mlp", "lr": lr, "augment": ["crop", "flip"]})
            store.add(grid.config_id(config), config)
            store.finish(grid.config_id(config), _result())
        store.add("pending-one", grid.resolve({"model": "seed-cnn"}))
        path = store.export_csv()
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["done", "done", "pending"]
    assert [float(r["lr"]) for r in rows[:2]] == [0.1, 0.01] and rows[0]["augment"] == "crop+flip"


def test_a_database_other_programs_can_read(tmp_path):
    with Store(tmp_path) as store:
        store.add("r", grid.resolve({"model": "mlp"}))
        store.finish("r", _result())
    db = sqlite3.connect(tmp_path / "sweep.db")
    assert db.execute("SELECT final_accuracy, energy_source FROM runs").fetchall() == [(0.8, "model")]
