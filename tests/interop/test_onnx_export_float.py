"""Float models exported to ONNX give tinyeff's outputs in ONNX Runtime, for any batch size."""
import numpy as np
import pytest

from tinyeff import io, models, nn
from tinyeff.cli import main
from tinyeff.interop.export import compare_onnxruntime, export_onnx

from interop_helpers import need, randomize_batch_norm

CASES = [  # (name, kwargs, per-sample input shape): small widths keep the suite fast
    ("seed-cnn", {"in_channels": 1, "input_size": 28}, (1, 28, 28)),
    ("resnet20", {"width": 8}, (3, 32, 32)),
    ("mobilenet", {"width_mult": 0.25}, (3, 32, 32)),
    ("mlp", {"hidden": (16,)}, (1, 28, 28)),
    ("resnet50", {"width": 4, "stem": "imagenet"}, (3, 64, 64)),        # bottleneck, 7x7 stem, padded max-pool
    ("mobilenet_v2", {"width_mult": 0.25}, (3, 32, 32)),                 # inverted residual, ReLU6 as Clip
    ("efficientnet_b0", {}, (3, 32, 32)),                                # SiLU, squeeze-excitation
]


def assert_outputs_match(ours, theirs):
    # rtol 1e-4: float32 sums run in another order; atol covers logits that land near zero
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4 * float(np.abs(ours).max()))


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=[c[0] for c in CASES])
def test_float_export_matches_onnxruntime(ort, name, kwargs, shape, tmp_path, rng):
    model = randomize_batch_norm(models.create(name, **kwargs), rng)
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, path, shape)
    ours, theirs = compare_onnxruntime(model, path, rng.standard_normal((3, *shape)).astype(np.float32))
    assert_outputs_match(ours, theirs)


def test_float_export_has_a_dynamic_batch(ort, tmp_path, rng):
    model = randomize_batch_norm(models.create("resnet8", width=4), rng)
    path = tmp_path / "r8.onnx"
    export_onnx(model, path, (1, 3, 16, 16))             # the example's batch size is not baked in
    for batch in (1, 5):
        ours, theirs = compare_onnxruntime(model, path, rng.standard_normal((batch, 3, 16, 16)).astype(np.float32))
        assert theirs.shape == (batch, 10)
        assert_outputs_match(ours, theirs)


def test_pruned_model_exports_its_masked_weights(ort, tmp_path, rng):
    from tinyeff.compress.prune import prune
    model = randomize_batch_norm(models.create("seed-cnn", in_channels=1, input_size=28), rng)
    prune(model, 0.8)
    onnx = need("onnx", "'tinyeff[onnx]'")
    export_onnx(model, tmp_path / "p.onnx", (1, 28, 28))
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "p.onnx")).graph.initializer}
    assert np.mean(stored["0.weight"] == 0) >= 0.79
    ours, theirs = compare_onnxruntime(model, tmp_path / "p.onnx", rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
    assert_outputs_match(ours, theirs)


def test_export_refuses_a_layer_without_onnx_form(ort, tmp_path):
    class Odd(nn.Module):
        def forward(self, x):
            return x

    model = nn.Sequential(nn.Flatten(), Odd())
    with pytest.raises(ValueError, match=r"no ONNX form for layer '1' \(Odd\)"):
        export_onnx(model, tmp_path / "odd.onnx", (1, 2, 2))
    assert not (tmp_path / "odd.onnx").exists()


def test_export_refuses_a_bad_example_shape(ort, tmp_path):
    with pytest.raises(ValueError, match="example_shape"):
        export_onnx(models.create("resnet8", width=4), tmp_path / "x.onnx", (3, 0, 32))


def test_cli_export_takes_the_shape_from_the_model_file(ort, tmp_path, capsys, rng):
    model = models.create("seed-cnn", in_channels=1, input_size=28)
    io.save(model, tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx"), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "input (N, 1, 28, 28)" in out and "top-1 agreement 100%" in out


def test_cli_export_wrong_shape_is_one_line_error(ort, tmp_path, capsys):
    io.save(models.create("seed-cnn", in_channels=1, input_size=28), tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx"), "--input", "3x28x28"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in_channels=3" in err
