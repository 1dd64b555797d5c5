"""Sparse conv / linear kernels (CSR, direct loop): every tier against the dense reference."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.pool import spec as pool_ref
from tinyeff.kernels.sparse import spec as sparse_ref
from tinyeff.kernels.layout.csr import pack_sparse, unpack_sparse

TIERS = ["ref", "numba", "c"]
SPARSITIES = [0.0, 0.5, 0.9, 0.99, 1.0]

# (N, C, H, W, OC, KH, KW, stride, padding, dilation): batch 1, primes, stride > 1 with padding,
# dilation, a 1x1 kernel, planes wider than one 16-float vector, and the seed CNN's conv2 shape.
CONV_SHAPES = [
    (1, 1, 3, 3, 1, 3, 3, 1, 0, 1),
    (2, 3, 7, 5, 5, 3, 3, 1, 1, 1),
    (1, 4, 13, 13, 7, 3, 3, 2, 0, 1),
    (3, 2, 11, 9, 3, 3, 2, 2, 1, 2),
    (2, 5, 9, 10, 4, 5, 5, 3, 2, 1),
    (2, 6, 17, 19, 3, 1, 1, 1, 0, 1),
    (2, 32, 13, 13, 64, 3, 3, 1, 0, 1),
]


def _kernel(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


def _pruned(rng, shape, sparsity, dtype):
    if dtype == np.int8:
        w = rng.integers(-128, 128, shape, dtype=np.int8)
    else:
        w = rng.standard_normal(shape).astype(np.float32)
    w[rng.random(shape) < sparsity] = 0
    return w


def test_pack_sparse_roundtrip(rng):
    w = _pruned(rng, (5, 3, 3, 3), 0.7, np.float32)
    packed = pack_sparse(w)
    np.testing.assert_array_equal(unpack_sparse(packed), w)
    assert packed.nnz == np.count_nonzero(w) and packed.indptr[-1] == packed.nnz


def test_pack_sparse_rejects_float64(rng):
    with pytest.raises(TypeError, match="float32 or int8"):
        pack_sparse(rng.standard_normal((3, 4)))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_spconv_f32_csr_matches_ref(tier, shape, sparsity, rng):
    n, c, h, w, oc, kh, kw, stride, padding, dilation = shape
    spconv = _kernel("spconv_f32_csr", tier)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    packed = pack_sparse(_pruned(rng, (oc, c, kh, kw), sparsity, np.float32))
    bias = rng.standard_normal(oc).astype(np.float32)
    got = spconv(x, packed, bias, stride, padding, dilation)
    want = sparse_ref.spconv_f32_csr(x, packed, bias, stride, padding, dilation)
    assert got.shape == want.shape and got.dtype == np.float32 and got.flags.c_contiguous
    # tolerance: float32 sums of up to C*KH*KW products, in a different order than BLAS
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tier", TIERS)
def test_spconv_f32_csr_fused_relu_no_bias(tier, rng):
    spconv = _kernel("spconv_f32_csr", tier)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    packed = pack_sparse(_pruned(rng, (4, 3, 3, 3), 0.5, np.float32))
    got = spconv(x, packed, None, 2, 1, 1, relu=True)
    want = np.maximum(sparse_ref.spconv_f32_csr(x, packed, None, 2, 1, 1), 0)
    assert (got >= 0).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # float32 summation order


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("n,in_features,out_features", [(1, 1, 1), (1, 37, 5), (7, 64, 17),
                                                          (64, 300, 33)])
def test_splinear_f32_csr_matches_ref(tier, sparsity, n, in_features, out_features, rng):
    splinear = _kernel("splinear_f32_csr", tier)
    x = rng.standard_normal((n, in_features)).astype(np.float32)
    packed = pack_sparse(_pruned(rng, (out_features, in_features), sparsity, np.float32))
    bias = rng.standard_normal(out_features).astype(np.float32)
    got = splinear(x, packed, bias, relu=True)
    want = sparse_ref.splinear_f32_csr(x, packed, bias, relu=True)
    assert got.shape == (n, out_features) and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)  # float32 summation order


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_spconv_u8s8_csr_bit_exact(tier, shape, sparsity, rng):
    n, c, h, w, oc, kh, kw, stride, padding, dilation = shape
    spconv = _kernel("spconv_u8s8_csr", tier)
    x = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    packed = pack_sparse(_pruned(rng, (oc, c, kh, kw), sparsity, np.int8))
    bias = rng.integers(-1000, 1000, oc).astype(np.int32)
    got = spconv(x, packed, bias, stride, padding, dilation, pad_value=7)
    want = sparse_ref.spconv_u8s8_csr(x, packed, bias, stride, padding, dilation, pad_value=7)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("tier", TIERS)
def test_spconv_u8s8_csr_extremes(tier):
    spconv = _kernel("spconv_u8s8_csr", tier)
    x = np.full((2, 8, 6, 6), 255, dtype=np.uint8)
    packed = pack_sparse(np.full((3, 8, 3, 3), -128, dtype=np.int8))
    got = spconv(x, packed, None, 1, 1, 1, pad_value=255)
    np.testing.assert_array_equal(got, np.full((2, 3, 6, 6), -128 * 255 * 72, dtype=np.int32))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("n,in_features,out_features", [(1, 1, 1), (3, 37, 5), (64, 300, 33)])
def test_splinear_u8s8_csr_bit_exact(tier, sparsity, n, in_features, out_features, rng):
    splinear = _kernel("splinear_u8s8_csr", tier)
    x = rng.integers(0, 256, (n, in_features), dtype=np.uint8)
    packed = pack_sparse(_pruned(rng, (out_features, in_features), sparsity, np.int8))
    bias = rng.integers(-1000, 1000, out_features).astype(np.int32)
    np.testing.assert_array_equal(splinear(x, packed, bias),
                                  sparse_ref.splinear_u8s8_csr(x, packed, bias))


@pytest.mark.parametrize("tier", TIERS)
def test_spconv_f32_csr_rejects_mismatched_channels(tier, rng):
    spconv = _kernel("spconv_f32_csr", tier)
    packed = pack_sparse(_pruned(rng, (4, 3, 3, 3), 0.5, np.float32))
    with pytest.raises(ValueError, match="same C"):
        spconv(np.zeros((1, 2, 5, 5), dtype=np.float32), packed)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("pool", [2, 3])
@pytest.mark.parametrize("sparsity", [0.0, 0.9, 1.0])
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_spconv_f32_csr_fused_max_pool(tier, shape, sparsity, pool, rng):
    n, c, h, w, oc, kh, kw, stride, padding, dilation = shape
    spconv = _kernel("spconv_f32_csr", tier)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    packed = pack_sparse(_pruned(rng, (oc, c, kh, kw), sparsity, np.float32))
    bias = rng.standard_normal(oc).astype(np.float32)
    conv = sparse_ref.spconv_f32_csr(x, packed, bias, stride, padding, dilation, relu=True)
    if min(conv.shape[2:]) < pool:
        with pytest.raises(ValueError, match="pool="):
            spconv(x, packed, bias, stride, padding, dilation, relu=True, pool=pool)
        return
    # the contract, from the unfused pieces: conv + bias + ReLU, then MaxPool2d(pool) (floor)
    want, _ = pool_ref.maxpool2d_f32(conv, pool, pool, 0)
    got = spconv(x, packed, bias, stride, padding, dilation, relu=True, pool=pool)
    assert got.shape == want.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tier", TIERS)
def test_spconv_f32_csr_fused_pool_without_relu_keeps_negatives(tier, rng):
    spconv = _kernel("spconv_f32_csr", tier)
    x = -np.abs(rng.standard_normal((2, 3, 12, 12))).astype(np.float32)
    packed = pack_sparse(np.abs(_pruned(rng, (4, 3, 3, 3), 0.5, np.float32)))
    got = spconv(x, packed, None, 1, 0, 1, pool=2)
    want, _ = pool_ref.maxpool2d_f32(sparse_ref.spconv_f32_csr(x, packed), 2, 2, 0)
    assert (got <= 0).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("pool", [0, 2.0, True, 9])
def test_spconv_f32_csr_rejects_bad_pool(tier, pool, rng):
    spconv = _kernel("spconv_f32_csr", tier)
    packed = pack_sparse(_pruned(rng, (4, 3, 3, 3), 0.5, np.float32))
    with pytest.raises(ValueError, match="pool="):
        spconv(np.zeros((1, 3, 10, 10), dtype=np.float32), packed, pool=pool)
