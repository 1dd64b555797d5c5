"""Reference int8 kernels: the integer GEMMs, the packed weight layout, requantization, int8 im2col
and max-pool. Inside a GEMM, M x K times K x N gives M x N (row-major); outside, N is the batch.

The one idea: quantized inference is integer arithmetic end to end. Activations are asymmetric
uint8 (``x = scale_x * (q_x - zero_point_x)``), weights symmetric int8 per output channel
(``zero_point_w = 0``), products are summed in int32 and *requantized* back to 8 bits with a
fixed-point multiplier and a rounding shift, never a float. ``docs/int8.md`` derives the formula
once; this file is the executable spec every faster tier (``numba/int8.py``, ``c_int8.py``) meets
bit for bit.

Packed weight layout (``pack_s8``), shared by every tier and by the C VNNI/AVX2 micro-kernels:
    K4 = ceil(K / 4) groups of 4 consecutive k; columns split into panels of 64 (the last panel is
    the remaining columns rounded up to a multiple of 16). Panel p (width w) starts at byte
    ``p * K4 * 256``; inside it, byte ``(k4 * w + j) * 4 + t`` holds ``b[4*k4 + t, 64*p + j]``.
    Entries past K or past N are 0. Total size ``K4 * 4 * roundup(N, 16)`` bytes.
    Why: one 64-byte vector = 16 columns x 4 k, exactly what one ``vpdpbusd`` consumes against a
    broadcast of 4 activation bytes, so the micro-kernel streams each panel front to back (and
    half of it, 8 columns x 4 k, what AVX2's ``vpmaddubsw`` does; a quarter what ARM's ``sdot`` does).
    ``pairs_fit`` (one flag per panel): every pair of k (4g, 4g+1) and (4g+2, 4g+3) in every
    column has positive weights summing to at most 128 and negative ones to at least -128, so
    ``a1*w1 + a2*w2`` fits int16 for any uint8 a and AVX2's saturating ``vpmaddubsw`` is exact
    there (7-bit weights, in [-64, 63], always qualify).

Overflow bound: a u8 x s8 product is at most 255*128 in magnitude, so K <= 65536 keeps every int32
sum exact (65536 * 32640 < 2**31). Every tier rejects larger K rather than wrap.

Left out here: speed (these are NumPy one-liners and loops), AMX/VNNI (see csrc/gemm_s8.c) and
max-pool padding (the seed CNN pools without padding).
"""
from dataclasses import dataclass

import numpy as np

from tinyeff.kernels.ref.gemm import check_matmul
from tinyeff.kernels.ref.im2col import check_conv_geometry, unfold
from tinyeff.kernels.registry import register

K_MAX = 65536          # largest K whose int32 sums cannot overflow (see the module docstring)
PANEL = 64             # columns per packed panel
GROUP = 16             # the last panel's width is a multiple of this (one 512-bit vector)
LAYOUT = "k4-panel64x4-v1"


@dataclass(frozen=True)
class PackedS8:
    """Int8 weights (K, N) packed once per layer for ``gemm_u8s8_packed`` (layout: module docstring).

    Attributes:
        data: int8 (K4 * 4 * roundup(N, 16),), the packed bytes.
        colsum: int32 (N,), ``sum_k b[k, n]``: the zero-point correction term.
        k, n: the logical weight shape.
        pairs_fit: uint8 (number of panels,), 1 where no k pair of the panel can saturate int16.
        layout: layout tag, checked by every consumer.
    """
    data: np.ndarray
    colsum: np.ndarray
    k: int
    n: int
    pairs_fit: np.ndarray
    layout: str = LAYOUT


