"""Layer-wise pruning sensitivity: prune one layer at a time, evaluate, and rank what it saves.

The one idea (Han et al. 2015, Li et al. 2017): layers differ a lot in how much pruning they
tolerate, and in what pruning them buys. So for each Conv2d/Linear alone we prune it to 10..95%
(magnitude by default), evaluate, and put the accuracy drop next to what that layer costs: its
MACs per image (from the shapes of one forward pass), its measured dense forward time, and an
energy estimate (MACs x the fp32 MAC energy of ``tinyeff.energy``'s default cost profile). The
ranking is by *savings at the largest sparsity that stays within the accuracy budget*, so a
tolerant but tiny layer does not outrank a slightly less tolerant layer that holds most of the work.

"Would save" assumes the sparse kernel's time scales with nonzeros (the ideal); ``to_sparse``
measures what it really does on this machine.

What this file leaves out: joint (multi-layer) interactions and fine-tuning between steps.
"""
import copy

import numpy as np

from tinyeff import fsio, nn
from tinyeff.compress.prune import prunable_layers, prune_to_sparsity
from tinyeff.flops.count import leaf_calls
from tinyeff.tensor import Tensor, no_grad

DEFAULT_SPARSITIES = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)


def _fp32_mac_pj():
    try:
        from tinyeff.energy.model import load_profile
        return float(load_profile().mac["fp32"])
    except (ImportError, OSError, KeyError, ValueError):
        return 4.6        # Horowitz 2014, 45 nm fp32 MAC, the value the bundled profile carries


def layer_costs(model, example):
    """dict name -> {macs (per image), time_s (dense forward, whole batch)} from one forward pass."""
    names = {id(m): name for name, m in prunable_layers(model).items()}
    costs = {}

    def on_call(_, m, x, y, seconds):
        if id(m) in names:
            positions = y.shape[2] * y.shape[3] if isinstance(m, nn.Conv2d) else 1
            costs[names[id(m)]] = {"macs": int(m.weight.data.size) * positions, "time_s": seconds}
    model.eval()
    with no_grad(), leaf_calls(model, on_call):
        model(Tensor(example))          # warm-up, then the timed pass overwrites the times
        model(Tensor(example))
    return costs


def sensitivity(model, split, evaluate_fn=None, sparsities=DEFAULT_SPARSITIES, method="magnitude",
                layers=None, max_drop_points=1.0, example_batch=64):
    """Prune each layer alone to each sparsity, evaluate, and rank layers by what they would save.

    Args:
        model: a trained model (not modified; each layer is pruned in a copy).
        split: the evaluation Split. evaluate_fn: ``(model, split) -> accuracy`` (default
            ``tinyeff.train.evaluate(...)["accuracy"]``).
        sparsities: increasing fractions to try. method: "magnitude", "random" or "channel".
        layers: layer names (default: every Conv2d and Linear).
        max_drop_points: accuracy budget (percentage points) for the "tolerated" sparsity.
        example_batch: batch size of the timing pass.

    Returns:
        dict with ``baseline_accuracy``, ``sparsities``, and ``layers``: a list (ranked, best first)
        of {name, macs, time_s, energy_j, accuracy: [...], tolerated_sparsity, macs_saved,
        time_saved_s, energy_saved_j}, with savings per image at the tolerated sparsity.
    """
    if evaluate_fn is None:
        from tinyeff.train import evaluate
        evaluate_fn = lambda m, s: evaluate(m, s)["accuracy"]  # noqa: E731
    sparsities = sorted(float(s) for s in sparsities)
    names = list(prunable_layers(model)) if layers is None else list(layers)
    baseline = evaluate_fn(model, split)
    example = _example(model, split, example_batch)
    costs = layer_costs(copy.deepcopy(model), example)
    pj = _fp32_mac_pj()
    rows = []
    for name in names:
        trial = copy.deepcopy(model)
        accuracy = []
        for s in sparsities:     # masks only grow, so one copy serves every sparsity of this layer
            prune_to_sparsity(trial, s, method, layers=[name])
            accuracy.append(evaluate_fn(trial, split))
        ok = [s for s, a in zip(sparsities, accuracy) if 100 * (baseline - a) <= max_drop_points]
        tolerated = max(ok) if ok else 0.0
        cost = costs.get(name, {"macs": 0, "time_s": 0.0})
        rows.append({"name": name, "macs": cost["macs"], "time_s": cost["time_s"] / len(example),
                     "energy_j": cost["macs"] * pj * 1e-12, "accuracy": accuracy,
                     "tolerated_sparsity": tolerated, "macs_saved": int(cost["macs"] * tolerated),
                     "time_saved_s": cost["time_s"] / len(example) * tolerated,
                     "energy_saved_j": cost["macs"] * tolerated * pj * 1e-12})
    rows.sort(key=lambda r: (-r["macs_saved"], -r["tolerated_sparsity"]))
    return {"baseline_accuracy": baseline, "sparsities": sparsities, "method": method,
            "max_drop_points": max_drop_points, "mac_energy_pj": pj, "layers": rows}


def _example(model, split, n):
    from tinyeff.data.transforms import make_preprocess
    x = split.images[:n]
    return np.asarray(make_preprocess(getattr(model, "preprocess", None))(x), dtype=np.float32)


def format_table(result):
    """The sensitivity result as a text table (accuracy per sparsity, then savings)."""
    head = "".join(f"{int(round(100 * s)):>6}%" for s in result["sparsities"])
    lines = [f"baseline accuracy {result['baseline_accuracy']:.4f}; tolerated = largest sparsity losing "
             f"<= {result['max_drop_points']} points; ranked by MACs saved",
             f"{'layer':<22}{head}{'MACs/img':>11}{'tol.':>6}{'MACs saved':>12}{'us saved':>10}{'uJ saved':>10}"]
    for r in result["layers"]:
        accs = "".join(f"{a:>7.3f}" for a in r["accuracy"])
        lines.append(f"{r['name']:<22}{accs}{r['macs']:>11}{r['tolerated_sparsity']:>6.2f}"
                     f"{r['macs_saved']:>12}{1e6 * r['time_saved_s']:>10.1f}{1e6 * r['energy_saved_j']:>10.3f}")
    return "\n".join(lines)


def plot(result, path):
    """Accuracy vs sparsity, one line per layer, written to ``path`` (PNG, matplotlib Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [100 * s for s in result["sparsities"]]
    for r in result["layers"]:
        ax.plot(xs, [100 * a for a in r["accuracy"]], marker="o", label=f"{r['name']} ({r['macs']:,} MACs)")
    ax.axhline(100 * result["baseline_accuracy"], color="k", ls="--", lw=1, label="dense")
    ax.set_xlabel("sparsity of this layer alone (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Pruning sensitivity per layer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fsio.write_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
