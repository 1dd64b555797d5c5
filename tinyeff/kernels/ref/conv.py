"""Reference dense convolution kernels: the forward pass and the weight gradient, as whole ops.

``conv2d_f32`` and ``conv2d_wgrad_f32`` are what a direct convolution tier (csrc/dconv.c) must
match; here they are im2col + one GEMM, the lowering ``ops/conv.py`` uses when no faster tier is
on. The input gradient needs no kernel of its own for stride 1: it is ``conv2d_f32`` of the output
gradient with the flipped, transposed weight (see ``flipped_weight``).
"""
import numpy as np

from tinyeff.kernels.ref.im2col import check_conv_geometry, im2col_f32
from tinyeff.kernels.registry import register


def check_conv_args(x, w, bias, stride, padding, dilation, name):
    """Validate a dense conv call once; return (OH, OW). Raises ValueError/TypeError naming the fix."""
    if w.ndim != 4 or x.ndim != 4 or w.shape[1] != x.shape[1]:
        raise ValueError(f"{name}: need x (N, C, H, W) and w (OC, C, KH, KW) with the same C; got "
                         f"x {x.shape} and w {w.shape}")
    if x.dtype != w.dtype:
        raise TypeError(f"{name}: x is {x.dtype} but w is {w.dtype}; cast one of them")
    if bias is not None and bias.shape != (w.shape[0],):
        raise ValueError(f"{name}: bias has shape {bias.shape}, expected ({w.shape[0]},)")
    return check_conv_geometry(x.shape, w.shape[2], w.shape[3], stride, padding, dilation, name)


def check_wgrad_args(x, g, kh, kw, stride, padding, dilation, name):
    """Validate a weight-gradient call once; return (OH, OW)."""
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, name)
    if g.ndim != 4 or g.shape[0] != x.shape[0] or g.shape[2:] != (oh, ow):
        raise ValueError(f"{name}: grad_out has shape {g.shape}, expected (N={x.shape[0]}, OC, "
                         f"{oh}, {ow}) for input {x.shape} and a {kh}x{kw} kernel")
    if g.dtype != x.dtype:
        raise TypeError(f"{name}: grad_out is {g.dtype} but x is {x.dtype}; cast one of them")
    return oh, ow


def flipped_weight(w):
    """(OC, C, KH, KW) -> (C, OC, KH, KW) rotated 180 degrees: the input-gradient filter."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


@register("conv2d_f32", tier="ref")
def conv2d_f32(x, w, bias=None, stride=1, padding=0, dilation=1, relu=False):
    """Cross-correlate x (N, C, H, W) with w (OC, C, KH, KW), add bias (OC,), maybe ReLU.

    Returns (N, OC, OH, OW), C-contiguous, in x's dtype; faster tiers match it up to float32
    accumulation order.
    """
    oh, ow = check_conv_args(x, w, bias, stride, padding, dilation, "conv2d_f32")
    n, oc = x.shape[0], w.shape[0]
    cols = im2col_f32(x, w.shape[2], w.shape[3], stride, padding, dilation)   # (N*OH*OW, C*KH*KW)
    out = (cols @ w.reshape(oc, -1).T).reshape(n, oh, ow, oc).transpose(0, 3, 1, 2)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(np.maximum(out, 0) if relu else out)


@register("conv2d_wgrad_f32", tier="ref")
def conv2d_wgrad_f32(x, g, kh, kw, stride=1, padding=0, dilation=1):
    """Weight gradient of conv2d: sum over images and positions of g (N, OC, OH, OW) times the
    input window. Returns (OC, C, KH, KW) in x's dtype."""
    check_wgrad_args(x, g, kh, kw, stride, padding, dilation, "conv2d_wgrad_f32")
    oc = g.shape[1]
    cols = im2col_f32(x, kh, kw, stride, padding, dilation)                   # (N*OH*OW, C*KH*KW)
    g2d = g.transpose(0, 2, 3, 1).reshape(-1, oc)                              # (N*OH*OW, OC)
    return (g2d.T @ cols).reshape(oc, x.shape[1], kh, kw)
