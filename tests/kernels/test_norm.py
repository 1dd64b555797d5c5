"""Batch-norm training kernels: every tier against the NumPy reference, large-mean numerics against
float64, and the batch_norm op's float32 path (C tier) against its float64 path (reference)."""
import numpy as np
import pytest

from tinyeff import kernels, ops
from tinyeff.kernels.norm import spec as norm_ref
from tinyeff.tensor import Tensor
from tinyeff.testing import c_paths, kernel_or_skip

# (N, C, H, W): batch 1, H*W = 1, a single value, odd and prime sizes, one ResNet-20-like plane.
SHAPES = [(1, 1, 1, 1), (1, 3, 5, 7), (4, 3, 1, 1), (128, 5, 1, 1), (3, 5, 7, 11), (2, 17, 13, 1),
          (9, 16, 28, 28), (2, 3, 1, 33), (3, 2, 5, 13)]   # H*W = 33, 65: around 4 chains x VD doubles
# The C tier once per ISA path (portable loops, and bnorm_vec.h per ISA), each path skipped with its
# reason where this CPU cannot run it. No Numba tier: batch norm has none (its C loops are the fast path).
TIERS = ["ref"] + c_paths()


@pytest.fixture
def kernel_of():
    """``kernel_of(name, tier)``: the kernel, or a skip that names why the tier or path is off."""
    return kernel_or_skip


def _inputs(rng, shape, loc=0.5, scale=2.0):
    c = shape[1]
    x = (scale * rng.standard_normal(shape) + loc).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    return x, gamma, beta


