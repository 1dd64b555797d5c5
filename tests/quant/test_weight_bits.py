"""``weight_bits=7``: weight codes in [-63, 63], so every packed panel qualifies for AVX2's vpmaddubsw
tile; recorded in the model header; the CLI flag; the same logits on every int8 GEMM path."""
import json

import numpy as np
import pytest

from tinyeff import Tensor, io, kernels, models
from tinyeff.cli import main
from tinyeff.quant import quantize_static, save_quantized
from tinyeff.quant.convert import quantize_weight


@pytest.mark.parametrize("bits,qmax", [(8, 127), (7, 63)])
def test_quantize_weight_range_and_scale(bits, qmax, rng):
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    q, scale = quantize_weight(w, per_channel=True, weight_bits=bits)
    assert q.dtype == np.int8 and np.abs(q).max() == qmax
    np.testing.assert_allclose(scale, np.abs(w).reshape(6, -1).max(axis=1) / qmax, rtol=1e-6)
    assert kernels.get("pack_s8", "ref")(np.ascontiguousarray(q.reshape(6, -1).T)).pairs_fit.all() or bits == 8


def test_quantize_weight_rejects_other_bit_widths(rng):
    with pytest.raises(ValueError, match="weight_bits=6"):
        quantize_weight(rng.standard_normal((2, 3)).astype(np.float32), weight_bits=6)


def _seed_cnn_7bit(rng):
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=28, width=0.5).eval()
    images = rng.integers(0, 256, (32, 1, 28, 28), dtype=np.uint8)
    return quantize_static(model, images, num_images=32, weight_bits=7), images


def test_weight_bits_7_recorded_in_header_and_every_panel_fits(tmp_path, rng):
    qmodel, _ = _seed_cnn_7bit(rng)
    assert qmodel.info["weight_bits"] == 7
    packed = [layer.packed for layer in qmodel.body.layers if hasattr(getattr(layer, "packed", None), "pairs_fit")]
    assert packed and all(p.pairs_fit.all() for p in packed)
    save_quantized(qmodel, tmp_path / "q.npz")
    assert io.load(tmp_path / "q.npz").info["weight_bits"] == 7


def test_weight_bits_7_same_logits_on_every_gemm_path(rng, assert_same_logits_on_every_cap):
    if not kernels.available("gemm_u8s8_packed", "c"):
        pytest.skip(kernels.why_unavailable("gemm_u8s8_packed", "c"))
    qmodel, images = _seed_cnn_7bit(rng)
    x = Tensor(images[:8].astype(np.float32) / 255)
    assert_same_logits_on_every_cap(qmodel, x)


def test_cli_quantize_weight_bits_7(tmp_path):
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=28, width=0.25)
    path = tmp_path / "float.npz"
    io.save(model, path)
    out = tmp_path / "q"
    code = main(["quantize", str(path), "--data", "synthetic", "--per-channel", "--weight-bits", "7",
                 "--calibration-images", "32", "--repeats", "1", "--out", str(out)])
    assert code == 0
    assert json.loads((out / "metrics.json").read_text())["weight_bits"] == 7
    assert io.load(out / "model.npz").info["weight_bits"] == 7


def test_cli_quantize_weight_bits_needs_static(tmp_path, capsys):
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=28, width=0.25)
    io.save(model, tmp_path / "float.npz")
    code = main(["quantize", str(tmp_path / "float.npz"), "--data", "synthetic", "--mode", "dynamic",
                 "--weight-bits", "7", "--out", str(tmp_path / "q")])
    assert code != 0 and "--mode static" in capsys.readouterr().err


def test_cli_quantize_suggests_7_bits_on_avx2(tmp_path, capsys, monkeypatch):
    if not kernels.available("gemm_u8s8_packed", "c"):
        pytest.skip(kernels.why_unavailable("gemm_u8s8_packed", "c"))
    from tinyeff.kernels import cpu
    if "avx2" not in cpu.usable_paths():
        pytest.skip("needs an AVX2 CPU (the note is for the AVX2 path)")
    monkeypatch.setenv("TINYEFF_CPU_FEATURES", "avx2,fma")
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=28, width=0.25)
    io.save(model, tmp_path / "float.npz")
    assert main(["quantize", str(tmp_path / "float.npz"), "--data", "synthetic", "--calibration-images", "16",
                 "--activation-bits", "8", "--repeats", "1", "--out", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out
    assert "--activation-bits 7" in out and "--weight-bits 7" in out
    assert main(["quantize", str(tmp_path / "float.npz"), "--data", "synthetic", "--calibration-images", "16",
                 "--repeats", "1", "--out", str(tmp_path / "q7")]) == 0
    assert "--activation-bits 7" not in capsys.readouterr().out        # the default is already 7
