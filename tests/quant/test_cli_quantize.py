"""``tinyeff quantize`` end to end on synthetic data: files written, metrics.json complete."""
import json

from tinyeff import io, models
from tinyeff.cli import main


def test_cli_quantize_static_writes_model_and_metrics(tmp_path):
    model = models.create("seed-cnn", in_channels=1, num_classes=10, input_size=28, width=0.25)
    path = tmp_path / "float.npz"
    io.save(model, path)
    out = tmp_path / "q"
    code = main(["quantize", str(path), "--data", "synthetic", "--mode", "static", "--calibration", "mse",
                 "--per-channel", "--calibration-images", "32", "--repeats", "1", "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["variants"]) == {"float32", "int8", "float16", "bfloat16"}
    assert metrics["variants"]["int8"]["file_bytes"] == (out / "model.npz").stat().st_size
    assert metrics["int8_vs_float32"]["file_size_ratio"] > 1
    assert io.load(out / "model.npz").info["mode"] == "static"
