"""Layout helpers shared by kernels, ops and the compression code: geometry, packed formats, fixed point.

Each module holds one idea that more than one kernel family (and code outside ``kernels/``) relies on,
so no caller has to reach into a family's reference tier for a helper:

    geometry.py     conv output sizes and the geometry checks every conv-like kernel runs
    direct.py       the stride-1 "flat shift" layout a direct (no im2col) convolution reads
    csr.py          SparseWeight: the CSR format every sparse tier shares
    packed_s8.py    PackedS8: int8 weights packed for the VNNI/AVX2 GEMM micro-kernels
    fixed_point.py  gemmlowp's fixed-point multiplier and rounding shifts (int8 requantization)
"""
