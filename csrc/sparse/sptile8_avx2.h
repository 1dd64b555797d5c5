/* sptile8_avx2.h: spconv_nhwc.c's run on AVX2 for 7-bit activations: four nonzeros per vpmaddubsw +
 * vpmaddwd, on the uint8 source.
 *
 * The VNNI run (sptile8_vnni.h) byte-interleaves four runs (one per nonzero of a quad) so each int32
 * lane holds the 4 activations x0..x3 its 4 weights w0..w3 multiply. AVX2 has no vpdpbusd; its
 * two-step equivalent is
 *   vpmaddubsw(x, w):  int16 lanes (x0 w0 + x1 w1, x2 w2 + x3 w3), SATURATING to int16,
 *   vpmaddwd(., 1):    their int32 sum, exact,
 * and the saturation is the catch: 255 * -128 * 2 does not fit int16. With activations at most 127
 * (`tinyeff quantize`'s default 7-bit activations, and a zero point at most 127 for the padding)
 * |x0 w0 + x1 w1| <= 2 * 127 * 128 = 32512 < 2^15, so nothing saturates and the sums are exact. The
 * driver checks each block's bytes while it lays them out (spn_fill) and runs the int16 pair tile
 * (sptile16.h) on any block that has a byte above 127.
 *
 * Per quad and 32 positions: 4 loads, 8 unpacks, 4 vpmaddubsw, 4 vpmaddwd and 4 adds, where the int16
 * pair tile spends 8 loads, 8 unpacks, 8 vpmaddwd and 8 adds, on a source twice as large (the band a
 * row reads stays in L1). Accumulator k holds positions 4 k .. 4 k + 3 in the low 128-bit lane and
 * 16 + 4 k .. 19 + 4 k in the high one; one permute per pair of accumulators puts them in order. Runs
 * are read and written in whole 32-position vectors: the source and the sums carry SPN_SLACK slack.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SPN_A2_TARGET __attribute__((target("avx2")))
#define SPN_A2_NV 2               /* 32-position vectors a tile: 2 x 4 accumulators, 2 constants, 6 temporaries */

/* The sums of positions vpos[v] .. vpos[v] + 31 (from p0) into acc + apos[v], v < nv: the vectors of a
 * tile may lie in different rows of a band. */
static inline __attribute__((always_inline)) SPN_A2_TARGET void
spn_a2_tile(const int64_t *off4, const int32_t *w4, int64_t groups, const uint8_t *src, int64_t p0,
            const int64_t *vpos, const int64_t *apos, int32_t *acc, const int nv)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a[SPN_A2_NV][4];
    for (int v = 0; v < nv; v++)
        for (int k = 0; k < 4; k++)
            a[v][k] = _mm256_setzero_si256();
    for (int64_t g = 0; g < groups; g++) {
        const uint8_t *s0 = src + off4[4 * g] + p0, *s1 = src + off4[4 * g + 1] + p0;
        const uint8_t *s2 = src + off4[4 * g + 2] + p0, *s3 = src + off4[4 * g + 3] + p0;
        const __m256i w = _mm256_set1_epi32(w4[g]);
        for (int v = 0; v < nv; v++) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(s0 + vpos[v]));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(s1 + vpos[v]));
            __m256i x2 = _mm256_loadu_si256((const __m256i *)(s2 + vpos[v]));
            __m256i x3 = _mm256_loadu_si256((const __m256i *)(s3 + vpos[v]));
            __m256i lo01 = _mm256_unpacklo_epi8(x0, x1), hi01 = _mm256_unpackhi_epi8(x0, x1);
            __m256i lo23 = _mm256_unpacklo_epi8(x2, x3), hi23 = _mm256_unpackhi_epi8(x2, x3);
            __m256i q0 = _mm256_maddubs_epi16(_mm256_unpacklo_epi16(lo01, lo23), w);
            __m256i q1 = _mm256_maddubs_epi16(_mm256_unpackhi_epi16(lo01, lo23), w);
            __m256i q2 = _mm256_maddubs_epi16(_mm256_unpacklo_epi16(hi01, hi23), w);
            __m256i q3 = _mm256_maddubs_epi16(_mm256_unpackhi_epi16(hi01, hi23), w);
            a[v][0] = _mm256_add_epi32(a[v][0], _mm256_madd_epi16(q0, ones));
            a[v][1] = _mm256_add_epi32(a[v][1], _mm256_madd_epi16(q1, ones));
            a[v][2] = _mm256_add_epi32(a[v][2], _mm256_madd_epi16(q2, ones));
            a[v][3] = _mm256_add_epi32(a[v][3], _mm256_madd_epi16(q3, ones));
        }
    }
    for (int v = 0; v < nv; v++) {
        int32_t *o = acc + apos[v];
        _mm256_storeu_si256((__m256i *)o, _mm256_permute2x128_si256(a[v][0], a[v][1], 0x20));
        _mm256_storeu_si256((__m256i *)(o + 8), _mm256_permute2x128_si256(a[v][2], a[v][3], 0x20));
        _mm256_storeu_si256((__m256i *)(o + 16), _mm256_permute2x128_si256(a[v][0], a[v][1], 0x31));
        _mm256_storeu_si256((__m256i *)(o + 24), _mm256_permute2x128_si256(a[v][2], a[v][3], 0x31));
    }
}

#define SPN_A2_MAXV 64            /* vectors of one call: a band of up to 2 rows of 1024 positions */

/* Row y < rows of one output channel's band: acc[y * acc_step + q] for q < cnt (a multiple of 16, rounded
 * up to 32: the slack) from positions p0 + y * row_step + q; the band's rows share tiles of SPN_A2_NV
 * vectors (a 5-vector row pair is 5 tiles of 2, not 2 x (2 + 2 + 1)). Same quads as spn_run_vnni. */
static SPN_A2_TARGET void spn_run_avx2_u8(const int64_t *off4, const int32_t *w4, int64_t groups, const uint8_t *src,
                                          int64_t p0, int64_t cnt, int64_t rows, int64_t row_step, int64_t acc_step,
                                          int32_t *acc)
{
    const int64_t per_row = (cnt + 31) / 32;
    int64_t vpos[SPN_A2_MAXV + SPN_A2_NV], apos[SPN_A2_MAXV + SPN_A2_NV], n = 0;
    for (int64_t y = 0; y < rows; y++)
        for (int64_t v = 0; v < per_row; v++) {
            vpos[n] = y * row_step + 32 * v;
            apos[n++] = y * acc_step + 32 * v;
            if (n == SPN_A2_MAXV || (y == rows - 1 && v == per_row - 1)) {      /* flush the list */
                int64_t v0 = 0;
                for (; v0 + SPN_A2_NV <= n; v0 += SPN_A2_NV)
                    spn_a2_tile(off4, w4, groups, src, p0, vpos + v0, apos + v0, acc, SPN_A2_NV);
                if (v0 < n)
                    spn_a2_tile(off4, w4, groups, src, p0, vpos + v0, apos + v0, acc, 1);
                n = 0;
            }
        }
}
#endif
