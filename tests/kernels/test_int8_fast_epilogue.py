"""The GEMM epilogues against the reference: the 16-lane int32 requantization (int8_common.h,
te_requant16) and the fused row max (``gemm_u8s8_requant_rowmax``, conv + ReLU + max-pool).

The C kernels take it when every shift <= 0 and the sums cannot saturate (no bias in
``requantize_s32``; |bias - z_a * colsum| + K * 255 * 128 < 2**31 in ``gemm_u8s8_requant``), and
fall back to the general int64 epilogue otherwise. Both must equal ``ref`` bit for bit, so these
tests aim at the rounding edges: exact ties of both rounding steps, shifts from 0 to -31, the
int32 extremes, and column counts around the 16-lane vector and the 64-column panel.
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.int8_eltwise import spec as eltwise
from tinyeff.kernels.layout import fixed_point
from tinyeff.kernels.int8_gemm import spec as gemm8
from tinyeff.kernels.layout import packed_s8


def _c(name):
    if not kernels.available(name, "c"):
        pytest.skip(kernels.why_unavailable(name, "c"))
    return kernels.get(name, "c")


@pytest.mark.parametrize("n", [1, 15, 16, 17, 63, 64, 65])
@pytest.mark.parametrize("out_dtype,zero_point,relu", [(np.uint8, 128, False), (np.uint8, 0, True),
                                                       (np.int8, -7, False)])
def test_requantize_s32_fast_path_full_int32_range(n, out_dtype, zero_point, relu, rng):
    acc = rng.integers(-2**31, 2**31, (37, n)).astype(np.int32)
    acc[0, :] = -2**31
    acc[1, :] = 2**31 - 1
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-9, 0.99, n))
    args = (acc, None, multiplier, shift, zero_point)
    kwargs = dict(relu=relu, out_dtype=out_dtype)
    np.testing.assert_array_equal(_c("requantize_s32")(*args, **kwargs), eltwise.requantize_s32(*args, **kwargs))


@pytest.mark.parametrize("right", [0, 1, 2, 7, 30, 31])
def test_requantize_s32_fast_path_ties(right):
    """multiplier 2**30 (0.5 exactly): every odd accumulator is a tie of SQRDMULH, and RDIVPOT's
    ties appear at multiples of 2**(right - 1); both signs, around zero and at the extremes."""
    n = 16
    base = np.arange(-40, 40, dtype=np.int64)
    edges = np.array([-2**31, -2**31 + 1, 2**31 - 2, 2**31 - 1], np.int64)
    steps = (np.arange(-5, 6, dtype=np.int64) << max(right, 1)) + (1 << max(right - 1, 0))
    values = np.clip(np.concatenate([base, edges, steps, -steps, 2 * steps + 1]), -2**31, 2**31 - 1)
    acc = np.resize(values, (len(values), n)).astype(np.int32)
    multiplier = np.full(n, 2**30, np.int32)
    shift = np.full(n, -right, np.int32)
    args = (acc, None, multiplier, shift, 0)
    kwargs = dict(out_dtype=np.int8, qmin=-128, qmax=127)
    np.testing.assert_array_equal(_c("requantize_s32")(*args, **kwargs), eltwise.requantize_s32(*args, **kwargs))


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 3, 15), (7, 9, 32), (11, 4, 16), (13, 5, 17),
                                   (6, 288, 63), (12, 288, 64), (17, 576, 65), (31, 97, 127), (2, 1031, 130)])
def test_gemm_u8s8_requant_fast_epilogue_matches_ref(m, k, n, rng):
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    packed = gemm8.pack_s8(rng.integers(-128, 128, (k, n), dtype=np.int8))
    headroom = 2**31 - 1 - k * 255 * 128 - 255 * int(np.abs(packed_s8.unpack_s8(packed).astype(np.int64).sum(0)).max())
    bias = rng.integers(-headroom, headroom + 1, n).astype(np.int32)    # as large as the fast path allows
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-7, 0.9, n))
    for zero_point_a in (0, 77, 255):
        args = (a, packed, zero_point_a, bias, multiplier, shift, 19)
        np.testing.assert_array_equal(_c("gemm_u8s8_requant")(*args, relu=True),
                                      gemm8.gemm_u8s8_requant(*args, relu=True))


def test_gemm_u8s8_requant_mixed_panels_fast_and_general(rng):
    """One panel with a shift > 0 takes the general epilogue, the others the fast one."""
    m, k, n = 9, 40, 150
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    packed = gemm8.pack_s8(rng.integers(-128, 128, (k, n), dtype=np.int8))
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-4, 0.5, n))
    multiplier[70], shift[70] = fixed_point.quantize_multiplier(3.0)
    bias = rng.integers(-1000, 1000, n).astype(np.int32)
    bias[140] = 2**31 - 1                                  # third panel: the sum may saturate
    args = (a, packed, 31, bias, multiplier, shift, 128)
    np.testing.assert_array_equal(_c("gemm_u8s8_requant")(*args), gemm8.gemm_u8s8_requant(*args))


@pytest.mark.parametrize("tier", ["ref", "c"])
@pytest.mark.parametrize("m,k,n,group", [(4, 1, 1, 4), (12, 9, 32, 4), (16, 9, 32, 4), (44, 288, 64, 4),
                                         (8, 5, 17, 2), (36, 7, 65, 12), (30, 33, 16, 3), (24, 64, 130, 6),
                                         (7, 3, 15, 1), (1000, 9, 32, 4)])
def test_gemm_u8s8_requant_rowmax_is_maxpool_of_requant(tier, m, k, n, group, rng):
    """The max of the int32 sums, requantized, equals the max of the requantized outputs."""
    if not kernels.available("gemm_u8s8_requant_rowmax", tier):
        pytest.skip(kernels.why_unavailable("gemm_u8s8_requant_rowmax", tier))
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    packed = gemm8.pack_s8(rng.integers(-128, 128, (k, n), dtype=np.int8))
    bias = rng.integers(-3000, 3000, n).astype(np.int32)
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-4, 0.05, n))
    for relu, zero_point in ((True, 40), (False, 128)):
        args = (a, packed, 99, bias, multiplier, shift, zero_point)
        expected = gemm8.gemm_u8s8_requant(*args, relu=relu).reshape(m // group, group, n).max(axis=1)
        got = kernels.get("gemm_u8s8_requant_rowmax", tier)(*args, group, relu=relu)
        np.testing.assert_array_equal(got, expected)


def test_gemm_u8s8_requant_rowmax_general_epilogue(rng):
    """shift > 0 and a saturating bias: the general epilogue after the row max, still exact."""
    m, k, n = 48, 20, 70
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    packed = gemm8.pack_s8(rng.integers(-128, 128, (k, n), dtype=np.int8))
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(0.5, 4.0, n))
    bias = rng.integers(-2**31, 2**31, n).astype(np.int32)
    args = (a, packed, 5, bias, multiplier, shift, 128)
    from tinyeff.kernels.int8_gemm import c as c_int8
    expected = gemm8.gemm_u8s8_requant(*args).reshape(m // 4, 4, n).max(axis=1)
    for isa in c_int8.available_isas():
        np.testing.assert_array_equal(c_int8.gemm_u8s8_requant_rowmax(*args, 4, isa=isa), expected, err_msg=isa)


@pytest.mark.parametrize("tier", ["ref", "c"])
@pytest.mark.parametrize("m,group", [(10, 4), (12, 5)])
def test_gemm_u8s8_requant_rowmax_rejects_bad_group(tier, m, group):
    a = np.zeros((m, 3), np.uint8)
    packed = gemm8.pack_s8(np.zeros((3, 2), np.int8))
    if not kernels.available("gemm_u8s8_requant_rowmax", tier):
        pytest.skip(kernels.why_unavailable("gemm_u8s8_requant_rowmax", tier))
    with pytest.raises(ValueError, match="group"):
        kernels.get("gemm_u8s8_requant_rowmax", tier)(a, packed, 0, None, 2**30, -1, 0, group)
