"""Numba tier: jitted kernels with the same names and signatures as ``ref/``.

Importing this package registers every Numba kernel. Each module keeps its loops in private
``@njit(cache=True)`` functions that take plain arrays, and a thin wrapper that validates once.
"""
from tinyeff.kernels.numba import dense, sparse  # noqa: F401
from tinyeff.kernels.numba import int8  # noqa: F401
