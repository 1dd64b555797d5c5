"""C tier of the integer NHWC convolution: marshalling over csrc/im2col/im2col_8.c and csrc/int8_gemm/gemm_s8.c.

On every ISA path the conv's GEMM reads its rows straight from the padded image (no im2col matrix);
``im2col_u8_nhwc`` remains for the layers that keep int32 sums.
Arguments arrive checked and normalized by spec.py.
"""
import numpy as np

from tinyeff.kernels.c import check, isa_code, lib, ptr
from tinyeff.kernels.contract import implements
from tinyeff.kernels.int8_conv.spec import ROW_ALIGN
from tinyeff.kernels.int8_gemm.c import GEMM_ISAS


@implements("im2col_u8_nhwc", "c")
def im2col_u8_nhwc(x, kh, kw, stride, padding, dilation, pad_value, pool, row_align, oh, ow):
    n, h, w, c = x.shape
    x = np.ascontiguousarray(x)
    run_padded = -(-(kw * c) // row_align) * row_align
    cols = np.empty((n * (oh // pool) * (ow // pool) * pool * pool, kh * run_padded), dtype=np.uint8)
    if cols.size:
        status = lib().tinyeff_im2col_8_nhwc(ptr("uint8_t", x), n, h, w, c, kh, kw, stride, padding,
                                             dilation, pool, run_padded, oh, ow, int(pad_value),
                                             ptr("uint8_t", cols))
        check(status, "im2col_u8_nhwc")
    return cols


def _pad_nhwc(x, padding, extra, value):
    """(N, H, W, C) -> (N, H + 2p, W + 2p + extra, C) with ``value`` on the border (the zero point:
    real 0); ``extra`` right columns keep the C kernel's rounded-up last segment inside each row."""
    if padding == 0 and extra == 0:
        return np.ascontiguousarray(x)
    n, h, w, c = x.shape
    out = np.empty((n, h + 2 * padding, w + 2 * padding + extra, c), dtype=np.uint8)
    out[:, :padding] = value
    out[:, h + padding:] = value
    out[:, padding:h + padding, :padding] = value
    out[:, padding:h + padding, w + padding:] = value
    out[:, padding:h + padding, padding:w + padding] = x
    return out


def _bind_conv(packed, kh, kw, stride, padding, a_zero_point, bias, multiplier, shift, zero_point_out, pool, qmin,
               qmax, oh, ow, isa=None):
    """``conv2d_u8s8_requant_nhwc`` for one layer: the weight's and the requantization's C
    arguments marshalled once; returns ``run(x)`` (contract.implements' ``bind``)."""
    name = "conv2d_u8s8_requant_nhwc"
    conv = lib().tinyeff_conv2d_u8s8_requant_nhwc
    weight = (ptr("int8_t", packed.data), ptr("int32_t", packed.colsum), ptr("uint8_t", packed.pairs_fit),
              ptr("uint8_t", packed.quads_fit), packed.n, int(a_zero_point))
    requant = (ptr("int32_t", bias), ptr("int32_t", multiplier), ptr("int32_t", shift), int(zero_point_out),
               qmin, qmax, isa_code(name, isa))
    padding, z_in = int(padding), int(a_zero_point)

    def run(x):
        n, c = x.shape[0], x.shape[3]
        kseg = -(-(kw * c) // ROW_ALIGN) * ROW_ALIGN                          # one kernel row, rounded up
        short = (ow - 1) * stride * c + kseg - (x.shape[2] + 2 * padding) * c  # bytes the last window overruns
        xp = _pad_nhwc(x, padding, max(0, -(-short // c)), z_in)
        out = np.empty((n, oh // pool, ow // pool, packed.n), dtype=np.uint8)
        if out.size:
            status = conv(ptr("uint8_t", xp), n, xp.shape[1], xp.shape[2], c, kh, kw, stride, pool, oh, ow,
                          *weight, *requant, ptr("uint8_t", out))
            check(status, name)
        return out
    return run


@implements("conv2d_u8s8_requant_nhwc", "c", isa=GEMM_ISAS, bind=_bind_conv)
def conv2d_u8s8_requant_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, bias, multiplier, shift,
                             zero_point_out, pool, qmin, qmax, oh, ow, isa=None):
    return _bind_conv(packed, kh, kw, stride, padding, a_zero_point, bias, multiplier, shift, zero_point_out, pool,
                      qmin, qmax, oh, ow, isa)(x)
