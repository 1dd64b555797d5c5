"""Every C instruction-set path of the int8 kernels equals the reference bit for bit.

The AVX2 GEMM tile uses vpmaddubsw, whose int16 pair sums saturate, only on panels that
``pack_s8`` proved safe (``PackedS8.pairs_fit``); these tests aim at its edges: weight pairs exactly
at the bound (positive parts summing to 128, negative parts to -128) against activations of 255,
panels that fit next to panels that do not, K % 4 tails, signed activations, and the implicit-im2col
convolution with 1 and 3 input channels. Paths that cannot run here (NEON on x86) are exercised
under qemu-aarch64 instead (see docs/int8.md).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeff import kernels
from tinyeff.kernels import registry
from tinyeff.kernels.int8_conv.spec import ROW_ALIGN
from tinyeff.kernels.layout.fixed_point import quantize_multiplier


class _Ref:
    """The NumPy references by kernel name: ``ref.pack_s8(b)``."""
    def __getattr__(self, name):
        return kernels.get(name, "ref")


class _C:
    """The C tier by kernel name, one ISA path at a time: ``c.gemm_s8(a, b, isa="avx2")``; ``c.paths(name)``."""
    def __getattr__(self, name):
        return lambda *args, isa=None, **kwargs: kernels.get(name, "c", isa=isa)(*args, **kwargs)

    @staticmethod
    def paths(name):
        return registry.isa_paths(name, "c")


ref = _Ref()


def _c_int8():
    if not kernels.available("gemm_u8s8_packed", "c"):
        pytest.skip(kernels.why_unavailable("gemm_u8s8_packed", "c"))
    return _C()


def _fitting_weight(rng, k, n, boundary=0.5):
    """int8 (k, n) whose row pairs (2i, 2i+1) all fit int16 against uint8 activations; a fraction
    ``boundary`` of the second entries sit exactly on the bound."""
    w = rng.integers(-128, 128, (k + k % 2, n)).reshape(-1, 2, n)
    first = w[:, 0]
    hi, lo = 128 - np.maximum(first, 0), -128 - np.minimum(first, 0)
    hi, lo = np.minimum(hi, 127), np.maximum(lo, -128)
    second = rng.integers(lo, hi + 1)
    edge = rng.random(second.shape) < boundary
    second = np.where(edge, np.where(rng.random(second.shape) < 0.5, hi, lo), second)
    w[:, 1] = second
    return w.reshape(-1, n)[:k].astype(np.int8)


def _activation(rng, m, k, dtype=np.uint8):
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    a = rng.integers(lo, hi + 1, (m, k))
    a[rng.random((m, k)) < 0.5] = hi if dtype == np.uint8 else lo    # long runs of the extreme
    return a.astype(dtype)


@pytest.mark.parametrize("w1,w2,fits", [(64, 64, 1), (65, 64, 0), (-64, -64, 1), (-65, -64, 0), (127, -128, 1),
                                        (127, 1, 1), (127, 2, 0), (-128, 0, 1), (-128, -1, 0), (0, 0, 1)])
def test_pack_s8_pairs_fit_bound(w1, w2, fits):
    b = np.zeros((8, 20), np.int8)
    b[6, 3], b[7, 3] = w1, w2                # pair (4g+2, 4g+3) of column 3
    for tier in ("ref", "c"):
        if not kernels.available("pack_s8", tier):
            continue
        assert kernels.get("pack_s8", tier)(b).pairs_fit.tolist() == [fits], tier


def test_pack_s8_pairs_fit_pairs_within_groups_only():
    """k 1 and 2 are in different vpmaddubsw pairs: (1, 2) summing past 128 does not matter."""
    b = np.zeros((5, 1), np.int8)
    b[1, 0] = b[2, 0] = 127
    b[4, 0] = 127                            # K % 4 tail: paired with a zero pad
    assert ref.pack_s8(b).pairs_fit.tolist() == [1]


@pytest.mark.parametrize("k,n", [(1, 1), (5, 63), (64, 64), (130, 129), (27, 200)])
def test_pack_s8_c_matches_ref_pairs_fit(k, n, rng):
    c_int8 = _c_int8()
    for b in (_fitting_weight(rng, k, n), rng.integers(-128, 128, (k, n), dtype=np.int8),
              rng.integers(-64, 64, (k, n), dtype=np.int8)):
        got, want = c_int8.pack_s8(b), ref.pack_s8(b)
        np.testing.assert_array_equal(got.data, want.data)
        np.testing.assert_array_equal(got.pairs_fit, want.pairs_fit)


def test_gemm_mixed_panels_every_isa(rng):
    """Panel 1 saturates (pairs of 127), panels 0 and 2 fit: each panel takes its own tile."""
    c_int8 = _c_int8()
    m, k, n = 29, 203, 150
    b = _fitting_weight(rng, k, n)
    b[10:12, 64 + 7] = 127
    packed = c_int8.pack_s8(b)
    assert packed.pairs_fit.tolist() == [1, 0, 1]
    a = _activation(rng, m, k)
    want = a.astype(np.int32) @ b.astype(np.int32)
    for isa in c_int8.paths("gemm_u8s8_packed"):
        np.testing.assert_array_equal(c_int8.gemm_u8s8_packed(a, packed, isa=isa), want, err_msg=isa)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 30), k=st.integers(1, 300), n=st.integers(1, 140), seed=st.integers(0, 2**31 - 1),
       seven_bit=st.booleans())
def test_gemm_every_isa_hypothesis_extremes(m, k, n, seed, seven_bit):
    c_int8 = _c_int8()
    rng = np.random.default_rng(seed)
    b = rng.integers(-64, 64, (k, n)).astype(np.int8) if seven_bit else _fitting_weight(rng, k, n)
    a, a_s = _activation(rng, m, k), _activation(rng, m, k, np.int8)
    packed = c_int8.pack_s8(b)
    assert packed.pairs_fit.all()
    for isa in c_int8.paths("gemm_u8s8_packed"):
        np.testing.assert_array_equal(c_int8.gemm_u8s8_packed(a, packed, isa=isa), ref.gemm_u8s8(a, b), err_msg=isa)
        np.testing.assert_array_equal(c_int8.gemm_s8(a_s, b, isa=isa), ref.gemm_s8(a_s, b), err_msg=isa)


@pytest.mark.parametrize("m,k,n,group", [(12, 27, 32, 4), (48, 288, 64, 4), (7, 65, 17, 1), (24, 100, 130, 2)])
@pytest.mark.parametrize("shift_sign", [-1, 1])
def test_gemm_requant_rowmax_every_isa(m, k, n, group, shift_sign, rng):
    """Fast tile + fast epilogue (shift <= 0) and the general epilogue (a left shift)."""
    c_int8 = _c_int8()
    b = _fitting_weight(rng, k, n)
    packed = c_int8.pack_s8(b)
    a = _activation(rng, m, k)
    scale = rng.uniform(1e-5, 1e-2, n) if shift_sign < 0 else rng.uniform(1.5, 3.0, n)
    multiplier, shift = quantize_multiplier(scale)
    bias = rng.integers(-50000, 50000, n).astype(np.int32)
    args = (a, packed, 131, bias, multiplier, shift, 7)
    want = ref.gemm_u8s8_requant_rowmax(*args, group, relu=True)
    for isa in c_int8.paths("gemm_u8s8_packed"):
        got = c_int8.gemm_u8s8_requant_rowmax(*args, group, relu=True, isa=isa)
        np.testing.assert_array_equal(got, want, err_msg=isa)


def _conv_weight(w, k, c):
    """(KH, KW*C, OC) -> packed (KH * roundup(KW*C, 4), OC) with zero rows on the row padding."""
    run = -(-(k * c) // ROW_ALIGN) * ROW_ALIGN
    return ref.pack_s8(np.pad(w, ((0, 0), (0, run - k * c), (0, 0))).reshape(k * run, -1))


@pytest.mark.parametrize("c,oc,stride,padding,pool", [(3, 32, 1, 0, 2), (1, 32, 1, 0, 2), (32, 64, 1, 1, 1),
                                                      (5, 17, 2, 1, 1), (16, 65, 1, 0, 2)])
@pytest.mark.parametrize("seven_bit", [True, False])
def test_conv2d_implicit_every_isa(c, oc, stride, padding, pool, seven_bit, rng):
    c_int8 = _c_int8()
    k = 3
    lo, hi = (-64, 64) if seven_bit else (-128, 128)
    packed = _conv_weight(rng.integers(lo, hi, (k, k * c, oc)).astype(np.int8), k, c)
    x = rng.integers(0, 256, (2, 11, 13, c), dtype=np.uint8)
    x[:, ::2] = 255
    multiplier, shift = quantize_multiplier(rng.uniform(1e-5, 1e-2, oc))
    args = (x, packed, k, k, stride, padding, 3, rng.integers(-5000, 5000, oc).astype(np.int32), multiplier,
            shift, 9)
    want = ref.conv2d_u8s8_requant_nhwc(*args, pool=pool, relu=True)
    for isa in c_int8.paths("gemm_u8s8_packed"):
        got = c_int8.conv2d_u8s8_requant_nhwc(*args, pool=pool, relu=True, isa=isa)
        np.testing.assert_array_equal(got, want, err_msg=isa)


def _epilogue_paths(name):
    _c_int8()
    return registry.isa_paths(name, "c")


@pytest.mark.parametrize("case", ["fast", "bias", "left-shift", "extremes"])
@pytest.mark.parametrize("m,n", [(1, 1), (3, 7), (5, 8), (4, 9), (2, 17), (3, 64), (2, 65)])
def test_requantize_s32_every_isa(case, m, n, rng):
    c_int8 = _c_int8()
    acc = rng.integers(-2**24, 2**24, (m, n)).astype(np.int32)
    scale = rng.uniform(1e-5, 1e-2, n) if case != "left-shift" else rng.uniform(1.5, 40.0, n)
    multiplier, shift = quantize_multiplier(scale)
    bias = rng.integers(-2**30, 2**30, n).astype(np.int32) if case == "bias" else None
    if case == "extremes":
        acc.flat[::2] = np.iinfo(np.int32).min
        acc.flat[1::3] = np.iinfo(np.int32).max
    args = (acc, bias, multiplier, shift, 17)
    for out_dtype in (np.uint8, np.int8):
        want = ref.requantize_s32(*args, out_dtype=out_dtype)
        for isa in _epilogue_paths("requantize_s32"):
            np.testing.assert_array_equal(c_int8.requantize_s32(*args, out_dtype=out_dtype, isa=isa), want,
                                          err_msg=isa)


@pytest.mark.parametrize("size", [1, 7, 8, 9, 33, 262144 + 5])
@pytest.mark.parametrize("shift", [-31, -20, 0, 2])
def test_add_u8_every_isa(size, shift, rng):
    c_int8 = _c_int8()
    a = rng.integers(0, 256, size, dtype=np.uint8)
    b = rng.integers(0, 256, size, dtype=np.uint8)
    table_a = np.sort(rng.integers(-2**29, 2**29, 256)).astype(np.int32)
    table_b = np.sort(rng.integers(-2**29, 2**29, 256)).astype(np.int32)
    args = (a, b, table_a, table_b, np.int32(rng.integers(1 << 30, 1 << 31)), np.int32(shift), 100)
    want = ref.add_u8(*args, relu=True)
    for isa in _epilogue_paths("add_u8"):
        np.testing.assert_array_equal(c_int8.add_u8(*args, relu=True, isa=isa), want, err_msg=isa)


# every (shape, window) pair whose window fits the image
POOL_CASES = [(shape, k, s) for shape in [(1, 1, 2, 2), (2, 3, 9, 35), (1, 2, 6, 64), (1, 1, 4, 67), (1, 1, 3, 33)]
              for k, s in [(2, 2), (3, 2), (2, 1)] if min(shape[2:]) >= k]


@pytest.mark.parametrize("shape,kernel_size,stride", POOL_CASES)
def test_maxpool2d_u8_every_isa(shape, kernel_size, stride, rng):
    c_int8 = _c_int8()
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    x[..., ::3] = 255
    want = ref.maxpool2d_u8(x, kernel_size, stride)
    for isa in _epilogue_paths("maxpool2d_u8"):
        np.testing.assert_array_equal(c_int8.maxpool2d_u8(x, kernel_size, stride, isa=isa), want, err_msg=isa)


@pytest.mark.parametrize("c", [1, 15, 16, 31, 32, 33, 64, 65])
@pytest.mark.parametrize("kernel_size,stride", [(2, 2), (3, 1)])
def test_maxpool2d_u8_nhwc_every_isa(c, kernel_size, stride, rng):
    c_int8 = _c_int8()
    x = rng.integers(0, 256, (2, 7, 5, c), dtype=np.uint8)
    x[:, ::2, :, ::3] = 255
    want = ref.maxpool2d_u8(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), kernel_size, stride).transpose(0, 2, 3, 1)
    for isa in _epilogue_paths("maxpool2d_u8_nhwc"):
        np.testing.assert_array_equal(c_int8.maxpool2d_u8_nhwc(x, kernel_size, stride, isa=isa), want, err_msg=isa)
