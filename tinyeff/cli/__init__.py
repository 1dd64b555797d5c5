"""The ``tinyeff`` command: argparse subcommands, each a thin layer over the Python API.

Each subcommand lives in its own module ``tinyeff/cli/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed args,
returning an exit code). Adding a command means adding a module and its name to ``COMMANDS``.
"""
import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
import warnings

from tinyeff.errors import TinyeffError

COMMANDS = ("info", "data", "energy", "flops", "bench", "train", "eval", "distill", "prune", "sensitivity", "compare",
            "demo", "quantize", "sweep", "export", "import", "predict")

_MODULES = {"import": "import_"}       # a command named like a Python keyword lives in <name>_.py


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tinyeff",
        description="tinyeff: a small deep-learning engine whose own kernels make compression pay off.",
        epilog="exit codes: 0 success, 1 runtime failure (diverged training, full disk, corrupt file, "
               "busy output directory), 2 bad usage or bad input, 130 interrupted")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks (also TINYEFF_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tinyeff.cli.{_MODULES.get(name, name)}").register(subparsers)
    for sub in subparsers.choices.values():   # --debug also works after the command name
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    """Parse ``argv`` (default: sys.argv[1:]) and run the subcommand; return its exit code.

    This is the one error boundary of the command line: tinyeff's own errors, bad values
    (ValueError), operating-system failures (full disk, no permission) and MemoryError print one
    line, ``error: <message>``, on stderr, with no traceback unless ``--debug`` or TINYEFF_DEBUG=1.

    Returns:
        0 success, 1 runtime failure, 2 bad usage or bad input (argparse's own code), 130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("TINYEFF_DEBUG", "") not in ("", "0")
    # library modules log progress lines (one per epoch, ...); the CLI shows them on stdout
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    with _one_line_warnings(debug):
        try:
            return args.func(args) or 0
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except (TinyeffError, ValueError, OSError, MemoryError) as exc:
            if debug:
                traceback.print_exc()
            print(f"error: {_describe(exc)}", file=sys.stderr)
            return exit_code(exc)


def exit_code(exc):
    """2 for a bad value the user gave (ValueError), 1 for everything that failed while running."""
    return 2 if isinstance(exc, ValueError) and not isinstance(exc, TinyeffError) else 1


def _describe(exc):
    if isinstance(exc, MemoryError):
        return f"out of memory ({exc or 'allocation failed'}); use a smaller batch, model or dataset"
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _one_line_warnings(debug):
    """Show each warning as ``warning: <message>`` on stderr, without the source line, unless debugging."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)

    if not debug:
        warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
