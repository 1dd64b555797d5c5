"""Inverted dropout: zero each element with probability p and scale survivors by 1/(1-p), so the
expected activation is unchanged and evaluation needs no rescaling. Derived from ``mul``."""
import numpy as np

from tinyeff.ops.elementwise import mul
from tinyeff.random import generator
from tinyeff.tensor import Tensor


def dropout(x, p=0.5, training=True, rng=None):
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p={p} must be in [0, 1)")
    if not training or p == 0.0:
        return x
    rng = rng or generator()
    keep = (rng.random(x.shape) >= p).astype(x.dtype) / np.asarray(1.0 - p, dtype=x.dtype)
    return mul(x, Tensor(keep))
