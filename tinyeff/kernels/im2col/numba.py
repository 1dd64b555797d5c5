"""Numba tier of im2col / col2im (float32 and 8-bit): loops only, on arguments spec.py checked.

The loops run in parallel over independent outer rows: im2col over (n, oh) output rows, col2im over
(n, c) planes, so no two threads ever write the same element and batch 1 still uses every core.
Bounds checks for padding are done per window row, not per element, where that keeps the inner loop
contiguous.
"""
import numpy as np
from numba import njit, prange

from tinyeff.kernels.contract import implements


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


@njit(cache=True, parallel=True)
def _im2col_8_loops(x, kh, kw, stride, padding, dilation, oh, ow, pad_value, cols):
    n, c, h, w = x.shape
    for b in prange(n):
        for y in range(oh):
            for xo in range(ow):
                row = (b * oh + y) * ow + xo
                col = 0
                for ch in range(c):
                    for i in range(kh):
                        iy = y * stride - padding + i * dilation
                        for j in range(kw):
                            ix = xo * stride - padding + j * dilation
                            if 0 <= iy < h and 0 <= ix < w:
                                cols[row, col] = x[b, ch, iy, ix]
                            else:
                                cols[row, col] = pad_value
                            col += 1


@implements("im2col_f32", "numba")
def im2col_f32(x, kh, kw, stride, padding, dilation, oh, ow):
    n, c, _, _ = x.shape
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=np.float32)
    _im2col_loops(np.ascontiguousarray(x), kh, kw, stride, padding, dilation, oh, ow, cols)
    return cols


@implements("col2im_f32", "numba")
def col2im_f32(cols, x_shape, kh, kw, stride, padding, dilation, oh, ow):
    n, c, h, w = x_shape
    x = np.zeros((n, c, h, w), dtype=np.float32)
    _col2im_loops(np.ascontiguousarray(cols), kh, kw, stride, padding, dilation, oh, ow, x)
    return x


def _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow):
    n, c, _, _ = x.shape
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    _im2col_8_loops(np.ascontiguousarray(x), kh, kw, stride, padding, dilation, oh, ow,
                    x.dtype.type(pad_value), cols)
    return cols


@implements("im2col_u8", "numba")
def im2col_u8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow):
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow)


@implements("im2col_s8", "numba")
def im2col_s8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow):
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow)
