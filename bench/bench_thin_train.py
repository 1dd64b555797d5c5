"""What thinning during training buys: one training step of a dense model, the same model with 50%
unstructured (magnitude) masks, and the same model channel-pruned to 50% and thinned, interleaved.
For ResNet-20, "thinned" halves every block's inner channels (what ``tinyeff sweep --prune channel``
does) and "thinned_groups" also halves the residual stage channels (``ThinningPruning(stage_groups=True)``).

The masked model still runs every multiply on the dense kernels ("masked: no training-time saving");
the thinned one is a smaller dense model, which is what ``tinyeff sweep --prune channel`` trains after
each pruning event (``tinyeff.compress.thin_train``). Fashion-MNIST geometry (1x28x28), Adam for the
seed CNN at batch 64, SGD with momentum for ResNet-20 at batch 128, one BLAS thread as in ``fit``.

Run: pytest bench/bench_thin_train.py --benchmark-json=out.json -s  (not part of the default test run).
On a shared, noisy machine quote only the ratios: the three steps alternate for many rounds so they see
the same noise; extra_info holds each one's min and median step time and the ratios to dense.
"""
import copy

import numpy as np
import pytest
from twins import interleaved, tinyeff_step

CLASSES = 10


def _thinned(dense, make_opt, stage_groups):
    from tinyeff.compress.prune import prune
    from tinyeff.compress.thin_train import thin_with_optimizer
    from tinyeff.compress.thinning import prune_channel_groups
    model = copy.deepcopy(dense)
    opt = make_opt(model)
    prune(model, 0.5, "channel", optimizer=opt)
    if stage_groups:
        prune_channel_groups(model, 0.5, optimizer=opt)
    thin_with_optimizer(model, opt)
    return model, opt


def _variants(name, make_opt):
    """dense, masked (50% magnitude) and thinned (50% channels) copies of model ``name``, each with an optimizer."""
    import tinyeff
    from tinyeff import models
    from tinyeff.compress.prune import prune
    from tinyeff.compress.thinning import channel_groups
    tinyeff.manual_seed(0)
    kwargs = {"input_size": 28} if name == "seed-cnn" else {}
    dense = models.create(name, in_channels=1, num_classes=CLASSES, **kwargs)
    masked = copy.deepcopy(dense)
    prune(masked, 0.5, "magnitude")
    out = {"dense": (dense, make_opt(dense)), "masked": (masked, make_opt(masked)),
           "thinned": _thinned(dense, make_opt, stage_groups=False)}
    if channel_groups(dense):
        out["thinned_groups"] = _thinned(dense, make_opt, stage_groups=True)
    return out


def _interleaved(benchmark, steps, rounds, **info):
    times = interleaved(benchmark, steps, rounds, **info)
    for name in [n for n in steps if n != "dense"]:
        benchmark.extra_info[f"{name}_over_dense_median"] = float(np.median(times[name]) / np.median(times["dense"]))
    print(f"\n{benchmark.group}: " + ", ".join(
        f"{n} {1e3 * min(t):.1f}/{1e3 * np.median(t):.1f} ms" for n, t in times.items()) + " (min/median); " + ", ".join(
        f"{n}/dense {benchmark.extra_info[f'{n}_over_dense_median']:.2f}" for n in steps if n != "dense") + " (median)")


@pytest.mark.parametrize("name,batch,rounds", [("seed-cnn", 64, 30), ("resnet20", 128, 5)])
def test_thinned_train_step_interleaved(benchmark, rng, machine_info, name, batch, rounds):
    from tinyeff import optim
    if name == "seed-cnn":
        def make_opt(m):
            return optim.Adam(m.parameters(), lr=1e-3)
    else:
        def make_opt(m):
            return optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, CLASSES, batch)
    variants = _variants(name, make_opt)
    steps = {k: tinyeff_step(m, o, x, y) for k, (m, o) in variants.items()}
    params = {k: int(sum(p.size for p in m.parameters())) for k, (m, _) in variants.items()}
    benchmark.group = f"{name} train step, batch {batch}, 1x28x28: dense vs masked vs thinned (50%)"
    _interleaved(benchmark, steps, rounds, **machine_info, params=params)
