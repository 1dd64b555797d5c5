"""``tinyeff train``: train a model on a dataset, with checkpoints, resume and a metrics file."""
import argparse
import json
import os

from tinyeff import manual_seed, train
from tinyeff.cli.common import (add_data_args, add_model_knob_args, add_progress_arg, add_threads_arg, apply_threads,
                                load_data, nonnegative_float, nonnegative_int, output_dir, positive_float,
                                positive_int, show_progress)
from tinyeff.data.transforms import preprocess_config
from tinyeff.errors import ModelFileError
from tinyeff.models import knobs


def register(subparsers):
    p = subparsers.add_parser("train", help="train a model; writes model.npz, metrics.json and a checkpoint")
    p.add_argument("--model", default="seed-cnn", help="model name (seed-cnn, resnet20, resnet18, mlp, mobilenet, ...)")
    add_data_args(p)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"])
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--schedule", default="cosine", choices=["none", "cosine", "step"])
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.0)
    p.add_argument("--augment", default="", help="comma-separated: crop,flip (default none)")
    p.add_argument("--precision", default="float32", help="float32, mixed_float16 or mixed_bfloat16")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    add_model_knob_args(p)
    add_threads_arg(p)
    p.add_argument("--out", default=None, help="output directory (required unless --resume)")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the interrupted run in DIR from its last checkpoint (same settings)")
    add_progress_arg(p)
    p.set_defaults(func=run)


CHECKED_SETTINGS = {"epochs": positive_int, "batch_size": positive_int, "lr": positive_float,
                    "weight_decay": nonnegative_float, "seed": nonnegative_int}
SETTINGS = ("model", "data", "root", "epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay",
            "augment", "width", "precision", "seed", "image_size", "test_fraction", "init", "shortcut", "preprocess",
            "limit")
# absent from runs started before they existed: such a run resumes with the command line's defaults
LATER_SETTINGS = ("image_size", "test_fraction", "init", "shortcut", "preprocess", "limit")


def run(args):
    if args.resume:
        _load_saved_settings(args)
    if not args.out:
        raise ValueError("train: --out DIR is required (or --resume DIR)")
    knobs.check(args.model, args.width, shortcut=args.shortcut)   # a knob the model lacks stops before any write
    apply_threads(args)
    with output_dir(args.out):
        return _train(args)


def _load_saved_settings(args):
    """Replace ``args``' settings with the ones ``--resume DIR`` recorded when the run started."""
    path = os.path.join(args.resume, "train_args.json")
    if not os.path.isdir(args.resume):
        raise ValueError(f"train: --resume {args.resume}: no such run directory")
    try:
        with open(path) as f:
            saved = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"train: --resume {args.resume}: no train_args.json there, so it is not a run "
                         "directory of `tinyeff train --out`; start a new run with --out") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: corrupt ({exc}); start a new run with --out") from None
    missing = [k for k in SETTINGS if not isinstance(saved, dict) or (k not in saved and k not in LATER_SETTINGS)]
    if missing:
        raise ModelFileError(f"{path}: lacks the settings {missing}; start a new run with --out")
    for key, check in CHECKED_SETTINGS.items():       # a hand-edited file gets the parser's checks too
        try:
            check(str(saved[key]))
        except argparse.ArgumentTypeError as exc:
            raise ModelFileError(f"{path}: {key} {exc}; fix it or start a new run with --out") from None
    if "preprocess" not in saved and saved["width"] is not None and saved["model"] != "seed-cnn":
        # written when a ResNet's --width was its channel count; now it is a multiplier
        saved["width"] /= knobs.RESNET18_BASE if saved["model"] == "resnet18" else knobs.RESNET_BASE
    for key in SETTINGS:
        setattr(args, key, saved.get(key, getattr(args, key, None)))
    args.out = args.resume


def _train(args):
    train_split, test_split = load_data(args)
    if args.limit:
        train_split = train_split.head(args.limit)
    manual_seed(args.seed)                    # the initial weights depend on the seed alone
    model = knobs.build(args.model, train_split, width=args.width, shortcut=args.shortcut, init=args.init)
    model.preprocess = preprocess_config(train_split, args.preprocess)
    precision = None
    if args.precision != "float32":
        from tinyeff.precision import get_policy
        precision = get_policy(args.precision)
    augment = [a for a in args.augment.split(",") if a]
    train.make_augment(augment, train_split.images.shape[-1])     # an unknown name stops before any file is written
    train.write_json(os.path.join(args.out, "train_args.json"), {k: getattr(args, k) for k in SETTINGS})
    metrics = train.fit(model, train_split, test_split, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                        schedule=args.schedule, augment=augment, seed=args.seed, precision=precision,
                        out_dir=args.out, resume=bool(args.resume), progress=show_progress(args))
    energy = metrics["energy"]
    print(f"final test accuracy {100 * metrics['final_test_accuracy']:.2f}% after {args.epochs} epochs, "
          f"{metrics['train_time_s']:.0f} s training, energy {energy['total_j']:.1f} J "
          f"({'ESTIMATED by the energy model' if energy['estimated'] else 'measured: ' + energy['source']})")
    print(f"wrote {os.path.join(args.out, 'model.npz')} and {os.path.join(args.out, 'metrics.json')}")
    return 0
