"""C tier of max-pooling: marshalling over csrc/pool/pool.c (float32) and csrc/im2col/im2col_8.c (uint8).

Each body receives arguments spec.py already checked, allocates the outputs, hands C contiguous
buffers and sizes, and turns a nonzero status into an error with ``c.check``.
"""
import numpy as np

from tinyeff.kernels.c import check, ffi, isa_code, lib, ptr
from tinyeff.kernels.contract import implements

ISAS = ("portable", "avx2", "avx512", "neon")   # csrc/pool/pool.c's 2x2 max-pool: pool_vec.h per ISA
U8_ISAS = ("portable", "avx2", "neon")   # csrc/im2col/im2col_8.c's uint8 2x2 max-pool bodies


@implements("maxpool2d_f32", "c", isa=ISAS)
def maxpool2d_f32(x, kernel, stride, padding, with_argmax, oh, ow, isa=None):
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, oh, ow), dtype=np.float32)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64) if with_argmax else None
    argmax_ptr = ptr("int64_t", argmax) if with_argmax else ffi().NULL
    check(lib().tinyeff_maxpool2d_f32(ptr("float", x), n, c, h, w, kernel, stride, padding, oh,
                                      ow, isa_code("maxpool2d_f32", isa), ptr("float", out), argmax_ptr),
          "maxpool2d_f32")
    return out, argmax


@implements("maxpool2d_backward_f32", "c")
def maxpool2d_backward_f32(grad_out, argmax, x_shape):
    n, c, h, w = x_shape
    grad_out = np.ascontiguousarray(grad_out)
    argmax = np.ascontiguousarray(argmax)
    grad_x = np.empty((n, c, h, w), dtype=np.float32)
    check(lib().tinyeff_maxpool2d_backward_f32(
        ptr("float", grad_out), ptr("int64_t", argmax), n * c, grad_out.shape[2] * grad_out.shape[3],
        h * w, ptr("float", grad_x)), "maxpool2d_backward_f32")
    return grad_x


@implements("maxpool2d_u8", "c", isa=U8_ISAS)
def maxpool2d_u8(x, kernel_size, stride, oh, ow, isa=None):
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, oh, ow), dtype=np.uint8)
    if out.size:
        status = lib().tinyeff_maxpool2d_u8(ptr("uint8_t", x), n, c, h, w, kernel_size, stride,
                                            oh, ow, isa_code("maxpool2d_u8", isa), ptr("uint8_t", out))
        check(status, "maxpool2d_u8")
    return out


@implements("maxpool2d_u8_nhwc", "c", isa=U8_ISAS)
def maxpool2d_u8_nhwc(x, kernel_size, stride, oh, ow, isa=None):
    n, h, w, c = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, oh, ow, c), dtype=np.uint8)
    if out.size:
        status = lib().tinyeff_maxpool2d_u8_nhwc(ptr("uint8_t", x), n, h, w, c, kernel_size, stride,
                                                 oh, ow, isa_code("maxpool2d_u8_nhwc", isa), ptr("uint8_t", out))
        check(status, "maxpool2d_u8_nhwc")
    return out
