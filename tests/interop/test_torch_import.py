"""torchvision-layout state_dicts written by PyTorch import into tinyeff with the same outputs.

The reference modules (torch_reference.py) copy torchvision's definitions and key names; weights
are random, BatchNorm statistics non-trivial, both sides in eval mode. ResNets use a narrower
width in the default run (the layout is what is under test); @slow runs torchvision's full sizes.
"""
import numpy as np
import pytest

from interop_helpers import need
from tinyeff import io
from tinyeff.cli import main
from tinyeff.errors import ModelFileError
from tinyeff.interop.torch_import import import_state_dict
from tinyeff.tensor import Tensor, no_grad

torch = need("torch", "torch (CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)")
torch_reference = pytest.importorskip("torch_reference", reason="tests/interop/torch_reference.py needs torch: pip install torch")


def outputs(ref, model, x):
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    with no_grad():
        return expected, model(Tensor(x)).data


def assert_close(expected, got):
    # rtol 1e-3 (the target); atol for logits near zero, relative to the output's scale
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * float(np.abs(expected).max()))


CASES = [("resnet18", 16, 64), ("resnet50", 16, 64), ("mobilenet_v2", 64, 32), ("efficientnet_b0", 64, 32)]


@pytest.mark.parametrize("arch,width,size", CASES, ids=[c[0] for c in CASES])
def test_state_dict_import_matches_pytorch(arch, width, size, tmp_path, rng):
    ref = torch_reference.build(arch, num_classes=7, width=width)
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    model = import_state_dict(tmp_path / "w.pt", arch)
    assert model.arch["kwargs"]["num_classes"] == 7
    assert_close(*outputs(ref, model, rng.standard_normal((2, 3, size, size)).astype(np.float32)))


def test_resnet_stem_is_chosen_by_the_stem_weight(tmp_path):
    torch.save(torch_reference.build("resnet18", width=8).state_dict(), tmp_path / "w.pt")
    kwargs = import_state_dict(tmp_path / "w.pt", "resnet18").arch["kwargs"]
    assert kwargs["stem"] == "imagenet" and kwargs["width"] == 8 and kwargs["num_classes"] == 1000


def test_safetensors_import_needs_no_torch_and_matches(tmp_path, rng):
    st = need("safetensors.torch", "safetensors")
    ref = torch_reference.build("mobilenet_v2", num_classes=5)
    st.save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "w.safetensors"))
    model = import_state_dict(tmp_path / "w.safetensors", "mobilenet_v2")
    assert_close(*outputs(ref, model, rng.standard_normal((1, 3, 32, 32)).astype(np.float32)))


def test_missing_extra_and_misshaped_keys_are_named(tmp_path):
    state = torch_reference.build("resnet18", width=8).state_dict()
    del state["layer1.0.conv1.weight"]
    state["layer1.0.extra.weight"] = torch.zeros(3)
    state["layer2.0.bn1.running_mean"] = torch.zeros(5)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError) as info:
        import_state_dict(tmp_path / "bad.pt", "resnet18")
    message = str(info.value)
    assert "missing layers.0.0.conv1.weight" in message and "extra layers.0.0.extra.weight" in message
    assert "mis-shaped layers.1.0.bn1.running_mean (5,) (expected (16,))" in message


def test_wrong_arch_is_refused_before_writing(tmp_path, capsys):
    torch.save(torch_reference.build("resnet18", width=8).state_dict(), tmp_path / "w.pt")
    assert main(["import", str(tmp_path / "w.pt"), "--arch", "mobilenet_v2", "--out", str(tmp_path / "m.npz")]) == 1   # a file error
    assert "not a torchvision mobilenet_v2 state_dict" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_a_pickled_model_object_is_not_unpickled(tmp_path):
    torch.save(torch_reference.build("resnet18", width=8), tmp_path / "model.pt")   # the module, not its weights
    with pytest.raises(ModelFileError, match="weights-only"):
        import_state_dict(tmp_path / "model.pt", "resnet18")


def test_cli_import_writes_a_float_model_file(tmp_path, capsys, rng):
    ref = torch_reference.build("efficientnet_b0", num_classes=3)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    assert main(["import", str(tmp_path / "w.pth"), "--arch", "efficientnet_b0", "--out", str(tmp_path / "e.npz")]) == 0
    assert "num_classes=3" in capsys.readouterr().out            # from the classifier's weight
    model = io.load(tmp_path / "e.npz", expect_kind="float").eval()
    assert model.preprocess["kind"] == "standardize"
    assert_close(*outputs(ref, model, rng.standard_normal((1, 3, 32, 32)).astype(np.float32)))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_full_size_resnet_import_matches_pytorch(arch, tmp_path, rng):
    ref = torch_reference.build(arch)
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    model = import_state_dict(tmp_path / "w.pt", arch)
    assert sum(p.size for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    assert_close(*outputs(ref, model, rng.standard_normal((1, 3, 96, 96)).astype(np.float32)))
