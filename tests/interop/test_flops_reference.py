"""tinyeff's MAC counts of ResNet-50, MobileNetV2 and EfficientNet-B0 equal ptflops' (version 0.7.5,
``backend="aten"``: it counts convolutions and matrix products from the aten ops PyTorch runs).

ptflops' aten backend adds one per output element of a conv or linear layer with a bias (the bias
add) to its MACs; tinyeff counts that add under ``other_flops``, so the comparison adds it back.
At 224x224 (@slow) ptflops reports 4,089,185,256 for ResNet-50, 300,775,272 for MobileNetV2 and
385,825,092 for EfficientNet-B0; the default run compares at 32x32 with 10 classes (ResNet-50 at a
quarter of its width), which exercises the same layer types in the same arrangement.
"""
import numpy as np
import pytest


torch = pytest.importorskip("torch", reason="needs torch: pip install torch")
ptflops = pytest.importorskip("ptflops", reason="needs ptflops: pip install ptflops")
torch_reference = pytest.importorskip("torch_reference", reason="tests/interop/torch_reference.py needs torch: pip install torch")

from tinyeff import models, nn  # noqa: E402
from tinyeff.flops import count  # noqa: E402


def tinyeff_macs_plus_bias_adds(model, size):
    report = count(model, (1, 3, size, size))
    modules = dict(model.named_modules())
    bias_adds = sum(int(np.prod(l.output_shape)) for l in report.layers
                    if isinstance(modules.get(l.name), (nn.Conv2d, nn.Linear)) and modules[l.name].bias is not None)
    return report.totals["macs"] + bias_adds


def ptflops_macs(arch, size, num_classes=1000, width=64):
    ref = torch_reference.build(arch, num_classes=num_classes, width=width)
    macs, _ = ptflops.get_model_complexity_info(ref, (3, size, size), as_strings=False,
                                                print_per_layer_stat=False, backend="aten", verbose=False)
    return int(macs)


ARCHS = [("resnet50", {"stem": "imagenet"}), ("mobilenet_v2", {}), ("efficientnet_b0", {})]


@pytest.mark.parametrize("arch,kwargs", ARCHS, ids=[a for a, _ in ARCHS])
def test_macs_match_ptflops_small(arch, kwargs):
    width = 16 if arch == "resnet50" else 64
    if arch == "resnet50":
        kwargs = dict(kwargs, width=width)
    model = models.create(arch, num_classes=10, **kwargs)
    assert tinyeff_macs_plus_bias_adds(model, 32) == ptflops_macs(arch, 32, num_classes=10, width=width)


@pytest.mark.slow
@pytest.mark.parametrize("arch,kwargs", ARCHS, ids=[a for a, _ in ARCHS])
def test_macs_match_ptflops_at_224(arch, kwargs):
    model = models.create(arch, num_classes=1000, **kwargs)
    assert tinyeff_macs_plus_bias_adds(model, 224) == ptflops_macs(arch, 224)
