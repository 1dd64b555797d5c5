"""Mixed-precision study: train one model under each precision policy and compare accuracy and memory.

For every (policy, seed) it trains the same model on the same batches (``fit`` seeds the batch
order), then records the final test accuracy, the peak bytes the graph holds for backward
(``activation_bytes``, measured every step by ``tinyeff.precision.saved_bytes``), skipped steps and
the final loss scale (float16), and the training time. Results go to one JSON file, rewritten after
every run so an interrupted study keeps what it finished.

NOTE: float16 here runs NumPy's float16 GEMM loop (no BLAS), so expect it to be many times slower
than float32; the time column measures that, it is not a claim about 16-bit hardware.

Usage (opt-in, long):
    python scripts/mixed_precision_study.py --data fashion-mnist-sample --epochs 2 --out mp.json
    python scripts/mixed_precision_study.py --data fashion-mnist --epochs 5 --out mp_full.json
"""
import argparse
import json
import os
import time

import numpy as np

from tinyeff import data, train
from tinyeff.models import build_model
from tinyeff.data.split import Split
from tinyeff.precision import get_policy
from tinyeff.random import manual_seed


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="fashion-mnist-sample")
    p.add_argument("--model", default="seed-cnn")
    p.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16", "mixed_float16"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-subset", type=int, default=None, help="use the first N training images (speed)")
    p.add_argument("--out", required=True, help="JSON file to write")
    return p.parse_args(argv)


def subset(split, n):
    if n is None or n >= len(split):
        return split
    return Split(split.images[:n], split.labels[:n], split.classes, f"{split.source} (first {n})")


def run_one(args, train_split, test_split, policy_name, seed):
    manual_seed(seed)          # every policy starts from the same initial weights
    model = build_model(args.model, train_split)
    policy = get_policy(policy_name)
    t0 = time.perf_counter()
    metrics = train.fit(model, train_split, test_split, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, schedule="cosine", seed=seed, precision=policy, progress=False)
    return {"policy": policy_name, "seed": seed, "test_accuracy": metrics["final_test_accuracy"],
            "test_accuracy_per_epoch": metrics["history"]["test_accuracy"],
            "train_time_s": metrics["train_time_s"], "wall_time_s": time.perf_counter() - t0,
            "precision_report": metrics["precision"]}


def summarize(runs):
    out = {}
    for name in sorted({r["policy"] for r in runs}):
        mine = [r for r in runs if r["policy"] == name]
        out[name] = {"mean_test_accuracy": float(np.mean([r["test_accuracy"] for r in mine])),
                     "activation_bytes": max(r["precision_report"]["activation_bytes"] for r in mine),
                     "skipped_steps": sum(r["precision_report"].get("skipped_steps", 0) for r in mine),
                     "mean_train_time_s": float(np.mean([r["train_time_s"] for r in mine])), "runs": len(mine)}
    if "float32" in out:
        for name, row in out.items():
            row["accuracy_minus_float32_points"] = 100 * (row["mean_test_accuracy"] - out["float32"]["mean_test_accuracy"])
            row["activation_bytes_vs_float32"] = row["activation_bytes"] / out["float32"]["activation_bytes"]
    return out


def main(argv=None):
    args = parse_args(argv)
    train_split, test_split = data.load(args.data)
    train_split = subset(train_split, args.train_subset)
    runs = []
    for seed in args.seeds:
        for policy_name in args.policies:
            runs.append(run_one(args, train_split, test_split, policy_name, seed))
            result = {"config": vars(args), "runs": runs, "summary": summarize(runs), "versions": train.versions()}
            train.write_json(args.out, result)
            r = runs[-1]
            print(f"{policy_name:>15} seed {seed}: test acc {100 * r['test_accuracy']:.2f}%, "
                  f"activation bytes {r['precision_report']['activation_bytes']:,}, "
                  f"skipped {r['precision_report'].get('skipped_steps', 0)}, {r['train_time_s']:.0f} s", flush=True)
    print(json.dumps(summarize(runs), indent=2))
    os._exit(0)   # NOTE: skip interpreter teardown (a loaded C extension can crash at exit here)


if __name__ == "__main__":
    main()
