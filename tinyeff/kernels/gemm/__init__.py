"""float32 GEMM: NumPy's BLAS is the reference and the tier every op uses (see spec.py)."""
