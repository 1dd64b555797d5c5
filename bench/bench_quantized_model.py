"""End-to-end int8 inference against tinyeff's float32 model of the same network, side by side in one run.

Groups (batch 256, Fashion-MNIST-shaped input 1x28x28; ``--input cifar``: 3x32x32):
  seed-cnn:  float32 | int8 (static, per-channel) | int8-w7 (the same with 7-bit weights,
             ``--weight-bits 7``: AVX2's vpmaddubsw tile on every layer) | int8-pruned90 (90% global
             magnitude pruning, then static int8; layers >= 50% sparse run the sparse int8 kernels)
  resnet20:  float32 | int8 (BN folded, residual adds in the integer domain)
``extra_info`` carries the model-file sizes (float32 vs int8, real files written to a temp dir),
the in-memory bytes, and thread counts. Weights are freshly initialized and calibrated on the
batch itself: speed and size do not depend on training; accuracy is measured by
``tinyeff quantize`` and ``scripts/quant_accuracy.py``.

    pytest bench/bench_quantized_model.py --benchmark-json=quant.json   (pytest-benchmark)
    python bench/bench_quantized_model.py [--threads 1 2] [--repeats 31] [--models seed-cnn] [--input cifar]
        [--cpu-time]
        side-by-side table per thread count (variants interleaved in every repeat, medians), then
        each integer model's time per layer, in the layout and fusion its forward uses (residual
        blocks split into conv1, conv2, shortcut and add); for the seed CNN's convs and linears also
        GMAC/s and the percentage of the int8 peak (kernels/peak.py: a register-only loop of the
        int8 tile's step on the same ISA path and thread count; on AVX2 against both the
        vpmaddubsw pair step's peak and the quad step's, which 7-bit activations reach where
        ``quads_fit`` allows, with the share of group pairs it allows)
The int8 kernels' ISA path follows the CPU, capped by TINYEFF_CPU_FEATURES (``=avx2,fma``: the AVX2
path on an AVX-512 machine); the script prints the path it ran.
"""
import argparse
import os
import tempfile
import time

import numpy as np
import pytest

from tinyeff import Tensor, io, models, no_grad
from tinyeff.kernels import c as c_kernels
from tinyeff.kernels import cpu, peak
from tinyeff.quant import qmodules as qm
from tinyeff.quant import quantize_static, save_quantized

BATCH = 256
INPUTS = {"fmnist": (1, 28), "cifar": (3, 32)}                   # (C, H = W)


def _float(name, channels=1, size=28):
    kwargs = {"in_channels": channels, "num_classes": 10}
    if name == "seed-cnn":
        kwargs["input_size"] = size
    return models.create(name, **kwargs).eval()


def variants(name, rng, channels=1, size=28):
    """dict variant -> (model, file_bytes, memory_bytes), and the float32 input batch."""
    x = rng.standard_normal((BATCH, channels, size, size)).astype(np.float32)
    images = np.clip(x * 64 + 128, 0, 255).astype(np.uint8)      # calibration images (preprocess: /255)
    model = _float(name, channels, size)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["float32"] = (model, io.save(model, os.path.join(tmp, "f.npz")),
                          sum(p.data.nbytes for p in model.parameters()))
        q = quantize_static(model, images, num_images=BATCH)
        out["int8"] = (q, save_quantized(q, os.path.join(tmp, "q.npz")), q.nbytes())
        if name == "seed-cnn":
            q7 = quantize_static(model, images, num_images=BATCH, weight_bits=7)
            out["int8-w7"] = (q7, save_quantized(q7, os.path.join(tmp, "q7.npz")), q7.nbytes())
            from tinyeff.compress import prune
            pruned = prune(_float(name, channels, size), 0.9, "global")
            qp = quantize_static(pruned, images, num_images=BATCH)
            out["int8-pruned90"] = (qp, save_quantized(qp, os.path.join(tmp, "p.npz")), qp.nbytes())
    return out, x


def _forward(model, x):
    with no_grad():
        return model(Tensor(x)).data


@pytest.fixture(scope="module", params=["seed-cnn", "resnet20"])
def group(request):
    return request.param, variants(request.param, np.random.default_rng(1234))


