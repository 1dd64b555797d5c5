"""train/compare knobs from the command line: --init, --no-shortcut, --preprocess, --width, --limit, --threads."""
import json
import os

import numpy as np
import pytest

from tinyeff import data, io, train
from tinyeff.cli import main
from tinyeff.data import transforms


@pytest.fixture(scope="module")
def split():
    return data.load("synthetic", n_train=8, n_test=4, shape=(1, 6, 6), num_classes=3, seed=0)[0]


@pytest.mark.parametrize("kind,low,high", [("scale01", 0.0, 1.0), ("scale_pm1", -1.0, 1.0)])
def test_preprocess_kinds_scale_to_their_range(split, kind, low, high):
    config = transforms.preprocess_config(split, kind)
    assert config["kind"] == kind and config["image_size"] == [6, 6] and "mean" not in config
    x = transforms.make_preprocess(config)(np.array([0, 255], np.uint8).reshape(1, 1, 1, 2))
    np.testing.assert_allclose(x.ravel(), [low, high])


def test_unknown_preprocess_is_refused(split):
    with pytest.raises(ValueError, match="scale_pm1"):
        transforms.preprocess_config(split, "minmax")


def test_train_knobs_are_used_saved_and_applied_by_eval(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--model", "resnet8", "--data", "synthetic", "--epochs", "1", "--batch-size", "64",
                 "--width", "0.5", "--init", "xavier", "--no-shortcut", "--preprocess", "scale_pm1",
                 "--limit", "100", "--threads", "1", "--out", out, "--no-progress"]) == 0
    settings = json.load(open(os.path.join(out, "train_args.json")))
    assert (settings["init"], settings["shortcut"], settings["preprocess"], settings["limit"]) == \
        ("xavier", False, "scale_pm1", 100)
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["config"]["train_examples"] == 100
    model = io.load(os.path.join(out, "model.npz"))
    assert model.preprocess["kind"] == "scale_pm1"
    assert model.arch["kwargs"]["width"] == 8 and model.arch["kwargs"]["shortcut"] is False
    capsys.readouterr()
    assert main(["eval", out, "--data", "synthetic"]) == 0      # eval scales to [-1, 1] as training did
    assert f"{100 * metrics['final_test_accuracy']:.2f}%" in capsys.readouterr().out


def test_resume_of_a_run_written_before_the_knobs(tmp_path):
    out = str(tmp_path / "old")
    assert main(["train", "--model", "resnet8", "--data", "synthetic", "--epochs", "1", "--batch-size", "128",
                 "--width", "0.5", "--out", out, "--no-progress"]) == 0
    path = os.path.join(out, "train_args.json")
    old = json.load(open(path))
    for key in ("init", "shortcut", "preprocess", "limit"):
        del old[key]
    old["width"] = 8                              # then a ResNet's --width was its channel count
    train.write_json(path, old)
    assert main(["train", "--resume", out, "--no-progress"]) == 0
    assert json.load(open(path))["width"] == 0.5


def test_compare_passes_the_knobs_to_every_trained_model(tmp_path):
    from tinyeff.compare import run_compare
    results = run_compare("seed-cnn", "synthetic", ("baseline",), str(tmp_path), epochs=1, progress=False,
                          log=lambda msg: None, min_time_s=0.02, model_options={"width": 0.5, "init": "xavier"},
                          preprocess="scale01", limit=96,
                          data_options={"n_train": 192, "n_test": 32, "shape": (1, 20, 20), "num_classes": 4})
    assert results["config"]["train_images"] == 96 and results["config"]["preprocess"] == "scale01"
    baseline = io.load(os.path.join(tmp_path, "runs", "baseline", "model.npz"))
    assert baseline.preprocess["kind"] == "scale01" and baseline.arch["kwargs"]["width"] == 0.5
