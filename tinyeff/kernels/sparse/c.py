"""C tier of the sparse conv and linear: marshalling over csrc/sparse/spconv.c's direct row loops.

The sparse kernels share the CSR format (``layout/csr.py``) and the flat-shift lowering
(``layout/direct.py``) with the Numba tier; the C loop adds register tiling, written once over the
vector width (csrc/sparse/spconv_vec.h) for AVX-512, AVX2 and NEON, picked at run time from
``tinyeff.kernels.cpu``; the portable C path runs everywhere else. Arguments arrive
checked by spec.py's ``implement_direct_tier``.
"""
import numpy as np

from tinyeff.kernels.c import check, ffi, isa_code, lib, ptr
from tinyeff.kernels.contract import implements
from tinyeff.kernels.layout.direct import direct_conv_plan
from tinyeff.kernels.sparse.spec import implement_direct_tier

ISAS = ("portable", "avx2", "avx512", "neon")   # csrc/sparse/spconv.c's row loops: spconv_vec.h per ISA


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


# Validation and the four registered signatures live in spec.py (one copy for every tier).
spconv_f32_csr, splinear_f32_csr, spconv_u8s8_csr, splinear_u8s8_csr = implement_direct_tier(
    "c", _conv, _linear, isa=ISAS)


# the requantizing NHWC conv adds a VNNI body: four nonzeros per vpdpbusd (csrc/sparse/sptile8_vnni.h)
NHWC_ISAS = ("portable", "avx2", "avx512", "avx512_vnni", "neon")


@implements("spconv_u8s8_requant_nhwc", "c", isa=NHWC_ISAS)
def spconv_u8s8_requant_nhwc(x, packed, padding, a_zero_point, bias, multiplier, shift, zero_point_out, pool,
                             qmin, qmax, oh, ow, isa=None):
    n, h, w, c = x.shape
    oc, _, kh, kw = packed.shape
    out = np.empty((n, oh // pool, ow // pool, oc), dtype=np.uint8)
    if out.size:
        status = lib().tinyeff_spconv_u8s8_requant_nhwc(
            ptr("int64_t", packed.indptr), ptr("int64_t", packed.indices), ptr("int8_t", packed.data), oc,
            ptr("uint8_t", np.ascontiguousarray(x)), n, h, w, c, kh, kw, padding, pool, int(a_zero_point),
            ptr("int32_t", bias), ptr("int32_t", multiplier), ptr("int32_t", shift), int(zero_point_out),
            qmin, qmax, isa_code("spconv_u8s8_requant_nhwc", isa), ptr("uint8_t", out))
        check(status, "spconv_u8s8_requant_nhwc")
    return out
