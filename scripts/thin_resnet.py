"""Opt-in long run (issue 5): ResNet-20 with 50% of its filters removed by structured thinning.

    python scripts/thin_resnet.py --dense runs/resnet20/model.npz --finetune-epochs 4 --out runs/thin-resnet20

Steps, all on full Fashion-MNIST:
  1. prune 50% of every filter of a trained ResNet-20 by L1 norm: the inner conv of each block, and
     50% of each stage's residual channels (the same channels in every conv writing them);
  2. thin: physically delete the pruned filters and the inputs that read them, and check that the
     small dense model's outputs equal the masked model's (max abs difference, test batch);
  3. fine-tune the thinned model (SGD, cosine, crop + flip), since it IS the pruned network;
  4. time batch-256 inference of the dense and thinned models, interleaved, median of many runs.
Targets: outputs equal to 1e-5, thinned at least 1.7x faster, accuracy within 1.5 points of dense.

    python scripts/thin_resnet.py --dense runs/resnet20/model.npz --out runs/thin-resnet20 --time-only

re-times the dense model against the saved ``thinned.npz`` (on a quiet machine, say) and updates the JSON.
"""
import argparse
import copy
import json
import os
import time

import numpy as np

from tinyeff import Tensor, data, io, no_grad
from tinyeff.compress import prune, thinning
from tinyeff.compress.sparse_infer import mac_totals
from tinyeff.compress.thinning import prune_channel_groups, thin, thinning_plan
from tinyeff.train import evaluate, fit, make_preprocess


def interleaved_ms(models_, x, repeats):
    """Median batch time (ms) of each model, timed in alternation so load hits them alike."""
    times = {name: [] for name in models_}
    with no_grad():
        for model in models_.values():
            model(Tensor(x))                                        # warm-up
        for _ in range(repeats):
            for name, model in models_.items():
                t0 = time.perf_counter()
                model(Tensor(x))
                times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def speed(dense, small, x, repeats):
    """Interleaved batch-256 timing and MAC counts of the dense and thinned models."""
    ms = interleaved_ms({"dense": dense, "thinned": small}, x, repeats)
    (dense_macs, _), (thin_macs, _) = mac_totals(dense, x), mac_totals(small, x)
    return dict(batch=x.shape[0], median_ms=ms, speedup=ms["dense"] / ms["thinned"], macs_dense=dense_macs,
                macs_thinned=thin_macs, mac_ratio=dense_macs / thin_macs, threads=c_threads())


def c_threads():
    from tinyeff.kernels import c
    return c.num_threads()


def time_only(args, dense, test):
    path = os.path.join(args.out, "thin_resnet.json")
    with open(path) as f:
        result = json.load(f)
    small = io.load(os.path.join(args.out, "thinned.npz")).eval()
    x = np.asarray(make_preprocess(dense.preprocess)(test.images[:256]), dtype=np.float32)
    result["retimed"] = speed(dense, small, x, args.repeats)
    with open(path, "w") as f:
        json.dump(result, f, indent=2, default=str)
    r = result["retimed"]
    print(f"batch 256, {r['threads']} threads: dense {r['median_ms']['dense']:.1f} ms, thinned "
          f"{r['median_ms']['thinned']:.1f} ms ({r['speedup']:.2f}x, MACs {r['mac_ratio']:.2f}x fewer)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dense", required=True, help="trained ResNet model file (model.npz)")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--amount", type=float, default=0.5, help="fraction of filters to remove")
    p.add_argument("--finetune-epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", required=True)
    p.add_argument("--time-only", action="store_true", help="only re-time dense vs OUT/thinned.npz")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    train, test = data.load(args.data)
    dense = io.load(args.dense, expect_kind="float").eval()
    if args.time_only:
        return time_only(args, dense, test)
    masked = copy.deepcopy(dense)
    prune(masked, args.amount, "channel", layers=[pair[0] for pair in thinning_plan(masked)])
    prune_channel_groups(masked, args.amount)
    small = thin(masked).eval()
    x = np.asarray(make_preprocess(dense.preprocess)(test.images[:256]), dtype=np.float32)
    with no_grad():
        max_diff = float(np.abs(small(Tensor(x)).data - masked.eval()(Tensor(x)).data).max())
    result = {"config": vars(args), "max_abs_diff_thinned_vs_masked": max_diff,
              "dense_accuracy": evaluate(dense, test)["accuracy"],
              "masked_accuracy_before_finetune": evaluate(masked, test)["accuracy"],
              "thinned_layers": small.thinned}
    print(f"thinned vs masked outputs: max |diff| = {max_diff:.2e}", flush=True)
    history = fit(small, train, test, epochs=args.finetune_epochs, batch_size=args.batch_size,
                  optimizer="sgd", lr=args.lr, weight_decay=5e-4, schedule="cosine",
                  augment=["crop", "flip"], out_dir=os.path.join(args.out, "finetune"))
    small.eval()
    result["thinned_accuracy_after_finetune"] = evaluate(small, test)["accuracy"]
    result["finetune_history"] = history
    result.update(speed(dense, small, x, args.repeats),
                  accuracy_drop_points=100 * (result["dense_accuracy"] - result["thinned_accuracy_after_finetune"]))
    ms = result["median_ms"]
    thinning.save(small, os.path.join(args.out, "thinned.npz"))
    with open(os.path.join(args.out, "thin_resnet.json"), "w") as f:
        json.dump(result, f, indent=2, default=str)
    print(f"dense {100 * result['dense_accuracy']:.2f}% -> thinned {100 * result['thinned_accuracy_after_finetune']:.2f}% "
          f"after {args.finetune_epochs} epochs ({result['accuracy_drop_points']:+.2f} points drop); batch 256: "
          f"dense {ms['dense']:.1f} ms, thinned {ms['thinned']:.1f} ms ({result['speedup']:.2f}x, "
          f"MACs {result['mac_ratio']:.2f}x fewer)")


if __name__ == "__main__":
    main()