def num_panels(n):
    """Panels of the packed form of a weight with ``n`` columns."""
    return -(-n // PANEL)


def pairs_fit_int16(padded):
    """uint8 (panels,): 1 where every row pair (2i, 2i+1) of every column of a (K4*4, N16) zero-padded
    weight has positive entries summing to <= 128 and negative ones to >= -128 (see ``pairs_fit``)."""
    w = padded.astype(np.int32).reshape(-1, 2, padded.shape[1])
    ok = ((np.maximum(w, 0).sum(axis=1) <= 128) & (np.minimum(w, 0).sum(axis=1) >= -128)).all(axis=0)
    return np.array([ok[p0:p0 + PANEL].all() for p0 in range(0, padded.shape[1], PANEL)], dtype=np.uint8)


def packed_size(k, n):
    """Bytes in the packed form of a (k, n) int8 matrix."""
    return -(-k // 4) * 4 * (-(-n // GROUP) * GROUP)


def check_k(k, name):
    if k > K_MAX:
        raise ValueError(f"{name}: K={k} exceeds {K_MAX}, the largest K whose int32 sums cannot "
                         f"overflow; split the reduction into chunks of at most {K_MAX}")


def check_packed(packed, k, name):
    """Validate a PackedS8 against an activation with ``k`` columns; raise TypeError/ValueError."""
    if not isinstance(packed, PackedS8):
        raise TypeError(f"{name}: expected a PackedS8 from pack_s8(b), got {type(packed).__name__}")
    if packed.layout != LAYOUT:
        raise ValueError(f"{name}: packed layout {packed.layout!r} is not {LAYOUT!r}; re-pack with pack_s8")
    if packed.k != k:
        raise ValueError(f"{name}: activation has K={k} columns but the packed weight has K={packed.k} "
                         f"rows (weight shape ({packed.k}, {packed.n}))")
    fit = packed.pairs_fit
    if not isinstance(fit, np.ndarray) or fit.dtype != np.uint8 or fit.shape != (num_panels(packed.n),):
        raise ValueError(f"{name}: packed.pairs_fit must be uint8 ({num_panels(packed.n)},), one flag per "
                         "64-column panel; re-pack the weight with pack_s8")


def check_activation(a, dtype, name):
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (M, K) activation, got shape {a.shape}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected a {np.dtype(dtype)} activation, got {a.dtype}")


def check_s8(a, b, name):
    """Validate int8 (M, K) @ int8 (K, N), K <= 65536."""
    check_matmul(a, b, dtype=np.int8, name=name)
    check_k(a.shape[1], name)


def check_u8s8(a, b, name):
    """Validate uint8 (M, K) activations against int8 (K, N) weights, K <= 65536."""
    check_matmul(a, b, dtype=None, name=name)
    check_activation(a, np.uint8, name)
    if b.dtype != np.int8:
        raise TypeError(f"{name}: expected int8 weights, got {b.dtype}")
    check_k(a.shape[1], name)


@register("gemm_s8", tier="ref")
def gemm_s8(a, b):
    """int8 (M, K) @ int8 (K, N) -> int32 (M, N), exact. The spec: faster tiers match it bit for bit.

    Raises:
        TypeError: an operand is not int8.
        ValueError: shapes disagree, or K > 65536 (int32 could overflow).
    """
    check_s8(a, b, "gemm_s8")
    return a.astype(np.int32) @ b.astype(np.int32)


@register("gemm_u8s8", tier="ref")
def gemm_u8s8(a, b):
    """uint8 (M, K) activations @ int8 (K, N) weights -> int32 (M, N), exact (raw, no zero points).

    Raises:
        TypeError: ``a`` is not uint8 or ``b`` not int8.
        ValueError: shapes disagree, or K > 65536.
    """
    check_u8s8(a, b, "gemm_u8s8")
    return a.astype(np.int32) @ b.astype(np.int32)


def check_pack_s8(b):
    """Validate a weight for ``pack_s8``; return (K, N)."""
    if b.ndim != 2 or b.dtype != np.int8:
        raise TypeError(f"pack_s8: expected a 2-D int8 (K, N) weight, got {b.dtype} {b.shape}")
    check_k(b.shape[0], "pack_s8")
    return b.shape


@register("pack_s8", tier="ref")
def pack_s8(b):
    """Pack int8 weights (K, N) once per layer; see the module docstring for the layout.

    Args:
        b: int8 (K, N), K <= 65536.
    Returns:
        PackedS8 holding the packed bytes and the int32 column sums (N,).
    """
    k, n = check_pack_s8(b)
    k4 = -(-k // 4)
    padded = np.zeros((k4 * 4, -(-n // GROUP) * GROUP), dtype=np.int8)
    padded[:k, :n] = b
    panels = []
    for p0 in range(0, padded.shape[1], PANEL):
        panel = padded[:, p0:p0 + PANEL]                                    # (K4*4, w)
        panels.append(panel.reshape(k4, 4, -1).transpose(0, 2, 1).ravel())  # (K4, w, 4)
    data = np.concatenate(panels) if panels else np.zeros(0, np.int8)
    colsum = b.astype(np.int32).sum(axis=0, dtype=np.int32)
    return PackedS8(data=data, colsum=colsum, k=k, n=n, pairs_fit=pairs_fit_int16(padded))


def unpack_s8(packed):
    """Inverse of ``pack_s8``: the int8 (K, N) weight (used by the reference and the tests)."""
    k, n = packed.k, packed.n
    k4, npad = -(-k // 4), -(-n // GROUP) * GROUP
    out = np.empty((k4 * 4, npad), dtype=np.int8)
    offset = 0
    for p0 in range(0, npad, PANEL):
        w = min(PANEL, npad - p0)
        block = packed.data[offset:offset + k4 * w * 4].reshape(k4, w, 4)
        out[:, p0:p0 + w] = block.transpose(0, 2, 1).reshape(k4 * 4, w)
        offset += k4 * w * 4
    return out[:k, :n]


@register("gemm_u8s8_packed", tier="ref")
def gemm_u8s8_packed(a, packed):
    """uint8 (M, K) @ packed int8 weight (K, N) -> int32 (M, N): ``gemm_u8s8(a, b)`` with b pre-packed.

    Raises:
        TypeError/ValueError: ``a`` is not 2-D uint8, or its K differs from the packed weight's.
    """
    check_activation(a, np.uint8, "gemm_u8s8_packed")
    check_packed(packed, a.shape[1], "gemm_u8s8_packed")
    return a.astype(np.int32) @ unpack_s8(packed).astype(np.int32)


# ----------------------------------------------------------------------------------------------
# Requantization: int32 accumulators -> 8 bits with integer arithmetic only (gemmlowp semantics).
# ----------------------------------------------------------------------------------------------

def quantize_multiplier(real_multiplier):
    """Split a positive real multiplier into an int32 fixed-point ``multiplier`` and a power-of-two ``shift``.

    ``real_multiplier ~= multiplier * 2**(shift - 31)`` with ``multiplier`` in [2**30, 2**31)
    (TFLite's convention: shift > 0 is a left shift, shift < 0 a right shift).

    Args:
        real_multiplier: float or array of floats, each in (0, 2**30); typically
            ``scale_x * scale_w / scale_out`` per output channel.
    Returns:
        (multiplier, shift) as int32 scalars or arrays of the input's shape.
    Raises:
        ValueError: a multiplier is not positive and finite, or so small/large that shift leaves [-31, 30].
    """
    real = np.asarray(real_multiplier, dtype=np.float64)
    if not np.all(np.isfinite(real)) or np.any(real <= 0):
        raise ValueError(f"quantize_multiplier: real_multiplier must be positive and finite, got {real}")
    mantissa, exponent = np.frexp(real)                           # real = mantissa * 2**exponent, 0.5 <= m < 1
    q = np.round(mantissa * 2.0**31).astype(np.int64)
    carry = q == 2**31                                             # mantissa rounded up to 1.0
    q = np.where(carry, 2**30, q)
    exponent = exponent + carry
    small = exponent < -31                                         # too small to represent: multiply by 0
    q, exponent = np.where(small, 0, q), np.where(small, 0, exponent)
    if np.any(exponent > 30):
        raise ValueError(f"quantize_multiplier: real_multiplier {real} is too large (>= 2**30)")
    multiplier, shift = q.astype(np.int32), exponent.astype(np.int32)
    return (multiplier, shift) if real.ndim else (multiplier[()], shift[()])


def _saturating_rounding_doubling_high_mul(x, m):
    """gemmlowp's SaturatingRoundingDoublingHighMul: x * m / 2**31 to nearest; int64 in and out.

    The nudge is +2**30 for non-negative products and 1 - 2**30 for negative ones, then C division
    truncates toward zero: ties round toward +inf (1.5 -> 2, -1.5 -> -1).
    """
    both_min = (x == -2**31) & (m == -2**31)
    prod = x * m
    nudge = np.where(prod >= 0, 1 << 30, 1 - (1 << 30))
    total = prod + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C's division: truncate toward 0
    return np.where(both_min, 2**31 - 1, high)


def _rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _requantize_int64(acc, multiplier, shift):
    """Apply ``multiplier * 2**(shift - 31)`` to int64 values already saturated to int32."""
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.clip(acc << left, -2**31, 2**31 - 1)                    # saturating left shift
    return _rounding_divide_by_pot(_saturating_rounding_doubling_high_mul(x, multiplier), right)


def check_requant_args(n, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, name, relu=False):
    """Validate requantization parameters; return (bias, multiplier, shift) as int32 (N,) arrays, qmin, qmax, dtype.

    With ``relu`` the returned qmin is raised to ``zero_point_out`` (the fused ReLU's clamp).
    """
    dtype = np.dtype(out_dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.int8)):
        raise TypeError(f"{name}: out_dtype must be uint8 or int8, got {dtype}")
    info = np.iinfo(dtype)
    qmin = info.min if qmin is None else int(qmin)
    qmax = info.max if qmax is None else int(qmax)
    if not info.min <= qmin <= qmax <= info.max:
        raise ValueError(f"{name}: need {info.min} <= qmin <= qmax <= {info.max} for {dtype}, "
                         f"got qmin={qmin}, qmax={qmax}")
    if not info.min <= int(zero_point_out) <= info.max:
        raise ValueError(f"{name}: zero_point_out={zero_point_out} is outside {dtype}'s range")
    arrays = []
    for label, value in (("bias", bias), ("multiplier", multiplier), ("shift", shift)):
        v = np.zeros(n, np.int32) if value is None else np.asarray(value)
        if v.ndim == 0:
            v = np.full(n, v)
        if v.shape != (n,):
            raise ValueError(f"{name}: {label} must be a scalar or have shape ({n},), got {v.shape}")
        if not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name}: {label} must be integer (use quantize_multiplier), got {v.dtype}")
        arrays.append(np.ascontiguousarray(v, dtype=np.int32))
    bias, multiplier, shift = arrays
    if np.any(multiplier < 0) or np.any(shift < -31) or np.any(shift > 30):
        raise ValueError(f"{name}: need multiplier >= 0 and -31 <= shift <= 30 (from quantize_multiplier)")
    if relu:
        qmin = max(qmin, int(zero_point_out))
    return bias, multiplier, shift, qmin, qmax, dtype


def check_accumulator(acc, name):
    if acc.ndim != 2 or acc.dtype != np.int32:
        raise TypeError(f"{name}: expected a 2-D int32 accumulator, got {acc.dtype} {acc.shape}")


def check_a_zero_point(a_zero_point, name):
    if not 0 <= int(a_zero_point) <= 255:
        raise ValueError(f"{name}: a_zero_point={a_zero_point} must be in [0, 255] (uint8)")


@register("requantize_s32", tier="ref")
def requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin=None, qmax=None, relu=False,
                   out_dtype=np.uint8):
    """Requantize int32 accumulators to 8 bits with integer arithmetic only (docs/int8.md).

    Per element: ``v = sat32(acc + bias[n])``; ``v = sat32(v << max(shift, 0))``;
    ``v = SQRDMULH(v, multiplier[n])`` (nearest, ties toward +inf: gemmlowp's nudge);
    ``v = RDIVPOT(v, max(-shift, 0))`` (nearest, ties away from zero);
    ``out = clamp(v + zero_point_out, qmin, qmax)``, where ``relu`` raises ``qmin`` to ``zero_point_out``.

    Args:
        acc: int32 (M, N), zero-point corrected sums.
        bias: int32 (N,), scalar or None; in units of the accumulator (scale_x * scale_w).
        multiplier, shift: int32 per channel (N,) or scalar, from ``quantize_multiplier``.
        zero_point_out: output zero point, inside ``out_dtype``'s range.
        qmin, qmax: clamp bounds (default: the dtype's range).
        relu: fuse a ReLU (clamp at the output zero point).
        out_dtype: uint8 (default) or int8.
    Returns:
        (M, N) array of ``out_dtype``.
    """
    check_accumulator(acc, "requantize_s32")
    bias, multiplier, shift, qmin, qmax, dtype = check_requant_args(
        acc.shape[1], bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, "requantize_s32",
        relu)
    v = np.clip(acc.astype(np.int64) + bias, -2**31, 2**31 - 1)
    v = _requantize_int64(v, multiplier.astype(np.int64), shift.astype(np.int64))
    return np.clip(v + int(zero_point_out), qmin, qmax).astype(dtype)


@register("gemm_u8s8_requant", tier="ref")
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
    acc = gemm_u8s8_packed(a, packed)
    check_a_zero_point(a_zero_point, "gemm_u8s8_requant")
    # |sum (a - za) * b| <= K * 255 * 128 < 2**31, so the corrected sum is exact in int32.
    acc = acc - np.int32(a_zero_point) * packed.colsum
    return requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, relu, out_dtype)


ROWMAX_GROUPS = (1, 2, 3, 4, 6, 12)     # the C epilogue pools within chunks of 12 rows


def check_row_group(m, group, name):
    if group not in ROWMAX_GROUPS or m % group:
        raise ValueError(f"{name}: group={group} must be one of {ROWMAX_GROUPS} and divide M={m}")


@register("gemm_u8s8_requant_rowmax", tier="ref")
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
    check_activation(a, np.uint8, "gemm_u8s8_requant_rowmax")
    check_packed(packed, a.shape[1], "gemm_u8s8_requant_rowmax")
    check_a_zero_point(a_zero_point, "gemm_u8s8_requant_rowmax")
    check_row_group(a.shape[0], group, "gemm_u8s8_requant_rowmax")
    acc = gemm_u8s8_packed(a, packed) - np.int32(a_zero_point) * packed.colsum
    acc = acc.reshape(-1, group, packed.n).max(axis=1)
    return requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, relu, out_dtype)


# ----------------------------------------------------------------------------------------------
# int8 im2col and max-pool: pure data movement, same layout as ref/im2col.py.
# ----------------------------------------------------------------------------------------------

def check_im2col_8(x, kh, kw, stride, padding, dilation, pad_value, dtype, name):
    """Validate an 8-bit im2col (input dtype, pad_value range, geometry); return (OH, OW)."""
    if x.dtype != dtype:
        raise TypeError(f"{name}: expected a {np.dtype(dtype)} input, got {x.dtype}")
    info = np.iinfo(dtype)
    if not info.min <= int(pad_value) <= info.max:
        raise ValueError(f"{name}: pad_value={pad_value} (the input zero point) is outside {np.dtype(dtype)}'s range")
    return check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, name)


def _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, dtype, name):
    oh, ow = check_im2col_8(x, kh, kw, stride, padding, dilation, pad_value, dtype, name)
    return unfold(x, kh, kw, stride, padding, dilation, oh, ow, pad_value)


