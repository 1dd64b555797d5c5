"""``tinyeff sensitivity``: prune each layer alone at 10..95% and report which layers tolerate it.

    tinyeff sensitivity runs/dense/model.npz --data fashion-mnist-sample --out runs/sens
writes sensitivity.json, sensitivity.txt and sensitivity.png to --out.
"""
import os

from tinyeff.cli.common import add_data_args, add_model_arg, load_data, load_model, run_reporting_errors


def register(subparsers):
    p = subparsers.add_parser("sensitivity", help="per-layer pruning sensitivity, ranked by MACs/time/energy saved")
    add_model_arg(p)
    add_data_args(p)
    p.add_argument("--method", default="magnitude", choices=["magnitude", "random", "channel"])
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95])
    p.add_argument("--max-drop", type=float, default=1.0, help="accuracy budget in points (default 1.0)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=run)


def run(args):
    """Run the command; bad arguments or model files print one line and return exit code 2."""
    return run_reporting_errors("sensitivity", _run, args)


def _run(args):
    from tinyeff.compress import sensitivity as sens
    from tinyeff.train import write_json
    model = load_model(args.model)
    _, test_split = load_data(args)
    result = sens.sensitivity(model, test_split, sparsities=args.sparsities, method=args.method,
                              max_drop_points=args.max_drop)
    os.makedirs(args.out, exist_ok=True)
    table = sens.format_table(result)
    write_json(os.path.join(args.out, "sensitivity.json"), result)
    with open(os.path.join(args.out, "sensitivity.txt"), "w") as f:
        f.write(table + "\n")
    png = sens.plot(result, os.path.join(args.out, "sensitivity.png"))
    print(table)
    print(f"\nwrote {args.out}/sensitivity.json, sensitivity.txt and {os.path.basename(png)}")
    return 0
