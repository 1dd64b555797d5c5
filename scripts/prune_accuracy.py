"""The long accuracy run (opt-in): seed CNN, dense vs gradual global magnitude pruning.

Trains the dense seed CNN (or loads one with --dense MODEL), then for each target sparsity copies
it and fine-tunes with a Zhu & Gupta polynomial schedule (global magnitude, reaching the target
after ``--end-fraction`` of the fine-tuning steps), and reports test accuracy beside the dense model's. Writes
``OUT/results.json``, ``OUT/dense.npz`` and ``OUT/pruned_<pct>.npz`` (kind="pruned"), which
``bench/bench_pruned_model.py`` can time (TINYEFF_PRUNED_MODEL=OUT/pruned_90.npz).

    python scripts/prune_accuracy.py --data fashion-mnist --epochs 10 --finetune-epochs 8 --out runs/prune
    python scripts/prune_accuracy.py --data fashion-mnist-sample --epochs 3 --finetune-epochs 3  # quick
"""
import argparse
import copy
import json
import os

from tinyeff import data, io, models
from tinyeff.compress import save_pruned, sparsity_report
from tinyeff.compress.schedule import PruningCallback, polynomial_for_fit
from tinyeff.train import evaluate, fit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion-mnist-sample")
    p.add_argument("--dense", help="a trained dense model file to start from (skips dense training)")
    p.add_argument("--epochs", type=int, default=10, help="dense training epochs")
    p.add_argument("--finetune-epochs", type=int, default=8)
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.8, 0.9])
    p.add_argument("--lr", type=float, default=1e-3, help="dense training learning rate")
    p.add_argument("--finetune-lr", type=float, default=1e-3)
    p.add_argument("--end-fraction", type=float, default=0.5,
                   help="fraction of the fine-tuning steps after which the target sparsity is reached")
    p.add_argument("--out", default="runs/prune_accuracy")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    train, test = data.load(args.data)
    if args.dense:
        dense = io.load(args.dense)
    else:
        c, size = train.images.shape[1], train.images.shape[-1]
        dense = models.create("seed-cnn", **models.input_kwargs("seed-cnn", c, size, 10))
        fit(dense, train, test, epochs=args.epochs, lr=args.lr, schedule="cosine", progress=False)
        io.save(dense, os.path.join(args.out, "dense.npz"), preprocess=dense.preprocess)
    dense_acc = evaluate(dense, test)["accuracy"]
    results = {"data": args.data, "dense_accuracy": dense_acc, "runs": []}
    print(f"dense: {dense_acc:.4f}", flush=True)
    steps = -(-len(train.labels) // 64)
    for target in args.sparsity:
        model = copy.deepcopy(dense)
        sched = polynomial_for_fit(target, steps, args.finetune_epochs, end_fraction=args.end_fraction)
        fit(model, train, test, epochs=args.finetune_epochs, lr=args.finetune_lr, schedule="cosine",
            callbacks=[PruningCallback(sched, method="global")], progress=False)
        acc = evaluate(model, test)["accuracy"]
        sparsity = sparsity_report(model)["total"]["sparsity"]
        save_pruned(model, os.path.join(args.out, f"pruned_{round(100 * target)}.npz"))
        results["runs"].append({"target": target, "sparsity": sparsity, "accuracy": acc,
                                "drop_points": 100 * (dense_acc - acc)})
        print(f"sparsity {sparsity:.3f}: accuracy {acc:.4f} (drop {100 * (dense_acc - acc):.2f} points)",
              flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
