"""``tinyeff prune``: prune a saved model with a schedule, fine-tune, and write the pruned model + metrics.

    tinyeff prune runs/dense/model.npz --data fashion-mnist --method global --sparsity 0.9 \
        --schedule polynomial --finetune-epochs 8 --out runs/pruned90
"""
import copy
import os

from tinyeff.cli.common import (add_data_args, add_model_arg, add_progress_arg, fraction, load_data, load_model,
                                nonnegative_int, output_dir, positive_float, positive_int, show_progress)


def register(subparsers):
    p = subparsers.add_parser("prune", help="prune a saved model (magnitude, global, random, channel, N:M)")
    add_model_arg(p)
    add_data_args(p)
    p.add_argument("--method", default="global", choices=["magnitude", "global", "random", "channel", "nm"])
    p.add_argument("--sparsity", type=fraction, default=0.8,
                   help="target fraction of zeros (of filters for channel; ignored for nm)")
    p.add_argument("--nm", default="2:4", help="N:M pattern for --method nm (default 2:4)")
    p.add_argument("--schedule", default="polynomial", choices=["oneshot", "polynomial", "iterative"])
    p.add_argument("--rounds", type=positive_int, default=3, help="pruning rounds for --schedule iterative")
    p.add_argument("--finetune-epochs", type=nonnegative_int, default=2)
    p.add_argument("--lr", type=positive_float, default=5e-4)
    p.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"])
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--rewind-step", type=nonnegative_int, default=None,
                   help="lottery-ticket rewinding: reset surviving weights to their values at this step")
    p.add_argument("--thin", action="store_true", help="with --method channel, also write thinned.npz")
    p.add_argument("--out", required=True, help="output directory (model.npz, metrics.json)")
    add_progress_arg(p)
    p.set_defaults(func=run)


def make_schedule(args, steps_per_epoch):
    from tinyeff.compress.schedule import Iterative, OneShot, polynomial_for_fit
    if args.schedule == "oneshot" or args.method == "nm":
        return OneShot(args.sparsity)
    if args.finetune_epochs < 1:
        raise ValueError(f"prune: --schedule {args.schedule} needs --finetune-epochs >= 1")
    if args.schedule == "polynomial":
        return polynomial_for_fit(args.sparsity, steps_per_epoch, args.finetune_epochs)
    return Iterative(args.sparsity, every_epochs=max(1, args.finetune_epochs // args.rounds), rounds=args.rounds)


def parse_nm(text):
    """``"N:M"`` -> (N, M) with 1 <= N <= M: keep N weights of every M."""
    try:
        n, m = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"prune: --nm {text!r} must be N:M with integers, such as 2:4") from None
    if not 1 <= n <= m:
        raise ValueError(f"prune: --nm {text!r} needs 1 <= N <= M (keep N weights of every M), such as 2:4")
    return n, m


def run(args):
    n, m = parse_nm(args.nm)
    model = load_model(args.model)
    train_split, test_split = load_data(args)
    with output_dir(args.out):
        return _run(args, model, train_split, test_split, n, m)


def _run(args, model, train_split, test_split, n, m):
    from tinyeff import compress, train
    from tinyeff.compress import thinning
    from tinyeff.compress.schedule import PruningCallback
    dense = train.evaluate(model, test_split)
    layers = None                     # for "channel", prune's default is the thinnable filters
    callback = PruningCallback(make_schedule(args, -(-len(train_split.labels) // args.batch_size)),
                               method=args.method, layers=layers, rewind_step=args.rewind_step,
                               **({"n": n, "m": m} if args.method == "nm" else {}))
    if args.finetune_epochs > 0:
        history = train.fit(model, train_split, test_split, epochs=args.finetune_epochs,
                            batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                            callbacks=[callback], progress=show_progress(args))
    else:
        compress.prune_to_sparsity(model, args.sparsity, args.method, layers,
                                   **({"n": n, "m": m} if args.method == "nm" else {}))
        history = None
    pruned = train.evaluate(model, test_split)
    report = compress.sparsity_report(model)
    compress.save_pruned(model, os.path.join(args.out, "model.npz"))
    metrics = {"source_model": args.model, "data": args.data, "method": args.method, "schedule": args.schedule,
               "target_sparsity": args.sparsity, "sparsity": report["total"]["sparsity"],
               "dense_accuracy": dense["accuracy"], "accuracy": pruned["accuracy"],
               "accuracy_drop_points": 100 * (dense["accuracy"] - pruned["accuracy"]),
               "sparsity_report": report, "pruning_events": callback.events, "history": history}
    if args.thin and args.method == "channel":
        small = thinning.thin(copy.deepcopy(model))
        thinning.save(small, os.path.join(args.out, "thinned.npz"))
        metrics["thinned_accuracy"] = train.evaluate(small, test_split)["accuracy"]
        metrics["thinned_layers"] = small.thinned
    train.write_json(os.path.join(args.out, "metrics.json"), metrics)
    print(compress.format_report(report))
    print(f"\naccuracy {100 * dense['accuracy']:.2f}% dense -> {100 * pruned['accuracy']:.2f}% at "
          f"{100 * report['total']['sparsity']:.1f}% sparsity; wrote {args.out}/model.npz and metrics.json")
    return 0
