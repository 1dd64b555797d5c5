/* sptile8_vnni.h: spconv_nhwc.c's run on AVX-512 VNNI: four nonzeros per vpdpbusd, on the uint8 source.
 *
 * vpdpbusd adds, in each int32 lane, the dot product of 4 unsigned bytes with 4 signed bytes. For a
 * sparse row the 4 signed bytes are 4 nonzeros (w0..w3, one broadcast int32) and the 4 unsigned bytes
 * must be the 4 activations those nonzeros read at one position: four runs (one per nonzero), byte-
 * interleaved. vpunpck{l,h}bw then vpunpck{l,h}wd build that from 4 loads of 64 positions: 8 shuffles
 * and 4 vpdpbusd per 4 nonzeros x 64 positions, where the int16 pair loop (sptile16.h) spends 8
 * shuffles, 8 vpmaddwd and 8 adds, and reads twice the bytes. A row's nonzeros are padded to a
 * multiple of 4 with weight 0 (spn_quads). Products are exact: no saturation in vpdpbusd.
 *
 * The interleave works inside 128-bit lanes, so accumulator k holds positions 16 L + 4 k + (0..3) in
 * 128-bit lane L; one 4 x 4 transpose of 128-bit lanes per 64 positions puts them in order. Runs are
 * read in whole vectors: the source and the sums carry SPN_SLACK positions of slack past their ends.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SPN_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define SPN_NQ 4                  /* 64-position vectors a tile: 4 x 4 accumulators + 8 temporaries */

static inline __attribute__((always_inline)) SPN_VNNI_TARGET void
spn_quad_tile(const int64_t *off4, const int32_t *w4, int64_t groups, const uint8_t *src, int64_t p0,
              int32_t *acc, const int nv)
{
    __m512i a[SPN_NQ][4];
    for (int v = 0; v < nv; v++)
        for (int k = 0; k < 4; k++)
            a[v][k] = _mm512_setzero_si512();
    for (int64_t g = 0; g < groups; g++) {
        const uint8_t *s0 = src + off4[4 * g] + p0, *s1 = src + off4[4 * g + 1] + p0;
        const uint8_t *s2 = src + off4[4 * g + 2] + p0, *s3 = src + off4[4 * g + 3] + p0;
        const __m512i w = _mm512_set1_epi32(w4[g]);
        for (int v = 0; v < nv; v++) {
            __m512i x0 = _mm512_loadu_si512(s0 + 64 * v), x1 = _mm512_loadu_si512(s1 + 64 * v);
            __m512i x2 = _mm512_loadu_si512(s2 + 64 * v), x3 = _mm512_loadu_si512(s3 + 64 * v);
            __m512i lo01 = _mm512_unpacklo_epi8(x0, x1), hi01 = _mm512_unpackhi_epi8(x0, x1);
            __m512i lo23 = _mm512_unpacklo_epi8(x2, x3), hi23 = _mm512_unpackhi_epi8(x2, x3);
            a[v][0] = _mm512_dpbusd_epi32(a[v][0], _mm512_unpacklo_epi16(lo01, lo23), w);
            a[v][1] = _mm512_dpbusd_epi32(a[v][1], _mm512_unpackhi_epi16(lo01, lo23), w);
            a[v][2] = _mm512_dpbusd_epi32(a[v][2], _mm512_unpacklo_epi16(hi01, hi23), w);
            a[v][3] = _mm512_dpbusd_epi32(a[v][3], _mm512_unpackhi_epi16(hi01, hi23), w);
        }
    }
    for (int v = 0; v < nv; v++) {          /* 128-bit lane L of a[v][k] -> positions 16 L + 4 k .. + 3 */
        __m512i t0 = _mm512_shuffle_i32x4(a[v][0], a[v][1], 0x44), t1 = _mm512_shuffle_i32x4(a[v][2], a[v][3], 0x44);
        __m512i t2 = _mm512_shuffle_i32x4(a[v][0], a[v][1], 0xEE), t3 = _mm512_shuffle_i32x4(a[v][2], a[v][3], 0xEE);
        int32_t *o = acc + 64 * v;
        _mm512_storeu_si512(o, _mm512_shuffle_i32x4(t0, t1, 0x88));
        _mm512_storeu_si512(o + 16, _mm512_shuffle_i32x4(t0, t1, 0xDD));
        _mm512_storeu_si512(o + 32, _mm512_shuffle_i32x4(t2, t3, 0x88));
        _mm512_storeu_si512(o + 48, _mm512_shuffle_i32x4(t2, t3, 0xDD));
    }
}

