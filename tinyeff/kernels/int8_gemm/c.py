"""C tier of the int8 GEMMs: marshalling over csrc/int8_gemm/gemm_s8.c.

Each body receives arguments spec.py already checked, makes the operands C-contiguous, allocates the
output and calls C; the C code only loops.

The GEMM's instruction-set path is chosen at run time from the CPU's flags (never from build
flags): AVX-512 VNNI, else AVX2 (vpmaddubsw on panels whose weight pairs cannot saturate int16,
``PackedS8.pairs_fit``, or on every panel when the activations are all <= 127, the C code checks;
two groups per vpmaddwd where ``PackedS8.quads_fit`` allows; else exact int16 widening), on ARM64
NEON dot-product, else NEON, else
portable C. Every path returns the same int32 sums and the same codes. AMX is not implemented: it
could not be tested on the machine this was written on (no amx_int8), and ``code_path()`` says so
when the CPU does report AMX.
"""
import numpy as np

from tinyeff.kernels import c as _c
from tinyeff.kernels import cpu
from tinyeff.kernels import registry
from tinyeff.kernels.contract import implements
from tinyeff.kernels.layout.packed_s8 import GROUP, PackedS8, num_panels, packed_size

GEMM_ISAS = ("portable", "avx2", "avx512_vnni", "neon", "neon_dotprod")   # csrc/gemm_s8*.{c,h} tiles


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


def _bind_gemm_packed(packed, a_signed, isa):
    """The C GEMM on a PackedS8, its weight marshalled once: ``run(a)`` on a validated 8-bit
    (M, K) ``a`` returns int32 (M, N)."""
    gemm = _c.lib().tinyeff_gemm_u8s8_packed
    weight = (packed.n, _ptr("int8_t[]", packed.data), _ptr("int32_t[]", packed.colsum),
              _ptr("uint8_t[]", packed.pairs_fit), _ptr("uint8_t[]", packed.quads_fit), int(a_signed),
              _c.isa_code("gemm_u8s8_packed", isa))

    def run(a):
        a = np.ascontiguousarray(a)
        m, k = a.shape
        out = np.empty((m, packed.n), dtype=np.int32)
        if m and packed.n:
            _c.check(gemm(_ptr("uint8_t[]", a), k, m, k, *weight, _ptr("int32_t[]", out), packed.n),
                     "gemm_u8s8_packed")
        return out
    return run


def _gemm_packed(a, packed, a_signed, isa):
    """C GEMM on a validated, contiguous 8-bit ``a`` (M, K) and a PackedS8; returns int32 (M, N)."""
    return _bind_gemm_packed(packed, a_signed, isa)(a)


@implements("pack_s8", "c")
def pack_s8(b):
    k, n = b.shape
    b = np.ascontiguousarray(b)
    data = np.empty(packed_size(k, n), dtype=np.int8)
    colsum = np.empty(n, dtype=np.int32)
    pairs_fit = np.ones(num_panels(n), dtype=np.uint8)
    quads_fit = np.zeros((-(-n // GROUP), -(-k // 4)), dtype=np.uint8)
    if data.size:
        _c.check(_c.lib().tinyeff_pack_s8(_ptr("int8_t[]", b), n, k, n, _ptr("int8_t[]", data),
                                          _ptr("int32_t[]", colsum), _ptr("uint8_t[]", pairs_fit),
                                          _ptr("uint8_t[]", quads_fit)), "pack_s8")
    else:
        colsum[:] = 0
    return PackedS8(data=data, colsum=colsum, k=k, n=n, pairs_fit=pairs_fit, quads_fit=quads_fit)


def _bind_u8s8_packed(packed, isa=None):
    return _bind_gemm_packed(packed, False, isa)


@implements("gemm_u8s8_packed", "c", isa=GEMM_ISAS, bind=_bind_u8s8_packed)
def gemm_u8s8_packed(a, packed, isa=None):
    return _gemm_packed(a, packed, False, isa)


@implements("gemm_u8s8", "c", isa=GEMM_ISAS)
def gemm_u8s8(a, b, isa=None):
    """Packs ``b`` on every call; layers should call ``pack_s8`` once instead."""
    return _gemm_packed(np.ascontiguousarray(a), pack_s8(b), False, isa)


@implements("gemm_s8", "c", isa=GEMM_ISAS)
def gemm_s8(a, b, isa=None):
    """Packs ``b`` on every call; x86 tiles read ``a`` + 128 (NEON reads unsigned a - 128), corrected exactly."""
    a = np.ascontiguousarray(a)
    return _gemm_packed(a.view(np.uint8), pack_s8(b), True, isa)


def _bind_gemm_requant(packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, dtype, group, isa,
                      name):
    """The C GEMM with its requantizing (and row-max) epilogue, on checked, normalized arguments,
    everything but the activations marshalled once: returns ``run(a)``."""
    n = packed.n
    gemm = _c.lib().tinyeff_gemm_u8s8_requant
    weight = (n, _ptr("int8_t[]", packed.data), _ptr("int32_t[]", packed.colsum), _ptr("uint8_t[]", packed.pairs_fit),
              _ptr("uint8_t[]", packed.quads_fit), int(a_zero_point), _ptr("int32_t[]", bias),
              _ptr("int32_t[]", multiplier), _ptr("int32_t[]", shift), int(zero_point_out), qmin, qmax, group,
              _c.isa_code("gemm_u8s8_packed", isa))

    def run(a):
        a = np.ascontiguousarray(a)
        m, k = a.shape
        out = np.empty((m // group, n), dtype=dtype)
        if m and n:
            _c.check(gemm(_ptr("uint8_t[]", a), k, m, k, *weight, _ptr("uint8_t[]", out), n), name)
        return out
    return run


def _bind_requant(packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, isa=None):
    return _bind_gemm_requant(packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype,
                             1, isa, "gemm_u8s8_requant")


def _bind_requant_rowmax(packed, a_zero_point, bias, multiplier, shift, zero_point_out, group, qmin, qmax, out_dtype,
                         isa=None):
    return _bind_gemm_requant(packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype,
                             group, isa, "gemm_u8s8_requant_rowmax")


@implements("gemm_u8s8_requant", "c", isa=GEMM_ISAS, bind=_bind_requant)
def gemm_u8s8_requant(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax,
                      out_dtype, isa=None):
    """The requantization runs in the GEMM's epilogue, on the int32 tile still in cache."""
    return _bind_requant(packed, a_zero_point, bias, multiplier, shift, zero_point_out, qmin, qmax, out_dtype, isa)(a)


@implements("gemm_u8s8_requant_rowmax", "c", isa=GEMM_ISAS, bind=_bind_requant_rowmax)
def gemm_u8s8_requant_rowmax(a, packed, a_zero_point, bias, multiplier, shift, zero_point_out, group,
                             qmin, qmax, out_dtype, isa=None):
    """The row max runs on the int32 chunk in cache, before the epilogue."""
    return _bind_requant_rowmax(packed, a_zero_point, bias, multiplier, shift, zero_point_out, group, qmin, qmax,
                                out_dtype, isa)(a)
