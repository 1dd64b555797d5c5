/* add_u8.c: the residual add of two uint8 tensors (QAdd), elementwise, any layout.
 *
 * Each input is mapped to a common fine grid through its own 256-entry int32 table (code ->
 * rescaled (code - zero_point) << 20, precomputed once per layer in tinyeff/quant/qmodules.py),
 * the two are added in int32 and the sum is requantized to the output's uint8 codes:
 *     out[i] = requant(table_a[a[i]] + table_b[b[i]], multiplier, shift, zero_point_out, qmin, qmax)
 * Spec: add_u8 in tinyeff/kernels/int8_eltwise/spec.py. The Python wrapper checks that
 * max|table_a| + max|table_b| < 2^31, so the int32 sum is exact and never saturates.
 *
 * AVX-512 paths (F/BW/VL): 16 elements per step, two vpgatherdd from the tables (1 KB each, in L1)
 * and the 16-lane epilogue of int8_common.h, valid when shift <= 0 (a multiplier below 1, which is
 * what QAdd produces: 2 * max(s_a, s_b) / (2^20 s_out)). AVX2: the same on 8 lanes. NEON (no
 * gather): 4 table lookups per vector and the general 4-lane requantization, any shift. Otherwise
 * the scalar te_requant_one per element. OpenMP splits the elements into blocks.
 *
 * Large tensors: the output is a function of the code pair (a, b) only, so the kernel first runs
 * the path above on all 65536 pairs into a 64 KB table (on the stack, ~2% of the work for a
 * 3M-element residual add) and then looks every element up in it: one byte load per element
 * instead of two gathers (slow on some CPUs: ~45 cycles per 16 elements on Zen 4) and the epilogue.
 * Same function evaluated at the same points, so the result is the same bit for bit.
 */
#include "tinyeff.h"
#include "int8_common.h"

#define BLOCK 16384        /* elements per OpenMP task */

#ifdef TE_HAVE_AVX512_REQUANT
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
add_block_avx512(const uint8_t *a, const uint8_t *b, int64_t n, const int32_t *table_a, const int32_t *table_b,
                 int32_t multiplier, int32_t shift, int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t *out) {
    te_requant16_params prm;
    prm.bias = _mm512_setzero_si512();
    prm.multiplier = _mm512_set1_epi32(multiplier);
    prm.right = _mm512_set1_epi32(-shift);
    prm.mask = _mm512_set1_epi32((int32_t)(((int64_t)1 << -shift) - 1));
    prm.half = _mm512_srli_epi32(prm.mask, 1);
    const __m512i zp = _mm512_set1_epi32(zero_point);
    const __m512i vmin = _mm512_set1_epi32(qmin), vmax = _mm512_set1_epi32(qmax);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512i ia = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, a + i));
        __m512i ib = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, b + i));
        __m512i sum = _mm512_add_epi32(_mm512_i32gather_epi32(ia, (const void *)table_a, 4),
                                       _mm512_i32gather_epi32(ib, (const void *)table_b, 4));
        _mm_mask_storeu_epi8(out + i, m, te_requant16(sum, &prm, zp, vmin, vmax));
    }
}
#endif

#ifdef TE_HAVE_AVX2_REQUANT
__attribute__((target("avx2"))) static void
add_block_avx2(const uint8_t *a, const uint8_t *b, int64_t n, const int32_t *table_a, const int32_t *table_b,
               int32_t multiplier, int32_t shift, int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t *out) {
    te_requant8_params prm;
    prm.bias = _mm256_setzero_si256();
    prm.multiplier = _mm256_set1_epi32(multiplier);
    prm.right = _mm256_set1_epi32(-shift);
    prm.mask = _mm256_set1_epi32((int32_t)(((int64_t)1 << -shift) - 1));
    prm.half = _mm256_srli_epi32(prm.mask, 1);
    const __m256i zp = _mm256_set1_epi32(zero_point);
    const __m256i vmin = _mm256_set1_epi32(qmin), vmax = _mm256_set1_epi32(qmax);
    for (int64_t i = 0; i < n; i += 8) {
        uint8_t ca[8] = {0}, cb[8] = {0};          /* codes past n look up entry 0: computed, not stored */
        memcpy(ca, a + i, n - i >= 8 ? 8 : (size_t)(n - i));
        memcpy(cb, b + i, n - i >= 8 ? 8 : (size_t)(n - i));
        __m256i ia = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)ca));
        __m256i ib = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)cb));
        __m256i sum = _mm256_add_epi32(_mm256_i32gather_epi32((const int *)table_a, ia, 4),
                                       _mm256_i32gather_epi32((const int *)table_b, ib, 4));
        te_store8_avx2(te_requant8(sum, &prm, zp, vmin, vmax), out + i, n - i);
    }
}
#endif

