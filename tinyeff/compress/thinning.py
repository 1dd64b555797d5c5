"""Structured thinning: physically delete pruned filters, giving a smaller dense model.

The one idea: a filter whose activation is exactly zero everywhere contributes nothing downstream,
so deleting it (its weight row, bias and BatchNorm entry) together with the matching *input*
channel of the next layer leaves every output unchanged. ``prune(..., method="channel")`` masks
the filter, its bias and the following BatchNorm's weight and bias for that reason, so the masked
model's dead channels are exact zeros. Which channels are dead is read from the effective
weights, not assumed: a channel is removed only if (weight row, bias, BN beta - gamma*mean/std)
all give exactly 0.

Which layers are thinned together is ``channels.py``'s plan (``thinning_plan``, ``channel_groups``).

A thinned model records its layer shapes in ``model.thinned``; ``save`` writes kind="thinned" and
``tinyeff.io`` rebuilds the architecture and then shrinks each layer to the saved shapes.
"""
import copy

import numpy as np

from tinyeff import io, nn
from tinyeff.compress import masks as M
from tinyeff.compress.channels import channel_groups, thinning_plan
from tinyeff.compress.prune import attach_mask, get_mask, remove_pruning

def prune_channel_groups(model, amount, norm=1, optimizer=None):
    """Structured pruning of every ResNet stage group: the same channels in all of its writers.

    A channel's score is the sum over the group's writer convs of the L1 (or L2) norm of its
    filter. The pruned channels' filters and their BatchNorm weight and bias are masked.

    Args:
        amount: fraction of each group's still-alive channels to prune, or an int count.
    Raises:
        ValueError: bad ``amount`` (nothing is changed).
    """
    plans = []
    for group in channel_groups(model):
        convs = [model.get_submodule(c) for c, _ in group["producers"]]
        alive = np.ones(convs[0].out_channels, dtype=bool)
        scores = np.zeros(convs[0].out_channels)
        for conv in convs:
            w = conv.param("weight").data
            rows = np.abs(w.reshape(w.shape[0], -1).astype(np.float64))
            scores += rows.sum(axis=1) if norm == 1 else np.sqrt((rows ** 2).sum(axis=1))
            keep = get_mask(conv)
            if keep is not None:
                alive &= keep.reshape(len(keep), -1).any(axis=1)
        count = M.check_amount(amount, int(alive.sum()), what="channels")
        plans.append((group, M._drop_lowest(scores, alive, count)))
    for group, alive in plans:
        for conv_name, bn_name in group["producers"]:
            conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
            old = get_mask(conv)
            keep = alive.reshape(-1, *[1] * (conv.weight.data.ndim - 1)) & (True if old is None else old)
            attach_mask(conv, np.broadcast_to(keep, conv.weight.data.shape).copy(), optimizer=optimizer)
            attach_mask(bn, alive & (True if get_mask(bn) is None else get_mask(bn)), "weight", optimizer)
            attach_mask(bn, alive & (True if get_mask(bn, "bias") is None else get_mask(bn, "bias")), "bias", optimizer)
    return model


def _thin_group(model, group, changed, log):
    writers = [(model.get_submodule(c), model.get_submodule(b)) for c, b in group["producers"]]
    dead = np.logical_and.reduce([dead_channels(conv, bn) for conv, bn in writers])
    if not dead.any():
        return
    if dead.all():
        dead[0] = False
    keep = np.flatnonzero(~dead)
    for conv, bn in writers:
        _keep_outputs(conv, keep, log)
        _keep_bn(bn, keep, log)
    for name in group["consumers"]:
        _keep_inputs(model.get_submodule(name), keep, len(dead), False, log)
    for conv_name, bn_name in group["producers"]:
        changed[conv_name] = list(model.get_submodule(conv_name).weight.data.shape)
        changed[bn_name] = list(model.get_submodule(bn_name).weight.data.shape)
    for name in group["consumers"]:
        changed[name] = list(model.get_submodule(name).weight.data.shape)


