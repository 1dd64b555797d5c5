"""Nonzero MACs: a pruned model run by dense kernels shows the saving pruning makes available, in
``tinyeff flops`` and ``tinyeff energy estimate``, whose input shape comes from the model file."""
import json

import numpy as np

from tinyeff import models
from tinyeff.cli import main
from tinyeff.compress.prune import prune
from tinyeff.flops import count
from tinyeff.train import save_model


def pruned_seed_cnn(amount=0.8):
    model = models.create("seed-cnn", in_channels=1, input_size=28)
    prune(model, amount)
    return model


def test_nonzero_macs_scale_with_each_layers_density():
    model = pruned_seed_cnn()
    report = count(model, (1, 1, 28, 28))
    for layer in report.layers:
        if layer.macs:
            w = dict(model.named_modules())[layer.name].weight.data
            assert layer.macs_nonzero == layer.macs * np.count_nonzero(w) // w.size
            assert layer.macs_effective == layer.macs           # dense kernels ran: no saving realised
    assert 0.19 <= report.totals["macs_nonzero"] / report.totals["macs"] <= 0.21


def test_dense_model_nonzero_equals_dense():
    report = count(models.create("resnet8", width=4), (1, 3, 8, 8))
    assert report.totals["macs_nonzero"] == report.totals["macs"]


def test_flops_cli_reads_the_input_shape_of_a_one_channel_model_file(tmp_path, capsys):
    save_model(pruned_seed_cnn(), tmp_path / "p.npz")
    assert main(["flops", str(tmp_path / "p.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input_shape"] == [1, 1, 28, 28]
    assert report["totals"]["macs_nonzero"] < 0.25 * report["totals"]["macs_effective"]


def test_energy_estimate_prices_the_nonzero_macs(tmp_path, capsys):
    save_model(pruned_seed_cnn(), tmp_path / "p.npz")
    assert main(["energy", "estimate", str(tmp_path / "p.npz"), "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert sum(l["energy_nonzero_j"] for l in layers) < sum(l["energy_j"] for l in layers)
    assert all(l["energy_nonzero_j"] <= l["energy_j"] for l in layers)
