"""C tier of float32 batch norm for training: marshalling over csrc/norm/bnorm.c.

Each body receives arguments spec.py already checked (float32 operands included), allocates every
output, hands the C function contiguous buffers and sizes, and turns a nonzero status into an error
with ``c.check``. The C loops make two passes per channel (reduce, then write) with OpenMP over
channels; see the comment at the top of csrc/norm/bnorm.c for the loop order and the numerics. The
vector bodies (csrc/norm/bnorm_vec.h: AVX-512, AVX2, NEON) are picked at run time from ``tinyeff.kernels.cpu``.
"""
import numpy as np

from tinyeff.kernels import buffers
from tinyeff.kernels.c import check, ffi, isa_code, lib, ptr
from tinyeff.kernels.contract import implements


def _ptr(a):
    """A float* into contiguous float32 array ``a`` (no copy)."""
    return ptr("float", a)


ISAS = ("portable", "avx2", "avx512", "neon")   # csrc/norm/bnorm.c: portable loops and bnorm_vec.h per ISA


@implements("batchnorm_train_f32", "c", isa=ISAS)
def batchnorm_train_f32(x, gamma, beta, eps, relu=False, residual=None, isa=None):
    name = "batchnorm_train_f32"
    n, c, h, w = x.shape
    x, gamma, beta = (np.ascontiguousarray(a) for a in (x, gamma, beta))
    y = buffers.empty_like(x)
    mean, var, invstd = (np.empty(c, dtype=np.float32) for _ in range(3))
    res = ffi().NULL if residual is None else _ptr(np.ascontiguousarray(residual))
    check(lib().tinyeff_batchnorm_train_f32(_ptr(x), _ptr(gamma), _ptr(beta), res, int(bool(relu)), n, c,
                                            h * w, float(eps), isa_code(name, isa), _ptr(y), _ptr(mean),
                                            _ptr(var), _ptr(invstd)), name)
    return y, mean, var, invstd


@implements("batchnorm_backward_f32", "c", isa=ISAS)
def batchnorm_backward_f32(grad_out, x, mean, invstd, gamma, relu_beta=None, isa=None):
    beta = None if relu_beta is None else np.ascontiguousarray(relu_beta)
    return _backward("batchnorm_backward_f32", grad_out, x, mean, invstd, gamma, beta, None, isa)[:3]


@implements("batchnorm_add_relu_backward_f32", "c", isa=ISAS)
def batchnorm_add_relu_backward_f32(grad_out, x, mean, invstd, gamma, out, isa=None):
    return _backward("batchnorm_add_relu_backward_f32", grad_out, x, mean, invstd, gamma, None,
                     np.ascontiguousarray(out), isa)


def _backward(name, grad_out, x, mean, invstd, gamma, relu_beta, out, isa):
    """The one C backward: the ReLU mask recomputed from x with ``relu_beta``, or read from the
    fused output ``out`` (then the masked gradient, the shortcut's, is written too)."""
    n, c, h, w = x.shape
    grad_out, x, mean, invstd, gamma = (np.ascontiguousarray(a) for a in (grad_out, x, mean, invstd, gamma))
    grad_x = buffers.empty_like(x)
    masked = None if out is None else buffers.empty_like(x)
    grad_gamma, grad_beta = np.empty(c, dtype=np.float32), np.empty(c, dtype=np.float32)
    null = ffi().NULL
    check(lib().tinyeff_batchnorm_backward_f32(_ptr(grad_out), _ptr(x), _ptr(mean), _ptr(invstd), _ptr(gamma),
                                               null if relu_beta is None else _ptr(relu_beta),
                                               null if out is None else _ptr(out), n, c, h * w,
                                               isa_code(name, isa), _ptr(grad_x), _ptr(grad_gamma),
                                               _ptr(grad_beta), null if masked is None else _ptr(masked)), name)
    return grad_x, grad_gamma, grad_beta, masked
