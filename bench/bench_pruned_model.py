"""End-to-end pruned-model inference: does compression pay off in wall-clock time?

Two side-by-side groups, each timed in one run at batch 256:
  seed CNN, Fashion-MNIST input (1x28x28):
    dense          the unpruned model (tinyeff's dense path: im2col + GEMM)
    dense-best     the unpruned model with each conv on its measured-best kernel (the CSR kernel at
                   0% sparsity is a direct convolution, which beats im2col + GEMM on narrow layers):
                   the honest baseline for what sparsity itself buys
    pruned-masked  the 90% globally pruned model on the dense path (masks cost, zeros do not pay)
    pruned-sparse  the same model after ``to_sparse`` (CSR direct sparse kernels where measured faster)
  ResNet-20, 28x28 input:
    dense          the unpruned ResNet-20
    thinned-inner  50% of the inner filters (conv1 of every BasicBlock) removed by ``thin``
    thinned-all    50% of every filter: the inner ones plus 50% of each stage's shared residual
                   channels (``prune_channel_groups``), removed by ``thin``
    *-best         the same models with each conv on its measured-best kernel (see dense-best)
``extra_info`` carries dense MACs, effective MACs and their ratio, the sparsity, and the threads.

The pruned seed CNN comes from TINYEFF_PRUNED_MODEL (a kind="pruned" file, e.g. written by
``scripts/prune_accuracy.py``); without it a freshly initialized model is pruned to 90% global
magnitude, whose per-layer sparsities differ from a trained model's.

    pytest bench/bench_pruned_model.py --benchmark-json=pruned.json     (pytest-benchmark)
    python bench/bench_pruned_model.py                                  (quick side-by-side table)
"""
import copy
import os
import time

import numpy as np
import pytest

from tinyeff import Tensor, io, models, no_grad
from tinyeff.compress import prune, sparsity_report
from tinyeff.compress.sparse_infer import mac_totals, sparse_layers, to_sparse
from tinyeff.compress.thinning import prune_channel_groups, thin, thinning_plan

BATCH = 256


def seed_cnn_variants(rng):
    """dict name -> model for the seed CNN group, plus the input batch and the pruned sparsity."""
    path = os.environ.get("TINYEFF_PRUNED_MODEL")
    if path:
        pruned = io.load(path)
    else:
        pruned = prune(models.create("seed-cnn", in_channels=1, input_size=28), 0.9, "global")
    pruned.eval()
    dense = models.create("seed-cnn", in_channels=1, input_size=28).eval()   # same shapes, no zeros
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    sparse, _ = to_sparse(copy.deepcopy(pruned), x)
    dense_best, _ = to_sparse(copy.deepcopy(dense), x, candidates="all")
    return {"dense": dense, "dense-best": dense_best, "pruned-masked": pruned, "pruned-sparse": sparse}, x, \
        sparsity_report(pruned)["total"]["sparsity"]


def resnet_variants(rng):
    """dense, thinned-inner and thinned-all ResNet-20s, the input, and the masked twin of each."""
    dense = models.create("resnet20", in_channels=1).eval()
    inner = copy.deepcopy(dense)
    prune(inner, 0.5, "channel", layers=[p[0] for p in thinning_plan(inner)])
    every = prune_channel_groups(copy.deepcopy(inner), 0.5)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    variants = {"dense": dense, "thinned-inner": thin(inner), "thinned-all": thin(every)}
    for name in list(variants):     # the same models with each conv on its measured-best kernel
        variants[f"{name}-best"], _ = to_sparse(copy.deepcopy(variants[name]), x, candidates="all")
    masked = {"thinned-inner": inner, "thinned-all": every}
    masked.update({f"{k}-best": v for k, v in masked.items()})
    return variants, x, masked


def _run(model, x):
    with no_grad():
        return model(Tensor(x)).data


def _info(model, x, machine_info):
    dense_macs, effective_macs = mac_totals(model, x)
    return dict(machine_info, batch=BATCH, dense_macs=dense_macs, effective_macs=effective_macs,
                dense_to_effective=dense_macs / max(1, effective_macs),
                sparse_layers=list(sparse_layers(model)))


@pytest.fixture(scope="module")
def seed_group():
    return seed_cnn_variants(np.random.default_rng(0))


@pytest.fixture(scope="module")
def resnet_group():
    return resnet_variants(np.random.default_rng(0))


@pytest.mark.parametrize("variant", ["dense", "dense-best", "pruned-masked", "pruned-sparse"])
def test_seed_cnn_pruned_90(benchmark, seed_group, variant, machine_info):
    models_, x, sparsity = seed_group
    model = models_[variant]
    out = _run(model, x)                                   # warm-up (JIT, caches)
    if variant == "pruned-sparse":                         # a fast wrong answer is not a result
        np.testing.assert_allclose(out, _run(models_["pruned-masked"], x), rtol=1e-4, atol=1e-4)
    benchmark.group = f"seed CNN batch {BATCH}, {sparsity:.0%} global sparsity"
    benchmark.extra_info.update(_info(model, x, machine_info), sparsity=sparsity)
    benchmark(_run, model, x)


@pytest.mark.parametrize("variant", ["dense", "dense-best", "thinned-inner", "thinned-inner-best",
                                     "thinned-all", "thinned-all-best"])
def test_resnet20_thinned_half_filters(benchmark, resnet_group, variant, machine_info):
    models_, x, masked = resnet_group
    model = models_[variant]
    out = _run(model, x)
    if variant in masked:
        np.testing.assert_allclose(out, _run(masked[variant], x), rtol=1e-4, atol=1e-4)
    benchmark.group = f"ResNet-20 batch {BATCH}, 50% filters thinned"
    benchmark.extra_info.update(_info(model, x, machine_info))
    benchmark(_run, model, x)


def _best_of(model, x, repeats):
    _run(model, x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _run(model, x)
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def main(repeats=7):
    """Print both groups side by side: best and median time, speedup vs dense, MAC ratio."""
    rng = np.random.default_rng(0)
    seed, x, sparsity = seed_cnn_variants(rng)
    resnet, xr, _ = resnet_variants(rng)
    for title, group, inp in ((f"seed CNN, {sparsity:.1%} sparsity", seed, x),
                              ("ResNet-20, 50% filters thinned", resnet, xr)):
        print(f"\n{title}, batch {BATCH}")
        print(f"  {'variant':<19}{'best ms':>9}{'median ms':>11}{'speedup':>9}{'dense MACs':>14}"
              f"{'eff. MACs':>14}{'MAC ratio':>10}")
        results = {}
        # Interleave the variants so load changes on a shared machine hit all of them alike.
        for _ in range(3):
            for name, model in group.items():
                best, med = _best_of(model, inp, max(1, repeats // 3))
                prev = results.get(name, (np.inf, []))
                results[name] = (min(prev[0], best), prev[1] + [med])
        base = results["dense"][0]
        base_macs = mac_totals(group["dense"], inp)[0]
        for name, model in group.items():
            best, meds = results[name]
            dm, em = mac_totals(model, inp)
            # MAC ratio: the dense model's MACs over the MACs this variant really executed.
            print(f"  {name:<19}{1e3 * best:>9.1f}{1e3 * float(np.median(meds)):>11.1f}{base / best:>8.2f}x"
                  f"{dm:>14,}{em:>14,}{base_macs / max(1, em):>9.2f}x")


if __name__ == "__main__":
    main()
