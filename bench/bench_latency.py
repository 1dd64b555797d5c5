"""Small-batch latency of the float32 seed CNN with and without its inference reuse, interleaved in one process.

An inference forward pass reuses what does not change between calls: each conv keeps its packed
weight while the weight's bytes are unchanged (kernels/weight_cache.py), and Sequential sets BLAS to
one thread once per pass instead of around every GEMM (kernels/blas.py, ``one_thread``). The
"per call" mode undoes both: ``TINYEFF_WEIGHT_CACHE=0`` packs every call, and the layers run through
``Sequential._run``, outside the one-thread block, so each GEMM switches BLAS's threads itself.
Both modes run the same model on the same inputs, round by round (the order alternating); the script
reports each one's median time per forward pass and the median of their in-round ratios. The
outputs of the two modes are compared first: they must be identical, bit for bit.

    PYTHONPATH=. python bench/bench_latency.py [--batch 1 8] [--threads 2] [--rounds 41] [--profile]

``--profile``: per mode, the time per forward pass inside tinyeff's C kernels and BLAS (each call
timed) against the rest, Python, and the Python functions with the most own time (cProfile).
The ISA path follows the CPU, capped by TINYEFF_CPU_FEATURES (``=avx2,fma``: the AVX2 path on an
AVX-512 machine); the script prints the path it ran. The conv lowerings (direct or im2col + GEMM)
are the ones measured and cached on this machine (kernels/conv/lowering.py): both modes share them.
"""
import argparse
import cProfile
import os
import pstats
import time

import numpy as np

from twins import paired_blocks
from tinyeff import Tensor, models, no_grad
from tinyeff.kernels import c as c_kernels
from tinyeff.kernels import cpu, weight_cache
from tinyeff.kernels.gemm import spec as gemm_spec
from tinyeff.ops import plan
from tinyeff.threads import set_threads

MODES = ("per call", "reused")


def forward(model, x, mode):
    """One inference pass in ``mode`` (see the module docstring); the output array."""
    if mode == "per call":
        os.environ[weight_cache.SWITCH] = "0"
        with no_grad():
            out = model._run(Tensor(x)).data
        del os.environ[weight_cache.SWITCH]
        return out
    with no_grad():
        return model(Tensor(x)).data


def interleaved(model, x, rounds):
    """{mode: median seconds per forward}, and the median in-round ratio per call / reused."""
    return paired_blocks({mode: (lambda mode=mode: forward(model, x, mode)) for mode in MODES}, rounds)


def same_outputs(model, x):
    outs = [forward(model, x, mode) for mode in MODES for _ in range(2)]     # a replay of each too
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


class _Timed:
    """Wraps the C library and BLAS's matmul, adding up each call's wall time."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args):
            t0 = time.perf_counter()
            result = fn(*args)
            self.seconds += time.perf_counter() - t0
            return result
        return timed


class _TimedLib:
    def __init__(self, lib, timer):
        self.lib, self.timer = lib, timer

    def __getattr__(self, name):
        fn = getattr(self.lib, name)
        return fn if name == "tinyeff_get_num_threads" else self.timer.wrap(fn)   # a setting read


class _TimedExtension:
    def __init__(self, module, timer):
        self.ffi, self.lib = module.ffi, _TimedLib(module.lib, timer)


def kernel_share(model, x, rounds, block):
    """Per mode: (median us per forward, median us of it in C kernels and BLAS)."""
    timer, real, matmul = _Timed(), c_kernels._loaded[0], gemm_spec.matmul
    c_kernels._loaded[0], gemm_spec.matmul = _TimedExtension(real, timer), timer.wrap(matmul)
    times = {mode: [] for mode in MODES}
    order = list(MODES)
    try:
        plan.forget()
        for _ in range(rounds):
            for mode in order:
                forward(model, x, mode)
                timer.seconds = 0.0
                t0 = time.perf_counter()
                for _ in range(block):
                    forward(model, x, mode)
                times[mode].append((time.perf_counter() - t0, timer.seconds))
            order.reverse()
    finally:
        c_kernels._loaded[0], gemm_spec.matmul = real, matmul
        plan.forget()
    return {mode: tuple(1e6 * np.median(np.array(t), axis=0) / block) for mode, t in times.items()}


def top_python(model, x, calls, count=6):
    """Per mode: the Python functions with the most own time under cProfile (read the ranking)."""
    rows = {}
    for mode in MODES:
        forward(model, x, mode)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            forward(model, x, mode)
        prof.disable()
        stats = pstats.Stats(prof).stats                   # (file, line, fn) -> (cc, nc, tt, ct, callers)
        python = sorted(((v[2], f"{os.path.basename(k[0])}:{k[2]}") for k, v in stats.items()
                         if "_tinyeff_c" not in k[2]), reverse=True)[:count]
        rows[mode] = [name for _, name in python]
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    print(f"ISA path {cpu.best_path()} (TINYEFF_CPU_FEATURES={os.environ.get('TINYEFF_CPU_FEATURES', '(unset)')}), "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}; median of {args.rounds} "
          "interleaved rounds")
    print(f"{'batch':>5}{'per call us':>13}{'reused us':>11}{'per call/reused':>17}")
    rng = np.random.default_rng(1234)
    model = models.create("seed-cnn", in_channels=3, num_classes=10, input_size=32).eval()
    for batch in args.batch:
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        same_outputs(model, x)
        medians, ratio = interleaved(model, x, args.rounds)
        print(f"{batch:>5}{1e6 * medians['per call']:>13.1f}{1e6 * medians['reused']:>11.1f}{ratio:>16.2f}x")
        if args.profile:
            calls = max(20, 2000 // batch)
            top = top_python(model, x, calls)
            for mode, (total, in_c) in kernel_share(model, x, args.rounds, max(1, calls // 20)).items():
                print(f"    {mode:<9} {total:7.1f} us per forward: {in_c:6.1f} in C kernels and BLAS, "
                      f"{total - in_c:6.1f} in Python; most Python (cProfile): " + ", ".join(top[mode]))


if __name__ == "__main__":
    main()
