"""Direct dense convolution (csrc/dconv.c): forward and weight gradient of every tier against ref.

The shapes break the kernel's tiling on purpose: output planes shorter and longer than one register
tile (96 positions), channel counts around the 4-channel block, tap counts around the 6-tap block,
batch 1, stride 2 (phase planes), dilation and padding larger than the kernel's reach.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeff import kernels
from tinyeff.kernels.conv.lowering import flipped_weight
from tinyeff.kernels.conv.spec import check_conv_args

# (N, C, H, W, OC, KH, KW, stride, padding, dilation)
SHAPES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1),
    (2, 3, 9, 7, 5, 3, 3, 1, 1, 1),
    (1, 1, 28, 28, 32, 3, 3, 1, 0, 1),
    (3, 4, 11, 13, 7, 3, 3, 2, 1, 1),
    (2, 5, 10, 10, 6, 3, 3, 1, 2, 2),
    (1, 7, 6, 6, 9, 5, 5, 1, 0, 1),
    (2, 8, 7, 7, 17, 1, 1, 2, 0, 1),
    (2, 6, 17, 19, 3, 3, 2, 1, 1, 1),
    (1, 16, 28, 28, 16, 3, 3, 1, 1, 1),
]


def _kernel(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


def _operands(rng, shape, scale=1.0):
    n, c, h, w, oc, kh, kw, *_ = shape
    x = (scale * rng.standard_normal((n, c, h, w))).astype(np.float32)
    wt = rng.standard_normal((oc, c, kh, kw)).astype(np.float32)
    return x, wt, rng.standard_normal(oc).astype(np.float32)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_conv2d_c_matches_ref(shape, relu, rng):
    conv = _kernel("conv2d_f32", "c")
    x, w, b = _operands(rng, shape)
    stride, padding, dilation = shape[7:]
    got = conv(x, w, b, stride, padding, dilation, relu)
    want = kernels.get("conv2d_f32", "ref")(x, w, b, stride, padding, dilation, relu)
    assert got.shape == want.shape and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(w[0].size))


@pytest.mark.parametrize("shape", SHAPES)
def test_conv2d_wgrad_c_matches_ref(shape, rng):
    wgrad = _kernel("conv2d_wgrad_f32", "c")
    x, w, _ = _operands(rng, shape)
    stride, padding, dilation = shape[7:]
    oh, ow = check_conv_args(x, w, None, stride, padding, dilation, "t")
    g = rng.standard_normal((x.shape[0], w.shape[0], oh, ow)).astype(np.float32)
    kh, kw = w.shape[2:]
    got = wgrad(x, g, kh, kw, stride, padding, dilation)
    want = kernels.get("conv2d_wgrad_f32", "ref")(x, g, kh, kw, stride, padding, dilation)
    assert got.shape == w.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(x.shape[0] * oh * ow))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 9), oc=st.integers(1, 10), h=st.integers(3, 30),
       k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2), padding=st.integers(0, 2),
       scale=st.sampled_from([1e-3, 1.0, 1e3]), seed=st.integers(0, 2**31))
def test_direct_conv_random_shapes_and_ranges(n, c, oc, h, k, stride, padding, scale, seed):
    if not kernels.available("conv2d_f32", "c"):
        return
    rng = np.random.default_rng(seed)
    shape = (n, c, h, h + 1, oc, k, k, stride, padding, 1)
    if h + 2 * padding < k:
        return
    x, w, b = _operands(rng, shape, scale)
    want = kernels.get("conv2d_f32", "ref")(x, w, b * scale, stride, padding)
    got = kernels.get("conv2d_f32", "c")(x, w, b * scale, stride, padding)
    tol = 1e-4 * scale * np.sqrt(w[0].size) * (1 + np.abs(w).max())
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=tol)
    g = rng.standard_normal(want.shape).astype(np.float32)
    np.testing.assert_allclose(kernels.get("conv2d_wgrad_f32", "c")(x, g, k, k, stride, padding),
                               kernels.get("conv2d_wgrad_f32", "ref")(x, g, k, k, stride, padding),
                               rtol=1e-4, atol=1e-4 * scale * np.sqrt(g[:, 0].size) * 4)


def test_flipped_weight_gives_the_input_gradient(rng):
    """For stride 1, grad_x = full correlation of grad_out with the flipped, transposed weight."""
    x, w, _ = _operands(rng, (2, 3, 8, 9, 4, 3, 3, 1, 1, 1))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    conv = kernels.get("conv2d_f32", "ref")
    g = rng.standard_normal(conv(x64, w64, None, 1, 1).shape)
    # <conv(x), g> is linear in x; its gradient is grad_x, checked against the identity.
    grad_x = conv(g, flipped_weight(w64), None, 1, 3 - 1 - 1)
    eps, idx = 1e-6, (1, 2, 3, 4)
    bump = np.zeros_like(x64)
    bump[idx] = eps
    numeric = (np.sum(conv(x64 + bump, w64, None, 1, 1) * g) - np.sum(conv(x64, w64, None, 1, 1) * g)) / eps
    assert abs(numeric - grad_x[idx]) < 1e-5 * (1 + abs(numeric))


def test_conv2d_rejects_bad_operands(rng):
    conv = kernels.get("conv2d_f32")
    x = np.zeros((1, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match="same C"):
        conv(x, np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(TypeError, match="cast"):
        conv(x, np.zeros((2, 3, 3, 3), np.float64))
    with pytest.raises(ValueError, match="does not fit"):
        conv(x, np.zeros((2, 3, 7, 7), np.float32))
    with pytest.raises(ValueError, match="grad_out"):
        kernels.get("conv2d_wgrad_f32")(x, np.zeros((1, 2, 4, 4), np.float32), 3, 3)
