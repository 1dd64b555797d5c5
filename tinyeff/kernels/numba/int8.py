"""Numba tier of the int8 kernels: the reference's loops, jitted. Contracts: ``ref/int8.py``.

Each kernel is a thin wrapper (validation once, output allocation) around a private
``@njit(cache=True)`` loop over plain arrays. GEMM loops run i-k-j so the innermost loop walks a
contiguous row of B and of the int32 output; rows of the output are independent, so ``prange``
splits them. Accumulation is int32, as in the ref (K <= 65536 keeps every sum exact).

Left out: ``pack_s8`` (done once per layer; the NumPy reference is fast enough) and SIMD tricks
(see csrc/gemm_s8.c for VNNI).
"""
import numpy as np
from numba import njit, prange

from tinyeff.kernels.ref import int8 as ref
from tinyeff.kernels.registry import register


@njit(cache=True, parallel=True)
def _gemm_loops(a, b, out):
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        acc = out[i]
        for kk in range(k):
            aik = np.int32(a[i, kk])
            for j in range(n):
                acc[j] += aik * np.int32(b[kk, j])


@njit(cache=True, parallel=True)
def _gemm_packed_loops(a, data, k, n, out):
    """out (M, N) += a @ b with b in pack_s8's layout (panels of 64 columns x groups of 4 k)."""
    m = a.shape[0]
    kg = (k + 3) // 4
    npad = (n + 15) // 16 * 16
    for i in prange(m):
        for p0 in range(0, npad, 64):
            w = min(64, npad - p0)
            ncols = min(w, n - p0)
            base = p0 * kg * 4                       # panel p starts at p * K4 * 256 bytes
            for kk in range(k):
                av = np.int32(a[i, kk])
                off = base + (kk // 4) * w * 4 + kk % 4  # byte of (group, column 0, t)
                for j in range(ncols):
                    out[i, p0 + j] += av * np.int32(data[off + 4 * j])


@njit(cache=True)
def _requant_one(v, multiplier, shift, zero_point, qmin, qmax):
    """gemmlowp requantization of one int64 value; identical to te_requant_one in int8_common.h."""
    lo, hi = -2147483648, 2147483647
    x = min(max(v, lo), hi)
    if shift > 0:
        x = min(max(x << shift, lo), hi)
    if x == lo and multiplier == lo:
        high = hi
    else:
        prod = x * multiplier
        nudge = (1 << 30) if prod >= 0 else 1 - (1 << 30)
        total = prod + nudge
        high = total >> 31 if total >= 0 else -((-total) >> 31)   # truncate toward zero, as C does
    right = -shift if shift < 0 else 0
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    r = (high >> right) + (1 if (high & mask) > threshold else 0)
    return min(max(r + zero_point, qmin), qmax)


@njit(cache=True, parallel=True)
def _requant_loops(acc, corr, colsum, bias, multiplier, shift, zero_point, qmin, qmax, out):
    m, n = acc.shape
    for i in prange(m):
        for j in range(n):
            v = np.int64(acc[i, j]) - np.int64(corr) * colsum[j] + bias[j]
            out[i, j] = _requant_one(v, np.int64(multiplier[j]), np.int64(shift[j]), zero_point, qmin, qmax)


@njit(cache=True, parallel=True)
def _im2col_loops(x, kh, kw, stride, padding, dilation, oh, ow, pad_value, cols):
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


@njit(cache=True, parallel=True)
def _maxpool_loops(x, kernel_size, stride, out):
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


def _gemm(a, b):
    """int32 (M, N) = a @ b for validated 8-bit operands (int8 or uint8 ``a``, int8 ``b``)."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.int32)
    _gemm_loops(np.ascontiguousarray(a), np.ascontiguousarray(b), out)
    return out


@register("gemm_s8", tier="numba")
def gemm_s8(a, b):
    """See ref."""
    ref.check_s8(a, b, "gemm_s8")
    return _gemm(a, b)


@register("gemm_u8s8", tier="numba")
def gemm_u8s8(a, b):
    """See ref."""
    ref.check_u8s8(a, b, "gemm_u8s8")
    return _gemm(a, b)


@register("gemm_u8s8_packed", tier="numba")
def gemm_u8s8_packed(a, packed):
    """See ref."""
    ref.check_activation(a, np.uint8, "gemm_u8s8_packed")
    ref.check_packed(packed, a.shape[1], "gemm_u8s8_packed")
    out = np.zeros((a.shape[0], packed.n), dtype=np.int32)
    _gemm_packed_loops(np.ascontiguousarray(a), packed.data, packed.k, packed.n, out)
    return out


def _requantize(acc, corr, colsum, bias, multiplier, shift, zero_point_out, qmin, qmax, relu, out_dtype, name):
    bias, multiplier, shift, qmin, qmax, dtype = ref.check_requant_args(
        acc.shape[1], bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, name, relu)
    out = np.empty(acc.shape, dtype=dtype)
    _requant_loops(acc, corr, colsum.astype(np.int64), bias.astype(np.int64), multiplier, shift,
                   int(zero_point_out), qmin, qmax, out)
    return out


@register("requantize_s32", tier="numba")
def requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin=None, qmax=None, relu=False,
                   out_dtype=np.uint8):
    """See ref."""
    ref.check_accumulator(acc, "requantize_s32")
    no_correction = np.zeros(acc.shape[1], dtype=np.int32)
    return _requantize(np.ascontiguousarray(acc), 0, no_correction, bias, multiplier, shift,
                       zero_point_out, qmin, qmax, relu, out_dtype, "requantize_s32")


@register("gemm_u8s8_requant", tier="numba")
def gemm_u8s8_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin=None,
                      qmax=None, relu=False, out_dtype=np.uint8):
    """See ref."""
    ref.check_a_zero_point(a_zero_point, "gemm_u8s8_requant")
    acc = gemm_u8s8_packed(a, packed)
    return _requantize(acc, int(a_zero_point), packed.colsum, bias, multiplier, shift, zero_point_out,
                       qmin, qmax, relu, out_dtype, "gemm_u8s8_requant")


def _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, dtype, name):
    oh, ow = ref.check_im2col_8(x, kh, kw, stride, padding, dilation, pad_value, dtype, name)
    n, c, _, _ = x.shape
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=dtype)
    _im2col_loops(np.ascontiguousarray(x), kh, kw, stride, padding, dilation, oh, ow,
                  np.dtype(dtype).type(pad_value), cols)
    return cols


@register("im2col_u8", tier="numba")
def im2col_u8(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0):
    """See ref."""
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, np.uint8, "im2col_u8")


@register("im2col_s8", tier="numba")
def im2col_s8(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0):
    """See ref."""
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, np.int8, "im2col_s8")


@register("maxpool2d_u8", tier="numba")
def maxpool2d_u8(x, kernel_size=2, stride=None):
    """See ref."""
    stride, oh, ow = ref.check_pool_args(x, kernel_size, stride, "maxpool2d_u8")
    out = np.empty(x.shape[:2] + (oh, ow), dtype=np.uint8)
    _maxpool_loops(np.ascontiguousarray(x), kernel_size, stride, out)
    return out
