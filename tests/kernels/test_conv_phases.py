"""The strided input gradient as one stride-1 correlation per phase (kernels/conv/phases.py).

Checked against g @ w2d followed by col2im (the im2col lowering's input gradient), in float64 on
the reference convolution and in float32 on the direct C kernel. The shapes: stride 2 and 3,
padding 0, 1 and larger than the kernel's reach, kernels smaller than the stride (phases no tap
reaches get zero), odd and even sizes, non-square kernels.
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.conv.phases import strided_input_grad
from tinyeff.kernels.layout.geometry import check_conv_geometry

# (N, C, H, W, OC, KH, KW, stride, padding)
SHAPES = [(2, 3, 32, 32, 5, 3, 3, 2, 1), (1, 4, 11, 13, 6, 3, 3, 2, 1), (2, 2, 10, 9, 3, 1, 1, 2, 0),
          (1, 3, 12, 12, 4, 5, 5, 3, 2), (1, 2, 7, 8, 3, 3, 3, 2, 0), (1, 2, 9, 9, 3, 4, 4, 2, 3),
          (1, 1, 6, 6, 2, 2, 2, 3, 0), (2, 3, 9, 10, 4, 3, 2, 2, 1)]


def _col2im_input_grad(g, w, x_shape, stride, padding):
    oc, _, kh, kw = w.shape
    gcols = g.transpose(0, 2, 3, 1).reshape(-1, oc) @ w.reshape(oc, -1)
    return kernels.get("col2im_f32", "ref")(gcols, x_shape, kh, kw, stride, padding, 1)


@pytest.mark.parametrize("tier", ["ref", "best"])
@pytest.mark.parametrize("shape", SHAPES)
def test_phases_match_col2im(shape, tier, rng):
    n, c, h, wd, oc, kh, kw, stride, padding = shape
    dtype = np.float64 if tier == "ref" else np.float32
    conv = kernels.get("conv2d_f32", "ref" if tier == "ref" else None)
    oh, ow = check_conv_geometry((n, c, h, wd), kh, kw, stride, padding, 1, "t")
    w = rng.standard_normal((oc, c, kh, kw)).astype(dtype)
    g = rng.standard_normal((n, oc, oh, ow)).astype(dtype)
    got = strided_input_grad(g, w, (n, c, h, wd), stride, padding, conv)
    want = _col2im_input_grad(g.astype(np.float64), w.astype(np.float64), (n, c, h, wd), stride, padding)
    assert got.shape == (n, c, h, wd) and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 if tier == "best" else 1e-10)
