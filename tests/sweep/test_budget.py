"""Forecast from first epochs, and budgets that stop launching runs."""
import pytest

from tinyeff.sweep import grid
from tinyeff.sweep.budget import Budget, Forecast


def _msg(run_id, epoch, time_s, energy_j, images=100):
    return {"id": run_id, "epoch": epoch, "epochs": 3, "time_s": time_s, "energy_j": energy_j,
            "energy_source": "model", "train_examples": images}


def test_forecast_scales_first_epoch_cost_by_images_and_epochs():
    seen = grid.resolve({"model": "mlp", "limit": 100, "epochs": 3})
    f = Forecast()
    assert f.remaining([("a", seen)]) is None            # nothing learned yet
    f.observe(seen, _msg("a", 1, 2.0, 4.0))
    bigger = grid.resolve({"model": "mlp", "limit": 300, "epochs": 5, "lr": 0.1})
    seconds, joules = f.remaining([("a", seen), ("b", bigger)])
    assert seconds == pytest.approx(2.0 * 2 + 6.0 * 5) and joules == pytest.approx(4.0 * 2 + 12.0 * 5)


def test_time_budget_refuses_a_run_that_would_end_past_it():
    config = grid.resolve({"model": "mlp", "limit": 100, "epochs": 3})
    f = Forecast()
    f.observe(config, _msg("a", 1, 2.0, 4.0))
    clock = iter([0.0, 1.0, 1.0]).__next__
    budget = Budget(seconds=5.0, clock=clock)
    assert not budget.allows(f, "b", config)                   # 1 s spent + 6 s forecast > 5 s
    assert "time budget" in budget.reason


def test_energy_budget_counts_reported_epochs():
    config = grid.resolve({"model": "mlp", "limit": 100, "epochs": 1})
    f = Forecast()
    f.observe(config, _msg("a", 1, 1.0, 4.0))
    assert Budget(joules=10.0).allows(f, "b", config)            # 4 J spent + 4 J forecast
    assert not Budget(joules=7.0).allows(f, "b", config)


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="--budget-joules"):
        Budget(joules=0)
