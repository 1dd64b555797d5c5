"""uint8 max-pool, NCHW and NHWC: every tier equals the reference."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.pool import spec as pool_ref

TIERS = ["ref", "numba", "c"]


def _get(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape,kernel_size,stride", [((1, 1, 1, 1), 1, None), ((2, 3, 7, 5), 2, None),
                                                      ((1, 4, 30, 30), 2, 2), ((2, 2, 9, 9), 3, 2),
                                                      ((4, 32, 30, 30), 2, None)])
def test_maxpool2d_u8_matches_ref(tier, shape, kernel_size, stride, rng):
    kernel = _get("maxpool2d_u8", tier)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(kernel(x, kernel_size, stride), pool_ref.maxpool2d_u8(x, kernel_size, stride))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("value", [0, 255])
def test_maxpool2d_u8_extremes(tier, value):
    x = np.full((1, 2, 4, 4), value, dtype=np.uint8)
    np.testing.assert_array_equal(_get("maxpool2d_u8", tier)(x), np.full((1, 2, 2, 2), value, np.uint8))


def test_maxpool2d_u8_rejects_float_input():
    with pytest.raises(TypeError, match="uint8"):
        pool_ref.maxpool2d_u8(np.zeros((1, 1, 4, 4), np.float32))


# ---- NHWC versions (the integer model's layout between layers) ------------------------------

NHWC_TIERS = ["ref", "c"]


@pytest.mark.parametrize("tier", NHWC_TIERS)
@pytest.mark.parametrize("shape,kernel_size,stride", [((1, 1, 1, 1), 1, None), ((2, 3, 7, 5), 2, None),
                                                      ((1, 4, 30, 30), 2, 2), ((2, 2, 9, 9), 3, 2),
                                                      ((4, 32, 26, 26), 2, None), ((3, 65, 11, 11), 2, 2),
                                                      ((2, 7, 8, 9), 3, 1)])
def test_maxpool2d_u8_nhwc_matches_nchw_ref(tier, shape, kernel_size, stride, rng):
    kernel = _get("maxpool2d_u8_nhwc", tier)
    x = rng.integers(0, 256, shape, dtype=np.uint8)                                # (N, C, H, W)
    expected = pool_ref.maxpool2d_u8(x, kernel_size, stride).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(kernel(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), kernel_size, stride),
                                  expected)


@pytest.mark.parametrize("tier", NHWC_TIERS)
def test_maxpool2d_u8_nhwc_rejects_window_larger_than_input(tier):
    with pytest.raises(ValueError, match="does not fit"):
        _get("maxpool2d_u8_nhwc", tier)(np.zeros((1, 2, 2, 5), np.uint8), 3)

