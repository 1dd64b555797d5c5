"""Dense float32 kernels (im2col, col2im, max-pool and its backward): every tier against ref."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.layout import geometry
from tinyeff.kernels.im2col import spec as im2col_ref
from tinyeff.kernels.pad import spec as pad_ref
from tinyeff.kernels.pool import spec as pool_ref
from tinyeff.testing import c_paths, kernel_or_skip

TIERS = ["ref", "numba", "c"]
POOL_TIERS = ["ref", "numba"] + c_paths()      # the 2x2 max-pool has a body per ISA path

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


@pytest.mark.parametrize("tier", ["ref"] + c_paths())        # a vector body per ISA path
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (3, 16, 32, 32), (1, 2, 0, 4), (2, 1, 3, 0),
                                   (1, 2, 3, 17), (1, 1, 2, 33)])   # rows around 4/8/16 lanes, H = 0, W = 0
@pytest.mark.parametrize("padding", [0, 1, 2, 5, 9])
def test_pad2d_f32_matches_ref(tier, shape, padding, rng):
    pad = _kernel("pad2d_f32", tier)
    x = rng.standard_normal(shape).astype(np.float32)
    got = pad(x[:, :, ::-1] if shape[2] else x, padding)     # a non-contiguous view too
    want = pad_ref.pad2d_f32(np.ascontiguousarray(x[:, :, ::-1] if shape[2] else x), padding)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("tier", ["ref", "c"])
def test_pad2d_f32_rejects_bad_input(tier):
    pad = _kernel("pad2d_f32", tier)
    with pytest.raises(ValueError, match="padding >= 0"):
        pad(np.zeros((2, 3), np.float32), 1)
    with pytest.raises(ValueError, match="padding >= 0"):
        pad(np.zeros((1, 1, 2, 2), np.float32), -1)
