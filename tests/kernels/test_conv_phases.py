"""The input gradient as one stride-1 correlation per phase of the stride (conv2d_xgrad_f32).

Checked against g @ w2d followed by col2im (the im2col lowering's input gradient) in float64, on
the reference tier and on the C tier's every ISA path (kernels/conv/phases.py, c.py input_grad:
each phase reads its window of g padded once, in place). The shapes: stride 1, 2 and 3, padding
0, 1 and larger than the kernel's reach, kernels smaller than the stride (phases no tap reaches
get zero), odd and even sizes, non-square kernels, ResNet-20's stride-2 planes.
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import registry
from tinyeff.kernels.conv.phases import phase_windows
from tinyeff.kernels.layout.geometry import check_conv_geometry

ISAS = ("portable", "avx2", "avx512", "neon")
# (N, C, H, W, OC, KH, KW, stride, padding)
SHAPES = [(2, 3, 32, 32, 5, 3, 3, 2, 1), (1, 4, 11, 13, 6, 3, 3, 2, 1), (2, 2, 10, 9, 3, 1, 1, 2, 0),
          (1, 3, 12, 12, 4, 5, 5, 3, 2), (1, 2, 7, 8, 3, 3, 3, 2, 0), (1, 2, 9, 9, 3, 4, 4, 2, 3),
          (1, 1, 6, 6, 2, 2, 2, 3, 0), (2, 3, 9, 10, 4, 3, 2, 2, 1), (2, 3, 8, 8, 5, 3, 3, 1, 1),
          (1, 2, 9, 7, 3, 2, 3, 1, 0), (1, 2, 6, 6, 3, 3, 3, 1, 3), (2, 16, 16, 16, 9, 3, 3, 2, 1)]


def _col2im_input_grad(g, w, x_shape, stride, padding):
    oc, _, kh, kw = w.shape
    gcols = g.transpose(0, 2, 3, 1).reshape(-1, oc) @ w.reshape(oc, -1)
    return kernels.get("col2im_f32", "ref")(gcols, x_shape, kh, kw, stride, padding, 1)


def _operands(shape, dtype, rng):
    n, c, h, wd, oc, kh, kw, stride, padding = shape
    oh, ow = check_conv_geometry((n, c, h, wd), kh, kw, stride, padding, 1, "t")
    w = rng.standard_normal((oc, c, kh, kw)).astype(dtype)
    return rng.standard_normal((n, oc, oh, ow)).astype(dtype), w, (n, c, h, wd), stride, padding


@pytest.mark.parametrize("shape", SHAPES)
def test_xgrad_ref_matches_col2im(shape, rng):
    g, w, x_shape, stride, padding = _operands(shape, np.float64, rng)
    got = kernels.get("conv2d_xgrad_f32", "ref")(g, w, x_shape, stride, padding)
    np.testing.assert_allclose(got, _col2im_input_grad(g, w, x_shape, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", SHAPES)
def test_xgrad_phases_match_col2im(shape, isa, rng):
    if not kernels.available("conv2d_xgrad_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_xgrad_f32", "c"))
    if isa not in registry.isa_paths("conv2d_xgrad_f32", "c"):
        pytest.skip(f"ISA path {isa!r} cannot run on this CPU; run the suite on such a CPU")
    g, w, x_shape, stride, padding = _operands(shape, np.float32, rng)
    got = kernels.get("conv2d_xgrad_f32", "c", isa=isa)(g, w, x_shape, stride, padding)
    want = _col2im_input_grad(g.astype(np.float64), w.astype(np.float64), x_shape, stride, padding)
    assert got.shape == x_shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)    # float32 sums in another order


def test_phase_windows_cover_every_input_row_once():
    # stride 2, 3x3, padding 1 on 32 rows: even rows (padded coordinate odd) see tap 1 only, odd
    # rows taps 2 and 0; together each input row exactly once
    windows = phase_windows((3, 3), 2, 1, (32, 32), (16, 16))
    rows = sorted({(r.first, r.count, tuple(r.taps)) for r, _ in windows})
    assert rows == [(0, 16, (1,)), (1, 16, (2, 0))]
    covered = sorted(i for first, count, _ in rows for i in range(first, first + 2 * count, 2))
    assert covered == list(range(32))


def test_xgrad_rejects_dilation():
    g, w, x_shape, stride, padding = _operands((1, 2, 9, 9, 3, 3, 3, 1, 2), np.float32, np.random.default_rng(0))
    with pytest.raises(ValueError, match="dilation=2"):
        kernels.get("conv2d_xgrad_f32")(g[:, :, :5, :5], w, x_shape, 1, padding, 2)