@pytest.mark.parametrize("variant", ["float32", "int8", "int8-w7", "int8-pruned90"])
def test_quantized_model_batch256(benchmark, group, variant, machine_info):
    name, (table, x) = group
    if variant not in table:
        pytest.skip(f"{variant} is measured for the seed CNN only")
    model, file_bytes, memory_bytes = table[variant]
    _forward(model, x)                                            # warm-up: packing, JIT, caches
    benchmark.group = f"{name} batch {BATCH}"
    benchmark.extra_info.update(machine_info, variant=variant, file_bytes=file_bytes, memory_bytes=memory_bytes,
                                float_file_bytes=table["float32"][1])
    out = benchmark(_forward, model, x)
    assert out.shape == (BATCH, 10) and np.isfinite(out).all()  # a fast wrong answer is not a result


def side_by_side(name, table, x, repeats):
    """Median seconds per variant; every repeat runs every variant once (same CPU conditions)."""
    times = {variant: [] for variant in table}
    for model, _, _ in table.values():
        _forward(model, x)                                        # warm-up
    for _ in range(repeats):
        for variant, (model, _, _) in table.items():
            t0 = time.perf_counter()
            _forward(model, x)
            times[variant].append(time.perf_counter() - t0)
    return {variant: float(np.median(t)) for variant, t in times.items()}


def _block_steps(block, label):
    """A residual block as four steps on (block input, running value) pairs."""
    steps = [(label + " conv1", lambda q, b=block: (q, b.conv1.forward_nhwc(q))),
             (label + " conv2", lambda s, b=block: (s[0], b.conv2.forward_nhwc(s[1])))]
    if block.add is None:
        return steps + [(label + " (no shortcut)", lambda s: s[1])]
    skip = (lambda s: s) if block.shortcut is None else \
        (lambda s, b=block: (b.shortcut.forward_nhwc(s[0]), s[1]))
    kind = "identity" if block.shortcut is None else "1x1 conv"
    return steps + [(f"{label} shortcut ({kind})", skip),
                    (label + " add", lambda s, b=block: b.add.forward_nhwc(s[1], s[0]))]


def _sequence_steps(seq, prefix):
    steps, layers, i = [], seq.layers, 0
    while i < len(layers):
        layer, label = layers[i], f"{prefix}{i} {type(layers[i]).__name__}"
        i += 1
        if isinstance(layer, qm.QSequential):
            steps += _sequence_steps(layer, f"{prefix}{i - 1}.")
        elif isinstance(layer, qm.QBasicBlock):
            steps += _block_steps(layer, f"{prefix}{i - 1} block")
        elif isinstance(layer, qm.QConv2d) and i < len(layers) and layer.can_fuse_pool(layers[i]):
            steps.append((label + " + QMaxPool2d (fused)", lambda q, layer=layer: layer.forward_nhwc(q, pool=2),
                          lambda q, layer=layer: _macs(layer, q, pool=2)))
            i += 1
        else:
            steps.append((label, lambda q, layer=layer: layer.forward_nhwc(q) if q.ndim == 4 and layer.nhwc
                          else layer.forward(q), lambda q, layer=layer: _macs(layer, q)))
    return steps


