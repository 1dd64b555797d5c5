"""Training that goes wrong: divergence stops the run at the first non-finite loss or parameter and
keeps the last good checkpoint; loss-scaling skips are not divergence; an energy counter that fails
mid-run does not stop training; a resume from a damaged or foreign run directory is one clear error."""
import functools
import json
import os
import shutil
import warnings

import numpy as np
import pytest

from conftest import error_line
from tinyeff import data, models, train
from tinyeff.cli import main
from tinyeff.data import synthetic
from tinyeff.energy.meter import EnergyMeter
from tinyeff.errors import ModelFileError, TrainingDiverged
from tinyeff.loss_scale import DynamicLossScaler
from tinyeff.precision import MixedFloat16Policy
from test_energy_fault import FlakyBackend


@pytest.fixture
def splits():
    return data.load("synthetic", n_train=64, n_test=16)


def small_cnn():
    return models.create("seed-cnn", **models.input_kwargs("seed-cnn", 1, 28, 10), width=0.25)


def poison_from_epoch(epoch, where=None):
    """A loss function that feeds NaN (everywhere, or at one pixel) from ``epoch`` (0-based) on."""
    def loss_fn(model, x, y, state):
        if state.epoch >= epoch:
            x.data = x.data.copy()
            if where is None:
                x.data[:] = np.nan
            else:
                x.data[where] = np.nan
        return train.default_loss(model, x, y, state)
    return loss_fn


def test_learning_rate_1e5_exits_1_and_writes_no_model(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("train", "--data", "synthetic", "--epochs", "2", "--lr", "1e5", "--optimizer", "sgd",
                       "--out", out, "--no-progress")
    assert code == 1
    line = error_line(err)
    assert "training diverged at epoch 1" in line and "lower the learning rate (it is 100000)" in line
    assert not (out / "model.npz").exists() and not (out / "metrics.json").exists()


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the NaN we inject
def test_divergence_keeps_the_last_good_checkpoint(tmp_path, splits):
    train_split, test_split = splits
    model = small_cnn()
    with pytest.raises(TrainingDiverged) as info:
        train.fit(model, train_split, test_split, epochs=3, batch_size=32, out_dir=str(tmp_path),
                  loss_fn=poison_from_epoch(1), progress=False)
    message = str(info.value)
    assert "training diverged at epoch 2, step 3" in message and "checkpoint.npz (after epoch 1) was kept" in message
    kept = np.load(tmp_path / "checkpoint.npz")
    assert json.loads(kept["__checkpoint__"].tobytes())["epoch"] == 1
    assert all(np.isfinite(kept[k]).all() for k in kept.files if k.startswith("model/"))
    assert not (tmp_path / "model.npz").exists()


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the NaN we inject
def test_one_nan_pixel_is_caught(splits):
    train_split, _ = splits
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1: "):
        train.fit(small_cnn(), train_split, epochs=1, batch_size=32, loss_fn=poison_from_epoch(0, (0, 0, 13, 13)),
                  progress=False)


def test_loss_scaling_skips_are_not_divergence(splits):
    train_split, _ = splits
    policy = MixedFloat16Policy(DynamicLossScaler(init_scale=2.0 ** 60))     # the first steps overflow
    metrics = train.fit(small_cnn(), train_split, epochs=1, batch_size=16, precision=policy, progress=False)
    assert metrics["precision"]["skipped_steps"] >= 1
    assert np.isfinite(metrics["history"]["train_loss"]).all()


def test_energy_counter_failing_mid_run_does_not_stop_training(splits):
    train_split, test_split = splits
    backend = FlakyBackend()
    meter = EnergyMeter(backends=[backend], poll_s=0, liveness_s=0, busy=lambda s: None)
    meter.select()

    class BreakAtEpoch2(train.Callback):
        def on_epoch_begin(self, state):
            backend.broken = state.epoch >= 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = train.fit(small_cnn(), train_split, test_split, epochs=3, batch_size=32, energy_meter=meter,
                            callbacks=[BreakAtEpoch2()], progress=False)
    assert metrics["history"]["epoch"] == [1, 2, 3]
    assert metrics["energy"]["source"] == "model" and metrics["energy"]["estimated"]
    assert "failed during the run" in metrics["energy"]["label"]
    assert all(e > 0 for e in metrics["energy"]["per_epoch_j"])
    assert len([w for w in caught if "counter failed during the run" in str(w.message)]) == 1


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    load = synthetic.load
    synthetic.load = functools.partial(load, n_train=96, n_test=48)      # as the autouse fixture does
    try:
        assert main(["train", "--data", "synthetic", "--epochs", "1", "--batch-size", "48", "--out", str(out),
                     "--no-progress"]) == 0
    finally:
        synthetic.load = load
    return out


@pytest.fixture
def finished_run(trained_once, tmp_path, capsys):
    """A copy of a finished one-epoch run directory, for a test to damage."""
    capsys.readouterr()
    return shutil.copytree(trained_once, tmp_path / "run")


def test_resume_from_a_corrupt_checkpoint(cli, finished_run):
    ckpt = finished_run / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:300])
    code, _, err = cli("train", "--resume", finished_run, "--no-progress")
    assert code == 1
    line = error_line(err)
    assert "checkpoint.npz: not a readable tinyeff checkpoint" in line and f"delete {ckpt}" in line


def test_resume_without_train_args(cli, finished_run):
    os.unlink(finished_run / "train_args.json")
    code, _, err = cli("train", "--resume", finished_run, "--no-progress")
    assert code == 2 and "no train_args.json there" in error_line(err)


def test_resume_with_a_different_model(cli, finished_run):
    args = json.loads((finished_run / "train_args.json").read_text())
    args.update(model="mlp", epochs=2)
    (finished_run / "train_args.json").write_text(json.dumps(args))
    code, _, err = cli("train", "--resume", finished_run, "--no-progress")
    assert code == 1 and "was written for a different model or optimizer" in error_line(err)


def test_restore_refuses_a_checkpoint_of_another_model(tmp_path, splits):
    train_split, _ = splits
    train.fit(small_cnn(), train_split, epochs=1, batch_size=32, out_dir=str(tmp_path), progress=False)
    other = models.create("mlp", **models.input_kwargs("mlp", 1, 28, 10))
    with pytest.raises(ModelFileError, match="different model or optimizer"):
        train.fit(other, train_split, epochs=2, batch_size=32, out_dir=str(tmp_path), resume=True, progress=False)


@pytest.mark.parametrize("key,value", [("epochs", 0), ("lr", "nan"), ("batch_size", -3)])
def test_resume_with_hand_edited_bad_settings(cli, finished_run, key, value):
    args = json.loads((finished_run / "train_args.json").read_text())
    args[key] = value
    (finished_run / "train_args.json").write_text(json.dumps(args))
    code, _, err = cli("train", "--resume", finished_run, "--no-progress")
    assert code == 1 and f"train_args.json: {key} must be" in error_line(err)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")          # the overflow that makes it diverge
def test_a_sweep_run_that_diverges_is_stored_as_diverged_not_failed(tmp_path):
    from tinyeff.sweep import grid, job
    from tinyeff.sweep.store import Store
    config = grid.resolve({"model": "mlp", "data": "synthetic", "lr": 1e5, "optimizer": "sgd", "epochs": 2,
                           "limit": 64})
    result = job.execute("r", config)
    assert "training diverged" in result["diverged"]
    with Store(str(tmp_path)) as store:
        store.add("r", config)
        assert store.finish("r", result) == "diverged"
        assert store.status("r") == "diverged"
