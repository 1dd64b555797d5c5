/* quantize_u8.c: the integer model's input step, float32 -> uint8 codes, in one pass:
 *     q = clamp(rint(x / scale) + zero_point, 0, qmax)
 * optionally writing NCHW input in NHWC order (the layout the integer convolutions run on), and
 * counting the non-finite inputs (the caller refuses them: an integer model would hide a NaN).
 * Spec: quantize_f32_u8 in tinyeff/kernels/int8_eltwise/spec.py (NumPy's quantize, then a transpose).
 *
 * Bit-exactness with NumPy: x / scale is one correctly rounded float32 division (not a multiply by
 * the reciprocal, which rounds differently), rint rounds half to even (the default rounding mode,
 * nearbyintf / vroundps with _MM_FROUND_TO_NEAREST_INT), and rint(.) + zero_point is an integer
 * exactly representable below 2^24; above that, NumPy's rounding and ours both land beyond qmax
 * (rounding is monotonic), so the clamp gives the same code.
 *
 * Paths: AVX2 (8 floats per step; vdivps), portable C. NHWC with c > 1 quantizes one image row of
 * each channel into a small buffer and interleaves the bytes (byte shuffles for 3 channels on
 * AVX2). OpenMP splits the images.
 */
#include <math.h>

#include "tinyeff.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QU8_X86 1
#endif

#define QU8_ROW 256            /* positions per interleave step (NHWC, c > 1) */

static inline uint8_t quantize_one(float v, float scale, float zp, float qmax, int64_t *bad) {
    if (!isfinite(v)) { (*bad)++; return 0; }
    float r = nearbyintf(v / scale) + zp;
    return (uint8_t)(r < 0.0f ? 0.0f : r > qmax ? qmax : r);
}

static int64_t quantize_portable(const float *x, int64_t n, float scale, float zp, float qmax, uint8_t *out) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) out[i] = quantize_one(x[i], scale, zp, qmax, &bad);
    return bad;
}

#ifdef QU8_X86
__attribute__((target("avx2"))) static int64_t
quantize_avx2(const float *x, int64_t n, float scale, float zp, float qmax, uint8_t *out) {
    const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(zp), lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(qmax);
    const __m256i exp_bits = _mm256_set1_epi32(0x7f800000);
    int64_t bad = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256i e = _mm256_and_si256(_mm256_castps_si256(v), exp_bits);     /* all ones: Inf or NaN */
        bad += __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(e, exp_bits))));
        __m256 r = _mm256_add_ps(_mm256_round_ps(_mm256_div_ps(v, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);
        __m256i q = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(out + i), _mm_packus_epi16(w, w));
    }
    return bad + quantize_portable(x + i, n - i, scale, zp, qmax, out + i);
}
#endif

static int64_t quantize_run(const float *x, int64_t n, float scale, float zp, float qmax, int64_t isa, uint8_t *out) {
#ifdef QU8_X86
    if (TE_ISA_HAS_AVX2(isa)) return quantize_avx2(x, n, scale, zp, qmax, out);
#endif
    (void)isa;
    return quantize_portable(x, n, scale, zp, qmax, out);
}

#ifdef QU8_X86
/* Three channel rows (QU8_ROW apart in buf) -> len positions x 3 bytes: per 16 positions, output
 * byte k of 48 is channel k % 3 of position k / 3, one byte shuffle per (16-byte block, channel). */
__attribute__((target("avx2"))) static void interleave3_avx2(const uint8_t *buf, int64_t len, uint8_t *out) {
    int8_t idx[3][3][16];
    for (int m = 0; m < 3; m++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 16; k++) idx[m][j][k] = (int8_t)((16 * m + k) % 3 == j ? (16 * m + k) / 3 : -1);
    __m128i sel[3][3];
    for (int m = 0; m < 3; m++)
        for (int j = 0; j < 3; j++) sel[m][j] = _mm_loadu_si128((const __m128i *)idx[m][j]);
    int64_t p = 0;
    for (; p + 16 <= len; p += 16) {
        __m128i ch[3];
        for (int j = 0; j < 3; j++) ch[j] = _mm_loadu_si128((const __m128i *)(buf + j * QU8_ROW + p));
        for (int m = 0; m < 3; m++) {
            __m128i o = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(ch[0], sel[m][0]), _mm_shuffle_epi8(ch[1], sel[m][1])),
                                     _mm_shuffle_epi8(ch[2], sel[m][2]));
            _mm_storeu_si128((__m128i *)(out + 3 * p + 16 * m), o);
        }
    }
    for (; p < len; p++)
        for (int j = 0; j < 3; j++) out[3 * p + j] = buf[j * QU8_ROW + p];
}
#endif

/* One image (c, hw) -> (hw, c): QU8_ROW positions of every channel, then interleaved. */
static int64_t quantize_image_nhwc(const float *x, int64_t c, int64_t hw, float scale, float zp, float qmax,
                                   int64_t isa, uint8_t *out) {
    uint8_t buf[QU8_ROW * 4];
    int64_t bad = 0;
    for (int64_t p0 = 0; p0 < hw; p0 += QU8_ROW) {
        int64_t len = hw - p0 < QU8_ROW ? hw - p0 : QU8_ROW;
        for (int64_t c0 = 0; c0 < c; c0 += 4) {               /* up to 4 channels per pass through buf */
            int64_t cc = c - c0 < 4 ? c - c0 : 4;
            for (int64_t j = 0; j < cc; j++)
                bad += quantize_run(x + (c0 + j) * hw + p0, len, scale, zp, qmax, isa, buf + j * QU8_ROW);
#ifdef QU8_X86
            if (c == 3 && TE_ISA_HAS_AVX2(isa)) { interleave3_avx2(buf, len, out + p0 * 3); continue; }   /* RGB */
#endif
            for (int64_t p = 0; p < len; p++)
                for (int64_t j = 0; j < cc; j++) out[(p0 + p) * c + c0 + j] = buf[j * QU8_ROW + p];
        }
    }
    return bad;
}

/* x: (n, c, hw) float32; out: (n, c, hw) uint8, or (n, hw, c) when nhwc. *nonfinite: how many x were
 * NaN or +-Inf (their codes are 0). */
int tinyeff_quantize_f32_u8(const float *x, int64_t n, int64_t c, int64_t hw, double scale, int64_t zero_point,
                            int64_t qmax, int64_t nhwc, int64_t isa, uint8_t *out, int64_t *nonfinite) {
    if (n < 0 || c < 1 || hw < 0 || !(scale > 0) || zero_point < 0 || zero_point > qmax || qmax > 255 ||
        !TE_ISA_OK(isa)) return 1;
    float s = (float)scale, zp = (float)zero_point, top = (float)qmax;
    int64_t per_image = c * hw, bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (n * per_image >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t i = 0; i < n; i++) {
        if (nhwc && c > 1) bad += quantize_image_nhwc(x + i * per_image, c, hw, s, zp, top, isa, out + i * per_image);
        else bad += quantize_run(x + i * per_image, per_image, s, zp, top, isa, out + i * per_image);
    }
    *nonfinite = bad;
    return 0;
}