#ifdef TE_HAVE_NEON_REQUANT
static void add_block_neon(const uint8_t *a, const uint8_t *b, int64_t n, const int32_t *table_a,
                           const int32_t *table_b, int32_t multiplier, int32_t shift, int32_t zero_point, int32_t qmin,
                           int32_t qmax, uint8_t *out) {
    const int32x4_t mult = vdupq_n_s32(multiplier), sh = vdupq_n_s32(shift), zero = vdupq_n_s32(0);
    const int32x4_t zp = vdupq_n_s32(zero_point), vmin = vdupq_n_s32(qmin), vmax = vdupq_n_s32(qmax);
    for (int64_t i = 0; i < n; i += 4) {
        int32_t sum[4] = {0, 0, 0, 0};
        int64_t len = n - i >= 4 ? 4 : n - i;
        for (int64_t t = 0; t < len; t++) sum[t] = table_a[a[i + t]] + table_b[b[i + t]];
        int32x4_t r = te_requant4_neon(vld1q_s32(sum), zero, mult, sh, zp, vmin, vmax);
        int32_t codes[4];
        vst1q_s32(codes, r);
        for (int64_t t = 0; t < len; t++) out[i + t] = (uint8_t)codes[t];
    }
}
#endif

/* out[0, n) by the direct path: per element, or 16 / 8 / 4 lanes. */
static void add_direct(const uint8_t *a, const uint8_t *b, int64_t n, const int32_t *table_a, const int32_t *table_b,
                       int32_t multiplier, int32_t shift, int32_t zero_point, int32_t qmin, int32_t qmax, int64_t isa,
                       uint8_t *out) {
#ifdef TE_HAVE_AVX512_REQUANT
    if (TE_ISA_HAS_AVX512(isa) && shift <= 0) {
        add_block_avx512(a, b, n, table_a, table_b, multiplier, shift, zero_point, qmin, qmax, out);
        return;
    }
#endif
#ifdef TE_HAVE_AVX2_REQUANT
    if (TE_ISA_HAS_AVX2(isa) && shift <= 0) {
        add_block_avx2(a, b, n, table_a, table_b, multiplier, shift, zero_point, qmin, qmax, out);
        return;
    }
#endif
#ifdef TE_HAVE_NEON_REQUANT
    if (TE_ISA_HAS_NEON(isa)) {
        add_block_neon(a, b, n, table_a, table_b, multiplier, shift, zero_point, qmin, qmax, out);
        return;
    }
#endif
    (void)isa;
    for (int64_t i = 0; i < n; i++)
        out[i] = te_requant_one((int64_t)table_a[a[i]] + table_b[b[i]], multiplier, shift, zero_point, qmin, qmax);
}

#define LUT_MIN 262144     /* elements from which the 65536-entry pair table pays for itself */

int tinyeff_add_u8(const uint8_t *a, const uint8_t *b, int64_t n, const int32_t *table_a, const int32_t *table_b,
                   int64_t multiplier, int64_t shift, int64_t zero_point_out, int64_t qmin, int64_t qmax,
                   int64_t isa, uint8_t *out) {
    if (n < 0 || multiplier < 0 || multiplier > INT32_MAX || shift < -31 || shift > 30 || qmin > qmax ||
        !TE_ISA_OK(isa)) return 1;
    int32_t m32 = (int32_t)multiplier, s32 = (int32_t)shift, zp = (int32_t)zero_point_out;
    int32_t lo = (int32_t)qmin, hi = (int32_t)qmax;
    int64_t nblocks = (n + BLOCK - 1) / BLOCK;
    if (n < LUT_MIN) {
#pragma omp parallel for schedule(static) if (n > 4 * BLOCK)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            int64_t i0 = blk * BLOCK, len = n - i0 < BLOCK ? n - i0 : BLOCK;
            add_direct(a + i0, b + i0, len, table_a, table_b, m32, s32, zp, lo, hi, isa, out + i0);
        }
        return 0;
    }
    uint8_t lut[256 * 256], codes[256], row[256];         /* lut[(x << 8) | y] = out for a = x, b = y */
    for (int v = 0; v < 256; v++) codes[v] = (uint8_t)v;
    for (int x = 0; x < 256; x++) {
        for (int v = 0; v < 256; v++) row[v] = (uint8_t)x;
        add_direct(row, codes, 256, table_a, table_b, m32, s32, zp, lo, hi, isa, lut + 256 * x);
    }
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t i0 = blk * BLOCK, i1 = n - i0 < BLOCK ? n : i0 + BLOCK;
        for (int64_t i = i0; i < i1; i++) out[i] = lut[(uint32_t)a[i] << 8 | b[i]];
    }
    return 0;
}
