"""The architecture knobs ``train``, ``compare`` and ``sweep`` share: width, depth, shortcuts, init.

``width`` is one multiplier for every model: 1.0 is the published size, 0.5 half the channels. The
builders spell width differently (the seed CNN and MobileNet take a multiplier, a CIFAR ResNet its
first stage's channel count, the MLP its hidden sizes), so ``width_kwargs`` turns the multiplier into
each builder's own keyword arguments and ``--width 0.5`` means the same thing for every model.
``build`` applies all the knobs; the raw builder arguments stay available through ``build_model``.
"""
from functools import partial

from tinyeff.models import BUILDERS, build_model
from tinyeff.models.resnet import resnet

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
    if resnet_family(name):
        return {"width": _scaled(RESNET_BASE, width)}
    raise ValueError(f"model {name!r} has no width multiplier; leave --width at 1")


def resnet_family(name):
    """True for the CIFAR ResNets (``resnet`` and ``resnetN``), which have depth and shortcut knobs."""
    builder = BUILDERS.get(name)
    return builder is resnet or (isinstance(builder, partial) and builder.func is resnet)


def check(name, width=None, depth=None, shortcut=None):
    """The builder keyword arguments for the knobs, checked without building anything.

    Raises:
        ValueError: a knob the model does not have (the message says which models have it).
    """
    extra = width_kwargs(name, width) if width is not None else {}
    if depth is not None or shortcut is not None:
        if not resnet_family(name):
            raise ValueError(f"model {name!r} has no depth or shortcut knob; they apply to the CIFAR ResNets "
                             "(resnet, resnet8, resnet20, ...)")
        if depth is not None:
            if name != "resnet":
                raise ValueError(f"--depth applies to --model resnet (got {name!r}, whose depth is in its name)")
            extra["depth"] = depth
        if shortcut is not None:
            extra["shortcut"] = bool(shortcut)
    return extra


def build(name, split, width=None, depth=None, shortcut=None, init=None):
    """Model ``name`` fitted to ``split``, with the shared knobs applied.

    Args:
        width: channel multiplier (None or 1: the published size).
        depth: CIFAR ResNet depth 6n + 2 (with ``name="resnet"``).
        shortcut: False drops a CIFAR ResNet's skip connections (a plain network of the same depth).
        init: "xavier" redraws every conv/linear weight Glorot-uniform; "kaiming" or None keeps the
            He-normal weights the layers draw at construction.
    Raises:
        ValueError: a knob the model does not have (the message says which models have it).
    """
    model = build_model(name, split, **check(name, width, depth, shortcut))
    if init not in (None, "kaiming"):          # the layers draw He normal at construction already
        from tinyeff.nn.reinit import initialize
        initialize(model, init)
    return model
