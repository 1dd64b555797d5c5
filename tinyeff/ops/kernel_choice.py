"""Which kernel tier an op uses for an array: the registry's best for float32, the reference otherwise.

Faster tiers are float32 only; float64 (gradient checks) and float16 (mixed precision) run on the
NumPy reference, which accepts any float dtype.
"""
import numpy as np

from tinyeff import kernels


def kernel_for(name, x):
    """The function of kernel ``name`` suited to the dtype of array ``x``."""
    if x.dtype == np.float32:
        return kernels.get(name)
    return kernels.get(name, "ref")
