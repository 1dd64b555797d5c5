"""tinyeff's integer seed CNN against PyTorch's int8 CPU backends, side by side in one run (issue 4).

Two questions, each answered as a speed ratio tinyeff / torch (>= 1.0: tinyeff is at least as fast):

1. Per conv layer at batch 64, Fashion-MNIST geometry (1x28x28: conv1 1->32 on 28x28, conv2 32->64
   on 13x13, conv3 64->64 on 5x5) and CIFAR geometry (3x32x32: 3->32 on 32x32, 32->64 on 15x15,
   64->64 on 6x6), all 3x3 valid. tinyeff runs the ``QConv2d`` objects of a model quantized with
   ``quantize_static``, fed the uint8 NHWC activation the integer model feeds them (the batch is
   pushed through the earlier layers), uint8 in -> uint8 out with requantization and ReLU. PyTorch
   runs ``torch.ops.quantized.conv2d_relu`` (what ``torch.ao.nn.intrinsic.quantized.ConvReLU2d``
   calls) with the *same* int8 codes, per-channel weight scales, bias and output (scale, zero
   point), quint8 activations in channels_last, once prepacked by the x86 engine (it dispatches to
   oneDNN for this case) and once by fbgemm. Outputs are checked to agree within 1 code (the two
   requantizations round differently). Two modes:
     - ``conv+relu``: exactly the same work on both sides;
     - ``conv+relu+pool``: what the integer model really runs for conv1 and conv2, a conv whose GEMM
       max-pools its int32 sums before requantizing (2x2 / stride 2), against PyTorch's
       conv2d_relu followed by its quantized max_pool2d (channels_last fast path).
   GOP/s is 2 * MACs of the full conv / time in both modes (the fused pool skips the conv rows a
   floor-mode pool drops, so its GOP/s is "effective").
2. The whole int8 seed CNN at batch 256, float32 input -> float32 logits on both sides: tinyeff's
   ``QuantizedModel`` against PyTorch's ``torch.ao.quantization`` prepare/convert model (eager mode,
   QuantStub/DeQuantStub, conv+ReLU and linear+ReLU fused, min-max activations and per-channel
   symmetric weights like tinyeff's, the same float weights, calibrated on the same batch),
   channels_last input. PyTorch gets its input already in channels_last (converted outside the
   timing); tinyeff takes NCHW and transposes inside its forward.

Weights are freshly initialized and calibrated on random images: speed does not depend on training.
``--torch-qconfig default`` gives PyTorch its engine's default qconfig instead (x86/fbgemm: histogram
observer with ``reduce_range``, 7-bit activations, so its AVX2 vpmaddubsw kernels cannot saturate),
the fair setting on a CPU without VNNI. ``--weight-bits 7`` quantizes tinyeff's weights to 7 bits;
``--activation-bits`` (default 7, quantize_static's default, the same reduce_range) sets its
activations: with 7 bits AVX2's vpmaddubsw tile runs every layer whatever the weights. ``--isa avx2`` caps both sides to AVX2 before torch is
imported: TINYEFF_CPU_FEATURES=avx2,fma, and for PyTorch ATEN_CPU_CAPABILITY=avx2,
ONEDNN_MAX_CPU_ISA=AVX2, MKL_ENABLE_INSTRUCTIONS=AVX2 and FBGEMM_ENABLE_INSTRUCTIONS=AVX2 (fbgemm
ignores the others and would otherwise run its AVX-512 VNNI kernels).
Both libraries' OpenMP pools are the same libgomp (one soname, loaded once), so interleaving the
frameworks does not leave a second pool spinning on the cores.

    pytest bench/bench_int8_vs_torch.py --benchmark-json=vs_torch.json     (pytest-benchmark)
        extra_info: framework, engine, threads, ops, gops, images_per_s, and speed_ratio_vs_x86 /
        speed_ratio_vs_fbgemm (tinyeff / torch) from an interleaved measurement inside the same test
    python bench/bench_int8_vs_torch.py [--threads 1 2] [--repeats 21] [--isa avx2] [--torch-qconfig default]
                                        [--weight-bits 7] [--activation-bits 8] [--models-only]
        side-by-side tables per thread count (frameworks interleaved in every repeat, medians)
Torch cases are skipped with the reason when torch is not importable (pip install torch).
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np
import pytest

from tinyeff import Tensor, models, no_grad
from tinyeff.kernels import c as c_kernels
from tinyeff.kernels import cpu
from tinyeff.quant import qmodules as qm
from tinyeff.quant import quantize_static

LAYER_BATCH, MODEL_BATCH = 64, 256
GEOMETRIES = {"fmnist": (1, 28), "cifar": (3, 32)}          # input (C, H = W)
ENGINES = ("x86", "fbgemm")
FRAMEWORKS = ("tinyeff",) + tuple(f"torch-{e}" for e in ENGINES)
THREADS = sorted({1, min(2, os.cpu_count() or 1)})
MIN_SAMPLE_S = 2e-3          # a timed sample repeats a call until it lasts about this long (timer noise)
ISA_CAPS = {"avx2": {"TINYEFF_CPU_FEATURES": "avx2,fma", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                     "MKL_ENABLE_INSTRUCTIONS": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}}


def import_torch():
    """(torch, None), or (None, reason) when torch is missing or broken."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001  (ImportError, or a broken install raising OSError)
        return None, f"torch is optional and not usable here ({exc}); pip install torch"
    return torch, None


