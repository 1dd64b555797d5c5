"""Both tilings of the direct convolution (csrc/conv/dconv.c) on every ISA path, whatever dconv.c picks.

The forward kernel covers a plane either in flat tiles (consecutive positions of the padded grid,
thrown-away columns included) or in row tiles (whole vectors inside each output row, the last one
shifted left to end at OW); the weight gradient reads the output gradient either copied onto the
padded grid or as it is, row by row, when every row is whole vectors. The automatic choice depends
on the plane and the ISA path, so here each mode is forced and checked against the reference. The
shapes: rows of exactly one and two vectors of every path (8, 16, 32), rows of half a vector (the
weight gradient then takes two rows per vector where the row count is even: 8x8 on AVX-512, 4x4 on
AVX2, 6x2 on the 16-byte paths; 7x8 is odd), rows that need an
overlapping last vector (OW 12, 20, 13), channel counts off the 4-channel block, rows fewer than
one tile's vectors (a last tile that repeats a vector), a bias and ReLU.
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import registry
from tinyeff.kernels.conv import c as conv_c
from tinyeff.kernels.conv.spec import check_conv_args

ISAS = ("portable", "avx2", "avx512", "neon")
# (N, C, H, W, OC, K, stride, padding)
SHAPES = [(2, 3, 8, 8, 5, 3, 1, 1), (1, 4, 16, 16, 6, 3, 1, 1), (2, 2, 3, 32, 9, 3, 1, 1),
          (1, 3, 12, 12, 4, 3, 1, 1), (2, 2, 5, 22, 3, 3, 1, 0), (1, 5, 15, 15, 7, 3, 2, 2),
          (1, 2, 1, 8, 3, 1, 1, 0), (2, 3, 4, 4, 5, 3, 1, 1), (1, 2, 6, 2, 3, 3, 1, 1),
          (2, 3, 7, 8, 5, 3, 1, 1)]


def _path(isa):
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    if isa not in registry.isa_paths("conv2d_f32", "c"):
        pytest.skip(f"ISA path {isa!r} cannot run on this CPU; run the suite on such a CPU")


def _operands(rng, shape):
    n, c, h, w, oc, k, stride, padding = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((oc, c, k, k)).astype(np.float32)
    return x, wt, rng.standard_normal(oc).astype(np.float32)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", ["flat", "rows", "auto"])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_tiling_matches_ref(shape, mode, isa, rng):
    _path(isa)
    x, w, b = _operands(rng, shape)
    stride, padding = shape[6:]
    got = conv_c.forward(x, w, b, stride, padding, 1, True, isa=isa, mode=mode)
    want = kernels.get("conv2d_f32", "ref")(x, w, b, stride, padding, 1, True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(w[0].size))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", SHAPES)
def test_weight_grad_rows_and_padded_grid_match_ref(shape, isa, rng):
    _path(isa)
    x, w, _ = _operands(rng, shape)
    stride, padding = shape[6:]
    k = w.shape[2]
    oh, ow = check_conv_args(x, w, None, stride, padding, 1, "t")
    g = rng.standard_normal((x.shape[0], w.shape[0], oh, ow)).astype(np.float32)
    want = kernels.get("conv2d_wgrad_f32", "ref")(x, g, k, k, stride, padding, 1)
    vl = conv_c.lib().tinyeff_dconv_vector_floats(conv_c.isa_code("conv2d_wgrad_f32", isa))
    pairs = 2 * ow == vl and oh % 2 == 0              # two half-vector rows per vector
    modes = [False, True] if ow % vl == 0 or pairs else [False]
    for rows in modes:
        got = conv_c.weight_grad(x, g, k, k, stride, padding, 1, oh, ow, isa, rows)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(x.shape[0] * oh * ow))
