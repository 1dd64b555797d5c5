"""ONNX files of supported architectures import into tinyeff: torch.onnx exports (BatchNorm folded
into the convs) and tinyeff's own exports (BatchNorm kept), weights matched by execution order."""
import warnings

import numpy as np
import pytest

from interop_helpers import need, randomize_batch_norm
from tinyeff import models
from tinyeff.errors import ModelFileError
from tinyeff.interop.export import export_onnx
from tinyeff.interop.onnx_import import import_onnx
from tinyeff.tensor import Tensor, no_grad

pytestmark = pytest.mark.usefixtures("ort")


def run(model, x):
    with no_grad():
        return model.eval()(Tensor(x)).data


@pytest.mark.slow          # torch.onnx's first export costs seconds; the folded test below runs by default
@pytest.mark.parametrize("arch,width,size", [("resnet18", 16, 64), ("mobilenet_v2", 64, 32)])
def test_torch_onnx_export_with_folded_batch_norm_imports(arch, width, size, tmp_path, rng):
    torch = need("torch", "torch")
    torch_reference = pytest.importorskip("torch_reference", reason="tests/interop/torch_reference.py needs torch: pip install torch")
    ref = torch_reference.build(arch, num_classes=6, width=width)
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # torch's notice that the TorchScript exporter is deprecated
        torch.onnx.export(ref, torch.from_numpy(x), str(tmp_path / "t.onnx"), dynamo=False)
    onnx = need("onnx", "'tinyeff[onnx]'")
    assert not any(n.op_type == "BatchNormalization" for n in onnx.load(str(tmp_path / "t.onnx")).graph.node)
    model = import_onnx(tmp_path / "t.onnx", arch)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-3, atol=1e-4 * float(np.abs(expected).max()))


def test_graph_with_batch_norm_folded_into_conv_biases_imports(tmp_path, rng):
    """What torch.onnx writes in eval mode (no BatchNormalization nodes), made here without torch:
    tinyeff's export of the BN-folded model."""
    from tinyeff.quant import fold_batchnorm
    model = randomize_batch_norm(models.create("mobilenet_v2", num_classes=3), rng)   # import assumes full width
    export_onnx(fold_batchnorm(model), tmp_path / "f.onnx", (3, 32, 32))
    onnx = need("onnx", "'tinyeff[onnx]'")
    assert not any(n.op_type == "BatchNormalization" for n in onnx.load(str(tmp_path / "f.onnx")).graph.node)
    back = import_onnx(tmp_path / "f.onnx", "mobilenet_v2")
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    expected = run(model, x)
    np.testing.assert_allclose(run(back, x), expected, rtol=1e-3, atol=1e-4 * float(np.abs(expected).max()))


def test_tinyeff_export_round_trips_exactly(tmp_path, rng):
    model = randomize_batch_norm(models.create("efficientnet_b0", num_classes=4), rng)
    export_onnx(model, tmp_path / "e.onnx", (3, 32, 32))
    back = import_onnx(tmp_path / "e.onnx", "efficientnet_b0")
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(run(back, x), run(model, x))


def test_onnx_of_another_architecture_is_refused_by_layer(tmp_path, rng):
    export_onnx(models.create("mobilenet_v2", width_mult=0.25), tmp_path / "m.onnx", (3, 32, 32))
    with pytest.raises(ModelFileError, match=r"ONNX weight #\d+ .* has shape .* is --arch right\?"):
        import_onnx(tmp_path / "m.onnx", "efficientnet_b0")


def test_unreadable_onnx_file_is_one_error(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelFileError, match="not a readable ONNX file"):
        import_onnx(tmp_path / "bad.onnx", "resnet18")
