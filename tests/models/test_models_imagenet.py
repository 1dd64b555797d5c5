"""ResNet-18/34/50, MobileNetV2 and EfficientNet-B0..B3: torchvision's sizes, gradients through the
new blocks, training, pruning and the input shape a model file implies."""
import numpy as np
import pytest

import tinyeff
from tinyeff import Tensor, models, nn, no_grad, ops, optim
from tinyeff.models.blocks import make_divisible
from tinyeff.models.efficientnet import MBConv
from tinyeff.models.input_shape import input_shape
from tinyeff.models.mobilenet_v2 import InvertedResidual
from tinyeff.models.resnet import Bottleneck
from tinyeff.testing import check_grad

# parameter counts of torchvision's models at 1000 classes (its model documentation)
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
                      "mobilenet_v2": 3_504_872, "efficientnet_b0": 5_288_548, "efficientnet_b1": 7_794_184,
                      "efficientnet_b2": 9_109_994, "efficientnet_b3": 12_233_232}


SLOW_COUNTS = ("resnet18", "resnet34", "efficientnet_b1", "efficientnet_b2")     # init of ~50M weights


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_COUNTS else n
                                  for n in sorted(TORCHVISION_PARAMS)])
def test_parameter_count_matches_torchvision(name):
    kwargs = {"stem": "imagenet"} if name.startswith("resnet") else {}
    model = models.create(name, num_classes=1000, **kwargs)
    assert sum(p.size for p in model.parameters()) == TORCHVISION_PARAMS[name]


def test_make_divisible_rounds_to_eight_and_never_10_percent_down():
    assert [make_divisible(v) for v in (32 * 1.2, 16 * 1.1, 24 * 1.1, 320 * 1.1, 3)] == [40, 16, 24, 352, 8]
    assert make_divisible(20) == 24          # 16 would be 20% below


def test_efficientnet_depth_scaling_matches_torchvision_block_counts():
    def blocks(variant):
        return sum(isinstance(m, MBConv) for m in models.create(f"efficientnet_{variant}").modules())
    assert [blocks(v) for v in ("b0", "b3")] == [16, 26]


@pytest.mark.parametrize("name,kwargs", [
    ("resnet50", dict(width=4)), ("resnet50", dict(width=4, stem="imagenet")), ("resnet34", dict(width=4)),
    ("mobilenet_v2", dict(width_mult=0.25)), ("efficientnet_b0", {}), ("efficientnet_b3", dict(num_classes=3))])
def test_output_shape_at_small_inputs(name, kwargs):
    tinyeff.manual_seed(0)
    model = models.create(name, **kwargs).eval()
    with no_grad():
        out = model(Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)))
    assert out.shape == (2, kwargs.get("num_classes", 10)) and np.all(np.isfinite(out.data))


def as_float64(module, rng):
    """Cast every parameter and buffer to float64 (finite differences need it), BN in eval with real stats."""
    for m in module.modules():
        for name, p in m._parameters.items():
            if p is not None:
                p.data = p.data.astype(np.float64)
        for name, b in list(m._buffers.items()):
            if b is not None:
                m.set_buffer(name, b.astype(np.float64))
        if isinstance(m, nn.BatchNorm2d):
            m.set_buffer("running_var", rng.uniform(0.5, 2.0, m.num_features))
            m.set_buffer("running_mean", rng.normal(0, 0.2, m.num_features))
    return module.eval()


@pytest.mark.parametrize("block", [
    lambda: MBConv(4, 4, 3, 1, 2),                      # residual, squeeze-excitation, SiLU
    lambda: MBConv(4, 6, 5, 2, 1),                      # no expansion, 5x5 stride-2 depthwise
    lambda: InvertedResidual(4, 4, 1, 2),               # residual, ReLU6
    lambda: Bottleneck(8, 2, stride=2),                 # projection shortcut
], ids=["mbconv-residual", "mbconv-stride2", "inverted-residual", "bottleneck-stride2"])
def test_block_input_gradient_matches_finite_differences(block, rng):
    tinyeff.manual_seed(0)
    module = as_float64(block(), rng)
    c = module.conv1.in_channels if isinstance(module, Bottleneck) else 4
    x = rng.standard_normal((2, c, 5, 5))
    check_grad(module, x)


def test_efficientnet_every_parameter_gets_a_gradient():
    tinyeff.manual_seed(0)
    model = models.create("efficientnet_b0", num_classes=4)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    ops.cross_entropy(model(x), np.array([1, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.all(np.isfinite(p.grad)), name
    assert np.any(model.features[1][0].block[1].fc1.weight.grad != 0)       # the SE path is trained


@pytest.mark.slow
def test_mobilenet_v2_overfits_one_batch():
    tinyeff.manual_seed(0)
    model = models.create("mobilenet_v2", width_mult=0.25, num_classes=4, dropout=0.0)
    x = Tensor(np.random.default_rng(1).standard_normal((8, 3, 16, 16)).astype(np.float32))
    labels = np.random.default_rng(2).integers(0, 4, 8)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = ops.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < 0.25 * losses[0]:
            break
    assert min(losses) < 0.25 * losses[0], f"loss only fell from {losses[0]:.3f} to {min(losses):.3f}"


def test_mobilenet_v2_every_parameter_gets_a_gradient():
    tinyeff.manual_seed(0)
    model = models.create("mobilenet_v2", width_mult=0.25, num_classes=4)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32))
    ops.cross_entropy(model(x), np.array([0, 2])).backward()
    # NOTE: some BN biases get an exactly-zero gradient: a per-channel shift that a later
    # training-mode BatchNorm subtracts again does not change the loss
    for name, p in model.named_parameters():
        assert p.grad is not None and np.all(np.isfinite(p.grad)), name
    assert np.any(model.features[2].conv[1][0].weight.grad != 0)             # a depthwise filter learns


def test_efficientnet_prunes_and_still_runs():
    from tinyeff.compress.prune import prune
    model = models.create("efficientnet_b0", num_classes=4)
    prune(model, 0.5)
    w = model.features[2][0].block[0][0].param("weight").data
    assert 0.45 <= np.mean(w == 0) <= 0.55
    with no_grad():
        assert np.all(np.isfinite(model.eval()(Tensor(np.ones((1, 3, 32, 32), np.float32))).data))


def test_input_shape_comes_from_the_architecture():
    assert input_shape(models.create("efficientnet_b2", num_classes=2)) == (3, 260, 260)
    assert input_shape({"name": "resnet50", "kwargs": {"stem": "imagenet", "in_channels": 1}}) == (1, 224, 224)
    assert input_shape({"name": "resnet50", "kwargs": {}}) == (3, 32, 32)     # the CIFAR stem
    assert input_shape(models.create("seed-cnn", in_channels=1, input_size=28)) == (1, 28, 28)


def test_unknown_stem_is_refused():
    with pytest.raises(ValueError, match="stem='vgg' must be one of"):
        models.create("resnet18", stem="vgg")
