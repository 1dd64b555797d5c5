"""Numba tier of the int8 GEMMs: the reference's loops, jitted. Contracts: spec.py.

Each kernel body (arguments checked by spec.py) allocates the output and calls a private
``@njit(cache=True)`` loop over plain arrays. GEMM loops run i-k-j so the innermost loop walks a
contiguous row of B and of the int32 output; rows of the output are independent, so ``prange``
splits them. Accumulation is int32, as in the ref (K <= 65536 keeps every sum exact).

Left out: ``pack_s8`` (done once per layer; the NumPy reference is fast enough), the row-max
epilogue, and SIMD tricks (see csrc/int8_gemm/gemm_s8.c for VNNI).
"""
import numpy as np
from numba import njit, prange

from tinyeff.kernels.contract import implements
from tinyeff.kernels.int8_eltwise.numba import requantize


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


def _gemm(a, b):
    """int32 (M, N) = a @ b for validated 8-bit operands (int8 or uint8 ``a``, int8 ``b``)."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.int32)
    _gemm_loops(np.ascontiguousarray(a), np.ascontiguousarray(b), out)
    return out


@implements("gemm_s8", "numba")
def gemm_s8(a, b):
    return _gemm(a, b)


@implements("gemm_u8s8", "numba")
def gemm_u8s8(a, b):
    return _gemm(a, b)


@implements("gemm_u8s8_packed", "numba")
def gemm_u8s8_packed(a, packed):
    out = np.zeros((a.shape[0], packed.n), dtype=np.int32)
    _gemm_packed_loops(np.ascontiguousarray(a), packed.data, packed.k, packed.n, out)
    return out


@implements("gemm_u8s8_requant", "numba")
def gemm_u8s8_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype):
    acc = gemm_u8s8_packed(a, packed)
    return requantize(acc, int(a_zero_point), packed.colsum, bias, multiplier, shift, zero_point_out,
                      qmin, qmax, out_dtype)
