"""Model surgery: the small edits compression passes make to a built model.

``replace_child`` swaps a layer in place, ``join_name`` builds the dotted names ``named_modules``
yields, and ``resize_layer`` gives a layer parameters of a saved (thinned) shape so a state dict of
that shape can be loaded into it. What each pass replaces a layer *with* (a folded conv, a sparse
or integer layer) stays in that pass.
"""
import numpy as np

from tinyeff.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d
from tinyeff.nn.module import Parameter

__all__ = ["join_name", "replace_child", "resize_layer"]


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
