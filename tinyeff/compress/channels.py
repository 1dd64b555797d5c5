"""Which channels can be removed together: the plan structured pruning and thinning share.

Which (producer, consumer) pairs are thinned:
- inside an ``nn.Sequential``: a Conv2d/Linear and the next Conv2d/Linear, when only zero-preserving
  layers (ReLU, LeakyReLU, ELU, Tanh, pooling, Dropout, Identity, one BatchNorm right after the
  producer) sit between them, plus a Flatten when a conv feeds a Linear (each channel then owns
  H*W consecutive input features of the Linear);
- inside a ResNet ``BasicBlock``: conv1 -> bn1 -> conv2 (the block's inner channels);
- a ResNet *stage group*: the channels a stage's residual additions share. Every layer that writes
  them (the stem conv + BN for stage 1, each block's conv2 + bn2, the projection shortcut's conv +
  BN) and every layer that reads them (each block's conv1 and projection shortcut conv, the next
  stage's first block, the final Linear) is thinned together, and a channel goes only if it is
  dead in *every* writer, so each residual sum keeps matching channels. ``prune_channel_groups``
  masks such groups consistently.
Grouped/depthwise convolutions are never thinned.

This file only reads a model's structure; ``prune.py`` masks the channels and ``thinning.py``
deletes them.
"""
from tinyeff import nn
from tinyeff.models.resnet import BasicBlock, ResNet

PRUNABLE = (nn.Conv2d, nn.Linear)
_ZERO_PRESERVING = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d,
                    nn.AdaptiveAvgPool2d, nn.Dropout, nn.Identity)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def thinning_plan(model):
    """List of (producer name, BatchNorm name or None, consumer name, via_flatten) pairs to thin."""
    plan = []
    for prefix, parent in model.named_modules():
        if isinstance(parent, BasicBlock):
            plan.append((_join(prefix, "conv1"), _join(prefix, "bn1"), _join(prefix, "conv2"), False))
        elif isinstance(parent, nn.Sequential):
            plan.extend(_sequential_pairs(prefix, list(parent.named_children())))
    return [p for p in plan if _ungrouped(model, p)]


def _sequential_pairs(prefix, children):
    pairs = []
    for i, (name, producer) in enumerate(children):
        if not isinstance(producer, PRUNABLE):
            continue
        bn, flatten = None, False
        for j, (later_name, later) in enumerate(children[i + 1:], start=i + 1):
            if isinstance(later, PRUNABLE):
                fits = isinstance(later, nn.Linear) if flatten else \
                    isinstance(producer, nn.Conv2d) == isinstance(later, nn.Conv2d)
                if fits:
                    pairs.append((_join(prefix, name), bn and _join(prefix, bn),
                                  _join(prefix, later_name), flatten))
                break
            if isinstance(later, BATCHNORMS) and bn is None and j == i + 1:
                bn = later_name
            elif isinstance(later, nn.Flatten) and isinstance(producer, nn.Conv2d) and not flatten:
                flatten = True
            elif not isinstance(later, _ZERO_PRESERVING):
                break
    return pairs


def _ungrouped(model, pair):
    return all(getattr(model.get_submodule(n), "groups", 1) == 1 for n in (pair[0], pair[2]))


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def channel_groups(model):
    """ResNet stage groups: list of {"producers": [(conv, bn)], "consumers": [layer]} (names)."""
    groups = []
    for prefix, net in model.named_modules():
        if not isinstance(net, ResNet):
            continue
        producers = [(_join(prefix, "conv1"), _join(prefix, "bn1"))]
        consumers = []
        for s, stage in enumerate(net.layers):
            for b, block in enumerate(stage):
                name = _join(prefix, f"layers.{s}.{b}")
                consumers.append(f"{name}.conv1")
                if isinstance(block.shortcut, nn.Sequential):          # projection: a new group starts
                    consumers.append(f"{name}.shortcut.0")
                    groups.append({"producers": producers, "consumers": consumers})
                    producers, consumers = [(f"{name}.shortcut.0", f"{name}.shortcut.1")], []
                    consumers = []
                producers.append((f"{name}.conv2", f"{name}.bn2"))
        consumers.append(_join(prefix, "fc"))
        groups.append({"producers": producers, "consumers": consumers})
    return groups
