"""batch_norm with the ReLU and the residual add fused in (a ResNet block's tail): gradient checks in
float64 (reference kernels) and the float32 op (C tier) against the same layers run one by one."""
import numpy as np
import pytest

from tinyeff import ops
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad

SHAPES = {"2d": (6, 3), "4d": (2, 3, 3, 4), "4d_batch1": (1, 2, 3, 3)}


def _inputs(rng, shape):
    c = shape[1]
    x = 2.0 * rng.standard_normal(shape) + 0.5
    return x, rng.uniform(0.5, 1.5, c), rng.standard_normal(c)


def _bn(training, relu, with_residual, c, rng):
    """fn(x, gamma, beta[, residual]) for check_grad: fresh running statistics per call."""
    running = (rng.standard_normal(c), rng.uniform(0.5, 2.0, c)) if not training else None

    def fn(x, gamma, beta, residual=None):
        mean, var = (np.zeros(c), np.ones(c)) if running is None else (running[0].copy(), running[1].copy())
        return ops.batch_norm(x, gamma, beta, mean, var, training, relu=relu,
                              residual=residual if with_residual else None)
    return fn


@pytest.mark.parametrize("name", SHAPES)
def test_batch_norm_relu_grad_training(name, rng):
    x, gamma, beta = _inputs(rng, SHAPES[name])
    check_grad(_bn(True, True, False, x.shape[1], rng), x, gamma, beta)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("name", SHAPES)
def test_batch_norm_residual_grad_training(name, relu, rng):
    x, gamma, beta = _inputs(rng, SHAPES[name])
    residual = rng.standard_normal(x.shape)
    check_grad(_bn(True, relu, True, x.shape[1], rng), x, gamma, beta, residual)


@pytest.mark.parametrize("name", SHAPES)
def test_batch_norm_residual_relu_grad_eval(name, rng):
    x, gamma, beta = _inputs(rng, SHAPES[name])
    residual = rng.standard_normal(x.shape)
    check_grad(_bn(False, True, True, x.shape[1], rng), x, gamma, beta, residual)


def _leaves(rng, shape, dtype):
    x, gamma, beta = (Tensor(a.astype(dtype), requires_grad=True) for a in _inputs(rng, shape))
    return x, gamma, beta, Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)


@pytest.mark.parametrize("with_residual", [False, True])
def test_batch_norm_fused_matches_layer_by_layer_float32(with_residual, rng):
    """The C tier's fused passes against batch_norm, add and relu as separate ops."""
    shape = (4, 5, 6, 7)
    fused, plain = _leaves(rng, shape, np.float32), None
    plain = [Tensor(t.data.copy(), requires_grad=True) for t in fused]
    g = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    out_fused = ops.batch_norm(*fused[:3], np.zeros(c, np.float32), np.ones(c, np.float32), True, relu=True,
                               residual=fused[3] if with_residual else None)
    y = ops.batch_norm(*plain[:3], np.zeros(c, np.float32), np.ones(c, np.float32), True)
    out_plain = ops.relu(y + plain[3] if with_residual else y)
    np.testing.assert_allclose(out_fused.data, out_plain.data, rtol=1e-5, atol=1e-6)  # one rounding apart
    out_fused.backward(g)
    out_plain.backward(g)
    for a, b in zip(fused if with_residual else fused[:3], plain):
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5)  # float32 sums in another order


def test_batch_norm_residual_shape_mismatch_raises():
    with pytest.raises(ValueError, match="residual"):
        ops.batch_norm(Tensor(np.ones((2, 3))), Tensor(np.ones(3)), Tensor(np.zeros(3)), np.zeros(3), np.ones(3),
                       True, residual=Tensor(np.ones((2, 4))))
