"""int8 GEMM contracts and references: raw int32 products, the packed-weight GEMM, and the GEMM with
its requantizing epilogue fused. Inside a GEMM, M x K times K x N gives M x N (row-major).

Activations are uint8 (asymmetric, zero point ``a_zero_point``), weights int8 (symmetric), sums
int32: exact, since K <= 65536 (``layout/packed_s8.py`` gives the bound and the packed layout every
tier reads). ``gemm_u8s8_requant`` subtracts ``a_zero_point * colsum(b)`` and requantizes
(``kernels/int8_eltwise/``) in one pass, on the tile still in cache in the C tier.

Left out here: speed (these are NumPy one-liners; numba.py loops, c.py runs csrc/int8_gemm/gemm_s8.c's AVX2
and VNNI micro-kernels) and AMX.
"""
import numpy as np

from tinyeff.kernels.contract import case, define
from tinyeff.kernels.gemm.spec import check_matmul
from tinyeff.kernels.int8_eltwise.spec import random_requant, requant_args, requantize_s32
from tinyeff.kernels.layout.packed_s8 import (GROUP, PANEL, PackedS8, check_k, check_packed, pairs_fit_int16,
                                               quads_fit_int16, unpack_s8)

ROWMAX_GROUPS = (1, 2, 3, 4, 6, 12)     # the C epilogue pools within chunks of 12 rows


def check_activation(a, dtype, name):
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (M, K) activation, got shape {a.shape}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected a {np.dtype(dtype)} activation, got {a.dtype}")


def check_s8(a, b, name="gemm_s8"):
    """Validate int8 (M, K) @ int8 (K, N), K <= 65536."""
    check_matmul(a, b, dtype=np.int8, name=name)
    check_k(a.shape[1], name)


def check_u8s8(a, b, name="gemm_u8s8"):
    """Validate uint8 (M, K) activations against int8 (K, N) weights, K <= 65536."""
    check_matmul(a, b, dtype=None, name=name)
    check_activation(a, np.uint8, name)
    if b.dtype != np.int8:
        raise TypeError(f"{name}: expected int8 weights, got {b.dtype}")
    check_k(a.shape[1], name)


def check_pack_s8(b):
    """Validate a weight for ``pack_s8``."""
    if b.ndim != 2 or b.dtype != np.int8:
        raise TypeError(f"pack_s8: expected a 2-D int8 (K, N) weight, got {b.dtype} {b.shape}")
    check_k(b.shape[0], "pack_s8")


def check_gemm_packed(a, packed, name="gemm_u8s8_packed"):
    check_activation(a, np.uint8, name)
    check_packed(packed, a.shape[1], name)


def check_a_zero_point(a_zero_point, name):
    if not 0 <= int(a_zero_point) <= 255:
        raise ValueError(f"{name}: a_zero_point={a_zero_point} must be in [0, 255] (uint8)")


def check_row_group(m, group, name):
    if group not in ROWMAX_GROUPS or m % group:
        raise ValueError(f"{name}: group={group} must be one of {ROWMAX_GROUPS} and divide M={m}")


def check_gemm_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax,
                       relu, out_dtype, group=1, name="gemm_u8s8_requant"):
    """The checks of a requantizing GEMM; returns the normalized requantization arguments."""
    check_gemm_packed(a, packed, name)
    check_a_zero_point(a_zero_point, name)
    check_row_group(a.shape[0], group, name)
    return requant_args(packed.n, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, relu, name)


def check_gemm_requant_rowmax(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, group,
                              qmin, qmax, relu, out_dtype):
    return check_gemm_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax,
                              relu, out_dtype, group, "gemm_u8s8_requant_rowmax")


# ------------------------------------------------------------------------------------ cases

# K around the 4-byte VNNI group, N around the 16-column vector and the 64-column panel, M odd
SHAPES = [(1, 1, 1), (3, 5, 7), (17, 64, 31), (5, 257, 65), (13, 3, 129), (2, 1024, 16)]


