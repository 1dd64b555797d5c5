"""C tier of the int8 kernels: thin wrappers over csrc/gemm_s8.c, requant.c, im2col_8.c and add_u8.c.

Each wrapper validates once (with the reference's own checks, so error messages match), makes the
operands C-contiguous, allocates the output and calls C; the C code only loops. Contracts: see
``tinyeff/kernels/ref/int8.py``.

The GEMM's instruction-set path is chosen at run time from the CPU's flags (never from build
flags): AVX-512 VNNI, else AVX2 (vpmaddubsw on panels whose weight pairs cannot saturate int16,
``PackedS8.pairs_fit``, else exact int16 widening), on ARM64 NEON dot-product, else NEON, else
portable C. Every path returns the same int32 sums and the same codes. AMX is not implemented: it
could not be tested on the machine this was written on (no amx_int8), and ``code_path()`` says so
when the CPU does report AMX.
"""
import numpy as np

from tinyeff.kernels import c as _c
from tinyeff.kernels import cpu
from tinyeff.kernels.ref import int8 as ref
from tinyeff.kernels import registry
from tinyeff.kernels.registry import register

GEMM_ISAS = ("portable", "avx2", "avx512_vnni", "neon", "neon_dotprod")   # csrc/gemm_s8*.{c,h} tiles
EPILOGUE_ISAS = ("portable", "avx2", "avx512", "neon")    # requant.c and add_u8.c bodies
POOL_ISAS = ("portable", "avx2", "neon")                  # im2col_8.c's 2x2 max-pool bodies


def available_isas():
    """GEMM code paths that can run here (compiled in, allowed by the CPU and the cap), best last."""
    return registry.isa_paths("gemm_u8s8_packed", "c")


def best_isa():
    """The GEMM path the registered kernels use by default."""
    return registry.best_isa("gemm_u8s8_packed", "c")


def code_path():
    """One line for ``tinyeff info``: which int8 GEMM path runs, and why faster ones do not."""
    amx = ("CPU reports amx_int8 but tinyeff has no AMX path yet (untested)" if cpu.has("amx_int8")
           else "no AMX (CPU lacks amx_tile/amx_int8)")
    threads = f"{_c.num_threads()} OpenMP threads" if _c.has_openmp() else "1 thread (built without OpenMP)"
    return f"int8 GEMM: {best_isa()}; {amx}; {threads}"


def _ptr(kind, arr):
    return _c.ffi().from_buffer(kind, arr)


def _gemm_packed(a, packed, a_signed, isa):
    """C GEMM on a validated, contiguous 8-bit ``a`` (M, K) and a PackedS8; returns int32 (M, N)."""
    m, k = a.shape
    out = np.empty((m, packed.n), dtype=np.int32)
    if m and packed.n:
        status = _c.lib().tinyeff_gemm_u8s8_packed(
            _ptr("uint8_t[]", a), k, m, k, packed.n, _ptr("int8_t[]", packed.data),
            _ptr("int32_t[]", packed.colsum), _ptr("uint8_t[]", packed.pairs_fit), int(a_signed),
            _c.isa_code("gemm_u8s8_packed", isa),
            _ptr("int32_t[]", out), packed.n)
        _c.check(status, "gemm_u8s8_packed")
    return out


@register("pack_s8", tier="c")
def pack_s8(b):
    """See ref."""
    k, n = ref.check_pack_s8(b)
    b = np.ascontiguousarray(b)
    data = np.empty(ref.packed_size(k, n), dtype=np.int8)
    colsum = np.empty(n, dtype=np.int32)
    pairs_fit = np.ones(ref.num_panels(n), dtype=np.uint8)
    if data.size:
        _c.check(_c.lib().tinyeff_pack_s8(_ptr("int8_t[]", b), n, k, n, _ptr("int8_t[]", data),
                                          _ptr("int32_t[]", colsum), _ptr("uint8_t[]", pairs_fit)), "pack_s8")
    else:
        colsum[:] = 0
    return ref.PackedS8(data=data, colsum=colsum, k=k, n=n, pairs_fit=pairs_fit)


@register("gemm_u8s8_packed", tier="c", isa=GEMM_ISAS)
def gemm_u8s8_packed(a, packed, isa=None):
    """See ref. ``isa`` (tests and bench only) forces a path from ``available_isas()``."""
    ref.check_activation(a, np.uint8, "gemm_u8s8_packed")
    ref.check_packed(packed, a.shape[1], "gemm_u8s8_packed")
    return _gemm_packed(np.ascontiguousarray(a), packed, False, isa)


@register("gemm_u8s8", tier="c", isa=GEMM_ISAS)
def gemm_u8s8(a, b, isa=None):
    """See ref. Packs ``b`` on every call; layers should call ``pack_s8`` once instead."""
    ref.check_u8s8(a, b, "gemm_u8s8")
    return gemm_u8s8_packed(a, pack_s8(b), isa)