@register("im2col_u8", tier="ref")
def im2col_u8(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0):
    """Unfold uint8 ``x`` (N, C, H, W) into (N*OH*OW, C*KH*KW), layout as ``im2col_f32``.

    Padding cells hold ``pad_value``: the input zero point, which represents real 0.0.
    """
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, np.uint8, "im2col_u8")


@register("im2col_s8", tier="ref")
def im2col_s8(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0):
    """int8 version of ``im2col_u8``; same layout and padding rule."""
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, np.int8, "im2col_s8")


def check_pool_args(x, kernel_size, stride, name):
    """Validate a uint8 max-pool; return (stride, OH, OW)."""
    if x.ndim != 4 or x.dtype != np.uint8:
        raise TypeError(f"{name}: expected a uint8 N x C x H x W input, got {x.dtype} {x.shape}")
    stride = kernel_size if stride is None else stride
    if kernel_size < 1 or stride < 1:
        raise ValueError(f"{name}: need kernel_size >= 1 and stride >= 1, got {kernel_size}, {stride}")
    _, _, h, w = x.shape
    if kernel_size > min(h, w):
        raise ValueError(f"{name}: a {kernel_size}x{kernel_size} window does not fit a {h}x{w} input")
    return stride, (h - kernel_size) // stride + 1, (w - kernel_size) // stride + 1


