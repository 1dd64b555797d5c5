"""tinyeff against PyTorch and ONNX Runtime, side by side: training steps, inference, latency.

Figures (images/s or ms, each side's median over interleaved rounds, and tinyeff / peer):
  train-seed      seed CNN training step, 3x32x32, batch 64, Adam        vs PyTorch
  train-resnet20  ResNet-20 training step, 3x32x32, batch 128, SGD       vs PyTorch
  infer-seed      seed CNN fp32 inference, batch 256                     vs PyTorch channels-last,
                                                                            ONNX Runtime
  latency-seed    seed CNN batch-1 latency                               vs PyTorch, ONNX Runtime
Interleaved, in one process: each round runs a block of every side (one call, ten at batch 1), so
load from other work on a shared machine hits all sides alike; the ratio of medians is the figure
to quote. The peers run identical models (the inference ones with tinyeff's weights copied, outputs
checked to agree); the ONNX graph comes from ``torch.onnx.export`` of the PyTorch model.
No side runs beside another side's idle threads: between blocks the process waits until every pool
sleeps (twins.quiesce; after a call OpenBLAS's workers spin ~100 ms, ONNX Runtime's ~50 ms, a
spinning libgomp's ~6 ms, and on 2 cores a side started inside that window shares a core with them).
``--check-fairness`` runs the blocks in random order and prints each side's median after a block of
its own against after a block of another side (1.00x: the other side leaves no trace);
``--no-pause`` shows what the pause removes.
One OpenMP runtime: PyTorch and tinyeff's extension both need libgomp.so.1, and the process loads
it once (PyTorch's copy, imported first), so both sides share one pool and one wait policy, read when
it loads. The child sets OMP_WAIT_POLICY=PASSIVE for both, tinyeff's own default
(kernels/__init__.py). On this loaded 2-core machine it is also PyTorch's better setting: with the
default spinning both sides' 2-thread training steps were 3-7x slower (``--omp-wait-policy unset``
shows it; ``active`` spins without limit). Separate processes per framework would let each keep its
own default, but PyTorch's default is the slower one here, so one process with the policy shared is
the conservative comparison for tinyeff and keeps every side in the same machine state.
ISA: ``--isa avx2`` caps both sides to AVX2 + FMA (TINYEFF_CPU_FEATURES, OPENBLAS_CORETYPE and
NUMBA_CPU_NAME for tinyeff; ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS and
FBGEMM_ENABLE_INSTRUCTIONS for PyTorch). These must be set before the libraries load, so the measurement always runs in a child
process started with that environment. ONNX Runtime has no such cap: its rows say "uncapped".
Threads: ``--threads`` for every side (tinyeff.threads.set_threads, torch.set_num_threads, ORT intra-op).
The conv lowering cache starts empty in a temporary directory (a new user's first run measures).

Run:  python bench/bench_vs_frameworks.py [--isa native|avx2] [--threads 2] [--rounds 20]
          [--only train-seed,infer-seed,...] [--check-fairness] [--no-pause]
          [--omp-wait-policy passive|active|unset]
Needs: pip install torch==2.13.0 onnxruntime (a missing peer is skipped with that reason).
"""
import argparse
import os
import sys
import tempfile

import numpy as np
from twins import medians, rerun_in_child, run_blocks, tinyeff_step, torch_resnet20, torch_seed_cnn, torch_step

FIGURES = ("train-seed", "train-resnet20", "infer-seed", "latency-seed")
CAPS = {"avx2": {"TINYEFF_CPU_FEATURES": "avx2,fma", "OPENBLAS_CORETYPE": "Haswell",
                 "NUMBA_CPU_NAME": "haswell", "ATEN_CPU_CAPABILITY": "avx2",
                 "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                 "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}}
CLASSES = 10


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def _interleaved(steps, rounds, reps, args):
    """Warm every step up, then ``rounds`` rounds of a block of ``reps`` calls per step, the
    process quiesced between blocks (twins.run_blocks); name -> (median, min) seconds per call.
    With ``--check-fairness`` the blocks come in random order instead, and each side's time after a
    block of its own is set against its time after a block of another side (FAIRNESS rows)."""
    for step in steps.values():
        step()
    if not args.check_fairness:
        blocks, loud = run_blocks(steps, list(steps) * rounds, reps, pause=not args.no_pause)
    else:
        order = list(np.random.default_rng(1).choice(list(steps), size=2 * rounds * len(steps)))
        blocks, loud = run_blocks(steps, order, reps, pause=not args.no_pause)
        FAIRNESS.extend(_fairness(blocks))
    if loud:
        print(f"NOTE: {loud} pauses ended before the process went quiet (a pool that never sleeps?)")
    return medians(blocks)


