"""The seed CNN: the classic CIFAR-10 tutorial network, and the 3-layer MLP baseline.

seed CNN: Conv(32, 3x3)-ReLU-MaxPool2-Conv(64, 3x3)-ReLU-MaxPool2-Conv(64, 3x3)-ReLU-Flatten-
Linear(64)-ReLU-Linear(classes), valid padding. At 32x32 the feature map is 64x4x4 at the flatten;
at 28x28 (Fashion-MNIST) it is 64x3x3.
"""
from tinyeff import nn


def _after_seed_convs(size):
    for _ in range(2):
        size = (size - 2) // 2     # 3x3 valid conv, then 2x2 max-pool
    return size - 2                # last 3x3 valid conv


def seed_cnn(in_channels=3, num_classes=10, input_size=32, width=1.0):
    """Build the seed CNN. ``width`` scales the channel counts (0.5 gives the half-width student)."""
    c1, c2, hidden = max(1, round(32 * width)), max(1, round(64 * width)), max(1, round(64 * width))
    side = _after_seed_convs(input_size)
    if side < 1:
        raise ValueError(f"seed_cnn: input_size={input_size} is too small; the network needs at least 18 pixels")
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c2, c2, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c2 * side * side, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def mlp(in_channels=1, input_size=28, num_classes=10, hidden=(256, 128), dropout=0.0):
    """The 3-layer feed-forward baseline: Flatten-Linear-ReLU-Linear-ReLU-Linear (with optional dropout)."""
    layers, width = [nn.Flatten()], in_channels * input_size * input_size
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