@register("maxpool2d_u8", tier="ref")
def maxpool2d_u8(x, kernel_size=2, stride=None):
    """Max-pool uint8 ``x`` (N, C, H, W) -> (N, C, OH, OW), no padding (floor mode, like PyTorch).

    Exact on quantized values: max commutes with the monotonic dequantization, so the output keeps
    the input's scale and zero point.
    """
    stride, oh, ow = check_pool_args(x, kernel_size, stride, "maxpool2d_u8")
    out = np.zeros(x.shape[:2] + (oh, ow), dtype=np.uint8)
    for i in range(kernel_size):
        for j in range(kernel_size):
            np.maximum(out, x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride], out=out)
    return out


# ----------------------------------------------------------------------------------------------
# NHWC versions: the integer model keeps activations as (N, H, W, C) between layers, so a conv's
# GEMM output (N*OH*OW, OC) is the next layer's input as it stands (no transpose per layer).
# ----------------------------------------------------------------------------------------------

def _nchw_shape(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be N x H x W x C, got shape {x.shape}")
    n, h, w, c = x.shape
    return (n, c, h, w)


def check_im2col_nhwc(x, kh, kw, stride, padding, dilation, pad_value, pool, row_align, name):
    """Validate ``im2col_u8_nhwc``'s arguments; return (N, C, OH, OW)."""
    if int(row_align) < 1:
        raise ValueError(f"{name}: row_align={row_align} must be >= 1")
    if x.dtype != np.uint8:
        raise TypeError(f"{name}: expected a uint8 input, got {x.dtype}")
    if not 0 <= int(pad_value) <= 255:
        raise ValueError(f"{name}: pad_value={pad_value} (the input zero point) is outside uint8's range")
    n, c, h, w = _nchw_shape(x, name)
    oh, ow = check_conv_geometry((n, c, h, w), kh, kw, stride, padding, dilation, name)
    if int(pool) < 1 or pool > min(oh, ow):
        raise ValueError(f"{name}: pool={pool} must be >= 1 and fit the {oh}x{ow} output")
    return n, c, oh, ow


@register("im2col_u8_nhwc", tier="ref")
def im2col_u8_nhwc(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0, pool=1, row_align=1):
    """Unfold uint8 ``x`` (N, H, W, C) into (N*OH*OW, KH*KW*C): rows (n, oh, ow), columns (kh, kw, c).

    The same windows as ``im2col_u8`` with the columns in (kh, kw, c) order instead of (c, kh, kw);
    a weight (OC, C, KH, KW) matches it after ``transpose(0, 2, 3, 1)``. Padding cells hold
    ``pad_value``, the input zero point (real 0.0).

    ``pool > 1`` prepares a fused pool x pool, stride-pool max-pool (``gemm_u8s8_requant_rowmax``):
    rows are ordered (n, ph, pw, dy, dx) with oh = ph * pool + dy, ow = pw * pool + dx, so each
    window's pool * pool rows are consecutive, and the outputs a floor-mode pool drops are left
    out: N * (OH // pool) * (OW // pool) * pool**2 rows.

    ``row_align > 1`` follows each kernel row's KW*C bytes with ``pad_value`` bytes up to a multiple
    of ``row_align`` (KH * roundup(KW*C, row_align) columns): with 4, a 1-channel 3x3 kernel row is
    one 4-byte VNNI group, and the C tier copies it with one 4-byte move.
    """
    n, c, oh, ow = check_im2col_nhwc(x, kh, kw, stride, padding, dilation, pad_value, pool, row_align,
                                     "im2col_u8_nhwc")
    cols = unfold(x.transpose(0, 3, 1, 2), kh, kw, stride, padding, dilation, oh, ow, pad_value)  # (.., C*KH*KW)
    cols = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 1, 2, 4, 5, 3).reshape(n, oh, ow, kh, kw * c)
    cols = np.pad(cols, [(0, 0)] * 4 + [(0, -(kw * c) % row_align)], constant_values=pad_value)
    ph, pw = oh // pool, ow // pool
    cols = cols[:, :ph * pool, :pw * pool].reshape(n, ph, pool, pw, pool, -1).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(cols.reshape(n * ph * pw * pool * pool, -1))


