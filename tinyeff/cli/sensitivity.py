"""``tinyeff sensitivity``: prune each layer alone at 10..95% and report which layers tolerate it.

    tinyeff sensitivity runs/dense/model.npz --data fashion-mnist-sample --out runs/sens
writes sensitivity.json, sensitivity.txt and sensitivity.png to --out.
"""
import os

from tinyeff.cli.common import add_data_args, add_model_arg, fraction, load_data, load_model, nonnegative_float, output_dir


def register(subparsers):
    p = subparsers.add_parser("sensitivity", help="per-layer pruning sensitivity, ranked by MACs/time/energy saved")
    add_model_arg(p)
    add_data_args(p)
    p.add_argument("--method", default="magnitude", choices=["magnitude", "random", "channel"])
    p.add_argument("--sparsities", type=fraction, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95])
    p.add_argument("--max-drop", type=nonnegative_float, default=1.0, help="accuracy budget in points (default 1.0)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=run)


def run(args):
    model = load_model(args.model)
    _, test_split = load_data(args)
    with output_dir(args.out):
        return _run(args, model, test_split)


def _run(args, model, test_split):
    from tinyeff import fsio
    from tinyeff.compress import sensitivity as sens
    result = sens.sensitivity(model, test_split, sparsities=args.sparsities, method=args.method,
                              max_drop_points=args.max_drop)
    table = sens.format_table(result)
    fsio.write_json(os.path.join(args.out, "sensitivity.json"), result)
    fsio.write_text(os.path.join(args.out, "sensitivity.txt"), table + "\n")
    png = sens.plot(result, os.path.join(args.out, "sensitivity.png"))
    print(table)
    print(f"\nwrote {args.out}/sensitivity.json, sensitivity.txt and {os.path.basename(png)}")
    return 0
