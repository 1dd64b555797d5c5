"""``conv2d_u8s8_smallc_nhwc`` (first-layer integer conv, output channels in the lanes) on every ISA
path it declares (one skipped, with its reason, where this machine cannot run it; the ARM64 ones run
under scripts/arm64-check.sh), bit for bit against the reference (the implicit-im2col conv's
reference on the same weight), and the same codes as ``conv2d_u8s8_requant_nhwc``.

What can break it: the tap groups (1 channel: one 4-byte group per kernel row reading a byte past
the row; 3 channels: the rows' ninth bytes gathered into one group), loads past the end of the
image on the last windows (which take the portable body), output-channel blocks of 32 with tails,
the AVX2 vpmaddubsw pairs (exact for inputs <= 127, for weight pairs that fit int16, and with the
input bytes split in two otherwise: u8 255 x s8 -128), two groups per vpmaddwd (7-bit weights on
inputs <= 127: 127 x 64 x 4 on a lane), the vector epilogue's fallback, and on ARM64 the input taken
as a - 128 (sums shifted by 128 * colsum, added back in the epilogue), plain NEON's k01 / k23 halves,
and its epilogue for any shift and bias (saturating).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeff import kernels
from tinyeff.kernels import cpu, registry
from tinyeff.kernels.int8_conv import spec as conv8
from tinyeff.kernels.int8_conv_small import spec as small
from tinyeff.kernels.int8_eltwise.spec import random_requant
from tinyeff.kernels.int8_gemm.spec import pack_s8

NAME = "conv2d_u8s8_smallc_nhwc"
ISAS = registry.declared_isas(NAME, "c") or ("portable",)


def _kernel(isa):
    """The C kernel on ``isa``; the test is skipped, naming the path, where it cannot run."""
    if not kernels.available(NAME, "c"):
        pytest.skip(kernels.why_unavailable(NAME, "c"))
    if isa not in registry.isa_paths(NAME, "c"):
        pytest.skip(f"{NAME}: ISA path {isa} cannot run here (usable: {', '.join(cpu.usable_paths())})")
    return kernels.get(NAME, "c", isa=isa)


def _check(isa, x, w, stride, padding, z_in, requant, z_out, pool, relu):
    fn = _kernel(isa)
    args = (x, small.pack_conv_small(w), stride, padding, z_in, *requant, z_out)
    want = small.conv2d_u8s8_smallc_nhwc(*args, pool=pool, relu=relu)
    np.testing.assert_array_equal(fn(*args, pool=pool, relu=relu), want, err_msg=isa)
    return want


def test_tap_groups_of_first_layers():
    assert small.tap_groups(3, 3, 1) == ([(0, 0), (1, 0), (2, 0)], [])            # 9 taps: 3 groups
    direct, gathered = small.tap_groups(3, 3, 3)                                     # 27 taps: 7 groups
    assert direct == [(r, b) for r in range(3) for b in (0, 4)] and gathered == [(0, 8), (1, 8), (2, 8)]
    assert small.tap_groups(3, 3, 4) == ([(r, b) for r in range(3) for b in (0, 4, 8)], [])
    assert not small.fits(32, 3, 3, 32) and small.fits(256, 5, 5, 1) and not small.fits(257, 3, 3, 1)


@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 3), h=st.integers(1, 13), w=st.integers(1, 13), c=st.integers(1, 4),
       k=st.sampled_from([1, 2, 3, 5]), stride=st.integers(1, 2), padding=st.integers(0, 2),
       pool=st.sampled_from([1, 2]), oc=st.integers(1, 70), seven_bit=st.booleans(), w7=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_matches_reference_hypothesis(isa, n, h, w, c, k, stride, padding, pool, oc, seven_bit, w7, seed):
    _kernel(isa)
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    if min(oh, ow) < pool or not small.fits(oc, k, k, c, pool):
        return
    rng = np.random.default_rng(seed)
    top = 128 if seven_bit else 256
    x = rng.integers(0, top, (n, h, w, c), dtype=np.uint8)
    wq = rng.integers(-64, 64, (oc, c, k, k), dtype=np.int8) if w7 else rng.integers(-128, 128, (oc, c, k, k), dtype=np.int8)
    requant = (rng.integers(-2**15, 2**15, oc, dtype=np.int32), *random_requant(rng, oc, 1e-4, 1e-1))
    _check(isa, x, wq, stride, padding, int(rng.integers(0, top)), requant, int(rng.integers(0, 256)),
           pool, relu=bool(seed % 2))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("x_value,w_value", [(255, -128), (255, 127), (127, -128), (0, 127), (127, -64), (127, 63)])
def test_extremes(isa, c, x_value, w_value):
    """Constant codes at both ends: 255 x -128 saturates a vpmaddubsw pair unless the bytes are split;
    the border (zero point 0) differs from the image by up to 255."""
    oc = 40
    x = np.full((2, 9, 8, c), x_value, np.uint8)
    requant = (np.zeros(oc, np.int32), *random_requant(np.random.default_rng(0), oc, 1e-6, 1e-3))
    for relu in (False, True):
        _check(isa, x, np.full((oc, c, 3, 3), w_value, np.int8), 1, 1, 0, requant, 128, 2, relu)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("oc", [1, 4, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 96, 256])
def test_output_channel_blocks(isa, oc, rng):
    """Every way the output channels can end a block of 32 (or of 16, the last one), and fill all 8
    blocks; 8-bit input at the zero point's far end (z_in 255: the padding is 255 too)."""
    x = rng.integers(0, 256, (2, 7, 9, 3), dtype=np.uint8)
    wq = rng.integers(-128, 128, (oc, 3, 3, 3), dtype=np.int8)
    requant = (rng.integers(-2**16, 2**16, oc, dtype=np.int32), *random_requant(rng, oc, 1e-5, 1e-2))
    _check(isa, x, wq, 1, 1, 255, requant, 7, 2, relu=False)
    _check(isa, x[..., :1], wq[:, :1], 2, 0, 0, requant, 200, 1, relu=True)


