"""Conv lowering per layer and pass: direct kernels vs im2col + BLAS, and what tinyeff picks.

For every groups == 1 convolution of the seed CNN (batch 64), ResNet-20 (batch 128) and MobileNet
(batch 64; its depthwise convolutions have their own path), all at 3x32x32, and for each pass
(forward, input gradient, weight gradient) at the geometry ops/conv.py runs it (``op_passes``), this asks kernels/conv/lowering.py for its choice as a new
user would get it (``TINYEFF_LOWERING=measure``, an empty cache directory), then times both
lowerings again, interleaved, best of 5 each, and prints one table row: direct ms, im2col + BLAS ms,
the choice and its time over im2col + BLAS's (the median over rounds of the back-to-back ratio,
as lowering.measure computes it; the claim "no lowering is slower than im2col + BLAS" is that
last column staying at or under 1.0, up to the noise of a shared machine). Both lowerings'
results are checked against each other, so a fast wrong answer cannot pass.
Run: OMP_NUM_THREADS=2 python -m pytest bench/bench_lowering.py -s --benchmark-json=out.json
(with TINYEFF_CPU_FEATURES=avx2,fma OPENBLAS_CORETYPE=Haswell for the AVX2 path).
"""
import time

import numpy as np
import pytest

from tinyeff import Tensor, kernels, models, nn, no_grad
from tinyeff.kernels import registry
from tinyeff.kernels.conv import lowering
from tinyeff.ops import conv as conv_op

MODELS = {"seed-cnn": ("seed-cnn", {"in_channels": 3, "num_classes": 10, "input_size": 32}, 64),
          "resnet20": ("resnet20", {"in_channels": 3, "num_classes": 10}, 128),
          "mobilenet": ("mobilenet", {"in_channels": 3, "num_classes": 10}, 64)}


def conv_geometries(name, kwargs, batch):
    """(N, C, H, W, OC, KH, KW, stride, padding, dilation) of each groups == 1 conv, in order, once."""
    model = models.create(name, **kwargs)
    found = []

    def record(layer, inputs):
        if layer.groups == 1:
            geometry = (*inputs[0].shape, layer.out_channels, layer.kernel_size, layer.kernel_size,
                        layer.stride, layer.padding, layer.dilation)
            if geometry not in found:
                found.append(geometry)
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            layer.register_forward_pre_hook(record)
    model.eval()
    with no_grad():
        model(Tensor(np.zeros((batch, 3, 32, 32), np.float32)))
    return found


def op_passes(geometry):
    """The (pass, geometry) pairs ops/conv.py's ``_conv_dense`` asks the lowering for, which are not
    always the layer's own: a strided 1x1 convolution runs all three passes at stride 1 on its input's
    subsample, and a padded stride-1 convolution runs its forward pass and weight gradient unpadded
    on the input padded once (its input gradient keeps the layer's geometry)."""
    n, c, h, w, oc, kh, kw, stride, padding, dilation = geometry
    if kh == kw == 1 and padding == 0 and stride > 1:
        sub = (n, c, -(-h // stride), -(-w // stride), oc, 1, 1, 1, 0, 1)
        return [(pass_name, sub) for pass_name in lowering.PASSES]
    if stride == 1 and padding > 0:
        padded = (n, c, h + 2 * padding, w + 2 * padding, oc, kh, kw, 1, 0, dilation)
        return [("forward", padded), ("input_grad", geometry), ("weight_grad", padded)]
    return [(pass_name, geometry) for pass_name in lowering.PASSES]


def test_lowering_table(benchmark, machine_info, monkeypatch, tmp_path):
    if not kernels.available("conv2d_f32", "c"):
        pytest.skip(kernels.why_unavailable("conv2d_f32", "c"))
    monkeypatch.setenv("TINYEFF_LOWERING", "measure")
    monkeypatch.setenv("TINYEFF_CACHE_DIR", str(tmp_path))
    lowering._measured.cache_clear()
    rows = []

    def table():
        for label, (name, kwargs, batch) in MODELS.items():
            for layer_geometry in conv_geometries(name, kwargs, batch):
                for pass_name, geometry in op_passes(layer_geometry):
                    choice = lowering.choose(pass_name, geometry, conv_op.pass_on_random_data)
                    run = conv_op.pass_on_random_data(pass_name, geometry, seed=1)
                    row = {"model": label, "geometry": geometry, "pass": pass_name,
                           "choice": choice, "direct_ms": float("nan"), "choice_over_gemm": 1.0}
                    if lowering.direct_applies(pass_name, geometry):
                        np.testing.assert_allclose(run("direct"), run("gemm"), rtol=1e-3, atol=1e-2)
                        again = lowering.measure(run, repeats=7)
                        row.update(direct_ms=1e3 * again["direct_s"], gemm_ms=1e3 * again["gemm_s"])
                        if choice == "direct":
                            row["choice_over_gemm"] = again["direct_over_gemm"]
                    else:
                        t0 = time.perf_counter()
                        run("gemm")
                        row["gemm_ms"] = 1e3 * (time.perf_counter() - t0)
                    rows.append(row)

    benchmark.group = "conv lowering per layer and pass"
    benchmark.extra_info.update(machine_info, isa=registry.best_isa("conv2d_f32"))
    benchmark.pedantic(table, rounds=1, warmup_rounds=0)
    benchmark.extra_info["rows"] = rows
    print(f"\nconv lowering, ISA path {registry.best_isa('conv2d_f32')}, C threads "
          f"{machine_info.get('c_threads')}; geometry = N,C,H,W,OC,KH,KW,stride,padding,dilation")
    print(f"{'model':10} {'geometry':34} {'pass':12} {'direct ms':>9} {'gemm ms':>9} {'choice':>7} "
          f"{'choice/gemm':>11}")
    for r in rows:
        print(f"{r['model']:10} {','.join(map(str, r['geometry'])):34} {r['pass']:12} "
              f"{r['direct_ms']:9.2f} {r['gemm_ms']:9.2f} {r['choice']:>7} {r['choice_over_gemm']:11.2f}")
    worst = max(r["choice_over_gemm"] for r in rows)
    print(f"rows {len(rows)}; choice slower than im2col + BLAS by > 10%: "
          f"{sum(r['choice_over_gemm'] > 1.1 for r in rows)}; worst choice/gemm {worst:.2f}")
    lowering._measured.cache_clear()