/* The same on one 256-bit vector (32 positions), for a run's last 16 or 32 (AVX-512 VL encodes vpdpbusd
 * on ymm): the two 128-bit lanes of accumulator k hold positions 4 k .. 4 k + 3 and 16 + 4 k .. 19 + 4 k. */
static inline __attribute__((always_inline)) SPN_VNNI_TARGET void
spn_quad_half(const int64_t *off4, const int32_t *w4, int64_t groups, const uint8_t *src, int64_t p0, int32_t *acc)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t g = 0; g < groups; g++) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(src + off4[4 * g] + p0));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(src + off4[4 * g + 1] + p0));
        __m256i x2 = _mm256_loadu_si256((const __m256i *)(src + off4[4 * g + 2] + p0));
        __m256i x3 = _mm256_loadu_si256((const __m256i *)(src + off4[4 * g + 3] + p0));
        const __m256i w = _mm256_set1_epi32(w4[g]);
        __m256i lo01 = _mm256_unpacklo_epi8(x0, x1), hi01 = _mm256_unpackhi_epi8(x0, x1);
        __m256i lo23 = _mm256_unpacklo_epi8(x2, x3), hi23 = _mm256_unpackhi_epi8(x2, x3);
        a0 = _mm256_dpbusd_epi32(a0, _mm256_unpacklo_epi16(lo01, lo23), w);
        a1 = _mm256_dpbusd_epi32(a1, _mm256_unpackhi_epi16(lo01, lo23), w);
        a2 = _mm256_dpbusd_epi32(a2, _mm256_unpacklo_epi16(hi01, hi23), w);
        a3 = _mm256_dpbusd_epi32(a3, _mm256_unpackhi_epi16(hi01, hi23), w);
    }
    _mm256_storeu_si256((__m256i *)acc, _mm256_permute2x128_si256(a0, a1, 0x20));
    _mm256_storeu_si256((__m256i *)(acc + 8), _mm256_permute2x128_si256(a2, a3, 0x20));
    _mm256_storeu_si256((__m256i *)(acc + 16), _mm256_permute2x128_si256(a0, a1, 0x31));
    _mm256_storeu_si256((__m256i *)(acc + 24), _mm256_permute2x128_si256(a2, a3, 0x31));
}

/* acc[q] for q < cnt (a multiple of 16; rounded up to 32 or 64: the slack) of one row's quads: tiles of
 * up to SPN_NQ 64-position vectors, and a last 32-position vector when at most 32 positions remain. */
static SPN_VNNI_TARGET void spn_run_vnni_row(const int64_t *off4, const int32_t *w4, int64_t groups,
                                             const uint8_t *src, int64_t p0, int64_t cnt, int32_t *acc)
{
    const int64_t full = cnt % 64 > 32 ? cnt / 64 + 1 : cnt / 64;      /* 64-position vectors */
    for (int64_t v0 = 0; v0 < full; v0 += SPN_NQ) {
        int32_t *out = acc + 64 * v0;
        switch (full - v0 < SPN_NQ ? full - v0 : SPN_NQ) {
        case 1: spn_quad_tile(off4, w4, groups, src, p0 + 64 * v0, out, 1); break;
        case 2: spn_quad_tile(off4, w4, groups, src, p0 + 64 * v0, out, 2); break;
        case 3: spn_quad_tile(off4, w4, groups, src, p0 + 64 * v0, out, 3); break;
        default: spn_quad_tile(off4, w4, groups, src, p0 + 64 * v0, out, SPN_NQ); break;
        }
    }
    if (64 * full < cnt)
        spn_quad_half(off4, w4, groups, src, p0 + 64 * full, acc + 64 * full);
}

/* Rows y < rows of a band, row y from p0 + y * row_step into acc + y * acc_step (spn_run_avx2_u8's arguments). */
static SPN_VNNI_TARGET void spn_run_vnni(const int64_t *off4, const int32_t *w4, int64_t groups, const uint8_t *src,
                                         int64_t p0, int64_t cnt, int64_t rows, int64_t row_step, int64_t acc_step,
                                         int32_t *acc)
{
    for (int64_t y = 0; y < rows; y++)
        spn_run_vnni_row(off4, w4, groups, src, p0 + y * row_step, cnt, acc + y * acc_step);
}
#endif