FAIRNESS = []       # rows the --check-fairness run prints at the end


def _fairness(blocks):
    """(side, median after its own block, median after another side's block, blocks of each)."""
    rows = []
    for name in dict.fromkeys(b[0] for b in blocks):
        own = [t for n, prev, ts in blocks if n == name and prev == name for t in ts]
        other = [t for n, prev, ts in blocks if n == name and prev not in (name, None) for t in ts]
        if own and other:
            rows.append((name, float(np.median(own)), float(np.median(other)), len(own), len(other)))
    return rows


def _copy_seed_weights(torch, model, torch_model):
    """tinyeff seed CNN -> the same PyTorch Sequential (layers at the same indices)."""
    with torch.no_grad():
        for i, layer in enumerate(torch_model):
            if hasattr(layer, "weight"):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(model[i].weight.data)))
                layer.bias.copy_(torch.from_numpy(np.ascontiguousarray(model[i].bias.data)))


def train_figure(name, torch, rng, args):
    from tinyeff import models, optim
    if name == "train-seed":
        batch = 64
        model = models.create("seed-cnn", in_channels=3, num_classes=CLASSES, input_size=32)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        torch_model = torch_seed_cnn(torch, CLASSES)
        torch_opt = torch.optim.Adam(torch_model.parameters(), lr=1e-3)
    else:
        batch = 128
        model = models.create("resnet20", in_channels=3, num_classes=CLASSES)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        torch_model = torch_resnet20(torch, 3, CLASSES)
        torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, CLASSES, batch)
    t = _interleaved({"tinyeff": tinyeff_step(model, opt, x, y),
                      "PyTorch": torch_step(torch, torch_model, torch_opt, x, y)}, args.rounds, 1, args)
    return [(name, "PyTorch", batch, t["tinyeff"], t["PyTorch"], "")]


