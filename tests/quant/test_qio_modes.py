"""Model files for quantized models, dynamic quantization, QAT, 16-bit storage and pruned + int8."""
import numpy as np
import pytest

from tinyeff import Tensor, data, io, manual_seed, models, no_grad
from tinyeff.errors import ModelFileError
from tinyeff.quant import convert, quantize_static
from tinyeff.quant.dynamic import DynamicModel, quantize_dynamic
from tinyeff.quant.lowprec import from_bfloat16_bits, round_weights, save_lowprec, to_bfloat16_bits
from tinyeff.quant.qat import FreezeObservers, freeze_observers, prepare_qat
from tinyeff.quant.qio import save_quantized


@pytest.fixture(scope="module")
def splits():
    return data.load("synthetic", n_train=96, n_test=32, shape=(1, 20, 20))


def _cnn():
    manual_seed(0)                    # layers initialise from the global RNG: same weights in any test order
    return models.create("seed-cnn", in_channels=1, num_classes=10, input_size=20, width=0.25)


def _run(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).data


def test_quantized_save_load_round_trip_is_bit_identical(splits, tmp_path):
    train, test = splits
    model = _cnn()
    model.preprocess = {"kind": "standardize", "mean": [0.5], "std": [0.25]}
    qmodel = quantize_static(model, train, num_images=32)
    path = tmp_path / "q.npz"
    size = save_quantized(qmodel, path)
    assert size == path.stat().st_size
    loaded = io.load(path)
    x = test.images.astype(np.float32) / 255.0
    np.testing.assert_array_equal(_run(loaded, x), _run(qmodel, x))
    assert loaded.preprocess == model.preprocess and loaded.nbytes() == qmodel.nbytes()


def test_quantized_file_is_refused_by_a_float_load(splits, tmp_path):
    qmodel = quantize_static(_cnn(), splits[0], num_images=16)
    path = tmp_path / "q.npz"
    save_quantized(qmodel, path)
    with pytest.raises(ModelFileError, match="holds a quantized model, but a float model was expected"):
        io.load(path, expect_kind="float")


def test_int8_file_is_much_smaller_than_float(splits, tmp_path):
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=20)
    float_bytes = io.save(model, tmp_path / "f.npz")
    int8_bytes = save_quantized(quantize_static(model, splits[0], num_images=16), tmp_path / "q.npz")
    assert float_bytes / int8_bytes >= 3.5


def test_dynamic_mlp_is_close_to_float_and_round_trips(splits, tmp_path):
    model = models.create("mlp", in_channels=1, input_size=20, num_classes=10)
    qmodel = quantize_dynamic(model)
    x = splits[1].images.astype(np.float32) / 255.0
    ref, got = _run(model, x), _run(qmodel, x)
    assert np.abs(got - ref).max() <= 0.05 * np.abs(ref).max()
    save_quantized(qmodel, tmp_path / "d.npz")
    loaded = io.load(tmp_path / "d.npz")
    assert isinstance(loaded, DynamicModel)
    np.testing.assert_array_equal(_run(loaded, x), got)


def test_dynamic_refuses_conv_models():
    with pytest.raises(ValueError, match="Conv2d"):
        quantize_dynamic(_cnn())


def test_qat_trains_through_fake_quant_and_converts(splits):
    from tinyeff.train import fit
    train, test = splits
    prepared = prepare_qat(_cnn())
    fit(prepared, train, epochs=2, batch_size=32, lr=1e-3, progress=False, callbacks=[FreezeObservers(1)])
    assert all(m.observer.frozen for _, m in _observed(prepared))
    grads = [p.grad for p in prepared.parameters()]
    assert all(g is not None and np.isfinite(g).all() for g in grads)
    qmodel = convert(prepared)
    x = test.images.astype(np.float32) / 255.0
    fake, integer = _run(prepared, x), _run(qmodel, x)
    out_scale = _observed(prepared)[-2][1].observer.qparams()[0]     # the last layer's (fake) output grid
    assert np.abs(fake - integer).max() <= 2 * out_scale              # fake-quant rounds logits, int32 does not


def _observed(model):
    from tinyeff.quant.prepare import observed_modules
    return observed_modules(model)


def test_freeze_observers_stops_range_updates(splits):
    prepared = prepare_qat(_cnn())
    x = splits[0].images[:8].astype(np.float32) / 255.0
    prepared(Tensor(x))
    assert freeze_observers(prepared) >= 4
    before = [m.observer.min_max() for _, m in _observed(prepared)]
    prepared(Tensor(x * 5))
    assert [m.observer.min_max() for _, m in _observed(prepared)] == before


def test_bfloat16_bits_match_ml_dtypes(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes is not installed; pip install ml_dtypes "
                                    "(a dependency of tinyeff) to compare our bfloat16 rounding with it")
    x = (rng.normal(size=5000) * 10.0 ** rng.uniform(-20, 20, 5000)).astype(np.float32)
    x = np.concatenate([x, np.array([0.0, -0.0, np.inf, -np.inf, 1.00390625], np.float32)])  # last: a tie
    np.testing.assert_array_equal(to_bfloat16_bits(x), x.astype(ml_dtypes.bfloat16).view(np.uint16))
    np.testing.assert_allclose(from_bfloat16_bits(to_bfloat16_bits(x)), x, rtol=2.0 ** -8)


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_lowprec_file_halves_size_and_loads(precision, tmp_path):
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=20)
    float_bytes = io.save(model, tmp_path / "f.npz")
    low_bytes = save_lowprec(model, tmp_path / "l.npz", precision)
    assert float_bytes / low_bytes >= 1.8
    loaded = io.load(tmp_path / "l.npz")
    x = np.random.default_rng(0).uniform(size=(4, 1, 20, 20)).astype(np.float32)
    np.testing.assert_allclose(_run(loaded, x), _run(round_weights(model, precision), x), rtol=1e-5, atol=1e-6)


def test_pruned_int8_model_uses_sparse_kernels_and_matches_dense(splits, rng):
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=20, width=0.5)
    for m in model.modules():
        if hasattr(m, "weight") and m.weight is not None and m.weight.data.ndim in (2, 4):
            m.weight.data = m.weight.data * (rng.uniform(size=m.weight.shape) >= 0.9)   # 90% zeros
    sparse = quantize_static(model, splits[0], num_images=32, sparse=True)   # forced: None measures
    dense = quantize_static(model, splits[0], num_images=32, sparse=False)
    from tinyeff.quant.qmodules import QWeighted
    layers = [m for m in _leaves(sparse.body) if isinstance(m, QWeighted)]
    assert layers and all(layer.sparse for layer in layers)
    assert all(np.mean(layer.weight_q == 0) >= 0.85 for layer in layers)   # zeros stay zero
    x = splits[1].images.astype(np.float32) / 255.0
    np.testing.assert_array_equal(_run(sparse, x), _run(dense, x))


def _leaves(layer):
    for child in getattr(layer, "layers", [layer]):
        yield from (_leaves(child) if hasattr(child, "layers") else [child])
