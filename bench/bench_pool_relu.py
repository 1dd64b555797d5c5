"""Memory-bound steps of a training step: 2x2 max-pool (with and without argmax), ReLU forward and
backward, and the zero padding of the direct convolution's layout, each tier against the reference.

Shapes: the seed CNN's first conv output at CIFAR size and batch 64, (64, 32, 30, 30), and a
ResNet-20 stage-1 input at batch 128, (128, 16, 32, 32). These passes are pure memory traffic, so
extra_info reports GB/s (bytes read + written per call) rather than FLOP/s. Run:
pytest bench/bench_pool_relu.py --benchmark-json=out.json  (not part of the default test run).
"""
import numpy as np
import pytest

from tinyeff import kernels

SEED_CONV1_OUT = (64, 32, 30, 30)
RESNET_S1_IN = (128, 16, 32, 32)


def _kernel(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


def _run(benchmark, fn, args, group, tier, nbytes, machine_info):
    benchmark.group = group
    benchmark.extra_info.update(machine_info, tier=tier, bytes_moved=nbytes)
    out = benchmark.pedantic(fn, args=args, rounds=30, warmup_rounds=2)
    benchmark.extra_info["gb_per_s"] = nbytes / benchmark.stats.stats.median / 1e9
    return out


@pytest.mark.parametrize("with_argmax", [True, False])
@pytest.mark.parametrize("tier", ["ref", "numba", "c"])
def test_maxpool2x2(benchmark, rng, machine_info, tier, with_argmax):
    pool = _kernel("maxpool2d_f32", tier)
    x = rng.standard_normal(SEED_CONV1_OUT).astype(np.float32)
    out_bytes = x.nbytes // 4 * (3 if with_argmax else 1)          # float out (+ int64 argmax)
    out, argmax = _run(benchmark, pool, (x, 2, 2, 0, with_argmax),
                       f"maxpool 2x2 {SEED_CONV1_OUT} argmax={with_argmax}", tier, x.nbytes + out_bytes,
                       machine_info)
    want, want_argmax = kernels.get("maxpool2d_f32", "ref")(x, 2, 2, 0)
    np.testing.assert_array_equal(out, want)
    if with_argmax:
        np.testing.assert_array_equal(argmax, want_argmax)


@pytest.mark.parametrize("tier", ["ref", "c"])
def test_relu_forward(benchmark, rng, machine_info, tier):
    x = rng.standard_normal(SEED_CONV1_OUT).astype(np.float32)
    y = _run(benchmark, _kernel("relu_f32", tier), (x,), f"relu forward {SEED_CONV1_OUT}", tier,
             2 * x.nbytes, machine_info)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


@pytest.mark.parametrize("tier", ["ref", "c"])
def test_relu_backward(benchmark, rng, machine_info, tier):
    out = np.maximum(rng.standard_normal(SEED_CONV1_OUT).astype(np.float32), 0)
    g = rng.standard_normal(SEED_CONV1_OUT).astype(np.float32)
    gx = _run(benchmark, _kernel("relu_backward_f32", tier), (g, out), f"relu backward {SEED_CONV1_OUT}",
              tier, 3 * g.nbytes, machine_info)
    np.testing.assert_array_equal(gx, g * (out > 0))


@pytest.mark.parametrize("tier", ["ref", "c"])
def test_pad2d(benchmark, rng, machine_info, tier):
    x = rng.standard_normal(RESNET_S1_IN).astype(np.float32)
    out = _run(benchmark, _kernel("pad2d_f32", tier), (x, 1), f"pad2d 1 {RESNET_S1_IN}", tier,
               x.nbytes * 2, machine_info)
    np.testing.assert_array_equal(out[:, :, 1:-1, 1:-1], x)
