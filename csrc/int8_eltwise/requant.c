/* requant.c: int32 accumulators -> 8 bits, gemmlowp fixed-point semantics (see int8_common.h and
 * docs/int8.md). Standalone version of the epilogue that gemm_u8s8_requant fuses into its tiles;
 * bias, multiplier and shift arrive per channel (the Python wrapper broadcasts scalars).
 * isa: on AVX-512, when every shift <= 0 and there is no bias (so acc + bias cannot saturate), rows
 * take the 16-lane int32 epilogue (te_requant16), otherwise the general 8-lane int64 one
 * (te_requant_row_avx512). AVX2 runs the same int32 epilogue on 8 lanes (te_requant8) under the same
 * conditions, and the scalar loop otherwise (AVX2 has no 64-bit shifts, min or max for the general
 * case). NEON runs the general case on 4 lanes (te_requant_row_neon: every step is one saturating
 * instruction). Other CPUs: the scalar te_requant_one.
 */
#include "tinyeff.h"
#include "int8_common.h"

#ifdef TE_HAVE_AVX512_REQUANT
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
requant_row_fast(const int32_t *row, const int32_t *multiplier, const int32_t *shift, int32_t zero_point,
                 int32_t qmin, int32_t qmax, uint8_t *o, int64_t n) {
    const __m512i zp = _mm512_set1_epi32(zero_point);
    const __m512i vmin = _mm512_set1_epi32(qmin), vmax = _mm512_set1_epi32(qmax);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        te_requant16_params prm = te_requant16_load(NULL, multiplier + j, shift + j, m);
        _mm_mask_storeu_epi8(o + j, m, te_requant16(_mm512_maskz_loadu_epi32(m, row + j), &prm, zp, vmin, vmax));
    }
}
#endif

#ifdef TE_HAVE_AVX2_REQUANT
__attribute__((target("avx2"))) static void
requant_row_avx2(const int32_t *row, const int32_t *multiplier, const int32_t *shift, int32_t zero_point,
                 int32_t qmin, int32_t qmax, uint8_t *o, int64_t n) {
    const __m256i zp = _mm256_set1_epi32(zero_point);
    const __m256i vmin = _mm256_set1_epi32(qmin), vmax = _mm256_set1_epi32(qmax);
    for (int64_t j = 0; j < n; j += 8) {
        te_requant8_params prm = te_requant8_load(NULL, multiplier + j, shift + j, n - j);
        te_store8_avx2(te_requant8(te_load8_avx2(row + j, n - j), &prm, zp, vmin, vmax), o + j, n - j);
    }
}
#endif

static int fast_ok(const int32_t *bias, const int32_t *shift, int64_t n) {
    for (int64_t j = 0; j < n; j++)
        if (shift[j] > 0 || (bias && bias[j] != 0)) return 0;
    return 1;
}

int tinyeff_requantize_s32(const int32_t *acc, int64_t lda, int64_t m, int64_t n, const int32_t *bias,
                           const int32_t *multiplier, const int32_t *shift, int64_t zero_point_out,
                           int64_t qmin, int64_t qmax, int64_t isa, uint8_t *out, int64_t ldo) {
    if (m < 0 || n < 0 || lda < n || ldo < n || qmin > qmax || !TE_ISA_OK(isa)) return 1;
    int fast = TE_ISA_HAS_AVX2(isa) && fast_ok(bias, shift, n);
#pragma omp parallel for schedule(static) if (m * n > 65536)
    for (int64_t i = 0; i < m; i++) {
        const int32_t *row = acc + i * lda;
        uint8_t *o = out + i * ldo;
#ifdef TE_HAVE_AVX512_REQUANT
        if (fast && TE_ISA_HAS_AVX512(isa)) {
            requant_row_fast(row, multiplier, shift, (int32_t)zero_point_out, (int32_t)qmin, (int32_t)qmax, o, n);
            continue;
        }
        if (TE_ISA_HAS_AVX512(isa)) {
            te_requant_row_avx512(row, NULL, 0, bias, multiplier, shift, (int32_t)zero_point_out,
                                  (int32_t)qmin, (int32_t)qmax, o, n);
            continue;
        }
#endif
#ifdef TE_HAVE_AVX2_REQUANT
        if (fast) {
            requant_row_avx2(row, multiplier, shift, (int32_t)zero_point_out, (int32_t)qmin, (int32_t)qmax, o, n);
            continue;
        }
#else
        (void)fast;
#endif
#ifdef TE_HAVE_NEON_REQUANT
        if (TE_ISA_HAS_NEON(isa)) {
            te_requant_row_neon(row, NULL, 0, bias, multiplier, shift, (int32_t)zero_point_out, (int32_t)qmin,
                                (int32_t)qmax, o, n);
            continue;
        }
#endif
        for (int64_t j = 0; j < n; j++)
            o[j] = te_requant_one((int64_t)row[j] + (bias ? bias[j] : 0), multiplier[j], shift[j],
                                  (int32_t)zero_point_out, (int32_t)qmin, (int32_t)qmax);
    }
    return 0;
}