def _torch_or_skip():
    torch, reason = import_torch()
    if torch is None:
        pytest.skip(reason)
    return torch


# ---------------------------------------------------------------- models and layers, both frameworks

def seed_cnn_int8(geometry, batch, rng, weight_bits=8, activation_bits=7):
    """(float seed CNN, its tinyeff int8 model calibrated on the batch, float32 batch (N, C, H, W) in [0, 1])."""
    c, side = GEOMETRIES[geometry]
    images = rng.integers(0, 256, (batch, c, side, side), dtype=np.uint8)
    model = models.create("seed-cnn", in_channels=c, num_classes=10, input_size=side).eval()
    qmodel = quantize_static(model, images, num_images=batch, weight_bits=weight_bits,
                             activation_bits=activation_bits)
    return model, qmodel, images.astype(np.float32) / np.float32(255)      # scale_01, the default preprocess


def conv_cases(qmodel, x):
    """[(name, QConv2d, uint8 NHWC input, pool)] per conv, each fed what the integer model feeds it."""
    q = qm.to_nhwc(qmodel.quantize_input(x))                                 # (N, H, W, C) uint8
    layers, cases = qmodel.body.layers, []
    for i, layer in enumerate(layers):
        if isinstance(layer, qm.QConv2d):
            pool = 2 if i + 1 < len(layers) and layer.can_fuse_pool(layers[i + 1]) else 1
            cases.append((f"conv{len(cases) + 1}", layer, q, pool))
            q = layer.forward_nhwc(q, pool=pool)
    return cases


def conv_macs(layer, q):
    n, h, w, c = q.shape
    oc, _, kh, kw = layer.weight_q.shape
    return n * (h - kh + 1) * (w - kw + 1) * oc * c * kh * kw               # valid, stride 1 (seed CNN)


def torch_conv(torch, layer, engine, pool):
    """PyTorch's int8 conv+ReLU (+ max-pool) with tinyeff's int8 codes, scales and bias, prepacked by ``engine``."""
    if not (layer.relu and layer.stride == 1 and layer.padding == 0 and not layer.sparse):
        raise ValueError("torch_conv: expects the seed CNN's dense 3x3 valid conv with fused ReLU")
    torch.backends.quantized.engine = engine
    oc = layer.weight_q.shape[0]
    w = torch._make_per_channel_quantized_tensor(torch.from_numpy(layer.weight_q),
                                                 torch.from_numpy(layer.weight_scale.astype(np.float64)),
                                                 torch.zeros(oc, dtype=torch.int64), 0)
    bias = torch.from_numpy((layer.bias_q * layer.acc_scale).astype(np.float32))   # float, as torch stores it
    packed = torch.ops.quantized.conv2d_prepack(w, bias, [1, 1], [0, 0], [1, 1], 1)
    s_out, z_out = float(layer.out_qparams[0]), int(layer.out_qparams[1])

    def run(xq):
        y = torch.ops.quantized.conv2d_relu(xq, packed, s_out, z_out)
        return torch.nn.functional.max_pool2d(y, 2) if pool == 2 else y
    return run


