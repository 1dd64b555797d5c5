"""int8 GEMM benchmarks: every tier side by side with NumPy float32 (and PyTorch's quantized linear
when torch is installed), on square GEMMs and on the seed CNN's layers lowered to GEMMs.

Kernels timed: ``gemm_u8s8_packed`` (weights packed once, as a layer does) on square shapes, and
``gemm_u8s8_requant`` (the whole quantized layer: GEMM + zero-point correction + requantization)
on the seed CNN shapes. Every timed result is checked against the reference afterwards.
extra_info carries ``ops`` (2*M*N*K), ``peak_gops`` (for the op type and thread count), the tier,
the thread count and the CPU flags; ``python bench/report.py out.json`` turns them into GOP/s,
speedups and percent of peak.

Peaks (per core, this machine): int8 VNNI ~630 GOP/s, AVX-512 float32 ~160 GFLOP/s.
Run: python -m pytest bench/bench_int8.py --benchmark-json=out.json  (not in the default tests).
``TINYEFF_BENCH_QUICK=1`` keeps only the small shapes (used by ``tinyeff bench kernels``).

Script mode, one square GEMM against PyTorch, every variant interleaved in every repeat (medians),
with each path's measured int8 peak (kernels/peak.py) and each tinyeff row's best run as a share of it:
    python bench/bench_int8.py [--size 1024] [--threads 2] [--repeats 15] [--isa avx2]
tinyeff's C GEMM on each ISA path that can run (int32 out, and requantized to uint8 like torch's),
with 8-bit weights (AVX2: the exact tile wherever a weight pair could saturate int16) and 7-bit
weights (AVX2: vpmaddubsw everywhere), each on 8-bit activations (a8) and on the same codes halved
(a7, in [0, 127]: vpmaddubsw for any weights, two groups per vpmaddwd for 7-bit ones), against ``torch.ops.quantized.linear`` (x86 engine, uint8
out) fed 7-bit activation codes, as its default qconfig's reduce_range gives it (fbgemm's AVX2
kernel saturates otherwise). ``--isa avx2`` sets TINYEFF_CPU_FEATURES=avx2,fma and PyTorch's caps
(ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, FBGEMM_ENABLE_INSTRUCTIONS=AVX2)
before torch is imported.
"""
import os

import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels.layout import fixed_point
from tinyeff.kernels.int8_gemm import spec as gemm8

INT8_PEAK_GOPS_PER_CORE = 630.0
F32_PEAK_GFLOPS_PER_CORE = 160.0
QUICK = os.environ.get("TINYEFF_BENCH_QUICK", "") not in ("", "0")
SQUARE = [256] if QUICK else [256, 512, 1024]
BATCH = 64
# The seed CNN (Conv32-Pool-Conv64-Pool-Conv64-Linear64-Linear10, 3x3 valid convs) at batch 64,
# each layer as a GEMM (M = N*OH*OW, K = C*KH*KW, N = out channels).
SEED_CNN = {
    "cifar-conv1": (BATCH * 30 * 30, 3 * 9, 32),
    "cifar-conv2": (BATCH * 13 * 13, 32 * 9, 64),
    "cifar-conv3": (BATCH * 4 * 4, 64 * 9, 64),
    "cifar-fc1": (BATCH, 64 * 4 * 4, 64),
    "fmnist-conv1": (BATCH * 26 * 26, 1 * 9, 32),
    "fmnist-conv2": (BATCH * 11 * 11, 32 * 9, 64),
    "fmnist-conv3": (BATCH * 3 * 3, 64 * 9, 64),
}
if QUICK:
    SEED_CNN = {name: SEED_CNN[name] for name in ("cifar-conv2", "cifar-fc1")}
TIERS = ["ref", "numba", "c"]
THREADS = sorted({1, os.cpu_count() or 1})


def _kernel(name, tier):
    if not kernels.available(name, tier):
        pytest.skip(kernels.why_unavailable(name, tier))
    return kernels.get(name, tier)


@pytest.fixture
def threads(request):
    """Run the test body with ``request.param`` threads in the C (OpenMP) and Numba tiers."""
    import numba
    n = request.param
    c_threads_before = None
    if kernels.available("gemm_s8", "c"):
        from tinyeff.kernels import c as c_tier
        c_threads_before = c_tier.num_threads()
        c_tier.set_num_threads(n)
    numba_before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    yield n
    numba.set_num_threads(numba_before)
    if c_threads_before is not None:
        c_tier.set_num_threads(c_threads_before)


def _operands(rng, m, k, n):
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    return a, b


