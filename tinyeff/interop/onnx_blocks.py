"""ONNX emitters of the zoo's composite blocks: each repeats its block's ``forward`` in ONNX nodes.

A model whose ``forward`` runs its children in definition order (``ResNet``, the MobileNets,
EfficientNet) is a chain and needs no emitter of its own; blocks with a residual add, a gate or a
skipped child do.
"""
import numpy as np

from tinyeff import nn
from tinyeff.interop.onnx_float import emit, emit_children, emitter
from tinyeff.models.blocks import SqueezeExcitation
from tinyeff.models.efficientnet import EfficientNet, MBConv
from tinyeff.models.mobilenet_v2 import InvertedResidual, MobileNetV2
from tinyeff.models.resnet import BasicBlock, Bottleneck, ResNet


@emitter(ResNet, MobileNetV2, EfficientNet)
def _chain(g, m, x, prefix):
    return emit_children(g, m, x, prefix)


@emitter(nn.ReLU6)
def _relu6(g, m, x, prefix):
    return g.node("Clip", [x, g.const(f"{prefix}.min", np.float32(0)), g.const(f"{prefix}.max", np.float32(6))],
                  prefix)


@emitter(nn.SiLU)
def _silu(g, m, x, prefix):
    # x * sigmoid(x): opset 17 has no SiLU operator; ONNX Runtime fuses the pair
    return g.node("Mul", [x, g.node("Sigmoid", [x], f"{prefix}.sigmoid")], prefix)


@emitter(SqueezeExcitation)
def _squeeze_excitation(g, m, x, prefix):
    gate = emit_children(g, m, x, prefix, ["avgpool", "fc1", "activation", "fc2", "scale_activation"])
    return g.node("Mul", [x, gate], prefix)


@emitter(InvertedResidual)
def _inverted_residual(g, m, x, prefix):
    out = emit(g, m.conv, x, f"{prefix}.conv")
    return g.node("Add", [x, out], f"{prefix}.add") if m.use_res_connect else out


@emitter(MBConv)
def _mbconv(g, m, x, prefix):
    out = emit(g, m.block, x, f"{prefix}.block")
    return g.node("Add", [out, x], f"{prefix}.add") if m.use_res_connect else out


@emitter(Bottleneck)
def _bottleneck(g, m, x, prefix):
    out = emit_children(g, m, x, prefix, ["conv1", "bn1", "relu1", "conv2", "bn2", "relu2", "conv3", "bn3"])
    if m.use_shortcut:
        out = g.node("Add", [out, emit(g, m.shortcut, x, f"{prefix}.shortcut")], f"{prefix}.add")
    return emit(g, m.relu3, out, f"{prefix}.relu3")


@emitter(BasicBlock)
def _basic_block(g, m, x, prefix):
    out = emit_children(g, m, x, prefix, ["conv1", "bn1", "relu1", "conv2", "bn2"])
    if m.use_shortcut:
        out = g.node("Add", [out, emit(g, m.shortcut, x, f"{prefix}.shortcut")], f"{prefix}.add")
    return emit(g, m.relu2, out, f"{prefix}.relu2")
