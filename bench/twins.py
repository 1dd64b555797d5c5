"""What the side-by-side benches share: one training step in each framework, the PyTorch twins of
tinyeff's seed CNN and ResNet-20 (same layers, same order, so weights copy index for index), and the
interleaved timing loop that keeps one side's idle threads off the other side's clock.

Why a pause between sides: after a call, each library's idle threads keep a core busy for a while
before they sleep. Measured here (CPU time this process burns while its main thread sleeps, see
``idle_cpu``): NumPy's OpenBLAS after a 2-thread GEMM, about 100 ms; ONNX Runtime's intra-op pool,
about 50 ms; PyTorch's bundled libgomp, about 6 ms. On a 2-core machine a side that starts inside
that window shares a core with a spinner and runs up to 2x slower. So ``run_blocks`` runs a block of
calls of one side, then waits until the process is quiet (``quiesce``), then the next side's block;
every side starts on cores no other side's thread is using, as it would alone. ``--check-fairness``
in bench_vs_frameworks.py shows the pause works: a side's block times the same after a block of
another side as after a block of its own.

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
    pytest-benchmark, so a quiet or busy moment of the machine falls on every step alike, with the
    process quiesced before each step (``run_blocks``). Records each step's min and median ms in
    ``extra_info`` and returns name -> list of seconds."""
    import numpy as np
    for step in steps.values():
        assert np.isfinite(step())                                   # warm-up; a NaN step is no result
    times = {name: [] for name in steps}

    def one_round():
        for name, _, block in run_blocks(steps, list(steps))[0]:
            times[name].extend(block)
    benchmark.extra_info.update(info)
    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=0)
    for name, t in times.items():
        benchmark.extra_info[f"{name}_min_ms"] = 1e3 * min(t)
        benchmark.extra_info[f"{name}_median_ms"] = 1e3 * float(np.median(t))
    return times

def idle_cpu(window_s):
    """CPU seconds this process used while its main thread slept ``window_s``, per second slept:
    the load its idle thread pools put on the machine (0 = every pool asleep, 1 = one core)."""
    import time
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(window_s)
    return (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)


def quiesce(window_s=0.005, quiet_windows=3, limit_s=1.0):
    """Sleep until every thread pool of this process sleeps (``quiet_windows`` windows in a row
    under 5% of a core), at most ``limit_s``. Returns (seconds waited, whether it went quiet)."""
    import time
    t0, quiet = time.perf_counter(), 0
    while quiet < quiet_windows:
        if time.perf_counter() - t0 > limit_s:
            return time.perf_counter() - t0, False
        quiet = quiet + 1 if idle_cpu(window_s) < 0.05 else 0
    return time.perf_counter() - t0, True


def run_blocks(steps, order, reps=1, pause=True, setup=None):
    """Run ``steps`` (name -> callable) in blocks of ``reps`` timed calls, one block per name in
    ``order``, quiescing between blocks when ``pause``; ``setup(name)``, if given, runs untimed
    before each block's pause. Returns one (name, previous name or None, [seconds per call]) per
    block, and how many pauses hit their time limit."""
    import time
    blocks, loud, previous = [], 0, None
    for name in order:
        if setup is not None:
            setup(name)
        if pause:
            loud += not quiesce()[1]
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            steps[name]()
            times.append(time.perf_counter() - t0)
        blocks.append((name, previous, times))
        previous = name
    return blocks, loud


def medians(blocks):
    """name -> (median, min) seconds per call over every block of that name."""
    import numpy as np
    per = {}
    for name, _, times in blocks:
        per.setdefault(name, []).extend(times)
    return {name: (float(np.median(t)), min(t)) for name, t in per.items()}


def paired_blocks(calls, rounds, setup=None, block_s=2e-3):
    """Two ways of doing the same work, interleaved: ``calls`` (name -> zero-argument callable,
    two of them) each run as one untimed call and then a timed block of calls about ``block_s``
    long, the order reversed every round; ``setup(name)``, if given, runs before each block.
    Returns ({name: median seconds per call}, median over rounds of the first's time / the second's).
    For small calls (a batch-1 forward), where one timed call is mostly the clock's noise."""
    import time
    import numpy as np
    names = list(calls)
    if setup is not None:
        setup(names[1])
    first = calls[names[1]]
    first()
    t0 = time.perf_counter()
    first()
    block = max(1, int(block_s / max(time.perf_counter() - t0, 1e-6)))
    times = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            if setup is not None:
                setup(name)
            calls[name]()                         # the way's own state (plans, caches) in place
            t0 = time.perf_counter()
            for _ in range(block):
                calls[name]()
            times[name].append((time.perf_counter() - t0) / block)
        names.reverse()
    a, b = list(calls)
    ratio = float(np.median(np.array(times[a]) / np.array(times[b])))
    return {name: float(np.median(t)) for name, t in times.items()}, ratio


def rerun_in_child(script, argv, env):
    """Run ``script`` again with ``argv + --child`` in a child process started with ``env`` and an
    empty lowering cache in a temporary directory; return its exit code. The ISA caps and thread
    counts must be in the environment before NumPy, PyTorch and tinyeff load, so a bench measures in
    a child (and a new user's first run measures its lowerings: the cache starts empty)."""
    import os
    import subprocess
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as cache:
        env = dict(env, TINYEFF_CACHE_DIR=cache)
        argv = sys.argv[1:] if argv is None else list(argv)
        return subprocess.call([sys.executable, os.path.abspath(script), *argv, "--child"], env=env)
