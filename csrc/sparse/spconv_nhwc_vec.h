/* spconv_nhwc_vec.h: the three per-ISA steps of spconv_nhwc.c, written once over a vector of VL lanes.
 *
 * Included by csrc/sparse/spconv_nhwc.c after simd.h, once per ISA path (AVX-512, AVX2, NEON). The
 * driver (spconv_nhwc.c) lays a block of SPN_NB images out as int16 (C, HP, WP, SPN_NB), so one output
 * row's valid pixels are one contiguous run of OW * SPN_NB positions, and calls:
 *   V(spn_run)      a CSR row's sums over one run, into int32 acc[0, cnt)
 *   V(spn_pool2)    the 2x2 max of two runs' sums (int32, before requantization)
 *   V(spn_requant)  bias + fixed-point requantization + clamp of a run, to 8-bit codes
 * Every run is a whole number of SPN_NB (16) positions, so no step has a tail narrower than a vector.
 */

#if defined(SIMD_AVX512) || defined(SIMD_AVX2)
#define SP_NW SPN_NW
#include "sptile16.h"

/* acc[q] = sum_j val[j] * src[off[j] + p0 + q] for q < cnt: tiles of up to SP_NW int16 vectors. */
SIMD_TARGET static void V(spn_run)(const int64_t *off, const int8_t *val, int64_t nnz, const int16_t *src,
                                   int64_t p0, int64_t cnt, int32_t *acc)
{
    if (cnt < 2 * VL) {                      /* one 16-image pixel on AVX-512: the AVX2 body */
        SPN_NARROW(off, val, nnz, src, p0, cnt, acc);
        return;
    }
    for (int64_t q0 = 0; q0 < cnt; q0 += SP_NW * 2 * VL) {
        int64_t m = cnt - q0 < SP_NW * 2 * VL ? cnt - q0 : SP_NW * 2 * VL;
        if (m < 2 * VL)                      /* a short last tile ends at the run's end */
            q0 = cnt - (m = 2 * VL);
        switch ((m + 2 * VL - 1) / (2 * VL)) {
        case 1: V(sp16_tile)(off, val, nnz, src, p0 + q0, m, acc + q0, 1); break;
        case 2: V(sp16_tile)(off, val, nnz, src, p0 + q0, m, acc + q0, 2); break;
#if SP_NW > 3
        case 3: V(sp16_tile)(off, val, nnz, src, p0 + q0, m, acc + q0, 3); break;
#endif
#if SP_NW > 4
        case 4: V(sp16_tile)(off, val, nnz, src, p0 + q0, m, acc + q0, 4); break;
#endif
        default: V(sp16_tile)(off, val, nnz, src, p0 + q0, m, acc + q0, SP_NW); break;
        }
    }
}
#undef SP_NW
#else
/* ARM64: int16 runs widened to int32 lanes, one multiply-accumulate per nonzero (vmlal by scalar). */
SIMD_TARGET static void V(spn_run)(const int64_t *off, const int8_t *val, int64_t nnz, const int16_t *src,
                                   int64_t p0, int64_t cnt, int32_t *acc)
{
    for (int64_t q0 = 0; q0 < cnt; q0 += 4 * VL) {      /* cnt is a multiple of 16 = 4 * VL */
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t j = 0; j < nnz; j++) {
            const int16_t *s = src + off[j] + p0 + q0;
            int16x8_t lo = vld1q_s16(s), hi = vld1q_s16(s + 8);
            int16_t w = val[j];
            a0 = vmlal_n_s16(a0, vget_low_s16(lo), w);
            a1 = vmlal_n_s16(a1, vget_high_s16(lo), w);
            a2 = vmlal_n_s16(a2, vget_low_s16(hi), w);
            a3 = vmlal_n_s16(a3, vget_high_s16(hi), w);
        }
        vst1q_s32(acc + q0, a0);
        vst1q_s32(acc + q0 + 4, a1);
        vst1q_s32(acc + q0 + 8, a2);
        vst1q_s32(acc + q0 + 12, a3);
    }
}
#endif

SIMD_INLINE vi V(spn_max)(vi a, vi b)        /* one vpmaxsd / vmax.s32 */
{
#if defined(SIMD_AVX512)
    return (vi)_mm512_max_epi32((__m512i)a, (__m512i)b);
#elif defined(SIMD_AVX2)
    return (vi)_mm256_max_epi32((__m256i)a, (__m256i)b);
#else
    return vmaxq_s32(a, b);
#endif
}