def _float64_stats(x):
    x64 = x.astype(np.float64)
    return x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_train_matches_ref(kernel_of, tier, shape, rng):
    x, gamma, beta = _inputs(rng, shape)
    y, mean, var, invstd = kernel_of("batchnorm_train_f32", tier)(x, gamma, beta, 1e-5)
    want = norm_ref.batchnorm_train_f32(x, gamma, beta, 1e-5)
    assert y.dtype == mean.dtype == var.dtype == invstd.dtype == np.float32
    # rtol 1e-5: C sums in double, NumPy's float32 pairwise sums round differently.
    np.testing.assert_allclose(mean, want[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, want[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(invstd, want[3], rtol=1e-5)
    # x_hat is O(1) and gamma < 1.5: an absolute float32 tolerance covers the reordered affine map.
    np.testing.assert_allclose(y, want[0], rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_backward_matches_ref(kernel_of, tier, shape, rng):
    x, gamma, beta = _inputs(rng, shape)
    grad_out = rng.standard_normal(shape).astype(np.float32)
    _, mean, _, invstd = norm_ref.batchnorm_train_f32(x, gamma, beta, 1e-5)
    got = kernel_of("batchnorm_backward_f32", tier)(grad_out, x, mean, invstd, gamma)
    want = norm_ref.batchnorm_backward_f32(grad_out, x, mean, invstd, gamma)
    m = x.size // x.shape[1]
    assert all(a.dtype == np.float32 for a in got)
    # Sums over m values: float32 (ref) against double (C) rounding grows like sqrt(m).
    sum_atol = 1e-5 * np.sqrt(m)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=sum_atol)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-5, atol=sum_atol)
    # grad_x is a difference of O(1) terms (m * g - sum(g) - ...) / m: absolute tolerance.
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tier", TIERS)
def test_batchnorm_train_large_mean_keeps_variance(kernel_of, tier, rng):
    # mean 1e4, std 1: E[x^2] - E[x]^2 in float32 would lose every digit of the variance.
    x, gamma, beta = _inputs(rng, (16, 4, 9, 9), loc=1e4, scale=1.0)
    y, mean, var, invstd = kernel_of("batchnorm_train_f32", tier)(x, gamma, beta, 1e-5)
    mean64, var64 = _float64_stats(x)
    np.testing.assert_allclose(mean, mean64, rtol=1e-7)
    np.testing.assert_allclose(var, var64, rtol=1e-4)       # float32 ref: two-pass in float32
    y64 = (x - mean64.reshape(1, -1, 1, 1)) / np.sqrt(var64 + 1e-5).reshape(1, -1, 1, 1)
    y64 = y64 * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)
    # The float32 mean is off by up to half an ulp of 1e4 (5e-4), which shifts every x_hat.
    np.testing.assert_allclose(y, y64, atol=2e-3)


@pytest.mark.parametrize("tier", TIERS)
def test_batchnorm_train_large_mean_outlier_shift(kernel_of, tier, rng):
    # The C tier shifts by each channel's first value; a far-off first value must stay harmless.
    x, gamma, beta = _inputs(rng, (8, 2, 5, 5), loc=1e3, scale=1.0)
    x[0, :, 0, 0] = -1e5
    _, mean, var, _ = kernel_of("batchnorm_train_f32", tier)(x, gamma, beta, 1e-5)
    mean64, var64 = _float64_stats(x)
    np.testing.assert_allclose(mean, mean64, rtol=1e-6)
    np.testing.assert_allclose(var, var64, rtol=1e-5)


@pytest.mark.parametrize("tier", TIERS)
def test_batchnorm_train_constant_channel_has_zero_variance(kernel_of, tier):
    x = np.full((4, 2, 3, 3), 7.25, dtype=np.float32)
    gamma, beta = np.array([2.0, 3.0], np.float32), np.array([0.5, -1.0], np.float32)
    y, mean, var, invstd = kernel_of("batchnorm_train_f32", tier)(x, gamma, beta, 1e-5)
    np.testing.assert_array_equal(mean, [7.25, 7.25])
    np.testing.assert_array_equal(var, [0.0, 0.0])
    np.testing.assert_allclose(invstd, 1 / np.sqrt(1e-5), rtol=1e-6)
    np.testing.assert_array_equal(y, np.broadcast_to(beta.reshape(1, -1, 1, 1), x.shape))


def test_batchnorm_c_rejects_float64(kernel_of):
    kernel = kernel_of("batchnorm_train_f32", "c")
    with pytest.raises(TypeError, match="x is float64"):
        kernel(np.ones((2, 3, 1, 1)), np.ones(3, np.float32), np.zeros(3, np.float32), 1e-5)


@pytest.mark.parametrize("tier", ["ref", "c"])
def test_batchnorm_train_rejects_wrong_gamma_shape(kernel_of, tier):
    kernel = kernel_of("batchnorm_train_f32", tier)
    with pytest.raises(ValueError, match="gamma has shape"):
        kernel(np.ones((2, 3, 1, 1), np.float32), np.ones(4, np.float32), np.zeros(4, np.float32),
               1e-5)


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 3, 4), (1, 2, 3, 3), (32, 16, 7, 7)])
def test_batch_norm_op_float32_matches_float64(shape, rng):
    """The op's float32 path (best tier) against its float64 path (reference), incl. running stats."""
    x, gamma, beta = (a.astype(np.float64) for a in _inputs(rng, shape))
    grad_out = rng.standard_normal(shape)
    results = {}
    for dtype in (np.float32, np.float64):
        c = shape[1]
        running_mean, running_var = np.full(c, 0.25, dtype), np.full(c, 2.0, dtype)
        xt, gt, bt = (Tensor(a.astype(dtype), requires_grad=True) for a in (x, gamma, beta))
        out = ops.batch_norm(xt, gt, bt, running_mean, running_var, True, momentum=0.3)
        grads = out._backward(grad_out.astype(dtype))
        results[dtype] = (out.data, running_mean, running_var) + tuple(grads)
    for got, want in zip(results[np.float32], results[np.float64]):
        assert got.dtype == np.float32
        # float32 rounding of O(1) values and of sums over at most a few thousand of them.
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
