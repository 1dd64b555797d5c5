"""C tier of the small-channel integer convolution: marshalling over csrc/int8_conv_small/qconv_small.c.

Paths: AVX-512 VNNI (vpdpbusd), AVX2 (vpmaddubsw; the input bytes split in two when they exceed
127 and the weight's pairs do not fit int16), NEON dot product (sdot on a - 128), NEON (vmull_s8 +
vpadalq_s16 on a - 128), portable C. Which layers take this kernel rather than the implicit-im2col
GEMM is QConv2d's choice (fixed on the x86 vector paths, timed per layer elsewhere).
Arguments arrive checked and normalized by spec.py.
"""
import numpy as np

from tinyeff.kernels.c import check, isa_code, lib, ptr
from tinyeff.kernels.contract import implements
from tinyeff.kernels.int8_conv.c import _pad_nhwc

SMALL_ISAS = ("portable", "avx2", "avx512_vnni", "neon", "neon_dotprod")   # csrc/int8_conv_small bodies


@implements("conv2d_u8s8_smallc_nhwc", "c", isa=SMALL_ISAS)
def conv2d_u8s8_smallc_nhwc(x, packed, stride, padding, a_zero_point, bias, multiplier, shift,
                                  zero_point_out, pool, qmin, qmax, oh, ow, isa=None):
    name = "conv2d_u8s8_smallc_nhwc"
    oc, c, kh, kw = packed.shape
    xp = _pad_nhwc(x, int(padding), 0, int(a_zero_point))
    out = np.empty((x.shape[0], oh // pool, ow // pool, oc), dtype=np.uint8)
    if out.size:
        status = lib().tinyeff_conv2d_u8s8_smallc_nhwc(
            ptr("uint8_t", xp), xp.shape[0], xp.shape[1], xp.shape[2], c, kh, kw, stride, pool, oh, ow,
            ptr("int8_t", packed.data), ptr("int32_t", packed.colsum), int(packed.pairs_fit), int(packed.quads_fit), oc,
            int(a_zero_point), ptr("int32_t", bias), ptr("int32_t", multiplier), ptr("int32_t", shift),
            int(zero_point_out), qmin, qmax, isa_code(name, isa), ptr("uint8_t", out))
        check(status, name)
    return out