/* out[q * SPN_NB + b] = max of the 2x2 window of pooled column q, image b: rows r0 and r1, columns 2q, 2q + 1. */
SIMD_TARGET static void V(spn_pool2)(const int32_t *r0, const int32_t *r1, int64_t pw, int32_t *out)
{
    for (int64_t q = 0; q < pw; q++)
        for (int64_t b = 0; b < SPN_NB; b += VL) {
            const int64_t a = 2 * q * SPN_NB + b;
            vi x0 = V(vload_i)(r0 + a), x1 = V(vload_i)(r0 + a + SPN_NB);
            vi y0 = V(vload_i)(r1 + a), y1 = V(vload_i)(r1 + a + SPN_NB);
            V(vstore_i)(out + q * SPN_NB + b, V(spn_max)(V(spn_max)(x0, x1), V(spn_max)(y0, y1)));
        }
}

/* codes[q] = requant(acc[q] + bias) for q < n (a multiple of SPN_NB), one channel's parameters. Needs
 * shift <= 0 and acc + bias inside int32 (the driver checks both per channel, see te_requant16); the
 * bias then wraps to int32 harmlessly (the sum is exact modulo 2^32 and lies inside int32). */
SIMD_TARGET static void V(spn_requant)(const int32_t *acc, int64_t n, int64_t bias64, int32_t multiplier,
                                       int32_t shift, int32_t zero_point, int32_t qmin, int32_t qmax,
                                       uint8_t *codes)
{
    const int32_t bias = (int32_t)(uint32_t)(uint64_t)bias64;
#if defined(SIMD_AVX512)
    te_requant16_params p;
    p.bias = _mm512_set1_epi32(bias);
    p.multiplier = _mm512_set1_epi32(multiplier);
    p.right = _mm512_set1_epi32(-shift);
    p.mask = _mm512_set1_epi32((int32_t)((1u << -shift) - 1u));
    p.half = _mm512_srli_epi32(p.mask, 1);
    const __m512i zp = _mm512_set1_epi32(zero_point), lo = _mm512_set1_epi32(qmin), hi = _mm512_set1_epi32(qmax);
    for (int64_t q = 0; q < n; q += 16)
        _mm_storeu_si128((__m128i *)(codes + q), te_requant16(_mm512_loadu_si512(acc + q), &p, zp, lo, hi));
#elif defined(SIMD_AVX2)
    te_requant8_params p;
    p.bias = _mm256_set1_epi32(bias);
    p.multiplier = _mm256_set1_epi32(multiplier);
    p.right = _mm256_set1_epi32(-shift);
    p.mask = _mm256_set1_epi32((int32_t)((1u << -shift) - 1u));
    p.half = _mm256_srli_epi32(p.mask, 1);
    const __m256i zp = _mm256_set1_epi32(zero_point), lo = _mm256_set1_epi32(qmin), hi = _mm256_set1_epi32(qmax);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t q = 0; q < n; q += 16) {      /* codes in [0, 255]: the saturating packs are exact */
        __m256i r0 = te_requant8(_mm256_loadu_si256((const __m256i *)(acc + q)), &p, zp, lo, hi);
        __m256i r1 = te_requant8(_mm256_loadu_si256((const __m256i *)(acc + q + 8)), &p, zp, lo, hi);
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(r0, r1), _mm256_setzero_si256());
        _mm_storeu_si128((__m128i *)(codes + q), _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, order)));
    }
#else
    const int32x4_t b = vdupq_n_s32(bias), m = vdupq_n_s32(multiplier), s = vdupq_n_s32(shift);
    const int32x4_t zp = vdupq_n_s32(zero_point), lo = vdupq_n_s32(qmin), hi = vdupq_n_s32(qmax);
    for (int64_t q = 0; q < n; q += 8) {
        int32x4_t r0 = te_requant4_neon(vld1q_s32(acc + q), b, m, s, zp, lo, hi);
        int32x4_t r1 = te_requant4_neon(vld1q_s32(acc + q + 4), b, m, s, zp, lo, hi);
        vst1_u8(codes + q, vreinterpret_u8_s8(vmovn_s16(vcombine_s16(vmovn_s32(r0), vmovn_s32(r1)))));
    }
#endif
}
