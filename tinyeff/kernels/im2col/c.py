"""C tier of im2col / col2im: marshalling over csrc/im2col/im2col.c (float32) and csrc/im2col/im2col_8.c (8-bit).

Each body receives arguments spec.py already checked, allocates the output, hands C contiguous
buffers and sizes, and turns a nonzero status into an error with ``c.check``.
"""
import numpy as np

from tinyeff.kernels.c import check, lib, ptr
from tinyeff.kernels.contract import implements


@implements("im2col_f32", "c")
def im2col_f32(x, kh, kw, stride, padding, dilation, oh, ow):
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=np.float32)
    check(lib().tinyeff_im2col_f32(ptr("float", x), n, c, h, w, kh, kw, stride, padding, dilation,
                                   oh, ow, ptr("float", cols)), "im2col_f32")
    return cols


@implements("im2col_f32_t", "c")
def im2col_f32_t(x, kh, kw, stride, padding, dilation, oh, ow):
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    cols = np.empty((n, c * kh * kw, oh * ow), dtype=np.float32)
    check(lib().tinyeff_im2col_t_f32(ptr("float", x), n, c, h, w, kh, kw, stride, padding, dilation,
                                     oh, ow, ptr("float", cols)), "im2col_f32_t")
    return cols


@implements("col2im_f32", "c")
def col2im_f32(cols, x_shape, kh, kw, stride, padding, dilation, oh, ow):
    n, c, h, w = x_shape
    cols = np.ascontiguousarray(cols)
    x = np.empty((n, c, h, w), dtype=np.float32)
    check(lib().tinyeff_col2im_f32(ptr("float", cols), n, c, h, w, kh, kw, stride, padding,
                                   dilation, oh, ow, ptr("float", x)), "col2im_f32")
    return x


def _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow, name):
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    if cols.size:
        status = lib().tinyeff_im2col_8(
            ptr("uint8_t", x.view(np.uint8)), n, c, h, w, kh, kw, stride, padding, dilation, oh, ow,
            int(pad_value) & 0xFF, ptr("uint8_t", cols.view(np.uint8)))
        check(status, name)
    return cols


@implements("im2col_u8", "c")
def im2col_u8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow):
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow, "im2col_u8")


@implements("im2col_s8", "c")
def im2col_s8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow):
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, oh, ow, "im2col_s8")
