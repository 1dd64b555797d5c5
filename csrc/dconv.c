/* dconv.c: dense direct convolution, float32: the forward pass (which is also the input gradient
 * of a stride-1 convolution, with the flipped and transposed weight) and the weight gradient.
 *
 * The one idea, shared with spconv.c: in the flat-shift layout of tinyeff/kernels/layout/direct.py
 * (direct_conv_layout) every tap t of the kernel reads one contiguous run of the input,
 *     out[o, p] = sum_t w[o, t] * src[off[t] + p],   p = oh * WS + ow in [0, length).
 * No im2col matrix is ever written. What makes the dense case fast is register blocking:
 *   forward  a block of DC_R output channels x DC_V vectors of 16 positions lives in registers
 *            (24 accumulators); per tap we load DC_V input vectors once and broadcast DC_R
 *            weights, so 10 loads feed 24 FMAs. The tile is written once, with bias, optional
 *            ReLU, and the throw-away columns ow >= OW dropped.
 *   weights  gw[o, t] = sum_n sum_p g[n, o, p] * src[n, off[t] + p], with g laid on the same
 *            padded grid (zeros at ow >= OW). A block of DC_WR channels x DC_WT taps keeps 24
 *            vector accumulators over p and over a chunk of images small enough to stay in L2,
 *            and is reduced horizontally once per chunk.
 * Threads: OpenMP over (image, channel block) for the forward pass; for the weight gradient over
 * image chunks, each thread summing into its own buffer, added up under a critical section.
 * isa (TE_ISA_ codes): portable C (the compiler vectorizes the inner loops) or AVX-512F intrinsics.
 * Callers pad: the forward weight is packed (ceil(OC/DC_R), taps, DC_R) with zero rows, and the
 * weight-gradient offsets are padded to a multiple of DC_WT by repeating the last one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#include "tinyeff.h"

#define DC_VEC 16                  /* floats per 512-bit vector */
#define DC_R 4                     /* forward: output channels per register block */
#define DC_V 6                     /* forward: vectors of positions per register block */
#define DC_TILE (DC_V * DC_VEC)    /* forward: positions per register block */
#define DC_WR 4                    /* weight gradient: output channels per block */
#define DC_WT 6                    /* weight gradient: taps per block */
#define DC_L2_BYTES (256 * 1024)   /* weight gradient: image chunk budget */

/* Copy one finished tile row (positions p0 .. p0+cnt-1 of one channel) into its output plane
 * (OH x OW, contiguous), adding the bias and maybe ReLU, skipping the columns ow >= OW. */
static void dc_store(const float *tile, int64_t p0, int64_t cnt, int64_t ws, int64_t ow, float b,
                     int64_t relu, float *plane)
{
    int64_t p = p0, end = p0 + cnt;
    while (p < end) {
        int64_t row = p / ws, col = p % ws;
        int64_t stop = row * ws + ow < end ? row * ws + ow : end;
        if (col < ow) {
            const float *t = tile + (p - p0);
            float *dst = plane + row * ow + col;
            int64_t len = stop - p;
            if (relu)
                for (int64_t q = 0; q < len; q++) { float y = t[q] + b; dst[q] = y > 0.0f ? y : 0.0f; }
            else
                for (int64_t q = 0; q < len; q++) dst[q] = t[q] + b;
        }
        p = (row + 1) * ws;
    }
}

/* ---- forward tile: DC_R channels x cnt (<= DC_TILE) positions ------------------------------- */

static void dc_tile_c(const float *s, const int64_t *off, int64_t ntaps, const float *wb,
                      int64_t cnt, float *tile)
{
    memset(tile, 0, sizeof(float) * DC_R * DC_TILE);
    for (int64_t t = 0; t < ntaps; t++) {
        const float *st = s + off[t];
        for (int r = 0; r < DC_R; r++) {
            float wv = wb[t * DC_R + r];
            float *acc = tile + r * DC_TILE;
            for (int64_t q = 0; q < cnt; q++)
                acc[q] += wv * st[q];
        }
    }
}

#ifdef __x86_64__
static inline __mmask16 dc_mask(int64_t remaining)
{
    return remaining >= DC_VEC ? (__mmask16)0xFFFF
         : remaining > 0 ? (__mmask16)((1u << remaining) - 1u) : (__mmask16)0;
}

/* The 24 accumulators are named variables, not an array: gcc spills an array of __m512 to the
 * stack on every iteration, which costs more than the FMAs. DC_R = 4 rows x DC_V = 6 vectors. */
