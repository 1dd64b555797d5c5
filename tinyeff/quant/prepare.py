"""Prepare a float model for quantization: fold BN, then put an observer at every quantization point.

A quantization point is a place where the integer model will hold a uint8 tensor with its own
(scale, zero_point): the model input, the output of each conv/linear (after its ReLU when one follows,
because the integer layer fuses it), the conv2 output and the shortcut output of a residual block
(the two inputs of its add) and the block output (after the add and its ReLU). Everything else
(max-pool, global average pool, flatten) keeps its input's parameters.

``Observed(inner, observer)`` wraps the module whose output is such a point: it records the output
(calibration) and, with ``fake_quant=True`` (QAT), rounds it to the observer's grid with the
straight-through estimator. ``PreparedModel`` wraps the whole model and observes its input.
``convert.py`` walks the same structure to build the integer model.

Supported structure: ``nn.Sequential`` stacks and ``ResNet`` (children run in definition order),
``BasicBlock`` (residual); leaves Conv2d (groups=1), Linear, ReLU, MaxPool2d (no padding),
AdaptiveAvgPool2d(1), Flatten, Identity, Dropout and BatchNorm2d right after a conv (folded).
Anything else is refused with the layer's name, before any work is done.
"""
from tinyeff import nn
from tinyeff.models.resnet import BasicBlock, ResNet
from tinyeff.nn.surgery import replace_child, sequence_stages
from tinyeff.quant.fold import fold_batchnorm
from tinyeff.quant.observers import make_observer
from tinyeff.quant.qparams import fake_quant

__all__ = ["Observed", "PreparedModel", "prepare", "SKIP", "check_supported", "observed_modules"]

SKIP = (nn.Identity, nn.Dropout)                 # run as the identity in eval mode
PASS_THROUGH = (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)
WEIGHTED = (nn.Conv2d, nn.Linear)


class Observed(nn.Module):
    """``inner`` followed by an activation observer (and fake-quant when ``fake_quant`` is on)."""

    def __init__(self, inner, observer, fake_quant=False):
        super().__init__()
        self.inner = inner
        self.observer, self.fake_quant = observer, fake_quant

    def forward(self, x):
        y = self.inner(x)
        if self.training or not self.fake_quant:          # QAT: evaluation does not move the ranges
            self.observer.observe(y.data)
        if self.fake_quant and self.observer.count:
            scale, zero_point = self.observer.qparams()
            y = fake_quant(y, scale, zero_point, self.observer.dtype)
        return y

    def extra_repr(self):
        return repr(self.observer)


class PreparedModel(nn.Module):
    """The folded float model, its input observed; keeps ``arch`` and ``preprocess``."""

    def __init__(self, model, input_observer, fake_quant=False):
        super().__init__()
        self.model = model
        self.input = Observed(nn.Identity(), input_observer, fake_quant)
        for attr in ("arch", "preprocess"):
            if getattr(model, attr, None) is not None:
                object.__setattr__(self, attr, getattr(model, attr))

    def forward(self, x):
        return self.model(self.input(x))


def check_supported(module, name="model"):
    """Raise ValueError naming the first layer the integer model cannot run."""
    if isinstance(module, (nn.Sequential, ResNet, BasicBlock)):
        for child_name, child in module.named_children():
            check_supported(child, f"{name}.{child_name}")
        return
    if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.dilation != 1):
        raise ValueError(f"quantize: layer {name!r} is a Conv2d with groups={module.groups}, "
                         f"dilation={module.dilation}; the integer path supports groups=1, dilation=1 only")
    if isinstance(module, nn.Flatten) and module.start_dim != 1:
        raise ValueError(f"quantize: layer {name!r} flattens from dim {module.start_dim}; only start_dim=1")
    if isinstance(module, nn.MaxPool2d) and module.padding:
        raise ValueError(f"quantize: layer {name!r} is a MaxPool2d with padding={module.padding}; "
                         "the int8 max-pool has no padding")
    if not isinstance(module, WEIGHTED + PASS_THROUGH + SKIP + (nn.ReLU, nn.BatchNorm2d)):
        raise ValueError(f"quantize: layer {name!r} ({type(module).__name__}) has no integer version; supported: "
                         "Conv2d, Linear, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Identity, Dropout, "
                         "BatchNorm2d after a conv, in Sequential/ResNet/BasicBlock models")


def _wrap(parent, name, make_obs, fq):
    replace_child(parent, name, Observed(parent._modules[name], make_obs(), fq))


def _instrument_sequence(parent, make_obs, fq):
    for stage in list(sequence_stages(parent, skip=SKIP)):
        _wrap(parent, (stage.relu or stage.layer)[0], make_obs, fq)   # fused conv + ReLU: observe after ReLU
    for child in list(parent.children()):
        if isinstance(child, BasicBlock):
            _instrument_block(child, make_obs, fq)
        elif isinstance(child, (nn.Sequential, ResNet)):
            _instrument_sequence(child, make_obs, fq)


def _instrument_block(block, make_obs, fq):
    _wrap(block, "relu1", make_obs, fq)
    if not block.use_shortcut:
        _wrap(block, "relu2", make_obs, fq)                          # conv2 + ReLU fused, no add
        return
    _wrap(block, "conv2", make_obs, fq)                              # first input of the add
    if isinstance(block.shortcut, nn.Sequential):
        _instrument_sequence(block.shortcut, make_obs, fq)           # projection conv: second input
    _wrap(block, "relu2", make_obs, fq)                              # add + ReLU


def prepare(model, calibration="minmax", fake_quant=False, **observer_kwargs):
    """Fold BN into a copy of ``model`` and observe every quantization point (asymmetric uint8, per tensor).

    Args:
        model: a float model built from the supported layers (see the module docstring).
        calibration: observer name: "minmax", "moving-average", "percentile" or "mse".
        fake_quant: round activations to their observed grid in forward (QAT).
        observer_kwargs: passed to every activation observer (e.g. ``percentile=99.99``).
    Returns:
        A ``PreparedModel`` in eval mode; the original model is untouched.
    Raises:
        ValueError: a layer has no integer version (the message names it), or unknown calibration.
    """
    check_supported(model)
    make_observer(calibration, **observer_kwargs)                     # validate the name and options early

    def make_obs():
        return make_observer(calibration, dtype="uint8", symmetric=False, **observer_kwargs)
    folded = fold_batchnorm(model)
    if isinstance(folded, BasicBlock):
        _instrument_block(folded, make_obs, fake_quant)
    else:
        _instrument_sequence(folded, make_obs, fake_quant)
    return PreparedModel(folded, make_obs(), fake_quant).eval()


def observed_modules(model):
    """Every ``Observed`` wrapper in ``model`` with its qualified name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Observed)]
