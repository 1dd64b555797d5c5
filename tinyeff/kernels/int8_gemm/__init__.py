"""int8 GEMMs: raw int32 products, the packed-weight GEMM and its fused requantizing epilogue (spec.py)."""
