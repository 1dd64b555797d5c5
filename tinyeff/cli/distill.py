"""``tinyeff distill``: train a small student from a trained teacher (Hinton et al. 2015), optionally
next to the same student trained alone, so the gain from distillation is measured, not assumed."""
import os

from tinyeff import train
from tinyeff.cli.common import (add_data_args, add_progress_arg, fraction, load_data, load_model, nonnegative_int,
                                output_dir, positive_float, positive_int, show_progress)
from tinyeff.models import build_model
from tinyeff.random import manual_seed


def register(subparsers):
    p = subparsers.add_parser("distill", help="distill a trained teacher into a smaller student")
    p.add_argument("--teacher", required=True, help="teacher model file or run directory (with model.npz)")
    p.add_argument("--student", default="seed-cnn", help="student model name (seed-cnn, resnet8, mlp, ...)")
    p.add_argument("--student-width", type=positive_float, default=None,
                   help="seed-cnn: width multiplier (0.5 = half width); resnets: base channel count")
    add_data_args(p)
    p.add_argument("--temperature", type=positive_float, default=4.0)
    p.add_argument("--alpha", type=fraction, default=0.9, help="weight of the teacher term (1 - alpha: labels)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--schedule", default="cosine", choices=["none", "cosine", "step"])
    p.add_argument("--precision", default="float32", help="float32, mixed_float16 or mixed_bfloat16")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--baseline", action="store_true",
                   help="also train the same student alone (same seed and settings) into OUT/baseline")
    p.add_argument("--out", required=True, help="output directory")
    add_progress_arg(p)
    p.set_defaults(func=run)


def _student(args, split):
    manual_seed(args.seed)    # the distilled and the --baseline student start from the same weights
    extra = {}
    if args.student_width is not None:
        extra["width"] = args.student_width if args.student == "seed-cnn" else int(args.student_width)
    return build_model(args.student, split, **extra)


def run(args):
    from tinyeff.precision import get_policy
    if args.student_width is not None and args.student != "seed-cnn" and int(args.student_width) < 1:
        raise ValueError(f"distill: --student-width {args.student_width} for {args.student} is a base channel "
                         "count; give an integer >= 1")
    get_policy(args.precision)                       # an unknown name stops before anything is written
    train_split, test_split = load_data(args)
    teacher = load_model(args.teacher)
    with output_dir(args.out):
        return _run(args, teacher, train_split, test_split)


def _run(args, teacher, train_split, test_split):
    from tinyeff.compress.distill import distill
    from tinyeff.precision import get_policy
    fit_kwargs = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, schedule=args.schedule,
                      seed=args.seed, progress=show_progress(args))
    metrics = distill(teacher, _student(args, train_split), train_split, test_split,
                      temperature=args.temperature, alpha=args.alpha, out_dir=args.out,
                      precision=get_policy(args.precision), **fit_kwargs)
    info = metrics["distillation"]
    print(f"teacher test accuracy {100 * info['teacher_test_accuracy']:.2f}%")
    print(f"distilled student test accuracy {100 * metrics['final_test_accuracy']:.2f}% "
          f"(T={args.temperature}, alpha={args.alpha}, {args.epochs} epochs)")
    if args.baseline:
        alone = _student(args, train_split)
        alone.preprocess = teacher.preprocess     # same inputs as the distilled student
        base_dir = os.path.join(args.out, "baseline")
        os.makedirs(base_dir, exist_ok=True)
        base = train.fit(alone, train_split, test_split, out_dir=base_dir,
                         precision=get_policy(args.precision), **fit_kwargs)
        gain = metrics["final_test_accuracy"] - base["final_test_accuracy"]
        print(f"student trained alone: {100 * base['final_test_accuracy']:.2f}%; "
              f"distillation gain {100 * gain:+.2f} points")
    print(f"wrote {os.path.join(args.out, 'model.npz')} and {os.path.join(args.out, 'metrics.json')}")
    return 0
