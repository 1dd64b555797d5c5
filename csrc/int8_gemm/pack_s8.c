/* pack_s8.c: int8 weights (K, N) -> the packed panels the GEMM tiles stream (packed_s8.h), their
 * column sums, and the two per-panel proofs the AVX2 tiles rely on (gemm_s8_avx2.h):
 *   pairs_fit: no vpmaddubsw pair sum can saturate int16 for any uint8 activation;
 *   quads_fit: for activations <= 127, two consecutive groups' pair sums still fit one int16 lane
 *     (per 16 columns and group).
 * Spec: pack_s8 in tinyeff/kernels/int8_gemm/spec.py (flags: layout/packed_s8.py), bit for bit.
 */
#include "tinyeff.h"
#include "packed_s8.h"

#define QUAD_BOUND 258    /* largest weight sum of an int16 lane of two groups: 127 * 258 <= 32767 */

/* 1 if a1 * w1 + a2 * w2 stays inside int16 for every a1, a2 in [0, 255]: the positive weights sum
 * to at most 128 and the negative ones to at least -128 (255 * 128 = 32640). */
static int pair_fits_int16(int w1, int w2) {
    int pos = (w1 > 0 ? w1 : 0) + (w2 > 0 ? w2 : 0), neg = (w1 < 0 ? w1 : 0) + (w2 < 0 ? w2 : 0);
    return pos <= 128 && neg >= -128;
}

/* 1 if the int16 lane of two consecutive groups, a1 w1 + a2 w2 + a3 w3 + a4 w4, stays inside int16
 * for every a in [0, 127]: positive weights sum to at most 258, negative ones to at least -258
 * (127 * 258 = 32766). 7-bit weights always qualify (4 * 64 = 256). */
static int quad_fits_int16(const int8_t *p, const int8_t *q) {
    int pos = 0, neg = 0;
    for (int t = 0; t < 2; t++) {
        pos += (p[t] > 0 ? p[t] : 0) + (q[t] > 0 ? q[t] : 0);
        neg += (p[t] < 0 ? p[t] : 0) + (q[t] < 0 ? q[t] : 0);
    }
    return pos <= QUAD_BOUND && neg >= -QUAD_BOUND;
}

/* pairs_fit[p] (one byte per 64-column panel): whether every pair of packed bytes (4g, 4g+1) and
 * (4g+2, 4g+3) of every column of panel p fits int16 (pair_fits_int16), so vpmaddubsw is exact.
 * quads_fit[c * K4 + g] (one byte per 16 columns c and group g): whether, for activations <= 127,
 * the same pair of group g plus that of group g + 1 fits int16 in every one of those 16 columns
 * (quad_fits_int16), so the tile, which holds 16 columns, may add those two vpmaddubsw results
 * as int16; 0 for the last group, which has no successor. Per group and 16 columns, not per
 * panel: trained 8-bit weights break the bound in a few places only, and the tile takes the quad
 * step everywhere else. */
int tinyeff_pack_s8(const int8_t *b, int64_t ldb, int64_t k, int64_t n, int8_t *packed, int32_t *colsum,
                    uint8_t *pairs_fit, uint8_t *quads_fit) {
    if (k < 0 || n < 0 || ldb < n) return 1;
    int64_t kg = k_groups(k), npad = (n + GROUP - 1) / GROUP * GROUP;
    for (int64_t p0 = 0; p0 < npad; p0 += PANEL) {
        int64_t w = panel_width(n, p0);
        int8_t *dst = packed + p0 * kg * 4;         /* panel p starts at p * K4 * 256 bytes */
        int fits = 1;
        for (int64_t g = 0; g < kg; g++)
            for (int64_t j = 0; j < w; j++) {
                int8_t *q = dst + (g * w + j) * 4;
                for (int64_t t = 0; t < 4; t++) {
                    int64_t kk = 4 * g + t, col = p0 + j;
                    q[t] = (kk < k && col < n) ? b[kk * ldb + col] : 0;
                }
                fits &= pair_fits_int16(q[0], q[1]) & pair_fits_int16(q[2], q[3]);
            }
        for (int64_t j0 = 0; j0 < w; j0 += GROUP) {          /* one row of flags per 16 columns */
            uint8_t *quads = quads_fit + (p0 + j0) / GROUP * kg;
            for (int64_t g = 0; g < kg; g++) {
                int ok = g + 1 < kg;
                for (int64_t j = j0; ok && j < j0 + GROUP; j++) {
                    const int8_t *q = dst + (g * w + j) * 4, *r = q + w * 4;
                    ok = quad_fits_int16(q, r) & quad_fits_int16(q + 2, r + 2);
                }
                quads[g] = (uint8_t)ok;
            }
        }
        pairs_fit[p0 / PANEL] = (uint8_t)fits;
    }
    for (int64_t j = 0; j < n; j++) {
        int32_t s = 0;
        for (int64_t kk = 0; kk < k; kk++) s += b[kk * ldb + j];
        colsum[j] = s;
    }
    return 0;
}

