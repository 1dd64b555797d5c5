"""Dense float32 conv benchmarks: im2col tiers, and the conv forward per real layer shape.

Shapes: the seed CNN's convs at CIFAR-10 size (3->32 on 32x32, 32->64 on 15x15, 64->64 on 6x6)
and ResNet-20's three stages (16, 32 and 64 channels on 32x32, 16x16 and 8x8, 3x3, padding 1), all
at batch 64. The conv forward is tinyeff's dense path (active im2col tier + gemm_f32 + NCHW
transpose); extra_info carries FLOPs, GFLOP/s and percent of the FMA peak of the best usable ISA
path, measured at the same thread count (kernels/peak.py: a register-only FMA loop on every C
thread). conv2d_f32 / the op forward + backward: the direct kernels of csrc/conv/dconv.c against
im2col + GEMM (TINYEFF_LOWERING forces each). Per-ISA figures: bench_dconv.py.
Run: pytest bench/bench_dense.py --benchmark-json=out.json  (not part of the default test run).
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import peak
from tinyeff.kernels.conv import spec as conv_ref
from tinyeff.kernels.im2col import spec as im2col_ref
from tinyeff.kernels.sparse import spec as sparse_ref

N = 64
# name: (C, H, OC, padding)  -- all 3x3, stride 1
LAYERS = {
    "seed-conv1": (3, 32, 32, 0),
    "seed-conv2": (32, 15, 64, 0),
    "seed-conv3": (64, 6, 64, 0),
    "resnet20-s1": (16, 32, 16, 1),
    "resnet20-s2": (32, 16, 32, 1),
    "resnet20-s3": (64, 8, 64, 1),
}


@pytest.fixture(scope="module")
def peak_gflops():
    """The best usable ISA path's FMA peak on all C threads (GFLOP/s), measured once."""
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    return peak.fma_peak_gflops()


def _kernel(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


@pytest.mark.parametrize("layer", ["seed-conv2", "resnet20-s1"])
@pytest.mark.parametrize("tier", ["ref", "numba", "c"])
def test_im2col_f32(benchmark, rng, machine_info, layer, tier):
    c, h, _, padding = LAYERS[layer]
    im2col = _kernel("im2col_f32", tier)
    x = rng.standard_normal((N, c, h, h)).astype(np.float32)
    im2col(x, 3, 3, 1, padding)
    benchmark.group = f"im2col_f32 {layer} N={N} C={c} {h}x{h}"
    benchmark.extra_info.update(machine_info, tier=tier, bytes_written=x.nbytes * 9)
    cols = benchmark.pedantic(im2col, args=(x, 3, 3, 1, padding), rounds=15, warmup_rounds=1)
    np.testing.assert_array_equal(cols, im2col_ref.im2col_f32(x, 3, 3, 1, padding))


@pytest.mark.parametrize("layer", ["seed-conv2", "seed-conv3"])
@pytest.mark.parametrize("name", ["im2col_f32", "im2col_f32_t"])
def test_im2col_batch1(benchmark, rng, machine_info, layer, name):
    """Batch-1 inference: the rows layout (then a transposing copy after the GEMM) against the
    taps-major one (``w2d @ cols_t[0]`` is NCHW as it stands), C tier, one group per layer."""
    c, h, _, padding = LAYERS[layer]
    im2col = _kernel(name, "c")
    x = rng.standard_normal((1, c, h, h)).astype(np.float32)
    benchmark.group = f"im2col batch 1 {layer} C={c} {h}x{h}"
    benchmark.extra_info.update(machine_info, kernel=name, bytes_written=x.nbytes * 9)
    cols = benchmark.pedantic(im2col, args=(x, 3, 3, 1, padding), rounds=200, warmup_rounds=5)
    np.testing.assert_array_equal(cols, getattr(im2col_ref, name)(x, 3, 3, 1, padding))


@pytest.mark.parametrize("layer", list(LAYERS))
def test_conv_forward_dense(benchmark, rng, machine_info, peak_gflops, layer):
    c, h, oc, padding = LAYERS[layer]
    x = rng.standard_normal((N, c, h, h)).astype(np.float32)
    w = rng.standard_normal((oc, c, 3, 3)).astype(np.float32)
    w2t = np.ascontiguousarray(w.reshape(oc, -1).T)                  # (C*KH*KW, OC)
    im2col, gemm = kernels.get("im2col_f32"), kernels.get("gemm_f32")
    oh = h + 2 * padding - 2

    def conv():
        y = gemm(im2col(x, 3, 3, 1, padding), w2t)                   # (N*OH*OW, OC)
        return np.ascontiguousarray(y.reshape(N, oh, oh, oc).transpose(0, 3, 1, 2))

    conv()
    flops = 2 * N * oh * oh * oc * c * 9
    benchmark.group = "dense conv forward (im2col + gemm_f32 + transpose), N=64"
    benchmark.extra_info.update(machine_info, layer=layer, flops=flops,
                                im2col_tier=kernels.active_tier("im2col_f32"),
                                gemm_tier=kernels.active_tier("gemm_f32"))
    out = benchmark.pedantic(conv, rounds=10, warmup_rounds=1)
    gflops = flops / benchmark.stats.stats.min / 1e9
    benchmark.extra_info.update(gflops_at_min=gflops, peak_gflops=peak_gflops,
                                pct_of_peak=100 * gflops / peak_gflops)
    want = sparse_ref._dense_conv(x, w, 1, padding, 1, 0, np.float32)
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-3)   # BLAS vs BLAS, different blocking


