"""Measure models the way the comparison table reports them: on tinyeff's own kernels, side by side.

Timing is interleaved: every round runs each variant in turn (batch 1 for latency, batch 256 for
throughput), and each figure is the median over rounds. On a shared, noisy machine this gives every
variant the same conditions, so two variants with the same arithmetic come out equal instead of one
catching a quiet moment. Energy per image comes from ``tinyeff.energy.measure_kernel`` on the
batch-256 forward: a live counter where one exists, otherwise the energy model pricing the work the
FLOP counter saw, labelled as an estimate. The timing helpers themselves are ``tinyeff.timing``.
"""
import numpy as np

from tinyeff.timing import inference_fn, time_side_by_side


def measure_speed(models, images, preprocess_of, batch=256, rounds=7, min_time_s=0.05):
    """Latency (batch 1) and throughput (batch ``batch``) of every model, measured interleaved.

    Args:
        models: dict name -> model.
        images: uint8 test images (N, C, H, W); the first ``batch`` are used.
        preprocess_of: function model -> its uint8 -> float32 preprocessing.
    Returns:
        dict name -> {latency_ms, latency_iqr_ms, throughput_ips, throughput_iqr_s}.
    """
    big, one = {}, {}
    for name, model in models.items():
        x = np.asarray(preprocess_of(model)(images[:batch]), dtype=np.float32)
        big[name], one[name] = inference_fn(model, x), inference_fn(model, x[:1].copy())
    latency = time_side_by_side(one, rounds, min_time_s)
    throughput = time_side_by_side(big, rounds, min_time_s)
    n = min(batch, len(images))
    return {name: {"latency_ms": 1e3 * latency[name][0], "latency_iqr_ms": 1e3 * latency[name][1],
                   "throughput_ips": n / throughput[name][0], "throughput_iqr_s": throughput[name][1]}
            for name in models}


def measure_energy(model, images, preprocess, batch=256, min_time_s=0.5):
    """Energy per image of the batch-``batch`` forward, with its source (measured or model)."""
    from tinyeff.energy import measure_kernel
    from tinyeff.energy.layers import estimate_model, total_work
    x = np.asarray(preprocess(images[:batch]), dtype=np.float32)
    rows, _ = estimate_model(model, x.shape)
    m = measure_kernel(inference_fn(model, x), min_time_s=min_time_s, warmup=0, trials=3, idle_time_s=0.0,
                       batch_size=len(x), work=total_work(rows))
    return {"energy_per_image_j": m.j_per_image, "energy_source": m.source,
            "energy_estimated": m.source == "model", "energy_label": m.label}
