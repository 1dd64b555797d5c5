"""Model surgery: the small edits compression passes make to a built model.

``replace_child`` swaps a layer in place, ``join_name`` builds the dotted names ``named_modules``
yields, ``sequence_stages`` finds each conv/linear with the BatchNorm, ReLU and max-pool after it
(the group that BN folding, quantization, sparse kernels and channel pruning all look for), and
``resize_layer`` gives a layer parameters of a saved (thinned) shape so a state dict of that shape
can be loaded into it. What each pass replaces a layer *with* (a folded conv, a sparse or integer
layer) stays in that pass.
"""
from typing import NamedTuple

import numpy as np

from tinyeff.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear
from tinyeff.nn.module import Parameter
from tinyeff.nn.simple import MaxPool2d, ReLU

__all__ = ["Stage", "join_name", "replace_child", "resize_layer", "sequence_stages"]


def join_name(prefix, name):
    """The qualified name of child ``name`` under ``prefix`` ("" is the root)."""
    return f"{prefix}.{name}" if prefix else name


def replace_child(parent, name, new):
    """Swap child ``name`` of ``parent`` for ``new`` keeping its place in definition order.

    NOTE: ``setattr`` would re-insert the name at the end of ``_modules``, and the order of
    children is what Sequential runs and what the conv -> BN pairing reads.
    """
    parent._modules[name] = new
    object.__setattr__(parent, name, new)


def resize_layer(module, shape):
    """Give Conv2d / Linear / BatchNorm ``module`` fresh parameters whose weight has ``shape``.

    The values are placeholders (zeros; ones for a BN scale and running variance) to be overwritten
    by ``load_state_dict``; the channel / feature counts the layer reports follow the new shape.
    """
    shape = tuple(int(s) for s in shape)
    if isinstance(module, (BatchNorm1d, BatchNorm2d)):
        f = shape[0]
        module.weight, module.bias = Parameter(np.ones(f, np.float32)), Parameter(np.zeros(f, np.float32))
        module.set_buffer("running_mean", np.zeros(f, np.float32))
        module.set_buffer("running_var", np.ones(f, np.float32))
        module.num_features = f
        return
    module.weight = Parameter(np.zeros(shape, np.float32))
    if module.bias is not None:
        module.bias = Parameter(np.zeros(shape[0], np.float32))
    if isinstance(module, Conv2d):
        module.out_channels, module.in_channels = shape[0], shape[1] * module.groups
    else:
        module.out_features, module.in_features = shape


class Stage(NamedTuple):
    """A Conv2d/Linear child and the layers right after it that passes treat with it.

    Each field is a ``(child name, module)`` pair; ``bn``, ``relu`` and ``pool`` are None when absent.
    """
    layer: tuple
    bn: tuple = None
    relu: tuple = None
    pool: tuple = None


def sequence_stages(parent, skip=(), unwrap=None):
    """Yield a ``Stage`` for every Conv2d/Linear child of ``parent``, in definition order.

    After the layer come, each optional and in this order, a BatchNorm, a ReLU and a MaxPool2d, each
    the next child that is not an instance of ``skip`` (e.g. Identity and Dropout, which run as the
    identity at inference). ``unwrap(child)`` gives the module whose type is matched, for a model
    whose layers sit inside wrappers (quantization observers); the stage holds the children
    themselves. What a pass does with the group (fold the BN, fuse the ReLU and the
    pool into a kernel, observe after the ReLU, mask the BN with the filters) is up to the pass.

    NOTE: this reads definition order. In an ``nn.Sequential`` that is the run order; in a custom
    module it need not be (``BasicBlock`` defines ``relu2`` right after ``bn2``, but its residual
    add runs between them), so a pass that fuses or observes a ReLU does so only in Sequentials.
    """
    children = list(parent.named_children())
    inner = [(unwrap or (lambda m: m))(child) for _, child in children]
    for i, (name, child) in enumerate(children):
        if not isinstance(inner[i], (Conv2d, Linear)):
            continue
        found, j = {}, i + 1
        for field, kinds in (("bn", (BatchNorm1d, BatchNorm2d)), ("relu", ReLU), ("pool", MaxPool2d)):
            while j < len(children) and skip and isinstance(inner[j], skip):
                j += 1
            if j < len(children) and isinstance(inner[j], kinds):
                found[field] = children[j]
                j += 1
        yield Stage((name, child), **found)
