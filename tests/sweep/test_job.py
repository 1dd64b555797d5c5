"""One sweep point in-process: the knobs reach the model, a divergence is a result, not a retry."""
from tinyeff.sweep import grid, job
from tinyeff.sweep.store import Store


def test_run_records_every_epoch_and_the_knobs():
    config = grid.resolve({"model": "mlp", "width": 0.5, "init": "xavier", "preprocess": "scale_pm1",
                           "epochs": 2, "limit": 128, "data": "fashion-mnist-sample"})
    result = job.execute(grid.config_id(config), config, threads=1)
    assert [e["epoch"] for e in result["epochs"]] == [1, 2] and result["train_examples"] == 128
    assert result["params"] == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10     # hidden sizes halved
    assert result["energy_source"] and result["peak_memory_bytes"] > 0 and result["threads"] == 1


def test_divergence_is_stored_as_diverged(tmp_path):
    config = grid.resolve({"model": "mlp", "optimizer": "sgd", "lr": 1e6, "epochs": 2, "limit": 128,
                           "data": "fashion-mnist-sample"})
    result = job.execute(grid.config_id(config), config, threads=1)
    assert "diverged" in result["diverged"]
    with Store(tmp_path) as store:
        store.add("r", config)
        assert store.finish("r", result) == "diverged"
        assert "diverged" in store.error("r")
