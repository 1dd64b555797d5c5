/* im2col_8.c: 8-bit im2col (uint8 or int8: pure byte movement) and uint8 max-pool.
 *
 * im2col layout as tinyeff/kernels/im2col/spec.py: cols (N*OH*OW, C*KH*KW), rows (n, oh, ow),
 * columns (c, kh, kw); padding cells hold pad_value (the input zero point, i.e. real 0.0).
 * Loop order follows the output so every write is sequential; with stride 1 the inner kw loop
 * reads consecutive bytes. Max-pool has no padding (floor mode), like ref maxpool2d_u8.
 *
 * NHWC versions (im2col_8_nhwc, maxpool2d_u8_nhwc), used by the integer model between layers so
 * that a conv's GEMM output (N*OH*OW, OC) is already the next layer's input with no transpose:
 * cols rows (n, oh, ow), columns (kh, kw, c). One kernel row is KW*C consecutive input bytes when
 * stride-1 windows lie inside the image, so it is copied in one piece.
 *
 * ISA paths of the 2x2 / stride-2 max-pools (the common pool; other windows run the portable loop):
 * AVX2 takes 32 bytes per vpmaxub, NEON 16 per vmaxq_u8. NHWC: the max of four channel vectors.
 * NCHW: the max of two rows, then of each even/odd byte pair (NEON: vld2q_u8 deinterleaves them;
 * AVX2: a 16-bit shift brings the odd byte under the even one and vpackuswb keeps the low bytes).
 * im2col has no per-ISA body: it is byte copies (memcpy and fixed-size moves the compiler emits
 * with the widest baseline vectors).
 */
#include <string.h>

#include "tinyeff.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TE_POOL_AVX2 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#define TE_POOL_NEON 1
#endif

#ifdef TE_POOL_AVX2
/* n is a multiple of 16 outputs (32 input bytes per row). */
__attribute__((target("avx2"))) static void te_pool2_row_avx2(const uint8_t *r0, const uint8_t *r1, int64_t n, uint8_t *dst) {
    const __m256i low = _mm256_set1_epi16(0x00FF);
    for (int64_t j = 0; j < n; j += 16) {
        __m256i v = _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(r0 + 2 * j)),
                                    _mm256_loadu_si256((const __m256i *)(r1 + 2 * j)));
        v = _mm256_and_si256(_mm256_max_epu8(v, _mm256_srli_epi16(v, 8)), low);   /* pair max in the even byte */
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(v, v), 0x08);  /* lanes 0, 2: 16 bytes */
        _mm_storeu_si128((__m128i *)(dst + j), _mm256_castsi256_si128(packed));
    }
}

/* n is a multiple of 32 channels. */
__attribute__((target("avx2"))) static void te_pool2_pixel_avx2(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2,
                                                         const uint8_t *p3, int64_t n, uint8_t *dst) {
    for (int64_t ch = 0; ch < n; ch += 32) {
        __m256i a = _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(p0 + ch)),
                                    _mm256_loadu_si256((const __m256i *)(p1 + ch)));
        __m256i b = _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(p2 + ch)),
                                    _mm256_loadu_si256((const __m256i *)(p3 + ch)));
        _mm256_storeu_si256((__m256i *)(dst + ch), _mm256_max_epu8(a, b));
    }
}
#endif

/* dst[j] = max(r0[2j], r0[2j+1], r1[2j], r1[2j+1]) for j < ow: one output row of a 2x2 / stride-2 pool. */
static void pool2_row(const uint8_t *r0, const uint8_t *r1, int64_t ow, int64_t isa, uint8_t *dst) {
    int64_t j = 0;
#ifdef TE_POOL_AVX2
    if (TE_ISA_HAS_AVX2(isa)) {
        j = ow / 16 * 16;
        te_pool2_row_avx2(r0, r1, j, dst);
    }
#endif
#ifdef TE_POOL_NEON
    if (TE_ISA_HAS_NEON(isa))
        for (; j + 16 <= ow; j += 16) {
            uint8x16x2_t a = vld2q_u8(r0 + 2 * j), b = vld2q_u8(r1 + 2 * j);
            vst1q_u8(dst + j, vmaxq_u8(vmaxq_u8(a.val[0], a.val[1]), vmaxq_u8(b.val[0], b.val[1])));
        }
#endif
    (void)isa;
    for (; j < ow; j++) {
        uint8_t top = r0[2 * j] > r0[2 * j + 1] ? r0[2 * j] : r0[2 * j + 1];
        uint8_t bottom = r1[2 * j] > r1[2 * j + 1] ? r1[2 * j] : r1[2 * j + 1];
        dst[j] = top > bottom ? top : bottom;
    }
}

