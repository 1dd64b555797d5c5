"""MobileNetV2 (Sandler et al. 2018): inverted residual blocks with linear bottlenecks and ReLU6.

Each block widens the input ``t`` times with a 1x1 conv, filters it with a 3x3 depthwise conv,
and projects it back down with a 1x1 conv that has no activation (the "linear bottleneck": ReLU
on a narrow tensor destroys information). Where input and output shapes agree, the block adds its
input. Layer names and the stage table follow torchvision's ``mobilenet_v2``, so its state_dicts
load unchanged (tinyeff.interop.torch_import); ``width_mult`` scales every width (multiples of 8).
The ImageNet stem (stride 2) is kept; at 32x32 inputs the last feature map is 1x1.
"""
from tinyeff import nn, ops
from tinyeff.models.blocks import conv_bn_act, make_divisible

# (expansion t, output channels c, blocks n, first stride s), the paper's Table 2
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """[1x1 expand -> BN -> ReLU6] -> 3x3 depthwise -> BN -> ReLU6 -> 1x1 project -> BN (+ input)."""

    def __init__(self, c_in, c_out, stride, expand_ratio):
        super().__init__()
        hidden = int(round(c_in * expand_ratio))
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = [conv_bn_act(c_in, hidden, 1, activation=nn.ReLU6)] if expand_ratio != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        out = self.conv(x)
        return ops.add(x, out) if self.use_res_connect else out


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0, in_channels=3, dropout=0.2):
        super().__init__()
        channels = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers = [conv_bn_act(in_channels, channels, 3, 2, activation=nn.ReLU6)]
        for t, c, n, s in SETTINGS:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        layers.append(conv_bn_act(channels, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.pool(self.features(x))))


def mobilenet_v2(in_channels=3, num_classes=10, width_mult=1.0, dropout=0.2):
    """MobileNetV2 (torchvision layout); ``width_mult`` scales every width, rounded to multiples of 8."""
    return MobileNetV2(num_classes, width_mult, in_channels, dropout)


mobilenet_v2.native_size = lambda **kwargs: 224
