"""BN folding, static quantization end to end, and the simulated (float) path against the integer path.

NOTE on the "at most 1" tolerance: the integer path requantizes with a 31-bit fixed-point multiplier
and rounds half away from zero (gemmlowp); the simulated path divides in float64 and rounds half to
even. On the same integer input, one layer's outputs can therefore differ by 1, never more.
"""
import numpy as np
import pytest

from tinyeff import Tensor, data, models, nn, no_grad
from tinyeff.quant import fold_batchnorm, quantize_static
from tinyeff.quant import qmodules as qm


@pytest.fixture(scope="module")
def splits():
    return data.load("synthetic", n_train=96, n_test=32, shape=(1, 20, 20))


def _randomize_bn(model, rng):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = rng.uniform(0.5, 1.5, c).astype(np.float32)
            m.bias.data = rng.uniform(-0.2, 0.2, c).astype(np.float32)
            m.set_buffer("running_mean", rng.uniform(-0.3, 0.3, c).astype(np.float32))
            m.set_buffer("running_var", rng.uniform(0.5, 2.0, c).astype(np.float32))
    return model


def _small(name, rng):
    if name == "cnn-bn":
        return _randomize_bn(nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 10)), rng)
    if name == "seed-cnn":
        return models.create("seed-cnn", in_channels=1, num_classes=10, input_size=20, width=0.25)
    return _randomize_bn(models.create("resnet8", in_channels=1, num_classes=10, width=4), rng)


def _run(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).data


@pytest.mark.parametrize("name", ["cnn-bn", "resnet8"])
def test_bn_folding_matches_unfolded_eval_output(name, rng):
    model = _small(name, rng)
    x = rng.normal(size=(4, 1, 20, 20)).astype(np.float32)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    np.testing.assert_allclose(_run(folded, x), _run(model, x), rtol=1e-4, atol=1e-5)  # float32 reassociation


def _leaves(layer):
    if isinstance(layer, qm.QSequential):
        for child in layer.layers:
            yield from _leaves(child)
    else:
        yield layer


def _check_layer(layer, q, worst):
    """Feed the same integer input to both paths of ``layer``; return the integer output."""
    if isinstance(layer, qm.QBasicBlock):
        mid = _check_layer(layer.conv1, q, worst)
        out = _check_layer(layer.conv2, mid, worst)
        if layer.add is None:
            return out
        skip = q if layer.shortcut is None else _check_layer_seq(layer.shortcut, q, worst)
        got, sim = layer.add.forward(out, skip), layer.add.simulate(out, skip)
    else:
        got, sim = layer.forward(q), layer.simulate(q)
    assert got.dtype == sim.dtype and got.shape == sim.shape
    worst.append(int(np.max(np.abs(got.astype(np.int64) - sim.astype(np.int64)))) if got.size else 0)
    return got


def _check_layer_seq(seq, q, worst):
    for layer in _leaves(seq):
        q = _check_layer(layer, q, worst)
    return q


@pytest.mark.parametrize("name", ["seed-cnn", "cnn-bn", "resnet8"])
def test_simulated_and_integer_paths_agree_layer_by_layer(name, splits, rng):
    train, test = splits
    qmodel = quantize_static(_small(name, rng), train, num_images=64)
    x = (test.images[:8].astype(np.float32) / 255.0)
    worst = []
    _check_layer_seq(qmodel.body, qmodel.quantize_input(x), worst)
    assert len(worst) >= 5 and max(worst) <= 1


@pytest.mark.parametrize("name", ["seed-cnn", "resnet8"])
def test_simulated_and_integer_predictions_agree_end_to_end(name, splits, rng):
    train, test = splits
    model = _small(name, rng)
    qmodel = quantize_static(model, train, num_images=64, calibration="mse")
    x = test.images.astype(np.float32) / 255.0
    integer = _run(qmodel, x)
    qmodel.simulate = True
    simulated = _run(qmodel, x)
    assert integer.dtype == np.float32 and integer.shape == (len(x), 10)
    assert np.mean(integer.argmax(1) == simulated.argmax(1)) >= 0.9
    np.testing.assert_allclose(integer, simulated, atol=0.1 * np.abs(simulated).max() + 1e-6)


def test_quantized_model_is_close_to_float(splits, rng):
    train, test = splits
    model = _small("seed-cnn", rng)
    qmodel = quantize_static(model, train, num_images=96)
    x = test.images.astype(np.float32) / 255.0
    ref, got = _run(model, x), _run(qmodel, x)
    assert np.abs(got - ref).max() <= 0.1 * np.abs(ref).max() + 1e-3


def test_calibrating_with_zero_images_is_a_clear_error(rng):
    model = _small("seed-cnn", rng)
    with pytest.raises(ValueError, match="calibration image"):
        quantize_static(model, np.zeros((0, 1, 20, 20), np.uint8))


def test_layer_without_integer_kernel_runs_as_a_float_island(splits):
    from tinyeff.quant.islands import float_layers
    model = nn.Sequential(nn.Flatten(), nn.Linear(400, 8), nn.Sigmoid(), nn.Linear(8, 10))
    model.arch = {"name": "custom", "kwargs": {}}
    qmodel = quantize_static(model, splits[0], num_images=8)
    (where, island), = float_layers(qmodel)
    assert where == "body.2" and island.path == "2" and isinstance(island.module, nn.Sigmoid)
    assert isinstance(qmodel.body.layers[1], qm.QLinear) and isinstance(qmodel.body.layers[3], qm.QLinear)


def test_depthwise_conv_runs_in_float_between_quantize_steps(splits):
    from tinyeff.quant.islands import float_layers
    model = models.create("mobilenet", in_channels=1, num_classes=10, width_mult=0.25)
    qmodel = quantize_static(model, splits[0], num_images=8)
    islands = float_layers(qmodel)
    assert len(islands) == 7 and all(layer.module.groups > 1 for _, layer in islands)