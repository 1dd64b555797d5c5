"""Argument helpers shared by subcommands: validated number types, dataset and model arguments,
loading models by path or name.

Numbers are checked where they are parsed, so ``--epochs 0`` or ``--lr nan`` stop with argparse's
usage message and exit code 2 before anything runs or is written.
"""
import argparse
import math
import os
import sys

from tinyeff import data, io


def positive_int(text):
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def nonnegative_int(text):
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text, low):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
    return value


def finite_float(text):
    """argparse type: a finite number (no nan, inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def nonnegative_float(text):
    """argparse type: a finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def fraction(text):
    """argparse type: a number in [0, 1]."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1], got {text}")
    return value


def add_progress_arg(p):
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (one log line per epoch; the default when stderr is not a terminal)")


def show_progress(args):
    """Progress bars only on a terminal: piped to a file, a bar's redraws would fill the log."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def add_model_arg(p):
    p.add_argument("model", help="model file (.npz) or a run directory holding model.npz")


def add_data_args(p, default="fashion-mnist-sample"):
    p.add_argument("--data", default=default,
                   help=f"dataset name ({', '.join(data.names())}; default {default}), or PATH: a MedMNIST-layout "
                        ".npz or an image folder (train/ and test/ class folders, or one class-folder tree)")
    p.add_argument("--root", default=None, help="directory with the dataset files (only there; default: the usual places)")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="PATH data: resize every image to NxN (needed when image sizes differ)")
    p.add_argument("--test-fraction", type=fraction, default=0.2,
                   help="PATH data, one class-folder tree: fraction of each class held out for testing (seeded)")


def load_data(args):
    """The (train, test) splits of ``--data``; an empty split is an error, not a NaN mean later."""
    from tinyeff.data.local import is_local
    if args.data not in data.names() and is_local(args.data):
        splits = data.load(args.data, image_size=getattr(args, "image_size", None),
                           test_fraction=getattr(args, "test_fraction", 0.2), seed=getattr(args, "seed", 0) or 0)
    else:
        splits = data.load(args.data, root=args.root)
    return data.require_images(args.data, *splits)


def load_model(path_or_dir):
    """A model file, or a run directory containing ``model.npz``."""
    path = os.path.join(path_or_dir, "model.npz") if os.path.isdir(path_or_dir) else path_or_dir
    return io.load(path)


def output_dir(path):
    """Hold ``path``'s lock for the ``with`` body (see ``tinyeff.outdir``): one writer per directory."""
    from tinyeff import outdir
    return outdir.locked(path)


def add_threads_arg(p):
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for OpenMP, Numba and BLAS together (default: every core)")


def apply_threads(args):
    """Size OpenMP, Numba and BLAS to ``--threads`` (see ``tinyeff.threads``); a no-op without it."""
    if getattr(args, "threads", None):
        from tinyeff.threads import set_threads
        set_threads(args.threads)


def add_model_knob_args(p):
    """--width, --init, --no-shortcut, --preprocess and --limit, the knobs train, compare and sweep share."""
    from tinyeff.data.transforms import PREPROCESS_KINDS
    p.add_argument("--width", type=positive_float, default=None,
                   help="channel multiplier for every model (1 = the published size, 0.5 = half the channels)")
    p.add_argument("--init", choices=["kaiming", "xavier"], default=None,
                   help="weight init: kaiming (He normal, the default) or xavier (Glorot uniform)")
    p.add_argument("--no-shortcut", dest="shortcut", action="store_const", const=False, default=None,
                   help="CIFAR ResNets: drop every skip connection (a plain network of the same depth)")
    p.add_argument("--preprocess", choices=PREPROCESS_KINDS, default="standardize",
                   help="input scaling, saved with the model so eval applies it: standardize (per channel, "
                        "fitted on the training images; default), scale01 ([0, 1]) or scale_pm1 ([-1, 1])")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