def _int8(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


def _uint8(rng, shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)


def gemm_s8_cases(rng):
    for m, k, n in SHAPES:
        yield case(_int8(rng, (m, k)), _int8(rng, (k, n)))
    yield case(np.full((3, 300), -128, np.int8), np.full((300, 17), -128, np.int8))   # largest |sum|
    yield case(np.full((4, 9), 127, np.int8), np.full((9, 5), -128, np.int8))
    yield case(np.zeros((2, 3), np.int8), np.zeros((3, 4), np.int8))


def gemm_u8s8_cases(rng):
    for m, k, n in SHAPES:
        yield case(_uint8(rng, (m, k)), _int8(rng, (k, n)))
    yield case(np.full((3, 300), 255, np.uint8), np.full((300, 17), -128, np.int8))
    yield case(np.full((2, 7), 255, np.uint8), np.full((7, 65), 127, np.int8))


def _int7(rng, shape):
    """7-bit weights: every k pair fits int16, so AVX2 runs its vpmaddubsw tile on them."""
    return rng.integers(-64, 64, shape, dtype=np.int8)


def pack_s8_cases(rng):
    for _, k, n in SHAPES:
        yield case(_int8(rng, (k, n)))
        yield case(_int7(rng, (k, n)))
    yield case(np.full((7, 130), -128, np.int8))


def gemm_packed_cases(rng):
    for m, k, n in SHAPES:
        yield case(_uint8(rng, (m, k)), pack_s8(_int8(rng, (k, n))))
        yield case(_uint8(rng, (m, k)), pack_s8(_int7(rng, (k, n))))
    yield case(np.full((3, 300), 255, np.uint8), pack_s8(np.full((300, 17), -128, np.int8)))
    yield case(np.full((3, 300), 255, np.uint8), pack_s8(np.full((300, 17), -64, np.int8)))   # pairs at -128


def gemm_requant_cases(rng, rowmax=False):
    for i, (m, k, n) in enumerate(SHAPES):
        group = (1, 2, 3, 4, 6, 12)[i % 6] if rowmax else 1
        m = m * group
        multiplier, shift = random_requant(rng, n, 1e-5, 1e-2)
        bias = rng.integers(-2**16, 2**16, n, dtype=np.int32) if i % 2 else None
        extra = (group,) if rowmax else ()
        a, packed = _uint8(rng, (m, k)), pack_s8((_int7 if i % 3 == 0 else _int8)(rng, (k, n)))
        yield case(a, packed, int(rng.integers(0, 256)), bias, multiplier, shift, int(rng.integers(0, 256)),
                   *extra)
        yield case(a, packed, 0, bias, multiplier, shift, 3, *extra, relu=True)
        if not rowmax:
            yield case(a, packed, 128, bias, multiplier, shift, -7, qmin=-50, qmax=60, out_dtype=np.int8)


# ------------------------------------------------------------------------------------ reference

@define("gemm_s8", check=check_s8, cases=gemm_s8_cases)
def gemm_s8(a, b):
    """int8 (M, K) @ int8 (K, N) -> int32 (M, N), exact. The spec: faster tiers match it bit for bit.

    Raises:
        TypeError: an operand is not int8.
        ValueError: shapes disagree, or K > 65536 (int32 could overflow).
    """
    return a.astype(np.int32) @ b.astype(np.int32)


@define("gemm_u8s8", check=check_u8s8, cases=gemm_u8s8_cases)
def gemm_u8s8(a, b):
    """uint8 (M, K) activations @ int8 (K, N) weights -> int32 (M, N), exact (raw, no zero points).

    Raises:
        TypeError: ``a`` is not uint8 or ``b`` not int8.
        ValueError: shapes disagree, or K > 65536.
    """
    return a.astype(np.int32) @ b.astype(np.int32)


@define("pack_s8", check=check_pack_s8, cases=pack_s8_cases)
def pack_s8(b):
    """Pack int8 weights (K, N) once per layer; see ``layout/packed_s8.py`` for the layout.

    Args:
        b: int8 (K, N), K <= 65536.
    Returns:
        PackedS8 holding the packed bytes and the int32 column sums (N,).
    """
    k, n = b.shape
    k4 = -(-k // 4)
    padded = np.zeros((k4 * 4, -(-n // GROUP) * GROUP), dtype=np.int8)
    padded[:k, :n] = b
    panels = []
    for p0 in range(0, padded.shape[1], PANEL):
        panel = padded[:, p0:p0 + PANEL]                                    # (K4*4, w)
        panels.append(panel.reshape(k4, 4, -1).transpose(0, 2, 1).ravel())  # (K4, w, 4)
    data = np.concatenate(panels) if panels else np.zeros(0, np.int8)
    colsum = b.astype(np.int32).sum(axis=0, dtype=np.int32)
    return PackedS8(data=data, colsum=colsum, k=k, n=n, pairs_fit=pairs_fit_int16(padded),
                    quads_fit=quads_fit_int16(padded))


@define("gemm_u8s8_packed", check=check_gemm_packed, cases=gemm_packed_cases)
def gemm_u8s8_packed(a, packed):
    """uint8 (M, K) @ packed int8 weight (K, N) -> int32 (M, N): ``gemm_u8s8(a, b)`` with b pre-packed.

    Raises:
        TypeError/ValueError: ``a`` is not 2-D uint8, or its K differs from the packed weight's.
    """
    return a.astype(np.int32) @ unpack_s8(packed).astype(np.int32)


@define("gemm_u8s8_requant", check=check_gemm_requant, cases=gemm_requant_cases)
def gemm_u8s8_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin=None,
                      qmax=None, relu=False, out_dtype=np.uint8):
    """A quantized linear layer: ``requantize_s32(a @ b - a_zero_point * colsum(b), ...)``.

    Args:
        a: uint8 (M, K) activations with zero point ``a_zero_point`` (0..255).
        packed: PackedS8 from ``pack_s8(b)``, b int8 (K, N) symmetric (zero point 0).
        Other arguments as in ``requantize_s32``.
    Returns:
        (M, N) array of ``out_dtype``.
    """
    # |sum (a - za) * b| <= K * 255 * 128 < 2**31, so the corrected sum is exact in int32.
    acc = gemm_u8s8_packed(a, packed) - np.int32(a_zero_point) * packed.colsum
    return requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, relu, out_dtype)


@define("gemm_u8s8_requant_rowmax", check=check_gemm_requant_rowmax,
        cases=lambda rng: gemm_requant_cases(rng, rowmax=True))
def gemm_u8s8_requant_rowmax(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, group,
                             qmin=None, qmax=None, relu=False, out_dtype=np.uint8):
    """``gemm_u8s8_requant`` followed by a max over each group of ``group`` consecutive rows.

    Computed in the cheaper order: the max of the int32 sums, then one requantization per group.
    Requantization is non-decreasing in the sum (multiplier >= 0; every rounding step and the clamp
    are monotonic), so this equals ``requant(...).reshape(M // group, group, N).max(1)`` exactly:
    with ``im2col_u8_nhwc(..., pool=p)`` rows and ``group = p * p`` it is conv + ReLU + max-pool.

    Args:
        a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, relu, out_dtype:
            as in ``gemm_u8s8_requant``.
        group: rows per max, one of (1, 2, 3, 4, 6, 12), dividing M.
    Returns:
        (M // group, N) array of ``out_dtype``.
    """
    acc = gemm_u8s8_packed(a, packed) - np.int32(a_zero_point) * packed.colsum
    acc = acc.reshape(-1, group, packed.n).max(axis=1)
    return requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, relu, out_dtype)
