"""Requantization: gemmlowp fixed-point semantics, every tier equal to the reference bit for bit."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.int8_eltwise import spec as eltwise
from tinyeff.kernels.layout import fixed_point
from tinyeff.kernels.int8_gemm import spec as gemm8

TIERS = ["ref", "numba", "c"]


def _get(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


def _gemmlowp_scalar(acc, multiplier, shift):
    """Independent, plain-Python statement of gemmlowp's MultiplyByQuantizedMultiplier (TFLite)."""
    left, right = max(shift, 0), max(-shift, 0)
    x = max(min(acc * (1 << left), 2**31 - 1), -2**31)
    if x == -2**31 and multiplier == -2**31:
        high = 2**31 - 1
    else:
        prod = x * multiplier
        nudge = (1 << 30) if prod >= 0 else 1 - (1 << 30)
        total = prod + nudge
        high = total // 2**31 if total >= 0 else -((-total) // 2**31)
    mask = (1 << right) - 1
    rem, threshold = high & mask, (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if rem > threshold else 0)


@pytest.mark.parametrize("real", [0.5, 0.25, 1e-3, 0.123456, 0.75, 1.0, 3.5, 1 / 3])
def test_quantize_multiplier_reconstructs_real(real):
    multiplier, shift = fixed_point.quantize_multiplier(real)
    assert 2**30 <= multiplier < 2**31
    assert abs(multiplier * 2.0 ** (shift - 31) - real) <= real * 2**-30


def test_quantize_multiplier_per_channel_shapes():
    multiplier, shift = fixed_point.quantize_multiplier(np.array([0.5, 0.01, 2.0]))
    assert multiplier.dtype == np.int32 and shift.shape == (3,)
    np.testing.assert_array_equal(shift, [0, -6, 2])


def test_quantize_multiplier_rejects_nonpositive():
    with pytest.raises(ValueError, match="positive"):
        fixed_point.quantize_multiplier(0.0)


@pytest.mark.parametrize("shift", [-31, -12, -1, 0, 1, 5])
def test_ref_requantize_matches_gemmlowp_scalar(shift, rng):
    acc = np.concatenate([rng.integers(-2**31, 2**31, 200), [-2**31, 2**31 - 1, 0, 1, -1, 2**20, -2**20]])
    acc = acc.astype(np.int32).reshape(1, -1)
    multiplier = 1518500250                       # round(2**31 / sqrt(2))
    out = eltwise.requantize_s32(acc, None, multiplier, shift, 0, -128, 127, out_dtype=np.int8)
    expected = [min(max(_gemmlowp_scalar(int(v), multiplier, shift), -128), 127) for v in acc[0]]
    np.testing.assert_array_equal(out[0], expected)


def test_requantize_high_mul_rounds_ties_up():
    """gemmlowp's nudge (1 - 2**30 for negative products) rounds SQRDMULH's ties toward +inf."""
    acc = np.array([[3, -3, 5, -5, 2, -2]], dtype=np.int32)
    out = eltwise.requantize_s32(acc, None, 2**30, 0, 0, -128, 127, out_dtype=np.int8)  # x * 0.5
    np.testing.assert_array_equal(out[0], [2, -1, 3, -2, 1, -1])


def test_requantize_shift_rounds_ties_away_from_zero():
    acc = np.array([[6, -6, 10, -10, 4, -4]], dtype=np.int32)  # x * 0.5 (exact), then / 2**1 (ties)
    out = eltwise.requantize_s32(acc, None, 2**30, -1, 0, -128, 127, out_dtype=np.int8)
    np.testing.assert_array_equal(out[0], [2, -2, 3, -3, 1, -1])


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("m,n", [(1, 1), (3, 7), (17, 65), (64, 10)])
@pytest.mark.parametrize("out_dtype,zero_point,relu", [(np.uint8, 128, False), (np.uint8, 3, True),
                                                       (np.int8, -5, False), (np.int8, 0, True)])
