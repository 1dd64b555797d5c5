/* int8_common.h: private helpers shared by the int8 C files (not part of the cffi interface).
 *
 * te_requant_one is gemmlowp's fixed-point requantization (Jacob et al. 2018, section 2.2), done in
 * int64 so no step has undefined behaviour; it matches tinyeff/kernels/layout/fixed_point.py bit for bit:
 *   v = sat32(acc + bias); v = sat32(v << max(shift, 0));
 *   v = SQRDMULH(v, multiplier)      round(v * multiplier / 2^31), ties toward +inf (the nudge)
 *   v = RDIVPOT(v, max(-shift, 0))   round(v / 2^right), ties away from zero
 *   out = clamp(v + zero_point, qmin, qmax)
 */
#ifndef TINYEFF_INT8_COMMON_H
#define TINYEFF_INT8_COMMON_H
#include <stdint.h>
#include <string.h>

static inline int64_t te_sat32(int64_t v) {
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : v);
}

static inline uint8_t te_requant_one(int64_t acc_plus_bias, int32_t multiplier, int32_t shift,
                                     int32_t zero_point, int32_t qmin, int32_t qmax) {
    int64_t x = te_sat32(acc_plus_bias);
    if (shift > 0) x = te_sat32(x * ((int64_t)1 << shift));     /* |x| < 2^31, shift <= 30: no overflow */
    int64_t high;
    if (x == INT32_MIN && multiplier == INT32_MIN) {
        high = INT32_MAX;                                          /* the one SQRDMULH overflow case */
    } else {
        int64_t prod = x * (int64_t)multiplier;
        int64_t nudge = prod >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
        high = (prod + nudge) / ((int64_t)1 << 31);                /* C division truncates toward zero */
    }
    int right = shift < 0 ? -shift : 0;
    int64_t mask = ((int64_t)1 << right) - 1;
    int64_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    int64_t v = (high >> right) + ((high & mask) > threshold ? 1 : 0);  /* gcc: >> is arithmetic */
    v += zero_point;
    v = v < qmin ? qmin : (v > qmax ? qmax : v);
    return (uint8_t)(int8_t)v;                                     /* int8 outputs keep their bit pattern */
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TE_HAVE_AVX512_REQUANT 1

/* te_requant_one on 8 lanes of int64 (AVX-512F/VL), for one row of n outputs:
 *   out[j] = requant(acc[j] - corr * colsum[j] + bias[j]) with per-channel multiplier and shift.
 * colsum and bias may be NULL. Needs multiplier >= 0 (the Python wrappers check it), so SQRDMULH's
 * INT32_MIN * INT32_MIN overflow case cannot occur. acc - corr * colsum wraps in int32, which is
 * exact because the true corrected sum fits int32 (see gemm_s8.c). */
__attribute__((target("avx512f,avx512vl"))) static inline void
te_requant_row_avx512(const int32_t *acc, const int32_t *colsum, int32_t corr, const int32_t *bias,
                      const int32_t *multiplier, const int32_t *shift, int32_t zero_point,
                      int32_t qmin, int32_t qmax, uint8_t *out, int64_t n) {
    const __m512i lo = _mm512_set1_epi64(INT32_MIN), hi = _mm512_set1_epi64(INT32_MAX);
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
    const __m512i nudge_pos = _mm512_set1_epi64((int64_t)1 << 30);
    const __m512i nudge_neg = _mm512_set1_epi64(1 - ((int64_t)1 << 30));
    const __m512i toward_zero = _mm512_set1_epi64(((int64_t)1 << 31) - 1);
    const __m512i zp = _mm512_set1_epi64(zero_point);
    const __m512i vmin = _mm512_set1_epi64(qmin), vmax = _mm512_set1_epi64(qmax);
    const __m256i vcorr = _mm256_set1_epi32(corr);
    for (int64_t j = 0; j < n; j += 8) {
        __mmask8 m = n - j >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - j)) - 1);
        __m256i a32 = _mm256_maskz_loadu_epi32(m, acc + j);
        if (colsum)
            a32 = _mm256_sub_epi32(a32, _mm256_mullo_epi32(vcorr, _mm256_maskz_loadu_epi32(m, colsum + j)));
        __m512i x = _mm512_cvtepi32_epi64(a32);
        if (bias) x = _mm512_add_epi64(x, _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, bias + j)));
        x = _mm512_min_epi64(_mm512_max_epi64(x, lo), hi);                      /* sat32 */
        __m512i sh = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, shift + j));
        __m512i left = _mm512_max_epi64(sh, zero);
        __m512i right = _mm512_max_epi64(_mm512_sub_epi64(zero, sh), zero);
        x = _mm512_min_epi64(_mm512_max_epi64(_mm512_sllv_epi64(x, left), lo), hi);
        __m512i mult = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, multiplier + j));
        __m512i prod = _mm512_mul_epi32(x, mult);                               /* signed 32x32 -> 64 */
        __mmask8 neg = _mm512_cmplt_epi64_mask(prod, zero);
        __m512i total = _mm512_add_epi64(prod, _mm512_mask_blend_epi64(neg, nudge_pos, nudge_neg));
        __mmask8 tneg = _mm512_cmplt_epi64_mask(total, zero);                   /* truncating / 2^31 */
        __m512i high = _mm512_srai_epi64(_mm512_mask_add_epi64(total, tneg, total, toward_zero), 31);
        __m512i mask = _mm512_sub_epi64(_mm512_sllv_epi64(one, right), one);
        __m512i threshold = _mm512_srli_epi64(mask, 1);
        threshold = _mm512_mask_add_epi64(threshold, _mm512_cmplt_epi64_mask(high, zero), threshold, one);
        __mmask8 up = _mm512_cmpgt_epi64_mask(_mm512_and_si512(high, mask), threshold);
        __m512i r = _mm512_mask_add_epi64(_mm512_srav_epi64(high, right), up, _mm512_srav_epi64(high, right), one);
        r = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(r, zp), vmin), vmax);
        _mm512_mask_cvtepi64_storeu_epi8(out + j, m, r);
    }
}

