"""Memory-bound steps of a training step: 2x2 max-pool (with and without argmax), ReLU forward and
backward, and the zero padding of the direct convolution's layout, each tier against the reference.

Shapes: the seed CNN's first conv output at CIFAR size and batch 64, (64, 32, 30, 30), and a
ResNet-20 stage-1 input at batch 128, (128, 16, 32, 32), plus an L2-sized ReLU (256 KB) where the
vector width rather than DRAM sets the speed. These passes are pure memory traffic, so extra_info
reports GB/s (bytes read + written per call) rather than FLOP/s, per ISA path of the C tier
(``c:<path>``), next to ``copy_gb_per_s``: NumPy copying the same number of bytes (glibc's memcpy, which
picks the widest instructions of the CPU at run time: the bandwidth ceiling) and ``pct_copy``.
pad2d's portable body is memset | memcpy | memset per row, which on a CNN's 32-float rows spends more
time in libc calls than moving bytes (about half the copy rate); its vector bodies store whole rows. Run:
pytest bench/bench_pool_relu.py --benchmark-json=out.json  (not part of the default test run), or
PYTHONPATH=. python bench/bench_pool_relu.py [threads]  for every ISA path interleaved in one table.
"""
import numpy as np
import pytest

import time

from tinyeff import kernels
from tinyeff.testing import c_paths, kernel_or_skip

SEED_CONV1_OUT = (64, 32, 30, 30)
RESNET_S1_IN = (128, 16, 32, 32)
L2_SIZED = (64 * 1024,)                       # 256 KB in, 256 KB out
C_PATHS = c_paths()
_kernel = kernel_or_skip
_COPY = {}


def _copy_gb_per_s(nbytes):
    """NumPy copying nbytes (read + write counted, as for the kernels) into a fresh array, as the
    kernels allocate their outputs (page faults included): median of 30."""
    if nbytes not in _COPY:
        src = np.ones(nbytes // 8, np.float32)
        times = []
        for _ in range(31):
            t0 = time.perf_counter()
            src.copy()
            times.append(time.perf_counter() - t0)
        _COPY[nbytes] = nbytes / float(np.median(times[1:])) / 1e9
    return _COPY[nbytes]


def _run(benchmark, fn, args, group, tier, nbytes, machine_info):
    benchmark.group = group
    path = tier.partition(":")[2] or "-"
    benchmark.extra_info.update(machine_info, tier=tier, code_path=path, bytes_moved=nbytes)
    out = benchmark.pedantic(fn, args=args, rounds=30, warmup_rounds=2)
    gb_per_s, copy = nbytes / benchmark.stats.stats.median / 1e9, _copy_gb_per_s(nbytes)
    benchmark.extra_info.update(gb_per_s=gb_per_s, copy_gb_per_s=copy, pct_copy=100.0 * gb_per_s / copy)
    return out


@pytest.mark.parametrize("with_argmax", [True, False])
@pytest.mark.parametrize("tier", ["ref", "numba"] + C_PATHS)
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


@pytest.mark.parametrize("shape", [SEED_CONV1_OUT, L2_SIZED], ids=["seed-conv1", "l2-sized"])
@pytest.mark.parametrize("tier", ["ref"] + C_PATHS)
def test_relu_forward(benchmark, rng, machine_info, tier, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    y = _run(benchmark, _kernel("relu_f32", tier), (x,), f"relu forward {shape}", tier,
             2 * x.nbytes, machine_info)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


@pytest.mark.parametrize("shape", [SEED_CONV1_OUT, L2_SIZED], ids=["seed-conv1", "l2-sized"])
@pytest.mark.parametrize("tier", ["ref"] + C_PATHS)
def test_relu_backward(benchmark, rng, machine_info, tier, shape):
    out = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)
    g = rng.standard_normal(shape).astype(np.float32)
    gx = _run(benchmark, _kernel("relu_backward_f32", tier), (g, out), f"relu backward {shape}",
              tier, 3 * g.nbytes, machine_info)
    np.testing.assert_array_equal(gx, g * (out > 0))


@pytest.mark.parametrize("tier", ["ref"] + C_PATHS)
def test_pad2d(benchmark, rng, machine_info, tier):
    x = rng.standard_normal(RESNET_S1_IN).astype(np.float32)
    out = _run(benchmark, _kernel("pad2d_f32", tier), (x, 1), f"pad2d 1 {RESNET_S1_IN}", tier,
               x.nbytes * 2, machine_info)
    np.testing.assert_array_equal(out[:, :, 1:-1, 1:-1], x)


def interleaved(rounds=15, threads=None):
    """Every kernel on every C ISA path, timed round-robin (load changes on a shared machine hit all
    paths alike); print the median GB/s per path and the copy ceiling."""
    from tinyeff.kernels import c as c_tier, registry
    if threads:
        c_tier.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SEED_CONV1_OUT).astype(np.float32)
    small = rng.standard_normal(L2_SIZED).astype(np.float32)
    pad_in = rng.standard_normal(RESNET_S1_IN).astype(np.float32)
    pad_out_bytes = pad_in.nbytes // (32 * 32) * (34 * 34)
    cases = {   # name -> (kernel, args, bytes moved)
        "maxpool 2x2 + argmax": ("maxpool2d_f32", (x, 2, 2, 0, True), x.nbytes * 7 // 4),
        "maxpool 2x2": ("maxpool2d_f32", (x, 2, 2, 0, False), x.nbytes * 5 // 4),
        "relu forward": ("relu_f32", (x,), 2 * x.nbytes),
        "relu backward": ("relu_backward_f32", (x, np.maximum(x, 0)), 3 * x.nbytes),
        "pad2d 1, ResNet-20 s1": ("pad2d_f32", (pad_in, 1), pad_in.nbytes + pad_out_bytes),
        "relu forward 256 KB": ("relu_f32", (small,), 2 * small.nbytes),
        "relu backward 256 KB": ("relu_backward_f32", (small, np.maximum(small, 0)), 3 * small.nbytes),
    }
    paths = registry.isa_paths("relu_f32", "c")
    times = {(case, p): [] for case in cases for p in paths}
    fns = {(case, p): kernels.get(k, "c", isa=p) for case, (k, _, _) in cases.items() for p in paths}
    for _ in range(rounds):
        for (case, p), fn in fns.items():
            args = cases[case][1]
            fn(*args)
            t0 = time.perf_counter()
            fn(*args)
            times[(case, p)].append(time.perf_counter() - t0)
    print(f"C threads {c_tier.num_threads()}, median of {rounds} interleaved rounds, GB/s (read + written)")
    print(f"  {'kernel':<24}" + "".join(f"{p:>10}" for p in paths) + f"{'copy':>10}")
    for case, (_, _, nbytes) in cases.items():
        row = "".join(f"{nbytes / float(np.median(times[(case, p)])) / 1e9:>10.1f}" for p in paths)
        print(f"  {case:<24}{row}{_copy_gb_per_s(nbytes):>10.1f}")


if __name__ == "__main__":
    import sys
    interleaved(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None)
