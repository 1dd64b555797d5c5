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

#endif
