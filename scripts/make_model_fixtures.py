"""Rebuild tests/fixtures/models/: one small model file of every kind tinyeff writes, plus its outputs.

Each fixture ``<name>.npz`` is written by the same call the library uses (``io.save``, the pruning,
thinning, quantized and 16-bit savers), and ``<name>.expected.npz`` beside it holds what the model
computed when it was written:

- ``images`` (uint8, N x 1 x 28 x 28) and ``logits`` (float32, N x 10) on a fixed input;
- ``accuracy``: the accuracy on the default synthetic test split (what ``tinyeff eval`` prints);
- ``macs``, ``macs_effective``, ``params``, ``params_nonzero``: ``tinyeff.flops.count`` totals for
  a 1 x 28 x 28 input (what ``tinyeff flops`` prints).

tests/test_model_fixtures.py loads every fixture and checks it still gives these numbers, so a
refactor that changes how a file is read, or what a model computes, fails a test. The models are
tiny (a few KB) and trained for one epoch on synthetic data: the point is the file format and the
arithmetic, not accuracy. Run from the repository root:

    PYTHONPATH=. python scripts/make_model_fixtures.py [--out tests/fixtures/models]
"""
import argparse
import copy
import os

import numpy as np

from tinyeff import data, flops, io, models, quant, train
from tinyeff.compress.prune import prune
from tinyeff.compress.prune import save as save_pruned
from tinyeff.compress import thinning
from tinyeff.random import manual_seed

SHAPE = (1, 28, 28)
NUM_IMAGES = 4


def _trained(name, train_split, **kwargs):
    manual_seed(0)
    model = models.create(name, in_channels=1, num_classes=10, **kwargs)
    train.fit(model, train_split, epochs=1, batch_size=64, lr=3e-3, seed=0, progress=False)
    return model


def _float_models(train_split):
    return {"float_seed_cnn": _trained("seed-cnn", train_split, input_size=28, width=0.125),
            "float_mlp": _trained("mlp", train_split, input_size=28, hidden=(4,)),
            "float_resnet8": _trained("resnet8", train_split, width=2)}


def _qat(model, train_split):
    prepared = quant.prepare_qat(copy.deepcopy(model), per_channel=True)
    train.fit(prepared, train_split, epochs=1, batch_size=64, lr=1e-4, seed=0, progress=False,
              callbacks=[quant.FreezeObservers(1)])
    return quant.convert(prepared, True, info={"mode": "qat", "qat_epochs": 1})


def build(out):
    """Write every fixture into ``out``; return {name: path}."""
    os.makedirs(out, exist_ok=True)
    train_split, test_split = data.load("synthetic")
    floats = _float_models(train_split)
    cnn = floats["float_seed_cnn"]
    writers = {name: (lambda path, m=m: io.save(m, path)) for name, m in floats.items()}

    pruned = prune(copy.deepcopy(cnn), 0.6, "magnitude")
    writers["pruned_magnitude"] = lambda path: save_pruned(pruned, path)
    channel = prune(copy.deepcopy(cnn), 0.5, "channel")
    writers["pruned_channel"] = lambda path: save_pruned(channel, path)
    thinned = thinning.thin(channel)
    writers["thinned"] = lambda path: thinning.save(thinned, path)

    static_pc = quant.quantize_static(copy.deepcopy(cnn), train_split, 64, "minmax", per_channel=True)
    static_pt = quant.quantize_static(copy.deepcopy(cnn), train_split, 64, "minmax", per_channel=False)
    sparse_q = quant.quantize_static(copy.deepcopy(pruned), train_split, 64, "minmax", sparse=True)
    resnet_q = quant.quantize_static(copy.deepcopy(floats["float_resnet8"]), train_split, 64, "minmax")
    dynamic = quant.quantize_dynamic(copy.deepcopy(floats["float_mlp"]), per_channel=True)
    qat = _qat(cnn, train_split)
    for name, q in (("int8_static_per_channel", static_pc), ("int8_static_per_tensor", static_pt),
                    ("int8_sparse", sparse_q), ("int8_resnet8", resnet_q), ("int8_dynamic", dynamic),
                    ("int8_qat", qat)):
        q.preprocess = cnn.preprocess
        writers[name] = lambda path, q=q: quant.save_quantized(q, path)
    for precision in ("float16", "bfloat16"):
        writers[f"lowprec_{precision}"] = lambda path, p=precision: quant.save_lowprec(cnn, path, p)

    images = test_split.images[:NUM_IMAGES]
    paths = {}
    for name, write in writers.items():
        path = os.path.join(out, f"{name}.npz")
        write(path)
        model = io.load(path)          # the expectation is what the *file* computes
        totals = flops.count(model, (1,) + SHAPE).totals
        np.savez_compressed(os.path.join(out, f"{name}.expected.npz"), images=images,
                 logits=train.predict(model, images),
                 accuracy=np.float64(train.evaluate(model, test_split)["accuracy"]),
                 **{k: np.int64(totals[k]) for k in ("macs", "macs_effective", "params", "params_nonzero")})
        paths[name] = path
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("tests", "fixtures", "models"))
    args = parser.parse_args()
    for name, path in build(args.out).items():
        print(f"{name:<26}{os.path.getsize(path):>8} bytes  {path}")


if __name__ == "__main__":
    main()
