"""spconv_u8s8_requant_nhwc: the requantizing sparse int8 conv on NHWC, against its reference and the dense layer.

The parity test runs the spec's cases on every ISA path; here hypothesis draws the shapes (batches
around the 16-image block, one-pixel rows, odd planes, pools), the sparsities 0 / 50 / 90 / 100%, and
u8 255 x s8 -128 extremes, and the integer layer is checked against the dense int8 path it replaces.
7-bit inputs (codes and zero point at most 127, what `tinyeff quantize` gives by default) take AVX2's
vpmaddubsw quads; a batch whose later block has a byte above 127 mixes both AVX2 tiles in one call.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeff.kernels.int8_conv.spec import gemm_weight
from tinyeff.kernels.int8_eltwise.spec import random_requant
from tinyeff.kernels.int8_gemm.spec import pack_s8
from tinyeff.kernels.layout.csr import pack_sparse
from tinyeff.kernels.sparse import spec as sparse_ref
from tinyeff.testing import c_paths, kernel_or_skip

NAME = "spconv_u8s8_requant_nhwc"
PATHS = c_paths("portable", "avx2", "avx512", "avx512_vnni", "neon")   # VNNI: the four-nonzero quads


def _weight(rng, shape, sparsity, extreme):
    w = np.full(shape, -128, np.int8) if extreme else rng.integers(-128, 128, shape, dtype=np.int8)
    w[rng.random(shape) < sparsity] = 0
    return w


@pytest.mark.parametrize("tier", PATHS)
@settings(max_examples=15, deadline=None)
@given(n=st.sampled_from([1, 15, 16, 17, 33]), c=st.integers(1, 9), h=st.integers(1, 12), w=st.integers(1, 12),
       oc=st.integers(1, 20), k=st.sampled_from([1, 2, 3]), padding=st.integers(0, 2), pool=st.sampled_from([1, 2]),
       sparsity=st.sampled_from([0.0, 0.5, 0.9, 1.0]), extreme=st.booleans(), relu=st.booleans(),
       top=st.sampled_from([255, 127]), seed=st.integers(0, 2**31))
def test_spconv_requant_nhwc_bit_exact(tier, n, c, h, w, oc, k, padding, pool, sparsity, extreme, relu, top, seed):
    """Every C ISA path equals the reference bit for bit, fast (vector) and exact (int64) requantization alike."""
    kernel = kernel_or_skip(NAME, tier)
    rng = np.random.default_rng(seed)
    oh, ow = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    if min(oh, ow) < pool:
        return                                 # no output window: the check rejects it (tested below)
    wt = _weight(rng, (oc, c, k, k), sparsity, extreme)
    x = np.full((n, h, w, c), top, np.uint8) if extreme else rng.integers(0, top + 1, (n, h, w, c), dtype=np.uint8)
    z_in = 0 if extreme else int(rng.integers(0, top + 1))
    wide = bool(rng.integers(0, 2))           # shifts > 0 and large biases take the exact int64 fallback
    multiplier, shift = random_requant(rng, oc, *((1e-4, 4.0) if wide else (1e-6, 1e-2)))
    bias = rng.integers(-2**30 if wide else -2**16, 2**30 if wide else 2**16, oc, dtype=np.int32)
    args = (x, pack_sparse(wt), padding, z_in, bias, multiplier, shift, int(rng.integers(0, 256)))
    want = sparse_ref.spconv_u8s8_requant_nhwc(*args, pool=pool, relu=relu)
    np.testing.assert_array_equal(kernel(*args, pool=pool, relu=relu), want)


@pytest.mark.parametrize("tier", PATHS)
@pytest.mark.parametrize("late_byte, z_in, c", [(None, 127, 8), (200, 0, 40), (127, 128, 8), (None, 0, 48),
                                                (255, 0, 48)])
def test_spconv_requant_nhwc_seven_bit_blocks(tier, late_byte, z_in, c, rng):
    """7-bit blocks run AVX2's vpmaddubsw quads, exact only while no byte exceeds 127: one byte above it
    in the last 16-image block (or in its 32-channel transposes, c >= 32), or a zero point above it (the
    padding), sends that block or the layer to the int16 pairs. Weights at -128 and 127 with inputs at
    127 are the quads' largest pair sums."""
    kernel = kernel_or_skip(NAME, tier)
    wt = _weight(rng, (24, c, 3, 3), 0.5, False)
    wt[:, :c // 2][wt[:, :c // 2] != 0] = -128
    wt[:, c // 2:][wt[:, c // 2:] != 0] = 127
    x = rng.integers(0, 128, (37, 7, 6, c), dtype=np.uint8)
    x[:3] = 127
    if late_byte is not None:
        x[-6, 2, 3, 5] = late_byte                 # in the second block, a full one
    multiplier, shift = random_requant(rng, 24, 1e-6, 1e-3)
    args = (x, pack_sparse(wt), 1, z_in, None, multiplier, shift, 3)
    for pool in (1, 2):
        np.testing.assert_array_equal(kernel(*args, pool=pool, relu=False),
                                      sparse_ref.spconv_u8s8_requant_nhwc(*args, pool=pool, relu=False))


@pytest.mark.parametrize("tier", PATHS)
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("pool", [1, 2])
def test_spconv_requant_nhwc_equals_dense_int8_conv(tier, sparsity, pool, rng):
    """The sparse layer is the dense int8 layer (conv2d_u8s8_requant_nhwc) on the same weight: the seed
    CNN's conv2 shape, with a batch that is not a whole number of 16-image blocks."""
    kernel = kernel_or_skip(NAME, tier)
    wt = _weight(rng, (64, 32, 3, 3), sparsity, False)
    x = rng.integers(0, 256, (19, 13, 13, 32), dtype=np.uint8)
    multiplier, shift = random_requant(rng, 64, 1e-5, 1e-3)
    bias = rng.integers(-2**12, 2**12, 64, dtype=np.int32)
    dense = kernel_or_skip("conv2d_u8s8_requant_nhwc", "ref")(x, pack_s8(gemm_weight(wt)), 3, 3, 1, 1, 9, bias,
                                                             multiplier, shift, 5, pool=pool, relu=True)
    got = kernel(x, pack_sparse(wt), 1, 9, bias, multiplier, shift, 5, pool=pool, relu=True)
    np.testing.assert_array_equal(got, dense)


@pytest.mark.parametrize("bad, match", [
    ({"pool": 3}, "pool=3 must be 1 or 2"),
    ({"x": np.zeros((1, 4, 4, 2), np.uint8)}, "C matches the weight"),
    ({"a_zero_point": 300}, "outside uint8"),
])
def test_spconv_requant_nhwc_rejects_bad_arguments(bad, match, rng):
    args = {"x": np.zeros((1, 4, 4, 3), np.uint8), "packed": pack_sparse(_weight(rng, (2, 3, 3, 3), 0.5, False)),
            "padding": 0, "a_zero_point": 0, "bias": None, "multiplier": np.int32(2**30), "shift": np.int32(-8),
            "zero_point_out": 0}
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        sparse_ref.spconv_u8s8_requant_nhwc(**args)
