"""Sparse convolution benchmarks: is pruning worth it on this machine?

Headline: the seed CNN's second conv layer (32 -> 64 channels, 3x3, valid) at batch 64 and 90%
unstructured sparsity, on its Fashion-MNIST input (32x13x13) and its CIFAR-10 input (32x15x15).
Contenders, grouped per shape so one run compares them side by side:
  sparse-c:<path>           spconv_f32_csr's C tier on one ISA path (portable, avx2, avx512, neon)
  sparse-numba              spconv_f32_csr's Numba tier (work ~ nnz)
  dense                     tinyeff's dense path: the conv2d op (the direct kernel conv2d_f32 here)
  im2col-gemm               the textbook dense lowering: im2col_f32 + gemm_f32 (BLAS) + NCHW transpose
  scipy-csr                 scipy.sparse CSR weight times the im2col matrix (the textbook way)
Then a sparsity sweep 0..99% (sparse-c vs dense) with the ideal speedup 1/(1-s) in extra_info, and
the int8 twin: spconv_u8s8_csr per ISA path against the dense int8 lowering with the same int32 NCHW
output (im2col_u8 + the packed u8 x s8 GEMM on its best path; the requantizing implicit NHWC conv
the int8 model runs is bench_int8.py's and bench_pruned_model.py --per-isa's). extra_info: ``ops`` (useful operations: 2 x nonzeros x positions),
``gops`` at the median, ``code_path`` and, when tinyeff.kernels.peak is there, ``peak_gops`` (the
measured FMA peak of that ISA path) and ``pct_peak``. The other ISA paths of the dense contenders are
reached by capping the run: TINYEFF_CPU_FEATURES=avx2,fma OPENBLAS_CORETYPE=Haswell NUMBA_CPU_NAME=haswell.
Run: pytest bench/bench_sparse.py --benchmark-json=out.json  (not part of the default test run), or
PYTHONPATH=. python bench/bench_sparse.py [threads]  for every ISA path interleaved in one table.
"""
import numpy as np
import pytest
import scipy.sparse

from tinyeff import kernels
from tinyeff.kernels import registry
from tinyeff.kernels.layout.csr import pack_sparse
from tinyeff.kernels.sparse import spec as sparse_ref
from tinyeff.testing import c_paths, kernel_or_skip

SPARSE_C = [f"sparse-{t}" for t in c_paths()]

N, C, OC, K = 64, 32, 64, 3


def _layer(rng, side, sparsity):
    x = rng.standard_normal((N, C, side, side)).astype(np.float32)
    w = rng.standard_normal((OC, C, K, K)).astype(np.float32)
    w.reshape(-1)[rng.permutation(w.size)[:int(round(sparsity * w.size))]] = 0
    b = rng.standard_normal(OC).astype(np.float32)
    return x, w, b


def _op_path(w, b):
    """tinyeff's dense conv forward as a layer runs it: the conv2d op, which picks its lowering."""
    from tinyeff import Tensor, no_grad, ops
    wt, bt = Tensor(w), Tensor(b)

    def run(x):
        with no_grad():
            return ops.conv2d(Tensor(x), wt, bt).data
    return run


