"""Where a ResNet-20 training step spends its time: per op (forward and backward) and per kernel.

Wall-clock attribution, no sampling. Forward: every op output is made by ``tensor.make_result``,
so the time since the previous op output (or the start of the forward) is charged to the op that
just finished, Python glue included. Backward: each op's backward closure is timed as it runs; the
rest of ``loss.backward()`` is the autograd engine ("autograd"). Kernels: every function the
registry hands out is timed too (a kernel inside an op's forward is counted in both tables, so the
kernel table says how much of an op is its kernels and how much is NumPy and Python around them).
Phases: forward, loss, backward, optimizer step. Medians over ``--steps`` steps after a warm-up.
``--compare`` also runs the model as it ran before the fusions ("unfused": layer by layer, no
BatchNorm + ReLU fusion, and every output in fresh memory: kernels/buffers.py off), alternating a
step of each, so the two columns see the same load.

Run:  PYTHONPATH=. python bench/profile_train_step.py [--threads 1] [--steps 5] [--batch 128] [--compare]
      (cap the ISA with TINYEFF_CPU_FEATURES=avx2,fma OPENBLAS_CORETYPE=Haswell).
The timers cost a few microseconds per op and kernel call; compare profiles made with this script,
and take whole-step ratios from bench/bench_vs_frameworks.py.
"""
import argparse
import collections
import time

import numpy as np


class Clock:
    """Accumulates seconds per key for the current step; ``steps`` keeps one dict per step."""

    def __init__(self):
        self.now, self.steps = collections.defaultdict(float), []

    def add(self, key, seconds):
        self.now[key] += seconds

    def next_step(self):
        self.steps.append(dict(self.now))
        self.now = collections.defaultdict(float)

    def medians(self):
        keys = {k for s in self.steps for k in s}
        return {k: float(np.median([s.get(k, 0.0) for s in self.steps])) for k in keys}


def instrument():
    """Wrap make_result (forward attribution, backward closures) and the registry's kernels; each
    charges the clock in ``state["clock"]`` (the variant whose step is running)."""
    from tinyeff import kernels, tensor
    from tinyeff.ops import kernel_choice

    state = {"last": None, "clock": None}
    make_result = tensor.make_result

    def timed_make_result(data, parents, backward, op):
        now = time.perf_counter()
        if state["last"] is not None:
            state["clock"].add(("fwd", op), now - state["last"])
        if backward is not None:
            inner = backward

            def backward(g, _inner=inner, _op=op):
                t0 = time.perf_counter()
                out = _inner(g)
                state["clock"].add(("bwd", _op), time.perf_counter() - t0)
                return out
        out = make_result(data, parents, backward, op)
        state["last"] = time.perf_counter()
        return out

    get = kernels.get

    def timed_get(name, tier=None, isa=None):
        fn = get(name, tier, isa)

        def run(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            state["clock"].add(("kernel", name), time.perf_counter() - t0)
            return out
        return run

    for module in list(__import__("sys").modules.values()):
        if getattr(module, "__name__", "").startswith("tinyeff") and getattr(module, "make_result", None) is make_result:
            module.make_result = timed_make_result
    kernels.get = timed_get
    kernel_choice.kernels = kernels
    return state


def _setup(fused, args):
    from tinyeff import models, optim
    from tinyeff.models.resnet import set_fused

    rng = np.random.default_rng(0)
    model = models.create("resnet20", in_channels=3, num_classes=10)
    set_fused(model, fused)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = rng.standard_normal((args.batch, 3, 32, 32)).astype(np.float32)
    return model, opt, x, rng.integers(0, 10, args.batch)


def _step(model, opt, x, y, clock, state, pool_min_bytes):
    import tinyeff
    import tinyeff.nn.functional as F
    from tinyeff.kernels import buffers
    from tinyeff.kernels.blas import blas_threads

    buffers.MIN_BYTES = pool_min_bytes
    with blas_threads(1):
        t0 = time.perf_counter()
        state["clock"], state["last"] = clock, t0
        logits = model(tinyeff.Tensor(x))
        t1 = time.perf_counter()
        loss = F.cross_entropy(logits, y)
        t2 = time.perf_counter()
        state["last"] = None
        opt.zero_grad()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
    for key, seconds in (("forward", t1 - t0), ("loss", t2 - t1), ("backward", t3 - t2),
                         ("optimizer", t4 - t3), ("step", t4 - t0)):
        clock.add(("phase", key), seconds)


def run(args):
    """Steps of each variant, alternating (fused first, then layer by layer when ``--compare``)."""
    from tinyeff.kernels import buffers
    from tinyeff.threads import set_threads

    pool_min = {"fused": buffers.MIN_BYTES, "unfused": 1 << 62}     # unfused: no array is pooled

    set_threads(args.threads)
    variants = {"fused": _setup(True, args)}
    if args.compare:
        variants["unfused"] = _setup(False, args)
    clocks = {name: Clock() for name in variants}
    state = instrument()
    for i in range(args.steps + 1):
        for name, (model, opt, x, y) in variants.items():
            _step(model, opt, x, y, clocks[name], state, pool_min[name])
            if i == 0:
                clocks[name].now.clear()        # warm-up: lowering choices, first-touch pages
            else:
                clocks[name].next_step()
    return {name: clock.medians() for name, clock in clocks.items()}


def report(results):
    for med in results.values():
        bwd_ops = sum(v for (kind, _), v in med.items() if kind == "bwd")
        med[("phase", "autograd engine")] = med[("phase", "backward")] - bwd_ops
    names = list(results)
    keys = set().union(*results.values())
    print("median ms per step: " + "  ".join(f"{n:>8s}" for n in names)
          + ("   fused/unfused" if len(names) > 1 else ""))
    for kind in ("phase", "fwd", "bwd", "kernel"):
        rows = sorted((k for kd, k in keys if kd == kind), key=lambda k: -results[names[0]].get((kind, k), 0))
        print(f"-- {kind}")
        for k in rows:
            vals = [results[n].get((kind, k), 0.0) for n in names]
            ratio = f"   {vals[0] / vals[1]:.2f}" if len(vals) > 1 and vals[1] > 0 else ""
            print(f"   {k:24s} " + "  ".join(f"{1e3 * v:8.1f}" for v in vals) + ratio)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--compare", action="store_true",
                        help="also run the model layer by layer (set_fused(model, False)), interleaved")
    args = parser.parse_args(argv)
    report(run(args))


if __name__ == "__main__":
    main()