/* dst[ch] = max of the four pixels' channel ch, for ch < c: one output pixel of a 2x2 NHWC pool. */
static void pool2_pixel(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3, int64_t c,
                        int64_t isa, uint8_t *dst) {
    int64_t ch = 0;
#ifdef TE_POOL_AVX2
    if (TE_ISA_HAS_AVX2(isa)) {
        ch = c / 32 * 32;
        te_pool2_pixel_avx2(p0, p1, p2, p3, ch, dst);
    }
#endif
#ifdef TE_POOL_NEON
    if (TE_ISA_HAS_NEON(isa))
        for (; ch + 16 <= c; ch += 16)
            vst1q_u8(dst + ch, vmaxq_u8(vmaxq_u8(vld1q_u8(p0 + ch), vld1q_u8(p1 + ch)),
                                        vmaxq_u8(vld1q_u8(p2 + ch), vld1q_u8(p3 + ch))));
#endif
    (void)isa;
    for (; ch < c; ch++) {
        uint8_t a = p0[ch] > p1[ch] ? p0[ch] : p1[ch];
        uint8_t d = p2[ch] > p3[ch] ? p2[ch] : p3[ch];
        dst[ch] = a > d ? a : d;
    }
}


/* Short runs (a 1-channel 3x3 image: 3 bytes) without a libc call: two overlapping fixed-size
 * copies cover any length in [n, 2n], and fixed sizes compile to plain moves. */
static inline void copy_run(uint8_t *dst, const uint8_t *src, int64_t len) {
    if (len >= 16 && len <= 32) {
        memcpy(dst, src, 16); memcpy(dst + len - 16, src + len - 16, 16);
    } else if (len >= 8 && len < 16) {
        memcpy(dst, src, 8); memcpy(dst + len - 8, src + len - 8, 8);
    } else if (len >= 4 && len < 8) {
        memcpy(dst, src, 4); memcpy(dst + len - 4, src + len - 4, 4);
    } else if (len >= 2 && len < 4) {
        memcpy(dst, src, 2); memcpy(dst + len - 2, src + len - 2, 2);
    } else if (len == 1) {
        dst[0] = src[0];
    } else {
        memcpy(dst, src, (size_t)len);
    }
}

static inline void fill_run(uint8_t *dst, uint8_t value, int64_t len) {
    for (int64_t i = 0; i < len; i++) dst[i] = value;
}

int tinyeff_im2col_8(const uint8_t *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh,
                     int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh,
                     int64_t ow, uint8_t pad_value, uint8_t *cols) {
    if (n < 0 || c < 0 || kh < 1 || kw < 1 || stride < 1 || dilation < 1 || padding < 0) return 1;
    int64_t row_len = c * kh * kw;
#pragma omp parallel for collapse(2) schedule(static) if (n * oh * ow * row_len > 65536)
    for (int64_t b = 0; b < n; b++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t xo = 0; xo < ow; xo++) {
                uint8_t *dst = cols + ((b * oh + y) * ow + xo) * row_len;
                for (int64_t ch = 0; ch < c; ch++) {
                    const uint8_t *plane = x + (b * c + ch) * h * w;
                    for (int64_t i = 0; i < kh; i++) {
                        int64_t iy = y * stride - padding + i * dilation;
                        for (int64_t j = 0; j < kw; j++) {
                            int64_t ix = xo * stride - padding + j * dilation;
                            *dst++ = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? plane[iy * w + ix] : pad_value;
                        }
                    }
                }
            }
    return 0;
}

int tinyeff_maxpool2d_u8(const uint8_t *x, int64_t n, int64_t c, int64_t h, int64_t w,
                         int64_t kernel_size, int64_t stride, int64_t oh, int64_t ow, int64_t isa, uint8_t *out) {
    if (kernel_size < 1 || stride < 1 || (oh - 1) * stride + kernel_size > h ||
        (ow - 1) * stride + kernel_size > w || !TE_ISA_OK(isa)) return 1;
#pragma omp parallel for schedule(static) if (n * c * oh * ow > 65536)
    for (int64_t plane = 0; plane < n * c; plane++) {
        const uint8_t *src = x + plane * h * w;
        uint8_t *dst = out + plane * oh * ow;
        if (kernel_size == 2 && stride == 2) {
            for (int64_t y = 0; y < oh; y++) pool2_row(src + 2 * y * w, src + (2 * y + 1) * w, ow, isa, dst + y * ow);
            continue;
        }
        for (int64_t y = 0; y < oh; y++)
            for (int64_t xo = 0; xo < ow; xo++) {
                uint8_t best = 0;
                for (int64_t i = 0; i < kernel_size; i++) {
                    const uint8_t *r = src + (y * stride + i) * w + xo * stride;
                    for (int64_t j = 0; j < kernel_size; j++) best = r[j] > best ? r[j] : best;
                }
                dst[y * ow + xo] = best;
            }
    }
    return 0;
}

/* The generic row of im2col_8_nhwc: output position (y, xo) of image b, kernel rows padded. */
static void unfold_row(const uint8_t *x, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                       int64_t stride, int64_t padding, int64_t dilation, int64_t run_padded, int64_t y,
                       int64_t xo, uint8_t pad_value, uint8_t *dst) {
    int64_t run = kw * c, ix0 = xo * stride - padding;
    int whole = dilation == 1 && ix0 >= 0 && ix0 + kw <= w;       /* one contiguous KW x C run */
    for (int64_t i = 0; i < kh; i++, dst += run_padded) {
        int64_t iy = y * stride - padding + i * dilation;
        if (iy < 0 || iy >= h) { fill_run(dst, pad_value, run_padded); continue; }
        const uint8_t *src = x + (b * h + iy) * w * c;
        fill_run(dst + run, pad_value, run_padded - run);
        if (whole) { copy_run(dst, src + ix0 * c, run); continue; }
        for (int64_t j = 0; j < kw; j++) {
            int64_t ix = ix0 + j * dilation;
            if (ix >= 0 && ix < w) copy_run(dst + j * c, src + ix * c, c);
            else fill_run(dst + j * c, pad_value, c);
        }
    }
}

