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
    python bench/bench_pruned_model.py --per-isa [--paths avx2,avx512] (seed CNN per ISA path + PyTorch)

``--per-isa`` (also ``--threads 1``) runs one child process per ISA path, each with its caps set before anything is imported:
tinyeff through TINYEFF_CPU_FEATURES (plus OPENBLAS_CORETYPE / NUMBA_CPU_NAME for NumPy and Numba),
PyTorch through ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and MKL_ENABLE_INSTRUCTIONS. Inside a child
the tinyeff variants and PyTorch's dense fp32 seed CNN (same weights as the dense model, output
checked) and ONNX Runtime's (exported from it; ORT has no ISA cap; with its spinning thread pool, the
default, and without: ort-nospin) are timed interleaved, same thread count, and the table gives img/s
and the ratios, with the median of the in-round ratios; so are the pruned model's two int8 versions
(sparse int8 kernels where ``convert`` picks them, and dense): the int8-sparse row's "vs dense" is
sparse int8 / dense int8 speed on that path (avx512 = this CPU's widest, VNNI where it has it).
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


# ---- per ISA path, against PyTorch dense fp32 --------------------------------------------------
# The caps of each path: tinyeff's, and the matching ones for PyTorch (oneDNN, ATen, MKL). None:
# leave that framework uncapped (the widest path of this CPU).
ISA_CAPS = {
    "portable": ({"TINYEFF_CPU_FEATURES": ""}, None),
    "avx2": ({"TINYEFF_CPU_FEATURES": "avx2,fma", "OPENBLAS_CORETYPE": "Haswell", "NUMBA_CPU_NAME": "haswell"},
             {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
    "avx512": ({}, {}),
}


def _torch_twin(torch, dense):
    """PyTorch's seed CNN with the tinyeff dense model's weights (NCHW, the same layer order)."""
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
    params = dict(dense.named_parameters())
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(params[name].data, dtype=np.float32)))
    return net.eval()


def _child(path, repeats, threads):
    """Time the seed CNN variants (and PyTorch, if installed) on this process's ISA path; print JSON."""
    import json

    from tinyeff.kernels import c as c_tier, cpu, registry
    c_tier.set_num_threads(threads)
    seed, x, sparsity = seed_cnn_variants(np.random.default_rng(0))
    fns = {name: (lambda m=model: _run(m, x)) for name, model in seed.items() if name != "pruned-masked"}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(threads)
        net, xt = _torch_twin(torch, seed["dense"]), torch.from_numpy(x)

        def torch_dense():
            with torch.no_grad():
                return net(xt).numpy()
        np.testing.assert_allclose(torch_dense(), _run(seed["dense"], x), rtol=1e-3, atol=1e-3)
        fns["torch-dense"] = torch_dense
        for name, spinning in (("ort-dense", True), ("ort-nospin", False)):
            ort_dense = _ort_twin(torch, net, x, threads, spinning)
            if ort_dense is not None:
                np.testing.assert_allclose(ort_dense(), _run(seed["dense"], x), rtol=1e-3, atol=1e-3)
                fns[name] = ort_dense
    np.testing.assert_allclose(_run(seed["pruned-sparse"], x), _run(seed["pruned-masked"], x), rtol=1e-4, atol=1e-4)
    int8_fns, int8_kernels = _int8_pair(seed["pruned-masked"], x)
    fns.update(int8_fns)
    times = {name: [] for name in fns}
    for _ in range(repeats):                       # interleaved: load changes hit every variant alike
        for name, fn in fns.items():
            times[name].append(_best_of_fn(fn, 2))
    print(json.dumps({
        "path": path, "tinyeff_isa": registry.best_isa("spconv_f32_csr"), "cpu_paths": cpu.usable_paths(),
        "torch_capability": torch.backends.cpu.get_cpu_capability() if torch is not None else None,
        "sparsity": sparsity, "threads": threads, "batch": BATCH,
        "best_s": {k: min(v) for k, v in times.items()}, "median_s": {k: float(np.median(v)) for k, v in times.items()},
        "paired": {f"{a}/{b}": float(np.median(np.array(times[a]) / np.array(times[b])))
                   for a, b in PAIRED if a in times},
        "sparse_layers": list(sparse_layers(seed["pruned-sparse"])), "int8_kernels": int8_kernels}))


# in-round time ratios the table reports (a / b: how many times faster b ran than a in the same round)
PAIRED = (("int8-dense", "int8-sparse"), ("ort-dense", "int8-sparse"), ("ort-nospin", "int8-sparse"),
          ("torch-dense", "int8-sparse"))


def _ort_twin(torch, net, x, threads, spinning=True):
    """ONNX Runtime's dense fp32 seed CNN (``torch.onnx.export`` of the PyTorch twin), or None without
    onnxruntime. ORT has no ISA cap: it runs its widest path on every row. ``spinning``: ORT's default,
    its pool's threads spin between runs; without it (``session.intra_op.allow_spinning`` 0) they sleep,
    which on a loaded machine can be the faster of the two, so both are timed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), "seed.onnx")
    torch.onnx.export(net, (torch.zeros(1, 1, 28, 28),), path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"x": x})[0]


def _int8_pair(pruned, x):
    """The pruned model quantized twice (same calibration): its sparse int8 kernels where
    ``quantize_static`` measured them faster (``quant/sparse_choice.py``), and the dense int8 kernels
    everywhere; identical outputs. Returns their two forward functions and the sparse one's kernels."""
    from tinyeff.quant.ptq import quantize_static
    images = np.random.default_rng(1).integers(0, 256, (BATCH,) + x.shape[1:], dtype=np.uint8)
    sparse = quantize_static(copy.deepcopy(pruned), images, num_images=BATCH, sparse=None)
    dense = quantize_static(copy.deepcopy(pruned), images, num_images=BATCH, sparse=False)
    q = sparse.quantize_input(x)
    np.testing.assert_array_equal(sparse.forward_int(q), dense.forward_int(q))
    kinds = [f"{type(m).__name__[1:]}{'(sparse)' if m.sparse else ''}" for m in sparse.body.layers
             if hasattr(m, "sparse")]            # what sparse_choice kept, as measured at quantization
    return {"int8-dense": lambda: dense.forward_int(q), "int8-sparse": lambda: sparse.forward_int(q)}, kinds


def _best_of_fn(fn, n):
    fn()
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def per_isa(paths, repeats=7, threads=2):
    """One child process per ISA path (caps set before import); print img/s and the speed ratios."""
    import json
    import subprocess
    import sys
    print(f"seed CNN 1x28x28, batch {BATCH}, {threads} threads, interleaved best-of; machine may be shared")
    print("  vs dense: against dense-best (fp32 rows) or int8-dense (int8 rows), best and median times; "
          "vs torch / vs ORT: against their dense fp32 model (ORT uncapped), medians")
    print(f"  {'path':<9}{'variant':<15}{'best img/s':>11}{'median img/s':>14}{'vs dense':>10}{'(median)':>10}"
          f"{'vs torch':>10}{'vs ORT':>10}")
    for path in paths:
        tinyeff_caps, torch_caps = ISA_CAPS[path]
        env = dict(os.environ, **tinyeff_caps, **(torch_caps or {}))
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # this checkout's tinyeff
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        if torch_caps is None:
            env["TINYEFF_BENCH_NO_TORCH"] = "1"
        out = subprocess.run([sys.executable, __file__, "--child", path, "--repeats", str(repeats),
                              "--threads", str(threads)], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"  {path}: child failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        best, med = r["best_s"], r["median_s"]
        for name in best:
            base = "int8-dense" if name.startswith("int8") else "dense-best"
            vs_dense, vs_dense_med = best[base] / best[name], med[base] / med[name]
            peers = "".join(f"{med[peer] / med[name]:>9.2f}x" if peer in med else f"{'-':>10}"
                            for peer in ("torch-dense", "ort-dense"))
            print(f"  {path:<9}{name:<15}{BATCH / best[name]:>11,.0f}{BATCH / med[name]:>14,.0f}"
                  f"{vs_dense:>9.2f}x{vs_dense_med:>9.2f}x{peers}")
        # the same round's two times share the machine's load: their ratio is the steadiest figure
        print(f"  {'':<9}median over rounds of the in-round time ratio: "
              + ", ".join(f"{k} {v:.2f}x" for k, v in r["paired"].items()))
        print(f"  {'':<9}(tinyeff path {r['tinyeff_isa']}, PyTorch {r['torch_capability']}, "
              f"{r['sparsity']:.1%} sparsity, sparse layers: {', '.join(r['sparse_layers'])})")
        print(f"  {'':<9}(int8-sparse layers: {', '.join(r['int8_kernels'])})")


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-isa", action="store_true", help="seed CNN per ISA path against PyTorch")
    parser.add_argument("--paths", default="avx2,avx512", help="comma-separated ISA paths for --per-isa")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        if os.environ.get("TINYEFF_BENCH_NO_TORCH"):
            import sys
            sys.modules["torch"] = None              # this path has no PyTorch counterpart cap
        _child(args.child, args.repeats, args.threads)
    elif args.per_isa:
        per_isa(args.paths.split(","), args.repeats, args.threads)
    else:
        main()
