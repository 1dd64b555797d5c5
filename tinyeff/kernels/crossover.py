"""Sparse or dense? Measure, on this machine, whether the sparse kernel beats the dense path.

The one idea: the sparsity at which a sparse kernel starts to pay depends on the layer's shape, the
CPU and the tiers that loaded, so we do not guess a threshold; we time both paths once per
(layer shape, sparsity bucket, tiers) and cache the verdict.

    from tinyeff.kernels import crossover
    use_sparse = crossover.should_use_sparse(
        "conv", {"n": 64, "c": 32, "h": 13, "w": 13, "oc": 64, "kh": 3, "kw": 3,
                 "stride": 1, "padding": 0, "dilation": 1}, sparsity=0.9)
    use_sparse = crossover.should_use_sparse("linear", {"n": 64, "in": 800, "out": 10}, 0.9)
    speedup = crossover.measured_speedup("linear", {"n": 64, "in": 800, "out": 10}, 0.9)

``measured_speedup`` (dense time / sparse time, from the same cache) is for callers with their own
threshold, such as ``compress.sparse_infer.to_sparse``'s ``min_speedup``.

Dense path = the best a dense layer can run: for a conv, the faster of its two lowerings (the
direct kernel ``conv2d_f32`` when a direct tier is on, and ``im2col_f32`` + ``gemm_f32`` with the
transpose back to NCHW), each timed on its own, so the sparse kernel has to beat whichever lowering
the conv op would pick; ``x @ w.T`` for a linear layer. Sparse path = ``spconv_f32_csr`` /
``splinear_f32_csr``, each on its active tier.
Sparsity is rounded to buckets of 5% (finer above 90%, where the curve is steep) so a cache holds
few entries. Override order: the ``mode`` argument, then ``TINYEFF_SPARSE=always|never|auto``,
then the measurement. The cache is JSON in ``$TINYEFF_CACHE_DIR`` or the user cache directory
(``$XDG_CACHE_HOME/tinyeff`` or ``~/.cache/tinyeff``), written to a temporary file then renamed.
What it leaves out: int8 layers (same idea, not yet measured), and energy (time is the proxy).
"""
import os

import numpy as np

from tinyeff.kernels import cache, registry
from tinyeff.kernels.layout.csr import pack_sparse
from tinyeff.kernels.stopwatch import best_time_s

MODES = ("always", "never", "auto")
CACHE_FILE = "sparse_crossover.json"
CONV_KEYS = ("n", "c", "h", "w", "oc", "kh", "kw", "stride", "padding", "dilation")
LINEAR_KEYS = ("n", "in", "out")


def cache_path():
    """Where measured verdicts are stored (the directory is created on first write)."""
    return os.path.join(cache.cache_dir(), CACHE_FILE)


