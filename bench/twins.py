"""What the side-by-side benches share: one training step in each framework, and the PyTorch twins of
tinyeff's seed CNN and ResNet-20 (same layers, same order, so weights copy index for index).

Imported by bench_train_step.py, bench_vs_frameworks.py and bench_thin_train.py (bench/ is on the path
under pytest, through bench/conftest.py, and as the script's own folder when run directly).
"""


def tinyeff_step(model, opt, x, y):
    """One tinyeff training step on a fixed batch: forward, cross-entropy, backward, update; returns
    the loss. With one BLAS thread, as ``train.fit`` runs it (tinyeff/kernels/blas.py explains why)."""
    import tinyeff
    import tinyeff.nn.functional as F
    from tinyeff.kernels.blas import blas_threads

    def step():
        with blas_threads(1):
            loss = F.cross_entropy(model(tinyeff.Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.data)
    return step


def torch_step(torch, model, opt, x, y):
    """The same step in PyTorch."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)
    return step


def torch_seed_cnn(torch, classes):
    """tinyeff's seed CNN for 3x32x32 inputs, as a PyTorch Sequential."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(64 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, classes))


def torch_resnet20(torch, in_channels, classes):
    """tinyeff's CIFAR-style ResNet-20: 3 stages of 3 BasicBlocks, 16/32/64 channels, 1x1
    projection shortcuts with BatchNorm where the shape changes."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    layers, cin = [nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


def interleaved(benchmark, steps, rounds, **info):
    """Alternate the steps of ``steps`` (name -> callable returning the loss) ``rounds`` times under
    pytest-benchmark, so a quiet or busy moment of the machine falls on every step alike. Records
    each step's min and median ms in ``extra_info`` and returns name -> list of seconds."""
    import time

    import numpy as np
    for step in steps.values():
        assert np.isfinite(step())                                   # warm-up; a NaN step is no result
    times = {name: [] for name in steps}

    def one_round():
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    benchmark.extra_info.update(info)
    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=0)
    for name, t in times.items():
        benchmark.extra_info[f"{name}_min_ms"] = 1e3 * min(t)
        benchmark.extra_info[f"{name}_median_ms"] = 1e3 * float(np.median(t))
    return times