def _pct_of_peak(benchmark, peak_gflops, flops):
    gflops = flops / benchmark.stats.stats.min / 1e9
    benchmark.extra_info.update(flops=flops, gflops_at_min=gflops, peak_gflops=peak_gflops,
                                pct_of_peak=100 * gflops / peak_gflops)


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("tier", ["ref", "c"])
def test_conv2d_f32_forward(benchmark, rng, machine_info, peak_gflops, layer, tier):
    """The whole conv forward as one kernel: ref = im2col + BLAS, c = direct (csrc/conv/dconv.c)."""
    c, h, oc, padding = LAYERS[layer]
    conv = _kernel("conv2d_f32", tier)
    x = rng.standard_normal((N, c, h, h)).astype(np.float32)
    w = rng.standard_normal((oc, c, 3, 3)).astype(np.float32)
    oh = h + 2 * padding - 2
    benchmark.group = f"conv2d_f32 forward {layer} N={N}"
    benchmark.extra_info.update(machine_info, layer=layer, tier=tier)
    out = benchmark.pedantic(conv, args=(x, w, None, 1, padding), rounds=10, warmup_rounds=1)
    _pct_of_peak(benchmark, peak_gflops, 2 * N * oh * oh * oc * c * 9)
    np.testing.assert_allclose(out, conv_ref.conv2d_f32(x, w, None, 1, padding), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("path", ["gemm", "direct"])
def test_conv2d_op_forward_backward(benchmark, rng, machine_info, peak_gflops, monkeypatch, layer, path):
    """What training pays per conv layer: the conv2d op's forward and both gradients, with every
    pass on the im2col + GEMM lowering or on the direct kernels (TINYEFF_LOWERING forces it;
    bench_lowering.py shows what the measured choice picks per pass)."""
    from tinyeff.ops import conv as conv_op
    monkeypatch.setenv("TINYEFF_LOWERING", path)
    c, h, oc, padding = LAYERS[layer]
    x = rng.standard_normal((N, c, h, h)).astype(np.float32)
    w = rng.standard_normal((oc, c, 3, 3)).astype(np.float32)
    oh = h + 2 * padding - 2
    g = rng.standard_normal((N, oc, oh, oh)).astype(np.float32)

    def step():
        out, backward = conv_op._conv_dense(x, w, (1, padding, 1), oh, oh)
        return out, backward(g, True)

    benchmark.group = f"conv2d op forward + backward {layer} N={N}"
    benchmark.extra_info.update(machine_info, layer=layer, path=path)
    out, (gx, gw) = benchmark.pedantic(step, rounds=8, warmup_rounds=1)
    _pct_of_peak(benchmark, peak_gflops, 3 * 2 * N * oh * oh * oc * c * 9)
    np.testing.assert_allclose(gw, conv_ref.conv2d_wgrad_f32(x, g, 3, 3, 1, padding), rtol=1e-3,
                               atol=1e-2)