def sparsity_bucket(sparsity):
    """Round to 5% steps below 0.9 and 1% steps above (the time ratio is ~1/(1-s) up there)."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"crossover: sparsity={sparsity} must be a fraction in [0, 1]")
    step = 0.01 if sparsity >= 0.9 else 0.05
    return round(round(sparsity / step) * step, 2)


def _mode(mode):
    mode = mode or os.environ.get("TINYEFF_SPARSE", "").strip() or "auto"
    if mode not in MODES:
        raise ValueError(f"crossover: mode {mode!r} is not one of {MODES}; fix the argument or "
                         "TINYEFF_SPARSE")
    return mode


def _key(layer_kind, shape_info, bucket):
    keys = {"conv": CONV_KEYS, "linear": LINEAR_KEYS}.get(layer_kind)
    if keys is None:
        raise ValueError(f"crossover: layer_kind={layer_kind!r} must be 'conv' or 'linear'")
    missing = [k for k in keys if k not in shape_info]
    if missing:
        raise ValueError(f"crossover: shape_info for a {layer_kind} layer lacks {missing}; "
                         f"give all of {keys}")
    dims = ",".join(f"{k}={int(shape_info[k])}" for k in keys)
    return f"{layer_kind}:{dims}:s={bucket:.2f}:tiers={_tier_paths(layer_kind)}"


def _tier_paths(layer_kind):
    """Each kernel's active tier and, where it has ISA paths, the one that runs (``c/avx2``): a
    verdict measured on AVX-512 must not decide for the same machine capped to AVX2."""
    parts = []
    for name in _kernels(layer_kind):
        tier = registry.active_tier(name)
        isa = registry.best_isa(name, tier)
        parts.append(tier if isa is None else f"{tier}/{isa}")
    return ",".join(parts)


def _kernels(layer_kind):
    if layer_kind == "conv":
        return ("spconv_f32_csr", "conv2d_f32", "im2col_f32", "gemm_f32")
    return ("splinear_f32_csr", "gemm_f32")


def _pruned_weight(rng, shape, sparsity):
    w = rng.standard_normal(shape).astype(np.float32)
    w.reshape(-1)[rng.permutation(w.size)[:int(round(sparsity * w.size))]] = 0
    return w


def _dense_conv_paths(x, w, geometry):
    """The dense lowerings of a groups == 1 float32 conv forward, as zero-argument callables."""
    oc, _, kh, kw = w.shape
    n = x.shape[0]
    im2col, gemm = registry.get("im2col_f32"), registry.get("gemm_f32")
    w2d_t = np.ascontiguousarray(w.reshape(oc, -1).T)                # (C*KH*KW, OC)

    def gemm_path():
        cols = im2col(x, kh, kw, *geometry)                          # (N*OH*OW, C*KH*KW)
        out = gemm(cols, w2d_t)                                      # (N*OH*OW, OC)
        return np.ascontiguousarray(out.reshape(n, -1, oc).transpose(0, 2, 1))
    paths = [gemm_path]
    if registry.active_tier("conv2d_f32") != "ref":
        direct = registry.get("conv2d_f32")
        paths.append(lambda: direct(x, w, None, *geometry))
    return paths


def measure(layer_kind, shape_info, sparsity, repeats=5, seed=0):
    """Time the dense and the sparse path for one layer on random data.

    Returns:
        dict with ``dense_s`` (best of ``repeats``, over the dense lowerings) and ``sparse_s``
        (best of ``repeats``) and ``sparse_wins``.
    """
    rng = np.random.default_rng(seed)
    gemm = registry.get("gemm_f32")
    if layer_kind == "conv":
        s = {k: int(shape_info[k]) for k in CONV_KEYS}
        x = rng.standard_normal((s["n"], s["c"], s["h"], s["w"])).astype(np.float32)
        w = _pruned_weight(rng, (s["oc"], s["c"], s["kh"], s["kw"]), sparsity)
        packed, spconv = pack_sparse(w), registry.get("spconv_f32_csr")
        geometry = (s["stride"], s["padding"], s["dilation"])
        dense = _dense_conv_paths(x, w, geometry)

        def sparse():
            return spconv(x, packed, None, *geometry)
    else:
        s = {k: int(shape_info[k]) for k in LINEAR_KEYS}
        x = rng.standard_normal((s["n"], s["in"])).astype(np.float32)
        w = _pruned_weight(rng, (s["out"], s["in"]), sparsity)
        packed, wt = pack_sparse(w), np.ascontiguousarray(w.T)
        splinear = registry.get("splinear_f32_csr")

        def gemm_path():
            return gemm(x, wt)
        dense = [gemm_path]

        def sparse():
            return splinear(x, packed)
    dense_s = min(best_time_s(path, repeats) for path in dense)
    sparse_s = best_time_s(sparse, repeats)
    return {"dense_s": dense_s, "sparse_s": sparse_s, "sparse_wins": sparse_s < dense_s}


def should_use_sparse(layer_kind, shape_info, sparsity, mode=None, remeasure=False):
    """Should a pruned float32 layer run on the sparse kernel rather than the dense path?

    Args:
        layer_kind: ``"conv"`` or ``"linear"``.
        shape_info: dict with n, c, h, w, oc, kh, kw, stride, padding, dilation for a conv, or
            n, in, out for a linear layer (n = the batch size you will run).
        sparsity: measured fraction of zero weights, in [0, 1].
        mode: ``"always"``, ``"never"`` or ``"auto"``; None reads ``TINYEFF_SPARSE`` (default auto).
        remeasure: ignore the cached verdict and time again.

    Returns:
        bool. In auto mode: the cached or freshly measured verdict for this shape, sparsity
        bucket and set of active tiers and ISA paths (a new tier, ISA cap or machine gets a new
        measurement).

    Raises:
        ValueError: unknown mode or layer kind, sparsity outside [0, 1], incomplete shape_info.
    """
    mode = _mode(mode)
    bucket = sparsity_bucket(sparsity)
    if mode != "auto":
        return mode == "always"
    if bucket >= 1.0:
        return True                          # all-zero weights: the sparse path only adds bias
    return bool(_timings(layer_kind, shape_info, bucket, remeasure)["sparse_wins"])


def measured_speedup(layer_kind, shape_info, sparsity, remeasure=False):
    """Dense time / sparse time for a pruned float32 layer, measured once and cached like
    ``should_use_sparse`` (same key, same entry); above 1 the sparse kernel is faster.

    Args and Raises: as ``should_use_sparse`` (there is no ``mode``: this always measures).
    """
    result = _timings(layer_kind, shape_info, sparsity_bucket(sparsity), remeasure)
    return result["dense_s"] / max(result["sparse_s"], 1e-12)   # guard a 0 s timer reading


def _timings(layer_kind, shape_info, bucket, remeasure):
    """The cached ``measure`` result for this layer, sparsity bucket and tiers, else a new one."""
    key = _key(layer_kind, shape_info, bucket)
    path = cache_path()
    if not remeasure:
        cached = cache.load(path).get(key)
        if isinstance(cached, dict) and {"dense_s", "sparse_s", "sparse_wins"} <= set(cached):
            return cached
    result = measure(layer_kind, shape_info, bucket)
    cache.store(path, key, result)
    return result
