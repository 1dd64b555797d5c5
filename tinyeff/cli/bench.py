"""``tinyeff bench kernels``: a short run of the kernel benchmark suites in ``bench/``, saved as JSON.

A thin layer over pytest-benchmark: it runs ``bench/bench_<suite>.py`` with
``TINYEFF_BENCH_QUICK=1`` (suites that honour it keep only their small shapes), writes
``--benchmark-json`` to ``--out`` and prints ``bench/report.py``'s table (GOP/s, speedups, percent
of peak). ``bench/`` lives in the source tree, so this needs a source checkout (``pip install -e .``).
"""
import os
import subprocess
import sys

from tinyeff.cli.common import add_threads_arg

DEFAULT_SUITES = ("int8", "dense", "sparse")


def register(subparsers):
    p = subparsers.add_parser("bench", help="run the kernel benchmarks (short) and save JSON")
    p.add_argument("what", choices=["kernels"], help="what to benchmark")
    p.add_argument("--suite", action="append", dest="suites", metavar="NAME",
                   help=f"suite bench/bench_NAME.py to run (repeatable; default: {', '.join(DEFAULT_SUITES)})")
    p.add_argument("--out", default="bench-kernels.json", help="JSON file to write (default: %(default)s)")
    p.add_argument("--full", action="store_true", help="run every shape, not the quick subset")
    add_threads_arg(p)
    p.set_defaults(func=run)


def bench_dir():
    """``bench/`` of the source checkout this package was imported from, or None."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "bench")
    return path if os.path.isdir(path) else None


def run(args):
    where = bench_dir()
    if where is None:
        print("tinyeff bench: no bench/ directory next to the installed package; run from a source "
              "checkout installed with pip install -e .", file=sys.stderr)
        return 2
    suites = args.suites or [s for s in DEFAULT_SUITES if os.path.exists(os.path.join(where, f"bench_{s}.py"))]
    files = [os.path.join(where, f"bench_{s}.py") for s in suites]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        print(f"tinyeff bench: no such suite file(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if args.threads:                     # the suites run in a child process: size its pools at start-up
        from tinyeff.threads import ENV_VARS
        env.update({var: str(args.threads) for var in ENV_VARS})
    if not args.full:
        env["TINYEFF_BENCH_QUICK"] = "1"
    cmd = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider",
           f"--benchmark-json={args.out}", "--rootdir", os.path.dirname(where), "-o", "addopts="]
    print("running:", " ".join(cmd))
    done = subprocess.run(cmd, env=env)
    if done.returncode not in (0, 5) or not os.path.exists(args.out):
        print(f"tinyeff bench: pytest exited with status {done.returncode}", file=sys.stderr)
        return done.returncode or 1
    subprocess.run([sys.executable, os.path.join(where, "report.py"), args.out])
    print(f"\nwrote {args.out}")
    return 0
