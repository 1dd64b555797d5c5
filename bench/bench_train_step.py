"""End-to-end training steps: the seed CNN (forward, cross-entropy, backward, Adam) at batch 64, and
ResNet-20 (SGD with momentum) at batch 128.

tinyeff against PyTorch (CPU) on the same shapes, reported as images per second in extra_info.
The PyTorch case is skipped with its reason when torch is not installed (pip install torch).
Run: pytest bench/bench_train_step.py --benchmark-json=out.json  (not part of the default test run).

The ``*_interleaved`` cases are the ones to quote for a ratio: on a shared, noisy machine they
alternate one tinyeff step and one PyTorch step for many rounds, so both see the same noise, and
record each framework's min and median step time and their ratio in extra_info.
"""
import numpy as np
import pytest
from twins import interleaved, tinyeff_step, torch_resnet20, torch_seed_cnn, torch_step

N, SIDE, CLASSES = 64, 32, 10


def _batch(rng):
    x = rng.standard_normal((N, 3, SIDE, SIDE)).astype(np.float32)
    y = rng.integers(0, CLASSES, N)
    return x, y


def _time_steps(benchmark, step, group, batch, rounds, **info):
    """Time ``step`` after one warm-up call; record images/s. Returns the warm-up step's loss."""
    first = step()                                                    # JIT and cache warm-up
    benchmark.group = group
    benchmark.extra_info.update(info)
    benchmark.pedantic(step, rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["images_per_s"] = batch / benchmark.stats.stats.median
    return first


def _interleaved(benchmark, steps, batch, rounds, **info):
    """Alternate the steps of ``steps`` (name -> callable) ``rounds`` times; record min/median ms."""
    times = interleaved(benchmark, steps, rounds, **info)
    for name, t in times.items():
        benchmark.extra_info[f"{name}_images_per_s"] = batch / float(np.median(t))
    speedup = {stat: float(f(times["torch"]) / f(times["tinyeff"]))
               for stat, f in (("min", min), ("median", np.median))}
    benchmark.extra_info.update({f"tinyeff_speedup_over_torch_{k}": v for k, v in speedup.items()})
    print(f"\n{benchmark.group}: tinyeff {1e3 * min(times['tinyeff']):.1f} / "
          f"{1e3 * np.median(times['tinyeff']):.1f} ms, torch {1e3 * min(times['torch']):.1f} / "
          f"{1e3 * np.median(times['torch']):.1f} ms (min / median); tinyeff faster by "
          f"{speedup['min']:.2f}x / {speedup['median']:.2f}x")


def _seed_cnn_steps(rng):
    from tinyeff import models, optim
    model = models.create("seed-cnn", in_channels=3, num_classes=CLASSES, input_size=SIDE)
    x, y = _batch(rng)
    return model, tinyeff_step(model, optim.Adam(model.parameters(), lr=1e-3), x, y), x, y


def test_train_step_tinyeff(benchmark, rng, machine_info):
    _, step, _, _ = _seed_cnn_steps(rng)
    first = _time_steps(benchmark, step, "seed CNN train step, batch 64, 3x32x32", N, 10, **machine_info,
                        framework="tinyeff")
    assert np.isfinite(first)


def test_train_step_torch(benchmark, rng, machine_info):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; pip install torch")
    model = torch_seed_cnn(torch, CLASSES)
    x, y = _batch(rng)
    step = torch_step(torch, model, torch.optim.Adam(model.parameters(), lr=1e-3), x, y)

    _time_steps(benchmark, step, "seed CNN train step, batch 64, 3x32x32", N, 10, **machine_info,
                framework="torch", torch_threads=torch.get_num_threads())


# ---- ResNet-20 (Fashion-MNIST geometry, 1x28x28), batch 128, SGD with momentum -----------------
R_N, R_SIDE = 128, 28
R_GROUP = f"ResNet-20 train step, batch {R_N}, 1x{R_SIDE}x{R_SIDE}"


def _resnet_batch(rng):
    return rng.standard_normal((R_N, 1, R_SIDE, R_SIDE)).astype(np.float32), rng.integers(0, CLASSES, R_N)


def test_train_step_interleaved(benchmark, rng, machine_info):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; pip install torch")
    _, ours, x, y = _seed_cnn_steps(rng)
    torch_model = torch_seed_cnn(torch, CLASSES)
    theirs = torch_step(torch, torch_model, torch.optim.Adam(torch_model.parameters(), lr=1e-3), x, y)
    benchmark.group = "seed CNN train step, batch 64, 3x32x32, interleaved"
    _interleaved(benchmark, {"tinyeff": ours, "torch": theirs}, N, 40, **machine_info,
                 torch_threads=torch.get_num_threads())


def test_resnet20_train_step_interleaved(benchmark, rng, machine_info):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; pip install torch")
    from tinyeff import models, optim
    model = models.create("resnet20", in_channels=1, num_classes=CLASSES)
    x, y = _resnet_batch(rng)
    ours = tinyeff_step(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4), x, y)
    torch_model = torch_resnet20(torch, 1, CLASSES)
    theirs = torch_step(torch, torch_model, torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.9,
                                                            weight_decay=5e-4), x, y)
    benchmark.group = R_GROUP + ", interleaved"
    _interleaved(benchmark, {"tinyeff": ours, "torch": theirs}, R_N, 12, **machine_info,
                 torch_threads=torch.get_num_threads())


def test_resnet20_train_step_tinyeff(benchmark, rng, machine_info):
    from tinyeff import models, optim
    model = models.create("resnet20", in_channels=1, num_classes=CLASSES)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y = _resnet_batch(rng)

    step = tinyeff_step(model, opt, x, y)

    first = _time_steps(benchmark, step, R_GROUP, R_N, 6, **machine_info, framework="tinyeff")
    assert np.isfinite(first)


def test_resnet20_train_step_torch(benchmark, rng, machine_info):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; pip install torch")
    model = torch_resnet20(torch, 1, CLASSES)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y = _resnet_batch(rng)
    step = torch_step(torch, model, opt, x, y)

    _time_steps(benchmark, step, R_GROUP, R_N, 6, **machine_info, framework="torch",
                torch_threads=torch.get_num_threads())
