"""Depthwise convolution, the contract: forward, input gradient and weight gradient, NumPy reference.

Layout: x (N, C, H, W), w (OC, 1, KH, KW) with OC = M * C (a channel multiplier M >= 1; output
channel o reads input channel o // M), square stride, padding and dilation. A depthwise conv is
KH*KW multiply-adds per output, far too few for a GEMM to pay off, so the reference is one shifted
multiply-add of whole planes per kernel tap; faster tiers loop over each output plane directly.
Float tiers accumulate in float32 in another order than the reference: they match it within
float32 rounding (tests/kernels/test_depthwise.py).
"""
import numpy as np

from tinyeff.kernels.ref.im2col import check_conv_geometry
from tinyeff.kernels.registry import register


def check_depthwise_args(x, w, stride, padding, dilation, name):
    """Validate a depthwise call once; return (OH, OW). Raises ValueError/TypeError naming the fix."""
    if x.ndim != 4 or w.ndim != 4 or w.shape[1] != 1 or w.shape[0] % max(1, x.shape[1]) or w.shape[0] == 0:
        raise ValueError(f"{name}: need x (N, C, H, W) and w (M*C, 1, KH, KW); got x {x.shape} and w {w.shape}")
    if x.dtype != w.dtype:
        raise TypeError(f"{name}: x is {x.dtype} but w is {w.dtype}; cast one of them")
    return check_conv_geometry(x.shape, w.shape[2], w.shape[3], stride, padding, dilation, name)


def _taps(kh, kw, stride, dilation, oh, ow):
    """(i, j, row slice, col slice) of every tap into the padded input."""
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dilation, j * dilation
            yield i, j, slice(h0, h0 + stride * (oh - 1) + 1, stride), slice(w0, w0 + stride * (ow - 1) + 1, stride)


def _padded_repeated(x, padding, mult):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x
    return np.repeat(xp, mult, axis=1) if mult > 1 else xp          # output channel o reads input o // M


@register("dwconv2d_f32", tier="ref")
def dwconv2d_f32(x, w, stride=1, padding=0, dilation=1):
    """Depthwise convolution of x (N, C, H, W) with w (M*C, 1, KH, KW) -> (N, M*C, OH, OW), x's dtype."""
    oh, ow = check_depthwise_args(x, w, stride, padding, dilation, "dwconv2d_f32")
    oc, _, kh, kw = w.shape
    xs = _padded_repeated(x, padding, oc // x.shape[1])
    out = np.zeros((x.shape[0], oc, oh, ow), dtype=x.dtype)
    for i, j, rows, cols in _taps(kh, kw, stride, dilation, oh, ow):
        out += xs[:, :, rows, cols] * w[:, 0, i, j].reshape(1, oc, 1, 1)
    return out


@register("dwconv2d_xgrad_f32", tier="ref")
def dwconv2d_xgrad_f32(g, w, x_shape, stride=1, padding=0, dilation=1):
    """Input gradient: grad_out g (N, M*C, OH, OW) and w -> grad_x of shape ``x_shape`` (N, C, H, W)."""
    n, c, h, wd = x_shape
    oh, ow = check_depthwise_args(np.empty((0, c, h, wd), g.dtype), w, stride, padding, dilation,
                                  "dwconv2d_xgrad_f32")
    if g.shape != (n, w.shape[0], oh, ow):
        raise ValueError(f"dwconv2d_xgrad_f32: grad_out has shape {g.shape}, expected {(n, w.shape[0], oh, ow)}")
    oc, _, kh, kw = w.shape
    gxs = np.zeros((n, oc, h + 2 * padding, wd + 2 * padding), dtype=g.dtype)
    for i, j, rows, cols in _taps(kh, kw, stride, dilation, oh, ow):
        gxs[:, :, rows, cols] += g * w[:, 0, i, j].reshape(1, oc, 1, 1)
    if oc > c:
        gxs = gxs.reshape(n, c, oc // c, *gxs.shape[2:]).sum(axis=2)
    return np.ascontiguousarray(gxs[:, :, padding:padding + h, padding:padding + wd])


@register("dwconv2d_wgrad_f32", tier="ref")
def dwconv2d_wgrad_f32(x, g, kh, kw, stride=1, padding=0, dilation=1):
    """Weight gradient: x (N, C, H, W) and grad_out g (N, M*C, OH, OW) -> (M*C, 1, KH, KW)."""
    oc = g.shape[1]
    oh, ow = check_depthwise_args(x, np.empty((oc, 1, kh, kw), x.dtype), stride, padding, dilation,
                                  "dwconv2d_wgrad_f32")
    if g.shape != (x.shape[0], oc, oh, ow) or g.dtype != x.dtype:
        raise ValueError(f"dwconv2d_wgrad_f32: grad_out is {g.dtype} {g.shape}, expected {x.dtype} "
                         f"{(x.shape[0], oc, oh, ow)}")
    xs = _padded_repeated(x, padding, oc // x.shape[1])
    gw = np.empty((oc, 1, kh, kw), dtype=x.dtype)
    for i, j, rows, cols in _taps(kh, kw, stride, dilation, oh, ow):
        gw[:, 0, i, j] = np.einsum("nchw,nchw->c", g, xs[:, :, rows, cols])
    return gw
