"""Gradient checks for the elementwise ops (add, mul, pow and the derived sub, div, neg; the
activations), in float64 against central differences, including broadcasting."""
import numpy as np
import pytest

from tinyeff import ops
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin, so no finite-difference step crosses a kink at 0."""
    x = rng.uniform(margin, 2.0, shape)
    return x * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 1), (1, 4)),
                                             ((2, 1, 5), (3, 1)), ((1,), (2, 3))])
def test_add_grad_with_broadcasting(shape_a, shape_b, rng):
    check_grad(ops.add, rng.standard_normal(shape_a), rng.standard_normal(shape_b))


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 1), (1, 4)),
                                             ((4, 1, 1), (2, 4, 3, 5))])
def test_mul_grad_with_broadcasting(shape_a, shape_b, rng):
    check_grad(ops.mul, rng.standard_normal(shape_a), rng.standard_normal(shape_b))


def test_mul_grad_same_tensor_twice_accumulates(rng):
    check_grad(lambda a: a * a, rng.standard_normal((3, 5)))


@pytest.mark.parametrize("exponent", [2, 3, -1.0, 0.5, 1.5])
def test_pow_grad(exponent, rng):
    check_grad(lambda a: a ** exponent, rng.uniform(0.5, 2.0, (3, 4)))


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1), (1, 3))])
def test_sub_grad_through_primitives(shape_a, shape_b, rng):
    check_grad(ops.sub, rng.standard_normal(shape_a), rng.standard_normal(shape_b))


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1), (1, 3))])
def test_div_grad_through_primitives(shape_a, shape_b, rng):
    check_grad(ops.div, rng.standard_normal(shape_a), away_from_zero(rng, shape_b, margin=0.5))


def test_neg_grad(rng):
    check_grad(ops.neg, rng.standard_normal((2, 3)))


def test_scalar_on_the_left_rsub_and_rtruediv_grad(rng):
    check_grad(lambda a: (2.0 - a) * (3.0 / a), rng.uniform(0.5, 2.0, (3, 3)))


def test_exp_grad(rng):
    check_grad(ops.exp, rng.standard_normal((3, 4)))


def test_log_grad(rng):
    check_grad(ops.log, rng.uniform(0.2, 3.0, (3, 4)))


def test_relu_grad_away_from_zero(rng):
    check_grad(ops.relu, away_from_zero(rng, (4, 5)))


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_grad_away_from_zero(slope, rng):
    check_grad(lambda a: ops.leaky_relu(a, slope), away_from_zero(rng, (4, 5)))


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_grad_away_from_zero(alpha, rng):
    check_grad(lambda a: ops.elu(a, alpha), away_from_zero(rng, (4, 5)))


def test_sigmoid_grad(rng):
    check_grad(ops.sigmoid, 3 * rng.standard_normal((4, 5)))


def test_tanh_grad(rng):
    check_grad(ops.tanh, 2 * rng.standard_normal((4, 5)))


def test_cast_grad_returns_to_input_dtype(rng):
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    y = ops.cast(x, np.float32)
    assert y.dtype == np.float32
    y.backward(np.ones((2, 3), dtype=np.float32))
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


def test_activation_forward_values():
    x = Tensor(np.array([-2.0, -0.5, 0.5, 3.0]))
    np.testing.assert_allclose(ops.relu(x).data, [0, 0, 0.5, 3.0])
    np.testing.assert_allclose(ops.leaky_relu(x, 0.1).data, [-0.2, -0.05, 0.5, 3.0])
    np.testing.assert_allclose(ops.elu(x, 1.0).data, [np.expm1(-2.0), np.expm1(-0.5), 0.5, 3.0])
    np.testing.assert_allclose(ops.sigmoid(x).data, 1 / (1 + np.exp(-x.data)), rtol=1e-12)
    np.testing.assert_allclose(ops.tanh(x).data, np.tanh(x.data))


def test_sigmoid_of_large_inputs_does_not_overflow():
    with np.errstate(over="raise"):
        out = ops.sigmoid(Tensor(np.array([-1000.0, 1000.0]))).data
    np.testing.assert_array_equal(out, [0.0, 1.0])


def test_pow_rejects_a_tensor_exponent():
    with pytest.raises(TypeError, match="exponent"):
        ops.pow(Tensor(np.ones(2)), Tensor(np.ones(2)))


def test_python_scalar_operand_keeps_float32():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    assert (x * 2.5 + 1.0 - 0.5 / (x + 1)).dtype == np.float32
