"""C tier, float32 dense and sparse family: wrappers over csrc/im2col.c, activation.c and spconv.c.

Each wrapper validates once (the same checks as the Numba tier), allocates the output, hands the
C function plain contiguous buffers and sizes, and turns a nonzero status into an error with
``c.check``. The sparse kernels share the CSR format and the flat-shift lowering of
``ref/sparse.py`` with the Numba tier; the C loop adds register tiling. The max-pool, ReLU and sparse
kernels have vector bodies per ISA path (csrc/simd.h: AVX-512, AVX2, NEON), picked at run time from
``tinyeff.kernels.cpu``; the portable C path runs everywhere else.
"""
import numpy as np

from tinyeff.kernels.c import check, ffi, isa_code, lib, ptr
from tinyeff.kernels.dense_checks import check_f32, check_pool_backward
from tinyeff.kernels.ref.im2col import check_col2im, check_conv_geometry, check_pad2d
from tinyeff.kernels.ref.activation import check_relu_backward
from tinyeff.kernels.ref.pool import check_pool_geometry
from tinyeff.kernels.ref.sparse import direct_conv_plan, register_direct_tier
from tinyeff.kernels.registry import register


# The paths of the kernels written once over a vector width (csrc/simd.h): the 2x2 max-pool
# (pool_vec.h), ReLU (activation_vec.h) and the sparse row loops (spconv_vec.h).
SIMD_ISAS = ("portable", "avx2", "avx512", "neon")


# ----------------------------------------------------------------------------- dense kernels

@register("im2col_f32", tier="c")
def im2col_f32(x, kh, kw, stride=1, padding=0, dilation=1):
    """See ref/im2col.py (float32 only)."""
    oh, ow = check_conv_geometry(x.shape, kh, kw, stride, padding, dilation, "im2col_f32")
    check_f32("im2col_f32", x=x)
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=np.float32)
    check(lib().tinyeff_im2col_f32(ptr("float", x), n, c, h, w, kh, kw, stride, padding, dilation,
                                   oh, ow, ptr("float", cols)), "im2col_f32")
    return cols


@register("col2im_f32", tier="c")
def col2im_f32(cols, x_shape, kh, kw, stride=1, padding=0, dilation=1):
    """See ref/im2col.py (float32 only)."""
    oh, ow = check_col2im(cols, x_shape, kh, kw, stride, padding, dilation, "col2im_f32")
    n, c, h, w = x_shape
    check_f32("col2im_f32", cols=cols)
    cols = np.ascontiguousarray(cols)
    x = np.empty((n, c, h, w), dtype=np.float32)
    check(lib().tinyeff_col2im_f32(ptr("float", cols), n, c, h, w, kh, kw, stride, padding,
                                   dilation, oh, ow, ptr("float", x)), "col2im_f32")
    return x


@register("pad2d_f32", tier="c")
def pad2d_f32(x, padding):
    """See ref/im2col.py (float32 only)."""
    check_pad2d(x, padding, "pad2d_f32")
    check_f32("pad2d_f32", x=x)
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, h + 2 * padding, w + 2 * padding), dtype=np.float32)
    check(lib().tinyeff_pad2d_f32(ptr("float", x), n * c, h, w, padding, ptr("float", out)), "pad2d_f32")
    return out


@register("maxpool2d_f32", tier="c", isa=SIMD_ISAS)
def maxpool2d_f32(x, kernel, stride, padding=0, with_argmax=True, isa=None):
    """See ref/pool.py (float32 only)."""
    oh, ow = check_pool_geometry(x.shape, kernel, stride, padding, "maxpool2d_f32")
    check_f32("maxpool2d_f32", x=x)
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, oh, ow), dtype=np.float32)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64) if with_argmax else None
    argmax_ptr = ptr("int64_t", argmax) if with_argmax else ffi().NULL
    check(lib().tinyeff_maxpool2d_f32(ptr("float", x), n, c, h, w, kernel, stride, padding, oh,
                                      ow, isa_code("maxpool2d_f32", isa), ptr("float", out), argmax_ptr),
          "maxpool2d_f32")
    return out, argmax


