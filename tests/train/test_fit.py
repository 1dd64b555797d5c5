"""fit/evaluate: learning happens, metrics files are complete, energy is labelled, resume is exact."""
import json
import os

import numpy as np
import pytest

import tinyeff
from tinyeff import data, io, models, train


@pytest.fixture(scope="module")
def small_data():
    return data.load("synthetic", n_train=256, n_test=64, shape=(1, 20, 20), num_classes=4, seed=3)


def _model():
    tinyeff.manual_seed(0)
    return models.create("seed-cnn", in_channels=1, input_size=20, num_classes=4)


def test_fit_learns_synthetic_data(small_data):
    tr, te = small_data
    model = _model()
    before = train.evaluate(model, te)["accuracy"]
    metrics = train.fit(model, tr, te, epochs=3, batch_size=32, progress=False)
    assert metrics["final_test_accuracy"] > max(0.6, before + 0.2)
    assert metrics["history"]["train_loss"][-1] < metrics["history"]["train_loss"][0]


def test_fit_writes_model_metrics_and_labels_estimated_energy(small_data, tmp_path):
    tr, te = small_data
    metrics = train.fit(_model(), tr, te, epochs=1, batch_size=64, progress=False, out_dir=str(tmp_path))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["config"]["epochs"] == 1 and saved["versions"]["numpy"] == np.__version__
    assert len(saved["history"]["test_accuracy"]) == 1
    assert saved["energy"]["total_j"] > 0
    if not os.path.exists("/sys/class/powercap"):
        assert saved["energy"]["estimated"] and saved["energy"]["source"] == "model"
    reloaded = io.load(tmp_path / "model.npz")
    assert reloaded.preprocess["kind"] == "standardize"
    assert train.evaluate(reloaded, te)["accuracy"] == pytest.approx(metrics["final_test_accuracy"])


class _Interrupt(train.Callback):
    """Raise KeyboardInterrupt in the middle of epoch ``at_epoch`` (0-based), as Ctrl-C would."""

    def __init__(self, at_epoch):
        self.at_epoch = at_epoch

    def on_batch_end(self, state):
        if state.epoch == self.at_epoch and state.step % state.steps_per_epoch == state.steps_per_epoch // 2:
            raise KeyboardInterrupt


def test_resume_after_interrupt_matches_uninterrupted_run(small_data, tmp_path):
    tr, te = small_data
    straight = _model()
    expected = train.fit(straight, tr, te, epochs=3, batch_size=32, progress=False, out_dir=str(tmp_path / "a"))
    interrupted = _model()
    with pytest.raises(KeyboardInterrupt):
        train.fit(interrupted, tr, te, epochs=3, batch_size=32, progress=False, out_dir=str(tmp_path / "b"),
                  callbacks=[_Interrupt(at_epoch=1)])
    assert not (tmp_path / "b" / "metrics.json").exists()          # the run did not finish
    resumed = _model()
    got = train.fit(resumed, tr, te, epochs=3, batch_size=32, progress=False, out_dir=str(tmp_path / "b"), resume=True)
    assert got["history"]["epoch"] == [1, 2, 3]
    assert set(got) == set(expected)
    np.testing.assert_allclose(got["history"]["test_accuracy"], expected["history"]["test_accuracy"])
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-6, err_msg=name)


def test_evaluate_confusion_rows_sum_to_class_counts(small_data):
    _, te = small_data
    result = train.evaluate(_model(), te)
    confusion = np.asarray(result["confusion"])
    np.testing.assert_array_equal(confusion.sum(axis=1), np.bincount(te.labels, minlength=4))
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / len(te.labels))


def test_unknown_optimizer_and_schedule_are_named(small_data):
    tr, _ = small_data
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train.fit(_model(), tr, epochs=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        train.fit(_model(), tr, epochs=1, schedule="linear", progress=False)


def test_pruned_training_saves_masks_and_resumes(small_data, tmp_path):
    from tinyeff.compress import sparsity_report
    from tinyeff.compress.schedule import OneShot, PruningCallback
    tr, te = small_data
    callbacks = [PruningCallback(OneShot(0.8))]
    with pytest.raises(KeyboardInterrupt):
        train.fit(_model(), tr, te, epochs=2, batch_size=32, progress=False, out_dir=str(tmp_path),
                  callbacks=callbacks + [_Interrupt(at_epoch=1)])
    resumed = _model()
    train.fit(resumed, tr, te, epochs=2, batch_size=32, progress=False, out_dir=str(tmp_path), resume=True)
    assert sparsity_report(resumed)["total"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    reloaded = io.load(tmp_path / "model.npz")
    assert sparsity_report(reloaded)["total"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    np.testing.assert_allclose(train.predict(reloaded, te.images), train.predict(resumed, te.images), rtol=1e-5)
