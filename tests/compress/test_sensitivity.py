"""Sensitivity analysis: one row per layer, accuracy per sparsity, MAC-based ranking, table and PNG."""
import numpy as np

from tinyeff import data, models
from tinyeff.compress import get_mask, prunable_layers
from tinyeff.compress.sensitivity import format_table, layer_costs, plot, sensitivity


def test_layer_costs_counts_macs_from_shapes():
    model = models.create("seed-cnn", in_channels=1, input_size=20)
    costs = layer_costs(model, np.zeros((2, 1, 20, 20), np.float32))
    assert costs["0"]["macs"] == 32 * 9 * 18 * 18
    assert costs["11"]["macs"] == 64 * 10


def test_sensitivity_reports_every_layer_and_leaves_model_unpruned(tmp_path):
    _, test = data.load("synthetic", n_train=10, n_test=40, shape=(1, 20, 20))
    model = models.create("seed-cnn", in_channels=1, input_size=20, width=0.25)
    result = sensitivity(model, test, sparsities=(0.5, 0.9), max_drop_points=100.0)
    assert {r["name"] for r in result["layers"]} == set(prunable_layers(model))
    assert all(len(r["accuracy"]) == 2 for r in result["layers"])
    assert all(get_mask(m) is None for m in prunable_layers(model).values())
    saved = [r["macs_saved"] for r in result["layers"]]
    assert saved == sorted(saved, reverse=True)                 # ranked by work saved
    assert result["layers"][0]["tolerated_sparsity"] == 0.9     # budget of 100 points: all tolerated
    assert "MACs saved" in format_table(result)
    png = plot(result, tmp_path / "sens.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
