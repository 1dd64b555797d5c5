"""Building blocks shared by MobileNetV2 and EfficientNet, named as torchvision names them.

``conv_bn_act`` is torchvision's ``Conv2dNormActivation``: a Sequential of a bias-free conv
("same" padding for odd kernels), BatchNorm and an optional activation, so its keys read
``<name>.0.weight``, ``<name>.1.running_mean``. ``SqueezeExcitation`` (Hu et al. 2018) gates each
channel by a weight computed from the whole feature map: global average pool, a 1x1 conv down to
``squeeze_channels``, an activation, a 1x1 conv back up, a sigmoid, then ``x * gate``.
``make_divisible`` is the channel rounding both papers use (multiples of 8, never more than 10%
below the unrounded value), which is what makes the scaled variants' shapes match torchvision's.
"""
from tinyeff import nn, ops


def make_divisible(value, divisor=8, min_value=None):
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``min_value``), not below 90% of it."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn_act(c_in, c_out, kernel_size=3, stride=1, groups=1, activation=nn.ReLU, eps=1e-5):
    """conv (no bias, padding (k-1)//2) -> BatchNorm -> ``activation()`` (None: no activation)."""
    layers = [nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, groups=groups,
                        bias=False),
              nn.BatchNorm2d(c_out, eps=eps)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """x * sigmoid(fc2(act(fc1(avgpool(x))))); fc1/fc2 are 1x1 convs with bias (torchvision's names)."""

    def __init__(self, channels, squeeze_channels, activation=nn.SiLU):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = activation()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        gate = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))   # (N, C, 1, 1)
        return ops.mul(x, gate)
