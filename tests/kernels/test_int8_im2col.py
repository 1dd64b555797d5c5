"""int8 im2col (padding with the zero point), NCHW and NHWC: every tier equals the reference."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.im2col.spec import im2col_f32
from tinyeff.kernels.int8_conv import spec as conv8
from tinyeff.kernels.im2col import spec as im2col_ref

TIERS = ["ref", "numba", "c"]
GEOMETRY = [  # (N, C, H, W, KH, KW, stride, padding, dilation)
    (1, 1, 1, 1, 1, 1, 1, 0, 1), (2, 3, 7, 5, 3, 3, 1, 0, 1), (1, 2, 8, 8, 3, 3, 2, 1, 1),
    (3, 4, 9, 11, 2, 3, 1, 2, 2), (1, 3, 32, 32, 3, 3, 1, 0, 1)]


def _get(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("geometry", GEOMETRY)
def test_im2col_u8_matches_ref(tier, geometry, rng):
    n, c, h, w, kh, kw, stride, padding, dilation = geometry
    x = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    args = (x, kh, kw, stride, padding, dilation, 131)
    np.testing.assert_array_equal(_get("im2col_u8", tier)(*args), im2col_ref.im2col_u8(*args))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("geometry", GEOMETRY)
def test_im2col_s8_matches_ref(tier, geometry, rng):
    n, c, h, w, kh, kw, stride, padding, dilation = geometry
    x = rng.integers(-128, 128, (n, c, h, w), dtype=np.int8)
    args = (x, kh, kw, stride, padding, dilation, -128)
    np.testing.assert_array_equal(_get("im2col_s8", tier)(*args), im2col_ref.im2col_s8(*args))


def test_im2col_u8_layout_equals_float_im2col_with_zero_point_padding(rng):
    x = rng.integers(0, 256, (2, 3, 6, 5), dtype=np.uint8)
    zero_point = 77
    cols = im2col_ref.im2col_u8(x, 3, 3, stride=1, padding=1, pad_value=zero_point)
    shifted = im2col_f32(x.astype(np.float64) - zero_point, 3, 3, stride=1, padding=1)
    np.testing.assert_array_equal(cols.astype(np.float64) - zero_point, shifted)


@pytest.mark.parametrize("tier", TIERS)
def test_im2col_u8_rejects_pad_value_out_of_range(tier):
    with pytest.raises(ValueError, match="pad_value"):
        _get("im2col_u8", tier)(np.zeros((1, 1, 3, 3), np.uint8), 2, 2, pad_value=256)


# ---- NHWC versions (the integer model's layout between layers) ------------------------------

NHWC_TIERS = ["ref", "c"]
NHWC_GEOMETRY = GEOMETRY + [  # stride-1 runs of KW*C bytes (short and long), padding on one side only
    (256, 1, 28, 28, 3, 3, 1, 0, 1), (2, 32, 13, 13, 3, 3, 1, 0, 1), (3, 17, 5, 7, 3, 2, 1, 1, 1),
    (1, 5, 11, 13, 5, 5, 3, 2, 1), (2, 64, 5, 5, 3, 3, 1, 0, 1)]


@pytest.mark.parametrize("tier", NHWC_TIERS)
@pytest.mark.parametrize("geometry", NHWC_GEOMETRY)
def test_im2col_u8_nhwc_matches_ref(tier, geometry, rng):
    n, c, h, w, kh, kw, stride, padding, dilation = geometry
    x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    args = (x, kh, kw, stride, padding, dilation, 131)
    np.testing.assert_array_equal(_get("im2col_u8_nhwc", tier)(*args), conv8.im2col_u8_nhwc(*args))


def test_im2col_u8_nhwc_is_nchw_im2col_with_columns_reordered(rng):
    n, c, h, w, kh, kw = 2, 3, 6, 5, 3, 2
    x = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    nchw = im2col_ref.im2col_u8(x, kh, kw, stride=1, padding=1, pad_value=9)              # columns (c, kh, kw)
    nhwc = conv8.im2col_u8_nhwc(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), kh, kw, stride=1, padding=1,
                              pad_value=9)                                         # columns (kh, kw, c)
    np.testing.assert_array_equal(nhwc, nchw.reshape(-1, c, kh, kw).transpose(0, 2, 3, 1).reshape(len(nchw), -1))


@pytest.mark.parametrize("tier", NHWC_TIERS)
@pytest.mark.parametrize("geometry", NHWC_GEOMETRY[1:])
@pytest.mark.parametrize("pool", [2, 3])
def test_im2col_u8_nhwc_pool_order_matches_ref(tier, geometry, pool, rng):
    n, c, h, w, kh, kw, stride, padding, dilation = geometry
    x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    args = (x, kh, kw, stride, padding, dilation, 131)
    np.testing.assert_array_equal(_get("im2col_u8_nhwc", tier)(*args, pool=pool), conv8.im2col_u8_nhwc(*args, pool=pool))


def test_im2col_u8_nhwc_pool_rows_are_the_windows_members(rng):
    """Row (n, ph, pw, dy, dx) of the pool-ordered unfold is row (n, 2ph+dy, 2pw+dx) of the plain one;
    the 11th output row and column, which a 2x2 pool drops, are absent."""
    x = rng.integers(0, 256, (2, 13, 13, 3), dtype=np.uint8)
    plain = conv8.im2col_u8_nhwc(x, 3, 3).reshape(2, 11, 11, -1)
    pooled = conv8.im2col_u8_nhwc(x, 3, 3, pool=2).reshape(2, 5, 5, 2, 2, -1)
    np.testing.assert_array_equal(pooled[1, 3, 4, 1, 0], plain[1, 7, 8])
    assert pooled.shape[0] * 5 * 5 * 4 == len(conv8.im2col_u8_nhwc(x, 3, 3, pool=2))


@pytest.mark.parametrize("tier", NHWC_TIERS)
@pytest.mark.parametrize("geometry", NHWC_GEOMETRY)
@pytest.mark.parametrize("pool,row_align", [(1, 4), (2, 4), (1, 8), (2, 3)])
def test_im2col_u8_nhwc_row_align_matches_ref(tier, geometry, pool, row_align, rng):
    n, c, h, w, kh, kw, stride, padding, dilation = geometry
    if pool > 1 and (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1 < pool:
        pool = 1                                          # the output is too small to pool
    x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    args = (x, kh, kw, stride, padding, dilation, 131)
    kwargs = dict(pool=pool, row_align=row_align)
    np.testing.assert_array_equal(_get("im2col_u8_nhwc", tier)(*args, **kwargs), conv8.im2col_u8_nhwc(*args, **kwargs))


def test_im2col_u8_nhwc_row_align_pads_each_kernel_row_with_pad_value(rng):
    x = rng.integers(0, 256, (1, 5, 5, 1), dtype=np.uint8)
    cols = conv8.im2col_u8_nhwc(x, 3, 3, pad_value=7, row_align=4)                    # (9, 3 * 4)
    np.testing.assert_array_equal(cols.reshape(9, 3, 4)[:, :, 3], 7)
    np.testing.assert_array_equal(cols.reshape(9, 3, 4)[:, :, :3].reshape(9, 9), conv8.im2col_u8_nhwc(x, 3, 3))
