"""Measure a model the way the comparison table reports it: on tinyeff's own kernels, side by side.

Latency is the median time of a batch-1 forward pass; throughput is images per second at batch 256;
energy per image comes from ``tinyeff.energy.measure_kernel`` on the batch-256 forward, which reads a
live counter where one exists and otherwise prices the work the FLOP counter saw with the energy
model, labelled as an estimate. Compute and size come from ``tinyeff.flops`` and the real model file.
"""
import time

import numpy as np

from tinyeff.tensor import Tensor, no_grad


def median_time(fn, min_time_s=0.5, min_repeats=5, warmup=1):
    """Median wall time of ``fn()`` over at least ``min_repeats`` calls and ``min_time_s`` seconds."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_time_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.percentile(times, 75) - np.percentile(times, 25)), len(times)


def inference_fn(model, x):
    """A closure running ``model`` on array ``x`` in eval mode without recording a graph."""
    model.eval()
    tensor = Tensor(x)

    def run():
        with no_grad():
            return model(tensor)
    return run


def measure_model(model, images, preprocess, batch=256, min_time_s=0.5, energy=True):
    """Latency (batch 1), throughput (batch ``batch``) and energy per image of ``model``.

    Args:
        images: uint8 test images (N, C, H, W); the first ``batch`` are used.
        preprocess: uint8 -> float32 function the model expects.
    Returns:
        dict with latency_ms, latency_iqr_ms, throughput_ips, energy_per_image_j, energy_source,
        energy_label.
    """
    from tinyeff.energy import measure_kernel
    from tinyeff.energy.layers import estimate_model, total_work
    x_big = np.asarray(preprocess(images[:batch]), dtype=np.float32)
    x_one = x_big[:1].copy()
    lat, lat_iqr, _ = median_time(inference_fn(model, x_one), min_time_s=min_time_s, min_repeats=20)
    thr_time, thr_iqr, _ = median_time(inference_fn(model, x_big), min_time_s=min_time_s)
    result = {"latency_ms": 1e3 * lat, "latency_iqr_ms": 1e3 * lat_iqr,
              "throughput_ips": len(x_big) / thr_time, "throughput_iqr_s": thr_iqr}
    if energy:
        rows, estimate = estimate_model(model, x_big.shape)
        work = total_work(rows)
        m = measure_kernel(inference_fn(model, x_big), min_time_s=min_time_s, warmup=0, trials=3,
                           idle_time_s=0.0, batch_size=len(x_big), work=work)
        result.update(energy_per_image_j=m.j_per_image, energy_source=m.source,
                      energy_estimated=m.source == "model", energy_label=m.label,
                      energy_model_per_image_j=estimate.energy_j / len(x_big))
    return result

