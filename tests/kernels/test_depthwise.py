"""Depthwise convolution: properties of the reference beyond the registry-wide parity test
(tests/kernels/test_parity.py runs every tier on the spec's cases)."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.depthwise import spec


def arrays(rng, n, c, h, w, mult, k, oh, ow):
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((c * mult, 1, k, k)),
            rng.standard_normal((n, c * mult, oh, ow)))


def test_gradients_are_the_adjoints_of_the_forward(rng):
    """<conv(x, w), g> = <x, xgrad(g, w)> = <w, wgrad(x, g)>: the three kernels agree on one bilinear form."""
    x, w, g = arrays(rng, 2, 3, 7, 6, 2, 3, 4, 3)            # stride 2, padding 1: OH 4, OW 3
    form = np.sum(spec.dwconv2d_f32(x, w, 2, 1, 1) * g)
    assert np.isclose(form, np.sum(x * spec.dwconv2d_xgrad_f32(g, w, x.shape, 2, 1, 1)))
    assert np.isclose(form, np.sum(w * spec.dwconv2d_wgrad_f32(x, g, 3, 3, 2, 1, 1)))


def test_equals_a_grouped_dense_conv(rng):
    """Depthwise = the dense reference conv applied to each channel alone."""
    x, w, _ = arrays(rng, 2, 3, 6, 6, 1, 3, 6, 6)
    dense = kernels.get("conv2d_f32", "ref")
    expected = np.concatenate([dense(x[:, k:k + 1], w[k:k + 1], None, 1, 1, 1) for k in range(3)], axis=1)
    np.testing.assert_allclose(spec.dwconv2d_f32(x, w, 1, 1, 1), expected, rtol=1e-12)


def test_bad_weight_shape_names_the_fix():
    with pytest.raises(ValueError, match=r"w \(M\*C, 1, KH, KW\)"):
        spec.dwconv2d_f32(np.zeros((1, 3, 4, 4), np.float32), np.zeros((4, 1, 3, 3), np.float32))


def test_faster_tier_refuses_float64():
    if not kernels.available("dwconv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("dwconv2d_f32", "c"))
    with pytest.raises(TypeError, match="float32"):
        kernels.get("dwconv2d_f32", "c")(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)))
