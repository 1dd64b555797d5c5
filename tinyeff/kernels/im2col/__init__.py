"""im2col / col2im: lower a convolution to one GEMM (spec.py), with Numba and C tiers."""
