"""Thinning during training: channel pruning deletes filters mid-fit, the optimizer state is sliced."""
import numpy as np
import pytest

import tinyeff
from tinyeff import data, models, optim, train
from tinyeff.compress.prune import prune
from tinyeff.compress.thin_train import MASKED_NOTE, MaskedPruning, ThinningPruning, event_targets, thin_with_optimizer
from tinyeff.tensor import Tensor, no_grad


@pytest.fixture(scope="module")
def small_data():
    return data.load("synthetic", n_train=128, n_test=32, shape=(1, 20, 20), num_classes=4, seed=3)


def _logits(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).data


def test_event_targets_iterative_reach_the_final_sparsity_before_the_last_epoch():
    targets = event_targets(0.75, epochs=4, every=1)
    assert list(targets) == [1, 2, 3]
    assert targets[3] == pytest.approx(0.75)
    assert targets[1] == pytest.approx(1 - 0.25 ** (1 / 3))
    assert event_targets(0.5, epochs=10, every=5) == {5: pytest.approx(0.5)}
    assert event_targets(0.5, epochs=1, every=1) == {}


def test_event_targets_polynomial_prunes_fast_early():
    targets = event_targets(0.8, epochs=5, every=1, schedule="polynomial")
    steps = np.diff([0.0] + list(targets.values()))
    assert targets[4] == pytest.approx(0.8) and np.all(np.diff(steps) < 0)


@pytest.mark.parametrize("name", ["seed-cnn", "resnet8"])
def test_thinning_keeps_outputs_and_slices_adam_state(name, rng):
    tinyeff.manual_seed(0)
    kwargs = {"input_size": 20} if name == "seed-cnn" else {}
    model = models.create(name, in_channels=1, num_classes=4, **kwargs)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    for p, state in zip(opt.params, opt.state):
        # Adam's m is a copy of the weight, so a correctly sliced m equals the thinned weight
        state.update(m=p.data.copy(), v=np.abs(p.data) + 1, t=np.asarray(3))
    x = rng.standard_normal((2, 1, 20, 20)).astype(np.float32)
    prune(model, 0.5, "channel", optimizer=opt)
    masked = _logits(model, x)
    before = sum(p.size for p in model.parameters())
    thin_with_optimizer(model, opt)
    assert sum(p.size for p in model.parameters()) < before
    np.testing.assert_allclose(_logits(model, x), masked, rtol=1e-4, atol=1e-5)  # float summation order
    assert [id(p) for p in opt.params] == [id(p) for p in model.parameters()]
    for p, state in zip(opt.params, opt.state):
        np.testing.assert_array_equal(state["m"], p.data)
        assert state["v"].shape == p.data.shape and int(state["t"]) == 3


def test_sliced_state_matches_the_kept_rows():
    tinyeff.manual_seed(0)
    model = models.create("mlp", in_channels=1, input_size=4, num_classes=3, hidden=(6, 5))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    first = model.get_submodule("1")
    for i, p in enumerate(opt.params):
        opt.state[i]["momentum_buffer"] = np.arange(p.data.size, dtype=np.float32).reshape(p.data.shape)
    buf = opt.state[0]["momentum_buffer"].copy()         # layer "1" weight: (6, 16)
    prune(model, 0.5, "channel", layers=["1"], optimizer=opt)
    alive = np.flatnonzero(first.weight_mask.any(axis=1))
    thin_with_optimizer(model, opt)
    assert first.weight.data.shape == (3, 16)
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], buf[alive])


def test_fit_with_thinning_trains_a_smaller_model(small_data):
    tr, te = small_data
    tinyeff.manual_seed(0)
    model = models.create("seed-cnn", in_channels=1, input_size=20, num_classes=4)
    callback = ThinningPruning(event_targets(0.5, epochs=3, every=1))
    metrics = train.fit(model, tr, te, epochs=3, batch_size=32, progress=False, callbacks=[callback])
    sizes = [e["params_after"] for e in callback.events]
    assert len(callback.events) == 2 and sizes[0] > sizes[1]
    assert np.isfinite(metrics["history"]["train_loss"]).all()
    assert metrics["parameters"] == sizes[-1]
    if metrics["energy"]["source"] == "model":     # estimated from the work actually run: it falls too
        energy = metrics["history"]["energy_j"]
        assert energy[2] < energy[1] < energy[0]


def test_masked_pruning_keeps_the_shape_and_says_so(small_data):
    tr, te = small_data
    tinyeff.manual_seed(0)
    model = models.create("mlp", in_channels=1, input_size=20, num_classes=4)
    before = sum(p.size for p in model.parameters())
    callback = MaskedPruning(event_targets(0.5, epochs=2, every=1))
    train.fit(model, tr, te, epochs=2, batch_size=32, progress=False, callbacks=[callback])
    assert sum(p.size for p in model.parameters()) == before
    assert callback.events[0]["sparsity"] == pytest.approx(0.5, abs=0.01) and callback.note == MASKED_NOTE
