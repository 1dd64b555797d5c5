"""Sparse convolution benchmarks: is pruning worth it on this machine?

Headline: the seed CNN's second conv layer (32 -> 64 channels, 3x3, valid) at batch 64 and 90%
unstructured sparsity, on its Fashion-MNIST input (32x13x13) and its CIFAR-10 input (32x15x15).
Contenders, grouped per shape so one run compares them side by side:
  sparse-c / sparse-numba   spconv_f32_csr, the direct sparse loop (work ~ nnz)
  dense                     tinyeff's dense path: the conv2d op (the direct kernel conv2d_f32 here)
  im2col-gemm               the textbook dense lowering: im2col_f32 + gemm_f32 (BLAS) + NCHW transpose
  scipy-csr                 scipy.sparse CSR weight times the im2col matrix (the textbook way)
Then a sparsity sweep 0..99% (sparse-c vs dense) with the ideal speedup 1/(1-s) in extra_info.
Run: pytest bench/bench_sparse.py --benchmark-json=out.json  (not part of the default test run).
"""
import numpy as np
import pytest
import scipy.sparse

from tinyeff import kernels
from tinyeff.kernels.sparse import spec as sparse_ref
from tinyeff.kernels.layout.csr import pack_sparse

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
    tier = name.split("-")[1]
    if not kernels.available("spconv_f32_csr", tier):
        pytest.skip(kernels.why_unavailable("spconv_f32_csr", tier))
    spconv, packed = kernels.get("spconv_f32_csr", tier), pack_sparse(w)
    return lambda x: spconv(x, packed, b)


def _flops(side, nnz):
    out_px = (side - K + 1) ** 2
    return 2 * N * out_px * OC * C * K * K, 2 * N * out_px * nnz


@pytest.mark.parametrize("side", [13, 15], ids=["fmnist-13x13", "cifar-15x15"])
@pytest.mark.parametrize("contender", ["sparse-c", "sparse-numba", "dense", "im2col-gemm", "scipy-csr"])
def test_seed_conv2_sparsity90(benchmark, rng, machine_info, side, contender):
    x, w, b = _layer(rng, side, 0.9)
    fn = _contender(contender, w, b)
    fn(x)                                                            # JIT and cache warm-up
    dense_flops, useful_flops = _flops(side, np.count_nonzero(w))
    benchmark.group = f"seed conv2 32->64 3x3 {side}x{side} N=64 sparsity 0.9"
    benchmark.extra_info.update(machine_info, contender=contender, sparsity=0.9,
                                dense_flops=dense_flops, useful_flops=useful_flops)
    out = benchmark.pedantic(fn, args=(x,), rounds=15, iterations=1, warmup_rounds=1)
    want = sparse_ref.spconv_f32_csr(x, pack_sparse(w), b)
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-3)  # a fast wrong answer is not a result


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("contender", ["sparse-c", "dense"])
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
