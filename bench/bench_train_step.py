"""End-to-end: one seed-CNN training step (forward, cross-entropy, backward, Adam) at batch 64.

tinyeff against PyTorch (CPU) on the same shapes, reported as images per second in extra_info.
The PyTorch case is skipped with its reason when torch is not installed (pip install torch).
Run: pytest bench/bench_train_step.py --benchmark-json=out.json  (not part of the default test run).
"""
import numpy as np
import pytest

N, SIDE, CLASSES = 64, 32, 10


def _batch(rng):
    x = rng.standard_normal((N, 3, SIDE, SIDE)).astype(np.float32)
    y = rng.integers(0, CLASSES, N)
    return x, y


def test_train_step_tinyeff(benchmark, rng, machine_info):
    import tinyeff
    import tinyeff.nn.functional as F
    from tinyeff import models, optim
    model = models.create("seed-cnn", in_channels=3, num_classes=CLASSES, input_size=SIDE)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x, y = _batch(rng)

    def step():
        loss = F.cross_entropy(model(tinyeff.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.data)

    first = step()                                                    # JIT warm-up
    benchmark.group = "seed CNN train step, batch 64, 3x32x32"
    benchmark.extra_info.update(machine_info, framework="tinyeff")
    benchmark.pedantic(step, rounds=10, warmup_rounds=1)
    benchmark.extra_info["images_per_s"] = N / benchmark.stats.stats.median
    assert np.isfinite(first)


def test_train_step_torch(benchmark, rng, machine_info):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; pip install torch")
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(64 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = _batch(rng)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = nn.functional.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)

    step()
    benchmark.group = "seed CNN train step, batch 64, 3x32x32"
    benchmark.extra_info.update(machine_info, framework="torch", torch_threads=torch.get_num_threads())
    benchmark.pedantic(step, rounds=10, warmup_rounds=1)
    benchmark.extra_info["images_per_s"] = N / benchmark.stats.stats.median
