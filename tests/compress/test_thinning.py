"""Structured thinning: the smaller dense model equals the masked one, through BatchNorm, residual
blocks and Flatten -> Linear, and survives save/load."""
import numpy as np
import pytest

from tinyeff import Tensor, io, models, nn, no_grad
from tinyeff.compress import prunable_layers, prune
from tinyeff.compress.thinning import (channel_groups, dead_channels, prune_channel_groups, save, thin,
                                      thinning_plan)


def _randomize_batchnorm(model, rng):
    """Non-trivial BN statistics, so a dead channel's BN output would not be 0 by accident."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            f = m.num_features
            m.set_buffer("running_mean", rng.standard_normal(f).astype(np.float32) * 0.2)
            m.set_buffer("running_var", (rng.random(f) + 0.5).astype(np.float32))
            m.weight.data[:] = rng.random(f) + 0.5
            m.bias.data[:] = rng.standard_normal(f) * 0.2


def _outputs(model, x):
    with no_grad():
        return model.eval()(Tensor(x)).data


def test_seed_cnn_plan_covers_flatten_to_linear():
    model = models.create("seed-cnn", in_channels=1, input_size=20)
    assert ("6", None, "9", True) in thinning_plan(model)
    assert all(p[0] != "11" for p in thinning_plan(model))     # the classifier is never thinned


def test_thinned_seed_cnn_matches_masked(rng):
    model = models.create("seed-cnn", in_channels=1, input_size=28)
    for layer in prunable_layers(model).values():
        if layer.bias is not None:
            layer.bias.data[:] = rng.standard_normal(layer.bias.shape) * 0.1
    prune(model, 0.5, "channel", layers=["0", "3", "6", "9"])
    small = thin(model)
    assert small[0].weight.shape == (16, 1, 3, 3) and small[9].weight.shape == (32, 32 * 3 * 3)  # 64x3x3 at the flatten
    x = rng.random((4, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(_outputs(small, x), _outputs(model, x), rtol=1e-5, atol=1e-5)
    # ^ float32 sums over fewer (zero) terms may round differently


def test_thinned_resnet_inner_channels_match_masked(rng):
    model = models.create("resnet8", in_channels=1)
    _randomize_batchnorm(model, rng)
    inner = [p[0] for p in thinning_plan(model)]
    assert inner == ["layers.0.0.conv1", "layers.1.0.conv1", "layers.2.0.conv1"]
    prune(model, 0.5, "channel", layers=inner)
    small = thin(model)
    block = small.layers[2][0]
    assert block.conv1.weight.shape == (32, 32, 3, 3) and block.bn1.num_features == 32
    assert block.conv2.weight.shape == (64, 32, 3, 3) and block.shortcut[0].weight.shape == (64, 32, 1, 1)
    x = rng.random((3, 1, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(_outputs(small, x), _outputs(model, x), rtol=1e-5, atol=1e-5)


def test_unstructured_zeros_with_live_batchnorm_are_not_removed(rng):
    model = models.create("resnet8", in_channels=1)
    _randomize_batchnorm(model, rng)
    block = model.layers[0][0]
    block.conv1.weight.data[3] = 0                   # zero filter, but BN still outputs a constant
    assert not dead_channels(block.conv1, block.bn1)[3]
    assert thin(model).layers[0][0].conv1.weight.shape[0] == 16


def test_thin_leaves_the_original_untouched():
    model = models.create("seed-cnn", in_channels=1, input_size=20)
    prune(model, 0.5, "channel", layers=["3"])
    thin(model)
    assert model[3].weight.shape == (64, 32, 3, 3)


def test_thinned_model_saves_and_loads(tmp_path, rng):
    model = models.create("resnet8", in_channels=1)
    _randomize_batchnorm(model, rng)
    prune(model, 0.25, "channel", layers=[p[0] for p in thinning_plan(model)])
    small = thin(model)
    save(small, tmp_path / "thin.npz")
    loaded = io.load(tmp_path / "thin.npz")
    assert loaded.thinned == small.thinned
    x = rng.random((2, 1, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(_outputs(loaded, x), _outputs(small, x))


def test_loading_thinned_file_with_bad_shapes_fails_cleanly(tmp_path):
    from tinyeff.errors import ModelFileError
    model = models.create("seed-cnn", in_channels=1, input_size=20)
    prune(model, 0.5, "channel", layers=["3"])
    small = thin(model)
    small.thinned = {"3": [7, 32, 3, 3]}             # header disagrees with the arrays
    save(small, tmp_path / "bad.npz")
    with pytest.raises(ModelFileError, match="thinned model"):
        io.load(tmp_path / "bad.npz")


def test_resnet_stage_groups_cover_every_residual_writer():
    groups = channel_groups(models.create("resnet8", in_channels=1))
    assert [len(g["producers"]) for g in groups] == [2, 2, 2]          # stem/shortcut + one conv2
    assert groups[0]["consumers"] == ["layers.0.0.conv1", "layers.1.0.conv1", "layers.1.0.shortcut.0"]
    assert groups[-1]["consumers"][-1] == "fc"


def test_thinned_resnet_all_filters_matches_masked(tmp_path, rng):
    model = models.create("resnet8", in_channels=1)
    _randomize_batchnorm(model, rng)
    prune(model, 0.5, "channel", layers=[p[0] for p in thinning_plan(model)])
    prune_channel_groups(model, 0.5)
    small = thin(model)
    assert small.conv1.weight.shape == (8, 1, 3, 3) and small.fc.weight.shape == (10, 32)
    assert small.layers[1][0].shortcut[0].weight.shape == (16, 8, 1, 1)
    x = rng.random((3, 1, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(_outputs(small, x), _outputs(model, x), rtol=1e-5, atol=1e-5)
    save(small, tmp_path / "all.npz")
    np.testing.assert_array_equal(_outputs(io.load(tmp_path / "all.npz"), x), _outputs(small, x))


def test_prune_channel_groups_rejects_bad_amount_untouched():
    model = models.create("resnet8", in_channels=1)
    with pytest.raises(ValueError, match="amount"):
        prune_channel_groups(model, 1.5)
    assert not any(k.endswith("_mask") for k in model.state_dict())
