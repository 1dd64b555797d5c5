"""The shared architecture knobs: one width multiplier for every model, depth, shortcuts, init."""
import numpy as np
import pytest

import tinyeff
from tinyeff import data, nn
from tinyeff.models import knobs


@pytest.fixture(scope="module")
def split():
    return data.load("synthetic", n_train=8, n_test=4, shape=(1, 28, 28), num_classes=10, seed=0)[0]


def _first_out(model):
    return next(m for _, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


@pytest.mark.parametrize("name,full,half", [("seed-cnn", 32, 16), ("resnet20", 16, 8), ("resnet", 16, 8),
                                            ("resnet18", 64, 32), ("mlp", 256, 128)])
def test_width_half_halves_the_first_layer(split, name, full, half):
    width_of = lambda m: (lambda layer: getattr(layer, "out_channels", None) or layer.out_features)(_first_out(m))
    assert width_of(knobs.build(name, split)) == full
    assert width_of(knobs.build(name, split, width=0.5)) == half


def test_mobilenet_width_is_its_multiplier():
    assert knobs.width_kwargs("mobilenet", 0.5) == {"width_mult": 0.5}


def test_width_one_keeps_the_architecture_record(split):
    assert knobs.build("resnet20", split, width=1).arch == knobs.build("resnet20", split).arch


def test_depth_and_shortcut_apply_to_cifar_resnets_only(split):
    model = knobs.build("resnet", split, depth=14, shortcut=False)
    assert model.arch["kwargs"]["depth"] == 14 and not model.layers[0][0].use_shortcut
    with pytest.raises(ValueError, match="no depth or shortcut"):
        knobs.build("mlp", split, shortcut=False)
    with pytest.raises(ValueError, match="--model resnet"):
        knobs.build("resnet20", split, depth=14)
    assert knobs.resnet_family("resnet56") and not knobs.resnet_family("resnet18")


def test_xavier_init_is_glorot_uniform(split):
    tinyeff.manual_seed(0)
    model = knobs.build("mlp", split, init="xavier")
    w = model.get_submodule("1").weight.data               # Linear(784, 256)
    bound = np.sqrt(6.0 / (784 + 256))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    tinyeff.manual_seed(0)
    assert not np.array_equal(knobs.build("mlp", split).get_submodule("1").weight.data, w)


def test_unknown_init_is_refused(split):
    with pytest.raises(ValueError, match="xavier"):
        knobs.build("mlp", split, init="orthogonal")


def test_width_must_be_positive():
    with pytest.raises(ValueError, match="positive multiplier"):
        knobs.width_kwargs("seed-cnn", 0)
