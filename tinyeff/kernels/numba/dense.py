"""Numba dense float32 kernels: im2col / col2im and max-pooling (forward with argmax, backward).

Same names, signatures and layouts as ref/im2col.py and ref/pool.py. The loops run in parallel over
independent outer rows: im2col over (n, oh) output rows, col2im and pooling over (n, c) planes, so
no two threads ever write the same element and batch 1 still uses every core. Bounds checks for
padding are done per window row, not per element, where that keeps the inner loop contiguous.
"""
import numpy as np
from numba import njit, prange

from tinyeff.kernels.dense_checks import check_f32, check_pool_backward
from tinyeff.kernels.ref.im2col import check_col2im, check_conv_geometry
from tinyeff.kernels.ref.pool import check_pool_geometry
from tinyeff.kernels.registry import register


@njit(cache=True, parallel=True)
def _im2col_loops(x, kh, kw, stride, padding, dilation, oh, ow, cols):
    n, c, h, w = x.shape
    for t in prange(n * oh):                   # one output row (n, oh) per task
        b, i = t // oh, t % oh
        for j in range(ow):
            row = (b * oh + i) * ow + j
            for ch in range(c):
                for ki in range(kh):
                    y = i * stride - padding + ki * dilation
                    col = (ch * kh + ki) * kw
                    if y < 0 or y >= h:
                        for kj in range(kw):
                            cols[row, col + kj] = 0
                        continue
                    for kj in range(kw):
                        xx = j * stride - padding + kj * dilation
                        cols[row, col + kj] = x[b, ch, y, xx] if 0 <= xx < w else 0


@njit(cache=True, parallel=True)
def _col2im_loops(cols, kh, kw, stride, padding, dilation, oh, ow, x):
    n, c, h, w = x.shape
    for t in prange(n * c):                    # one (n, c) plane per task: no write conflicts
        b, ch = t // c, t % c
        for ki in range(kh):
            for kj in range(kw):
                col = (ch * kh + ki) * kw + kj
                for i in range(oh):
                    y = i * stride - padding + ki * dilation
                    if y < 0 or y >= h:
                        continue
                    for j in range(ow):
                        xx = j * stride - padding + kj * dilation
                        if 0 <= xx < w:
                            x[b, ch, y, xx] += cols[(b * oh + i) * ow + j, col]


@register("im2col_f32", tier="numba")
def im2col_f32(x, kh, kw, stride=1, padding=0, dilation=1):
    """See ref/im2col.py (float32 only)."""
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, "im2col_f32")
    check_f32("im2col_f32", x=x)
    n, c, _, _ = x.shape
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=np.float32)
    _im2col_loops(np.ascontiguousarray(x), kh, kw, stride, padding, dilation, oh, ow, cols)
    return cols


@register("col2im_f32", tier="numba")
def col2im_f32(cols, x_shape, kh, kw, stride=1, padding=0, dilation=1):
    """See ref/im2col.py (float32 only)."""
    oh, ow = check_col2im(cols, x_shape, kh, kw, stride, padding, dilation, "col2im_f32")
    n, c, h, w = x_shape
    check_f32("col2im_f32", cols=cols)
    x = np.zeros((n, c, h, w), dtype=np.float32)
    _col2im_loops(np.ascontiguousarray(cols), kh, kw, stride, padding, dilation, oh, ow, x)
    return x


@njit(cache=True, parallel=True)
def _maxpool_loops(x, kernel, stride, padding, out, argmax):
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for t in prange(n * c):
        b, ch = t // c, t % c
        for i in range(oh):
            for j in range(ow):
                best = -np.inf
                where = 0                      # as the ref: an all -inf window reports index 0
                for ki in range(kernel):
                    y = i * stride - padding + ki
                    if y < 0 or y >= h:
                        continue
                    for kj in range(kernel):
                        xx = j * stride - padding + kj
                        if 0 <= xx < w and x[b, ch, y, xx] > best:   # strict: first tap wins ties
                            best = x[b, ch, y, xx]
                            where = y * w + xx
                out[b, ch, i, j] = best
                argmax[b, ch, i, j] = where


@njit(cache=True, parallel=True)
def _maxpool_backward_loops(grad_out, argmax, grad_x):
    n, c, oh, ow = grad_out.shape
    for t in prange(n * c):                    # grad_x is (N*C, H*W): one plane per task
        b, ch = t // c, t % c
        for i in range(oh):
            for j in range(ow):
                grad_x[t, argmax[b, ch, i, j]] += grad_out[b, ch, i, j]


@register("maxpool2d_f32", tier="numba")
def maxpool2d_f32(x, kernel, stride, padding=0, with_argmax=True):
    """See ref/pool.py (float32 only)."""
    oh, ow = check_pool_geometry(x.shape, kernel, stride, padding, "maxpool2d_f32")
    check_f32("maxpool2d_f32", x=x)
    n, c, _, _ = x.shape
    out = np.empty((n, c, oh, ow), dtype=np.float32)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64)
    _maxpool_loops(np.ascontiguousarray(x), kernel, stride, padding, out, argmax)
    return out, argmax if with_argmax else None


@register("maxpool2d_backward_f32", tier="numba")
def maxpool2d_backward_f32(grad_out, argmax, x_shape):
    """See ref/pool.py (float32 only)."""
    check_pool_backward(grad_out, argmax, x_shape, "maxpool2d_backward_f32")
    n, c, h, w = x_shape
    grad_x = np.zeros((n * c, h * w), dtype=np.float32)
    _maxpool_backward_loops(np.ascontiguousarray(grad_out), np.ascontiguousarray(argmax), grad_x)
    return grad_x.reshape(n, c, h, w)
