"""``tinyeff prune`` and ``tinyeff sensitivity`` end to end on a tiny synthetic model (no fine-tuning)."""
import json

import numpy as np
import pytest

from tinyeff import data, io, models
from tinyeff.cli import main
from tinyeff.compress import get_mask


def _dense_file(tmp_path):
    train, _ = data.load("synthetic", n_train=64, n_test=32)
    model = models.create("seed-cnn", in_channels=1, input_size=28, width=0.25)
    from tinyeff.train import preprocess_config
    model.preprocess = preprocess_config(train)
    path = tmp_path / "dense.npz"
    io.save(model, path)
    return path


def test_prune_cli_writes_pruned_model_and_metrics(tmp_path, capsys):
    src = _dense_file(tmp_path)
    out = tmp_path / "pruned"
    code = main(["prune", str(src), "--data", "synthetic", "--method", "global", "--sparsity", "0.7",
                 "--schedule", "oneshot", "--finetune-epochs", "0", "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert abs(metrics["sparsity"] - 0.7) < 1e-3 and "dense_accuracy" in metrics
    model = io.load(out / "model.npz")
    assert get_mask(model[3]) is not None
    assert "sparsity" in capsys.readouterr().out


def test_prune_cli_channel_thin(tmp_path):
    src = _dense_file(tmp_path)
    out = tmp_path / "ch"
    assert main(["prune", str(src), "--data", "synthetic", "--method", "channel", "--sparsity", "0.5",
                 "--schedule", "oneshot", "--finetune-epochs", "0", "--thin", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["thinned_accuracy"] == metrics["accuracy"]
    assert io.load(out / "thinned.npz")[3].weight.shape == (8, 4, 3, 3)


def test_sensitivity_cli_writes_table_json_png(tmp_path):
    src = _dense_file(tmp_path)
    out = tmp_path / "sens"
    assert main(["sensitivity", str(src), "--data", "synthetic", "--sparsities", "0.5", "0.9",
                 "--out", str(out)]) == 0
    result = json.loads((out / "sensitivity.json").read_text())
    assert len(result["layers"]) == 5 and np.isfinite(result["baseline_accuracy"])
    assert (out / "sensitivity.png").stat().st_size > 0 and (out / "sensitivity.txt").exists()


def test_prune_cli_bad_sparsity_is_a_clean_error(tmp_path, capsys):
    src = _dense_file(tmp_path)
    with pytest.raises(SystemExit) as info:                 # argparse's usage error
        main(["prune", str(src), "--data", "synthetic", "--sparsity", "1.5", "--out", str(tmp_path / "x")])
    assert info.value.code == 2
    assert "must be a fraction in [0, 1]" in capsys.readouterr().err
