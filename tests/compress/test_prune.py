"""Attaching masks: forward and gradient masking, exact zeros through training, composition,
remove_pruning, sparsity_report, save/load, and errors that leave the model untouched."""
import numpy as np
import pytest

from tinyeff import Tensor, io, models, nn, optim
from tinyeff.compress import (get_mask, prunable_layers, prune, prune_to_sparsity, remove_pruning,
                              save_pruned, sparsity_report)
from tinyeff.ops.loss import cross_entropy


def _seed_cnn():
    return models.create("seed-cnn", in_channels=1, input_size=20)


def _batch(rng, n=6):
    return Tensor(rng.random((n, 1, 20, 20)).astype(np.float32)), rng.integers(0, 10, n)


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_prune_zeros_weight_data_and_adds_mask_buffer():
    model = _seed_cnn()
    prune(model, 0.6, "magnitude")
    for name, layer in prunable_layers(model).items():
        mask = get_mask(layer)
        assert mask is not None and (layer.weight.data[~mask] == 0).all()
        assert f"{name}.weight_mask" in model.state_dict()


def test_gradient_of_pruned_weights_is_zero(rng):
    model = _seed_cnn()
    prune(model, 0.5, "global")
    x, y = _batch(rng)
    cross_entropy(model(x), y).backward()
    for layer in prunable_layers(model).values():
        assert (layer.weight.grad[~get_mask(layer)] == 0).all()


@pytest.mark.parametrize("make_opt", [
    lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda p: optim.Adam(p, lr=1e-2, weight_decay=0.01),
    lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.1),
], ids=["sgd-nesterov-wd", "adam-l2", "adamw"])
def test_pruned_weights_stay_exactly_zero_through_training(make_opt, rng):
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 10))
    opt = make_opt(model.parameters())
    x, y = Tensor(rng.random((6, 1, 8, 8)).astype(np.float32)), rng.integers(0, 10, 6)
    for _ in range(3):                                   # build up momentum before pruning
        opt.zero_grad()
        cross_entropy(model(x), y).backward()
        opt.step()
    prune(model, 0.7, "global", optimizer=opt)
    for _ in range(100):
        opt.zero_grad()
        cross_entropy(model(x), y).backward()
        opt.step()
    for layer in prunable_layers(model).values():
        assert (layer.weight.data[~get_mask(layer)] == 0).all()
    assert sparsity_report(model)["total"]["sparsity"] == pytest.approx(0.7, abs=1e-4)


def test_second_prune_only_removes_still_kept_weights():
    model = _seed_cnn()
    prune(model, 0.5, "magnitude")
    first = {n: get_mask(m) for n, m in prunable_layers(model).items()}
    prune(model, 0.5, "magnitude")
    for name, layer in prunable_layers(model).items():
        mask = get_mask(layer)
        assert not (mask & ~first[name]).any()
        assert mask.sum() == first[name].sum() - round(0.5 * first[name].sum())


def test_prune_to_sparsity_hits_global_target():
    model = _seed_cnn()
    for target in (0.3, 0.6, 0.85):
        prune_to_sparsity(model, target, "global")
        assert sparsity_report(model)["total"]["sparsity"] == pytest.approx(target, abs=1e-4)


def test_remove_pruning_keeps_outputs_and_drops_masks(rng):
    model = _seed_cnn().eval()
    prune(model, 0.8, "global")
    x, _ = _batch(rng)
    before = model(x).data
    remove_pruning(model)
    assert not any(k.endswith("_mask") for k in model.state_dict())
    np.testing.assert_array_equal(model(x).data, before)
    assert sparsity_report(model)["total"]["sparsity"] == pytest.approx(0.8, abs=1e-4)


def test_channel_prune_masks_bias_and_following_batchnorm():
    model = models.create("resnet8", in_channels=1)
    prune(model, 0.5, "channel", layers=["layers.0.0.conv1"])
    block = model.layers[0][0]
    alive = get_mask(block.conv1).reshape(16, -1).any(axis=1)
    assert alive.sum() == 8
    np.testing.assert_array_equal(get_mask(block.bn1, "weight"), alive)
    np.testing.assert_array_equal(get_mask(block.bn1, "bias"), alive)


def test_nm_prune_skips_incompatible_layers_with_warning():
    model = _seed_cnn()
    with pytest.warns(UserWarning, match="not divisible"):
        prune(model, None, "nm", n=2, m=4)
    assert get_mask(model[0]) is None                  # first conv has 1 input channel
    assert get_mask(model[3]).mean() == pytest.approx(0.5)


def test_sparsity_report_counts_per_layer_and_total():
    model = _seed_cnn()
    prune(model, 0.25, "magnitude", layers=["3"])
    report = sparsity_report(model)
    rows = {r["name"]: r for r in report["layers"]}
    assert rows["3"]["zeros"] == round(0.25 * rows["3"]["params"]) and rows["3"]["pruned"]
    assert rows["0"]["pruned"] is False
    assert report["total"]["params"] == sum(r["params"] for r in report["layers"])


def test_masks_survive_save_and_load(tmp_path, rng):
    model = _seed_cnn().eval()
    prune(model, 0.7, "global")
    save_pruned(model, tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz").eval()
    x, y = _batch(rng)
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    for name, layer in prunable_layers(loaded).items():
        np.testing.assert_array_equal(get_mask(layer), get_mask(prunable_layers(model)[name]))
    cross_entropy(loaded(x), y).backward()            # the reloaded mask still masks gradients
    for layer in prunable_layers(loaded).values():
        assert (layer.weight.grad[~get_mask(layer)] == 0).all()


def test_prune_single_layer_module(rng):
    layer = nn.Linear(10, 4)
    prune(layer, 0.5)
    assert get_mask(layer).sum() == 20


@pytest.mark.parametrize("kwargs,match", [
    (dict(amount=1.5), "amount"),
    (dict(amount=0.5, layers=["nope"]), "no layer named"),
    (dict(amount=0.5, layers=["1"]), "not Conv2d or Linear"),
    (dict(amount=0.5, method="magic"), "method"),
    (dict(amount=None, method="nm", layers=["0"]), "not divisible"),
])
def test_bad_input_raises_and_leaves_model_untouched(kwargs, match):
    model = _seed_cnn()
    prune(model, 0.3, "magnitude", layers=["3"])
    before = _weights(model)
    with pytest.raises(ValueError, match=match):
        prune(model, **kwargs)
    after = _weights(model)
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_channel_prune_defaults_to_thinnable_layers():
    model = models.create("resnet8", in_channels=1)
    prune(model, 0.5, "channel")
    pruned = [n for n, m in prunable_layers(model).items() if get_mask(m) is not None]
    assert pruned == ["layers.0.0.conv1", "layers.1.0.conv1", "layers.2.0.conv1"]
