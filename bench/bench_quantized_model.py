"""End-to-end int8 inference against tinyeff's float32 model of the same network, side by side in one run.

Groups (batch 256, Fashion-MNIST-shaped input 1x28x28):
  seed-cnn:  float32 | int8 (static, per-channel) | int8-pruned90 (90% global magnitude pruning,
             then static int8; layers >= 50% sparse run through the sparse int8 kernels)
  resnet20:  float32 | int8 (BN folded, residual adds in the integer domain)
``extra_info`` carries the model-file sizes (float32 vs int8, real files written to a temp dir),
the in-memory bytes, and thread counts. Weights are freshly initialized and calibrated on the
batch itself: speed and size do not depend on training; accuracy is measured by
``tinyeff quantize`` and ``scripts/quant_accuracy.py``.

    pytest bench/bench_quantized_model.py --benchmark-json=quant.json   (pytest-benchmark)
    python bench/bench_quantized_model.py                               (quick side-by-side table)
"""
import os
import tempfile
import time

import numpy as np
import pytest

from tinyeff import Tensor, io, models, no_grad
from tinyeff.quant import quantize_static, save_quantized

BATCH = 256


def _float(name):
    kwargs = {"in_channels": 1, "num_classes": 10}
    if name == "seed-cnn":
        kwargs["input_size"] = 28
    return models.create(name, **kwargs).eval()


def variants(name, rng):
    """dict variant -> (model, file_bytes, memory_bytes), and the float32 input batch."""
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    images = np.clip(x * 64 + 128, 0, 255).astype(np.uint8)      # calibration images (preprocess: /255)
    model = _float(name)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["float32"] = (model, io.save(model, os.path.join(tmp, "f.npz")),
                          sum(p.data.nbytes for p in model.parameters()))
        q = quantize_static(model, images, num_images=BATCH)
        out["int8"] = (q, save_quantized(q, os.path.join(tmp, "q.npz")), q.nbytes())
        if name == "seed-cnn":
            from tinyeff.compress import prune
            pruned = prune(_float(name), 0.9, "global")
            qp = quantize_static(pruned, images, num_images=BATCH)
            out["int8-pruned90"] = (qp, save_quantized(qp, os.path.join(tmp, "p.npz")), qp.nbytes())
    return out, x


def _forward(model, x):
    with no_grad():
        return model(Tensor(x)).data


@pytest.fixture(scope="module", params=["seed-cnn", "resnet20"])
def group(request):
    return request.param, variants(request.param, np.random.default_rng(1234))


@pytest.mark.parametrize("variant", ["float32", "int8", "int8-pruned90"])
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


def main(repeats=7):
    rng = np.random.default_rng(1234)
    print(f"{'model':<10}{'variant':<15}{'median s':>10}{'speedup':>9}{'file bytes':>12}{'size x':>8}{'memory':>10}")
    for name in ("seed-cnn", "resnet20"):
        table, x = variants(name, rng)
        times = {}
        for _ in range(repeats):                                  # interleave variants: same CPU conditions
            for variant, (model, _, _) in table.items():
                if variant not in times:
                    _forward(model, x)
                    times[variant] = []
                t0 = time.perf_counter()
                _forward(model, x)
                times[variant].append(time.perf_counter() - t0)
        base_t, base_f = np.median(times["float32"]), table["float32"][1]
        for variant, (_, file_bytes, memory_bytes) in table.items():
            t = np.median(times[variant])
            print(f"{name:<10}{variant:<15}{t:>10.4f}{base_t / t:>8.2f}x{file_bytes:>12}"
                  f"{base_f / file_bytes:>7.2f}x{memory_bytes:>10}")


if __name__ == "__main__":
    main()
