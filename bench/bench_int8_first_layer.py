"""First-layer integer convs (1 or 3 input channels): the small-channel kernel against the GEMM conv.

``conv2d_u8s8_smallc_nhwc`` (output channels in the lanes, csrc/int8_conv_small/) and
``conv2d_u8s8_requant_nhwc`` (implicit-im2col GEMM, csrc/int8_gemm/) compute the same codes; this
times both on each x86 ISA path this machine runs, on the first layers of the seed CNN (32 output
channels, ReLU, fused 2x2 max-pool; Fashion-MNIST 1x28x28 and CIFAR 3x32x32) and of ResNet-20 (16
output channels, padding 1, no pool), batch 256. Every variant runs once per round in a shuffled
order, so a busy machine slows all of them alike; the speed-up is the median of the per-round
ratios. Outputs are checked equal first.

    python bench/bench_int8_first_layer.py [--threads 2] [--rounds 60] [--a8] [--w7]
(``--a8``: 8-bit activations, [0, 255]; the default is 7-bit, [0, 127], what quantize_static gives;
``--w7``: 7-bit weights, which let AVX2 share one vpmaddwd between two groups.)
Run under ``TINYEFF_CPU_FEATURES=avx2,fma`` to see the AVX2 path alone.
"""
import argparse
import time

import numpy as np
import pytest

from tinyeff import kernels
from tinyeff.kernels import c as c_kernels
from tinyeff.kernels import registry
from tinyeff.kernels.int8_conv.spec import gemm_weight
from tinyeff.kernels.int8_conv_small.spec import pack_conv_small
from tinyeff.kernels.int8_eltwise.spec import random_requant

BATCH = 256
# name: (C, H = W, OC, padding, pool)
LAYERS = {"seed-fmnist": (1, 28, 32, 0, 2), "seed-cifar": (3, 32, 32, 0, 2), "resnet20-cifar": (3, 32, 16, 1, 1)}
PATHS = ("avx2", "avx512_vnni")


def layer_calls(name, rng, top=128, batch=BATCH, weight_top=128):
    """dict variant -> zero-argument call, for both kernels on each usable x86 path."""
    c, size, oc, padding, pool = LAYERS[name]
    x = rng.integers(0, top, (batch, size, size, c), dtype=np.uint8)
    w = rng.integers(-weight_top, weight_top, (oc, c, 3, 3), dtype=np.int8)
    small, gemm = pack_conv_small(w), kernels.get("pack_s8")(gemm_weight(w))
    args = (3, rng.integers(-999, 999, oc).astype(np.int32), *random_requant(rng, oc, 1e-4, 1e-2), 0)
    calls = {}
    for isa in PATHS:
        if isa not in registry.isa_paths("conv2d_u8s8_smallc_nhwc", "c"):
            continue
        gemm_fn = kernels.get("conv2d_u8s8_requant_nhwc", "c", isa=isa)
        small_fn = kernels.get("conv2d_u8s8_smallc_nhwc", "c", isa=isa)
        calls["gemm-" + isa] = lambda f=gemm_fn: f(x, gemm, 3, 3, 1, padding, *args, pool=pool, qmax=127, relu=True)
        calls["small-" + isa] = lambda f=small_fn: f(x, small, 1, padding, *args, pool=pool, qmax=127, relu=True)
    return calls


def interleaved(calls, rounds, rng):
    """dict variant -> array of seconds, one per round, variants shuffled within each round."""
    times = {k: [] for k in calls}
    for _ in range(rounds):
        for k in rng.permutation(list(calls)):
            t0 = time.perf_counter()
            calls[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: np.array(v) for k, v in times.items()}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("kind", ["gemm", "small"])
def test_first_layer(benchmark, rng, name, kind):
    calls = {k: f for k, f in layer_calls(name, rng, batch=64).items() if k.startswith(kind)}
    if not calls:
        pytest.skip("no x86 vector path here")
    benchmark(calls[max(calls)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=c_kernels.num_threads())
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--a8", action="store_true", help="8-bit activations (default 7-bit)")
    parser.add_argument("--w7", action="store_true", help="7-bit weights, [-64, 63] (default 8-bit)")
    args = parser.parse_args(argv)
    c_kernels.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"batch {BATCH}, {args.threads} thread(s), {'8' if args.a8 else '7'}-bit activations, "
          f"{'7' if args.w7 else '8'}-bit weights, "
          f"median of {args.rounds} shuffled rounds")
    for name in LAYERS:
        calls = layer_calls(name, rng, 256 if args.a8 else 128, weight_top=64 if args.w7 else 128)
        outs = {k: f() for k, f in calls.items()}
        first = next(iter(outs.values()))
        assert all(np.array_equal(first, o) for o in outs.values()), "kernels disagree"
        t = interleaved(calls, args.rounds, rng)
        for isa in PATHS:
            if "gemm-" + isa in t:
                g, s = t["gemm-" + isa], t["small-" + isa]
                print(f"{name:<16}{isa:<13}gemm {1e3 * np.median(g):7.3f} ms   small {1e3 * np.median(s):7.3f} ms"
                      f"   speed-up {np.median(g / s):5.2f}x")


if __name__ == "__main__":
    main()
