"""Layers in float32 against straightforward references written here (explicit loops and direct
formulas, computed in float64): forward outputs, parameter gradients and input gradients of Conv2d,
Linear, BatchNorm2d (train and eval, running statistics), MaxPool2d, AvgPool2d and cross-entropy.

Tolerance: rtol=1e-5 as the issue asks, plus atol=1e-5 because float32 sums of up to a few hundred
O(1) terms carry absolute rounding of that size where the true value is near zero.
"""
import numpy as np
import pytest

import tinyeff
from tinyeff import nn, ops
from tinyeff.tensor import Tensor

RTOL, ATOL = 1e-5, 1e-5


def close(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def f32(rng, shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def run(layer, x, grad_out_seed=0):
    """Forward ``x`` (float32 array) through ``layer`` and backward a fixed random upstream gradient."""
    xt = Tensor(x, requires_grad=True)
    out = layer(xt)
    g = np.random.default_rng(grad_out_seed).uniform(-1, 1, out.shape).astype(np.float32)
    out.backward(g)
    return out.data, g, xt.grad


# --- Conv2d ------------------------------------------------------------------------------------
def conv_reference(x, w, b, g, stride, padding, dilation, groups):
    """Forward, grad_x, grad_w and grad_b of a grouped convolution by explicit loops over the output
    pixels and kernel taps, in float64."""
    x, w, g = x.astype(np.float64), w.astype(np.float64), g.astype(np.float64)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    og = oc // groups
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = g.shape[2], g.shape[3]
    out, gxp, gw = np.zeros((n, oc, oh, ow)), np.zeros_like(xp), np.zeros_like(w)
    for o in range(oc):
        first = (o // og) * cg                       # first input channel of o's group
        for i in range(oh):
            for j in range(ow):
                for p in range(kh):
                    for q in range(kw):
                        r, s = i * stride + p * dilation, j * stride + q * dilation
                        patch = xp[:, first:first + cg, r, s]                     # (N, cg)
                        out[:, o, i, j] += patch @ w[o, :, p, q]
                        gw[o, :, p, q] += g[:, o, i, j] @ patch
                        gxp[:, first:first + cg, r, s] += np.outer(g[:, o, i, j], w[o, :, p, q])
    out += b.reshape(1, -1, 1, 1)
    gx = gxp[:, :, padding:padding + h, padding:padding + wd]
    return out, gx, gw, g.sum(axis=(0, 2, 3))


CONVS = {
    # name: (N, C, H, W, OC, K, stride, padding, dilation, groups)
    "3x3": (2, 3, 8, 8, 4, 3, 1, 1, 1, 1),
    "stride2_odd": (1, 3, 9, 9, 5, 3, 2, 0, 1, 1),
    "dilation2": (2, 2, 9, 7, 3, 3, 1, 2, 2, 1),
    "5x5_stride2_padding2": (2, 2, 11, 11, 4, 5, 2, 2, 1, 1),
    "groups2": (2, 4, 7, 7, 6, 3, 1, 1, 1, 2),
    "depthwise": (2, 4, 7, 7, 4, 3, 2, 1, 1, 4),
    "depthwise_multiplier2": (1, 3, 6, 6, 6, 3, 1, 1, 1, 3),
    "pointwise": (3, 8, 5, 5, 7, 1, 1, 0, 1, 1),
}


@pytest.mark.parametrize("name", CONVS)
def test_conv2d_layer_matches_loop_reference_float32(name, rng):
    n, c, h, w, oc, k, stride, padding, dilation, groups = CONVS[name]
    layer = nn.Conv2d(c, oc, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
    layer.weight.data = f32(rng, layer.weight.shape, 0.5)
    layer.bias.data = f32(rng, (oc,))
    x = f32(rng, (n, c, h, w))
    out, g, gx = run(layer, x)
    ref_out, ref_gx, ref_gw, ref_gb = conv_reference(x, layer.weight.data, layer.bias.data, g, stride, padding,
                                                     dilation, groups)
    assert out.dtype == np.float32 and layer.weight.grad.dtype == np.float32
    close(out, ref_out, "forward")
    close(gx, ref_gx, "grad_x")
    close(layer.weight.grad, ref_gw, "grad_weight")
    close(layer.bias.grad, ref_gb, "grad_bias")


def test_conv2d_layer_without_bias_has_no_bias_parameter(rng):
    layer = nn.Conv2d(2, 3, 3, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    x = f32(rng, (1, 2, 5, 5))
    out, g, _ = run(layer, x)
    ref_out, _, ref_gw, _ = conv_reference(x, layer.weight.data, np.zeros(3), g, 1, 0, 1, 1)
    close(out, ref_out, "forward")
    close(layer.weight.grad, ref_gw, "grad_weight")


def test_conv2d_layer_channel_mismatch_message():
    layer = nn.Conv2d(1, 32, 3)
    with pytest.raises(ValueError, match=r"input has 3 channels but weight expects 1 \(weight shape \(32, 1, 3, 3\)"):
        layer(Tensor(np.zeros((2, 3, 8, 8), np.float32)))


# --- Linear ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,fin,fout", [(1, 3, 2), (7, 16, 5), (4, 33, 10)])
def test_linear_layer_matches_formula_float32(n, fin, fout, rng):
    layer = nn.Linear(fin, fout)
    layer.bias.data = f32(rng, (fout,))
    x = f32(rng, (n, fin))
    out, g, gx = run(layer, x)
    w, b = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    close(out, x64 @ w.T + b, "forward")
    close(layer.weight.grad, g64.T @ x64, "grad_weight")
    close(layer.bias.grad, g64.sum(axis=0), "grad_bias")
    close(gx, g64 @ w, "grad_x")


# --- BatchNorm2d -------------------------------------------------------------------------------
def bn_train_reference(x, gamma, beta, g, eps):
    """Training-mode batch norm by the textbook formulas (Ioffe & Szegedy 2015, Alg. 1 and its
    gradient), per channel over (N, H, W), in float64."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    x_hat = (x - mu) / np.sqrt(var + eps)
    out = gamma.reshape(1, -1, 1, 1) * x_hat + beta.reshape(1, -1, 1, 1)
    g_hat = g * gamma.reshape(1, -1, 1, 1)
    g_var = (g_hat * (x - mu) * -0.5 * (var + eps) ** -1.5).sum(axis=(0, 2, 3), keepdims=True)
    g_mu = (-g_hat / np.sqrt(var + eps)).sum(axis=(0, 2, 3), keepdims=True) \
        + g_var * (-2 * (x - mu)).mean(axis=(0, 2, 3), keepdims=True)
    gx = g_hat / np.sqrt(var + eps) + g_var * 2 * (x - mu) / m + g_mu / m
    return out, gx, (g * x_hat).sum(axis=(0, 2, 3)), g.sum(axis=(0, 2, 3)), mu.ravel(), var.ravel(), m


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (1, 2, 3, 3), (8, 5, 1, 1)])
def test_batchnorm2d_train_matches_textbook_formulas_float32(shape, rng):
    c = shape[1]
    layer = nn.BatchNorm2d(c)
    layer.weight.data = rng.uniform(0.5, 1.5, c).astype(np.float32)
    layer.bias.data = f32(rng, (c,))
    x = f32(rng, shape, 2.0) + 1.0
    out, g, gx = run(layer, x)
    ref_out, ref_gx, ref_gw, ref_gb, mu, var, m = bn_train_reference(
        x, layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64), g, layer.eps)
    close(out, ref_out, "forward")
    close(gx, ref_gx, "grad_x")
    close(layer.weight.grad, ref_gw, "grad_weight")
    close(layer.bias.grad, ref_gb, "grad_bias")
    # running statistics start at (0, 1); momentum 0.1; running_var takes the unbiased variance
    close(layer.running_mean, 0.1 * mu, "running_mean")
    close(layer.running_var, 0.9 * 1.0 + 0.1 * var * m / (m - 1), "running_var")


def test_batchnorm2d_running_stats_after_two_batches(rng):
    layer = nn.BatchNorm2d(2, momentum=0.25)
    a, b = f32(rng, (3, 2, 4, 4)) + 2.0, f32(rng, (3, 2, 4, 4), 3.0) - 1.0
    layer(Tensor(a))
    layer(Tensor(b))
    m = 3 * 4 * 4
    mean_a, mean_b = a.astype(np.float64).mean(axis=(0, 2, 3)), b.astype(np.float64).mean(axis=(0, 2, 3))
    uvar_a = a.astype(np.float64).var(axis=(0, 2, 3)) * m / (m - 1)
    uvar_b = b.astype(np.float64).var(axis=(0, 2, 3)) * m / (m - 1)
    close(layer.running_mean, 0.75 * (0.75 * 0.0 + 0.25 * mean_a) + 0.25 * mean_b, "running_mean")
    close(layer.running_var, 0.75 * (0.75 * 1.0 + 0.25 * uvar_a) + 0.25 * uvar_b, "running_var")


def test_batchnorm2d_eval_uses_running_stats_float32(rng):
    layer = nn.BatchNorm2d(3).eval()
    layer.weight.data = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    layer.bias.data = f32(rng, (3,))
    layer.set_buffer("running_mean", f32(rng, (3,)))
    layer.set_buffer("running_var", rng.uniform(0.5, 2.0, 3).astype(np.float32))
    before = (layer.running_mean.copy(), layer.running_var.copy())
    x = f32(rng, (2, 3, 4, 4))
    out, g, gx = run(layer, x)
    gamma, beta = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    mean, var = before[0].astype(np.float64), before[1].astype(np.float64)
    scale = (gamma / np.sqrt(var + layer.eps)).reshape(1, -1, 1, 1)
    x_hat = (x - mean.reshape(1, -1, 1, 1)) / np.sqrt(var + layer.eps).reshape(1, -1, 1, 1)
    close(out, x_hat * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1), "forward")
    close(gx, g * scale, "grad_x")
    close(layer.weight.grad, (g * x_hat).sum(axis=(0, 2, 3)), "grad_weight")
    close(layer.bias.grad, g.sum(axis=(0, 2, 3)), "grad_bias")
    np.testing.assert_array_equal(layer.running_mean, before[0])
    np.testing.assert_array_equal(layer.running_var, before[1])


def test_batchnorm1d_train_normalizes_each_feature(rng):
    layer = nn.BatchNorm1d(4)
    x = f32(rng, (16, 4), 3.0) + 5.0
    out = layer(Tensor(x)).data
    close(out.mean(axis=0), np.zeros(4), "mean")
    np.testing.assert_allclose(out.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-5), rtol=1e-4)


# --- pooling -----------------------------------------------------------------------------------
POOLS = {"k2_s2": (2, 2, 0), "k3_s2_p1": (3, 2, 1), "k3_s1": (3, 1, 0), "k2_s1_p1": (2, 1, 1)}


def windows(shape, k, stride, padding):
    """Yield (i, j, rows, cols): the input rows/cols of output (i, j), clipped to the input."""
    h, w = shape[2], shape[3]
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * stride - padding, j * stride - padding
            yield i, j, slice(max(r0, 0), min(r0 + k, h)), slice(max(c0, 0), min(c0 + k, w))


@pytest.mark.parametrize("name", POOLS)
@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (1, 1, 6, 5)])
def test_maxpool2d_layer_matches_loops_float32(name, shape, rng):
    k, stride, padding = POOLS[name]
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01).astype(np.float32)   # no ties
    out, g, gx = run(nn.MaxPool2d(k, stride, padding), x)
    ref_out, ref_gx = np.zeros(out.shape), np.zeros(shape)
    for i, j, rows, cols in windows(shape, k, stride, padding):
        for n in range(shape[0]):
            for c in range(shape[1]):
                win = x[n, c, rows, cols]
                r, s = np.unravel_index(np.argmax(win), win.shape)
                ref_out[n, c, i, j] = win[r, s]
                ref_gx[n, c, rows.start + r, cols.start + s] += g[n, c, i, j]
    close(out, ref_out, "forward")
    close(gx, ref_gx, "grad_x")


@pytest.mark.parametrize("name", POOLS)
@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (1, 1, 6, 5)])
def test_avgpool2d_layer_matches_loops_float32(name, shape, rng):
    k, stride, padding = POOLS[name]
    x = f32(rng, shape)
    out, g, gx = run(nn.AvgPool2d(k, stride, padding), x)
    ref_out, ref_gx = np.zeros(out.shape), np.zeros(shape)
    for i, j, rows, cols in windows(shape, k, stride, padding):
        ref_out[:, :, i, j] = x[:, :, rows, cols].astype(np.float64).sum(axis=(2, 3)) / (k * k)  # pads count
        ref_gx[:, :, rows, cols] += g[:, :, i:i + 1, j:j + 1] / (k * k)
    close(out, ref_out, "forward")
    close(gx, ref_gx, "grad_x")


def test_adaptive_avg_pool_is_global_mean(rng):
    x = f32(rng, (2, 3, 5, 5))
    close(nn.AdaptiveAvgPool2d(1)(Tensor(x)).data, x.astype(np.float64).mean(axis=(2, 3), keepdims=True), "forward")


# --- cross-entropy -----------------------------------------------------------------------------
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_matches_formula_float32(smoothing, rng):
    n, k = 8, 10
    logits, labels = f32(rng, (n, k), 3.0), rng.integers(0, k, n)
    xt = Tensor(logits, requires_grad=True)
    loss = ops.cross_entropy(xt, labels, label_smoothing=smoothing)
    loss.backward()
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    target = np.full((n, k), smoothing / k)
    target[np.arange(n), labels] += 1 - smoothing
    close(loss.data, -(target * np.log(p)).sum() / n, "loss")
    close(xt.grad, (p - target) / n, "grad_logits")
    assert xt.grad.dtype == np.float32


def test_layers_seeded_init_is_reproducible():
    tinyeff.manual_seed(3)
    a = nn.Conv2d(2, 4, 3).weight.data.copy()
    tinyeff.manual_seed(3)
    np.testing.assert_array_equal(nn.Conv2d(2, 4, 3).weight.data, a)