def _macs(layer, q, pool=1):
    """(multiply-adds the layer's integer kernel does on input q, the share of group pairs where
    AVX2 may take the quad step), or None for a layer without a dense int8 GEMM. A fused pool's
    dropped rows are not computed."""
    if not isinstance(layer, (qm.QConv2d, qm.QLinear)) or layer.sparse:
        return None
    oc, k = layer.weight_q.shape[0], layer.weight_q[0].size
    if isinstance(layer, qm.QLinear):
        rows = q.shape[0]
    else:
        oh, ow = layer._out_hw(q.shape[1], q.shape[2])
        rows = q.shape[0] * (oh // pool * pool) * (ow // pool * pool)
    quads = layer.packed.quads_fit[:, :-1]
    return rows * oc * k, float(quads.mean()) if quads.size and int(q.max()) <= 127 else 0.0


def layer_steps(qmodel):
    """(label, fn) per step of the integer forward, with the NHWC layout and conv+pool fusion it uses."""
    steps = [("quantize input (NHWC)", lambda x: qmodel.quantize_input(x, nhwc=True))]   # what forward runs
    steps += _sequence_steps(qmodel.body, "")
    steps.append(("dequantize output", qmodel.dequantize_output))
    return [step if len(step) == 3 else (*step, lambda q: None) for step in steps]


def per_layer(qmodel, x, repeats, cpu_time=False):
    """(label, milliseconds, (MACs, quad share) or None) per step of ``layer_steps``: the median wall
    time, or with ``cpu_time`` the least CPU time of the calling thread (time.thread_time: blind to
    the time other jobs hold the core, so meaningful with one C thread only)."""
    steps = layer_steps(qmodel)
    times, work = [[] for _ in steps], [None] * len(steps)
    clock = time.thread_time if cpu_time else time.perf_counter
    for _ in range(repeats + 1):                                   # the first pass is a warm-up
        value = x
        for j, (_, fn, macs) in enumerate(steps):
            work[j] = macs(value)
            t0 = clock()
            value = fn(value)
            times[j].append(clock() - t0)
    pick = np.min if cpu_time else np.median
    return [(label, 1e3 * float(pick(t[1:])), w) for (label, _, _), t, w in zip(steps, times, work)]


def int8_peaks():
    """GMAC/s of the int8 tile's step on the ISA path in use, at the current thread count:
    {False: the pair (or only) step, True: AVX2's quad step, where the path has one}."""
    isa = cpu.best_path()
    peaks = {False: peak.int8_peak_gmacs(isa)}
    if isa in ("avx2", "avx512"):
        peaks[True] = peak.int8_peak_gmacs(isa, quad=True)
    return isa, peaks


def print_layers(rows, peaks):
    for label, ms, work in rows:
        line = f"  {label:<40}{ms:>8.3f} ms"
        if work is not None:
            macs, quads = work
            gmacs = macs / ms / 1e6
            line += f"{gmacs:>8.1f} GMAC/s {100 * gmacs / peaks[False]:>5.1f}% of step peak"
            if True in peaks:
                line += f", {100 * gmacs / peaks[True]:>5.1f}% of quad peak ({100 * quads:.0f}% quad pairs)"
        print(line)
    print(f"  {'sum':<40}{sum(ms for _, ms, _ in rows):>8.3f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[c_kernels.num_threads()])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--models", nargs="+", default=["seed-cnn", "resnet20"])
    parser.add_argument("--input", default="fmnist", choices=list(INPUTS), help="fmnist: 1x28x28, cifar: 3x32x32")
    parser.add_argument("--cpu-time", action="store_true",
                        help="per-layer table: least CPU time of the calling thread, not median wall time "
                             "(robust on a shared machine; use with --threads 1)")
    args = parser.parse_args(argv)
    from tinyeff.kernels.int8_gemm import c as c_int8
    print(f"{c_int8.code_path()}; TINYEFF_CPU_FEATURES={os.environ.get('TINYEFF_CPU_FEATURES', '(unset)')}")
    rng = np.random.default_rng(1234)
    tables = {name: variants(name, rng, *INPUTS[args.input]) for name in args.models}
    for threads in args.threads:
        c_kernels.set_num_threads(threads)
        print(f"\nbatch {BATCH}, {threads} thread(s), median of {args.repeats} interleaved repeats")
        print(f"{'model':<10}{'variant':<15}{'median s':>10}{'speedup':>9}{'file bytes':>12}{'size x':>8}{'memory':>10}")
        for name, (table, x) in tables.items():
            medians = side_by_side(name, table, x, args.repeats)
            base_t, base_f = medians["float32"], table["float32"][1]
            for variant, (_, file_bytes, memory_bytes) in table.items():
                t = medians[variant]
                print(f"{name:<10}{variant:<15}{t:>10.4f}{base_t / t:>8.2f}x{file_bytes:>12}"
                      f"{base_f / file_bytes:>7.2f}x{memory_bytes:>10}")
        isa, peaks = int8_peaks()
        print("int8 peak (%s, %d thread(s), best of 20 runs): %s GMAC/s" % (
            isa, threads, ", ".join(f"{'quad' if q else 'step'} {v:.1f}" for q, v in peaks.items())))
        for name, (table, x) in tables.items():
            for variant in ("int8", "int8-w7"):
                if variant not in table:
                    continue
                clock = "least thread CPU time" if args.cpu_time else "median wall time"
                print(f"{name} {variant}, per layer ({threads} thread(s), {clock}):")
                print_layers(per_layer(table[variant][0], x, args.repeats, args.cpu_time), peaks)


if __name__ == "__main__":
    main()
