"""Batch-norm training kernels: reference vs C tier at ResNet-20's three stage shapes (batch 128,
1x28x28 inputs), forward and backward.

Batch norm is memory-bound, so the figure of merit is bandwidth: ``bytes_moved`` counts the minimum
traffic, each array once (forward reads x and writes y; backward reads grad_out and x and writes
grad_x), and ``gb_per_s_at_min`` divides it by the fastest round. Outputs are allocated per call, as
the op does, so first-touch page faults of fresh buffers are part of the time. The C tier runs once
per ISA path (``c:<path>``: the portable loops, and bnorm_vec.h for AVX2, AVX-512 and NEON where the
CPU has them); ``code_path`` in extra_info names it.
Run: pytest bench/bench_norm.py --benchmark-json=out.json  (not part of the default test run), or
PYTHONPATH=. python bench/bench_norm.py [threads]  for every ISA path interleaved in one table.
"""
import numpy as np
import pytest

from tinyeff.kernels.norm import spec as norm_ref
from tinyeff.testing import c_paths, kernel_or_skip

N = 128
SHAPES = {"resnet20-s1": (N, 16, 28, 28), "resnet20-s2": (N, 32, 14, 14), "resnet20-s3": (N, 64, 7, 7)}
TIERS = ["ref"] + c_paths()          # no Numba tier: batch norm has none
_kernel = kernel_or_skip


def _inputs(rng, shape):
    c = shape[1]
    x = (2.0 * rng.standard_normal(shape) + 0.5).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    return x, gamma, beta


def _record(benchmark, machine_info, tier, layer, bytes_moved):
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(machine_info, tier=tier, code_path=tier.partition(":")[2] or "-",
                                layer=layer, bytes_moved=bytes_moved, gb_per_s_at_min=bytes_moved / seconds / 1e9,
                                gb_per_s=bytes_moved / benchmark.stats.stats.median / 1e9)


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


def interleaved(rounds=15, threads=None):
    """Forward and backward at each shape on every C ISA path, round-robin; median GB/s per path."""
    import time

    from tinyeff import kernels
    from tinyeff.kernels import c as c_tier, registry
    if threads:
        c_tier.set_num_threads(threads)
    rng = np.random.default_rng(0)
    paths = registry.isa_paths("batchnorm_train_f32", "c")
    cases = {}
    for layer, shape in SHAPES.items():
        x, gamma, beta = _inputs(rng, shape)
        g = rng.standard_normal(shape).astype(np.float32)
        _, mean, _, invstd = norm_ref.batchnorm_train_f32(x, gamma, beta, 1e-5)
        cases[f"forward {layer}"] = ("batchnorm_train_f32", (x, gamma, beta, 1e-5), 2 * x.nbytes)
        cases[f"backward {layer}"] = ("batchnorm_backward_f32", (g, x, mean, invstd, gamma), 3 * x.nbytes)
    times = {(case, p): [] for case in cases for p in paths}
    for _ in range(rounds):
        for case, (name, args, _) in cases.items():
            for p in paths:
                fn = kernels.get(name, "c", isa=p)
                fn(*args)
                t0 = time.perf_counter()
                fn(*args)
                times[(case, p)].append(time.perf_counter() - t0)
    print(f"C threads {c_tier.num_threads()}, median of {rounds} interleaved rounds, GB/s (minimum traffic)")
    print(f"  {'kernel':<24}" + "".join(f"{p:>10}" for p in paths))
    for case, (_, _, nbytes) in cases.items():
        print(f"  {case:<24}" + "".join(f"{nbytes / float(np.median(times[(case, p)])) / 1e9:>10.1f}"
                                         for p in paths))


if __name__ == "__main__":
    import sys
    interleaved(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None)
