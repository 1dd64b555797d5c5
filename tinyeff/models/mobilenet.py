"""A MobileNet-style network (Howard et al. 2017) for small images: depthwise-separable blocks.

Each block is a 3x3 depthwise convolution (one filter per channel) and a 1x1 pointwise convolution,
each followed by BatchNorm and ReLU: about 8-9x fewer MACs than a full 3x3 convolution of the same
width. ``width_mult`` scales every channel count.
"""
from tinyeff import nn

BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1))


def _separable(c_in, c_out, stride):
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, bias=False), nn.BatchNorm2d(c_in), nn.ReLU(),
        nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def mobilenet(width_mult=1.0, in_channels=3, num_classes=10):
    def scaled(c):
        return max(8, int(round(c * width_mult)))
    channels = scaled(32)
    layers = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
    for c_out, stride in BLOCKS:
        layers.append(_separable(channels, scaled(c_out), stride))
        channels = scaled(c_out)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