/* ---- fast epilogue: 16 int32 lanes instead of 8 int64 lanes --------------------------------
 * Valid (bit exact with te_requant_one) under two preconditions the caller checks per panel:
 *   1. every shift <= 0 (M < 1: no saturating left shift; quantize_multiplier gives this whenever
 *      scale_x * scale_w < scale_y, i.e. for every real layer);
 *   2. acc + bias cannot leave int32, so sat32 is the identity and int32 adds are exact.
 * SQRDMULH with the nudge simplifies to one rounding shift: for p = v * multiplier (int64),
 *   p >= 0: (p + 2^30) / 2^31 truncated = floor((p + 2^30) / 2^31)
 *   p <  0: (p + 1 - 2^30) / 2^31 truncated = ceil((p + 1 - 2^30) / 2^31) = floor((p + 2^30) / 2^31)
 * so high = (p + 2^30) >> 31 (arithmetic) in both cases. vpmuldq multiplies the even int32 lanes;
 * the odd lanes are shifted down first, and their result is read from the upper half after << 1.
 * RDIVPOT: (high >> right) + ((high & mask) > (mask >> 1) + (high < 0)), with the comparison
 * rewritten as (high & mask) + (high >> 31) > (mask >> 1) (no overflow: the left side >= -1). */
typedef struct {
    __m512i bias, multiplier, right, mask, half;    /* per channel, 16 lanes */
} te_requant16_params;

__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline te_requant16_params
te_requant16_load(const int32_t *bias, const int32_t *multiplier, const int32_t *shift, __mmask16 m) {
    te_requant16_params p;
    p.bias = bias ? _mm512_maskz_loadu_epi32(m, bias) : _mm512_setzero_si512();
    p.multiplier = _mm512_maskz_loadu_epi32(m, multiplier);
    p.right = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_maskz_loadu_epi32(m, shift));
    p.mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), p.right), _mm512_set1_epi32(1));
    p.half = _mm512_srli_epi32(p.mask, 1);
    return p;
}

