"""C tier of the integer epilogues: marshalling over csrc/int8_eltwise/requant.c, add_u8.c and quantize_u8.c.

Both have AVX-512 F/BW/VL, AVX2 and NEON bodies beside the portable one (picked at run time). Arguments arrive
checked and normalized by spec.py (per-channel int32 vectors, clamp bounds with ReLU folded in).
"""
import numpy as np

from tinyeff.kernels.c import check, ffi, isa_code, lib, ptr
from tinyeff.kernels.contract import implements
from tinyeff.kernels.int8_eltwise.spec import refuse_nonfinite

EPILOGUE_ISAS = ("portable", "avx2", "avx512", "neon")    # requant.c and add_u8.c bodies


def _bind_requantize(bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, isa=None):
    """``requantize_s32`` with its per-channel vectors marshalled once: returns ``run(acc)``."""
    requant = lib().tinyeff_requantize_s32
    vectors = (ptr("int32_t", bias), ptr("int32_t", multiplier), ptr("int32_t", shift), int(zero_point_out),
               qmin, qmax, isa_code("requantize_s32", isa))

    def run(acc):
        m, n = acc.shape
        acc = np.ascontiguousarray(acc)
        out = np.empty((m, n), dtype=out_dtype)
        if m and n:
            check(requant(ptr("int32_t", acc), n, m, n, *vectors, ptr("uint8_t", out.view(np.uint8)), n),
                  "requantize_s32")
        return out
    return run


@implements("requantize_s32", "c", isa=EPILOGUE_ISAS, bind=_bind_requantize)
def requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, isa=None):
    return _bind_requantize(bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, isa)(acc)


def _bind_add(table_a, table_b, multiplier, shift, zero_point_out, qmin, qmax, isa=None):
    """``add_u8`` with its tables and requantization marshalled once: returns ``run(a, b)``."""
    add = lib().tinyeff_add_u8
    tables = (ptr("int32_t", table_a), ptr("int32_t", table_b), int(multiplier), int(shift), int(zero_point_out),
              qmin, qmax, isa_code("add_u8", isa))

    def run(a, b):
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        out = np.empty(a.shape, dtype=np.uint8)
        if out.size:
            check(add(ptr("uint8_t", a), ptr("uint8_t", b), a.size, *tables, ptr("uint8_t", out)), "add_u8")
        return out
    return run


@implements("add_u8", "c", isa=EPILOGUE_ISAS, bind=_bind_add)
def add_u8(a, b, table_a, table_b, multiplier, shift, zero_point_out, qmin, qmax, isa=None):
    return _bind_add(table_a, table_b, multiplier, shift, zero_point_out, qmin, qmax, isa)(a, b)


def _bind_quantize(scale, zero_point, qmax, nhwc, isa=None):
    """``quantize_f32_u8`` with its scalars converted once: returns ``run(x)``."""
    quantize = lib().tinyeff_quantize_f32_u8
    scalars = (float(scale), zero_point, qmax, int(bool(nhwc)), isa_code("quantize_f32_u8", isa))

    def run(x):
        x = np.ascontiguousarray(x)
        n, c, hw = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3]) if x.ndim == 4 else (1, 1, x.size)
        out = np.empty((x.shape[0], x.shape[2], x.shape[3], x.shape[1]) if nhwc else x.shape, dtype=np.uint8)
        bad = ffi().new("int64_t *")
        if out.size:
            check(quantize(ptr("float", x), n, c, hw, *scalars, ptr("uint8_t", out), bad), "quantize_f32_u8")
            if bad[0]:
                refuse_nonfinite(x, int(bad[0]))
        return out
    return run


@implements("quantize_f32_u8", "c", isa=("portable", "avx2"), bind=_bind_quantize)
def quantize_f32_u8(x, scale, zero_point, qmax, nhwc, isa=None):
    return _bind_quantize(scale, zero_point, qmax, nhwc, isa)(x)
