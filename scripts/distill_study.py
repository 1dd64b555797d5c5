"""Distillation study: does a ResNet-20 teacher make a small student better than training it alone?

For each seed, the same student (same initialization, same batches: ``fit`` seeds both) is trained
twice with identical settings: once on the labels alone (cross-entropy), once with Hinton's loss
against the teacher. The gain is the difference in final test accuracy, reported per seed, as a
mean and as a minimum (a gain that holds on every seed, not only on average). The teacher is
loaded from ``--teacher`` or trained first. Results go to one JSON file, rewritten after every run.

Usage (opt-in, long):
    python scripts/distill_study.py --data fashion-mnist-sample --teacher-epochs 2 --epochs 2 --out kd.json
    python scripts/distill_study.py --data fashion-mnist --teacher runs/resnet20 --epochs 5 --out kd_full.json
"""
import argparse
import json
import os

import numpy as np

from tinyeff import train
from tinyeff.cli.common import build_model, load_model
from tinyeff.compress.distill import distill
from tinyeff import data


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="fashion-mnist-sample")
    p.add_argument("--teacher", default=None, help="trained teacher (model file or run dir); else train one")
    p.add_argument("--teacher-model", default="resnet20")
    p.add_argument("--teacher-epochs", type=int, default=2)
    p.add_argument("--student", default="seed-cnn")
    p.add_argument("--student-width", type=float, default=0.5)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--out", required=True, help="JSON file to write")
    return p.parse_args(argv)


def get_teacher(args, train_split, test_split):
    if args.teacher:
        return load_model(args.teacher)
    teacher = build_model(args.teacher_model, train_split)
    out_dir = os.path.splitext(args.out)[0] + "_teacher"
    train.fit(teacher, train_split, test_split, epochs=args.teacher_epochs, batch_size=args.batch_size,
              lr=2e-3, schedule="cosine", seed=0, out_dir=out_dir, progress=False)
    return teacher


def student(args, split):
    width = args.student_width if args.student == "seed-cnn" else int(args.student_width)
    return build_model(args.student, split, width=width)


def main(argv=None):
    args = parse_args(argv)
    train_split, test_split = data.load(args.data)
    teacher = get_teacher(args, train_split, test_split)
    teacher_acc = train.evaluate(teacher, test_split)["accuracy"]
    print(f"teacher {args.teacher or args.teacher_model}: test accuracy {100 * teacher_acc:.2f}%", flush=True)
    fit_kwargs = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, schedule="cosine", progress=False)
    rows = []
    for seed in args.seeds:
        alone = student(args, train_split)
        alone.preprocess = teacher.preprocess            # identical inputs for both students
        base = train.fit(alone, train_split, test_split, seed=seed, **fit_kwargs)
        kd = distill(teacher, student(args, train_split), train_split, test_split, seed=seed,
                     temperature=args.temperature, alpha=args.alpha, **fit_kwargs)
        rows.append({"seed": seed, "alone_accuracy": base["final_test_accuracy"],
                     "distilled_accuracy": kd["final_test_accuracy"],
                     "gain_points": 100 * (kd["final_test_accuracy"] - base["final_test_accuracy"]),
                     "alone_per_epoch": base["history"]["test_accuracy"],
                     "distilled_per_epoch": kd["history"]["test_accuracy"],
                     "alone_train_time_s": base["train_time_s"], "distilled_train_time_s": kd["train_time_s"],
                     "teacher_logits_cached": kd["distillation"]["teacher_logits_cached"]})
        gains = [r["gain_points"] for r in rows]
        result = {"config": vars(args), "teacher_test_accuracy": teacher_acc, "runs": rows,
                  "mean_gain_points": float(np.mean(gains)), "min_gain_points": float(np.min(gains)),
                  "student_parameters": base["parameters"], "versions": train.versions()}
        train.write_json(args.out, result)
        r = rows[-1]
        print(f"seed {seed}: alone {100 * r['alone_accuracy']:.2f}%, distilled {100 * r['distilled_accuracy']:.2f}% "
              f"({r['gain_points']:+.2f} points)", flush=True)
    print(json.dumps({k: result[k] for k in ("teacher_test_accuracy", "mean_gain_points", "min_gain_points")}))
    os._exit(0)   # NOTE: skip interpreter teardown (a loaded C extension can crash at exit here)


if __name__ == "__main__":
    main()
