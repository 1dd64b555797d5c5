"""Quantizing the ImageNet-style zoo: float islands (depthwise conv, SiLU, squeeze-excitation, padded
max-pool) run in float between dequantize and quantize; ReLU6 is an integer clamp; inverted
residuals, MBConv and bottlenecks add in integers; files round-trip; the summary names the islands."""
import numpy as np
import pytest

import tinyeff
from tinyeff import Tensor, io, models, nn, no_grad, quant
from tinyeff.models.blocks import conv_bn_act
from tinyeff.models.efficientnet import MBConv
from tinyeff.quant import qmodules as qm
from tinyeff.quant.islands import QFloat, QReLU6, QResidual, float_layers, summary_lines
from tinyeff.quant.qparams import dequantize, quantize


def calibrated(model, shape, rng, n=32):
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    x = (images[:8].astype(np.float32) / 255)
    return quant.quantize_static(model, images, num_images=n), x


def leaves(layer):
    """Every layer of an integer model, depth first (sequences and residual parts opened)."""
    yield layer
    for child in getattr(layer, "layers", None) or []:
        yield from leaves(child)
    for part in ("body", "shortcut"):
        if isinstance(getattr(layer, part, None), qm.QLayer):
            yield from leaves(getattr(layer, part))


def run(model, x):
    with no_grad():
        return model.eval()(Tensor(x)).data


def test_qrelu6_is_the_clamp_of_relu6_on_the_grid(rng):
    qp = (np.float32(0.05), 20)
    q = rng.integers(0, 256, 1000).astype(np.uint8)
    expected = quantize(np.clip(dequantize(q, *qp), 0, 6), qp[0], qp[1], "uint8")
    np.testing.assert_array_equal(QReLU6(qp).forward(q), expected)


def test_qfloat_dequantizes_runs_and_requantizes(rng):
    island = QFloat(nn.SiLU(), "3", (0.1, 100), (0.02, 10))
    q = rng.integers(0, 256, (2, 3, 4, 4)).astype(np.uint8)
    x = dequantize(q, np.float32(0.1), 100)
    expected = quantize(x / (1 + np.exp(-x)), np.float32(0.02), 10, "uint8")
    np.testing.assert_array_equal(island.forward(q), expected)


def test_mbconv_block_quantizes_with_integer_convs_and_float_se(rng):
    tinyeff.manual_seed(0)
    model = nn.Sequential(conv_bn_act(3, 16, 3, 1, activation=nn.SiLU), MBConv(16, 16, 3, 1, 4),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5)).eval()
    qmodel, x = calibrated(model, (3, 8, 8), rng)
    kinds = {type(layer.module).__name__ for _, layer in float_layers(qmodel)}
    assert kinds == {"SiLU", "Conv2d", "SqueezeExcitation"}           # activation, depthwise conv, SE gate
    residual, = [l for l in leaves(qmodel.body) if isinstance(l, QResidual)]
    assert sum(isinstance(l, qm.QConv2d) for l in leaves(residual.body)) == 2   # expand and project convs
    ref, got = run(model, x), run(qmodel, x)
    assert np.abs(got - ref).max() <= 0.1 * np.abs(ref).max()         # 8-bit grids on 5 quantization points


def test_mobilenet_v2_quantizes_saves_and_loads_identically(tmp_path, rng):
    tinyeff.manual_seed(0)
    model = models.create("mobilenet_v2", width_mult=0.25, num_classes=4).eval()
    qmodel, x = calibrated(model, (3, 32, 32), rng)
    islands = float_layers(qmodel)
    assert len(islands) == 17 and all(layer.module.groups == layer.module.in_channels for _, layer in islands)
    assert any(isinstance(l, QReLU6) for l in leaves(qmodel.body))    # after each depthwise island
    # the blocks with an identity add: 10, plus the first, whose 8 -> 8 channels match at width 0.25
    assert sum(isinstance(l, QResidual) for l in leaves(qmodel.body)) == 11
    quant.save_quantized(qmodel, tmp_path / "q.npz")
    back = io.load(tmp_path / "q.npz")
    np.testing.assert_array_equal(run(back, x), run(qmodel, x))
    assert summary_lines(back)[0].startswith("17 layer(s) run in float32")


def test_resnet50_bottlenecks_add_in_integers(rng):
    tinyeff.manual_seed(0)
    model = models.create("resnet50", width=4, stem="imagenet").eval()
    qmodel, x = calibrated(model, (3, 32, 32), rng)
    (where, island), = float_layers(qmodel)
    assert island.path == "maxpool"                                  # the padded max-pool only
    blocks = [l for l in leaves(qmodel.body) if isinstance(l, QResidual)]
    assert len(blocks) == 16 and all(isinstance(b, QResidual) and b.add.relu for b in blocks)
    assert summary_lines(models.create("resnet8", width=4)) == ["every layer runs in integers"]


@pytest.mark.slow
def test_efficientnet_b0_quantizes_and_round_trips(tmp_path, rng):
    tinyeff.manual_seed(0)
    model = models.create("efficientnet_b0", num_classes=3).eval()
    qmodel, x = calibrated(model, (3, 32, 32), rng)
    quant.save_quantized(qmodel, tmp_path / "q.npz")
    np.testing.assert_array_equal(run(io.load(tmp_path / "q.npz"), x), run(qmodel, x))


def test_flops_count_islands_as_float_macs(rng):
    from tinyeff.flops import count
    tinyeff.manual_seed(0)
    model = models.create("mobilenet_v2", width_mult=0.25).eval()
    qmodel, _ = calibrated(model, (3, 32, 32), rng, n=8)
    dense, integer = count(model, (1, 3, 32, 32)), count(qmodel, (1, 3, 32, 32))
    assert integer.totals["macs"] == dense.totals["macs"]
    depthwise = sum(l.macs for l in dense.layers if dict(model.named_modules())[l.name].__class__ is nn.Conv2d
                    and dict(model.named_modules())[l.name].groups > 1)
    assert integer.totals["macs_effective_by_dtype"]["fp32"] == depthwise