/* acc (16 int32) -> 16 requantized 8-bit codes (uint8 or int8 bit patterns). */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m128i
te_requant16(__m512i acc, const te_requant16_params *p, __m512i zp, __m512i vmin, __m512i vmax) {
    const __m512i round = _mm512_set1_epi64((int64_t)1 << 30);
    __m512i v = _mm512_add_epi32(acc, p->bias);
    __m512i even = _mm512_add_epi64(_mm512_mul_epi32(v, p->multiplier), round);
    __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(v, 32),
                                                    _mm512_srli_epi64(p->multiplier, 32)), round);
    __m512i high = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srai_epi64(even, 31),
                                           _mm512_slli_epi64(odd, 1));
    __m512i rem = _mm512_add_epi32(_mm512_and_si512(high, p->mask), _mm512_srai_epi32(high, 31));
    __mmask16 up = _mm512_cmpgt_epi32_mask(rem, p->half);
    __m512i r = _mm512_srav_epi32(high, p->right);
    r = _mm512_mask_sub_epi32(r, up, r, _mm512_set1_epi32(-1));
    r = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, zp), vmin), vmax);
    return _mm512_cvtepi32_epi8(r);
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define TE_HAVE_AVX2_REQUANT 1

/* The fast epilogue above on 8 int32 lanes (AVX2), same preconditions and same steps. AVX2 has no
 * 64-bit arithmetic shift, but high = (p + 2^30) >> 31 fits int32, and the low 32 bits of a
 * logical and of an arithmetic 64-bit shift are the same bits (31..62 of p + 2^30). */
typedef struct {
    __m256i bias, multiplier, right, mask, half;    /* per channel, 8 lanes */
} te_requant8_params;

/* Lanes j < n of a per-channel int32 array (0 past n or when p is NULL). */
__attribute__((target("avx2"))) static inline __m256i te_load8_avx2(const int32_t *p, int64_t n) {
    if (!p) return _mm256_setzero_si256();
    if (n >= 8) return _mm256_loadu_si256((const __m256i *)p);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_epi32((const int *)p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lane));
}

__attribute__((target("avx2"))) static inline te_requant8_params
te_requant8_load(const int32_t *bias, const int32_t *multiplier, const int32_t *shift, int64_t n) {
    te_requant8_params p;
    p.bias = te_load8_avx2(bias, n);
    p.multiplier = te_load8_avx2(multiplier, n);
    p.right = _mm256_sub_epi32(_mm256_setzero_si256(), te_load8_avx2(shift, n));
    p.mask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), p.right), _mm256_set1_epi32(1));
    p.half = _mm256_srli_epi32(p.mask, 1);
    return p;
}

/* acc (8 int32) -> 8 requantized codes, still one per int32 lane (see te_pack8_avx2). */
__attribute__((target("avx2"))) static inline __m256i
te_requant8(__m256i acc, const te_requant8_params *p, __m256i zp, __m256i vmin, __m256i vmax) {
    const __m256i round = _mm256_set1_epi64x((int64_t)1 << 30);
    __m256i v = _mm256_add_epi32(acc, p->bias);
    __m256i even = _mm256_add_epi64(_mm256_mul_epi32(v, p->multiplier), round);
    __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), _mm256_srli_epi64(p->multiplier, 32)),
                                   round);
    __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
    __m256i rem = _mm256_add_epi32(_mm256_and_si256(high, p->mask), _mm256_srai_epi32(high, 31));
    __m256i up = _mm256_cmpgt_epi32(rem, p->half);                       /* -1 where rounding up */
    __m256i r = _mm256_sub_epi32(_mm256_srav_epi32(high, p->right), up);
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(r, zp), vmin), vmax);
}

