"""tinyeff: a from-scratch deep-learning engine in NumPy whose own kernels make compression pay off."""
__version__ = "0.1.0"
