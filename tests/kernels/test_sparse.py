"""Sparse conv / linear kernels (CSR, direct loop): every tier against the dense reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeff import kernels
from tinyeff.kernels.pool import spec as pool_ref
from tinyeff.kernels.sparse import spec as sparse_ref
from tinyeff.kernels.layout.csr import pack_sparse, unpack_sparse
from tinyeff.testing import c_paths, kernel_or_skip

# The C tier once per ISA path it has bodies for; a path this CPU (capped by TINYEFF_CPU_FEATURES)
# cannot run is skipped with that reason, so the report shows what was not exercised.
C_PATHS = c_paths()
TIERS = ["ref", "numba"] + C_PATHS
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


_kernel = kernel_or_skip


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


@pytest.mark.parametrize("tier", C_PATHS)
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_splinear_every_tail_length(tier, sparsity, rng):
    """The batch is the row length: 1 .. 2 * 16 + 2 covers every vector tail of every width."""
    f32, s32 = _kernel("splinear_f32_csr", tier), _kernel("splinear_u8s8_csr", tier)
    for n in range(1, 35):
        x = rng.standard_normal((n, 23)).astype(np.float32)
        packed = pack_sparse(_pruned(rng, (5, 23), sparsity, np.float32))
        np.testing.assert_allclose(f32(x, packed, None, relu=False),
                                   sparse_ref.splinear_f32_csr(x, packed, None),
                                   rtol=1e-5, atol=1e-5, err_msg=f"n={n}")  # float32 summation order
        xq = rng.integers(0, 256, (n, 23), dtype=np.uint8)
        packed_q = pack_sparse(_pruned(rng, (5, 23), sparsity, np.int8))
        np.testing.assert_array_equal(s32(xq, packed_q, None), sparse_ref.splinear_u8s8_csr(xq, packed_q, None),
                                      err_msg=f"n={n}")


@pytest.mark.parametrize("tier", C_PATHS)
@pytest.mark.parametrize("h,w", [(3, 3), (4, 5), (6, 6), (9, 7), (10, 17), (12, 40)])
def test_spconv_plane_tails_and_fused_pool(tier, h, w, rng):
    """Planes from under one vector to several tiles, odd nonzero counts, pooled and not."""
    f32, s32 = _kernel("spconv_f32_csr", tier), _kernel("spconv_u8s8_csr", tier)
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    packed = pack_sparse(_pruned(rng, (5, 3, 3, 3), 0.6, np.float32))
    bias = rng.standard_normal(5).astype(np.float32)
    conv = sparse_ref.spconv_f32_csr(x, packed, bias, 1, 1, 1, relu=True)
    np.testing.assert_allclose(f32(x, packed, bias, 1, 1, 1, relu=True), conv, rtol=1e-5, atol=1e-5)
    want, _ = pool_ref.maxpool2d_f32(conv, 2, 2, 0)
    np.testing.assert_allclose(f32(x, packed, bias, 1, 1, 1, relu=True, pool=2), want, rtol=1e-5, atol=1e-5)
    xq = rng.integers(0, 256, (2, 3, h, w), dtype=np.uint8)
    packed_q = pack_sparse(_pruned(rng, (5, 3, 3, 3), 0.6, np.int8))
    np.testing.assert_array_equal(s32(xq, packed_q, None, 1, 1, 1, pad_value=3),
                                  sparse_ref.spconv_u8s8_csr(xq, packed_q, None, 1, 1, 1, pad_value=3))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 5), h=st.integers(3, 20), w=st.integers(3, 40),
       oc=st.integers(1, 6), k=st.sampled_from([1, 3]), padding=st.integers(0, 1),
       sparsity=st.sampled_from([0.0, 0.5, 0.9, 1.0]), extreme=st.booleans(), seed=st.integers(0, 2**31))
def test_spconv_u8s8_every_isa_path_bit_exact(n, c, h, w, oc, k, padding, sparsity, extreme, seed):
    """Every C ISA path (the u8 pair loop, the int16 copy, the narrower fallbacks) against the reference,
    on shapes from one vector to several tiles, with the u8 / s8 extremes (255 x -128 runs)."""
    from tinyeff.kernels import registry
    if not kernels.available("spconv_u8s8_csr", "c"):
        pytest.skip(kernels.why_unavailable("spconv_u8s8_csr", "c"))
    rng = np.random.default_rng(seed)
    if extreme:
        x = rng.choice(np.array([0, 255], np.uint8), (n, c, h, w))
        wq = rng.choice(np.array([-128, 127], np.int8), (oc, c, k, k))
        wq[rng.random(wq.shape) < sparsity] = 0
    else:
        x, wq = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8), _pruned(rng, (oc, c, k, k), sparsity, np.int8)
    packed = pack_sparse(wq)
    bias = rng.integers(-(2**20), 2**20, oc).astype(np.int32)
    want = sparse_ref.spconv_u8s8_csr(x, packed, bias, 1, padding, 1, pad_value=255)
    for isa in registry.isa_paths("spconv_u8s8_csr", "c"):
        got = kernels.get("spconv_u8s8_csr", "c", isa=isa)(x, packed, bias, 1, padding, 1, pad_value=255)
        np.testing.assert_array_equal(got, want, err_msg=isa)
