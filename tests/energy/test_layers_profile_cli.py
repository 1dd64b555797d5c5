"""Per-layer estimate, training-energy log, efficiency score, layer profiler and the CLI."""
import json

import numpy as np
import pytest

from energy_fakes import FakeBackend, FakeClock, no_busy
from tinyeff import Tensor, models
from tinyeff.cli import main
from tinyeff.energy import EnergyMeter, Measurement
from tinyeff.energy.base import Domain
from tinyeff.energy.layers import TrainingEnergy, efficiency_score, estimate_model
from tinyeff.energy.profile import LayerProfiler, peak_rss_bytes


def test_estimate_model_compute_is_macs_and_adds_times_fp32_costs():
    rows, total = estimate_model(models.create("seed-cnn"), (1, 3, 32, 32))
    conv1 = rows[0]
    assert conv1.macs_effective == 777_600
    # 777 600 MACs at 4.6 pJ + 32*30*30 = 28 800 bias adds at 0.9 pJ
    assert conv1.compute_j == pytest.approx(777_600 * 4.6e-12 + 28_800 * 0.9e-12)
    assert total.source == "model" and str(total).startswith("ESTIMATED")
    assert total.energy_j == pytest.approx(sum(r.energy_j for r in rows))


def test_training_step_costs_three_forward_passes():
    model = models.create("seed-cnn")
    fwd, _ = estimate_model(model, (1, 3, 32, 32))
    train, _ = estimate_model(model, (1, 3, 32, 32), train=True)
    assert train[0].compute_j == pytest.approx(3 * fwd[0].compute_j)


def test_efficiency_score_is_accuracy_per_joule():
    assert efficiency_score(0.9, Measurement(3.0, 1.0, "model")) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="positive"):
        efficiency_score(0.9, 0.0)


def test_training_energy_per_epoch_and_cumulative():
    clock = FakeClock()
    backend = FakeBackend([Domain("package-0", 1e-6, 2**32, "fake")], {"package-0": 0}, tick=1)
    with EnergyMeter(backends=[backend], clock=clock, poll_s=0, busy=no_busy) as meter:
        log = TrainingEnergy(meter)
        for joules, acc in ((10, 0.5), (20, 0.8)):
            backend.values["package-0"] += joules * 1_000_000
            clock.advance(1.0)
            log.end_epoch(acc)
    rows = log.rows()
    assert [round(r["energy_j"]) for r in rows] == [10, 20]
    assert rows[1]["cumulative_j"] == pytest.approx(30, abs=1e-4)
    assert rows[1]["accuracy_per_j"] == pytest.approx(0.8 / 30, rel=1e-5)
    assert rows[0]["source"] == "rapl"


def test_layer_profiler_times_every_leaf_and_reads_peak_rss(tmp_path):
    model = models.create("seed-cnn")
    with LayerProfiler(model) as prof:
        model(Tensor(np.zeros((1, 3, 32, 32), np.float32)))
    r = prof.result
    assert set(r.layer_forward_s) == {str(i) for i in range(12)}
    assert all(t >= 0 for t in r.layer_forward_s.values()) and r.cpu_s >= 0
    assert r.peak_rss_bytes > 0
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/status").write_text("Name:\tpython\nVmHWM:\t  2048 kB\n")
    assert peak_rss_bytes(str(tmp_path)) == 2048 * 1024


def test_cli_energy_probe_explains_and_says_estimates(capsys):
    assert main(["energy", "probe", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["lines"]) >= 5 and report["active"] in ("rapl", "perf", "msr", "model")
    if report["active"] == "model":
        assert "ESTIMATED" in report["lines"][-1]


def test_cli_flops_json(capsys):
    assert main(["flops", "seed-cnn", "--input", "3x32x32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["macs"] == 4_548_608


def test_cli_energy_estimate_labels_estimate(capsys):
    assert main(["energy", "estimate", "seed-cnn", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ESTIMATED") and "source=model" in out
