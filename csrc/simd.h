/* simd.h: one vector vocabulary for the float32 memory-bound and sparse kernels, one ISA at a time.
 *
 * The idea: a kernel loop is written once over a vector of VL floats (GCC/Clang vector extensions)
 * and compiled once per ISA path, so a student sees the same loop at 4, 8 and 16 lanes. A C file
 * defines one of SIMD_AVX512, SIMD_AVX2 or SIMD_NEON, includes this header, then includes its
 * family's body header (e.g. spconv_vec.h); it may repeat that for the next ISA (this header
 * #undefs the previous instantiation first). Every name it defines is suffixed by V(): V(vload)
 * is vload_avx2 in the AVX2 instantiation, so the copies live side by side in one object file.
 *
 * Defined here: VBYTES, VL (float lanes), VD (double lanes), SIMD_TARGET (the function attribute
 * of every body), V(name); types vf (VL floats), vi (VL int32), vl (VL int64), vd (VD doubles);
 * loads and stores that accept any alignment (memcpy compiles to one unaligned move), partial
 * ones for tails, widening loads, vsplat, vselect, lane masks vm (vgt, vpick, vpick_i: k-registers
 * on AVX-512), V_EVEN / V_ODD de-interleaving, and the two
 * operations the vector extensions cannot spell:
 *   vfma(a, b, c) = a * b + c in one rounding. The extension is built with -std=c11, which turns
 *                   off floating-point contraction, so `a * b + c` would stay a multiply and an add.
 *   vmax(a, b)    the hardware max (maxps, fmax): b when either is NaN on x86, NaN on ARM64.
 *                 Callers that need the reference's NaN rule use compares instead.
 * Everything is static and always_inline: a body function carrying SIMD_TARGET inlines them.
 */
#include <stdint.h>
#include <string.h>

#undef VBYTES
#undef VL
#undef SIMD_TARGET
#undef V
#undef vf
#undef vi
#undef vl
#undef vd
#undef vm
#undef VD
#undef SIMD_INLINE
#undef V_EVEN
#undef V_ODD
#undef V_IOTA

#if defined(SIMD_AVX512)
#include <immintrin.h>
#define VBYTES 64
#define SIMD_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define V(name) name##_avx512
#elif defined(SIMD_AVX2)
#include <immintrin.h>
#define VBYTES 32
#define SIMD_TARGET __attribute__((target("avx2,fma")))
#define V(name) name##_avx2
#elif defined(SIMD_NEON)
#include <arm_neon.h>
#define VBYTES 16
#define SIMD_TARGET
#define V(name) name##_neon
#else
#error "define SIMD_AVX512, SIMD_AVX2 or SIMD_NEON before including simd.h"
#endif

#define VL (VBYTES / 4)
#define SIMD_INLINE static inline __attribute__((always_inline)) SIMD_TARGET

typedef float V(vf_t) __attribute__((vector_size(VBYTES)));
typedef int32_t V(vi_t) __attribute__((vector_size(VBYTES)));
typedef int64_t V(vl_t) __attribute__((vector_size(2 * VBYTES)));
typedef double V(vd_t) __attribute__((vector_size(VBYTES)));
#define VD (VBYTES / 8)
#define vf V(vf_t)
#define vi V(vi_t)
#define vl V(vl_t)
#define vd V(vd_t)

/* The even and odd lanes of the 2 * VL floats a:b (de-interleaving pairs, e.g. a 2x2 window's
 * columns); __builtin_shufflevector needs its lane list spelled out, one per width. */
#if VL == 16
#define V_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define V_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define V_IOTA ((vi){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
#elif VL == 8
#define V_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define V_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#define V_IOTA ((vi){0, 1, 2, 3, 4, 5, 6, 7})
#else
#define V_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define V_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#define V_IOTA ((vi){0, 1, 2, 3})
#endif

SIMD_INLINE vf V(vload)(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
SIMD_INLINE void V(vstore)(float *p, vf v) { memcpy(p, &v, sizeof v); }
SIMD_INLINE vi V(vload_i)(const int32_t *p) { vi v; memcpy(&v, p, sizeof v); return v; }
SIMD_INLINE void V(vstore_i)(int32_t *p, vi v) { memcpy(p, &v, sizeof v); }
SIMD_INLINE vf V(vsplat)(float x) { return (vf){0} + x; }

/* VL bytes widened to VL int32 lanes: one vpmovzxbd on x86, two uxtl on ARM64 (spelled out:
 * gcc 12 builds __builtin_convertvector of a byte vector from scalar inserts). */
SIMD_INLINE vi V(vload_u8)(const uint8_t *p)
{
#if defined(SIMD_AVX512)
    return (vi)_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
#elif defined(SIMD_AVX2)
    return (vi)_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
#else
    uint32_t four;
    memcpy(&four, p, sizeof four);
    return (vi)vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(four)))));
