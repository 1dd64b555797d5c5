"""``tinyeff demo``: the main job on the embedded Fashion-MNIST sample, in a few minutes on 2 cores.

Trains the seed CNN on 6,000 real Fashion-MNIST images shipped with the package, derives every
compressed variant available, measures all of them side by side on tinyeff's own kernels and writes
the table, the plots and a self-contained HTML report. Nothing is downloaded.
"""
import time

from tinyeff.cli.common import add_progress_arg, output_dir, positive_int, show_progress
from tinyeff.cli.compare import print_summary
from tinyeff.compare import available_variants, run_compare

DEMO_VARIANTS = ("baseline", "pruned", "quantized", "pruned+quantized", "fp16", "mixed_fp16", "distilled")


def register(subparsers):
    p = subparsers.add_parser("demo", help="the main job on the embedded Fashion-MNIST sample (no download)")
    p.add_argument("--out", default="tinyeff-demo", help="output directory (default ./tinyeff-demo)")
    p.add_argument("--epochs", type=positive_int, default=4)
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args):
    variants = [v for v in DEMO_VARIANTS if v in available_variants()]
    t0 = time.perf_counter()
    with output_dir(args.out):
        results = run_compare("seed-cnn", "fashion-mnist-sample", variants, args.out, epochs=args.epochs,
                              finetune_epochs=3, sparsity=0.8, progress=show_progress(args))
    print_summary(results, args.out)
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return 0
