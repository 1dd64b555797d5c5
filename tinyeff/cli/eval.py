"""``tinyeff eval``: accuracy, per-class accuracy and the confusion matrix of a saved model."""
import os

import numpy as np

from tinyeff import train
from tinyeff.cli.common import add_data_args, load_data, load_model, output_dir, positive_int


def register(subparsers):
    p = subparsers.add_parser("eval", help="evaluate a saved model on a dataset's test split")
    p.add_argument("model", help="model file (.npz) or a run directory holding model.npz")
    add_data_args(p)
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--plot", action="store_true", help="also write the confusion matrix as a PNG")
    p.add_argument("--out", default=None, help="directory for the PNG (default: next to the model)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args):
    model = load_model(args.model)
    _, test_split = load_data(args)
    result = train.evaluate(model, test_split, batch_size=args.batch_size)
    if args.json:
        import json
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.data} test accuracy: {100 * result['accuracy']:.2f}% ({result['n']} images), "
              f"loss {result['loss']:.4f}, {result['n'] / result['time_s']:.0f} images/s")
        print("\nper-class accuracy:")
        for name, acc in zip(test_split.classes, result["per_class_accuracy"]):
            print(f"  {name:<14}{100 * acc:6.2f}%")
        print("\nconfusion matrix (rows: true, columns: predicted):")
        cm = np.asarray(result["confusion"])
        print("\n".join("  " + " ".join(f"{v:5d}" for v in row) for row in cm))
    if args.plot:
        from tinyeff.report import plots
        base = args.out or (args.model if os.path.isdir(args.model) else os.path.dirname(os.path.abspath(args.model)))
        with output_dir(base):
            path = plots.confusion_matrix(result["confusion"], test_split.classes, os.path.join(base, "confusion.png"),
                                          title=f"Confusion matrix, {args.data} ({100 * result['accuracy']:.1f}%)")
        print(f"\nwrote {path}")
    return 0
