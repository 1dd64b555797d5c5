"""Small-batch latency of the int8 seed CNN with and without its prepared kernel calls, interleaved in one process.

An integer layer checks its kernel arguments once per input signature and replays a prepared body
after (tinyeff/quant/qmodules/plans.py); ``TINYEFF_INT8_PLANS=0`` checks every call in full, as
before. This script times both on the same model and inputs, round by round (the order alternating),
and reports each one's median time per forward pass and the median of their in-round ratios. The
outputs of the two paths are compared first: they must be identical.

    PYTHONPATH=. python bench/bench_int8_latency.py [--batch 1 8 256] [--input fmnist cifar] [--threads 1]
        [--rounds 41] [--profile]

``--profile``: for each batch and path, the time per forward pass spent inside C kernel calls
(each call timed; the two paths interleaved again) and in Python (the rest), and the Python
functions that take the most of it (ranked by cProfile).
The ISA path follows the CPU, capped by TINYEFF_CPU_FEATURES (``=avx2,fma``: the AVX2 path on an
AVX-512 machine); the script prints the path it ran.
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
from tinyeff.kernels import cpu
from tinyeff.quant import quantize_static
from tinyeff.quant.qmodules.plans import SWITCH

INPUTS = {"fmnist": (1, 28), "cifar": (3, 32)}                   # (C, H = W)
CALIBRATION = 256
MODES = {"full checks": "0", "prepared": None}                    # TINYEFF_INT8_PLANS per mode


def int8_seed_cnn(channels, size, rng):
    """The static int8 seed CNN (fresh weights, calibrated as bench_quantized_model.py does) and a
    float input pool of CALIBRATION images."""
    x = rng.standard_normal((CALIBRATION, channels, size, size)).astype(np.float32)
    images = np.clip(x * 64 + 128, 0, 255).astype(np.uint8)
    model = models.create("seed-cnn", in_channels=channels, num_classes=10, input_size=size).eval()
    return quantize_static(model, images, num_images=CALIBRATION), x


def set_mode(mode):
    value = MODES[mode]
    if value is None:
        os.environ.pop(SWITCH, None)
    else:
        os.environ[SWITCH] = value


def forward(model, x):
    with no_grad():
        return model(Tensor(x)).data


def interleaved(model, x, rounds):
    """{mode: median seconds per forward}, and the median in-round ratio full/prepared."""
    medians, ratio = paired_blocks({mode: (lambda: forward(model, x)) for mode in MODES}, rounds, setup=set_mode)
    set_mode("prepared")
    return medians, ratio


def same_outputs(model, x):
    outs = []
    for mode in MODES:
        set_mode(mode)
        outs.append(forward(model, x))
        outs.append(forward(model, x))                               # a replay too
    set_mode("prepared")
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


class _TimedLib:
    """The C library with each kernel call's wall time added up (the kernel vs Python split)."""

    def __init__(self, lib):
        self.lib, self.seconds = lib, 0.0

    def __getattr__(self, name):
        fn = getattr(self.lib, name)
        if name == "tinyeff_get_num_threads":                  # a setting read, not a kernel
            return fn

        def timed(*args):
            t0 = time.perf_counter()
            status = fn(*args)
            self.seconds += time.perf_counter() - t0
            return status
        return timed


class _TimedExtension:
    def __init__(self, module):
        self.ffi, self.lib = module.ffi, _TimedLib(module.lib)


def _forget_plans(model):
    for m in model.modules():
        if hasattr(m, "_plans"):
            m._plans.forget()


def kernel_share(model, x, rounds, block):
    """Per mode: (median microseconds per forward, median microseconds of it inside C kernel calls),
    over ``rounds`` interleaved rounds of ``block`` forwards, with every C call timed (prepared bodies
    hold the library's functions, so the plans are rebuilt around the timed library)."""
    times, real = {mode: [] for mode in MODES}, c_kernels._loaded[0]
    c_kernels._loaded[0] = timed = _TimedExtension(real)
    order = list(MODES)
    try:
        _forget_plans(model)
        for _ in range(rounds):
            for mode in order:
                set_mode(mode)
                forward(model, x)
                timed.lib.seconds = 0.0
                t0 = time.perf_counter()
                for _ in range(block):
                    forward(model, x)
                times[mode].append((time.perf_counter() - t0, timed.lib.seconds))
            order.reverse()
    finally:
        c_kernels._loaded[0] = real
        _forget_plans(model)
        set_mode("prepared")
    return {mode: tuple(1e6 * np.median(np.array(t), axis=0) / block) for mode, t in times.items()}


def top_python(model, x, calls, count=6):
    """Per mode: the Python functions with the most own time per forward under cProfile (which slows
    Python calls: read the ranking, not the microseconds)."""
    rows = {}
    for mode in MODES:
        set_mode(mode)
        forward(model, x)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            forward(model, x)
        prof.disable()
        stats = pstats.Stats(prof).stats                             # (file, line, fn) -> (cc, nc, tt, ct, callers)
        python = sorted(((v[2], f"{os.path.basename(k[0])}:{k[2]}") for k, v in stats.items()
                         if "_tinyeff_c" not in k[2]), reverse=True)[:count]
        rows[mode] = [(1e6 * t / calls, name) for t, name in python]
    set_mode("prepared")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 256])
    parser.add_argument("--input", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    c_kernels.set_num_threads(args.threads)
    print(f"ISA path {cpu.best_path()} (TINYEFF_CPU_FEATURES={os.environ.get('TINYEFF_CPU_FEATURES', '(unset)')}), "
          f"{args.threads} C thread(s), load average {os.getloadavg()[0]:.2f}; median of {args.rounds} "
          "interleaved rounds")
    print(f"{'input':<8}{'batch':>6}{'full checks us':>16}{'prepared us':>13}{'full/prepared':>15}")
    rng = np.random.default_rng(1234)
    for name in args.input:
        model, pool = int8_seed_cnn(*INPUTS[name], rng)
        for batch in args.batch:
            x = pool[:batch].copy()
            same_outputs(model, x)
            medians, ratio = interleaved(model, x, args.rounds)
            print(f"{name:<8}{batch:>6}{1e6 * medians['full checks']:>16.1f}{1e6 * medians['prepared']:>13.1f}"
                  f"{ratio:>14.2f}x")
            if args.profile:
                calls = max(20, 2000 // batch)
                top = top_python(model, x, calls)
                for mode, (total, in_c) in kernel_share(model, x, args.rounds, max(1, calls // 20)).items():
                    print(f"    {mode:<12} {total:7.1f} us per forward: {in_c:6.1f} in C kernels, "
                          f"{total - in_c:6.1f} in Python; most Python (cProfile): "
                          + ", ".join(fn for _, fn in top[mode]))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