/* pool > 1 orders the rows for a fused pool x pool / stride-pool max-pool (gemm_s8.c): rows
 * (n, ph, pw, dy, dx) with oh = ph * pool + dy, ow = pw * pool + dx, so each pooling window's
 * pool * pool rows are consecutive; outputs the pool drops (floor mode) are not emitted.
 * run_padded >= KW*C: each kernel row's bytes are followed by pad_value up to run_padded.
 * Fast case, a kernel row of at most 4 bytes padded to 4 (a 1-channel 3x3 conv) without padding
 * or dilation: each kernel row is one 4-byte load, a byte mask and one store. It reads up to
 * 4 - KW*C bytes past a window's row, so the last image rows fall back to the generic loop
 * where that would read past the input. */
int tinyeff_im2col_8_nhwc(const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                          int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t pool,
                          int64_t run_padded, int64_t oh, int64_t ow, uint8_t pad_value, uint8_t *cols) {
    int64_t run = kw * c;
    if (n < 0 || c < 0 || kh < 1 || kw < 1 || stride < 1 || dilation < 1 || padding < 0 || pool < 1 ||
        run_padded < run) return 1;
    int64_t row_len = kh * run_padded, ph_n = oh / pool, pw_n = ow / pool, win = pool * pool;
    const uint8_t *x_end = x + n * h * w * c;
    int word = run_padded == 4 && padding == 0 && dilation == 1;
    uint32_t keep = run >= 4 ? 0xFFFFFFFFu : (1u << (8 * run)) - 1;
    uint32_t fill = (uint32_t)pad_value * 0x01010101u & ~keep;
#pragma omp parallel for collapse(2) schedule(static) if (n * oh * ow * row_len > 65536)
    for (int64_t b = 0; b < n; b++)
        for (int64_t ph = 0; ph < ph_n; ph++) {
            uint8_t *block = cols + (b * ph_n + ph) * pw_n * win * row_len;   /* pw_n windows of this ph */
            for (int64_t dy = 0; dy < pool; dy++) {
                int64_t y = ph * pool + dy;
                const uint8_t *top = x + (b * h + y * stride) * w * c;
                int fast = word && top + ((kh - 1) * w + (ow - 1) * stride) * c + 4 <= x_end;
                for (int64_t pw = 0; pw < pw_n; pw++)
                    for (int64_t dx = 0; dx < pool; dx++) {
                        int64_t xo = pw * pool + dx;
                        uint8_t *dst = block + (pw * win + dy * pool + dx) * row_len;
                        if (!fast) {
                            unfold_row(x, b, h, w, c, kh, kw, stride, padding, dilation, run_padded, y, xo,
                                       pad_value, dst);
                            continue;
                        }
                        const uint8_t *src = top + xo * stride * c;
                        for (int64_t i = 0; i < kh; i++) {
                            uint32_t v;
                            memcpy(&v, src + i * w * c, 4);
                            v = (v & keep) | fill;
                            memcpy(dst + 4 * i, &v, 4);
                        }
                    }
            }
        }
    return 0;
}

int tinyeff_maxpool2d_u8_nhwc(const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c,
                              int64_t kernel_size, int64_t stride, int64_t oh, int64_t ow, int64_t isa, uint8_t *out) {
    if (kernel_size < 1 || stride < 1 || (oh - 1) * stride + kernel_size > h ||
        (ow - 1) * stride + kernel_size > w || !TE_ISA_OK(isa)) return 1;
#pragma omp parallel for collapse(2) schedule(static) if (n * c * oh * ow > 65536)
    for (int64_t b = 0; b < n; b++)
        for (int64_t y = 0; y < oh; y++) {
            const uint8_t *top = x + (b * h + y * stride) * w * c;
            uint8_t *dst = out + (b * oh + y) * ow * c;
            for (int64_t xo = 0; xo < ow; xo++, dst += c) {
                const uint8_t *win = top + xo * stride * c;
                if (kernel_size == 2) {
                    pool2_pixel(win, win + c, win + w * c, win + w * c + c, c, isa, dst);
                    continue;
                }
                for (int64_t ch = 0; ch < c; ch++) dst[ch] = 0;
                for (int64_t i = 0; i < kernel_size; i++)
                    for (int64_t j = 0; j < kernel_size; j++) {
                        const uint8_t *p = win + (i * w + j) * c;
                        for (int64_t ch = 0; ch < c; ch++) dst[ch] = p[ch] > dst[ch] ? p[ch] : dst[ch];
                    }
            }
        }
    return 0;
}