def dead_channels(producer, bn=None):
    """Bool (OC,) array: True where the producer (+ BatchNorm) output channel is exactly 0 everywhere."""
    w = producer.param("weight").data
    dead = ~w.reshape(w.shape[0], -1).any(axis=1)
    if producer.bias is not None:
        dead &= producer.param("bias").data == 0
    if bn is not None:   # BN of an all-zero input: beta - gamma * mean / sqrt(var + eps)
        gamma, beta = bn.param("weight").data, bn.param("bias").data
        dead &= (beta - gamma * bn.running_mean / np.sqrt(bn.running_var + bn.eps)) == 0
    return dead


def thin(model, inplace=False, index_log=None):
    """A smaller dense model with every dead filter (and the inputs that read it) deleted.

    Args:
        model: a (channel-)pruned model; masks are made permanent in the result.
        inplace: modify ``model`` itself instead of a deep copy.
        index_log: optional list; every slice is appended as (module, parameter name, axis, kept
            indices), in order, so a caller can slice what it keeps per parameter (optimizer state).

    Returns:
        The thinned model, with ``thinned`` = {layer name: weight shape} for every layer that changed
        and the same ``arch``. Its outputs equal the masked model's (up to float summation order).
    """
    model = model if inplace else copy.deepcopy(model)
    remove_pruning(model)
    changed = {}
    for producer_name, bn_name, consumer_name, via_flatten in thinning_plan(model):
        producer = model.get_submodule(producer_name)
        bn = model.get_submodule(bn_name) if bn_name else None
        consumer = model.get_submodule(consumer_name)
        dead = dead_channels(producer, bn)
        if not dead.any():
            continue
        if dead.all():
            dead[0] = False      # keep one (all-zero) channel so every shape stays valid
        keep = np.flatnonzero(~dead)
        _keep_outputs(producer, keep, index_log)
        if bn is not None:
            _keep_bn(bn, keep, index_log)
        _keep_inputs(consumer, keep, len(dead), via_flatten, index_log)
        for name in (producer_name, bn_name, consumer_name):
            if name:
                changed[name] = list(model.get_submodule(name).weight.data.shape)
    for group in channel_groups(model):
        _thin_group(model, group, changed, index_log)
    model.thinned = {**getattr(model, "thinned", {}), **changed}
    return model


def _set_weight(layer, w, b_index=None):
    layer.weight = nn.Parameter(np.ascontiguousarray(w))
    if b_index is not None and layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.data[b_index].copy())


def _note(log, module, names, axis, keep):
    if log is not None:
        log.extend((module, name, axis, keep) for name in names if getattr(module, name, None) is not None)


def _keep_outputs(layer, keep, log=None):
    _note(log, layer, ("weight", "bias"), 0, keep)
    _set_weight(layer, layer.weight.data[keep], keep)
    if isinstance(layer, nn.Conv2d):
        layer.out_channels = len(keep)
    else:
        layer.out_features = len(keep)


def _keep_bn(bn, keep, log=None):
    _note(log, bn, ("weight", "bias"), 0, keep)
    bn.weight = nn.Parameter(bn.weight.data[keep].copy())
    bn.bias = nn.Parameter(bn.bias.data[keep].copy())
    bn.set_buffer("running_mean", bn.running_mean[keep].copy())
    bn.set_buffer("running_var", bn.running_var[keep].copy())
    bn.num_features = len(keep)


def _keep_inputs(layer, keep, channels, via_flatten, log=None):
    if via_flatten:   # channel c of the conv output owns features [c * HW, (c + 1) * HW) after Flatten
        hw = layer.weight.data.shape[1] // channels
        keep = (keep[:, None] * hw + np.arange(hw)[None, :]).reshape(-1)
    _note(log, layer, ("weight",), 1, keep)
    _set_weight(layer, layer.weight.data[:, keep])
    if isinstance(layer, nn.Conv2d):
        layer.in_channels = len(keep)
    else:
        layer.in_features = len(keep)


# --- model files -------------------------------------------------------------------------------------
def save(model, path, **header_fields):
    """Save a thinned model as kind="thinned", recording the changed layer shapes in the header."""
    return io.save(model, path, kind="thinned", thinned=getattr(model, "thinned", {}),
                   preprocess=getattr(model, "preprocess", None), **header_fields)


def load_thinned(header, arrays):
    """The ``io`` reader of kind "thinned": the architecture, resized to the header's layer shapes."""
    return io.build_from_header(header, arrays, "thinned model")
