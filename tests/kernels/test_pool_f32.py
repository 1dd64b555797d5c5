"""Dense float32 max-pool (with argmax) and its backward: every tier and ISA path against the reference."""
import numpy as np
import pytest

from tinyeff.kernels.pool import spec as pool_ref
from tinyeff.testing import c_paths, kernel_or_skip

TIERS = ["ref", "numba", "c"]
POOL_TIERS = ["ref", "numba"] + c_paths()      # the 2x2 max-pool has a body per ISA path

_kernel = kernel_or_skip

# (N, C, H, W, kernel, stride, padding)
POOL_SHAPES = [
    (1, 1, 2, 2, 2, 2, 0),
    (2, 3, 7, 9, 2, 2, 0),
    (3, 2, 9, 7, 3, 2, 1),
    (1, 4, 13, 13, 3, 1, 1),
    (2, 5, 6, 11, 3, 3, 0),
]


@pytest.mark.parametrize("tier", POOL_TIERS)
@pytest.mark.parametrize("shape", POOL_SHAPES)
def test_maxpool2d_f32_matches_ref(tier, shape, rng):
    n, c, h, w, kernel, stride, padding = shape
    pool = _kernel("maxpool2d_f32", tier)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    out, argmax = pool(x, kernel, stride, padding)
    want_out, want_argmax = pool_ref.maxpool2d_f32(x, kernel, stride, padding)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(argmax, want_argmax)
    assert argmax.dtype == np.int64


@pytest.mark.parametrize("tier", POOL_TIERS)
def test_maxpool2d_f32_ties_go_to_first_tap(tier):
    pool = _kernel("maxpool2d_f32", tier)
    x = np.zeros((1, 2, 4, 4), dtype=np.float32)     # every window is one big tie
    out, argmax = pool(x, 2, 2, 0)
    _, want_argmax = pool_ref.maxpool2d_f32(x, 2, 2, 0)
    np.testing.assert_array_equal(argmax, want_argmax)


@pytest.mark.parametrize("tier", POOL_TIERS)
@pytest.mark.parametrize("width", [2, 3, 7, 8, 9, 10, 11, 15, 16, 17, 18, 19, 31, 32, 33, 34, 35, 63, 65])
def test_maxpool2d_f32_2x2_ties_nan_and_inf_across_vector_tails(tier, width, rng):
    # The 2x2 path has vector bodies of 4, 8 and 16 windows (C tier): widths of 1..17 windows and
    # beyond test every tail; small integers make ties common; NaN must never win, an all -inf
    # window gives 0. Values and indices must match exactly, with and without argmax.
    pool = _kernel("maxpool2d_f32", tier)
    x = rng.integers(-2, 3, (2, 3, 6, width)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.1] = -np.inf
    x[0, 0, :2, :2] = -np.inf
    out, argmax = pool(x, 2, 2, 0)
    want_out, want_argmax = pool_ref.maxpool2d_f32(x, 2, 2, 0)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(argmax, want_argmax)
    np.testing.assert_array_equal(pool(x, 2, 2, 0, with_argmax=False)[0], want_out)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape", POOL_SHAPES)
def test_maxpool2d_backward_f32_matches_ref(tier, shape, rng):
    n, c, h, w, kernel, stride, padding = shape
    backward = _kernel("maxpool2d_backward_f32", tier)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    out, argmax = pool_ref.maxpool2d_f32(x, kernel, stride, padding)
    grad_out = rng.standard_normal(out.shape).astype(np.float32)
    got = backward(grad_out, argmax, x.shape)
    assert got.dtype == np.float32 and got.shape == x.shape
    # rtol: overlapping windows that share a maximum add in float32 here, float64 in the ref
    np.testing.assert_allclose(got, pool_ref.maxpool2d_backward_f32(grad_out, argmax, x.shape),
                               rtol=1e-6, atol=1e-6)