@pytest.mark.parametrize("isa", ISAS)
def test_any_shift_and_saturating_bias(isa, rng):
    """Multipliers above 1 (a left shift) and biases near the int32 ends: the x86 paths take their
    slow epilogue, the NEON ones their only one (saturating adds and shifts)."""
    oc = 48
    x = rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    wq = rng.integers(-128, 128, (oc, 3, 3, 3), dtype=np.int8)
    bias = np.where(np.arange(oc) % 2, 2**31 - 2**20, -2**31 + 2**20).astype(np.int32)
    bias[::3] = rng.integers(-2**10, 2**10, len(bias[::3]))
    requant = (bias, *random_requant(rng, oc, 1e-3, 50.0))
    for pool in (1, 2):
        _check(isa, x, wq, 1, 0, 3, requant, 128, pool, relu=False)


@pytest.mark.parametrize("isa", ISAS)
def test_same_codes_as_the_gemm_conv(isa, rng):
    """A Fashion-MNIST / CIFAR first layer (32 channels, ReLU, fused pool): the same codes as the
    implicit-im2col GEMM conv on its packed weight, on every path."""
    for c, size in [(1, 28), (3, 32)]:
        x = rng.integers(0, 128, (3, size, size, c), dtype=np.uint8)
        wq = rng.integers(-128, 128, (32, c, 3, 3), dtype=np.int8)
        requant = (rng.integers(-2**12, 2**12, 32, dtype=np.int32), *random_requant(rng, 32, 1e-4, 1e-2))
        got = _check(isa, x, wq, 1, 0, 3, requant, 0, 2, relu=True)
        gemm = pack_s8(conv8.gemm_weight(wq))
        np.testing.assert_array_equal(got, kernels.get("conv2d_u8s8_requant_nhwc")(
            x, gemm, 3, 3, 1, 0, 3, *requant, 0, pool=2, relu=True))


def test_rejects_what_it_does_not_take(rng):
    x = rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    packed = small.pack_conv_small(rng.integers(-128, 128, (8, 3, 3, 3), dtype=np.int8))
    requant = (None, *random_requant(rng, 8))
    for tier in ("ref", "c"):
        if not kernels.available(NAME, tier):
            continue
        fn = kernels.get(NAME, tier)
        with pytest.raises(ValueError, match="channels"):
            fn(x[..., :2], packed, 1, 0, 0, *requant, 0)
        with pytest.raises(ValueError, match="pool"):
            fn(x, packed, 1, 0, 0, *requant, 0, pool=3)
        with pytest.raises(TypeError, match="pack_conv_small"):
            fn(x, pack_s8(conv8.gemm_weight(packed.weight)), 1, 0, 0, *requant, 0)


def test_qconv2d_first_layer_runs_it_with_the_same_codes(rng):
    """QConv2d takes the small-channel kernel for a few-channel layer on the x86 vector paths (not
    for a wide one, nor for 8 output channels); its fused conv + pool codes equal the GEMM conv's on the layer's packed weight."""
    from tinyeff.quant import qmodules as qm
    wq = rng.integers(-128, 128, (32, 1, 3, 3), dtype=np.int8)
    layer = qm.QConv2d(wq, rng.uniform(1e-3, 1e-2, 32).astype(np.float32), rng.integers(-999, 999, 32).astype(np.int32),
                       (np.float32(0.02), 0), (np.float32(0.1), 0), relu=True, act_qmax=127)
    x = rng.integers(0, 128, (4, 28, 28, 1), dtype=np.uint8)
    uses = registry.best_isa(NAME, "c") in qm.QConv2d.SMALL_ISAS
    assert (layer._small_weight(2) is not None) == uses
    wide = qm.QConv2d(np.zeros((8, 32, 3, 3), np.int8), np.ones(8, np.float32), np.zeros(8, np.int32),
                      (np.float32(1), 0), (np.float32(1), 0))
    assert wide._small_weight(1) is None
    narrow = qm.QConv2d(np.zeros((8, 3, 3, 3), np.int8), np.ones(8, np.float32), np.zeros(8, np.int32),
                        (np.float32(1), 0), (np.float32(1), 0))
    assert narrow._small_weight(1) is None                     # half of its 16-channel block would idle
    want = kernels.get("conv2d_u8s8_requant_nhwc")(x, layer.packed, 3, 3, 1, 0, 0, layer.bias_q, layer.multiplier,
                                                    layer.shift, 0, pool=2, qmax=127, relu=True)
    np.testing.assert_array_equal(layer.forward_nhwc(x, pool=2), want)
