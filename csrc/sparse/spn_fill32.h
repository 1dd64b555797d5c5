/* spn_fill32.h: spconv_nhwc.c's input layout change, 32 channels at a time on AVX2 (x86-64 only).
 *
 * spn_fill turns 16 images' NHWC pixels into the block layout (C, HP, WP, 16): per pixel, a 16 x C byte
 * matrix (image, channel) transposed to C x 16. The portable code does it 16 channels at a time in
 * 128-bit vectors. On AVX2 the same four rounds of "row i' = interleave(row i, row i + 8)" run on
 * 256-bit rows of 32 channels: vpunpck{l,h}bw interleave within each 128-bit lane, so the low lane
 * goes through exactly the 16 x 16 transpose of channels c0 .. c0 + 15 and the high lane that of
 * c0 + 16 .. c0 + 31, with the same instruction count as one 16-channel transpose: half the shuffles
 * per byte. Row ci of the result holds channel c0 + ci (low lane) and c0 + 16 + ci (high lane).
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Channels [0, c32) (a multiple of 32) of one pixel of 16 images (image b at px + b * image) into
 * dst + c * plane (16 bytes each); returns the OR of the bytes, folded to 8 bits. */
__attribute__((target("avx2"))) static uint8_t spn_fill32_px(const uint8_t *px, int64_t image, int64_t c32,
                                                          uint8_t *dst, int64_t plane)
{
    __m256i bits = _mm256_setzero_si256();
    for (int64_t c0 = 0; c0 < c32; c0 += 32) {
        __m256i r[16], t[16];
        for (int b = 0; b < 16; b++)
            r[b] = _mm256_loadu_si256((const __m256i *)(px + b * image + c0));
        for (int round = 0; round < 4; round++) {
            for (int i = 0; i < 8; i++) {
                t[2 * i] = _mm256_unpacklo_epi8(r[i], r[i + 8]);
                t[2 * i + 1] = _mm256_unpackhi_epi8(r[i], r[i + 8]);
            }
            memcpy(r, t, sizeof t);
        }
        for (int ci = 0; ci < 16; ci++) {
            bits = _mm256_or_si256(bits, r[ci]);
            _mm_storeu_si128((__m128i *)(dst + (c0 + ci) * plane), _mm256_castsi256_si128(r[ci]));
            _mm_storeu_si128((__m128i *)(dst + (c0 + 16 + ci) * plane), _mm256_extracti128_si256(r[ci], 1));
        }
    }
    __m128i b = _mm_or_si128(_mm256_castsi256_si128(bits), _mm256_extracti128_si256(bits, 1));
    b = _mm_or_si128(b, _mm_srli_si128(b, 8));
    b = _mm_or_si128(b, _mm_srli_si128(b, 4));
    b = _mm_or_si128(b, _mm_srli_si128(b, 2));
    b = _mm_or_si128(b, _mm_srli_si128(b, 1));
    return (uint8_t)_mm_cvtsi128_si32(b);
}
#endif
