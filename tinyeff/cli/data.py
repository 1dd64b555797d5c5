"""``tinyeff data``: ``download NAME`` fetches and verifies a dataset; ``info NAME`` describes it.

A thin layer over ``tinyeff.data.download_dataset`` and ``tinyeff.data.load``; errors from them (missing
files, checksum mismatches, corrupt files) reach the command line's one error boundary (one line, exit 1).
"""
import numpy as np


def register(subparsers):
    from tinyeff import data
    p = subparsers.add_parser("data", help="download datasets and show what they hold")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dl = sub.add_parser("download", help="fetch a dataset from its official location and verify it")
    dl.add_argument("name", choices=[n for n in data.names() if n in ("fashion-mnist", "cifar10")])
    dl.add_argument("--root", help="base directory (default: $TINYEFF_DATA or ~/.cache/tinyeff)")
    dl.add_argument("--mirror", help="base URL to fetch from instead of the official one")
    dl.add_argument("--format", choices=["binary", "python"], default="binary",
                    help="cifar10 only: which official version to fetch (default binary)")
    dl.set_defaults(func=run_download)
    info = sub.add_parser("info", help="counts, shapes, class names and where the data was found")
    info.add_argument("name", choices=data.names())
    info.add_argument("--root", help="directory with the dataset files (only there; default: the usual places)")
    info.set_defaults(func=run_info)


def run_download(args):
    from tinyeff import data
    options = {"mirror": args.mirror}
    if args.name == "cifar10":
        options["fmt"] = args.format
    where = data.download_dataset(args.name, root=args.root, **options)
    print(f"{args.name}: downloaded and verified in {where}")
    return 0


def describe(name, train, test):
    """The lines ``tinyeff data info`` prints for a loaded dataset."""
    lines = [f"{name}", f"  found at: {train.source}"]
    for part, split in (("train", train), ("test", test)):
        counts = np.bincount(split.labels, minlength=split.num_classes)
        lines.append(f"  {part}: {len(split):,} images, shape {tuple(split.images.shape[1:])} "
                     f"{split.images.dtype}, per class {counts.min():,}..{counts.max():,}")
    lines.append(f"  classes ({train.num_classes}): {', '.join(train.classes)}")
    return lines


def run_info(args):
    from tinyeff import data
    train, test = data.load(args.name, root=args.root)
    print("\n".join(describe(args.name, train, test)))
    return 0
