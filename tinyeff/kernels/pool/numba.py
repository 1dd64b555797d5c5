"""Numba tier of max-pooling (float32 with argmax, its backward, uint8): loops only.

Every loop runs in parallel over independent (n, c) planes, so no two threads write the same
element. Arguments arrive checked by spec.py.
"""
import numpy as np
from numba import njit, prange

from tinyeff.kernels.contract import implements


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


@njit(cache=True, parallel=True)
def _maxpool_u8_loops(x, kernel_size, stride, out):
    n, c, oh, ow = out.shape
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for y in range(oh):
            for xo in range(ow):
                best = 0
                for i in range(kernel_size):
                    for j in range(kernel_size):
                        best = max(best, x[b, ch, y * stride + i, xo * stride + j])
                out[b, ch, y, xo] = best


@implements("maxpool2d_f32", "numba")
def maxpool2d_f32(x, kernel, stride, padding, with_argmax, oh, ow):
    n, c, _, _ = x.shape
    out = np.empty((n, c, oh, ow), dtype=np.float32)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64)
    _maxpool_loops(np.ascontiguousarray(x), kernel, stride, padding, out, argmax)
    return out, argmax if with_argmax else None


@implements("maxpool2d_backward_f32", "numba")
def maxpool2d_backward_f32(grad_out, argmax, x_shape):
    n, c, h, w = x_shape
    grad_x = np.zeros((n * c, h * w), dtype=np.float32)
    _maxpool_backward_loops(np.ascontiguousarray(grad_out), np.ascontiguousarray(argmax), grad_x)
    return grad_x.reshape(n, c, h, w)


@implements("maxpool2d_u8", "numba")
def maxpool2d_u8(x, kernel_size, stride, oh, ow):
    out = np.empty(x.shape[:2] + (oh, ow), dtype=np.uint8)
    _maxpool_u8_loops(np.ascontiguousarray(x), kernel_size, stride, out)
    return out
