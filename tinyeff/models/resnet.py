"""ResNets (He et al. 2016): CIFAR-style ResNet-(6n+2) (section 4.2) and ResNet-18/34/50.

ResNet-(6n+2): a 3x3 stem, three stages of n basic blocks with width, 2*width, 4*width channels
(stride 2 at the start of stages 2 and 3), global average pooling and a Linear classifier. Where a
block changes shape, the shortcut is a 1x1 convolution + BatchNorm (projection, "option B"), which
keeps channel pruning of the shortcut explicit. ``shortcut=False`` drops every skip connection, for
the shortcut study (a plain network of the same depth).

``stem="cifar"`` (the default, what saved files mean) is one 3x3 stride-1 conv; ``stem="imagenet"``
is torchvision's 7x7 stride-2 conv and 3x3 stride-2 max-pool, for 224x224 inputs. ResNet-50 uses
bottleneck blocks (1x1 reduce, 3x3, 1x1 expand to 4x the width; stride on the 3x3 as torchvision).

Training speed: every BatchNorm-then-ReLU (with the shortcut added in between at a block's end) runs
as one batch-norm op (``bn_relu``), which saves the separate ReLU and add passes over memory each way.
It applies only to a plain BatchNorm2d and ReLU with no hooks (an observer must see each layer's
own output); ``set_fused(model, False)`` runs every layer on its own, with the same results up to
float rounding.
"""
from tinyeff import nn


def bn_relu(owner, bn, relu, x, residual=None):
    """``relu(bn(x) + residual)`` (no add when ``residual`` is None), fused into one batch-norm op
    when ``owner.fuse`` is on and both layers are plain, else layer by layer."""
    same = residual is None or (residual.shape == x.shape and residual.dtype == x.dtype)
    if owner.fuse and same and _plain(bn, nn.BatchNorm2d) and _plain(relu, nn.ReLU):
        return bn.forward(x, relu=True, residual=residual)
    out = bn(x)
    return relu(out if residual is None else out + residual)


def set_fused(model, on):
    """Turn the BatchNorm + (add +) ReLU fusion on or off in every ResNet stem and block of ``model``."""
    for module in model.modules():
        if isinstance(module, (ResNet, BasicBlock, Bottleneck)):
            module.fuse = bool(on)


def _plain(layer, kind):
    return type(layer) is kind and not (layer._forward_pre_hooks or layer._forward_hooks)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""
    fuse = True

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
        out = self.conv2(bn_relu(self, self.bn1, self.relu1, self.conv1(x)))
        return bn_relu(self, self.bn2, self.relu2, out, self.shortcut(x) if self.use_shortcut else None)


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1-BN (4x ``width`` channels), plus shortcut, ReLU."""
    expansion = 4
    fuse = True

    def __init__(self, in_channels, width, stride=1, shortcut=True):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu3 = nn.ReLU()
        self.use_shortcut = shortcut
        if shortcut and (stride != 1 or in_channels != out_channels):
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = bn_relu(self, self.bn1, self.relu1, self.conv1(x))
        out = self.conv3(bn_relu(self, self.bn2, self.relu2, self.conv2(out)))
        return bn_relu(self, self.bn3, self.relu3, out, self.shortcut(x) if self.use_shortcut else None)


STEMS = ("cifar", "imagenet")


class ResNet(nn.Module):
    fuse = True

    def __init__(self, blocks_per_stage, widths, strides, in_channels=3, num_classes=10, shortcut=True,
                 stem="cifar", block=BasicBlock):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"resnet: stem={stem!r} must be one of {STEMS}")
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        if stem == "imagenet":
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages, channels = [], widths[0]
        expansion = getattr(block, "expansion", 1)
        for blocks, width, stride in zip(blocks_per_stage, widths, strides):
            layers = []
            for b in range(blocks):
                layers.append(block(channels, width, stride if b == 0 else 1, shortcut))
                channels = width * expansion
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = bn_relu(self, self.bn1, self.relu, self.conv1(x))
        if "maxpool" in self._modules:
            x = self.maxpool(x)
        return self.fc(self.flatten(self.pool(self.layers(x))))


def resnet(depth=20, width=16, in_channels=3, num_classes=10, shortcut=True):
    """CIFAR ResNet of ``depth`` = 6n + 2 layers (20, 32, 44, 56, 110, or 8, 14, ...)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet: depth={depth} must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110)")
    n = (depth - 2) // 6
    return ResNet((n, n, n), (width, 2 * width, 4 * width), (1, 2, 2), in_channels, num_classes, shortcut)


def _four_stages(blocks, block, in_channels, num_classes, width, stem):
    return ResNet(blocks, (width, 2 * width, 4 * width, 8 * width), (1, 2, 2, 2), in_channels, num_classes,
                  stem=stem, block=block)


def resnet18(in_channels=3, num_classes=10, width=64, stem="cifar"):
    """ResNet-18: four stages of two basic blocks; ``stem="cifar"`` (3x3, no max-pool) or "imagenet"."""
    return _four_stages((2, 2, 2, 2), BasicBlock, in_channels, num_classes, width, stem)


def resnet34(in_channels=3, num_classes=10, width=64, stem="cifar"):
    """ResNet-34: basic blocks, (3, 4, 6, 3) per stage."""
    return _four_stages((3, 4, 6, 3), BasicBlock, in_channels, num_classes, width, stem)


def resnet50(in_channels=3, num_classes=10, width=64, stem="cifar"):
    """ResNet-50: bottleneck blocks, (3, 4, 6, 3) per stage, 2048 features at the classifier."""
    return _four_stages((3, 4, 6, 3), Bottleneck, in_channels, num_classes, width, stem)


def _native_size(stem="cifar", **kwargs):
    return 224 if stem == "imagenet" else 32


for _builder in (resnet18, resnet34, resnet50):
    _builder.native_size = _native_size
