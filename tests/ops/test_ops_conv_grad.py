"""conv2d: gradient checks over every geometry (stride, padding, dilation, odd sizes, groups,
depthwise with a channel multiplier, batch 1, with and without bias), forward values against an
explicit-loop reference, and the bad-input messages."""
import numpy as np
import pytest

from tinyeff import kernels, ops
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad


def conv2d_loops(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct definition of a grouped 2-D cross-correlation (PyTorch semantics), in float64."""
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, oc, oh, ow))
    per_group = oc // groups
    for o in range(oc):
        g = o // per_group
        for i in range(oh):
            for j in range(ow):
                for ci in range(cg):
                    for p in range(kh):
                        for q in range(kw):
                            out[:, o, i, j] += (xp[:, g * cg + ci, i * stride + p * dilation, j * stride + q * dilation]
                                                * w[o, ci, p, q])
        if b is not None:
            out[:, o] += b[o]
    return out


# (N, C, H, W, OC, K, stride, padding, dilation, groups)
GEOMETRIES = {
    "plain_3x3": (2, 3, 6, 6, 4, 3, 1, 0, 1, 1),
    "stride2_padding1_odd": (2, 3, 7, 7, 4, 3, 2, 1, 1, 1),
    "stride3_padding2_5x5": (1, 2, 9, 9, 3, 5, 3, 2, 1, 1),
    "dilation2_padding2": (2, 2, 7, 6, 3, 3, 1, 2, 2, 1),
    "batch1_1x1": (1, 5, 5, 5, 3, 1, 1, 0, 1, 1),
    "kernel_fills_input": (2, 2, 4, 4, 3, 4, 1, 0, 1, 1),
    "groups2": (2, 4, 5, 5, 6, 3, 1, 1, 1, 2),
    "groups2_stride2": (1, 4, 7, 7, 4, 3, 2, 0, 1, 2),
    "depthwise": (2, 3, 6, 6, 3, 3, 1, 1, 1, 3),
    "depthwise_stride2_odd": (1, 3, 7, 7, 3, 3, 2, 1, 1, 3),
    "depthwise_multiplier2": (2, 3, 5, 5, 6, 3, 1, 1, 1, 3),
    "depthwise_multiplier3_stride2_dilation2": (1, 2, 9, 9, 6, 3, 2, 2, 2, 2),
}


def _inputs(rng, geometry):
    n, c, h, w, oc, k, stride, padding, dilation, groups = geometry
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((oc, c // groups, k, k))
    bias = rng.standard_normal(oc)
    return x, weight, bias, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_conv2d_grad_with_bias(name, rng):
    x, w, b, kw = _inputs(rng, GEOMETRIES[name])
    check_grad(lambda x_, w_, b_: ops.conv2d(x_, w_, b_, **kw), x, w, b)


@pytest.mark.parametrize("name", ["plain_3x3", "stride2_padding1_odd", "groups2", "depthwise_multiplier2"])
def test_conv2d_grad_without_bias(name, rng):
    x, w, _, kw = _inputs(rng, GEOMETRIES[name])
    check_grad(lambda x_, w_: ops.conv2d(x_, w_, None, **kw), x, w)


def test_conv2d_grad_weight_only_when_input_is_constant(rng):
    x, w, b, kw = _inputs(rng, GEOMETRIES["stride2_padding1_odd"])
    check_grad(lambda w_: ops.conv2d(Tensor(x), w_, None, **kw), w)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_conv2d_forward_matches_loops_float64(name, rng):
    x, w, b, kw = _inputs(rng, GEOMETRIES[name])
    got = ops.conv2d(Tensor(x), Tensor(w), Tensor(b), **kw).data
    np.testing.assert_allclose(got, conv2d_loops(x, w, b, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_conv2d_forward_matches_loops_float32(name, rng):
    x, w, b, kw = _inputs(rng, GEOMETRIES[name])
    x, w, b = x.astype(np.float32), w.astype(np.float32), b.astype(np.float32)
    got = ops.conv2d(Tensor(x), Tensor(w), Tensor(b), **kw).data
    assert got.dtype == np.float32
    # float32 sums of at most 75 O(1) products: accumulation order differs from the float64 loops
    np.testing.assert_allclose(got, conv2d_loops(x, w, b, **kw), rtol=1e-5, atol=1e-5)


def test_conv2d_non_square_kernel_grad(rng):
    check_grad(lambda x_, w_: ops.conv2d(x_, w_, None, stride=2, padding=1),
               rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((3, 2, 3, 2)))


def test_conv2d_channel_mismatch_message_names_the_fix():
    x, w = Tensor(np.zeros((1, 3, 8, 8), np.float32)), Tensor(np.zeros((32, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"input has 3 channels but weight expects 1 .*in_channels=3"):
        ops.conv2d(x, w)


def test_conv2d_groups_that_do_not_divide_channels_raise():
    with pytest.raises(ValueError, match="groups=2 must divide"):
        ops.conv2d(Tensor(np.zeros((1, 3, 5, 5))), Tensor(np.zeros((4, 1, 3, 3))), groups=2)


def test_conv2d_kernel_larger_than_padded_input_raises():
    with pytest.raises(ValueError, match="does not fit"):
        ops.conv2d(Tensor(np.zeros((1, 1, 2, 2))), Tensor(np.zeros((1, 1, 3, 3))))


def test_conv2d_wrong_bias_shape_raises():
    with pytest.raises(ValueError, match="bias has shape"):
        ops.conv2d(Tensor(np.zeros((1, 1, 4, 4))), Tensor(np.zeros((2, 1, 3, 3))), Tensor(np.zeros(3)))


def test_conv2d_non_4d_input_raises():
    with pytest.raises(ValueError, match="N x C x H x W"):
        ops.conv2d(Tensor(np.zeros((1, 4, 4))), Tensor(np.zeros((2, 1, 3, 3))))


def test_conv2d_dtype_mismatch_raises():
    with pytest.raises(TypeError, match="cast one of them"):
        ops.conv2d(Tensor(np.zeros((1, 1, 4, 4), np.float64)), Tensor(np.zeros((2, 1, 3, 3), np.float32)))


@pytest.mark.parametrize("lowering", ["direct", "gemm"])
@pytest.mark.parametrize("geom", [(1, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 2), (2, 0, 1)])
def test_float32_lowerings_match_float64_path(geom, lowering, rng, monkeypatch):
    """Both float32 lowerings (direct kernels, im2col + GEMM): values and both gradients must equal
    the float64 im2col path (the one the gradient checks verify)."""
    from tinyeff.kernels.conv import lowering as lowering_mod
    monkeypatch.setenv("TINYEFF_LOWERING", lowering)
    stride, padding, dilation = geom
    x = rng.standard_normal((2, 5, 23, 21)).astype(np.float32)
    w = rng.standard_normal((6, 5, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    results = []
    for dtype in (np.float32, np.float64):
        xt, wt, bt = (Tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b))
        out = ops.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation)
        g = np.cos(np.arange(out.data.size)).reshape(out.shape).astype(dtype)
        (out * Tensor(g)).sum().backward()
        results.append((out.data, xt.grad, wt.grad, bt.grad))
    if lowering == "direct" and kernels.available("conv2d_f32", "c"):
        assert lowering_mod.choose("forward", (2, 5, 23, 21, 6, 3, 3, *geom), None) == "direct"
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-3)


@pytest.mark.parametrize("lowering", ["direct", "gemm"])
@pytest.mark.parametrize("stride", [2, 3])
def test_float32_strided_1x1_matches_float64_path(stride, lowering, rng, monkeypatch):
    """A strided 1x1 float32 convolution runs at stride 1 on the input's subsample; its values and
    gradients (the input gradient scattered back, zero between the sampled positions) must equal
    the float64 im2col path."""
    monkeypatch.setenv("TINYEFF_LOWERING", lowering)
    x = rng.standard_normal((2, 5, 11, 8)).astype(np.float32)
    w = rng.standard_normal((7, 5, 1, 1)).astype(np.float32)
    results = []
    for dtype in (np.float32, np.float64):
        xt, wt = (Tensor(a.astype(dtype), requires_grad=True) for a in (x, w))
        out = ops.conv2d(xt, wt, stride=stride)
        g = np.cos(np.arange(out.data.size)).reshape(out.shape).astype(dtype)
        (out * Tensor(g)).sum().backward()
        results.append((out.data, xt.grad, wt.grad))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-3)
