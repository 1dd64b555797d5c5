"""The ``tinyeff`` command: argparse subcommands, each a thin layer over the Python API.

Each subcommand lives in its own module ``tinyeff/cli/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed args,
returning an exit code). Adding a command means adding a module and its name to ``COMMANDS``.
"""
import argparse
import importlib
import logging
import sys

COMMANDS = ("info", "data", "energy", "flops", "bench", "train", "eval", "distill", "prune", "sensitivity", "compare", "demo", "quantize", "sweep")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tinyeff",
        description="tinyeff: a small deep-learning engine whose own kernels make compression pay off.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tinyeff.cli.{name}").register(subparsers)
    return parser


def main(argv=None):
    """Parse ``argv`` (default: sys.argv[1:]) and run the subcommand; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # library modules log progress lines (one per epoch, ...); the CLI shows them on stdout
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
