"""The default random generator for weight initialization and dropout, seeded by ``manual_seed``."""
import numpy as np

_state = {"rng": np.random.default_rng(0)}


def manual_seed(seed):
    """Reseed tinyeff's default generator (initializers, dropout) for reproducible runs."""
    _state["rng"] = np.random.default_rng(seed)


def generator():
    """The current default ``np.random.Generator``."""
    return _state["rng"]
