"""Fixed-point requantization arithmetic (gemmlowp / TFLite semantics), on NumPy int64 arrays.

Quantized inference rescales int32 accumulators by a real factor (``scale_x * scale_w / scale_out``)
without a float: the factor becomes an int32 ``multiplier`` in [2**30, 2**31) and a power-of-two
``shift``, applied with a saturating rounding doubling high multiply and a rounding right shift.
``docs/int8.md`` derives it once. These helpers are the executable definition: the int8 reference
kernels (``kernels/int8_eltwise/``) and the integer layers (``tinyeff/quant``) use them, and
csrc/int8_common.h's ``te_requant_one`` matches them bit for bit.
"""
import numpy as np


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


def saturating_rounding_doubling_high_mul(x, m):
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


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize_int64(acc, multiplier, shift):
    """Apply ``multiplier * 2**(shift - 31)`` to int64 values already saturated to int32."""
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.clip(acc << left, -2**31, 2**31 - 1)                    # saturating left shift
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), right)

