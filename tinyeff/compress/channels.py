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
from tinyeff.nn.surgery import join_name, sequence_stages

PRUNABLE = (nn.Conv2d, nn.Linear)
_ZERO_PRESERVING = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d,
                    nn.AdaptiveAvgPool2d, nn.Dropout, nn.Identity)


def thinning_plan(model):
    """List of (producer name, BatchNorm name or None, consumer name, via_flatten) pairs to thin."""
    plan = []
    for prefix, parent in model.named_modules():
        if isinstance(parent, BasicBlock):
            plan.append((join_name(prefix, "conv1"), join_name(prefix, "bn1"), join_name(prefix, "conv2"), False))
        elif isinstance(parent, nn.Sequential):
            plan.extend(_sequential_pairs(prefix, parent))
    return [p for p in plan if _ungrouped(model, p)]


def _sequential_pairs(prefix, parent):
    """Each stage's layer and the next Conv2d/Linear it feeds through zero-preserving layers only."""
    children = list(parent.named_children())
    position = {name: i for i, (name, _) in enumerate(children)}
    pairs = []
    for stage in sequence_stages(parent):
        name, producer = stage.layer
        bn = stage.bn and stage.bn[0]                   # a BN right after the producer is thinned with it
        flatten = False
        for later_name, later in children[position[name] + 1 + (bn is not None):]:
            if isinstance(later, PRUNABLE):
                fits = isinstance(later, nn.Linear) if flatten else \
                    isinstance(producer, nn.Conv2d) == isinstance(later, nn.Conv2d)
                if fits:
                    pairs.append((join_name(prefix, name), bn and join_name(prefix, bn),
                                  join_name(prefix, later_name), flatten))
                break
            if isinstance(later, nn.Flatten) and isinstance(producer, nn.Conv2d) and not flatten:
                flatten = True
            elif not isinstance(later, _ZERO_PRESERVING):
                break
    return pairs


def _ungrouped(model, pair):
    return all(getattr(model.get_submodule(n), "groups", 1) == 1 for n in (pair[0], pair[2]))


def channel_groups(model):
    """ResNet stage groups: list of {"producers": [(conv, bn)], "consumers": [layer]} (names)."""
    groups = []
    for prefix, net in model.named_modules():
        if not isinstance(net, ResNet):
            continue
        producers = [(join_name(prefix, "conv1"), join_name(prefix, "bn1"))]
        consumers = []
        for s, stage in enumerate(net.layers):
            for b, block in enumerate(stage):
                name = join_name(prefix, f"layers.{s}.{b}")
                consumers.append(f"{name}.conv1")
                if isinstance(block.shortcut, nn.Sequential):          # projection: a new group starts
                    consumers.append(f"{name}.shortcut.0")
                    groups.append({"producers": producers, "consumers": consumers})
                    producers, consumers = [(f"{name}.shortcut.0", f"{name}.shortcut.1")], []
                    consumers = []
                producers.append((f"{name}.conv2", f"{name}.bn2"))
        consumers.append(join_name(prefix, "fc"))
        groups.append({"producers": producers, "consumers": consumers})
    return groups
