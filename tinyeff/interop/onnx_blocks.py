"""ONNX emitters of the zoo's composite blocks: each repeats its block's ``forward`` in ONNX nodes.

A model whose ``forward`` runs its children in definition order (``ResNet``, the MobileNets,
EfficientNet) is a chain and needs no emitter of its own; blocks with a residual add, a gate or a
skipped child do.
"""
from tinyeff.interop.onnx_float import emit, emit_children, emitter
from tinyeff.models.resnet import BasicBlock, ResNet


@emitter(ResNet)
def _resnet(g, m, x, prefix):
    return emit_children(g, m, x, prefix)


@emitter(BasicBlock)
def _basic_block(g, m, x, prefix):
    out = emit_children(g, m, x, prefix, ["conv1", "bn1", "relu1", "conv2", "bn2"])
    if m.use_shortcut:
        out = g.node("Add", [out, emit(g, m.shortcut, x, f"{prefix}.shortcut")], f"{prefix}.add")
    return emit(g, m.relu2, out, f"{prefix}.relu2")
