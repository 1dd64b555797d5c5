/* sptile16.h: the x86 int8 sparse tile on an int16 copy of the source, shared by the NCHW rows
 * (spconv_vec.h) and the requantizing NHWC conv (spconv_nhwc_vec.h).
 *
 * Included after simd.h in an AVX2 or AVX-512 instantiation, with SP_NW (int16 vectors a tile)
 * defined. V(sp16_tile) accumulates positions [p0, p0 + cnt) (cnt >= 2 * VL) of
 *   acc[p] = sum_j val[j] * src[off[j] + p]
 * into tile[0, cnt), the last vector overlapping the one before it when cnt is not a multiple.
 *
 * Why int16:
 * Widening u8 to int32 lanes costs a shuffle per vector per nonzero (vpmovzxbd), which is what
 * bounds spconv_vec.h's pair loop. The callers therefore widen the whole source to int16
 * once per call (each activation is read by every nonzero of every row), and here one vector of
 * 2 * VL int16 activations per run and nonzero feeds two vpmaddwd: vpunpcklwd / vpunpckhwd
 * interleave the two runs into (x0, x1) pairs, one shuffle per VL positions instead of two.
 * The interleave works inside 128-bit lanes, so the accumulators hold positions in lane order
 * (lo: 0-3, 8-11, ...; hi: 4-7, 12-15, ...); one permute per tile puts them back. */

#if defined(SIMD_AVX512)
SIMD_INLINE void V(sp16_step)(vi *lo, vi *hi, const int16_t *s0, const int16_t *s1, vi wpair)
{
    __m512i a = _mm512_loadu_si512((const void *)s0);
    __m512i b = s1 ? _mm512_loadu_si512((const void *)s1) : _mm512_setzero_si512();
    *lo += (vi)_mm512_madd_epi16(_mm512_unpacklo_epi16(a, b), (__m512i)wpair);
    *hi += (vi)_mm512_madd_epi16(_mm512_unpackhi_epi16(a, b), (__m512i)wpair);
}

SIMD_INLINE void V(sp16_store)(int32_t *p, vi lo, vi hi)      /* 2 * VL positions, in order */
{
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    _mm512_storeu_si512((void *)p, _mm512_permutex2var_epi64((__m512i)lo, first, (__m512i)hi));
    _mm512_storeu_si512((void *)(p + VL), _mm512_permutex2var_epi64((__m512i)lo, second, (__m512i)hi));
}
#else
SIMD_INLINE void V(sp16_step)(vi *lo, vi *hi, const int16_t *s0, const int16_t *s1, vi wpair)
{
    __m256i a = _mm256_loadu_si256((const __m256i *)s0);
    __m256i b = s1 ? _mm256_loadu_si256((const __m256i *)s1) : _mm256_setzero_si256();
    *lo += (vi)_mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), (__m256i)wpair);
    *hi += (vi)_mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), (__m256i)wpair);
}

SIMD_INLINE void V(sp16_store)(int32_t *p, vi lo, vi hi)
{
    _mm256_storeu_si256((__m256i *)p, _mm256_permute2x128_si256((__m256i)lo, (__m256i)hi, 0x20));
    _mm256_storeu_si256((__m256i *)(p + VL), _mm256_permute2x128_si256((__m256i)lo, (__m256i)hi, 0x31));
}
#endif

SIMD_INLINE void V(sp16_tile)(const int64_t *off, const int8_t *val, int64_t nnz, const int16_t *src,
                              int64_t p0, int64_t cnt, int32_t *tile, const int NW)
{
    vi lo[SP_NW], hi[SP_NW];
    int64_t at[SP_NW];
    for (int k = 0; k < NW; k++) {
        lo[k] = hi[k] = (vi){0};
        at[k] = k < NW - 1 ? k * 2 * VL : cnt - 2 * VL;            /* the last vector ends at cnt */
    }
    int64_t j = 0;
    for (; j + 1 < nnz; j += 2) {
        const int16_t *s0 = src + off[j] + p0, *s1 = src + off[j + 1] + p0;
        vi wpair = (vi){0} + (int32_t)(((uint32_t)(uint16_t)val[j]) | ((uint32_t)val[j + 1] << 16));
        for (int k = 0; k < NW; k++)
            V(sp16_step)(&lo[k], &hi[k], s0 + at[k], s1 + at[k], wpair);
    }
    if (j < nnz) {                           /* an odd count: the last nonzero pairs with zeros */
        const int16_t *s0 = src + off[j] + p0;
        vi wpair = (vi){0} + (int32_t)(uint16_t)val[j];
        for (int k = 0; k < NW; k++)
            V(sp16_step)(&lo[k], &hi[k], s0 + at[k], NULL, wpair);
    }
    for (int k = 0; k < NW; k++)
        V(sp16_store)(tile + at[k], lo[k], hi[k]);
}