@register("maxpool2d_backward_f32", tier="c")
def maxpool2d_backward_f32(grad_out, argmax, x_shape):
    """See ref/pool.py (float32 only)."""
    check_pool_backward(grad_out, argmax, x_shape, "maxpool2d_backward_f32")
    n, c, h, w = x_shape
    grad_out = np.ascontiguousarray(grad_out)
    argmax = np.ascontiguousarray(argmax)
    grad_x = np.empty((n, c, h, w), dtype=np.float32)
    check(lib().tinyeff_maxpool2d_backward_f32(
        ptr("float", grad_out), ptr("int64_t", argmax), n * c, grad_out.shape[2] * grad_out.shape[3],
        h * w, ptr("float", grad_x)), "maxpool2d_backward_f32")
    return grad_x


# ---------------------------------------------------------------------------- ReLU

@register("relu_f32", tier="c", isa=SIMD_ISAS)
def relu_f32(x, isa=None):
    """See ref/activation.py (float32 only)."""
    check_f32("relu_f32", x=x)
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    check(lib().tinyeff_relu_f32(ptr("float", x), x.size, isa_code("relu_f32", isa), ptr("float", y)), "relu_f32")
    return y


@register("relu_backward_f32", tier="c", isa=SIMD_ISAS)
def relu_backward_f32(g, out, isa=None):
    """See ref/activation.py (float32 only)."""
    check_relu_backward(g, out, "relu_backward_f32")
    check_f32("relu_backward_f32", g=g, out=out)
    g, out = np.ascontiguousarray(g), np.ascontiguousarray(out)
    gx = np.empty_like(g)
    check(lib().tinyeff_relu_backward_f32(ptr("float", g), ptr("float", out), g.size,
                                          isa_code("relu_backward_f32", isa), ptr("float", gx)),
          "relu_backward_f32")
    return gx


# ---------------------------------------------------------------------------- sparse kernels

def _sprows(acc_dtype, packed, offsets, src, img_stride, nimg, length, ws, ow_valid, bias, relu,
            out, strides, pool=1, isa=None):
    """Call the f32 or u8s8 direct sparse loop; ``strides`` = (os_img, os_row, os_h, os_w) of ``out``
    (the pooled output when ``pool`` > 1, float32 only)."""
    indptr = ptr("int64_t", packed.indptr)
    offsets = ptr("int64_t", np.ascontiguousarray(offsets, dtype=np.int64))
    if acc_dtype == np.float32:
        b = ffi().NULL if bias is None else ptr("float", np.ascontiguousarray(bias))
        status = lib().tinyeff_sprows_f32(
            indptr, offsets, ptr("float", packed.data), packed.shape[0], ptr("float", src),
            img_stride, nimg, length, ws, ow_valid, b, int(relu), pool, isa_code("spconv_f32_csr", isa),
            ptr("float", out), *strides)
        check(status, "sprows_f32")
    else:
        b = ffi().NULL if bias is None else ptr("int32_t", np.ascontiguousarray(bias))
        status = lib().tinyeff_sprows_u8s8(
            indptr, offsets, ptr("int8_t", packed.data), packed.shape[0], ptr("uint8_t", src),
            img_stride, nimg, length, ws, ow_valid, b, isa_code("spconv_u8s8_csr", isa), ptr("int32_t", out),
            *strides)
        check(status, "sprows_u8s8")
    return out


def _conv(x, packed, bias, stride, padding, dilation, relu, pad_value, acc_dtype, pool, isa=None):
    src, img_stride, ws, length, ow, offsets, out = direct_conv_plan(x, packed, stride, padding,
                                                                     dilation, pad_value, acc_dtype, pool)
    n, oc, ph, pw = out.shape
    return _sprows(acc_dtype, packed, offsets, src, img_stride, n, length, ws, ow, bias, relu, out,
                   (oc * ph * pw, ph * pw, pw, 1), pool, isa)


def _linear(x, packed, bias, relu, acc_dtype, isa=None):
    n, out_features = x.shape[0], packed.shape[0]
    xt = np.ascontiguousarray(x.T)                                   # (IN, N)
    out = np.empty((n, out_features), dtype=acc_dtype)
    return _sprows(acc_dtype, packed, packed.indices * n, xt, 0, 1, n, n, n, bias, relu, out,
                   (0, 1, 0, out_features), 1, isa)


# Validation and the four registered signatures live in ref/sparse.py (one copy for every tier).
spconv_f32_csr, splinear_f32_csr, spconv_u8s8_csr, splinear_u8s8_csr = register_direct_tier(
    "c", _conv, _linear, isa=SIMD_ISAS)