def check_pool_args_nhwc(x, kernel_size, stride, name):
    """Validate a uint8 NHWC max-pool; return (stride, OH, OW)."""
    if x.ndim != 4 or x.dtype != np.uint8:
        raise TypeError(f"{name}: expected a uint8 N x H x W x C input, got {x.dtype} {x.shape}")
    return check_pool_args(x.transpose(0, 3, 1, 2), kernel_size, stride, name)


@register("maxpool2d_u8_nhwc", tier="ref")
def maxpool2d_u8_nhwc(x, kernel_size=2, stride=None):
    """``maxpool2d_u8`` on (N, H, W, C) -> (N, OH, OW, C); same windows, no padding."""
    check_pool_args_nhwc(x, kernel_size, stride, "maxpool2d_u8_nhwc")
    out = maxpool2d_u8(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), kernel_size, stride)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


# ----------------------------------------------------------------------------------------------
# Residual add (QAdd): two uint8 tensors with their own (scale, zero_point) -> one uint8 tensor.
# ----------------------------------------------------------------------------------------------

def check_add_u8(a, b, table_a, table_b, name):
    """Validate ``add_u8``'s operands; return the tables as contiguous int32 (256,) arrays."""
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise TypeError(f"{name}: expected two uint8 tensors, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"{name}: the two inputs must have the same shape, got {a.shape} and {b.shape}")
    tables = []
    for label, table in (("table_a", table_a), ("table_b", table_b)):
        table = np.asarray(table)
        if table.shape != (256,) or table.dtype != np.int32:
            raise TypeError(f"{name}: {label} must be int32 (256,) (one entry per uint8 code), "
                            f"got {table.dtype} {table.shape}")
        tables.append(np.ascontiguousarray(table))
    bound = int(np.abs(tables[0].astype(np.int64)).max()) + int(np.abs(tables[1].astype(np.int64)).max())
    if bound > 2**31 - 1:
        raise ValueError(f"{name}: max|table_a| + max|table_b| = {bound} exceeds int32; "
                         "the sum of the two table entries must fit int32 (scale the tables down)")
    return tables


@register("add_u8", tier="ref")
def add_u8(a, b, table_a, table_b, multiplier, shift, zero_point_out, relu=False):
    """Add two uint8 tensors through per-input int32 tables, then requantize (a residual add).

    ``out = requantize_s32(table_a[a] + table_b[b], None, multiplier, shift, zero_point_out, relu)``
    elementwise: each table maps a code to its real value on a common integer grid (see
    ``tinyeff.quant.qmodules.QAdd``), so the add is one int32 sum, exact by the bound checked here.

    Args:
        a, b: uint8 arrays of the same shape (any layout: the op is elementwise).
        table_a, table_b: int32 (256,), with max|table_a| + max|table_b| < 2**31.
        multiplier, shift: int32 scalars from ``quantize_multiplier`` (one per tensor).
        zero_point_out: output zero point (0..255); ``relu`` clamps at it.
    Returns:
        uint8 array of ``a``'s shape.
    Raises:
        TypeError/ValueError: dtypes, shapes or tables are wrong, or the table sum could overflow.
    """
    table_a, table_b = check_add_u8(a, b, table_a, table_b, "add_u8")
    total = (table_a[a] + table_b[b]).reshape(-1, 1)                       # int32, exact by the check
    out = requantize_s32(total, None, multiplier, shift, zero_point_out, relu=relu)
    return out.reshape(a.shape)


# ----------------------------------------------------------------------------------------------
# A whole integer conv on NHWC: what the C tier runs without materialising the im2col matrix.
# ----------------------------------------------------------------------------------------------

ROW_ALIGN = 4     # conv kernel rows are padded to one VNNI group (see im2col_u8_nhwc's row_align)


def check_conv_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, pool, name):
    """Validate ``conv2d_u8s8_requant_nhwc``'s geometry and weight; return (N, C, OH, OW)."""
    n, c, oh, ow = check_im2col_nhwc(x, kh, kw, stride, padding, 1, a_zero_point, pool, ROW_ALIGN, name)
    check_packed(packed, kh * (-(-(kw * c) // ROW_ALIGN) * ROW_ALIGN), name)
    check_row_group(n * (oh // pool) * (ow // pool) * pool * pool, pool * pool, name)
    return n, c, oh, ow


@register("conv2d_u8s8_requant_nhwc", tier="ref")
def conv2d_u8s8_requant_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, bias, multiplier, shift,
                             zero_point_out, pool=1, qmin=None, qmax=None, relu=False):
    """Integer conv (+ fused ReLU, + fused pool x pool max-pool) on NHWC, requantized to uint8.

    Exactly ``gemm_u8s8_requant_rowmax(im2col_u8_nhwc(x, kh, kw, stride, padding, 1, a_zero_point,
    pool, row_align=4), packed, ..., group=pool * pool)`` reshaped to NHWC. Faster tiers compute the
    same sums without building the im2col matrix (integer sums do not depend on how rows are read).

    Args:
        x: uint8 (N, H, W, C) with zero point ``a_zero_point`` (also the padding value: real 0).
        packed: ``pack_s8`` of the (KH * roundup(KW * C, 4), OC) weight in (kh, kw, c) row order,
            zero rows on each kernel row's padding (``QConv2d._gemm_weight``).
        kh, kw, stride, padding: the conv geometry (dilation 1).
        bias, multiplier, shift, zero_point_out, qmin, qmax, relu: as in ``requantize_s32``.
        pool: 1, or 2 for a following 2x2 / stride-2 max-pool (floor mode).
    Returns:
        uint8 (N, OH // pool, OW // pool, OC).
    """
    n, _, oh, ow = check_conv_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, pool,
                                   "conv2d_u8s8_requant_nhwc")
    cols = im2col_u8_nhwc(x, kh, kw, stride, padding, 1, a_zero_point, pool, ROW_ALIGN)
    out = gemm_u8s8_requant_rowmax(cols, packed, a_zero_point, bias, multiplier, shift, zero_point_out,
                                   pool * pool, qmin, qmax, relu)
    return out.reshape(n, oh // pool, ow // pool, packed.n)
