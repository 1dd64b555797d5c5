"""Distillation study: does a ResNet-20 teacher make a small student better than training it alone?

For each seed, the same student (same initialization, same batches: ``fit`` seeds both) is trained
twice with identical settings: once on the labels alone (cross-entropy), once with Hinton's loss
against the teacher. The gain is the difference in final test accuracy, reported per seed, as a
mean and as a minimum (a gain that holds on every seed, not only on average). The teacher is
loaded from ``--teacher`` or trained first. Results go to one JSON file, rewritten after every run.

The two halves can run as separate processes (the students trained alone do not need the teacher):
``--only alone`` writes the baselines, and ``--only distilled --alone-from THAT.json`` adds the
distilled students and the gains. Students trained alone then use ``fit``'s own preprocessing,
which is the teacher's when the teacher was trained by ``fit`` on the same split.

Usage (opt-in, long):
    python scripts/distill_study.py --data fashion-mnist-sample --teacher-epochs 2 --epochs 2 --out kd.json
    python scripts/distill_study.py --data fashion-mnist --teacher runs/resnet20 --epochs 5 --out kd_full.json
    python scripts/distill_study.py --data fashion-mnist --teacher runs/resnet20 --augment crop,flip --epochs 15 \
        --seeds 0 --out kd_aug_s0.json
"""
import argparse
import json
import os

import numpy as np

from tinyeff import train
from tinyeff.cli.common import load_model
from tinyeff.models import build_model
from tinyeff.compress.distill import distill
from tinyeff import data
from tinyeff.random import manual_seed


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
    p.add_argument("--augment", default="", help="comma list, e.g. crop,flip; the teacher then sees the same "
                   "augmented batch as the student every step (consistent teaching)")
    p.add_argument("--only", choices=["both", "alone", "distilled"], default="both")
    p.add_argument("--alone-from", default=None, help="JSON of an earlier --only alone run (with --only distilled)")
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


def student(args, split, seed):
    manual_seed(seed)       # the same initialization for the student trained alone and the distilled one
    width = args.student_width if args.student == "seed-cnn" else int(args.student_width)
    return build_model(args.student, split, width=width)


def train_alone(args, seed, train_split, test_split, preprocess, fit_kwargs):
    alone = student(args, train_split, seed)
    alone.preprocess = preprocess                    # identical inputs for both students
    base = train.fit(alone, train_split, test_split, seed=seed, **fit_kwargs)
    return {"seed": seed, "alone_accuracy": base["final_test_accuracy"],
            "alone_per_epoch": base["history"]["test_accuracy"], "alone_train_time_s": base["train_time_s"],
            "student_parameters": base["parameters"]}


def train_distilled(args, seed, teacher, train_split, test_split, fit_kwargs):
    kd = distill(teacher, student(args, train_split, seed), train_split, test_split, seed=seed,
                 temperature=args.temperature, alpha=args.alpha, **fit_kwargs)
    return {"distilled_accuracy": kd["final_test_accuracy"], "distilled_per_epoch": kd["history"]["test_accuracy"],
            "distilled_train_time_s": kd["train_time_s"],
            "teacher_logits_cached": kd["distillation"]["teacher_logits_cached"]}


def main(argv=None):
    args = parse_args(argv)
    train_split, test_split = data.load(args.data)
    result = {"config": vars(args), "runs": [], "versions": train.versions()}
    teacher = None
    if args.only != "alone":
        teacher = get_teacher(args, train_split, test_split)
        result["teacher_test_accuracy"] = train.evaluate(teacher, test_split)["accuracy"]
        print(f"teacher {args.teacher or args.teacher_model}: test accuracy "
              f"{100 * result['teacher_test_accuracy']:.2f}%", flush=True)
    preprocess = teacher.preprocess if teacher is not None else train.preprocess_config(train_split)
    earlier = {}
    if args.alone_from:
        with open(args.alone_from) as f:
            earlier = {r["seed"]: r for r in json.load(f)["runs"]}
    fit_kwargs = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, schedule="cosine", progress=False,
                      augment=[a for a in args.augment.split(",") if a] or None)
    for seed in args.seeds:
        row = earlier.get(seed) or (train_alone(args, seed, train_split, test_split, preprocess, fit_kwargs)
                                    if args.only != "distilled" else {"seed": seed})
        if teacher is not None:
            row.update(train_distilled(args, seed, teacher, train_split, test_split, fit_kwargs))
            if "alone_accuracy" in row:
                row["gain_points"] = 100 * (row["distilled_accuracy"] - row["alone_accuracy"])
        result["runs"].append(row)
        gains = [r["gain_points"] for r in result["runs"] if "gain_points" in r]
        if gains:
            result.update(mean_gain_points=float(np.mean(gains)), min_gain_points=float(np.min(gains)))
        train.write_json(args.out, result)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                                           if k.endswith(("accuracy", "points"))), flush=True)
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "config", "versions")}))
    os._exit(0)   # NOTE: skip interpreter teardown (a loaded C extension can crash at exit here)


if __name__ == "__main__":
    main()
