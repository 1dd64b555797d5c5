"""Per-layer breakdown of time, MACs and energy, before and after compression: where the compute and
the joules go, layer by layer.

Layers are matched by their order among the MAC-bearing layers (convolutions and linear layers),
because compression renames and fuses them (an int8 model folds each ReLU into its convolution and
holds plain integer layers instead of Modules). Everything else (activations, pooling, adds) is
summed into one "other" bar, so both sides of a chart add up to the whole model.
"""
import os

import numpy as np

from tinyeff import flops
from tinyeff.timing import inference_fn
from tinyeff.energy.layers import estimate_model
from tinyeff.flops.count import KIND_ALIASES, leaf_calls
from tinyeff.kernels.blas import blas_threads
from tinyeff.report import plots

COMPUTE_KINDS = ("Conv2d", "Linear")


def layer_table(model, image_shape, batch=64, repeats=5, rng=None):
    """Ordered dict label -> {time_ms, macs, energy_j}: one entry per conv/linear layer plus "other".

    A layer's time is its time in one forward pass (all its calls), the median over ``repeats``
    passes, so a pass that a busy machine delayed does not become the layer's figure.
    """
    rng = rng or np.random.default_rng(0)
    shape = (batch,) + tuple(image_shape)
    run = inference_fn(model, rng.standard_normal(shape).astype(np.float32))
    passes = []
    with blas_threads(1):                            # as in every other timing (kernels/blas.py)
        run()                                        # warm-up: JIT, caches, packed weights
        with leaf_calls(model, lambda name, layer, x, y, dt: passes[-1].__setitem__(
                name, passes[-1].get(name, 0.0) + dt)):
            for _ in range(repeats):
                passes.append({})
                run()
    seconds = {name: float(np.median([p.get(name, 0.0) for p in passes])) for name in passes[0]}
    energy = {row.name: row.energy_j for row in estimate_model(model, shape)[0]}
    table, other = {}, {"time_ms": 0.0, "macs": 0, "energy_j": 0.0}
    index = 0
    for layer in flops.count(model, shape).layers:
        values = {"time_ms": 1e3 * seconds.get(layer.name, 0.0), "macs": layer.macs_effective,
                  "energy_j": energy.get(layer.name, 0.0)}
        if KIND_ALIASES.get(layer.type, layer.type) in COMPUTE_KINDS:
            index += 1
            table[f"{index}: {KIND_ALIASES.get(layer.type, layer.type)}"] = values
        else:
            for key in other:
                other[key] += values[key]
    table["other"] = other
    return table


def layer_breakdown(baseline, compressed, label, image_shape, plot_dir, colors=None):
    """Write the three per-layer bar charts; return {plot name: path}."""
    before, after = layer_table(baseline, image_shape), layer_table(compressed, image_shape)
    out = {}
    for metric, unit, scale in (("time_ms", "ms per batch of 64, measured", 1.0),
                                ("macs", "MMAC per batch of 64", 1e-6),
                                ("energy_j", "mJ per batch of 64, estimated", 1e3)):
        b = {n: v[metric] * scale for n, v in before.items()}
        a = {n: v[metric] * scale for n, v in after.items()}
        out[f"layers_{metric}"] = plots.layer_breakdown(b, a, metric.split("_")[0],
                                                        os.path.join(plot_dir, f"layers_{metric}.png"),
                                                        labels=("baseline", label), unit=unit, colors=colors)
    return out