#define DC_ROW(r)                                                                           \
    do {                                                                                     \
        __m512 wv = _mm512_set1_ps(wb[t * DC_R + (r)]);                                      \
        a##r##0 = _mm512_fmadd_ps(wv, x0, a##r##0); a##r##1 = _mm512_fmadd_ps(wv, x1, a##r##1); \
        a##r##2 = _mm512_fmadd_ps(wv, x2, a##r##2); a##r##3 = _mm512_fmadd_ps(wv, x3, a##r##3); \
        a##r##4 = _mm512_fmadd_ps(wv, x4, a##r##4); a##r##5 = _mm512_fmadd_ps(wv, x5, a##r##5); \
    } while (0)
#define DC_STORE_ROW(r)                                                                      \
    do {                                                                                     \
        float *row = tile + (r) * DC_TILE;                                                   \
        _mm512_store_ps(row, a##r##0); _mm512_store_ps(row + 16, a##r##1);                   \
        _mm512_store_ps(row + 32, a##r##2); _mm512_store_ps(row + 48, a##r##3);              \
        _mm512_store_ps(row + 64, a##r##4); _mm512_store_ps(row + 80, a##r##5);              \
    } while (0)

__attribute__((target("avx512f")))
static void dc_tile_avx512(const float *s, const int64_t *off, int64_t ntaps, const float *wb,
                           int64_t cnt, float *tile)
{
    __mmask16 m0 = dc_mask(cnt), m1 = dc_mask(cnt - 16), m2 = dc_mask(cnt - 32),
              m3 = dc_mask(cnt - 48), m4 = dc_mask(cnt - 64), m5 = dc_mask(cnt - 80);
    __m512 z = _mm512_setzero_ps();
    __m512 a00 = z, a01 = z, a02 = z, a03 = z, a04 = z, a05 = z;
    __m512 a10 = z, a11 = z, a12 = z, a13 = z, a14 = z, a15 = z;
    __m512 a20 = z, a21 = z, a22 = z, a23 = z, a24 = z, a25 = z;
    __m512 a30 = z, a31 = z, a32 = z, a33 = z, a34 = z, a35 = z;
    for (int64_t t = 0; t < ntaps; t++) {
        const float *st = s + off[t];
        __m512 x0 = _mm512_maskz_loadu_ps(m0, st), x1 = _mm512_maskz_loadu_ps(m1, st + 16),
               x2 = _mm512_maskz_loadu_ps(m2, st + 32), x3 = _mm512_maskz_loadu_ps(m3, st + 48),
               x4 = _mm512_maskz_loadu_ps(m4, st + 64), x5 = _mm512_maskz_loadu_ps(m5, st + 80);
        DC_ROW(0); DC_ROW(1); DC_ROW(2); DC_ROW(3);
    }
    DC_STORE_ROW(0); DC_STORE_ROW(1); DC_STORE_ROW(2); DC_STORE_ROW(3);
}

/* The same block 4 vectors (64 positions) wide, for small planes: a 7x7 output in the flat layout
 * is 61 positions, which fills 95% of this tile and 64% of the 96-position one. */
#define DC_ROW4(r)                                                                          \
    do {                                                                                     \
        __m512 wv = _mm512_set1_ps(wb[t * DC_R + (r)]);                                      \
        a##r##0 = _mm512_fmadd_ps(wv, x0, a##r##0); a##r##1 = _mm512_fmadd_ps(wv, x1, a##r##1); \
        a##r##2 = _mm512_fmadd_ps(wv, x2, a##r##2); a##r##3 = _mm512_fmadd_ps(wv, x3, a##r##3); \
    } while (0)
#define DC_STORE_ROW4(r)                                                                     \
    do {                                                                                     \
        float *row = tile + (r) * DC_TILE;                                                   \
        _mm512_store_ps(row, a##r##0); _mm512_store_ps(row + 16, a##r##1);                   \
        _mm512_store_ps(row + 32, a##r##2); _mm512_store_ps(row + 48, a##r##3);              \
    } while (0)

__attribute__((target("avx512f")))
static void dc_tile4_avx512(const float *s, const int64_t *off, int64_t ntaps, const float *wb,
                            int64_t cnt, float *tile)
{
    __mmask16 m0 = dc_mask(cnt), m1 = dc_mask(cnt - 16), m2 = dc_mask(cnt - 32), m3 = dc_mask(cnt - 48);
    __m512 z = _mm512_setzero_ps();
    __m512 a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
    __m512 a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
    for (int64_t t = 0; t < ntaps; t++) {
        const float *st = s + off[t];
        __m512 x0 = _mm512_maskz_loadu_ps(m0, st), x1 = _mm512_maskz_loadu_ps(m1, st + 16),
               x2 = _mm512_maskz_loadu_ps(m2, st + 32), x3 = _mm512_maskz_loadu_ps(m3, st + 48);
        DC_ROW4(0); DC_ROW4(1); DC_ROW4(2); DC_ROW4(3);
    }
    DC_STORE_ROW4(0); DC_STORE_ROW4(1); DC_STORE_ROW4(2); DC_STORE_ROW4(3);
}
#endif

int tinyeff_dconv_f32(const float *src, int64_t img_stride, int64_t nimg, const float *wpack,
                      const int64_t *offsets, int64_t ntaps, int64_t oc, int64_t length, int64_t ws,
                      int64_t oh, int64_t ow, const float *bias, int64_t relu, int64_t isa, float *out)
{
    if (nimg < 0 || ntaps < 1 || oc < 1 || length < 1 || ws < 1 || oh < 1 || ow < 1 || ow > ws)
        return 1;
    if (!TE_ISA_OK(isa))
        return 2;
    int64_t nblk = (oc + DC_R - 1) / DC_R;
    /* Tile width: 96 positions unless 64-wide tiles waste less of the last one. */
    int64_t step = (length + 63) / 64 * 64 < (length + DC_TILE - 1) / DC_TILE * DC_TILE ? 64 : DC_TILE;
    #pragma omp parallel for schedule(static) if (nimg * oc * length * ntaps >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t task = 0; task < nimg * nblk; task++) {
        int64_t b = task / nblk, blk = task % nblk;
        const float *s = src + b * img_stride, *wb = wpack + blk * ntaps * DC_R;
        float tile[DC_R * DC_TILE] __attribute__((aligned(64)));
        for (int64_t p0 = 0; p0 < length; p0 += step) {
            int64_t cnt = length - p0 < step ? length - p0 : step;
#ifdef __x86_64__
            if (TE_ISA_HAS_AVX512(isa) && step == DC_TILE)
                dc_tile_avx512(s + p0, offsets, ntaps, wb, cnt, tile);
            else if (TE_ISA_HAS_AVX512(isa))
                dc_tile4_avx512(s + p0, offsets, ntaps, wb, cnt, tile);
            else
#endif
                dc_tile_c(s + p0, offsets, ntaps, wb, cnt, tile);
            for (int r = 0; r < DC_R && blk * DC_R + r < oc; r++) {
                int64_t o = blk * DC_R + r;
                dc_store(tile + r * DC_TILE, p0, cnt, ws, ow, bias ? bias[o] : 0.0f, relu,
                         out + (b * oc + o) * oh * ow);
            }
        }
    }
    return 0;
}

/* ---- weight gradient block: DC_WR channels x DC_WT taps, summed over images b0 .. b1-1 ------ */

static void dc_wblock_c(const float *src, int64_t img_stride, const float *g, int64_t g_img,
                        int64_t glen, int64_t b0, int64_t b1, int64_t nr, const int64_t *off,
                        int64_t length, float *part, int64_t ldp)
{
    for (int64_t b = b0; b < b1; b++) {
        const float *sb = src + b * img_stride, *gb = g + b * g_img;
        for (int64_t r = 0; r < nr; r++)
            for (int k = 0; k < DC_WT; k++) {
                const float *gr = gb + r * glen, *xs = sb + off[k];
                float acc = 0.0f;
                for (int64_t p = 0; p < length; p++)
                    acc += gr[p] * xs[p];
                part[r * ldp + k] += acc;
            }
    }
}

#ifdef __x86_64__
#define DC_TAP(k)                                                                            \
    do {                                                                                     \
        __m512 xv = _mm512_maskz_loadu_ps(m, sb + off[k] + p);                               \
        c0##k = _mm512_fmadd_ps(g0, xv, c0##k); c1##k = _mm512_fmadd_ps(g1, xv, c1##k);      \
        c2##k = _mm512_fmadd_ps(g2, xv, c2##k); c3##k = _mm512_fmadd_ps(g3, xv, c3##k);      \
    } while (0)
#define DC_REDUCE_ROW(r)                                                                     \
    do {                                                                                     \
        if ((r) < nr) {                                                                      \
            float *pr = part + (r) * ldp;                                                    \
            pr[0] += _mm512_reduce_add_ps(c##r##0); pr[1] += _mm512_reduce_add_ps(c##r##1);  \
            pr[2] += _mm512_reduce_add_ps(c##r##2); pr[3] += _mm512_reduce_add_ps(c##r##3);  \
            pr[4] += _mm512_reduce_add_ps(c##r##4); pr[5] += _mm512_reduce_add_ps(c##r##5);  \
        }                                                                                    \
    } while (0)

/* DC_WR = 4 channels x DC_WT = 6 taps, named accumulators for the same reason as above. */
__attribute__((target("avx512f")))
static void dc_wblock_avx512(const float *src, int64_t img_stride, const float *g, int64_t g_img,
                             int64_t glen, int64_t b0, int64_t b1, int64_t nr, const int64_t *off,
                             int64_t length, float *part, int64_t ldp)
{
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c02 = z, c03 = z, c04 = z, c05 = z;
    __m512 c10 = z, c11 = z, c12 = z, c13 = z, c14 = z, c15 = z;
    __m512 c20 = z, c21 = z, c22 = z, c23 = z, c24 = z, c25 = z;
    __m512 c30 = z, c31 = z, c32 = z, c33 = z, c34 = z, c35 = z;
    for (int64_t b = b0; b < b1; b++) {
        const float *sb = src + b * img_stride, *gb = g + b * g_img;
        for (int64_t p = 0; p < length; p += DC_VEC) {
            __mmask16 m = dc_mask(length - p);     /* rows past the last channel load as zeros */
            __m512 g0 = _mm512_maskz_loadu_ps(m, gb + p);
            __m512 g1 = _mm512_maskz_loadu_ps(nr > 1 ? m : (__mmask16)0, gb + glen + p);
            __m512 g2 = _mm512_maskz_loadu_ps(nr > 2 ? m : (__mmask16)0, gb + 2 * glen + p);
            __m512 g3 = _mm512_maskz_loadu_ps(nr > 3 ? m : (__mmask16)0, gb + 3 * glen + p);
            DC_TAP(0); DC_TAP(1); DC_TAP(2); DC_TAP(3); DC_TAP(4); DC_TAP(5);
        }
    }
    DC_REDUCE_ROW(0); DC_REDUCE_ROW(1); DC_REDUCE_ROW(2); DC_REDUCE_ROW(3);
}
#endif

int tinyeff_dconv_wgrad_f32(const float *src, int64_t img_stride, int64_t nimg, const float *g,
                            int64_t glen, const int64_t *offsets, int64_t ntaps_padded, int64_t ntaps,
                            int64_t oc, int64_t length, int64_t isa, float *gw)
{
    if (nimg < 1 || ntaps < 1 || ntaps_padded % DC_WT || ntaps_padded < ntaps || oc < 1 ||
        length < 1 || glen < length)
        return 1;
    if (!TE_ISA_OK(isa))
        return 2;
    int64_t img_bytes = (img_stride + oc * glen) * (int64_t)sizeof(float);
    int64_t chunk = DC_L2_BYTES / (img_bytes > 0 ? img_bytes : 1);
    chunk = chunk < 1 ? 1 : chunk > nimg ? nimg : chunk;
    int64_t nchunks = (nimg + chunk - 1) / chunk, ldp = ntaps_padded, failed = 0;
    memset(gw, 0, sizeof(float) * oc * ntaps);
    #pragma omp parallel
    {
        float *part = calloc((size_t)(oc * ldp), sizeof(float));
        if (!part) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(static)
        for (int64_t ci = 0; ci < nchunks; ci++) {
            if (!part)
                continue;
            int64_t b0 = ci * chunk, b1 = b0 + chunk < nimg ? b0 + chunk : nimg;
            for (int64_t o0 = 0; o0 < oc; o0 += DC_WR) {
                int64_t nr = oc - o0 < DC_WR ? oc - o0 : DC_WR;
                for (int64_t t0 = 0; t0 < ntaps_padded; t0 += DC_WT) {
#ifdef __x86_64__
                    if (TE_ISA_HAS_AVX512(isa))
                        dc_wblock_avx512(src, img_stride, g + o0 * glen, oc * glen, glen, b0, b1,
                                         nr, offsets + t0, length, part + o0 * ldp + t0, ldp);
                    else
#endif
                        dc_wblock_c(src, img_stride, g + o0 * glen, oc * glen, glen, b0, b1, nr,
                                    offsets + t0, length, part + o0 * ldp + t0, ldp);
                }
            }
        }
        if (part) {
            #pragma omp critical
            for (int64_t o = 0; o < oc; o++)
                for (int64_t t = 0; t < ntaps; t++)
                    gw[o * ntaps + t] += part[o * ldp + t];
            free(part);
        }
    }
    return failed ? 3 : 0;
}
