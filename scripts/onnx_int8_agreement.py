"""Opt-in measurement: an int8 model exported to ONNX (QDQ and exact forms) vs tinyeff's integer path,
on a dataset's whole test split in ONNX Runtime: top-1 agreement and the largest output difference
in steps of the output grid. Trains the float seed CNN first unless --float-model is given.

    python scripts/onnx_int8_agreement.py --epochs 2 --out runs/onnx-int8
    python scripts/onnx_int8_agreement.py --float-model runs/seed/model.npz --out runs/onnx-int8
"""
import argparse
import json
import os

import numpy as np

from tinyeff import data, io, models, quant
from tinyeff.interop.export import compare_onnxruntime, export_onnx
from tinyeff.models.input_shape import input_shape
from tinyeff.train import evaluate, fit, make_preprocess


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--float-model", default=None, help="skip training: load this float model file")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    train, test = data.load(args.data, root=args.root)
    if args.float_model:
        model = io.load(args.float_model, expect_kind="float")
    else:
        model = models.build_model("seed-cnn", train)
        fit(model, train, epochs=args.epochs, batch_size=128, progress=False)
    qmodel = quant.quantize_static(model, train, num_images=512)
    x = np.asarray(make_preprocess(model.preprocess)(test.images), np.float32)
    result = {"test_accuracy_int8": evaluate(qmodel, test)["accuracy"], "images": len(test)}
    for form in ("qdq", "exact"):
        path = os.path.join(args.out, f"int8_{form}.onnx")
        export_onnx(qmodel, path, input_shape(model), int8_form=form)
        ours, theirs = compare_onnxruntime(qmodel, path, x)
        result[form] = {"top1_agreement": float(np.mean(ours.argmax(1) == theirs.argmax(1))),
                        "max_output_steps": float(np.max(np.abs(theirs - ours)) / qmodel.output_qparams[0])}
        print(f"{form:>6}: top-1 agreement {100 * result[form]['top1_agreement']:.2f}% on {len(test)} images, "
              f"largest output difference {result[form]['max_output_steps']:.2f} output steps")
    with open(os.path.join(args.out, "onnx_int8_agreement.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
