"""Rebuild tinyeff/data/fashion_mnist_sample.npz from the full Fashion-MNIST files, reproducibly.

    python scripts/make_fashion_sample.py [--root DIR] [--out PATH]

Draws 600 training and 100 test images per class with the fixed seed in
``tinyeff.data.fashion_mnist_sample.SEED`` (the same full files always give the same sample), writes
a compressed .npz, and prints the content SHA-256 to record as ``CONTENT_SHA256`` in that module.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from tinyeff.data import fashion_mnist, fashion_mnist_sample as sample


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="directory holding the four Fashion-MNIST IDX files")
    parser.add_argument("--out", default=str(sample.SAMPLE_PATH), help="output .npz path")
    args = parser.parse_args(argv)
    train, test = fashion_mnist.load(root=args.root)
    print(f"source: {train.source} ({len(train)} train, {len(test)} test)")
    arrays = sample.build(train, test)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out)
    digest = sample.content_sha256(arrays)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    print(f"CONTENT_SHA256 = \"{digest}\"")
    if digest != sample.CONTENT_SHA256:
        print("NOTE: differs from the value recorded in tinyeff/data/fashion_mnist_sample.py; update it")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
