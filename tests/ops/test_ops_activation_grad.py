"""SiLU and ReLU6 (EfficientNet's and MobileNetV2's activations): values and finite-difference gradients."""
import numpy as np

from tinyeff import nn, ops
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad


def test_silu_values_match_the_formula(rng):
    x = rng.standard_normal((4, 5)) * 10
    out = ops.silu(Tensor(x)).data
    np.testing.assert_allclose(out, x / (1.0 + np.exp(-x)), rtol=1e-14, atol=0)   # both forms are one exp and one division


def test_silu_grad(rng):
    check_grad(ops.silu, rng.standard_normal((2, 3, 4, 5)) * 3)


def test_silu_large_inputs_stay_finite():
    out = ops.silu(Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32))).data
    np.testing.assert_allclose(out, [0.0, -50.0 / (1 + np.exp(50.0)), 0.0, 50.0, 1e4], rtol=1e-6, atol=1e-12)


def test_relu6_values_clip_to_zero_and_six(rng):
    x = np.array([-3.0, 0.5, 5.9, 6.1, 100.0])
    np.testing.assert_array_equal(nn.ReLU6()(Tensor(x)).data, [0.0, 0.5, 5.9, 6.0, 6.0])


def test_relu6_grad_away_from_the_kinks(rng):
    x = rng.uniform(-3.0, 9.0, (3, 4, 5))
    x[np.abs(x) < 0.1] += 0.3                        # keep finite differences off the kinks at 0 and 6
    x[np.abs(x - 6) < 0.1] += 0.3
    check_grad(ops.relu6, x)


def test_silu_module_matches_op(rng):
    x = rng.standard_normal((2, 3))
    np.testing.assert_array_equal(nn.SiLU()(Tensor(x)).data, ops.silu(Tensor(x)).data)