def _ort_session(torch, ort, torch_model, threads, path):
    torch.onnx.export(torch_model, (torch.zeros(1, 3, 32, 32),), path, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def inference_figures(names, torch, ort, rng, args):
    """infer-seed (batch 256) and latency-seed (batch 1), same weights on every side."""
    import tinyeff
    from tinyeff import models
    model = models.create("seed-cnn", in_channels=3, num_classes=CLASSES, input_size=32)
    model.eval()
    torch_model = torch_seed_cnn(torch, CLASSES).eval()
    _copy_seed_weights(torch, model, torch_model)
    channels_last = torch_seed_cnn(torch, CLASSES).eval().to(memory_format=torch.channels_last)
    channels_last.load_state_dict(torch_model.state_dict())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        session = _ort_session(torch, ort, torch_model, args.threads, os.path.join(tmp, "seed.onnx")) if ort else None
        for name, batch in (("infer-seed", 256), ("latency-seed", 1)):
            if name not in names:
                continue
            x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
            xt = torch.from_numpy(x)
            xcl = xt.contiguous(memory_format=torch.channels_last)

            def ours():
                with tinyeff.no_grad():
                    return model(tinyeff.Tensor(x)).data

            def theirs():
                with torch.inference_mode():
                    return channels_last(xcl)
            steps = {"tinyeff": ours, "PyTorch channels-last": theirs}
            want = theirs().numpy()
            np.testing.assert_allclose(ours(), want, rtol=1e-3, atol=1e-3)   # same model, same answer
            if session is not None:
                steps["ONNX Runtime"] = lambda: session.run(None, {"x": x})[0]
                np.testing.assert_allclose(steps["ONNX Runtime"](), want, rtol=1e-3, atol=1e-3)
            t = _interleaved(steps, args.rounds, 1 if batch > 1 else 10, args)
            for peer in steps:
                if peer != "tinyeff":
                    note = "uncapped (ORT has no ISA cap)" if peer == "ONNX Runtime" else ""
                    rows.append((name, peer, batch, t["tinyeff"], t[peer], note))
    return rows


def run(args):
    """The measurement, in the process whose environment was set by ``main``."""
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")      # before tinyeff sets its default
    torch, ort = _optional("torch"), _optional("onnxruntime")
    from tinyeff.kernels import cpu, registry
    from tinyeff.kernels import c as c_tier
    names = args.only.split(",") if args.only else list(FIGURES)
    print(f"ISA cap: {args.isa}; tinyeff conv path: {registry.best_isa('conv2d_f32')}, "
          f"C threads {c_tier.num_threads()}; CPU flags in effect: "
          f"{','.join(sorted(f for f, on in cpu.features().items() if on))}")
    if torch is None:
        print("SKIPPED every figure: PyTorch is not installed; pip install torch==2.13.0 onnxruntime")
        return
    from tinyeff.threads import set_threads
    set_threads(args.threads)            # OpenMP, Numba; tinyeff's BLAS calls take one (kernels/blas.py)
    torch.set_num_threads(args.threads)
    print(f"OpenMP: libgomp {_libgomp()}; OMP_WAIT_POLICY={policy}")
    print(f"PyTorch {torch.__version__} (ATen CPU capability {torch.backends.cpu.get_cpu_capability()}), "
          f"threads {torch.get_num_threads()}; ONNX Runtime "
          f"{ort.__version__ if ort else 'SKIPPED: pip install torch==2.13.0 onnxruntime'}")
    rng = np.random.default_rng(0)
    rows = []
    for name in ("train-seed", "train-resnet20"):
        if name in names:
            rows += train_figure(name, torch, rng, args)
    if {"infer-seed", "latency-seed"} & set(names):
        rows += inference_figures(names, torch, ort, rng, args)
    _print_table(rows, args)


def _libgomp():
    """The libgomp copies this process holds (PyTorch's and tinyeff's extension share the first
    one loaded; Numba's OpenMP layer may add the system's)."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "libgomp" in line})
    except OSError:
        return "unknown: no /proc/self/maps"
    return ", ".join(paths) or "none loaded"


def _print_table(rows, args):
    print(f"\n{'figure':15} {'peer':22} {'batch':>5} {'tinyeff':>15} {'peer':>15} {'tinyeff/peer':>12}")
    for name, peer, batch, (ours_med, _), (theirs_med, _), note in rows:
        if batch == 1:
            a, b, ratio = f"{1e3 * ours_med:.2f} ms", f"{1e3 * theirs_med:.2f} ms", theirs_med / ours_med
        else:
            a, b, ratio = f"{batch / ours_med:.0f} img/s", f"{batch / theirs_med:.0f} img/s", theirs_med / ours_med
        print(f"{name:15} {peer:22} {batch:5d} {a:>15} {b:>15} {ratio:11.2f}x {note}")
    order = "random" if args.check_fairness else "interleaved"
    pause = "no pause" if args.no_pause else "process quiesced between blocks"
    print(f"(medians of {args.rounds} {order} rounds, blocks of 10 calls for batch 1; {pause}; "
          "tinyeff/peer > 1 means tinyeff is faster)")
    if FAIRNESS:
        print(f"\nFAIRNESS {'side':22} {'after itself':>13} {'after another':>14} {'ratio':>7}  blocks")
        for side, own, other, n_own, n_other in FAIRNESS:
            print(f"FAIRNESS {side:22} {1e3 * own:10.2f} ms {1e3 * other:11.2f} ms {other / own:6.2f}x  "
                  f"{n_own}/{n_other} calls")
        print("(ratio = a side's median call time after another side's block / after its own block; "
              "1.00x means the other side leaves no trace)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--isa", choices=("native", "avx2"), default="native")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(FIGURES)}")
    parser.add_argument("--omp-wait-policy", choices=("passive", "active", "unset"), default="passive",
                        help="OMP_WAIT_POLICY of the one libgomp both sides share (unset: PyTorch's copy "
                             "loads first and spins; see the module docstring)")
    parser.add_argument("--no-pause", action="store_true",
                        help="start each block at once, without waiting for the previous side's idle "
                             "threads to sleep (to see what the pause removes)")
    parser.add_argument("--check-fairness", action="store_true",
                        help="blocks in random order; report each side after itself vs after another side")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [f for f in args.only.split(",") if f and f not in FIGURES]
    if unknown or args.threads < 1 or args.rounds < 1:
        parser.error(f"--only names one of {FIGURES} (got {unknown}); --threads and --rounds >= 1")
    if args.child:
        return run(args)
    env = dict(os.environ, **CAPS.get(args.isa, {}))
    env.update(OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads))
    env.pop("OMP_WAIT_POLICY", None)
    if args.omp_wait_policy != "unset":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")     # this checkout's tinyeff
    return rerun_in_child(__file__, argv, env)


if __name__ == "__main__":
    sys.exit(main())
