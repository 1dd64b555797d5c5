"""Numba tier of the integer requantization: one jitted element function, identical to
csrc/int8_common.h's ``te_requant_one``, and the loop over an accumulator (arguments checked by
spec.py). The int8 GEMM's Numba tier reuses ``requantize`` for its epilogue.
"""
import numpy as np
from numba import njit, prange

from tinyeff.kernels.contract import implements


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


def requantize(acc, corr, colsum, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype):
    """(acc - corr * colsum + bias) requantized, on normalized (checked) arguments."""
    out = np.empty(acc.shape, dtype=out_dtype)
    _requant_loops(acc, corr, colsum.astype(np.int64), bias.astype(np.int64), multiplier, shift,
                   int(zero_point_out), qmin, qmax, out)
    return out


@implements("requantize_s32", "numba")
def requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype):
    no_correction = np.zeros(acc.shape[1], dtype=np.int32)
    return requantize(np.ascontiguousarray(acc), 0, no_correction, bias, multiplier, shift,
                      zero_point_out, qmin, qmax, out_dtype)
