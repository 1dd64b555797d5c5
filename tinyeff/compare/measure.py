"""Measure models the way the comparison table reports them: on tinyeff's own kernels, side by side.

Timing is interleaved: every round runs each variant in turn (batch 1 for latency, batch 256 for
throughput), and each figure is the median over rounds. On a shared, noisy machine this gives every
variant the same conditions, so two variants with the same arithmetic come out equal instead of one
catching a quiet moment. Energy per image comes from ``tinyeff.energy.measure_kernel`` on the
batch-256 forward: a live counter where one exists, otherwise the energy model pricing the work the
FLOP counter saw, labelled as an estimate.
"""
import time

import numpy as np

from tinyeff.kernels.blas import blas_threads
from tinyeff.tensor import Tensor, no_grad


def median_time(fn, min_time_s=0.5, min_repeats=5, warmup=1):
    """Median wall time of ``fn()`` over at least ``min_repeats`` calls and ``min_time_s`` seconds,
    with its inter-quartile range and the number of calls."""
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


def time_side_by_side(fns, rounds=7, min_time_s=0.05):
    """Interleaved timing of several callables: per round, each runs for at least ``min_time_s``.

    Args:
        fns: dict name -> zero-argument callable.
    Returns:
        dict name -> (median seconds per call, inter-quartile range) over all calls of all rounds.
    """
    samples = {name: [] for name in fns}
    with blas_threads(1):                               # as in training and predict (kernels/blas.py)
        for fn in fns.values():
            fn()                                        # warm-up: JIT, packed weights, caches
        for _ in range(rounds):
            for name, fn in fns.items():
                end = time.perf_counter() + min_time_s
                while True:
                    t0 = time.perf_counter()
                    fn()
                    t1 = time.perf_counter()
                    samples[name].append(t1 - t0)
                    if t1 >= end:
                        break
    return {name: (float(np.median(t)), float(np.percentile(t, 75) - np.percentile(t, 25)))
            for name, t in samples.items()}


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
