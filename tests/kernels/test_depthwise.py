"""Depthwise convolution kernels: every tier against the NumPy reference (spec.py), forward and both
gradients, across strides, padding, dilation, channel multipliers, odd sizes and batch 1."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.depthwise import spec

SHAPES = [  # (N, C, H, W, multiplier, K, stride, padding, dilation)
    (1, 1, 1, 1, 1, 1, 1, 0, 1),
    (2, 3, 7, 5, 1, 3, 1, 1, 1),
    (1, 8, 9, 9, 1, 3, 2, 1, 1),
    (2, 5, 11, 6, 1, 5, 2, 2, 1),       # EfficientNet's 5x5 stride 2
    (1, 4, 8, 8, 2, 3, 1, 1, 1),        # channel multiplier 2
    (2, 3, 10, 9, 1, 3, 1, 2, 2),       # dilation 2
    (1, 2, 4, 4, 1, 3, 3, 0, 1),        # stride larger than the padding
    (3, 17, 13, 13, 1, 3, 1, 1, 1),
]
NAMES = ["dwconv2d_f32", "dwconv2d_xgrad_f32", "dwconv2d_wgrad_f32"]


def case(rng, n, c, h, w, mult, k, stride, padding, dilation):
    from tinyeff.kernels.ref.im2col import check_conv_geometry
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((c * mult, 1, k, k)).astype(np.float32)
    oh, ow = check_conv_geometry(x.shape, k, k, stride, padding, dilation, "test")
    g = rng.standard_normal((n, c * mult, oh, ow)).astype(np.float32)
    return x, wt, g


def tier_or_skip(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


@pytest.mark.parametrize("tier", ["c"])
@pytest.mark.parametrize("geometry", SHAPES, ids=[str(s) for s in SHAPES])
def test_depthwise_tier_matches_reference(tier, geometry, rng):
    n, c, h, w, mult, k, stride, padding, dilation = geometry
    x, wt, g = case(rng, *geometry)
    geom = (stride, padding, dilation)
    # rtol 1e-5: float32 sums of at most K*K (forward, input grad) or N*OH*OW (weight grad) terms,
    # added in another order than the reference's whole-plane passes
    np.testing.assert_allclose(tier_or_skip(NAMES[0], tier)(x, wt, *geom), spec.dwconv2d_f32(x, wt, *geom),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tier_or_skip(NAMES[1], tier)(g, wt, x.shape, *geom),
                               spec.dwconv2d_xgrad_f32(g, wt, x.shape, *geom), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tier_or_skip(NAMES[2], tier)(x, g, k, k, *geom),
                               spec.dwconv2d_wgrad_f32(x, g, k, k, *geom), rtol=1e-4, atol=1e-4)


def test_reference_gradients_are_the_adjoints_of_the_forward(rng):
    """<conv(x, w), g> = <x, xgrad(g, w)> = <w, wgrad(x, g)>: the three functions agree on one bilinear form."""
    x, wt, g = case(rng, 2, 3, 7, 6, 2, 3, 2, 1, 1)
    x, wt, g = x.astype(np.float64), wt.astype(np.float64), g.astype(np.float64)
    form = np.sum(spec.dwconv2d_f32(x, wt, 2, 1, 1) * g)
    assert np.isclose(form, np.sum(x * spec.dwconv2d_xgrad_f32(g, wt, x.shape, 2, 1, 1)))
    assert np.isclose(form, np.sum(wt * spec.dwconv2d_wgrad_f32(x, g, 3, 3, 2, 1, 1)))


def test_extremes_stay_finite_and_zero_weights_give_zero(rng):
    kernel = tier_or_skip("dwconv2d_f32", "c")
    x = np.full((1, 2, 5, 5), 1e30, np.float32)
    assert np.all(kernel(x, np.zeros((2, 1, 3, 3), np.float32), 1, 1, 1) == 0)


def test_bad_weight_shape_names_the_fix():
    with pytest.raises(ValueError, match=r"w \(M\*C, 1, KH, KW\)"):
        spec.dwconv2d_f32(np.zeros((1, 3, 4, 4), np.float32), np.zeros((4, 1, 3, 3), np.float32))


def test_c_tier_refuses_float64():
    kernel = tier_or_skip("dwconv2d_f32", "c")
    with pytest.raises(TypeError, match="float32"):
        kernel(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)))
