"""Model zoo and the name -> builder table used by the CLI and by model files.

``create(name, **kwargs)`` builds a model and records ``model.arch = {"name", "kwargs"}`` so that
``tinyeff.io.save`` can write the architecture next to the weights.
"""
from functools import partial

from tinyeff.models.cnn import mlp, seed_cnn
from tinyeff.models.efficientnet import efficientnet
from tinyeff.models.mobilenet import mobilenet
from tinyeff.models.mobilenet_v2 import mobilenet_v2
from tinyeff.models.resnet import BasicBlock, Bottleneck, ResNet, resnet, resnet18, resnet34, resnet50

BUILDERS = {
    "seed-cnn": seed_cnn,
    "mlp": mlp,
    "mobilenet": mobilenet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    **{f"efficientnet_{v}": partial(efficientnet, v) for v in ("b0", "b1", "b2", "b3")},
    "resnet": resnet,
    **{f"resnet{d}": partial(resnet, d) for d in (8, 14, 20, 32, 44, 56, 110)},
}


def names():
    return sorted(BUILDERS)


def create(name, **kwargs):
    """Build model ``name`` with ``kwargs``; raise ValueError listing the known names if unknown."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(names())}")
    model = BUILDERS[name](**kwargs)
    model.arch = {"name": name, "kwargs": dict(kwargs)}
    return model


def build_model(name, split, **extra):
    """Model ``name`` fitted to ``split``'s image shape and class count; ``extra`` kwargs (None ones
    skipped) override, e.g. ``width=0.5`` for a half-width student."""
    c, h, _ = split.images.shape[1:]
    kwargs = input_kwargs(name, c, h, len(split.classes))
    kwargs.update({k: v for k, v in extra.items() if v is not None})
    return create(name, **kwargs)


def input_kwargs(name, in_channels, input_size, num_classes):
    """The keyword arguments that fit model ``name`` to a dataset's image shape and class count."""
    kwargs = {"in_channels": in_channels, "num_classes": num_classes}
    if name in ("seed-cnn", "mlp"):
        kwargs["input_size"] = input_size
    return kwargs


__all__ = ["BasicBlock", "Bottleneck", "ResNet", "build_model", "create", "efficientnet", "input_kwargs", "mlp",
           "mobilenet", "mobilenet_v2", "names", "resnet", "resnet18", "resnet34", "resnet50", "seed_cnn"]
