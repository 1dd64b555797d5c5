"""Direct dense convolution (csrc/conv/dconv.c): forward and weight gradient of every ISA path against ref.

Each declared ISA path of the C tier runs (skipped with its reason where this CPU or the cap lacks
it). The shapes break the kernels' tiling on purpose: output planes shorter than one register tile
(12 positions on SSE2, 24 on AVX2 and NEON, 64 or 96 on AVX-512) and one position longer, channel
counts around the 4-channel forward block and the 3- and 4-channel weight-gradient blocks, tap counts
around the 4- and 6-tap blocks, batch 1, stride 2 (phase planes), dilation and padding larger than
the kernel's reach.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyeff import kernels
from tinyeff.kernels import registry
from tinyeff.kernels.conv.lowering import flipped_weight
from tinyeff.kernels.conv.spec import check_conv_args

# (N, C, H, W, OC, KH, KW, stride, padding, dilation)
SHAPES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1),
    (2, 3, 9, 7, 5, 3, 3, 1, 1, 1),
    (1, 1, 28, 28, 32, 3, 3, 1, 0, 1),
    (3, 4, 11, 13, 7, 3, 3, 2, 1, 1),
    (2, 5, 10, 10, 6, 3, 3, 1, 2, 2),
    (1, 7, 6, 6, 9, 5, 5, 1, 0, 1),
    (2, 8, 7, 7, 17, 1, 1, 2, 0, 1),
    (2, 6, 17, 19, 3, 3, 2, 1, 1, 1),
    (1, 16, 28, 28, 16, 3, 3, 1, 1, 1),
    (2, 2, 5, 7, 4, 1, 3, 1, 0, 1),         # length 25 = one AVX2 / NEON tile + 1
    (1, 3, 4, 25, 5, 1, 1, 1, 0, 1),        # 4 rows of 25: tiles overlap at the end
    (2, 1, 9, 13, 3, 3, 1, 1, 0, 1),        # length 97 = one AVX-512 tile + 1
    (1, 2, 12, 12, 8, 2, 2, 1, 0, 1),       # length 121: the 64-wide AVX-512 tile
]
ISAS = ("portable", "avx2", "avx512", "neon")


def _kernel(name, tier, isa=None):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    if isa is not None and isa not in registry.isa_paths(name, tier):
        pytest.skip(f"{name}: ISA path {isa!r} cannot run on this CPU (runs: "
                    f"{', '.join(registry.isa_paths(name, tier))}); run the suite on such a CPU")
    return kernels.get(name, tier, isa=isa)


def _operands(rng, shape, scale=1.0):
    n, c, h, w, oc, kh, kw, *_ = shape
    x = (scale * rng.standard_normal((n, c, h, w))).astype(np.float32)
    wt = rng.standard_normal((oc, c, kh, kw)).astype(np.float32)
    return x, wt, rng.standard_normal(oc).astype(np.float32)


def test_every_isa_path_is_declared():
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))   # C modules not loaded: nothing declared
    assert registry.declared_isas("conv2d_f32", "c") == ISAS
    assert registry.declared_isas("conv2d_wgrad_f32", "c") == ISAS


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_conv2d_c_matches_ref(shape, relu, isa, rng):
    conv = _kernel("conv2d_f32", "c", isa)
    x, w, b = _operands(rng, shape)
    stride, padding, dilation = shape[7:]
    got = conv(x, w, b, stride, padding, dilation, relu)
    want = kernels.get("conv2d_f32", "ref")(x, w, b, stride, padding, dilation, relu)
    assert got.shape == want.shape and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(w[0].size))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", SHAPES)
def test_conv2d_wgrad_c_matches_ref(shape, isa, rng):
    wgrad = _kernel("conv2d_wgrad_f32", "c", isa)
    x, w, _ = _operands(rng, shape)
    stride, padding, dilation = shape[7:]
    oh, ow = check_conv_args(x, w, None, stride, padding, dilation, "t")
    g = rng.standard_normal((x.shape[0], w.shape[0], oh, ow)).astype(np.float32)
    kh, kw = w.shape[2:]
    got = wgrad(x, g, kh, kw, stride, padding, dilation)
    want = kernels.get("conv2d_wgrad_f32", "ref")(x, g, kh, kw, stride, padding, dilation)
    assert got.shape == w.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(x.shape[0] * oh * ow))


@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 9), oc=st.integers(1, 10), h=st.integers(3, 30),
       k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2), padding=st.integers(0, 2),
       scale=st.sampled_from([1e-3, 1.0, 1e3]), seed=st.integers(0, 2**31))
def test_direct_conv_random_shapes_and_ranges(isa, n, c, oc, h, k, stride, padding, scale, seed):
    conv, wgrad = _kernel("conv2d_f32", "c", isa), _kernel("conv2d_wgrad_f32", "c", isa)
    rng = np.random.default_rng(seed)
    shape = (n, c, h, h + 1, oc, k, k, stride, padding, 1)
    if h + 2 * padding < k:
        return
    x, w, b = _operands(rng, shape, scale)
    want = kernels.get("conv2d_f32", "ref")(x, w, b * scale, stride, padding)
    got = conv(x, w, b * scale, stride, padding)
    tol = 1e-4 * scale * np.sqrt(w[0].size) * (1 + np.abs(w).max())
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=tol)
    g = rng.standard_normal(want.shape).astype(np.float32)
    np.testing.assert_allclose(wgrad(x, g, k, k, stride, padding),
                               kernels.get("conv2d_wgrad_f32", "ref")(x, g, k, k, stride, padding),
                               rtol=1e-4, atol=1e-4 * scale * np.sqrt(g[:, 0].size) * 4)


def test_flipped_weight_gives_the_input_gradient(rng):
    """For stride 1, grad_x = full correlation of grad_out with the flipped, transposed weight."""
    x, w, _ = _operands(rng, (2, 3, 8, 9, 4, 3, 3, 1, 1, 1))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    conv = kernels.get("conv2d_f32", "ref")
    g = rng.standard_normal(conv(x64, w64, None, 1, 1).shape)
    # <conv(x), g> is linear in x; its gradient is grad_x, checked against the identity.
    grad_x = conv(g, flipped_weight(w64), None, 1, 3 - 1 - 1)
    eps, idx = 1e-6, (1, 2, 3, 4)
    bump = np.zeros_like(x64)
    bump[idx] = eps
    numeric = (np.sum(conv(x64 + bump, w64, None, 1, 1) * g) - np.sum(conv(x64, w64, None, 1, 1) * g)) / eps
    assert abs(numeric - grad_x[idx]) < 1e-5 * (1 + abs(numeric))


def test_conv2d_rejects_bad_operands(rng):
    conv = kernels.get("conv2d_f32")
    x = np.zeros((1, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match="same C"):
        conv(x, np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(TypeError, match="cast"):
        conv(x, np.zeros((2, 3, 3, 3), np.float64))
    with pytest.raises(ValueError, match="does not fit"):
        conv(x, np.zeros((2, 3, 7, 7), np.float32))
    with pytest.raises(ValueError, match="grad_out"):
        kernels.get("conv2d_wgrad_f32")(x, np.zeros((1, 2, 4, 4), np.float32), 3, 3)
