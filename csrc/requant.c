/* requant.c: int32 accumulators -> 8 bits, gemmlowp fixed-point semantics (see int8_common.h and
 * docs/int8.md). Standalone version of the epilogue that gemm_u8s8_requant fuses into its tiles;
 * bias, multiplier and shift arrive per channel (the Python wrapper broadcasts scalars).
 * isa: 2 = AVX-512 (8 lanes of int64, te_requant_row_avx512), else portable scalar code.
 */
#include "tinyeff.h"
#include "int8_common.h"

int tinyeff_requantize_s32(const int32_t *acc, int64_t lda, int64_t m, int64_t n, const int32_t *bias,
                           const int32_t *multiplier, const int32_t *shift, int64_t zero_point_out,
                           int64_t qmin, int64_t qmax, int64_t isa, uint8_t *out, int64_t ldo) {
    if (m < 0 || n < 0 || lda < n || ldo < n || qmin > qmax || isa < 0 || isa > 2) return 1;
#pragma omp parallel for schedule(static) if (m * n > 65536)
    for (int64_t i = 0; i < m; i++) {
        const int32_t *row = acc + i * lda;
        uint8_t *o = out + i * ldo;
#ifdef TE_HAVE_AVX512_REQUANT
        if (isa == 2) {
            te_requant_row_avx512(row, NULL, 0, bias, multiplier, shift, (int32_t)zero_point_out,
                                  (int32_t)qmin, (int32_t)qmax, o, n);
            continue;
        }
#endif
        for (int64_t j = 0; j < n; j++)
            o[j] = te_requant_one((int64_t)row[j] + (bias ? bias[j] : 0), multiplier[j], shift[j],
                                  (int32_t)zero_point_out, (int32_t)qmin, (int32_t)qmax);
    }
    return 0;
}
