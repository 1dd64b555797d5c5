"""Schedules: the Zhu & Gupta / TF-MOT polynomial formula, windows, iterative rounds, and the
fit callback (sparsity reached, exact zeros, rewinding)."""
import numpy as np
import pytest

from tinyeff import data, models
from tinyeff.compress import get_mask, prunable_layers, sparsity_report
from tinyeff.compress.schedule import (ConstantSparsity, Iterative, OneShot, PolynomialDecay,
                                       PruningCallback)
from tinyeff.train import fit


def test_polynomial_decay_matches_zhu_gupta_formula():
    s = PolynomialDecay(0.1, 0.9, begin_step=100, end_step=1100, power=3, frequency=100)
    for t in (100, 300, 700, 1100):
        expected = 0.9 + (0.1 - 0.9) * (1 - (t - 100) / 1000) ** 3
        assert s.sparsity(t) == pytest.approx(expected, abs=1e-12)
    assert s.sparsity(50) == 0.0 and s.sparsity(5000) == pytest.approx(0.9)


def test_polynomial_decay_prunes_every_frequency_steps_in_window():
    s = PolynomialDecay(0.0, 0.8, begin_step=10, end_step=55, frequency=10)
    assert [t for t in range(80) if s.should_prune(t)] == [10, 20, 30, 40, 50, 55]


def test_constant_and_oneshot_windows():
    c = ConstantSparsity(0.5, begin_step=5, end_step=25, frequency=10)
    assert [t for t in range(40) if c.should_prune(t)] == [5, 15, 25]
    o = OneShot(0.7)
    assert o.should_prune(0) and not o.should_prune(1) and o.sparsity(3) == 0.7


def test_iterative_rounds_reach_final_sparsity_geometrically():
    it = Iterative(0.875, every_epochs=2, rounds=3)
    assert [it.round_at_epoch(e) for e in range(8)] == [1, 0, 2, 0, 3, 0, 0, 0]
    assert [round(it.sparsity_after_round(k), 6) for k in (1, 2, 3)] == [0.5, 0.75, 0.875]


@pytest.mark.parametrize("bad", [dict(initial_sparsity=-0.1, final_sparsity=0.5, begin_step=0, end_step=9),
                                 dict(initial_sparsity=0.0, final_sparsity=0.5, begin_step=9, end_step=9)])
def test_polynomial_decay_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        PolynomialDecay(**bad)


def _fit(model, train, cb, epochs=2, optimizer="sgd"):
    return fit(model, train, None, epochs=epochs, batch_size=32, optimizer=optimizer, lr=0.05,
               weight_decay=1e-3, callbacks=[cb], progress=False)


@pytest.fixture(scope="module")
def tiny_data():
    return data.load("synthetic", n_train=96, n_test=32, shape=(1, 20, 20))


def _model():
    return models.create("seed-cnn", in_channels=1, input_size=20, width=0.25)


def test_polynomial_callback_reaches_target_and_keeps_zeros(tiny_data):
    model = _model()
    cb = PruningCallback(PolynomialDecay(0.0, 0.8, begin_step=0, end_step=4, frequency=1))
    _fit(model, tiny_data[0], cb, epochs=2)          # 6 steps: prune at 0..4, then 2 fine-tune steps
    assert sparsity_report(model)["total"]["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert [round(s, 6) for _, s in cb.events][-1] == 0.8
    for layer in prunable_layers(model).values():
        assert (layer.weight.data[~get_mask(layer)] == 0).all()


def test_iterative_callback_prunes_at_epoch_starts(tiny_data):
    model = _model()
    cb = PruningCallback(Iterative(0.75, every_epochs=1, rounds=2), method="magnitude")
    _fit(model, tiny_data[0], cb, epochs=2, optimizer="adam")
    assert [round(s, 6) for _, s in cb.events] == [0.5, 0.75]
    assert sparsity_report(model)["total"]["sparsity"] == pytest.approx(0.75, abs=2e-3)


def test_rewind_resets_surviving_weights_to_start(tiny_data):
    model = _model()
    start = {n: p.data.copy() for n, p in model.named_parameters()}
    # 96 examples / batch 32 = 3 steps; prune (and rewind) after the last one.
    cb = PruningCallback(ConstantSparsity(0.5, begin_step=3, end_step=3, frequency=1), rewind_step=0)
    _fit(model, tiny_data[0], cb, epochs=1)
    assert cb.events == [(3, 0.5)]
    for name, p in model.named_parameters():
        module = model.get_submodule(name.rpartition(".")[0])
        mask = get_mask(module, name.rpartition(".")[2])
        np.testing.assert_array_equal(p.data, start[name] if mask is None else start[name] * mask)
