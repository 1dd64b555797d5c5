"""Direct conv kernels (csrc/conv/dconv.c, dconv_oc.c) per ISA path: GFLOP/s and % of that path's FMA peak.

Layer: the seed CNN's conv2 as bench_dense.py runs it (batch 64, 32 -> 64 channels, 15x15 input,
3x3, valid: 13x13 output). Passes: the forward ``conv2d_f32``, the inference forward with ReLU and
the 2x2 max-pool fused (``pool=2``: only the 12x12 positions the pool keeps are computed, and
counted), the input gradient (``conv2d_f32`` of the output gradient with the flipped weight,
padding 2, as ops/conv.py runs it for stride 1) and the weight gradient ``conv2d_wgrad_f32``. Every ISA path this CPU can run (``portable``,
``avx2``, ``avx512`` on an AVX-512 machine) is timed in one process, interleaved round by round
with each other and with a short run of each path's FMA peak loop (csrc/peak.c, all C threads), so
noise from other work on a shared machine hits all of them alike.
extra_info: per path and pass, min and median ms, GFLOP/s at both, and % of the path's peak (best
kernel time against best peak run). On a machine shared with other work, wall-clock figures
mostly measure the scheduler; the robust efficiency figure is flops per CPU-second of this process
(``time.process_time``, all threads, preempted time excluded) against the peak loop's flops per
CPU-second, both medians: ``pct_peak_cpu``. It counts OpenMP threads spinning at a barrier as
busy, so it can only understate the kernel.
``test_dconv_resnet20_per_isa_interleaved`` does the same for every 3x3 convolution geometry of
ResNet-20 at batch 128 (16, 32 and 64 channels on 32x32, 16x16 and 8x8 planes at stride 1, and the
two stride-2 ones), each pass as ops/conv.py runs it: the stride-1 forward and weight gradient on the
input padded once, the input gradient through ``conv2d_xgrad_f32`` (phases of the stride).
Run: OMP_NUM_THREADS=2 python -m pytest bench/bench_dconv.py -s --benchmark-json=out.json
"""
import time

import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import peak, registry
from tinyeff.kernels.conv import spec as conv_ref
from tinyeff.kernels.conv.lowering import flipped_weight

N, C, SIDE, OC, K = 64, 32, 15, 64, 3
OUT = SIDE - K + 1
FLOPS = 2 * N * OUT * OUT * OC * C * K * K          # the same for all three passes
POOLED = OUT // 2 * 2                               # the 2x2 max-pool keeps 12 of 13 rows and columns
PASS_FLOPS = {"forward_pool": 2 * N * POOLED * POOLED * OC * C * K * K}   # only what it computes


def _passes(isa, x, w, g):
    conv = kernels.get("conv2d_f32", "c", isa=isa)
    wgrad = kernels.get("conv2d_wgrad_f32", "c", isa=isa)
    wf = flipped_weight(w)
    return {"forward": lambda: conv(x, w, None, 1, 0),
            "forward_pool": lambda: conv(x, w, None, 1, 0, 1, True, 2),
            "input_grad": lambda: conv(g, wf, None, 1, K - 1),
            "weight_grad": lambda: wgrad(x, g, K, K, 1, 0)}


