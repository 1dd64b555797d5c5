"""tinyeff alone at 1 thread against N threads: does the second core pay for itself?

Figures (ms per call, each thread count's median, and the speed-up N threads / 1 thread):
  train-seed     seed CNN training step, 3x32x32, batch 64, Adam
  infer-seed     seed CNN fp32 inference, batch 256
  latency-seed   seed CNN batch-1 latency (blocks of 10 calls)
Interleaved in one process: every round runs a block of each figure at 1 thread, then at N
(``tinyeff.threads.set_threads`` between blocks), with the process quiesced before each block
(bench/twins.py), so a busy moment of a shared machine falls on both counts alike. A speed-up
below 1.00x means the extra threads cost more than they gain (tiny parallel regions, pools spinning
against each other, or a core taken by other work: say the load when you quote one).
The conv lowering cache starts empty in a temporary directory; the lowering is measured per thread
count (kernels/conv/lowering.py keys it so).

Run:  PYTHONPATH=. python bench/bench_threads.py [--threads 2] [--rounds 10] [--isa native|avx2]
"""
import argparse
import os
import sys

import numpy as np
from twins import medians, rerun_in_child, run_blocks, tinyeff_step

CAPS = {"avx2": {"TINYEFF_CPU_FEATURES": "avx2,fma", "OPENBLAS_CORETYPE": "Haswell",
                 "NUMBA_CPU_NAME": "haswell"}}


def figures(rng):
    """name -> (callable, calls per block): the three seed-CNN figures on fixed data."""
    import tinyeff
    from tinyeff import models, optim
    train_model = models.create("seed-cnn", in_channels=3, num_classes=10, input_size=32)
    opt = optim.Adam(train_model.parameters(), lr=1e-3)
    x64 = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    model = models.create("seed-cnn", in_channels=3, num_classes=10, input_size=32)
    model.eval()

    def infer(x):
        def run():
            with tinyeff.no_grad():
                return model(tinyeff.Tensor(x)).data
        return run
    x256 = rng.standard_normal((256, 3, 32, 32)).astype(np.float32)
    x1 = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    return {"train-seed": (tinyeff_step(train_model, opt, x64, rng.integers(0, 10, 64)), 1),
            "infer-seed": (infer(x256), 1), "latency-seed": (infer(x1), 10)}


def run(args):
    from tinyeff.threads import set_threads
    counts = (1, args.threads)
    times = {}
    for name, (step, reps) in figures(np.random.default_rng(0)).items():
        for n in counts:
            set_threads(n)
            step()                                   # warm-up, and the lowering measured at n threads
        blocks, _ = run_blocks({n: step for n in counts}, list(counts) * args.rounds, reps,
                               setup=set_threads)
        times[name] = medians(blocks)
    print(f"tinyeff alone, ISA {args.isa}, load {os.getloadavg()[0]:.1f} (1-min average, 2 cores), "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"{'figure':13} {'1 thread':>12} {f'{args.threads} threads':>12} {'speed-up':>9}")
    for name, t in times.items():
        one, many = t[1][0], t[args.threads][0]
        print(f"{name:13} {1e3 * one:9.2f} ms {1e3 * many:9.2f} ms {one / many:8.2f}x")
    print(f"(medians of {args.rounds} interleaved rounds; blocks of 10 calls for batch 1)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--isa", choices=("native", "avx2"), default="native")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run(args)
    env = dict(os.environ, **CAPS.get(args.isa, {}))
    return rerun_in_child(__file__, argv, env)


if __name__ == "__main__":
    sys.exit(main())