def test_requantize_s32_matches_ref(tier, m, n, out_dtype, zero_point, relu, rng):
    kernel = _get("requantize_s32", tier)
    acc = rng.integers(-2**31, 2**31, (m, n)).astype(np.int32)
    acc[0, 0] = -2**31
    bias = rng.integers(-2**31, 2**31, n).astype(np.int32)
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-6, 4.0, n))
    args = (acc, bias, multiplier, shift, zero_point)
    kwargs = dict(relu=relu, out_dtype=out_dtype)
    np.testing.assert_array_equal(kernel(*args, **kwargs), eltwise.requantize_s32(*args, **kwargs))


@pytest.mark.parametrize("tier", TIERS)
def test_requantize_s32_scalar_params_and_no_bias(tier, rng):
    kernel = _get("requantize_s32", tier)
    acc = rng.integers(-2**20, 2**20, (5, 9)).astype(np.int32)
    multiplier, shift = fixed_point.quantize_multiplier(0.0123)
    out = kernel(acc, None, multiplier, shift, 7, qmin=10, qmax=200)
    np.testing.assert_array_equal(out, eltwise.requantize_s32(acc, None, multiplier, shift, 7, qmin=10, qmax=200))
    assert out.min() >= 10 and out.max() <= 200


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 27, 32), (13, 288, 64), (5, 65, 130), (3, 4099, 10)])
def test_gemm_u8s8_requant_matches_ref(tier, m, k, n, rng):
    kernel = _get("gemm_u8s8_requant", tier)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    packed = gemm8.pack_s8(rng.integers(-128, 128, (k, n), dtype=np.int8))
    bias = rng.integers(-5000, 5000, n).astype(np.int32)
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-4, 1e-2, n))
    args = (a, packed, 113, bias, multiplier, shift, 9)
    np.testing.assert_array_equal(kernel(*args, relu=True), gemm8.gemm_u8s8_requant(*args, relu=True))


def test_gemm_u8s8_requant_equals_float_math_up_to_rounding(rng):
    """The integer pipeline computes round((a - za) @ w * s + zo) (up to ties and the multiplier's 31 bits)."""
    m, k, n = 6, 50, 8
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = rng.integers(-127, 128, (k, n), dtype=np.int8)
    real = rng.uniform(1e-4, 1e-3, n)
    multiplier, shift = fixed_point.quantize_multiplier(real)
    out = gemm8.gemm_u8s8_requant(a, gemm8.pack_s8(w), 100, None, multiplier, shift, 128)
    exact = (a.astype(np.int64) - 100) @ w.astype(np.int64) * real + 128
    assert np.abs(out.astype(np.float64) - np.clip(exact, 0, 255)).max() <= 0.5 + 1e-6


def test_requantize_rejects_bad_range():
    with pytest.raises(ValueError, match="qmin"):
        eltwise.requantize_s32(np.zeros((1, 1), np.int32), None, 2**30, 0, 0, qmin=10, qmax=300)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 27, 32), (13, 288, 67)])
def test_gemm_u8s8_requant_c_every_isa_path_matches_ref(m, k, n, rng):
    if not kernels.available("gemm_u8s8_requant", "c"):
        pytest.skip(kernels.why_unavailable("gemm_u8s8_requant", "c"))
    from tinyeff.kernels.int8_gemm import c as c_int8
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    packed = gemm8.pack_s8(rng.integers(-128, 128, (k, n), dtype=np.int8))
    bias = rng.integers(-2**31, 2**31, n).astype(np.int32)          # large: exercises saturation
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-6, 8.0, n))
    args = (a, packed, 200, bias, multiplier, shift, -3)
    expected = gemm8.gemm_u8s8_requant(*args, out_dtype=np.int8)
    for isa in c_int8.available_isas():
        np.testing.assert_array_equal(c_int8.gemm_u8s8_requant(*args, out_dtype=np.int8, isa=isa), expected,
                                      err_msg=isa)
