"""Reference max-pooling kernels: forward with argmax, and the backward scatter that uses it.

``argmax`` holds, for every output element, the flat index ``h * W + w`` of the winning input inside
its own (n, c) plane, so the backward pass is one scatter-add and needs no second look at ``x``.
Reference version: a loop over the kernel taps, each a strided slice; padding is -inf so a padded
position never wins (PyTorch's rule: padding <= kernel // 2 keeps every window partly inside).
"""
import numpy as np

from tinyeff.kernels.ref.im2col import check_conv_geometry
from tinyeff.kernels.registry import register


def check_pool_geometry(x_shape, kernel, stride, padding, name):
    """Validate pooling geometry; return (OH, OW)."""
    if padding > kernel // 2:
        raise ValueError(f"{name}: padding={padding} must be at most kernel // 2 = {kernel // 2}")
    return check_conv_geometry(x_shape, kernel, kernel, stride, padding, 1, name)


@register("maxpool2d_f32", tier="ref")
def maxpool2d_f32(x, kernel, stride, padding=0, with_argmax=True):
    """Max-pool ``x`` (N, C, H, W) with a square window.

    Returns:
        (out, argmax): ``out`` (N, C, OH, OW) in x's dtype; ``argmax`` int64 (N, C, OH, OW), the
        flat index h * W + w of each maximum within its (n, c) plane, or None when ``with_argmax``
        is False (inference: no backward will scatter through it, so tiers may skip the indices).
        Ties go to the first tap in row-major window order; NaN never wins.
    """
    oh, ow = check_pool_geometry(x.shape, kernel, stride, padding, "maxpool2d_f32")
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=-np.inf) if padding else x
    out = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    argmax = np.zeros((n, c, oh, ow), dtype=np.int64)
    rows = np.arange(oh)[:, None] * stride - padding   # (OH, 1) input row of tap (0, 0)
    cols = np.arange(ow)[None, :] * stride - padding   # (1, OW)
    for i in range(kernel):
        for j in range(kernel):
            tap = xp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            better = tap > out
            out = np.where(better, tap, out)
            argmax = np.where(better, (rows + i) * w + (cols + j), argmax)
    return out, argmax if with_argmax else None


@register("maxpool2d_backward_f32", tier="ref")
def maxpool2d_backward_f32(grad_out, argmax, x_shape):
    """Scatter ``grad_out`` (N, C, OH, OW) to the argmax positions; return grad_x (N, C, H, W).

    Overlapping windows that share a maximum add their gradients (np.bincount sums duplicates).
    """
    n, c, h, w = x_shape
    plane = np.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * (h * w)
    flat = (argmax + plane).ravel()
    grad_x = np.bincount(flat, weights=grad_out.ravel(), minlength=n * c * h * w)
    return grad_x.astype(grad_out.dtype, copy=False).reshape(n, c, h, w)
