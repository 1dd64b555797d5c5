"""C tier of the integer epilogues: marshalling over csrc/int8_eltwise/requant.c, add_u8.c and quantize_u8.c.

Both have AVX-512 F/BW/VL, AVX2 and NEON bodies beside the portable one (picked at run time). Arguments arrive
checked and normalized by spec.py (per-channel int32 vectors, clamp bounds with ReLU folded in).
"""
import numpy as np

from tinyeff.kernels.c import check, ffi, isa_code, lib, ptr
from tinyeff.kernels.contract import implements
from tinyeff.kernels.int8_eltwise.spec import refuse_nonfinite

EPILOGUE_ISAS = ("portable", "avx2", "avx512", "neon")    # requant.c and add_u8.c bodies


@implements("requantize_s32", "c", isa=EPILOGUE_ISAS)
def requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, isa=None):
    m, n = acc.shape
    acc = np.ascontiguousarray(acc)
    out = np.empty((m, n), dtype=out_dtype)
    if m and n:
        status = lib().tinyeff_requantize_s32(
            ptr("int32_t", acc), n, m, n, ptr("int32_t", bias), ptr("int32_t", multiplier),
            ptr("int32_t", shift), int(zero_point_out), qmin, qmax, isa_code("requantize_s32", isa),
            ptr("uint8_t", out.view(np.uint8)), n)
        check(status, "requantize_s32")
    return out


@implements("add_u8", "c", isa=EPILOGUE_ISAS)
def add_u8(a, b, table_a, table_b, multiplier, shift, zero_point_out, qmin, qmax, isa=None):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    out = np.empty(a.shape, dtype=np.uint8)
    if out.size:
        status = lib().tinyeff_add_u8(ptr("uint8_t", a), ptr("uint8_t", b), a.size,
                                      ptr("int32_t", table_a), ptr("int32_t", table_b), int(multiplier),
                                      int(shift), int(zero_point_out), qmin, qmax,
                                      isa_code("add_u8", isa), ptr("uint8_t", out))
        check(status, "add_u8")
    return out


@implements("quantize_f32_u8", "c", isa=("portable", "avx2"))
def quantize_f32_u8(x, scale, zero_point, qmax, nhwc, isa=None):
    x = np.ascontiguousarray(x)
    n, c, hw = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3]) if x.ndim == 4 else (1, 1, x.size)
    out = np.empty((x.shape[0], x.shape[2], x.shape[3], x.shape[1]) if nhwc else x.shape, dtype=np.uint8)
    bad = ffi().new("int64_t *")
    if out.size:
        check(lib().tinyeff_quantize_f32_u8(ptr("float", x), n, c, hw, float(scale), zero_point, qmax, int(bool(nhwc)),
                                            isa_code("quantize_f32_u8", isa), ptr("uint8_t", out), bad),
              "quantize_f32_u8")
        if bad[0]:
            refuse_nonfinite(x, int(bad[0]))
    return out