/* The low byte of each int32 lane (codes already clamped to 8 bits) into out[0, n), n <= 8. */
__attribute__((target("avx2"))) static inline void te_store8_avx2(__m256i r, uint8_t *out, int64_t n) {
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(r, pick), _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
    uint64_t bytes = (uint64_t)_mm_cvtsi128_si64(_mm256_castsi256_si128(b));
    if (n >= 8) { memcpy(out, &bytes, 8); return; }
    for (int64_t j = 0; j < n; j++) out[j] = (uint8_t)(bytes >> (8 * j));
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>
#define TE_HAVE_NEON_REQUANT 1

/* te_requant_one on 4 int32 lanes, for any shift and bias: NEON has each step as one saturating
 * instruction with exactly gemmlowp's rounding (gemmlowp's own NEON code is this sequence):
 *   sat32(v + bias)        vqaddq_s32
 *   sat32(v << left)       vqshlq_s32
 *   SQRDMULH               vqrdmulhq_s32: (2 v m + 2^31) >> 32, i.e. floor((v m + 2^30) / 2^31),
 *                          the nudged division of the reference for either sign (docs/int8.md 6)
 *   RDIVPOT                vrshlq_s32 rounds ties up; subtracting 1 from negative v first (when
 *                          right > 0) turns that into ties away from zero
 *   + zero point, clamp    vqaddq_s32 (saturated values clamp as the int64 reference would) */
static inline int32x4_t te_requant4_neon(int32x4_t v, int32x4_t bias, int32x4_t multiplier, int32x4_t shift,
                                         int32x4_t zp, int32x4_t vmin, int32x4_t vmax) {
    const int32x4_t zero = vdupq_n_s32(0);
    v = vqaddq_s32(v, bias);
    v = vqshlq_s32(v, vmaxq_s32(shift, zero));
    v = vqrdmulhq_s32(v, multiplier);
    int32x4_t right = vminq_s32(shift, zero);                       /* -exponent: a right shift */
    int32x4_t fixup = vshrq_n_s32(vandq_s32(v, right), 31);          /* -1 when v < 0 and right > 0 */
    v = vrshlq_s32(vqaddq_s32(v, fixup), right);
    return vminq_s32(vmaxq_s32(vqaddq_s32(v, zp), vmin), vmax);
}

/* Lanes j < n of p (0 past n, or everywhere when p is NULL). */
static inline int32x4_t te_load4_neon(const int32_t *p, int64_t n) {
    if (!p) return vdupq_n_s32(0);
    if (n >= 4) return vld1q_s32(p);
    int32_t t[4] = {0, 0, 0, 0};
    for (int64_t j = 0; j < n; j++) t[j] = p[j];
    return vld1q_s32(t);
}

/* te_requant_row_avx512's contract on NEON: out[j] = requant(acc[j] - corr * colsum[j] + bias[j]);
 * colsum and bias may be NULL. The correction wraps in int32, exact (see gemm_s8.c). */
static inline void te_requant_row_neon(const int32_t *acc, const int32_t *colsum, int32_t corr, const int32_t *bias,
                                       const int32_t *multiplier, const int32_t *shift, int32_t zero_point,
                                       int32_t qmin, int32_t qmax, uint8_t *out, int64_t n) {
    const int32x4_t zp = vdupq_n_s32(zero_point), vmin = vdupq_n_s32(qmin), vmax = vdupq_n_s32(qmax);
    const int32x4_t vcorr = vdupq_n_s32(corr);
    for (int64_t j = 0; j < n; j += 8) {
        int32x4_t r[2];
        for (int h = 0; h < 2; h++) {
            int64_t o = j + 4 * h, left = n - o;
            int32x4_t v = te_load4_neon(acc + (left > 0 ? o : 0), left);
            if (colsum) v = vsubq_s32(v, vmulq_s32(vcorr, te_load4_neon(colsum + (left > 0 ? o : 0), left)));
            r[h] = te_requant4_neon(v, te_load4_neon(bias ? bias + (left > 0 ? o : 0) : NULL, left),
                                    te_load4_neon(multiplier + (left > 0 ? o : 0), left),
                                    te_load4_neon(shift + (left > 0 ? o : 0), left), zp, vmin, vmax);
        }
        int8x8_t codes = vmovn_s16(vcombine_s16(vmovn_s32(r[0]), vmovn_s32(r[1])));
        if (n - j >= 8) { vst1_s8((int8_t *)out + j, codes); continue; }
        int8_t t[8];
        vst1_s8(t, codes);
        for (int64_t q = 0; q < n - j; q++) out[j + q] = (uint8_t)t[q];
    }
}
#endif

#endif
