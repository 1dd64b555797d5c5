"""int8 GEMMs: every tier (and every compiled C instruction-set path) equals the reference bit for bit."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeff import kernels
from tinyeff.kernels.int8_gemm import spec as gemm8
from tinyeff.kernels.layout import packed_s8

TIERS = ["ref", "numba", "c"]
# 1, primes, the 6-row tile and 64-column panel +-1, a 16-column group +-1, long K, K % 4 != 0.
SHAPES = [(1, 1, 1), (3, 5, 7), (6, 64, 16), (7, 65, 17), (5, 63, 65), (17, 64, 31), (19, 257, 63),
          (13, 27, 10), (2, 4099, 3), (1, 288, 129)]


def _get(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


def _c_isas():
    if not kernels.available("gemm_s8", "c"):
        return []
    from tinyeff.kernels.int8_gemm import c as c_int8
    return c_int8.available_isas()


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gemm_s8_matches_ref(tier, m, k, n, rng):
    kernel = _get("gemm_s8", tier)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    np.testing.assert_array_equal(kernel(a, b), gemm8.gemm_s8(a, b))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gemm_u8s8_matches_ref(tier, m, k, n, rng):
    kernel = _get("gemm_u8s8", tier)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    np.testing.assert_array_equal(kernel(a, b), gemm8.gemm_u8s8(a, b))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gemm_u8s8_packed_matches_ref(tier, m, k, n, rng):
    kernel = _get("gemm_u8s8_packed", tier)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    np.testing.assert_array_equal(kernel(a, gemm8.pack_s8(b)), a.astype(np.int32) @ b.astype(np.int32))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("a_value,b_value", [(-128, -128), (-128, 127), (127, 127), (0, -128)])
def test_gemm_s8_extremes_long_k(tier, a_value, b_value):
    kernel = _get("gemm_s8", tier)
    m, k, n = 3, 4099, 17
    a = np.full((m, k), a_value, dtype=np.int8)
    b = np.full((k, n), b_value, dtype=np.int8)
    np.testing.assert_array_equal(kernel(a, b), gemm8.gemm_s8(a, b))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("a_value,b_value", [(255, -128), (255, 127), (0, 127), (128, -1)])
def test_gemm_u8s8_extremes_long_k(tier, a_value, b_value):
    kernel = _get("gemm_u8s8", tier)
    m, k, n = 3, 4099, 17
    a = np.full((m, k), a_value, dtype=np.uint8)
    b = np.full((k, n), b_value, dtype=np.int8)
    np.testing.assert_array_equal(kernel(a, b), gemm8.gemm_u8s8(a, b))


@pytest.mark.parametrize("tier", TIERS)
def test_gemm_u8s8_largest_k_does_not_overflow(tier):
    kernel = _get("gemm_u8s8", tier)
    a = np.full((1, packed_s8.K_MAX), 255, dtype=np.uint8)
    b = np.full((packed_s8.K_MAX, 2), -128, dtype=np.int8)
    out = kernel(a, b)
    assert out[0, 0] == -255 * 128 * packed_s8.K_MAX  # -2,139,095,040: just inside int32


@pytest.mark.parametrize("tier", TIERS)
def test_gemm_s8_rejects_k_beyond_bound(tier):
    kernel = _get("gemm_s8", tier)
    a = np.zeros((1, packed_s8.K_MAX + 1), dtype=np.int8)
    with pytest.raises(ValueError, match="exceeds"):
        kernel(a, np.zeros((packed_s8.K_MAX + 1, 1), dtype=np.int8))


@pytest.mark.parametrize("tier", TIERS)
def test_gemm_u8s8_rejects_signed_activation(tier):
    kernel = _get("gemm_u8s8", tier)
    with pytest.raises(TypeError, match="uint8"):
        kernel(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8))


@pytest.mark.parametrize("tier", ["ref", "c"])
@pytest.mark.parametrize("k,n", [(1, 1), (5, 17), (64, 64), (65, 130), (4099, 3)])
def test_pack_s8_layout_matches_ref(tier, k, n, rng):
    pack = _get("pack_s8", tier)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    packed, expected = pack(b), gemm8.pack_s8(b)
    np.testing.assert_array_equal(packed.data, expected.data)
    np.testing.assert_array_equal(packed.colsum, b.astype(np.int32).sum(axis=0))
    np.testing.assert_array_equal(packed_s8.unpack_s8(packed), b)


def test_pack_s8_documented_byte_position(rng):
    k, n = 9, 70                                    # K4 = 3; panels of width 64 and 16
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    data = gemm8.pack_s8(b).data
    assert data.size == 3 * 4 * 80
    k4, p, j, t = 1, 1, 5, 2                        # b[4*1 + 2, 64 + 5] lives in panel 1 (width 16)
    assert data[p * 3 * 256 + (k4 * 16 + j) * 4 + t] == b[6, 69]


def test_gemm_u8s8_packed_rejects_wrong_k(rng):
    packed = gemm8.pack_s8(np.zeros((8, 4), np.int8))
    with pytest.raises(ValueError, match="K=7"):
        gemm8.gemm_u8s8_packed(np.zeros((2, 7), np.uint8), packed)


@pytest.mark.parametrize("m,k,n", SHAPES + [(12, 4, 64), (6, 3, 48)])
def test_gemm_c_every_isa_path_matches_ref(m, k, n, rng):
    isas = _c_isas()
    if not isas:
        pytest.skip(kernels.why_unavailable("gemm_s8", "c"))
    from tinyeff.kernels.int8_gemm import c as c_int8
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    for isa in isas:
        np.testing.assert_array_equal(c_int8.gemm_s8(a, b, isa=isa), gemm8.gemm_s8(a, b), err_msg=isa)
        au = a.view(np.uint8)
        np.testing.assert_array_equal(c_int8.gemm_u8s8(au, b, isa=isa), gemm8.gemm_u8s8(au, b), err_msg=isa)


def test_gemm_c_reports_missing_amx():
    if not kernels.available("gemm_s8", "c"):
        pytest.skip(kernels.why_unavailable("gemm_s8", "c"))
    from tinyeff.kernels.int8_gemm import c as c_int8
    assert "AMX" in c_int8.code_path()


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 20), k=st.integers(1, 140), n=st.integers(1, 140), seed=st.integers(0, 2**31))
def test_gemm_s8_hypothesis_shapes_every_tier(m, k, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    expected = gemm8.gemm_s8(a, b)
    for tier in ("numba", "c"):
        if kernels.available("gemm_s8", tier):
            np.testing.assert_array_equal(kernels.get("gemm_s8", tier)(a, b), expected, err_msg=tier)
