"""``conv2d_u8s8_requant_nhwc`` against the reference (im2col_u8_nhwc + gemm_u8s8_requant_rowmax) bit
for bit. The C tier reads GEMM rows straight from the zero-point-padded image (gemm_s8.c, implicit
im2col), kernel rows rounded up to 4 bytes against zero weights, so KW * C that is not a multiple
of 4 (1 and 3 channels) reads pixels past the window and must still match; shapes that break the tiling (batch 1, prime sizes, OC around 16 and 64, row counts not
multiples of the 6-row tile or the 12-row chunk), stride 2, padding 0-2, 1x1 / 3x3 / 5x5 kernels, the
fused 2x2 max-pool, and extreme codes (zero points 0 and 255, weights -128 / 127)."""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.int8_conv import spec as conv8
from tinyeff.kernels.layout import fixed_point

ALIGN = conv8.ROW_ALIGN


def _c():
    if not kernels.available("conv2d_u8s8_requant_nhwc", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_u8s8_requant_nhwc", "c"))
    return kernels.get("conv2d_u8s8_requant_nhwc", "c")


def _weight(rng, k, c, oc, fill=None):
    """Packed (KH * roundup(KW * C, 4), OC) weight with zero rows on each kernel row's padding."""
    run = -(-(k * c) // ALIGN) * ALIGN
    w = rng.integers(-128, 128, (k, k * c, oc), dtype=np.int8) if fill is None else np.full((k, k * c, oc), fill, np.int8)
    w = np.pad(w, ((0, 0), (0, run - k * c), (0, 0))).reshape(k * run, oc)
    return kernels.get("pack_s8", "ref")(w)


def _requant(rng, oc):
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-5, 1e-2, oc))
    return rng.integers(-5000, 5000, oc).astype(np.int32), multiplier, shift


def _check(x, packed, k, stride, padding, z_in, requant, pool, relu=True, z_out=9):
    args = (x, packed, k, k, stride, padding, z_in, *requant, z_out)
    got = _c()(*args, pool=pool, relu=relu)
    np.testing.assert_array_equal(got, conv8.conv2d_u8s8_requant_nhwc(*args, pool=pool, relu=relu))
    return got


_SHAPES = [(1, 1, 1, 4, 1), (1, 5, 7, 4, 15), (2, 7, 7, 16, 16), (3, 13, 11, 8, 17), (1, 9, 9, 32, 63),
           (2, 6, 5, 64, 64), (1, 7, 3, 12, 65), (2, 5, 5, 3, 7), (1, 8, 8, 1, 5), (2, 4, 9, 5, 33)]
_GEOMETRIES = [(3, 1, 1), (3, 2, 1), (1, 1, 0), (1, 2, 0), (3, 1, 0), (5, 1, 2)]


@pytest.mark.parametrize("n,h,w,c,oc,k,stride,padding", [   # only kernels that fit the padded image
    s + g for s in _SHAPES for g in _GEOMETRIES if min(s[1], s[2]) + 2 * g[2] >= g[0]])
def test_conv2d_nhwc_matches_ref_shapes(n, h, w, c, oc, k, stride, padding, rng):
    x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    got = _check(x, _weight(rng, k, c, oc), k, stride, padding, 77, _requant(rng, oc), pool=1)
    assert got.shape == (n, (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1, oc)


@pytest.mark.parametrize("n,h,w,c,oc", [(1, 4, 4, 4, 16), (2, 11, 11, 32, 64), (1, 9, 7, 8, 17), (3, 6, 10, 3, 5)])
@pytest.mark.parametrize("padding", [0, 1])
def test_conv2d_nhwc_fused_maxpool_matches_ref(n, h, w, c, oc, padding, rng):
    x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    _check(x, _weight(rng, 3, c, oc), 3, 1, padding, 128, _requant(rng, oc), pool=2)


@pytest.mark.parametrize("x_value,w_value", [(255, 127), (255, -128), (0, 127), (0, -128)])
@pytest.mark.parametrize("z_in", [0, 255])
def test_conv2d_nhwc_extremes(x_value, w_value, z_in, rng):
    """Constant codes at both ends against both zero points: the padding (z_in) and the image differ
    by 255 everywhere, and a tiny output scale saturates the clamp on both sides."""
    x = np.full((2, 6, 5, 16), x_value, dtype=np.uint8)
    oc = 17
    multiplier, shift = fixed_point.quantize_multiplier(np.full(oc, 0.5))
    requant = (np.zeros(oc, np.int32), multiplier, shift)
    for relu in (False, True):
        _check(x, _weight(rng, 3, 16, oc, fill=w_value), 3, 1, 1, z_in, requant, pool=1, relu=relu, z_out=128)


def test_conv2d_nhwc_rejects_wrong_weight_rows(rng):
    x = rng.integers(0, 256, (1, 5, 5, 4), dtype=np.uint8)
    packed = kernels.get("pack_s8", "ref")(rng.integers(-128, 128, (35, 8), dtype=np.int8))   # 3 * 12 = 36 needed
    for tier in ("ref", "c"):
        if kernels.available("conv2d_u8s8_requant_nhwc", tier):
            with pytest.raises(ValueError, match="K=36"):
                kernels.get("conv2d_u8s8_requant_nhwc", tier)(x, packed, 3, 3, 1, 1, 0, None, np.int32(1 << 30),
                                                              np.int32(-1), 0)


@pytest.mark.parametrize("features", ["avx2,fma", ""])
@pytest.mark.parametrize("k,stride,padding,pool", [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 0, 2)])
def test_conv2d_nhwc_without_vnni_falls_back_exactly(features, k, stride, padding, pool, rng, monkeypatch):
    """On a CPU without VNNI (simulated) the C tier runs the explicit im2col + GEMM: same outputs."""
    monkeypatch.setenv("TINYEFF_CPU_FEATURES", features)
    x = rng.integers(0, 256, (2, 9, 9, 16), dtype=np.uint8)
    _check(x, _weight(rng, k, 16, 17), k, stride, padding, 5, _requant(rng, 17), pool=pool)