@register("gemm_s8", tier="c", isa=GEMM_ISAS)
def gemm_s8(a, b, isa=None):
    """See ref. Packs ``b`` on every call; on VNNI, ``a`` is shifted by 128 and corrected exactly."""
    ref.check_s8(a, b, "gemm_s8")
    a = np.ascontiguousarray(a)
    return _gemm_packed(a.view(np.uint8), pack_s8(b), True, isa)


def _gemm_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, relu,
                  out_dtype, group, isa, name):
    ref.check_activation(a, np.uint8, name)
    ref.check_packed(packed, a.shape[1], name)
    ref.check_a_zero_point(a_zero_point, name)
    ref.check_row_group(a.shape[0], group, name)
    n = packed.n
    bias, multiplier, shift, qmin, qmax, dtype = ref.check_requant_args(
        n, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, name, relu)
    a = np.ascontiguousarray(a)
    m, k = a.shape
    out = np.empty((m // group, n), dtype=dtype)
    if m and n:
        status = _c.lib().tinyeff_gemm_u8s8_requant(
            _ptr("uint8_t[]", a), k, m, k, n, _ptr("int8_t[]", packed.data),
            _ptr("int32_t[]", packed.colsum), _ptr("uint8_t[]", packed.pairs_fit), int(a_zero_point),
            _ptr("int32_t[]", bias),
            _ptr("int32_t[]", multiplier), _ptr("int32_t[]", shift), int(zero_point_out), qmin, qmax,
            group, _c.isa_code("gemm_u8s8_packed", isa), _ptr("uint8_t[]", out), n)
        _c.check(status, name)
    return out


@register("gemm_u8s8_requant", tier="c", isa=GEMM_ISAS)
def gemm_u8s8_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin=None,
                      qmax=None, relu=False, out_dtype=np.uint8, isa=None):
    """See ref. The requantization runs in the GEMM's epilogue, on the int32 tile still in cache."""
    return _gemm_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, relu,
                         out_dtype, 1, isa, "gemm_u8s8_requant")


@register("gemm_u8s8_requant_rowmax", tier="c", isa=GEMM_ISAS)
def gemm_u8s8_requant_rowmax(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, group,
                             qmin=None, qmax=None, relu=False, out_dtype=np.uint8, isa=None):
    """See ref. The row max runs on the int32 chunk in cache, before the epilogue."""
    return _gemm_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, relu,
                         out_dtype, group, isa, "gemm_u8s8_requant_rowmax")


@register("requantize_s32", tier="c", isa=EPILOGUE_ISAS)
def requantize_s32(acc, bias, multiplier, shift, zero_point_out, qmin=None, qmax=None, relu=False,
                   out_dtype=np.uint8, isa=None):
    """See ref."""
    ref.check_accumulator(acc, "requantize_s32")
    m, n = acc.shape
    bias, multiplier, shift, qmin, qmax, dtype = ref.check_requant_args(
        n, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, "requantize_s32", relu)
    acc = np.ascontiguousarray(acc)
    out = np.empty((m, n), dtype=dtype)
    if m and n:
        status = _c.lib().tinyeff_requantize_s32(
            _ptr("int32_t[]", acc), n, m, n, _ptr("int32_t[]", bias), _ptr("int32_t[]", multiplier),
            _ptr("int32_t[]", shift), int(zero_point_out), qmin, qmax, _c.isa_code("requantize_s32", isa),
            _ptr("uint8_t[]", out), n)
        _c.check(status, "requantize_s32")
    return out


def _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, dtype, name):
    oh, ow = ref.check_im2col_8(x, kh, kw, stride, padding, dilation, pad_value, dtype, name)
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    cols = np.empty((n * oh * ow, c * kh * kw), dtype=dtype)
    if cols.size:
        status = _c.lib().tinyeff_im2col_8(
            _ptr("uint8_t[]", x), n, c, h, w, kh, kw, stride, padding, dilation, oh, ow,
            int(pad_value) & 0xFF, _ptr("uint8_t[]", cols))
        _c.check(status, name)
    return cols


@register("im2col_u8", tier="c")
def im2col_u8(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0):
    """See ref."""
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, np.uint8, "im2col_u8")


@register("im2col_s8", tier="c")
def im2col_s8(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0):
    """See ref."""
    return _im2col_8(x, kh, kw, stride, padding, dilation, pad_value, np.int8, "im2col_s8")


@register("maxpool2d_u8", tier="c", isa=POOL_ISAS)
def maxpool2d_u8(x, kernel_size=2, stride=None, isa=None):
    """See ref."""
    stride, oh, ow = ref.check_pool_args(x, kernel_size, stride, "maxpool2d_u8")
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, oh, ow), dtype=np.uint8)
    if out.size:
        status = _c.lib().tinyeff_maxpool2d_u8(_ptr("uint8_t[]", x), n, c, h, w, kernel_size, stride,
                                               oh, ow, _c.isa_code("maxpool2d_u8", isa), _ptr("uint8_t[]", out))
        _c.check(status, "maxpool2d_u8")
    return out


