"""Per-layer breakdown of time, MACs and (estimated or measured-share) energy, before and after
compression: where the compute and the joules go, layer by layer."""
import os

import numpy as np

from tinyeff import flops
from tinyeff.compare.measure import inference_fn
from tinyeff.energy.layers import estimate_model
from tinyeff.energy.profile import LayerProfiler
from tinyeff.report import plots


def layer_table(model, image_shape, batch=64, repeats=3, rng=None):
    """Dict layer name -> {time_ms, macs, energy_j} for a batch of ``batch`` random inputs."""
    rng = rng or np.random.default_rng(0)
    x = rng.standard_normal((batch,) + tuple(image_shape)).astype(np.float32)
    run = inference_fn(model, x)
    run()                                            # warm-up: JIT, caches, packed weights
    with LayerProfiler(model) as prof:
        for _ in range(repeats):
            run()
    times = {name: 1e3 * t / repeats for name, t in prof.result.layer_forward_s.items()}
    layers = flops.count(model, (batch,) + tuple(image_shape)).layers
    counts = {layer.name: layer.macs_effective for layer in layers}
    kinds = {layer.name: layer.type for layer in layers}
    energy = {row.name: row.energy_j for row in estimate_model(model, (batch,) + tuple(image_shape))[0]}
    names = [n for n in counts if counts[n] or times.get(n, 0) > 0.05]
    return {f"{n} {kinds[n]}": {"time_ms": times.get(n, 0.0), "macs": counts.get(n, 0), "energy_j": energy.get(n, 0.0)}
            for n in names}


def layer_breakdown(baseline, compressed, label, image_shape, plot_dir):
    """Write the three per-layer bar charts; return {plot name: path}."""
    before, after = layer_table(baseline, image_shape), layer_table(compressed, image_shape)
    out = {}
    for metric, unit, scale in (("time_ms", "ms per batch of 64", 1.0), ("macs", "MMAC per batch of 64", 1e-6),
                                ("energy_j", "mJ per batch of 64, estimated", 1e3)):
        b = {n: v[metric] * scale for n, v in before.items()}
        a = {n: v[metric] * scale for n, v in after.items()}
        out[f"layers_{metric}"] = plots.layer_breakdown(b, a, metric.split("_")[0], os.path.join(plot_dir, f"layers_{metric}.png"),
                                                        labels=("baseline", label), unit=unit)
    return out
