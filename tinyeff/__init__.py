"""tinyeff: a from-scratch deep-learning engine in NumPy whose own kernels make compression pay off."""
from tinyeff.tensor import Tensor, is_grad_enabled, no_grad
from tinyeff.random import manual_seed
from tinyeff import io, nn, optim, models  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Tensor", "no_grad", "is_grad_enabled", "manual_seed", "io", "nn", "optim", "models"]
