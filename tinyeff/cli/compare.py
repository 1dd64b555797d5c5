"""``tinyeff compare``: baseline vs compressed variants, measured side by side, with a report."""
import os

from tinyeff.cli.common import (add_model_knob_args, add_progress_arg, add_threads_arg, apply_threads, fraction,
                                nonnegative_int, output_dir, positive_float, positive_int, show_progress)
from tinyeff.compare import DEFAULT_VARIANTS, available_variants, run_compare
from tinyeff.models import knobs


def register(subparsers):
    p = subparsers.add_parser("compare", help="train, compress and compare variants; writes a report")
    p.add_argument("--model", default="seed-cnn")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--root", default=None, help="directory with the dataset files (only there; default: the usual places)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated, from: {', '.join(available_variants())}")
    p.add_argument("--baseline", default=None, help="load the baseline from this model file instead of training")
    p.add_argument("--epochs", type=positive_int, default=15, help="baseline training epochs")
    p.add_argument("--finetune-epochs", type=positive_int, default=3, help="epochs of pruning / QAT / distillation")
    p.add_argument("--sparsity", type=fraction, default=0.9, help="target weight sparsity of the pruned variants")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    add_model_knob_args(p)
    add_threads_arg(p)
    p.add_argument("--out", default="tinyeff-compare")
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args):
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in available_variants()]
    if unknown or not variants:
        raise ValueError(f"compare: unknown variant {(unknown or [args.variants])[0]!r}; "
                         f"choose from: {', '.join(available_variants())}")
    knobs.check(args.model, args.width, shortcut=args.shortcut)   # a knob the model lacks stops before any write
    apply_threads(args)
    options = {"width": args.width, "shortcut": args.shortcut, "init": args.init}
    with output_dir(args.out):
        results = run_compare(args.model, args.data, variants, args.out, epochs=args.epochs,
                              finetune_epochs=args.finetune_epochs, sparsity=args.sparsity,
                              batch_size=args.batch_size, lr=args.lr, seed=args.seed, root=args.root,
                              baseline_path=args.baseline, progress=show_progress(args),
                              model_options={k: v for k, v in options.items() if v is not None},
                              preprocess=args.preprocess, limit=args.limit)
    print_summary(results, args.out)
    return 0


def print_summary(results, out_dir):
    with open(os.path.join(out_dir, "results.md")) as f:
        print(f.read())
    print(f"report: {os.path.abspath(os.path.join(out_dir, 'report.html'))}")
