"""``tinyeff energy probe | estimate MODEL | calibrate``: meters here, per-layer estimates, fitting."""
import json
import sys
import warnings

from tinyeff.cli.common import positive_float


def register(subparsers):
    p = subparsers.add_parser("energy", help="energy meters, per-layer estimates, calibration")
    sub = p.add_subparsers(dest="energy_command", metavar="ACTION")
    probe = sub.add_parser("probe", help="which energy meters work here, and why the others do not")
    probe.add_argument("--json", action="store_true")
    probe.set_defaults(func=run_probe)
    est = sub.add_parser("estimate", help="per-layer energy estimate of a model (source=model)")
    from tinyeff.cli.flops import add_model_args
    add_model_args(est)
    est.add_argument("--profile", default=None, help="cost profile name or JSON path (default default_45nm)")
    est.add_argument("--train", action="store_true", help="price a training step (forward + backward)")
    est.add_argument("--json", action="store_true")
    est.set_defaults(func=run_estimate)
    cal = sub.add_parser("calibrate", help="fit the cost profile to a live counter (NNLS)")
    cal.add_argument("--out", default="calibrated.json", help="where to write the fitted profile")
    cal.add_argument("--min-time", type=positive_float, default=1.0, help="seconds per microbenchmark")
    cal.set_defaults(func=run_calibrate)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_probe(args):
    from tinyeff.energy.probe import probe_all
    report = probe_all()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(report["lines"]))
    return 0


def run_estimate(args):
    from tinyeff.cli.flops import load_model
    from tinyeff.energy.layers import estimate_model
    model, shape = load_model(args)
    rows, total = estimate_model(model, shape, args.profile, train=args.train)
    if args.json:
        print(json.dumps({"total": total.as_dict(), "layers": [
            {"name": r.name, "type": r.type, "macs_effective": r.macs_effective, "energy_j": r.energy_j,
             "compute_j": r.compute_j, "memory_j": r.memory_j, "macs_nonzero": r.macs_nonzero,
             "energy_nonzero_j": r.energy_nonzero_j} for r in rows]}, indent=2))
        return 0
    what = "training step" if args.train else "forward pass"
    print(f"ESTIMATED energy of one {what} of {args.model}, input {shape} ({total.label}); "
          f"45 nm figures are a lower bound, use ratios")
    print("nonzero: the same layer priced with MACs on nonzero weights only (a kernel that skips every zero)")
    print(f"{'layer':<28}{'type':<18}{'eff MACs':>12}{'compute uJ':>12}{'memory uJ':>12}{'total uJ':>12}"
          f"{'nz MACs':>12}{'nz uJ':>12}")
    for r in rows:
        print(f"{r.name:<28}{r.type:<18}{r.macs_effective:>12}{r.compute_j * 1e6:>12.3f}"
              f"{r.memory_j * 1e6:>12.3f}{r.energy_j * 1e6:>12.3f}{r.macs_nonzero:>12}{r.energy_nonzero_j * 1e6:>12.3f}")
    nonzero_j = sum(r.energy_nonzero_j for r in rows)
    print(f"{'total (ESTIMATED, source=model)':<58}{total.energy_j * 1e6:>24.3f} uJ "
          f"({total.energy_j / shape[0] * 1e6:.3f} uJ per image); on nonzero MACs {nonzero_j * 1e6:.3f} uJ")
    return 0


def run_calibrate(args):
    from tinyeff.energy import calibrate
    from tinyeff.energy.meter import EnergyMeter
    from tinyeff.energy.model import cache_sizes
    from tinyeff.errors import EnergyMeterError
    probe_meter = EnergyMeter("auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the reasons are printed below instead
        chosen = probe_meter.select()
    if chosen == "model":
        reasons = "; ".join(f"{p.backend}: {p.reason}" for p in probe_meter.probes)
        print(f"calibration needs a live energy counter and none is usable here ({reasons}). "
              f"The default profile stays in use; figures remain ESTIMATED.", file=sys.stderr)
        return 1
    source = probe_meter.source
    try:
        runs = calibrate.run_calibration(lambda: EnergyMeter(source), cache_sizes(), args.min_time)
    except EnergyMeterError as exc:
        print(f"calibration failed: {exc}", file=sys.stderr)
        return 1
    result = calibrate.fit(runs)
    for name, err in result.rel_errors.items():
        print(f"  {name:<28}{err:+.1%}")
    if not result.ok:
        print(f"not saved: {result.reason} (criterion: R^2 >= {calibrate.MIN_R2} and every run within "
              f"{calibrate.MAX_REL_ERROR:.0%})", file=sys.stderr)
        return 1
    calibrate.save_fit(result, args.out, backend=source)
    print(f"saved {args.out}: {result.reason}; use it with --profile {args.out}")
    return 0
