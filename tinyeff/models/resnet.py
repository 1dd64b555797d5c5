"""CIFAR-style ResNets (He et al. 2016, section 4.2) and the CIFAR variant of ResNet-18.

ResNet-(6n+2): a 3x3 stem, three stages of n basic blocks with width, 2*width, 4*width channels
(stride 2 at the start of stages 2 and 3), global average pooling and a Linear classifier. Where a
block changes shape, the shortcut is a 1x1 convolution + BatchNorm (projection, "option B"), which
keeps channel pruning of the shortcut explicit. ``shortcut=False`` drops every skip connection, for
the shortcut study (a plain network of the same depth).
"""
from tinyeff import nn


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels, out_channels, stride=1, shortcut=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.use_shortcut = shortcut
        if shortcut and (stride != 1 or in_channels != out_channels):
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return self.relu2(out)


class ResNet(nn.Module):
    def __init__(self, blocks_per_stage, widths, strides, in_channels=3, num_classes=10, shortcut=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages, channels = [], widths[0]
        for blocks, width, stride in zip(blocks_per_stage, widths, strides):
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(channels, width, stride if b == 0 else 1, shortcut))
                channels = width
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(self.flatten(self.pool(x)))


def resnet(depth=20, width=16, in_channels=3, num_classes=10, shortcut=True):
    """CIFAR ResNet of ``depth`` = 6n + 2 layers (20, 32, 44, 56, 110, or 8, 14, ...)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet: depth={depth} must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110)")
    n = (depth - 2) // 6
    return ResNet((n, n, n), (width, 2 * width, 4 * width), (1, 2, 2), in_channels, num_classes, shortcut)


def resnet18(in_channels=3, num_classes=10, width=64):
    """ResNet-18, CIFAR variant: 3x3 stem, no max-pool, four stages of two blocks."""
    return ResNet((2, 2, 2, 2), (width, 2 * width, 4 * width, 8 * width), (1, 2, 2, 2), in_channels, num_classes)
