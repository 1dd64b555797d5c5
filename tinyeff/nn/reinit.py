"""Re-draw a built model's weights with another initialization scheme (the layers draw He normal
at construction; a sweep or ``train --init xavier`` asks for Glorot instead)."""
from tinyeff.nn import init
from tinyeff.nn.layers import Conv2d, Linear


def initialize(model, scheme):
    """Re-draw every Conv2d and Linear weight of ``model`` with ``scheme``; biases become 0.

    "kaiming" is He normal (fan_in, ReLU gain), what the layers draw at construction; "xavier" is
    Glorot uniform (gain 1). BatchNorm stays the identity. Draws from tinyeff's seeded generator,
    so ``manual_seed`` before building and initializing gives the same weights every time.

    Raises:
        ValueError: unknown ``scheme``.
    """
    if scheme not in init.SCHEMES:
        raise ValueError(f"init: unknown scheme {scheme!r}; choose {' or '.join(init.SCHEMES)}")
    draw = init.kaiming_normal if scheme == "kaiming" else init.xavier_uniform
    for _, module in model.named_modules():
        if isinstance(module, (Conv2d, Linear)):
            module.weight.data = draw(module.weight.data.shape)
            if module.bias is not None:
                module.bias.data = init.zeros(module.bias.data.shape)
    return model