def test_dconv_seed_conv2_per_isa_interleaved(benchmark, rng, machine_info):
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    from tinyeff.kernels import c as c_tier
    x = rng.standard_normal((N, C, SIDE, SIDE)).astype(np.float32)
    w = rng.standard_normal((OC, C, K, K)).astype(np.float32)
    g = rng.standard_normal((N, OC, OUT, OUT)).astype(np.float32)
    isas = registry.isa_paths("conv2d_f32", "c")
    runs = {(isa, name): fn for isa in isas for name, fn in _passes(isa, x, w, g).items()}
    for fn in runs.values():
        fn()                                                       # warm-up
    times = {key: [] for key in runs}
    cpu_s = {key: [] for key in runs}
    peaks = {isa: [] for isa in isas}
    cpu_peaks = {isa: [] for isa in isas}

    def one_round():
        for isa in isas:
            peaks[isa].append(peak.fma_peak_gflops(isa, iters=300_000, repeats=1))
            cpu_peaks[isa].append(peak.fma_peak_gflops(isa, iters=1_000_000, repeats=1, clock="cpu"))
        for key, fn in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[key].append(time.perf_counter() - t0)
            cpu_s[key].append(time.process_time() - c0)

    benchmark.group = f"direct conv seed-conv2 N={N} {C}->{OC} {SIDE}x{SIDE} 3x3, per ISA path"
    benchmark.extra_info.update(machine_info, flops=FLOPS, c_threads=c_tier.num_threads())
    benchmark.pedantic(one_round, rounds=25, warmup_rounds=0)
    print(f"\n{benchmark.group}, {c_tier.num_threads()} C threads, interleaved, 25 rounds")
    print(f"{'path':9} {'pass':12} {'wall best':>9} {'peak best':>9} {'%':>5} | "
          f"{'GF/cpu-s':>8} {'peak GF/cpu-s':>13} {'% of peak':>9}")
    for (isa, name), t in times.items():
        flops = PASS_FLOPS.get(name, FLOPS)
        best, pk_best = flops / min(t) / 1e9, max(peaks[isa])
        per_cpu, pk_cpu = flops / float(np.median(cpu_s[(isa, name)])) / 1e9, float(np.median(cpu_peaks[isa]))
        benchmark.extra_info[f"{isa}_{name}"] = {
            "min_ms": 1e3 * min(t), "median_ms": 1e3 * float(np.median(t)), "gflops_best": best,
            "peak_gflops_best": pk_best, "pct_peak_best": 100 * best / pk_best,
            "gflops_per_cpu_s": per_cpu, "peak_gflops_per_cpu_s": pk_cpu,
            "pct_peak_cpu": 100 * per_cpu / pk_cpu}
        print(f"{isa:9} {name:12} {best:9.1f} {pk_best:9.1f} {100 * best / pk_best:4.0f}% | "
              f"{per_cpu:8.1f} {pk_cpu:13.1f} {100 * per_cpu / pk_cpu:8.0f}%")
    for isa in isas:                                               # a fast wrong answer is not a result
        out = _passes(isa, x, w, g)
        np.testing.assert_allclose(out["forward"](), conv_ref.conv2d_f32(x, w, None, 1, 0),
                                   rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(out["forward_pool"](), conv_ref.conv2d_f32(x, w, None, 1, 0, 1, True, 2),
                                   rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(out["weight_grad"](), conv_ref.conv2d_wgrad_f32(x, g, K, K, 1, 0),
                                   rtol=1e-3, atol=1e-2)


# ResNet-20 at batch 128: (C, side, OC, stride) of its 3x3 convolutions, padding 1
R20 = [(16, 32, 16, 1), (32, 16, 32, 1), (64, 8, 64, 1), (16, 32, 32, 2), (32, 16, 64, 2)]
R20_N = 128


def _r20_passes(isa, c, side, oc, stride, rng):
    conv = kernels.get("conv2d_f32", "c", isa=isa)
    wgrad = kernels.get("conv2d_wgrad_f32", "c", isa=isa)
    xgrad = kernels.get("conv2d_xgrad_f32", "c", isa=isa)
    x = rng.standard_normal((R20_N, c, side, side)).astype(np.float32)
    w = rng.standard_normal((oc, c, K, K)).astype(np.float32)
    g = rng.standard_normal((R20_N, oc, side // stride, side // stride)).astype(np.float32)
    xp, pad = (kernels.get("pad2d_f32")(x, 1), 0) if stride == 1 else (x, 1)
    return {"forward": lambda: conv(xp, w, None, stride, pad),
            "input_grad": lambda: xgrad(g, w, x.shape, stride, 1),
            "weight_grad": lambda: wgrad(xp, g, K, K, stride, pad)}


def test_dconv_resnet20_per_isa_interleaved(benchmark, rng, machine_info):
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    from tinyeff.kernels import c as c_tier
    isas = registry.isa_paths("conv2d_f32", "c")
    runs, flops = {}, {}
    for c, side, oc, stride in R20:
        for isa in isas:
            for name, fn in _r20_passes(isa, c, side, oc, stride, rng).items():
                key = (f"{c}->{oc} {side}x{side} s{stride}", isa, name)
                runs[key], flops[key] = fn, 2 * R20_N * (side // stride) ** 2 * oc * c * K * K
    for fn in runs.values():
        fn()                                                       # warm-up
    cpu_s = {key: [] for key in runs}
    cpu_peaks = {isa: [] for isa in isas}

    def one_round():
        for isa in isas:
            cpu_peaks[isa].append(peak.fma_peak_gflops(isa, iters=1_000_000, repeats=1, clock="cpu"))
        for key, fn in runs.items():
            c0 = time.process_time()
            fn()
            cpu_s[key].append(time.process_time() - c0)

    benchmark.group = f"direct conv ResNet-20 N={R20_N} 3x3 layers, per ISA path"
    benchmark.extra_info.update(machine_info, c_threads=c_tier.num_threads())
    benchmark.pedantic(one_round, rounds=7, warmup_rounds=0)
    print(f"\n{benchmark.group}, {c_tier.num_threads()} C threads, interleaved, 7 rounds")
    print(f"{'layer':18} {'path':9} {'pass':12} {'GF/cpu-s':>8} {'% of peak':>9}")
    for (layer, isa, name), t in cpu_s.items():
        per_cpu = flops[(layer, isa, name)] / float(np.median(t)) / 1e9
        pct = 100 * per_cpu / float(np.median(cpu_peaks[isa]))
        benchmark.extra_info[f"{layer} {isa} {name}"] = {"gflops_per_cpu_s": per_cpu, "pct_peak_cpu": pct}
        print(f"{layer:18} {isa:9} {name:12} {per_cpu:8.1f} {pct:8.0f}%")
    c, side, oc, stride = R20[3]                                   # a fast wrong answer is not a result
    for isa in isas:
        x = rng.standard_normal((4, c, side, side)).astype(np.float32)
        w = rng.standard_normal((oc, c, K, K)).astype(np.float32)
        g = rng.standard_normal((4, oc, side // stride, side // stride)).astype(np.float32)
        np.testing.assert_allclose(kernels.get("conv2d_xgrad_f32", "c", isa=isa)(g, w, x.shape, stride, 1),
                                   conv_ref.conv2d_xgrad_f32(g, w, x.shape, stride, 1), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(kernels.get("conv2d_wgrad_f32", "c", isa=isa)(x, g, K, K, stride, 1),
                                   conv_ref.conv2d_wgrad_f32(x, g, K, K, stride, 1), rtol=1e-3, atol=1e-2)
