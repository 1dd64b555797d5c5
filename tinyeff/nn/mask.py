"""A weight mask as module state: a ``<param>_mask`` buffer plus the transform ``w -> w * mask``.

The mask lives in the state dict like any buffer, so it is saved with the model; the transform is
code, so it cannot be saved. ``Module.load_state_dict`` therefore re-attaches the transform for
every ``<param>_mask`` array it is given (``attach``), and a pruned model round-trips through any
file kind or checkpoint without the loader knowing about pruning. Choosing which weights to mask is
``tinyeff.compress``'s business, not this file's.
"""
import numpy as np

from tinyeff.tensor import Tensor

TRANSFORM_KEY = "prune"
SUFFIX = "_mask"


class MaskTransform:
    """``w -> w * mask`` reading the module's ``<name>_mask`` buffer (so a reloaded mask is used)."""

    def __init__(self, module, buffer_name):
        self.module, self.buffer_name = module, buffer_name
        self._cache = (None, None, None)      # (mask array, dtype, float mask)

    def __call__(self, w):
        mask = getattr(self.module, self.buffer_name)
        if self._cache[0] is not mask or self._cache[1] != w.dtype:
            self._cache = (mask, w.dtype, Tensor(mask.astype(w.dtype)))
        return w * self._cache[2]


def mask_target(module, buffer_name):
    """The parameter name a ``<param>_mask`` buffer would mask on ``module``, or None."""
    if not buffer_name.endswith(SUFFIX):
        return None
    pname = buffer_name[:-len(SUFFIX)]
    return pname if module._parameters.get(pname) is not None else None


def attach(module, pname, keep):
    """Set ``module.<pname>_mask`` to ``keep`` (bool, the parameter's shape); add the transform once."""
    buffer_name = pname + SUFFIX
    keep = np.asarray(keep, dtype=bool)
    if getattr(module, buffer_name, None) is None:
        module.register_buffer(buffer_name, keep)
        module.add_param_transform(pname, TRANSFORM_KEY, MaskTransform(module, buffer_name))
    else:
        module.set_buffer(buffer_name, keep)


def detach(module, pname):
    """Drop the mask and its transform from ``module.<pname>`` (the weight data is left as it is)."""
    module.remove_param_transform(pname, TRANSFORM_KEY)
    module.register_buffer(pname + SUFFIX, None)
