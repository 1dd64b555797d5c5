"""Pooling: max-pool through the ``maxpool2d_f32`` kernel (argmax saved for the backward scatter),
average-pool as a mean over im2col windows, and global average pooling."""
import numpy as np

from tinyeff.kernels.layout.geometry import check_pool_geometry
from tinyeff.ops import plan
from tinyeff.ops.kernel_choice import kernel_for
from tinyeff.ops.reduce import mean
from tinyeff.tensor import is_grad_enabled, make_result


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over square windows; ``stride`` defaults to ``kernel_size``. x is (N, C, H, W)."""
    stride = stride or kernel_size
    need_grad = is_grad_enabled() and x.requires_grad     # only a backward pass needs the indices
    if not need_grad:
        key = ("max_pool2d", x.shape, x.dtype, kernel_size, stride, padding)
        out = plan.run(key, None, lambda kernel, _: kernel("maxpool2d_f32", x.data)(
            x.data, kernel_size, stride, padding, with_argmax=False)[0])
        return make_result(out, (x,), None, "max_pool2d")
    out, argmax = kernel_for("maxpool2d_f32", x.data)(x.data, kernel_size, stride, padding, with_argmax=need_grad)

    def backward(g):
        return (kernel_for("maxpool2d_backward_f32", g)(np.ascontiguousarray(g), argmax, x.shape),)
    return make_result(out, (x,), backward, "max_pool2d")


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over square windows (zero padding counts in the mean, PyTorch's default)."""
    stride = stride or kernel_size
    oh, ow = check_pool_geometry(x.shape, kernel_size, stride, padding, "avg_pool2d")
    n, c, h, w = x.shape
    planes = x.data.reshape(n * c, 1, h, w)                    # each channel pooled on its own
    cols = kernel_for("im2col_f32", planes)(planes, kernel_size, kernel_size, stride, padding, 1)
    out = cols.mean(axis=1).reshape(n, c, oh, ow)
    taps = kernel_size * kernel_size

    def backward(g):
        gcols = np.repeat(g.reshape(-1, 1) / taps, taps, axis=1).astype(g.dtype, copy=False)
        gx = kernel_for("col2im_f32", gcols)(gcols, (n * c, 1, h, w), kernel_size, kernel_size, stride, padding, 1)
        return (gx.reshape(n, c, h, w),)
    return make_result(out, (x,), backward, "avg_pool2d")


def global_avg_pool2d(x):
    """(N, C, H, W) -> (N, C, 1, 1): the mean of every channel plane."""
    return mean(x, axis=(2, 3), keepdims=True)
