"""Batch-norm folding: merge an inference-mode BatchNorm into the convolution before it.

In eval mode ``bn(y) = gamma * (y - mean) / sqrt(var + eps) + beta`` is a per-channel affine map,
so with ``k = gamma / sqrt(var + eps)`` the pair conv -> bn equals one conv with weight
``w * k[oc]`` and bias ``(b - mean) * k + beta``. Quantizing the folded weight is what the integer
model runs, so folding happens before calibration (and before QAT: the fine-tuning then sees
exactly the weights that will be quantized, with BN statistics frozen at their trained values).

Where the BN sits: a conv and a BN are a pair when the BN is the conv's next sibling in
definition order. That holds for every network in ``tinyeff.models`` (Sequential stacks,
``ResNet.conv1/bn1`` and ``BasicBlock.conv1/bn1``, ``conv2/bn2``, the projection shortcut).
"""
import copy

import numpy as np

from tinyeff import nn
from tinyeff.nn.surgery import replace_child, sequence_stages

__all__ = ["fold_bn_weights", "fold_batchnorm"]


def fold_bn_weights(w, b, bn):
    """Fold eval-mode ``bn`` into conv weight ``w`` (OC, C, KH, KW) and bias ``b`` (OC,) or None.

    Returns:
        (w_folded float32 (OC, C, KH, KW), b_folded float32 (OC,)).
    """
    if w.shape[0] != bn.num_features:
        raise ValueError(f"fold_bn_weights: conv has {w.shape[0]} output channels but the BatchNorm "
                         f"normalises {bn.num_features}")
    k = bn.weight.data.astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    b = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
    w_folded = w.astype(np.float64) * k.reshape(-1, *([1] * (w.ndim - 1)))
    b_folded = (b - bn.running_mean) * k + bn.bias.data.astype(np.float64)
    return w_folded.astype(np.float32), b_folded.astype(np.float32)


def _folded_conv(conv, bn):
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True)
    w = conv.param("weight").data                     # transforms applied: a pruning mask stays in effect
    b = None if conv.bias is None else conv.param("bias").data
    w, b = fold_bn_weights(w, b, bn)
    new.weight.data, new.bias.data = w, b
    for name, buf in conv._buffers.items():           # keep a pruning mask (weight_mask) with the weight
        new.register_buffer(name, None if buf is None else buf.copy())
    return new


def _fold_children(module):
    for stage in list(sequence_stages(module)):
        (name, conv), bn = stage.layer, stage.bn
        if isinstance(conv, nn.Conv2d) and bn is not None and isinstance(bn[1], nn.BatchNorm2d):
            replace_child(module, name, _folded_conv(conv, bn[1]))
            replace_child(module, bn[0], nn.Identity())
    for child in module.children():
        if not isinstance(child, (nn.Conv2d, nn.BatchNorm2d)):
            _fold_children(child)


def fold_batchnorm(model):
    """A copy of ``model`` (eval mode) with every conv -> BatchNorm2d pair folded into one conv.

    The BN is replaced by ``nn.Identity`` so module names stay stable; the original is untouched.
    ``arch`` and ``preprocess`` attributes are carried over.
    """
    folded = copy.deepcopy(model)
    folded.eval()
    _fold_children(folded)
    return folded