def torch_qinput(torch, q_nhwc, qparams):
    """uint8 NHWC codes -> quint8 (N, C, H, W) tensor in channels_last, the same bytes."""
    x = torch.from_numpy(q_nhwc).permute(0, 3, 1, 2)                         # channels_last strides
    with warnings.catch_warnings():                            # torch's deprecation notice for quantized tensors
        warnings.simplefilter("ignore", UserWarning)
        xq = torch.quantize_per_tensor(x.float().mul(float(qparams[0])), float(qparams[0]), int(qparams[1]),
                                       torch.quint8).contiguous(memory_format=torch.channels_last)
    assert np.array_equal(xq.int_repr().permute(0, 2, 3, 1).numpy(), q_nhwc)  # codes survive the round trip
    return xq


def torch_seed_cnn(torch, model, x, engine, qconfig="minmax"):
    """PyTorch eager-mode static int8 copy of tinyeff's float ``model``, calibrated on ``x``."""
    nn, tq = torch.nn, torch.ao.quantization
    tlayers = list(model)
    body = nn.Sequential(
        nn.Conv2d(tlayers[0].weight.data.shape[1], 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(tlayers[9].weight.data.shape[1], 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        for mine, theirs in zip(tlayers, body):
            if hasattr(mine, "weight"):
                theirs.weight.copy_(torch.from_numpy(mine.weight.data))
                theirs.bias.copy_(torch.from_numpy(mine.bias.data))
    net = nn.Sequential(tq.QuantStub(), body, tq.DeQuantStub()).eval()
    tq.fuse_modules(body, [["0", "1"], ["3", "4"], ["6", "7"], ["9", "10"]], inplace=True)
    torch.backends.quantized.engine = engine
    if qconfig == "default":                                   # the engine's own (reduce_range: 7-bit activations)
        net.qconfig = tq.get_default_qconfig(engine)
    else:                                                      # tinyeff's scheme: min-max uint8, per-channel int8
        net.qconfig = tq.QConfig(
            activation=tq.MinMaxObserver.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine),
            weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    with warnings.catch_warnings():                            # torch.ao.quantization's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        tq.prepare(net, inplace=True)
        with torch.no_grad():
            net(xt)                                            # calibration
        tq.convert(net, inplace=True)
    return net, xt


# ---------------------------------------------------------------- the runnable pairs, and timing

def layer_fns(torch, layer, q, pool):
    """dict framework -> zero-argument callable returning uint8 NHWC, for one conv case."""
    fns = {"tinyeff": lambda: layer.forward_nhwc(q, pool=pool)}
    if torch is not None:
        xq = torch_qinput(torch, q, layer.in_qparams)
        for engine in ENGINES:
            run = torch_conv(torch, layer, engine, pool)
            fns[f"torch-{engine}"] = lambda run=run: run(xq).int_repr().permute(0, 2, 3, 1).numpy()
    return fns


def model_fns(torch, model, qmodel, x, qconfig="minmax"):
    """dict framework -> zero-argument callable returning float32 logits (N, 10), for the whole model."""
    def tinyeff_forward():
        with no_grad():
            return qmodel(Tensor(x)).data
    fns = {"tinyeff": tinyeff_forward}
    if torch is not None:
        for engine in ENGINES:
            net, xt = torch_seed_cnn(torch, model, x, engine, qconfig)

            def torch_forward(net=net, xt=xt):
                with torch.inference_mode():
                    return net(xt).numpy()
            fns[f"torch-{engine}"] = torch_forward
    return fns


def check_layer_outputs(fns):
    """Every framework's uint8 output within 1 code of tinyeff's (float vs fixed-point requantization)."""
    ref = fns["tinyeff"]().astype(np.int16)
    for name, fn in fns.items():
        diff = np.abs(fn().astype(np.int16) - ref)
        assert diff.max() <= 1, f"{name}: output differs from tinyeff's by up to {diff.max()} codes"


def check_model_outputs(fns, model, x):
    """Every framework's logits close to the float model's: int8 error, not a different network."""
    with no_grad():
        ref = model(Tensor(x)).data
    tol = 0.1 * np.abs(ref).max()                               # int8 error of an 8-layer net, with margin
    for name, fn in fns.items():
        err = np.abs(fn() - ref).max()
        assert err <= tol, f"{name}: logits differ from float32 by {err:.3g} (> {tol:.3g})"


def _calls_per_sample(fn):
    t0 = time.perf_counter()
    fn()
    return max(1, int(MIN_SAMPLE_S / max(time.perf_counter() - t0, 1e-7)))


def interleaved(fns, repeats):
    """Median seconds per call for each fn; every repeat runs every fn once, so they share the CPU's load."""
    calls = {name: _calls_per_sample(fn) for name, fn in fns.items()}          # also the warm-up
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / calls[name])
    return {name: float(np.median(t)) for name, t in times.items()}


def speed_ratios(medians):
    """tinyeff speed / torch speed per engine (= torch time / tinyeff time)."""
    return {f"speed_ratio_vs_{name[len('torch-'):]}": medians[name] / medians["tinyeff"]
            for name in medians if name.startswith("torch-")}


def set_threads(n, torch=None):
    c_kernels.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


# ---------------------------------------------------------------- pytest-benchmark

@pytest.fixture
def threads(request):
    """Run the test body with ``request.param`` threads in tinyeff's C tier and in torch (if importable)."""
    torch, _ = import_torch()
    before = (c_kernels.num_threads(), torch.get_num_threads() if torch is not None else None)
    set_threads(request.param, torch)
    yield request.param
    c_kernels.set_num_threads(before[0])
    if torch is not None:
        torch.set_num_threads(before[1])


@pytest.fixture(scope="module", params=list(GEOMETRIES))
def geometry(request):
    name = request.param
    _, qmodel, x = seed_cnn_int8(name, LAYER_BATCH, np.random.default_rng(1234))
    model, qmodel256, x256 = seed_cnn_int8(name, MODEL_BATCH, np.random.default_rng(1234))
    return name, conv_cases(qmodel, x), (model, qmodel256, x256)


LAYER_CASES = [(conv, mode) for conv in ("conv1", "conv2", "conv3") for mode in ("conv+relu", "conv+relu+pool")
               if not (conv == "conv3" and mode == "conv+relu+pool")]          # no pool after conv3


def _framework_fns(fns, framework):
    if framework != "tinyeff":
        _torch_or_skip()
    return fns[framework]


@pytest.mark.parametrize("threads", THREADS, indirect=True)
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("conv,mode", LAYER_CASES)
def test_int8_conv_vs_torch(benchmark, threads, machine_info, geometry, conv, mode, framework):
    name, cases, _ = geometry
    _, layer, q, pool = next(case for case in cases if case[0] == conv)
    pool = pool if mode == "conv+relu+pool" else 1
    torch, _ = import_torch()
    fns = layer_fns(torch, layer, q, pool)
    fn = _framework_fns(fns, framework)
    check_layer_outputs(fns)                                   # a fast wrong answer is not a result
    ratios = speed_ratios(interleaved(fns, repeats=11)) if torch is not None else {}
    ops = 2 * conv_macs(layer, q)
    oc, c, _, _ = layer.weight_q.shape
    benchmark.group = f"int8 {name} {conv} {c}->{oc} on {q.shape[1]}x{q.shape[2]}, batch {LAYER_BATCH}, {mode}"
    benchmark.extra_info.update(machine_info, framework=framework.split("-")[0], threads=threads, ops=ops,
                                engine=framework.split("-")[1] if "-" in framework else "c", **ratios)
    benchmark.pedantic(fn, rounds=20, iterations=_calls_per_sample(fn), warmup_rounds=1)
    if benchmark.stats is not None:                            # None under --benchmark-disable
        median = benchmark.stats.stats.median
        benchmark.extra_info.update(gops=ops / median / 1e9, images_per_s=LAYER_BATCH / median)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_int8_seed_cnn_vs_torch(benchmark, threads, machine_info, geometry, framework):
    name, _, (model, qmodel, x) = geometry
    torch, _ = import_torch()
    fns = model_fns(torch, model, qmodel, x)
    fn = _framework_fns(fns, framework)
    check_model_outputs(fns, model, x)
    ratios = speed_ratios(interleaved(fns, repeats=7)) if torch is not None else {}
    benchmark.group = f"int8 seed CNN {name}, batch {MODEL_BATCH}"
    benchmark.extra_info.update(machine_info, framework=framework.split("-")[0], threads=threads,
                                engine=framework.split("-")[1] if "-" in framework else "c", **ratios)
    benchmark.pedantic(fn, rounds=10, warmup_rounds=1)
    if benchmark.stats is not None:
        benchmark.extra_info["images_per_s"] = MODEL_BATCH / benchmark.stats.stats.median


# ---------------------------------------------------------------- script: side-by-side tables

def _row(label, medians, ops, batch):
    cells = []
    for name in FRAMEWORKS:
        if name in medians:
            t = medians[name]
            cells.append(f"{1e3 * t:>9.3f}" + (f"{ops / t / 1e9:>7.1f}" if ops else f"{batch / t:>7.0f}"))
        else:
            cells.append(f"{'-':>9}{'-':>7}")
    ratios = speed_ratios(medians)
    cells += [f"{ratios[f'speed_ratio_vs_{e}']:>11.2f}x" if f"speed_ratio_vs_{e}" in ratios else f"{'-':>12}"
              for e in ENGINES]
    return f"{label:<38}" + "".join(cells)


def _header(unit):
    head = f"{'':<38}" + "".join(f"{name:>16}" for name in FRAMEWORKS) + "".join(f"{'vs ' + e:>12}" for e in ENGINES)
    sub = f"{'':<38}" + f"{'ms':>9}{unit:>7}" * len(FRAMEWORKS) + f"{'(tinyeff speed / torch)':>24}"
    return head + "\n" + sub


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=THREADS)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--geometries", nargs="+", default=list(GEOMETRIES), choices=list(GEOMETRIES))
    parser.add_argument("--isa", choices=list(ISA_CAPS), help="cap tinyeff and PyTorch to this ISA (see above)")
    parser.add_argument("--torch-qconfig", default="minmax", choices=["minmax", "default"])
    parser.add_argument("--weight-bits", type=int, default=8, choices=[7, 8])
    parser.add_argument("--activation-bits", type=int, default=7, choices=[7, 8])
    parser.add_argument("--models-only", action="store_true", help="skip the per-layer tables")
    args = parser.parse_args(argv)
    if args.isa:
        if "torch" in sys.modules:
            raise SystemExit("--isa must be applied before torch is imported")
        os.environ.update(ISA_CAPS[args.isa])
    torch, reason = import_torch()
    if torch is None:
        print(f"NOTE: {reason}; timing tinyeff only")
    layer_sets, model_sets = [], []
    for name in args.geometries:
        _, qmodel, x = seed_cnn_int8(name, LAYER_BATCH, np.random.default_rng(1234), args.weight_bits,
                                     args.activation_bits)
        for conv, layer, q, pool in ([] if args.models_only else conv_cases(qmodel, x)):
            oc, c, _, _ = layer.weight_q.shape
            for mode_pool in sorted({1, pool}):
                fns = layer_fns(torch, layer, q, mode_pool)
                check_layer_outputs(fns)
                label = f"{name} {conv} {c}->{oc} {q.shape[1]}x{q.shape[2]}" + (" +pool" if mode_pool == 2 else "")
                layer_sets.append((label, fns, 2 * conv_macs(layer, q)))
        model, qmodel, x = seed_cnn_int8(name, MODEL_BATCH, np.random.default_rng(1234), args.weight_bits,
                                         args.activation_bits)
        fns = model_fns(torch, model, qmodel, x, args.torch_qconfig)
        check_model_outputs(fns, model, x)
        model_sets.append((f"{name} seed CNN {x.shape[1]}x{x.shape[2]}x{x.shape[3]}", fns))
    from tinyeff.kernels.int8_gemm import c as c_int8
    print(f"cpu flags: {','.join(sorted(f for f, on in cpu.features().items() if on))}; tinyeff {c_int8.code_path()}; "
          f"weight bits {args.weight_bits}, activation bits {args.activation_bits}; torch qconfig {args.torch_qconfig}; "
          f"caps: {', '.join(f'{k}={v}' for k, v in ISA_CAPS.get(args.isa, {}).items()) or 'none'}")
    if torch is not None:
        print(f"torch {torch.__version__}, quantized engines {torch.backends.quantized.supported_engines}")
    for threads in args.threads:
        set_threads(threads, torch)
        print(f"\n{threads} thread(s), median of {args.repeats} interleaved repeats")
        print(f"per conv layer, batch {LAYER_BATCH}, uint8 NHWC in -> uint8 out (requant + ReLU; +pool: the fused "
              "2x2 max-pool the integer model runs), GOP/s = 2*MACs of the full conv / time")
        print(_header("GOP/s"))
        for label, fns, ops in layer_sets:
            print(_row(label, interleaved(fns, args.repeats), ops, LAYER_BATCH))
        print(f"whole int8 seed CNN, batch {MODEL_BATCH}, float32 in -> float32 logits")
        print(_header("img/s"))
        for label, fns in model_sets:
            print(_row(label, interleaved(fns, args.repeats), None, MODEL_BATCH))


if __name__ == "__main__":
    main()
