"""Re-time a finished ``tinyeff compare`` run's models side by side (on a quiet machine, say).

    python scripts/remeasure_compare.py runs/compare --data fashion-mnist

Loads every ``DIR/models/*.npz`` the run wrote, rebuilds each variant's inference form (a pruned file
goes through ``to_sparse`` with the measured crossover, as in the run; quantized files load as integer
models), times batch-1 latency and batch-256 throughput interleaved with the same function the
pipeline uses, and writes ``DIR/remeasured.json`` and a table. Accuracy and sizes are not re-measured:
they do not depend on load.

One extra row, ``baseline-fused``, answers "is the pruned speedup only the fusion?": the dense
baseline with every conv on the same direct kernel and the same fused bias + ReLU + max-pool
epilogue as the pruned model (``to_sparse(candidates="all")`` with every conv forced, 0% sparse).
"""
import argparse
import json
import os

import numpy as np

from tinyeff import data, io, nn
from tinyeff.compare.measure import measure_speed
from tinyeff.compress.sparse_infer import to_sparse
from tinyeff.data.transforms import make_preprocess


def _preprocess_of(model):
    return make_preprocess(getattr(model, "preprocess", None))


def load_variants(run_dir, images):
    """dict variant name -> inference model, in the run's row order."""
    with open(os.path.join(run_dir, "results.json")) as f:
        rows = json.load(f)["rows"]
    models = {}
    for row in rows:
        model = io.load(os.path.join(run_dir, row["model_file"]))
        if row["variant"] == "pruned":
            x = np.asarray(_preprocess_of(model)(images[:256]), dtype=np.float32)
            model, _ = to_sparse(model, x)
        models[row["variant"]] = model
        if row["variant"] == "baseline":
            models["baseline-fused"] = fused_dense(io.load(os.path.join(run_dir, row["model_file"])), images)
    return models, rows


def fused_dense(model, images):
    """The dense model with every conv on the direct CSR kernel (0% sparse), ReLU and max-pool fused."""
    x = np.asarray(_preprocess_of(model)(images[:256]), dtype=np.float32)
    convs = {name: isinstance(m, nn.Conv2d) for name, m in model.named_modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))}
    model, _ = to_sparse(model, x, policy="never", candidates="all", force=convs)
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--rounds", type=int, default=9)
    args = p.parse_args(argv)
    _, test = data.load(args.data)
    models, rows = load_variants(args.run_dir, test.images)
    speed = measure_speed(models, test.images, _preprocess_of, rounds=args.rounds)
    base = speed[rows[0]["variant"]]["throughput_ips"]
    table = {name: dict(s, speedup=s["throughput_ips"] / base) for name, s in speed.items()}
    with open(os.path.join(args.run_dir, "remeasured.json"), "w") as f:
        json.dump(table, f, indent=2)
    print(f"{'variant':<20}{'latency b=1 (ms)':>18}{'throughput b=256 (img/s)':>26}{'speedup':>9}")
    for name, s in table.items():
        print(f"{name:<20}{s['latency_ms']:>18.2f}{s['throughput_ips']:>26,.0f}{s['speedup']:>8.2f}x")


if __name__ == "__main__":
    main()
