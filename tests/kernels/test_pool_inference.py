"""Max-pool without indices (inference) gives the same values on every tier, including the 2x2
stride-2 fast path of the C tier, and the op skips the indices only when no gradient is needed."""
import numpy as np
import pytest

import tinyeff
from tinyeff import ops
from tinyeff.kernels.pool import spec as pool_ref
from tinyeff.testing import c_paths, kernel_or_skip

TIERS = ["ref", "numba"] + c_paths()

GEOMETRIES = [(2, 2, 0), (3, 2, 1), (2, 1, 0), (3, 3, 1)]        # (kernel, stride, padding)
SHAPES = [(1, 1, 2, 2), (2, 3, 7, 9), (4, 5, 26, 26), (1, 2, 13, 13)]
# only windows that fit: a 3x3 window needs at least 3 rows after padding
CASES = [(shape, *g) for shape in SHAPES for g in GEOMETRIES if shape[2] + 2 * g[2] >= g[0]]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape,kernel,stride,padding", CASES)
def test_maxpool_without_argmax_matches_ref(tier, shape, kernel, stride, padding, rng):
    pool = kernel_or_skip("maxpool2d_f32", tier)
    x = rng.standard_normal(shape).astype(np.float32)
    expected, expected_argmax = pool_ref.maxpool2d_f32(x, kernel, stride, padding)
    out, argmax = pool(x, kernel, stride, padding, with_argmax=False)
    assert argmax is None
    np.testing.assert_array_equal(out, expected)
    out, argmax = pool(x, kernel, stride, padding, with_argmax=True)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(argmax, expected_argmax)


@pytest.mark.parametrize("tier", TIERS)
def test_maxpool_fast_path_ties_and_nan_follow_ref(tier):
    pool = kernel_or_skip("maxpool2d_f32", tier)
    x = np.array([[[[1, 1, np.nan, 2], [0, 1, 3, np.nan]]]], dtype=np.float32)   # ties and NaN taps
    expected, expected_argmax = pool_ref.maxpool2d_f32(x, 2, 2, 0)
    out, argmax = pool(x, 2, 2, 0)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(argmax, expected_argmax)


def test_max_pool_op_still_backpropagates_under_grad(rng):
    x = tinyeff.Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)   # float64: ref tier
    ops.max_pool2d(x, 2).sum().backward()
    assert x.grad.sum() == pytest.approx(2 * 3 * 3 * 3)                          # one winner per window
    with tinyeff.no_grad():
        out = ops.max_pool2d(tinyeff.Tensor(x.data.astype(np.float32)), 2)
    np.testing.assert_array_equal(out.data, pool_ref.maxpool2d_f32(x.data.astype(np.float32), 2, 2)[0])
