"""``width`` as one multiplier for every model: 1.0 is the published size, 0.5 half the channels.

The builders spell width differently (the seed CNN and MobileNet take a multiplier, a CIFAR ResNet
its first stage's channel count, the MLP its hidden sizes); this table turns one multiplier into
each builder's own keyword arguments, so a sweep or ``train --width 0.5`` means the same thing for
every model.
"""
RESNET_BASE = 16          # CIFAR ResNets (He et al. 2016, sec. 4.2): 16, 32, 64 channels
RESNET18_BASE = 64
MLP_HIDDEN = (256, 128)   # models.cnn.mlp's default hidden sizes


def _scaled(channels, width):
    return max(1, int(round(channels * width)))


def width_kwargs(name, width):
    """Builder keyword arguments that scale model ``name``'s channels by ``width``.

    Raises:
        ValueError: ``width`` is not positive, or the model has no width knob.
    """
    if not width > 0:
        raise ValueError(f"width={width} must be a positive multiplier (1.0 = the published size)")
    if width == 1:
        return {}                  # the builder's own default: the same architecture record as before
    if name == "seed-cnn":
        return {"width": float(width)}
    if name == "mobilenet":
        return {"width_mult": float(width)}
    if name == "mlp":
        return {"hidden": tuple(_scaled(h, width) for h in MLP_HIDDEN)}
    if name == "resnet18":
        return {"width": _scaled(RESNET18_BASE, width)}
    if name == "resnet" or (name.startswith("resnet") and name[6:].isdigit()):
        return {"width": _scaled(RESNET_BASE, width)}
    raise ValueError(f"model {name!r} has no width multiplier; leave --width at 1")
