"""Depthwise convolution tiers (forward, input gradient, weight gradient) at MobileNetV2-like shapes.

    python -m pytest bench/bench_depthwise.py --benchmark-only --benchmark-group-by=group
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.depthwise import spec

SHAPES = {"mbv2-112": (8, 32, 112, 112, 3, 1), "mbv2-28-s2": (8, 144, 56, 56, 3, 2), "effnet-14-k5": (8, 480, 14, 14, 5, 1)}


@pytest.mark.parametrize("tier", ["ref", "c"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_dwconv2d_f32(benchmark, tier, shape):
    if not kernels.available("dwconv2d_f32", tier):
        pytest.skip(kernels.why_unavailable("dwconv2d_f32", tier))
    n, c, h, w, k, stride = SHAPES[shape]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    fn = kernels.get("dwconv2d_f32", tier)
    fn(x, wt, stride, k // 2)
    oh = (h + 2 * (k // 2) - k) // stride + 1
    benchmark.group = f"dwconv2d_f32 {shape}"
    benchmark.extra_info.update(macs=n * c * oh * oh * k * k, tier=tier)
    out = benchmark(fn, x, wt, stride, k // 2)
    np.testing.assert_allclose(out, spec.dwconv2d_f32(x, wt, stride, k // 2), rtol=1e-4, atol=1e-4)
