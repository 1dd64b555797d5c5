"""GEMM contract and reference. Inside a GEMM, M x K times K x N gives M x N (row-major).

``gemm_f32`` is float32 BLAS through NumPy: on this machine NumPy's BLAS is the bar the faster tiers
have to beat, so the reference is also a strong baseline, not a triple loop. It calls BLAS on the
calling thread (kernels/blas.py: tinyeff's OpenMP kernels own the cores). ``check_matmul`` is the
operand check every GEMM (float and int8, ``kernels/int8_gemm/``) runs.
"""
import numpy as np

from tinyeff.kernels.blas import matmul
from tinyeff.kernels.contract import Tolerance, case, define


def check_matmul(a, b, dtype, name):
    """Validate a 2-D GEMM pair: shapes agree, dtype is ``dtype``; raise ValueError/TypeError."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"{name}: expected 2-D operands, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"{name}: inner dimensions differ, a is {a.shape} and b is {b.shape} "
                         f"(a must be M x K and b K x N)")
    if dtype is not None and (a.dtype != dtype or b.dtype != dtype):
        raise TypeError(f"{name}: expected {np.dtype(dtype)} operands, got {a.dtype} and {b.dtype}")


def gemm_cases(rng):
    """Shapes that break register tiles (1, primes, 16 +- 1, long K) in float32."""
    for m, k, n in [(1, 1, 1), (3, 5, 7), (17, 64, 31), (15, 257, 33), (64, 9, 1)]:
        yield case(rng.standard_normal((m, k)).astype(np.float32),
                   rng.standard_normal((k, n)).astype(np.float32))


@define("gemm_f32", check=lambda a, b: check_matmul(a, b, None, "gemm_f32"), cases=gemm_cases,
        tolerance=Tolerance(rtol=1e-4, atol=1e-4, why="float32 accumulation order differs"))
def gemm_f32(a, b):
    """float (M, K) @ float (K, N) -> (M, N) in the operands' dtype.

    The contract: float32 inputs give a float32 result equal to ``a @ b`` up to accumulation order.
    The reference also accepts float64 (used by gradient checks) and float16 (mixed precision);
    faster tiers accept float32 only.
    """
    if a.dtype == np.float16 and b.dtype == np.float16:
        # NumPy has no float16 BLAS (its generic loop is ~37x slower here); accumulate in float32
        # through BLAS and round once, which is also what 16-bit hardware does.
        return matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.float16)
    return matmul(a, b)