def _rounds(ops):
    return max(3, min(50, int(2e10 // max(ops, 1))))


def _int8_info(benchmark, machine_info, tier, ops, threads):
    benchmark.extra_info.update(machine_info, tier=tier, ops=ops, threads=threads, kind="int8",
                                peak_gops=INT8_PEAK_GOPS_PER_CORE * threads)
    if tier == "c":
        from tinyeff.kernels.int8_gemm import c as c_int8
        benchmark.extra_info["code_path"] = c_int8.code_path()


@pytest.mark.parametrize("threads", THREADS, indirect=True)
@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("size", SQUARE)
def test_gemm_u8s8_packed_square(benchmark, rng, threads, machine_info, size, tier):
    if tier == "ref" and threads > 1:
        pytest.skip("the NumPy reference is single-threaded; timed once, at threads=1")
    gemm = _kernel("gemm_u8s8_packed", tier)
    a, b = _operands(rng, size, size, size)
    packed = gemm8.pack_s8(b)
    gemm(a, packed)                                        # JIT compile and warm caches outside timing
    ops = 2 * size**3
    benchmark.group = f"int8 gemm {size}x{size}x{size}"
    _int8_info(benchmark, machine_info, tier, ops, threads)
    out = benchmark.pedantic(gemm, args=(a, packed), rounds=_rounds(ops), warmup_rounds=1)
    np.testing.assert_array_equal(out, a.astype(np.int32) @ b.astype(np.int32))


@pytest.mark.parametrize("threads", THREADS, indirect=True)
@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("layer", list(SEED_CNN))
def test_gemm_u8s8_requant_seed_cnn(benchmark, rng, threads, machine_info, layer, tier):
    if tier == "ref" and threads > 1:
        pytest.skip("the NumPy reference is single-threaded; timed once, at threads=1")
    m, k, n = SEED_CNN[layer]
    layer_fn = _kernel("gemm_u8s8_requant", tier)
    a, b = _operands(rng, m, k, n)
    packed = gemm8.pack_s8(b)
    bias = rng.integers(-1000, 1000, n).astype(np.int32)
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-4, 1e-3, n))
    args = (a, packed, 117, bias, multiplier, shift, 0)
    layer_fn(*args, relu=True)
    ops = 2 * m * n * k
    benchmark.group = f"int8 layer {layer} M={m} K={k} N={n}"
    _int8_info(benchmark, machine_info, tier, ops, threads)
    out = benchmark.pedantic(layer_fn, args=args, kwargs={"relu": True}, rounds=_rounds(ops), warmup_rounds=1)
    np.testing.assert_array_equal(out, gemm8.gemm_u8s8_requant(*args, relu=True))


def _shape(group_key):
    if group_key in SEED_CNN:
        return SEED_CNN[group_key], f"int8 layer {group_key} M={SEED_CNN[group_key][0]} " \
                                    f"K={SEED_CNN[group_key][1]} N={SEED_CNN[group_key][2]}"
    s = int(group_key)
    return (s, s, s), f"int8 gemm {s}x{s}x{s}"


BASELINE_SHAPES = [str(s) for s in SQUARE] + list(SEED_CNN)


@pytest.mark.parametrize("shape", BASELINE_SHAPES)
def test_numpy_f32_baseline(benchmark, rng, machine_info, shape):
    """NumPy float32 GEMM of the same shape: the bar int8 has to clear (BLAS threads: its default)."""
    (m, k, n), group = _shape(shape)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    np.matmul(a, b)
    ops = 2 * m * n * k
    threads = os.cpu_count() or 1
    benchmark.group = group
    benchmark.extra_info.update(machine_info, tier="numpy-f32", ops=ops, threads=threads, kind="f32",
                                peak_gops=F32_PEAK_GFLOPS_PER_CORE * threads)
    benchmark.pedantic(np.matmul, args=(a, b), rounds=_rounds(ops), warmup_rounds=1)


@pytest.mark.parametrize("shape", BASELINE_SHAPES)
def test_torch_quantized_linear(benchmark, rng, machine_info, shape):
    """PyTorch's int8 linear (fbgemm: uint8 activations x int8 weights, requantized output)."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001  (ImportError, or a broken install raising OSError)
        pytest.skip(f"torch is optional and not usable here ({exc}); pip install torch==2.13.0")
    (m, k, n), group = _shape(shape)
    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines \
        else torch.backends.quantized.supported_engines[-1]
    x = torch.from_numpy(rng.uniform(0, 1, (m, k)).astype(np.float32))
    w = torch.from_numpy(rng.uniform(-1, 1, (n, k)).astype(np.float32))
    xq = torch.quantize_per_tensor(x, 1 / 255, 0, torch.quint8)
    wq = torch.quantize_per_tensor(w, 1 / 127, 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(wq, None)
    run = lambda: torch.ops.quantized.linear(xq, packed, 0.05, 0)  # noqa: E731
    run()
    ops = 2 * m * n * k
    threads = torch.get_num_threads()
    benchmark.group = group
    benchmark.extra_info.update(machine_info, tier=f"torch-{torch.backends.quantized.engine}", ops=ops,
                                threads=threads, kind="int8", peak_gops=INT8_PEAK_GOPS_PER_CORE * threads)
    with torch.no_grad():
        benchmark.pedantic(run, rounds=_rounds(ops), warmup_rounds=1)


def _gemm_variants(rng, size):
    """dict name -> zero-argument callable, for tinyeff's paths and bit widths."""
    from tinyeff.kernels.int8_gemm import c as c_int8
    a8 = rng.integers(0, 256, (size, size), dtype=np.uint8)
    acts = {8: a8, 7: a8 >> 1}                    # 7-bit activations: the codes torch gets (reduce_range)
    bias = rng.integers(-1000, 1000, size).astype(np.int32)
    multiplier, shift = fixed_point.quantize_multiplier(rng.uniform(1e-5, 1e-4, size))
    fns = {}
    for bits, (lo, hi) in ((8, (-128, 128)), (7, (-64, 64))):
        b = rng.integers(lo, hi, (size, size), dtype=np.int8)
        packed = c_int8.pack_s8(b)
        for isa in c_int8.available_isas()[1:]:               # portable C is far slower: left out
            for abits, a in acts.items():
                name = f"tinyeff {isa} w{bits}a{abits}"
                fns[f"{name} int32"] = lambda a=a, p=packed, i=isa: c_int8.gemm_u8s8_packed(a, p, isa=i)
                fns[f"{name} uint8"] = lambda a=a, p=packed, i=isa: c_int8.gemm_u8s8_requant(
                    a, p, 64 if abits == 7 else 128, bias, multiplier, shift, 0, isa=i)
    return fns


def _torch_linear(rng, size):
    import torch
    torch.backends.quantized.engine = "x86"
    x = torch.from_numpy(rng.uniform(0, 1, (size, size)).astype(np.float32))
    w = torch.from_numpy(rng.uniform(-1, 1, (size, size)).astype(np.float32))
    xq = torch.quantize_per_tensor(x, 1 / 127, 0, torch.quint8)          # codes 0..127: reduce_range
    wq = torch.quantize_per_channel(w, torch.full((size,), 1 / 127, dtype=torch.float64),
                                    torch.zeros(size, dtype=torch.int64), 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(wq, None)
    return lambda: torch.ops.quantized.linear(xq, packed, 0.05, 64)


def main(argv=None):
    import argparse
    import sys
    import time
    parser = argparse.ArgumentParser(description="int8 GEMM: tinyeff per ISA path vs torch.ops.quantized.linear")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--isa", choices=["avx2"])
    args = parser.parse_args(argv)
    if args.isa == "avx2":
        if "torch" in sys.modules:
            raise SystemExit("--isa must be applied before torch is imported")
        os.environ.update(TINYEFF_CPU_FEATURES="avx2,fma", ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2",
                          MKL_ENABLE_INSTRUCTIONS="AVX2", FBGEMM_ENABLE_INSTRUCTIONS="AVX2")
    from tinyeff.kernels import c as c_tier
    from tinyeff.kernels.int8_gemm import c as c_int8
    rng = np.random.default_rng(0)
    fns = _gemm_variants(rng, args.size)
    c_tier.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
        fns["torch x86 quantized.linear uint8"] = _torch_linear(rng, args.size)
    except Exception as exc:  # noqa: BLE001
        print(f"NOTE: torch not usable ({exc}); pip install torch")
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(args.repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ops = 2 * args.size ** 3
    peaks = _peaks(c_int8.available_isas()[1:])
    print(f"{c_int8.code_path()}; caps: {args.isa or 'none'}; {args.size}^3, {args.threads} thread(s), "
          f"median of {args.repeats} interleaved repeats")
    print("  int8 peak, GOP/s (kernels/peak.py, 2 ops per multiply-add, best of 20 short runs): " +
          ", ".join(f"{isa} {step} {2 * g:.0f}" for (isa, step), g in peaks.items()))
    torch_t = np.median(times.get("torch x86 quantized.linear uint8", [np.nan]))
    for name, t in times.items():
        best, t = float(np.min(t)), float(np.median(t))
        isa = name.split()[1] if name.startswith("tinyeff") else None
        pct = f"{100 * ops / best / 2e9 / peaks[isa, 'step']:5.0f}% of step peak" if (isa, "step") in peaks else ""
        print(f"  {name:<36}{1e3 * t:>9.2f} ms{ops / t / 1e9:>8.1f} GOP/s{torch_t / t:>7.2f}x torch"
              f"   | best {ops / best / 1e9:>7.1f} GOP/s {pct}")


def _peaks(isas):
    """{(isa, "step" or "quad"): GMAC/s} of the int8 tile's step (and AVX2's quad step) per path."""
    from tinyeff.kernels import peak
    out = {}
    for isa in isas:
        out[isa, "step"] = peak.int8_peak_gmacs(isa)
        if isa in ("avx2", "avx512"):
            out[isa, "quad"] = peak.int8_peak_gmacs(isa, quad=True)
    return out


if __name__ == "__main__":
    main()
