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

Structure: chains (``nn.Sequential``, ``ResNet``, ``MobileNetV2``, ``EfficientNet``: children run
in definition order), residual blocks (``BasicBlock``, ``Bottleneck``, and the inverted residual /
MBConv, whose add output is observed); integer leaves Conv2d (groups=1), Linear, ReLU (fused into
the conv before it), ReLU6, MaxPool2d (no padding), AdaptiveAvgPool2d(1), Flatten, Identity,
Dropout and BatchNorm2d right after a conv (folded). Any other layer -- a depthwise conv, SiLU, a
squeeze-excitation gate, a padded max-pool -- becomes a float island: observed at its output and
run in float between dequantize and quantize (islands.py); ``check_supported`` lists them.
"""
from tinyeff import nn
from tinyeff.models.efficientnet import EfficientNet, MBConv
from tinyeff.models.mobilenet_v2 import InvertedResidual, MobileNetV2
from tinyeff.models.resnet import BasicBlock, Bottleneck, ResNet
from tinyeff.nn.surgery import replace_child, sequence_stages
from tinyeff.quant.fold import fold_batchnorm
from tinyeff.quant.observers import make_observer
from tinyeff.quant.qparams import fake_quant

__all__ = ["Observed", "PreparedModel", "prepare", "SKIP", "check_supported", "observed_modules"]

SKIP = (nn.Identity, nn.Dropout)                 # run as the identity in eval mode
PASS_THROUGH = (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)
WEIGHTED = (nn.Conv2d, nn.Linear)
CHAINS = (nn.Sequential, ResNet, MobileNetV2, EfficientNet)      # children run in definition order
RESIDUAL = (InvertedResidual, MBConv)                            # a Sequential body, then an identity add


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


def integer_weighted(module):
    """True for a Conv2d/Linear the int8 kernels run (a dense conv: groups=1, dilation=1)."""
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1
                                             and module.dilation == 1)


def runs_in_integers(module):
    """True if leaf ``module`` has an integer version; any other layer becomes a float island."""
    if isinstance(module, WEIGHTED):
        return integer_weighted(module)
    if isinstance(module, nn.Flatten):
        return module.start_dim == 1
    if isinstance(module, nn.AvgPool2d):
        return False
    if isinstance(module, nn.MaxPool2d):
        return not module.padding
    # NOTE: a BatchNorm2d right after a conv is folded away before this is asked; any other is an island
    return isinstance(module, PASS_THROUGH + SKIP + (nn.ReLU, nn.ReLU6))


def _islands(module, name):
    if isinstance(module, CHAINS + RESIDUAL + (BasicBlock, Bottleneck)):
        return [n for child_name, child in module.named_children() for n in _islands(child, f"{name}.{child_name}")]
    return [] if runs_in_integers(module) else [name]


def check_supported(model, name="model"):
    """[qualified names] of the layers that will run as float islands (no integer kernel), after BN folding."""
    return _islands(fold_batchnorm(model), name)


def residual_body(block):
    """(name, Sequential) of an inverted residual's or MBConv's body (torchvision's names differ)."""
    return ("conv", block.conv) if isinstance(block, InvertedResidual) else ("block", block.block)


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _wrap(parent, name, make_obs, fq):
    replace_child(parent, name, Observed(parent._modules[name], make_obs(), fq))


def integer_stages(parent, unwrap=None):
    """``sequence_stages`` of the layers the int8 kernels run (a depthwise conv is an island instead)."""
    return [st for st in sequence_stages(parent, skip=SKIP, unwrap=unwrap)
            if integer_weighted((unwrap or (lambda m: m))(st.layer[1]))]


def _instrument_sequence(parent, make_obs, fq, prefix=""):
    stages = integer_stages(parent)
    for stage in stages:
        _wrap(parent, (stage.relu or stage.layer)[0], make_obs, fq)   # fused conv + ReLU: observe after ReLU
    staged = {st.layer[0] for st in stages} | {st.relu[0] for st in stages if st.relu}
    for name, child in list(parent.named_children()):
        if name in staged:
            continue
        if isinstance(child, BasicBlock):
            _instrument_block(child, make_obs, fq, _join(prefix, name))
        elif isinstance(child, Bottleneck):
            _instrument_bottleneck(child, make_obs, fq, _join(prefix, name))
        elif isinstance(child, RESIDUAL):
            body_name, body = residual_body(child)
            _instrument_sequence(body, make_obs, fq, _join(_join(prefix, name), body_name))
            if child.use_res_connect:                               # observe the add's output
                _wrap(parent, name, make_obs, fq)
        elif isinstance(child, CHAINS):
            _instrument_sequence(child, make_obs, fq, _join(prefix, name))
        elif not runs_in_integers(child):
            _wrap(parent, name, make_obs, fq)                       # a float island: its output is quantized
            parent._modules[name].island_path = _join(prefix, name)


def _instrument_block(block, make_obs, fq, prefix=""):
    _wrap(block, "relu1", make_obs, fq)
    if not block.use_shortcut:
        _wrap(block, "relu2", make_obs, fq)                          # conv2 + ReLU fused, no add
        return
    _wrap(block, "conv2", make_obs, fq)                              # first input of the add
    if isinstance(block.shortcut, nn.Sequential):
        _instrument_sequence(block.shortcut, make_obs, fq, _join(prefix, "shortcut"))  # projection: second input
    _wrap(block, "relu2", make_obs, fq)                              # add + ReLU


def _instrument_bottleneck(block, make_obs, fq, prefix=""):
    # NOTE: explicit, not sequence_stages: relu3 follows bn3 in definition order but runs after the add
    _wrap(block, "relu1", make_obs, fq)                              # conv1 + ReLU fused
    _wrap(block, "relu2", make_obs, fq)                              # conv2 + ReLU fused
    if not block.use_shortcut:
        _wrap(block, "relu3", make_obs, fq)                          # conv3 + ReLU fused, no add
        return
    _wrap(block, "conv3", make_obs, fq)                              # first input of the add
    if isinstance(block.shortcut, nn.Sequential):
        _instrument_sequence(block.shortcut, make_obs, fq, _join(prefix, "shortcut"))
    _wrap(block, "relu3", make_obs, fq)                              # add + ReLU


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
