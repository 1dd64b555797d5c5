"""``tinyeff sweep``: train a grid of configurations, locally or on a Dask cluster, into one results store.

    tinyeff sweep --model mlp,seed-cnn --lr 0.001,0.01 --epochs 1 --data fashion-mnist-sample --out runs/s1
    tinyeff sweep --preset depth-width --out runs/dw            # quick form; add --full for the study
    tinyeff sweep --grid grid.toml --cluster tcp://10.0.0.5:8786 --out runs/big

Every axis flag takes a comma list, and the grid is their product; a value that is itself a list
joins its parts with "+" (``--augment crop+flip,none``). Re-running the same command skips finished
runs and retries failed or interrupted ones. Writes DIR/sweep.db (SQLite), DIR/results.csv, plots in
DIR/plots/ and DIR/report.html. A thin layer over ``tinyeff.sweep``.
"""
import os
import sys
import time

from tinyeff.cli.common import output_dir, positive_float, positive_int
from tinyeff.sweep import grid
from tinyeff.sweep.presets import PRESETS


def register(subparsers):
    p = subparsers.add_parser("sweep", help="train a grid of configurations (local pool or Dask); SQLite + report")
    axes = p.add_argument_group("axes (each a value or a comma list; the grid is their product)")
    for name, (_, default) in grid.AXES.items():
        shown = "+".join(default) or "none" if isinstance(default, list) else default
        axes.add_argument(f"--{name.replace('_', '-')}", dest=f"axis_{name}", default=None, metavar="LIST",
                          help=f"default {shown}")
    p.add_argument("--grid", default=None, help="TOML grid file (axes as keys; [[grid]] blocks are joined)")
    p.add_argument("--preset", choices=PRESETS, default=None, help="one of the two built-in studies (quick form)")
    p.add_argument("--full", action="store_true", help="with --preset: the full study on the full dataset")
    p.add_argument("--out", required=True, help="sweep directory (sweep.db, results.csv, plots, report.html)")
    p.add_argument("--root", default=None, help="directory with the dataset files")
    p.add_argument("--workers", type=positive_int, default=None, help="local worker processes (default: cores / threads)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads per run (default: cores / workers; 1 on a cluster)")
    p.add_argument("--cluster", default=None, metavar="tcp://HOST:PORT",
                   help="run on this Dask scheduler (trusted network only: Dask uses pickle)")
    p.add_argument("--budget-seconds", type=positive_float, default=None, help="stop launching runs past this wall time")
    p.add_argument("--budget-joules", type=positive_float, default=None, help="stop launching runs past this energy")
    p.add_argument("--dry-run", action="store_true", help="list the grid and what is already done; run nothing")
    p.add_argument("--report-only", action="store_true", help="rebuild the report from the store; run nothing")
    p.add_argument("--no-report", action="store_true", help="skip the plots and the HTML report")
    p.set_defaults(func=run)


def configs_from_args(args):
    """(resolved configs, notes) for the parsed command line. Raises ValueError on bad input."""
    notes = []
    if args.preset and args.grid:
        raise ValueError("sweep: give --preset or --grid, not both")
    if args.preset:
        from tinyeff.sweep.presets import preset
        blocks, notes = preset(args.preset, full=args.full)
    elif args.grid:
        blocks = grid.blocks_from_table(grid.load_toml(args.grid), where=args.grid)
    else:
        blocks = [{}]
    if args.full and not args.preset:
        raise ValueError("sweep: --full only applies to --preset")
    overrides = {name: grid.parse_axis(name, getattr(args, f"axis_{name}"))
                 for name in grid.AXES if getattr(args, f"axis_{name}") is not None}
    if overrides and (args.preset or args.grid):
        notes.append("overridden on the command line: " + ", ".join(sorted(overrides)))
    return grid.expand_blocks([{**block, **overrides} for block in blocks]), notes


def run(args):
    configs, notes = configs_from_args(args)
    for note in notes:
        print(f"sweep: cut for a quick run: {note}" if args.preset and not args.full else f"sweep: {note}")
    if args.dry_run:
        return _dry_run(configs, args.out)
    with output_dir(args.out):                # one sweep per directory (its store, CSV and report)
        return _run(args, configs, notes)


def _run(args, configs, notes):
    failed = 0
    if not args.report_only:
        summary = _sweep(args, configs)
        counts = summary["counts"]
        print(f"sweep: {counts.get('done', 0)}/{len(configs)} runs done, {counts.get('diverged', 0)} diverged, "
              f"{counts.get('failed', 0)} failed, {counts.get('pending', 0)} pending; wrote {summary['csv']}")
        failed = counts.get("failed", 0)
    if not args.no_report:
        from tinyeff.sweep.report import write_report
        ids = [grid.config_id(c) for c in configs]
        if args.report_only and not _grid_given(args):
            ids = None                            # no grid on the command line: report every run in the store
        path = write_report(args.out, ids, notes=notes, preset=args.preset)
        print(f"report: {os.path.abspath(path)}")
    if failed:
        print(f"error: {failed} run(s) failed (see the report or results.csv); re-run the same command to retry "
              "them", file=sys.stderr)
        return 1
    return 0


def _grid_given(args):
    return bool(args.preset or args.grid or any(getattr(args, f"axis_{n}") is not None for n in grid.AXES))


def _sweep(args, configs):
    from tinyeff.sweep.budget import Budget
    from tinyeff.sweep.driver import run_sweep
    budget = None
    if args.budget_seconds is not None or args.budget_joules is not None:
        budget = Budget(args.budget_seconds, args.budget_joules)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"sweep: --threads {args.threads} must be >= 1")
    if args.cluster:
        from tinyeff.sweep.cluster import DaskPool
        if args.workers is not None:
            raise ValueError("sweep: --workers is for the local pool; a cluster's size is its workers'")
        pool = DaskPool(args.cluster, threads=args.threads, root=args.root)
    else:
        from tinyeff.sweep.runner import LocalPool
        pool = LocalPool(args.workers, args.threads, args.root)
    t0 = time.perf_counter()
    summary = run_sweep(configs, args.out, pool, budget)
    print(f"sweep: {summary['finished']} run(s) finished in this sweep in {time.perf_counter() - t0:.1f} s")
    if summary["stopped"]:
        print(f"sweep: stopped launching: {summary['stopped']}; re-run to continue", file=sys.stderr)
    return summary


def _dry_run(configs, out):
    from tinyeff.sweep.store import Store
    done = {}
    if os.path.exists(os.path.join(out, "sweep.db")):
        with Store(out) as store:
            done = {grid.config_id(c): store.status(grid.config_id(c)) for c in configs}
    varying = grid.varying_axes(configs)
    for c in configs:
        print(f"{grid.config_id(c)}  {done.get(grid.config_id(c)) or 'new':8}  {grid.label(c, varying)}")
    print(f"{len(configs)} runs")
    return 0
