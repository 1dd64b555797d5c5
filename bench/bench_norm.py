"""Batch-norm training kernels: reference vs C tier at ResNet-20's three stage shapes (batch 128,
1x28x28 inputs), forward and backward.

Batch norm is memory-bound, so the figure of merit is bandwidth: ``bytes_moved`` counts the minimum
traffic, each array once (forward reads x and writes y; backward reads grad_out and x and writes
grad_x), and ``gb_per_s_at_min`` divides it by the fastest round. Outputs are allocated per call, as
the op does, so first-touch page faults of fresh buffers are part of the time.
Run: pytest bench/bench_norm.py --benchmark-json=out.json  (not part of the default test run).
"""
import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.norm import spec as norm_ref

N = 128
SHAPES = {"resnet20-s1": (N, 16, 28, 28), "resnet20-s2": (N, 32, 14, 14), "resnet20-s3": (N, 64, 7, 7)}
TIERS = ["ref", "numba", "c"]


def _kernel(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


def _inputs(rng, shape):
    c = shape[1]
    x = (2.0 * rng.standard_normal(shape) + 0.5).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    return x, gamma, beta


def _record(benchmark, machine_info, tier, layer, bytes_moved):
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(machine_info, tier=tier, layer=layer, bytes_moved=bytes_moved,
                                gb_per_s_at_min=bytes_moved / seconds / 1e9)


@pytest.mark.parametrize("layer", list(SHAPES))
@pytest.mark.parametrize("tier", TIERS)
def test_batchnorm_train_f32(benchmark, rng, machine_info, tier, layer):
    shape = SHAPES[layer]
    fn = _kernel("batchnorm_train_f32", tier)
    x, gamma, beta = _inputs(rng, shape)
    fn(x, gamma, beta, 1e-5)                                    # warm-up outside the timing
    benchmark.group = f"batchnorm_train_f32 {layer} {shape}"
    out = benchmark.pedantic(fn, args=(x, gamma, beta, 1e-5), rounds=30, warmup_rounds=2)
    _record(benchmark, machine_info, tier, layer, bytes_moved=2 * x.nbytes)
    want = norm_ref.batchnorm_train_f32(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(out[0], want[0], rtol=1e-5, atol=2e-5)   # see tests/kernels/test_bnorm.py


@pytest.mark.parametrize("layer", list(SHAPES))
@pytest.mark.parametrize("tier", TIERS)
def test_batchnorm_backward_f32(benchmark, rng, machine_info, tier, layer):
    shape = SHAPES[layer]
    fn = _kernel("batchnorm_backward_f32", tier)
    x, gamma, beta = _inputs(rng, shape)
    grad_out = rng.standard_normal(shape).astype(np.float32)
    _, mean, _, invstd = norm_ref.batchnorm_train_f32(x, gamma, beta, 1e-5)
    args = (grad_out, x, mean, invstd, gamma)
    fn(*args)
    benchmark.group = f"batchnorm_backward_f32 {layer} {shape}"
    out = benchmark.pedantic(fn, args=args, rounds=30, warmup_rounds=2)
    _record(benchmark, machine_info, tier, layer, bytes_moved=3 * x.nbytes)
    want = norm_ref.batchnorm_backward_f32(*args)
    np.testing.assert_allclose(out[0], want[0], rtol=1e-4, atol=1e-4)   # see tests/kernels/test_bnorm.py