def _dense_path(w, b):
    """The im2col lowering with the active im2col and GEMM tiers."""
    im2col, gemm = kernels.get("im2col_f32"), kernels.get("gemm_f32")
    w2t = np.ascontiguousarray(w.reshape(OC, -1).T)                  # (C*KH*KW, OC)

    def run(x):
        n = x.shape[0]
        y = gemm(im2col(x, K, K), w2t)                               # (N*OH*OW, OC)
        oh = int(round((y.shape[0] // n) ** 0.5))
        return np.ascontiguousarray(y.reshape(n, oh, oh, OC).transpose(0, 3, 1, 2)) \
            + b.reshape(1, -1, 1, 1)
    return run


def _scipy_path(w, b):
    csr = scipy.sparse.csr_matrix(w.reshape(OC, -1))                # (OC, C*KH*KW)
    im2col = kernels.get("im2col_f32")

    def run(x):
        n = x.shape[0]
        y = np.asarray(csr @ im2col(x, K, K).T)                      # (OC, N*OH*OW)
        oh = int(round((y.shape[1] // n) ** 0.5))
        return np.ascontiguousarray(y.reshape(OC, n, oh, oh).transpose(1, 0, 2, 3)) \
            + b.reshape(1, -1, 1, 1)
    return run


def _contender(name, w, b):
    if name == "dense":
        return _op_path(w, b)
    if name == "im2col-gemm":
        return _dense_path(w, b)
    if name == "scipy-csr":
        return _scipy_path(w, b)
    spconv, packed = kernel_or_skip("spconv_f32_csr", name[len("sparse-"):]), pack_sparse(w)
    return lambda x: spconv(x, packed, b)


def _code_path(contender, kernel):
    """The ISA path a contender runs: its own ``c:<path>``, else the best one of ``kernel`` here."""
    _, _, path = contender.partition("c:")
    return path or registry.best_isa(kernel) or "-"


_PEAKS = {}


def _peak_gops(path):
    """The measured FMA peak of an ISA path (GFLOP/s, all C threads), or None where not measurable."""
    if path not in _PEAKS:
        try:
            from tinyeff.kernels import peak
            _PEAKS[path] = peak.fma_peak_gflops(path)
        except Exception:                # noqa: BLE001  (no peak module or no such path: no % column)
            _PEAKS[path] = None
    return _PEAKS[path]


def _rate(benchmark, ops, path):
    """GOP/s at the median and % of the path's FMA peak, into extra_info."""
    gops = ops / benchmark.stats.stats.median / 1e9
    peak = _peak_gops(path) if path not in ("-",) else None
    benchmark.extra_info.update(ops=ops, gops=gops, code_path=path, peak_gops=peak,
                                pct_peak=None if not peak else 100.0 * gops / peak)


def _flops(side, nnz):
    out_px = (side - K + 1) ** 2
    return 2 * N * out_px * OC * C * K * K, 2 * N * out_px * nnz


@pytest.mark.parametrize("side", [13, 15], ids=["fmnist-13x13", "cifar-15x15"])
@pytest.mark.parametrize("contender", SPARSE_C + ["sparse-numba", "dense", "im2col-gemm", "scipy-csr"])
def test_seed_conv2_sparsity90(benchmark, rng, machine_info, side, contender):
    x, w, b = _layer(rng, side, 0.9)
    fn = _contender(contender, w, b)
    fn(x)                                                            # JIT and cache warm-up
    dense_flops, useful_flops = _flops(side, np.count_nonzero(w))
    benchmark.group = f"seed conv2 32->64 3x3 {side}x{side} N=64 sparsity 0.9"
    benchmark.extra_info.update(machine_info, contender=contender, sparsity=0.9,
                                dense_flops=dense_flops, useful_flops=useful_flops)
    out = benchmark.pedantic(fn, args=(x,), rounds=15, iterations=1, warmup_rounds=1)
    kernel = {"dense": "conv2d_f32", "sparse-numba": None}.get(contender, "spconv_f32_csr")
    _rate(benchmark, useful_flops if contender.startswith("sparse") else dense_flops,
          _code_path(contender, kernel) if contender.startswith("sparse-c") or contender == "dense" else "-")
    want = sparse_ref.spconv_f32_csr(x, pack_sparse(w), b)
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-3)  # a fast wrong answer is not a result


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("contender", ["sparse-c", "dense"])    # each on its best path here
def test_seed_conv2_sparsity_sweep(benchmark, rng, machine_info, sparsity, contender):
    x, w, b = _layer(rng, 13, sparsity)
    fn = _contender(contender, w, b)
    fn(x)
    benchmark.group = f"sweep seed conv2 13x13 N=64 sparsity {sparsity:.2f}"
    benchmark.extra_info.update(machine_info, contender=contender, sparsity=sparsity,
                                ideal_speedup=1.0 / max(1e-9, 1.0 - sparsity))
    out = benchmark.pedantic(fn, args=(x,), rounds=10, iterations=1, warmup_rounds=1)
    np.testing.assert_allclose(out, sparse_ref.spconv_f32_csr(x, pack_sparse(w), b),
                               rtol=1e-3, atol=1e-3)


# ---- int8 twin: u8 x s8 sparse rows against the dense int8 lowering -------------------------------

def _int8_layer(rng, side, sparsity):
    x = rng.integers(0, 256, (N, C, side, side), dtype=np.uint8)
    w = rng.integers(-128, 128, (OC, C, K, K), dtype=np.int8)
    w.reshape(-1)[rng.permutation(w.size)[:int(round(sparsity * w.size))]] = 0
    return x, w


def _int8_dense(w):
    """im2col_u8 + the packed u8 x s8 GEMM on its best path -> int32 (N, OC, OH, OW)."""
    im2col, pack = kernel_or_skip("im2col_u8", "c"), kernel_or_skip("pack_s8", "c")
    gemm = kernel_or_skip("gemm_u8s8_packed", "c")
    packed = pack(np.ascontiguousarray(w.reshape(OC, -1).T))           # (C*KH*KW, OC)

    def run(x):
        n, oh = x.shape[0], x.shape[2] - K + 1
        return gemm(im2col(x, K, K), packed).reshape(n, oh, oh, OC).transpose(0, 3, 1, 2)
    return run


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
@pytest.mark.parametrize("contender", SPARSE_C + ["im2col-gemm-int8"])
def test_seed_conv2_int8(benchmark, rng, machine_info, sparsity, contender):
    x, w = _int8_layer(rng, 13, sparsity)
    packed = pack_sparse(w)
    if contender == "im2col-gemm-int8":
        fn = _int8_dense(w)
    else:
        spconv = kernel_or_skip("spconv_u8s8_csr", contender[len("sparse-"):])
        fn = lambda x: spconv(x, packed, None)                          # noqa: E731
    fn(x)
    benchmark.group = f"int8 seed conv2 32->64 3x3 13x13 N={N} sparsity {sparsity:.2f}"
    benchmark.extra_info.update(machine_info, contender=contender, sparsity=sparsity)
    out = benchmark.pedantic(fn, args=(x,), rounds=15, iterations=1, warmup_rounds=1)
    useful = 2 * N * 11 * 11 * packed.nnz
    _rate(benchmark, useful if contender != "im2col-gemm-int8" else 2 * N * 11 * 11 * w.size,
          _code_path(contender, "spconv_u8s8_csr" if contender != "im2col-gemm-int8" else "gemm_u8s8_packed"))
    np.testing.assert_array_equal(out, sparse_ref.spconv_u8s8_csr(x, packed, None))


def interleaved(rounds=11, threads=None):
    """The seed conv2 (13x13, N=64, 90% sparse) float32 and int8 sparse kernels on every C ISA path and
    the dense contenders, timed round-robin in one process; median ms and useful GOP/s."""
    import time

    from tinyeff.kernels import c as c_tier
    if threads:
        c_tier.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x, w, b = _layer(rng, 13, 0.9)
    xq, wq = _int8_layer(rng, 13, 0.9)
    packed, packed_q = pack_sparse(w), pack_sparse(wq)
    fns = {f"f32 sparse c:{p}": (lambda p=p: kernels.get("spconv_f32_csr", "c", isa=p)(x, packed, b))
           for p in registry.isa_paths("spconv_f32_csr", "c")}
    fns["f32 dense (conv2d op)"] = lambda run=_op_path(w, b): run(x)
    fns.update({f"int8 sparse c:{p}": (lambda p=p: kernels.get("spconv_u8s8_csr", "c", isa=p)(xq, packed_q))
                for p in registry.isa_paths("spconv_u8s8_csr", "c")})
    fns["int8 dense (im2col + GEMM)"] = lambda run=_int8_dense(wq): run(xq)
    useful = {"f32": 2 * N * 11 * 11 * packed.nnz, "int8": 2 * N * 11 * 11 * packed_q.nnz}
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    print(f"seed conv2 32->64 3x3 13x13, N={N}, 90% sparse; C threads {c_tier.num_threads()}; "
          f"median of {rounds} interleaved rounds; GOP/s counts the nonzero weights' work")
    for name, ts in times.items():
        med = float(np.median(ts))
        print(f"  {name:<28}{1e3 * med:>9.2f} ms{useful[name.split()[0]] / med / 1e9:>9.1f} GOP/s")


if __name__ == "__main__":
    import sys
    interleaved(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None)
