"""How the conv2d op lowers a dense float convolution: the direct kernel, or im2col + one GEMM.

The direct kernel (``conv2d_f32`` on its C tier, csrc/dconv.c) holds 4 output channels x 64 or 96
output positions in registers for the whole reduction and writes no im2col matrix. On small output
planes those register tiles run mostly empty and im2col + BLAS wins, so the op asks ``use_direct``
per call. The threshold is a plane size: below ``DIRECT_MIN_POSITIONS`` output positions per plane
the GEMM lowering is faster (forward + backward, one thread, 3x3 convs; ``bench/bench_dense.py``'s
``test_conv2d_op_forward_backward`` times both paths per layer shape side by side).

Also here: the input-gradient filter that lets the direct kernel compute a stride-1 input gradient
as one more convolution (``flipped_weight``).
"""
import numpy as np

from tinyeff.kernels import registry

DIRECT_MIN_POSITIONS = 40


def use_direct(x, oh, ow):
    """True if the conv2d op should run ``x`` (N, C, H, W) through the direct kernels for an
    (OH, OW) output: float32, a plane large enough for the register tiles, and a direct tier on."""
    return (x.dtype == np.float32 and oh * ow >= DIRECT_MIN_POSITIONS
            and registry.active_tier("conv2d_f32") != "ref")


def flipped_weight(w):
    """(OC, C, KH, KW) -> (C, OC, KH, KW) rotated 180 degrees: the input-gradient filter."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
