"""EfficientNet-B0..B3 (Tan & Le 2019): MBConv blocks with squeeze-excitation and SiLU, compound scaling.

An MBConv block is MobileNetV2's inverted residual with SiLU instead of ReLU6, 3x3 or 5x5 depthwise
kernels, and a squeeze-excitation gate (squeeze to a quarter of the block's *input* channels)
before the projection. B0 is the searched base network; B1..B3 scale it by one compound
coefficient: width (channels, rounded to multiples of 8 by ``make_divisible``), depth (blocks per
stage, rounded up) and input resolution, by torchvision's table (``VARIANTS``). Names follow
torchvision's ``efficientnet_b*`` (``features.<stage>.<block>.block.<i>``), so its state_dicts load
unchanged. Left out: stochastic depth (a training-time regulariser; the identity in eval mode).
"""
import math

from tinyeff import nn, ops
from tinyeff.models.blocks import SqueezeExcitation, conv_bn_act, make_divisible

# (expand ratio, kernel, first stride, input channels, output channels, blocks): B0's stages
STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))

# variant -> (width multiplier, depth multiplier, resolution, classifier dropout), torchvision's table
VARIANTS = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
            "b3": (1.2, 1.4, 300, 0.3)}


class MBConv(nn.Module):
    """[1x1 expand-BN-SiLU] -> kxk depthwise-BN-SiLU -> squeeze-excitation -> 1x1 project-BN (+ input)."""

    def __init__(self, c_in, c_out, kernel, stride, expand_ratio):
        super().__init__()
        hidden = make_divisible(c_in * expand_ratio)
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = [conv_bn_act(c_in, hidden, 1, activation=nn.SiLU)] if hidden != c_in else []
        layers += [conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, activation=nn.SiLU),
                   SqueezeExcitation(hidden, max(1, c_in // 4)),
                   conv_bn_act(hidden, c_out, 1, activation=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        out = self.block(x)
        return ops.add(out, x) if self.use_res_connect else out


class EfficientNet(nn.Module):
    def __init__(self, width_mult, depth_mult, dropout, in_channels=3, num_classes=1000):
        super().__init__()
        stem = make_divisible(STAGES[0][3] * width_mult)
        layers = [conv_bn_act(in_channels, stem, 3, 2, activation=nn.SiLU)]
        for expand, kernel, stride, c_in, c_out, blocks in STAGES:
            c_in, c_out = make_divisible(c_in * width_mult), make_divisible(c_out * width_mult)
            stage = [MBConv(c_in if b == 0 else c_out, c_out, kernel, stride if b == 0 else 1, expand)
                     for b in range(int(math.ceil(blocks * depth_mult)))]
            layers.append(nn.Sequential(*stage))
        last_in = make_divisible(STAGES[-1][4] * width_mult)
        layers.append(conv_bn_act(last_in, 4 * last_in, 1, activation=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * last_in, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def efficientnet(variant="b0", in_channels=3, num_classes=10, dropout=None):
    """EfficientNet ``variant`` ("b0".."b3") in torchvision's layout; ``dropout`` defaults to the table's."""
    if variant not in VARIANTS:
        raise ValueError(f"efficientnet: unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    width, depth, _, table_dropout = VARIANTS[variant]
    return EfficientNet(width, depth, table_dropout if dropout is None else dropout, in_channels, num_classes)


def native_size(variant="b0", **kwargs):
    """The variant's input resolution from the compound-scaling table (224, 240, 260, 300)."""
    return VARIANTS[variant][2]


efficientnet.native_size = native_size
