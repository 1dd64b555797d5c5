"""Pooling (max, average, global) and batch norm: gradient checks in float64 and forward values
against direct formulas."""
import numpy as np
import pytest

from tinyeff import ops
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad


def distinct(rng, shape, step=0.1):
    """Distinct values ``step`` apart in random order, so no pooling window has a tie."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * step - 1.0


def max_pool_loops(x, k, stride, padding):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=-np.inf)
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k].max(axis=(2, 3))
    return out


def avg_pool_loops(x, k, stride, padding):
    """Zero padding counts in the divisor (PyTorch's count_include_pad=True)."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k].sum(axis=(2, 3)) / (k * k)
    return out


# (shape, kernel, stride, padding)
POOLS = {
    "k2_s2": ((2, 3, 6, 6), 2, 2, 0),
    "k2_s2_odd_size": ((1, 2, 7, 5), 2, 2, 0),
    "k3_s2_padding1": ((2, 2, 7, 7), 3, 2, 1),
    "k3_s1_overlapping": ((1, 2, 5, 6), 3, 1, 0),
    "k3_s1_padding1": ((2, 1, 4, 4), 3, 1, 1),
    "k2_s3_stride_above_kernel": ((1, 2, 8, 8), 2, 3, 0),
}


@pytest.mark.parametrize("name", POOLS)
def test_max_pool2d_grad_distinct_values(name, rng):
    shape, k, stride, padding = POOLS[name]
    check_grad(lambda x: ops.max_pool2d(x, k, stride, padding), distinct(rng, shape))


@pytest.mark.parametrize("name", POOLS)
def test_max_pool2d_forward_matches_loops(name, rng):
    shape, k, stride, padding = POOLS[name]
    x = rng.standard_normal(shape)
    got = ops.max_pool2d(Tensor(x), k, stride, padding).data
    np.testing.assert_array_equal(got, max_pool_loops(x, k, stride, padding))


@pytest.mark.parametrize("name", POOLS)
def test_avg_pool2d_grad(name, rng):
    shape, k, stride, padding = POOLS[name]
    check_grad(lambda x: ops.avg_pool2d(x, k, stride, padding), rng.standard_normal(shape))


@pytest.mark.parametrize("name", POOLS)
def test_avg_pool2d_forward_matches_loops(name, rng):
    shape, k, stride, padding = POOLS[name]
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(ops.avg_pool2d(Tensor(x), k, stride, padding).data,
                               avg_pool_loops(x, k, stride, padding), rtol=1e-12, atol=1e-14)


def test_max_pool2d_stride_defaults_to_kernel(rng):
    x = rng.standard_normal((1, 1, 4, 4))
    assert ops.max_pool2d(Tensor(x), 2).shape == (1, 1, 2, 2)
    assert ops.avg_pool2d(Tensor(x), 2).shape == (1, 1, 2, 2)


def test_pool_padding_above_half_kernel_raises():
    with pytest.raises(ValueError, match="padding=2 must be at most"):
        ops.avg_pool2d(Tensor(np.zeros((1, 1, 6, 6))), 3, 1, 2)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 1, 1, 1), (1, 4, 3, 3)])
def test_global_avg_pool2d_grad(shape, rng):
    check_grad(ops.global_avg_pool2d, rng.standard_normal(shape))


def test_global_avg_pool2d_forward_is_plane_mean(rng):
    x = rng.standard_normal((2, 3, 5, 4))
    out = ops.global_avg_pool2d(Tensor(x)).data
    assert out.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)


# --- batch norm --------------------------------------------------------------------------------
BN_SHAPES = {"2d": (6, 3), "4d": (2, 3, 3, 4), "4d_batch1": (1, 2, 3, 3)}


def _bn_inputs(rng, shape):
    c = shape[1]
    x = 2.0 * rng.standard_normal(shape) + 0.5
    return x, rng.uniform(0.5, 1.5, c), rng.standard_normal(c)


@pytest.mark.parametrize("name", BN_SHAPES)
def test_batch_norm_grad_training(name, rng):
    x, gamma, beta = _bn_inputs(rng, BN_SHAPES[name])
    c = x.shape[1]
    running_mean, running_var = np.zeros(c), np.ones(c)
    check_grad(lambda x_, g_, b_: ops.batch_norm(x_, g_, b_, running_mean, running_var, True), x, gamma, beta)


@pytest.mark.parametrize("name", BN_SHAPES)
def test_batch_norm_grad_eval(name, rng):
    x, gamma, beta = _bn_inputs(rng, BN_SHAPES[name])
    c = x.shape[1]
    running_mean, running_var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    check_grad(lambda x_, g_, b_: ops.batch_norm(x_, g_, b_, running_mean, running_var, False), x, gamma, beta)


def test_batch_norm_eval_does_not_touch_running_stats(rng):
    x, gamma, beta = _bn_inputs(rng, (4, 3))
    running_mean, running_var = np.array([0.1, 0.2, 0.3]), np.array([1.5, 2.0, 0.5])
    ops.batch_norm(Tensor(x), Tensor(gamma), Tensor(beta), running_mean, running_var, False)
    np.testing.assert_array_equal(running_mean, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(running_var, [1.5, 2.0, 0.5])


def test_batch_norm_training_with_one_value_per_channel_raises():
    with pytest.raises(ValueError, match="more than one value per channel"):
        ops.batch_norm(Tensor(np.ones((1, 3))), Tensor(np.ones(3)), Tensor(np.zeros(3)),
                       np.zeros(3), np.ones(3), True)


def test_batch_norm_channel_mismatch_raises():
    with pytest.raises(ValueError, match="does not match 4 channels"):
        ops.batch_norm(Tensor(np.ones((2, 3))), Tensor(np.ones(4)), Tensor(np.zeros(4)),
                       np.zeros(4), np.ones(4), True)
