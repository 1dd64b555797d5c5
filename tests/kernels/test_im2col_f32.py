"""Dense float32 im2col and col2im: every tier against the reference."""
import numpy as np
import pytest

from tinyeff.kernels.layout import geometry
from tinyeff.kernels.im2col import spec as im2col_ref
from tinyeff.testing import kernel_or_skip

TIERS = ["ref", "numba", "c"]

# (N, C, H, W, KH, KW, stride, padding, dilation): batch 1, odd and prime sizes, stride > 1,
# padding, dilation, 1x1 kernels, non-square kernels, kernels as large as the padded input.
CONV_SHAPES = [
    (1, 1, 1, 1, 1, 1, 1, 0, 1),
    (2, 3, 7, 5, 3, 3, 1, 1, 1),
    (1, 4, 13, 13, 3, 3, 2, 0, 1),
    (3, 2, 11, 9, 3, 2, 2, 1, 2),
    (2, 5, 8, 8, 5, 5, 3, 2, 1),
    (1, 3, 6, 6, 6, 6, 1, 0, 1),
    (2, 16, 17, 17, 1, 1, 2, 0, 1),
]


_kernel = kernel_or_skip


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_im2col_f32_matches_ref(tier, shape, rng):
    n, c, h, w, kh, kw, stride, padding, dilation = shape
    im2col = _kernel("im2col_f32", tier)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    got = im2col(x, kh, kw, stride, padding, dilation)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, im2col_ref.im2col_f32(x, kh, kw, stride, padding, dilation))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_col2im_f32_matches_ref(tier, shape, rng):
    n, c, h, w, kh, kw, stride, padding, dilation = shape
    col2im = _kernel("col2im_f32", tier)
    oh, ow = geometry.check_conv_geometry((n, c, h, w), kh, kw, stride, padding, dilation, "t")
    cols = rng.standard_normal((n * oh * ow, c * kh * kw)).astype(np.float32)
    got = col2im(cols, (n, c, h, w), kh, kw, stride, padding, dilation)
    want = im2col_ref.col2im_f32(cols, (n, c, h, w), kh, kw, stride, padding, dilation)
    assert got.shape == (n, c, h, w) and got.dtype == np.float32
    # rtol: overlapping windows are summed in a different order than the ref's tap loop
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tier", ["numba", "c"])
def test_im2col_f32_rejects_float64(tier, rng):
    im2col = _kernel("im2col_f32", tier)
    with pytest.raises(TypeError, match="float32"):
        im2col(rng.standard_normal((1, 1, 4, 4)), 3, 3)


