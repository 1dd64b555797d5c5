"""Weight initializers (Glorot & Bengio 2010; He et al. 2015). Each returns a new float32 array.

Fans follow PyTorch: for a Linear weight (OUT, IN) fan_in = IN, fan_out = OUT; for a Conv2d weight
(OC, C/groups, KH, KW) fan_in = C/groups*KH*KW and fan_out = OC*KH*KW.

Inside ``with shapes_only():`` every initializer returns ``np.zeros`` without drawing numbers. The
operating system hands out zeroed pages only when they are first written, so a model built this
way has every shape but occupies almost no memory: ``tinyeff.io`` builds the architecture a file
names this way to check its size and tensor shapes before trusting the file's header.
"""
import contextlib
import contextvars
import functools
import math

import numpy as np

from tinyeff.random import generator

GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}
_SHAPES_ONLY = contextvars.ContextVar("tinyeff_init_shapes_only", default=False)


@contextlib.contextmanager
def shapes_only():
    """Initializers return untouched zero arrays (no random draws, no resident memory) in this block."""
    token = _SHAPES_ONLY.set(True)
    try:
        yield
    finally:
        _SHAPES_ONLY.reset(token)


def _deferrable(init):
    @functools.wraps(init)
    def wrapper(shape, *args, **kwargs):
        if _SHAPES_ONLY.get():
            return np.zeros(shape, dtype=np.float32)
        return init(shape, *args, **kwargs)
    return wrapper


def fans(shape):
    """(fan_in, fan_out) of a weight of ``shape``."""
    if len(shape) < 2:
        raise ValueError(f"init: fans need a weight with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _gain(nonlinearity):
    if nonlinearity not in GAINS:
        raise ValueError(f"init: unknown nonlinearity {nonlinearity!r}; use one of {sorted(GAINS)}")
    return GAINS[nonlinearity]


@_deferrable
def xavier_uniform(shape, gain=1.0, rng=None):
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return (rng or generator()).uniform(-bound, bound, shape).astype(np.float32)


@_deferrable
def xavier_normal(shape, gain=1.0, rng=None):
    fan_in, fan_out = fans(shape)
    return (rng or generator()).normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape).astype(np.float32)


@_deferrable
def kaiming_uniform(shape, mode="fan_in", nonlinearity="relu", rng=None):
    fan = fans(shape)[0 if mode == "fan_in" else 1]
    bound = _gain(nonlinearity) * math.sqrt(3.0 / fan)
    return (rng or generator()).uniform(-bound, bound, shape).astype(np.float32)


@_deferrable
def kaiming_normal(shape, mode="fan_in", nonlinearity="relu", rng=None):
    fan = fans(shape)[0 if mode == "fan_in" else 1]
    return (rng or generator()).normal(0.0, _gain(nonlinearity) / math.sqrt(fan), shape).astype(np.float32)


def zeros(shape):
    return np.zeros(shape, dtype=np.float32)


@_deferrable
def ones(shape):
    return np.ones(shape, dtype=np.float32)


SCHEMES = ("kaiming", "xavier")
