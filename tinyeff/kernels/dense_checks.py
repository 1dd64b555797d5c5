"""Argument checks shared by the Numba and C float32 dense tiers (kept free of Numba and cffi
imports so either tier loads without the other). The reference kernels validate geometry with
``ref.im2col.check_conv_geometry`` and ``ref.pool.check_pool_geometry``; these add what only the
faster tiers need: float32 operands and a well-formed argmax.
"""
import numpy as np


def check_f32(name, **arrays):
    """Raise TypeError unless every keyword array is float32."""
    for arg, a in arrays.items():
        if a.dtype != np.float32:
            raise TypeError(f"{name}: {arg} is {a.dtype}; the numba and c tiers take float32 "
                            f"(cast with .astype(np.float32), or use tier='ref' for float64)")


def check_pool_backward(grad_out, argmax, x_shape, name):
    """Validate max-pool backward operands once; raise ValueError/TypeError naming the fix."""
    check_f32(name, grad_out=grad_out)
    if argmax.shape != grad_out.shape or argmax.dtype != np.int64 or len(x_shape) != 4 \
            or grad_out.shape[:2] != tuple(x_shape[:2]):
        raise ValueError(f"{name}: grad_out {grad_out.shape}, argmax {argmax.shape} "
                         f"({argmax.dtype}) and x_shape {tuple(x_shape)} do not match; pass the "
                         "argmax maxpool2d_f32 returned for this input")
    hw = int(x_shape[2]) * int(x_shape[3])
    if argmax.size and (argmax.min() < 0 or argmax.max() >= hw):
        raise ValueError(f"{name}: argmax holds indices outside [0, {hw}), the H*W of x_shape "
                         f"{tuple(x_shape)}")
