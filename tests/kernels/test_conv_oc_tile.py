"""The channels-in-lanes forward tile (csrc/conv/dconv_oc.c) and its fused max-pool, on every ISA path.

``conv2d_f32``'s C tier picks one of two forward tiles per layer (kernels/conv/c.py); parity tests
see whichever it picks, so here each tile is forced on the same layers. Both sum the taps in weight
order with one FMA each, so they must agree bit for bit, and both must match the reference. The
shapes put the last register block across an image boundary and past the batch's end, and leave
channels beyond every path's channel block (8, 16 or 32).
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import registry
from tinyeff.kernels.conv import c as conv_c
from tinyeff.kernels.conv.spec import F32_SUMS
from tinyeff.kernels.layout.direct import output_positions

ISAS = ("portable", "avx2", "avx512", "neon")
# (N, C, H, W, OC, KH, stride, padding, dilation)
SHAPES = [(1, 1, 3, 3, 1, 3, 1, 0, 1), (3, 5, 6, 6, 17, 3, 1, 0, 1), (2, 3, 11, 9, 40, 3, 2, 1, 1),
          (5, 7, 8, 8, 33, 3, 1, 2, 2), (2, 4, 9, 13, 64, 1, 1, 0, 1)]


def _kernel(isa):
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    if isa not in registry.isa_paths("conv2d_f32", "c"):
        pytest.skip(f"conv2d_f32: ISA path {isa!r} cannot run on this CPU (runs: "
                    f"{', '.join(registry.isa_paths('conv2d_f32', 'c'))}); run the suite on such a CPU")
    return kernels.get("conv2d_f32", "c", isa=isa)


def _operands(rng, shape):
    n, c, h, w, oc, k, *_ = shape
    return (rng.standard_normal((n, c, h, w)).astype(np.float32),
            rng.standard_normal((oc, c, k, k)).astype(np.float32), rng.standard_normal(oc).astype(np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", SHAPES)
def test_both_forward_tiles_agree_bit_for_bit_and_match_ref(isa, shape, rng, monkeypatch):
    conv = _kernel(isa)
    x, w, b = _operands(rng, shape)
    stride, padding, dilation = shape[6:]
    outs = []
    for channels_in_lanes in (False, True):
        monkeypatch.setattr(conv_c, "_channels_in_lanes", lambda *args, pick=channels_in_lanes: pick)
        outs.append(conv(x, w, b, stride, padding, dilation, relu=True))
    np.testing.assert_array_equal(outs[0], outs[1])
    want = kernels.get("conv2d_f32", "ref")(x, w, b, stride, padding, dilation, relu=True)
    np.testing.assert_allclose(outs[1], want, rtol=F32_SUMS.rtol, atol=F32_SUMS.atol)  # summation order


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("pool", [2, 3])
def test_fused_max_pool_equals_conv_then_pool(isa, pool, rng):
    conv = _kernel(isa)
    x, w, b = _operands(rng, (3, 6, 14, 11, 20, 3))
    whole = conv(x, w, b, relu=False)                                        # (3, 20, 12, 9)
    ph, pw = whole.shape[2] // pool, whole.shape[3] // pool
    blocks = whole[:, :, :ph * pool, :pw * pool].reshape(3, 20, ph, pool, pw, pool)
    want = np.maximum(blocks.max(axis=(3, 5)), 0)
    np.testing.assert_array_equal(conv(x, w, b, relu=True, pool=pool), want)   # same sums, max, ReLU


def test_pool_larger_than_the_output_is_rejected(rng):
    x, w, b = _operands(rng, (1, 2, 5, 5, 3, 3))
    with pytest.raises(ValueError, match="pool=4"):
        kernels.get("conv2d_f32", "ref")(x, w, b, pool=4)


def test_output_positions_list_each_pool_window_side_by_side():
    np.testing.assert_array_equal(output_positions(2, 3, 5), [0, 1, 2, 5, 6, 7])
    # a 5x5 output pooled 2x2 keeps rows and columns 0..3; layout rows are 7 floats wide
    np.testing.assert_array_equal(output_positions(5, 5, 7, 2),
                                  [0, 1, 7, 8, 2, 3, 9, 10, 14, 15, 21, 22, 16, 17, 23, 24])
