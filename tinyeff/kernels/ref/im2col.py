"""Reference im2col / col2im: lower a convolution to one GEMM, and scatter its gradient back.

Layout (fixed for every tier): ``cols`` has one row per output pixel and one column per weight tap,
``(N*OH*OW, C*KH*KW)``, rows ordered (n, oh, ow) and columns (c, kh, kw). A Conv2d weight
``(OC, C, KH, KW)`` reshaped to ``(OC, C*KH*KW)`` then gives ``out = cols @ w2d.T``.

``col2im`` is the exact adjoint of ``im2col`` (overlapping windows add up), which is what the
backward pass needs. Reference version: a loop over the KH*KW taps, each tap a strided NumPy slice.
"""
import numpy as np

from tinyeff.kernels.registry import register


def conv_output_size(size, k, stride, padding, dilation):
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def check_conv_geometry(x_shape, kh, kw, stride, padding, dilation, name):
    """Validate geometry; return (OH, OW). Raises ValueError naming the problem and the fix."""
    if len(x_shape) != 4:
        raise ValueError(f"{name}: input must be N x C x H x W, got shape {tuple(x_shape)}")
    if min(stride, dilation) < 1 or padding < 0 or min(kh, kw) < 1:
        raise ValueError(f"{name}: need stride >= 1, dilation >= 1, padding >= 0 and a kernel of at "
                         f"least 1x1; got kernel {kh}x{kw}, stride={stride}, padding={padding}, "
                         f"dilation={dilation}")
    _, _, h, w = x_shape
    oh = conv_output_size(h, kh, stride, padding, dilation)
    ow = conv_output_size(w, kw, stride, padding, dilation)
    if oh < 1 or ow < 1:
        raise ValueError(f"{name}: a {kh}x{kw} kernel (dilation {dilation}) does not fit a {h}x{w} "
                         f"input with padding {padding}; use a larger input or more padding")
    return oh, ow


def check_col2im(cols, x_shape, kh, kw, stride, padding, dilation, name):
    """Validate col2im geometry and the shape of ``cols``; return (OH, OW). Raises ValueError."""
    oh, ow = check_conv_geometry(x_shape, kh, kw, stride, padding, dilation, name)
    n, c, _, _ = x_shape
    if cols.shape != (n * oh * ow, c * kh * kw):
        raise ValueError(f"{name}: cols has shape {cols.shape}, expected {(n * oh * ow, c * kh * kw)} "
                         f"for input {tuple(x_shape)} and a {kh}x{kw} kernel")
    return oh, ow


def unfold(x, kh, kw, stride, padding, dilation, oh, ow, pad_value=0):
    """The im2col loop on validated geometry: (N, C, H, W) -> (N*OH*OW, C*KH*KW), same dtype.

    Padding cells hold ``pad_value`` (0 for float; the input zero point for 8-bit, see ref/int8.py).
    """
    n, c, _, _ = x.shape
    pad = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    xp = np.pad(x, pad, constant_values=pad_value) if padding else x
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dilation, j * dilation
            tap = xp[:, :, h0:h0 + stride * (oh - 1) + 1:stride, w0:w0 + stride * (ow - 1) + 1:stride]
            cols[:, :, :, :, i, j] = tap.transpose(0, 2, 3, 1)  # (N, OH, OW, C)
    return cols.reshape(n * oh * ow, c * kh * kw)


def check_pad2d(x, padding, name):
    """Raise ValueError unless ``x`` is (N, C, H, W) and ``padding`` >= 0."""
    if x.ndim != 4 or padding < 0:
        raise ValueError(f"{name}: need an (N, C, H, W) input and padding >= 0, got shape {x.shape} "
                         f"and padding {padding}")


@register("pad2d_f32", tier="ref")
def pad2d_f32(x, padding):
    """Zero-pad the last two axes of (N, C, H, W) ``x`` by ``padding`` on each side (a new array).

    The direct convolution's layout (ref/sparse.py ``direct_conv_layout``) pads every input this
    way, forward and backward, so on ResNets it is one of the biggest memory passes of a step.
    """
    check_pad2d(x, padding, "pad2d_f32")
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), x.dtype)
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out


@register("im2col_f32", tier="ref")
def im2col_f32(x, kh, kw, stride=1, padding=0, dilation=1):
    """Unfold ``x`` (N, C, H, W) into ``cols`` (N*OH*OW, C*KH*KW), C-contiguous, same dtype.

    Padding is zeros. Faster tiers accept float32 only; the reference accepts any float dtype.
    """
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, "im2col_f32")
    return unfold(x, kh, kw, stride, padding, dilation, oh, ow)


@register("col2im_f32", tier="ref")
def col2im_f32(cols, x_shape, kh, kw, stride=1, padding=0, dilation=1):
    """Adjoint of ``im2col_f32``: sum ``cols`` (N*OH*OW, C*KH*KW) back into an (N, C, H, W) array."""
    oh, ow = check_col2im(cols, x_shape, kh, kw, stride, padding, dilation, "col2im_f32")
    n, c, h, w = x_shape
    taps = cols.reshape(n, oh, ow, c, kh, kw)
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dilation, j * dilation
            xp[:, :, h0:h0 + stride * (oh - 1) + 1:stride, w0:w0 + stride * (ow - 1) + 1:stride] += \
                taps[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return xp[:, :, padding:padding + h, padding:padding + w] if padding else xp
