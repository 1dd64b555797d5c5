"""Opt-in long run: float vs int8 (static with every calibration, per-channel and per-tensor; QAT) vs
float16/bfloat16, for the seed CNN and ResNet-20 on full Fashion-MNIST. Writes one JSON and prints one table.

    python scripts/quant_accuracy.py --model seed-cnn --epochs 10 --out runs/quant-seed
    python scripts/quant_accuracy.py --model resnet20 --epochs 15 --out runs/quant-resnet20
    python scripts/quant_accuracy.py --model seed-cnn --float-model runs/seed/model.npz --out ...  (reuse a model)
    python scripts/quant_accuracy.py --model resnet20 --float-model runs/resnet20/model.npz --qat-epochs 1 \
        --qat-optimizer sgd --qat-lr 1e-3 --qat-augment crop,flip --qat-batch-size 128 --out ...

Targets (issue 6): static int8 (per-channel, best calibration) loses <= 0.5 point, QAT <= 0.3 point.
"""
import argparse
import json
import os
import time

from tinyeff import data, io, models
from tinyeff import quant
from tinyeff.train import evaluate, fit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="seed-cnn")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--float-model", default=None, help="skip training: load this float model file")
    p.add_argument("--calibration-images", type=int, default=512)
    p.add_argument("--qat-epochs", type=int, default=2)
    p.add_argument("--qat-lr", type=float, default=1e-4)
    p.add_argument("--qat-optimizer", default="adam", help="adam, adamw or sgd (use the float model's own)")
    p.add_argument("--qat-augment", default="", help="comma-separated: crop,flip (use the float model's own)")
    p.add_argument("--qat-batch-size", type=int, default=64)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    train, test = data.load(args.data)
    if args.float_model:
        model = io.load(args.float_model, expect_kind="float")
    else:
        kwargs = models.input_kwargs(args.model, train.images.shape[1], train.images.shape[-1], train.num_classes)
        model = models.create(args.model, **kwargs)
        fit(model, train, test, epochs=args.epochs, schedule="cosine", out_dir=os.path.join(args.out, "float"))
    results = {"float32": evaluate(model, test)["accuracy"]}
    for per_channel in (True, False):
        for calibration in ("minmax", "percentile", "mse"):
            t0 = time.perf_counter()
            q = quant.quantize_static(model, train, args.calibration_images, calibration, per_channel)
            key = f"static/{calibration}/{'per-channel' if per_channel else 'per-tensor'}"
            results[key] = evaluate(q, test)["accuracy"]
            print(f"{key}: {results[key]:.4f} ({time.perf_counter() - t0:.1f} s)", flush=True)
    prepared = quant.prepare_qat(model)
    fit(prepared, train, test, epochs=args.qat_epochs, lr=args.qat_lr, optimizer=args.qat_optimizer,
        batch_size=args.qat_batch_size, augment=[a for a in args.qat_augment.split(",") if a],
        callbacks=[quant.FreezeObservers(1)])
    results["qat/per-channel"] = evaluate(quant.convert(prepared), test)["accuracy"]
    for precision in ("float16", "bfloat16"):
        results[precision] = evaluate(quant.round_weights(model, precision), test)["accuracy"]
    print(f"{'variant':<28}{'accuracy':>10}{'drop (points)':>15}")
    for key, acc in results.items():
        print(f"{key:<28}{acc:>10.4f}{100 * (results['float32'] - acc):>15.2f}")
    with open(os.path.join(args.out, "quant_accuracy.json"), "w") as f:
        json.dump({"model": args.model, "data": args.data, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
