"""NaN and Inf never become a result: an int8 model refuses non-finite inputs instead of returning
finite, plausible logits, and JSON results refuse NaN (see test_writes_and_lock for the writer)."""
import numpy as np
import pytest

from tinyeff import data, models, quant
from tinyeff.tensor import Tensor


@pytest.fixture(scope="module")
def int8_and_float():
    train, _ = data.load("synthetic", n_train=64, n_test=8)
    model = models.create("seed-cnn", **models.input_kwargs("seed-cnn", 1, 28, 10))
    model.eval()
    return quant.quantize_static(model, train, num_images=32), model


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (1, 0, 27, 27), (0, 0, 14, 3)])
def test_int8_model_refuses_non_finite_input(int8_and_float, rng, bad, where):
    int8, _ = int8_and_float
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    x[where] = bad
    with pytest.raises(ValueError, match=rf"int8 model: the input holds 1 NaN/Inf value\(s\) \(first at index {re_tuple(where)}"):
        int8(Tensor(x))


def test_int8_model_still_runs_finite_input(int8_and_float, rng):
    int8, _ = int8_and_float
    out = int8(Tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))).data
    assert out.shape == (2, 10) and np.isfinite(out).all()


def test_dynamic_int8_linear_refuses_nan(rng):
    mlp = models.create("mlp", **models.input_kwargs("mlp", 1, 8, 3))
    qmodel = quant.quantize_dynamic(mlp)
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    x[2, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="dynamic int8 Linear: the input holds 1 NaN/Inf"):
        qmodel(Tensor(x))


def re_tuple(t):
    return r"\(" + r", ".join(str(v) for v in t) + r"\)"


@pytest.mark.parametrize("where", [(3, 0, 0, 0), (3, 0, 27, 27), (3, 0, 13, 14)])
def test_float_predict_refuses_nan_wherever_it_is(int8_and_float, rng, where):
    """Max-pooling can drop a NaN at some pixel positions; the refusal must not depend on where it is."""
    from tinyeff import train
    _, model = int8_and_float
    x = rng.standard_normal((5, 1, 28, 28)).astype(np.float32)
    x[where] = np.nan
    with pytest.raises(ValueError, match=rf"predict: image 3 holds 1 NaN/Inf value\(s\) after preprocessing "
                                         rf"\(first at pixel {re_tuple(where[1:])}"):
        train.predict(model, x, batch_size=2, preprocess=lambda images: images)
