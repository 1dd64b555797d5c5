"""Sparse (CSR) convolution and linear kernels, float32 and u8 x s8: spec.py, numba.py, c.py."""