@register("im2col_u8_nhwc", tier="c")
def im2col_u8_nhwc(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0, pool=1, row_align=1):
    """See ref."""
    n, c, oh, ow = ref.check_im2col_nhwc(x, kh, kw, stride, padding, dilation, pad_value, pool, row_align,
                                         "im2col_u8_nhwc")
    h, w = x.shape[1:3]
    x = np.ascontiguousarray(x)
    run_padded = -(-(kw * c) // row_align) * row_align
    cols = np.empty((n * (oh // pool) * (ow // pool) * pool * pool, kh * run_padded), dtype=np.uint8)
    if cols.size:
        status = _c.lib().tinyeff_im2col_8_nhwc(_ptr("uint8_t[]", x), n, h, w, c, kh, kw, stride, padding,
                                                dilation, pool, run_padded, oh, ow, int(pad_value),
                                                _ptr("uint8_t[]", cols))
        _c.check(status, "im2col_u8_nhwc")
    return cols


@register("maxpool2d_u8_nhwc", tier="c", isa=POOL_ISAS)
def maxpool2d_u8_nhwc(x, kernel_size=2, stride=None, isa=None):
    """See ref."""
    stride, oh, ow = ref.check_pool_args_nhwc(x, kernel_size, stride, "maxpool2d_u8_nhwc")
    n, h, w, c = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, oh, ow, c), dtype=np.uint8)
    if out.size:
        status = _c.lib().tinyeff_maxpool2d_u8_nhwc(_ptr("uint8_t[]", x), n, h, w, c, kernel_size, stride,
                                                    oh, ow, _c.isa_code("maxpool2d_u8_nhwc", isa),
                                                    _ptr("uint8_t[]", out))
        _c.check(status, "maxpool2d_u8_nhwc")
    return out


@register("add_u8", tier="c", isa=EPILOGUE_ISAS)
def add_u8(a, b, table_a, table_b, multiplier, shift, zero_point_out, relu=False, isa=None):
    """See ref."""
    table_a, table_b = ref.check_add_u8(a, b, table_a, table_b, "add_u8")
    _, multiplier, shift, qmin, qmax, _ = ref.check_requant_args(1, None, multiplier, shift, zero_point_out,
                                                                 None, None, np.uint8, "add_u8", relu)
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    out = np.empty(a.shape, dtype=np.uint8)
    if out.size:
        status = _c.lib().tinyeff_add_u8(_ptr("uint8_t[]", a), _ptr("uint8_t[]", b), a.size,
                                         _ptr("int32_t[]", table_a), _ptr("int32_t[]", table_b), int(multiplier[0]),
                                         int(shift[0]), int(zero_point_out), qmin, qmax,
                                         _c.isa_code("add_u8", isa), _ptr("uint8_t[]", out))
        _c.check(status, "add_u8")
    return out


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


@register("conv2d_u8s8_requant_nhwc", tier="c", isa=GEMM_ISAS)
def conv2d_u8s8_requant_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, bias, multiplier, shift,
                             zero_point_out, pool=1, qmin=None, qmax=None, relu=False, isa=None):
    """See ref. The GEMM reads its rows straight from the padded image (no im2col matrix), on every path."""
    name = "conv2d_u8s8_requant_nhwc"
    n, c, oh, ow = ref.check_conv_nhwc(x, packed, kh, kw, stride, padding, a_zero_point, pool, name)
    bias, multiplier, shift, qmin, qmax, _ = ref.check_requant_args(
        packed.n, bias, multiplier, shift, zero_point_out, qmin, qmax, np.uint8, name, relu)
    kseg = -(-(kw * c) // ref.ROW_ALIGN) * ref.ROW_ALIGN                  # one kernel row, rounded up
    short = (ow - 1) * stride * c + kseg - (x.shape[2] + 2 * padding) * c  # bytes the last window overruns
    xp = _pad_nhwc(x, int(padding), max(0, -(-short // c)), int(a_zero_point))
    out = np.empty((n, oh // pool, ow // pool, packed.n), dtype=np.uint8)
    if out.size:
        status = _c.lib().tinyeff_conv2d_u8s8_requant_nhwc(
            _ptr("uint8_t[]", xp), n, xp.shape[1], xp.shape[2], c, kh, kw, stride, pool, oh, ow,
            _ptr("int8_t[]", packed.data), _ptr("int32_t[]", packed.colsum), _ptr("uint8_t[]", packed.pairs_fit),
            packed.n, int(a_zero_point),
            _ptr("int32_t[]", bias), _ptr("int32_t[]", multiplier), _ptr("int32_t[]", shift), int(zero_point_out),
            qmin, qmax, _c.isa_code(name, isa), _ptr("uint8_t[]", out))
        _c.check(status, name)
    return out