#endif
}

/* VD floats widened to VD doubles (vcvtps2pd, fcvtl). */
SIMD_INLINE vd V(vload_f2d)(const float *p)
{
#if defined(SIMD_AVX512)
    return (vd)_mm512_cvtps_pd(_mm256_loadu_ps(p));
#elif defined(SIMD_AVX2)
    return (vd)_mm256_cvtps_pd(_mm_loadu_ps(p));
#else
    return (vd)vcvt_f64_f32(vld1_f32(p));
#endif
}

/* VL int32 lanes stored as VL int64 (the argmax layout). */
SIMD_INLINE void V(vstore_i64)(int64_t *p, vi v)
{
#if defined(SIMD_AVX512)   /* two vpmovsxdq halves; the 128-byte vl went through a stack copy */
    __m512i x = (__m512i)v;
    _mm512_storeu_si512(p, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(x)));
    _mm512_storeu_si512(p + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(x, 1)));
#else
    vl w = __builtin_convertvector(v, vl);
    memcpy(p, &w, sizeof w);
#endif
}

#if defined(SIMD_AVX512)
SIMD_INLINE vf V(vfma)(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
SIMD_INLINE vf V(vmax)(vf a, vf b) { return _mm512_max_ps(a, b); }
#elif defined(SIMD_AVX2)
SIMD_INLINE vf V(vfma)(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
SIMD_INLINE vf V(vmax)(vf a, vf b) { return _mm256_max_ps(a, b); }
#else
SIMD_INLINE vf V(vfma)(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
SIMD_INLINE vf V(vmax)(vf a, vf b) { return vmaxq_f32(a, b); }
#endif

/* The first n lanes (0 <= n <= VL), never touching memory past lane n: masked moves on x86 (lanes
 * past n load as 0), short copies where a masked move is missing (NEON) or slow (AVX2 stores). */
SIMD_INLINE vf V(vload_part)(const float *p, int64_t n)
{
#if defined(SIMD_AVX512)
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
#elif defined(SIMD_AVX2)
    return _mm256_maskload_ps(p, (__m256i)(V_IOTA < (int32_t)n));
#else
    vf v = {0};
    memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
#endif
}

SIMD_INLINE void V(vstore_part)(float *p, vf v, int64_t n)
{
#if defined(SIMD_AVX512)
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), v);
#else   /* AVX2 too: vmaskmovps stores are microcoded on AMD Zen (tens of cycles), a short loop is not */
    for (int64_t i = 0; i < n; i++)
        p[i] = v[i];
#endif
}

SIMD_INLINE void V(vstore_i64_part)(int64_t *p, vi v, int64_t n)
{
#if defined(SIMD_AVX512)
    __m512i x = (__m512i)v;
    _mm512_mask_storeu_epi64(p, (__mmask8)((1u << n) - 1u), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(x)));
    if (n > 8)
        _mm512_mask_storeu_epi64(p + 8, (__mmask8)((1u << (n - 8)) - 1u),
                                 _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(x, 1)));
#else
    for (int64_t i = 0; i < n; i++)
        p[i] = v[i];
#endif
}

/* Bitwise select: lanes of a where mask is all ones, of b where it is zero (mask from a compare). */
SIMD_INLINE vf V(vselect)(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

/* Lane masks in the ISA's own form, for compare-and-select chains: a k-register on AVX-512 (vm is
 * __mmask16), an all-ones int32 lane elsewhere. V(vgt)(a, b) is a > b (false for NaN);
 * V(vpick)(m, a, b) and V(vpick_i)(m, a, b) take a where m is set, b elsewhere. On AVX-512 each is
 * one vcmpps / masked move: the vector-mask select above, which GCC 12 spells as two xors per select
 * and with the compare repeated for each select of one mask, made the 2x2 max-pool with argmax
 * (seed CNN, 64x32x30x30) ~20% slower than the hand-written k-mask body it replaced. */
#if defined(SIMD_AVX512)
typedef __mmask16 V(vm_t);
#define vm V(vm_t)
SIMD_INLINE vm V(vgt)(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
SIMD_INLINE vf V(vpick)(vm m, vf a, vf b) { return _mm512_mask_mov_ps(b, m, a); }
SIMD_INLINE vi V(vpick_i)(vm m, vi a, vi b)
{
    return (vi)_mm512_mask_mov_epi32((__m512i)b, m, (__m512i)a);
}
#else
typedef vi V(vm_t);
#define vm V(vm_t)
SIMD_INLINE vm V(vgt)(vf a, vf b) { return a > b; }
SIMD_INLINE vf V(vpick)(vm m, vf a, vf b) { return V(vselect)(m, a, b); }
SIMD_INLINE vi V(vpick_i)(vm m, vi a, vi b) { return (a & m) | (b & ~m); }
#endif

