"""Argument helpers shared by subcommands: dataset and model arguments, loading models by path or name."""
import os
import sys

from tinyeff import data, io


def add_model_arg(p):
    p.add_argument("model", help="model file (.npz) or a run directory holding model.npz")


def add_data_args(p, default="fashion-mnist-sample"):
    p.add_argument("--data", default=default, help=f"dataset name: {', '.join(data.names())} (default {default})")
    p.add_argument("--root", default=None, help="directory with the dataset files (else the usual places)")


def load_data(args):
    return data.load(args.data, root=args.root)


def load_model(path_or_dir):
    """A model file, or a run directory containing ``model.npz``."""
    path = os.path.join(path_or_dir, "model.npz") if os.path.isdir(path_or_dir) else path_or_dir
    return io.load(path)


def run_reporting_errors(command, body, args):
    """Run ``body(args)``; bad arguments or model files print one line and return exit code 2."""
    from tinyeff.errors import ModelFileError
    try:
        return body(args)
    except (ValueError, KeyError, ModelFileError) as exc:
        print(f"tinyeff {command}: error: {exc}", file=sys.stderr)
        return 2
