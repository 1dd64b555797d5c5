/* qconv_small.c: integer convolution for few input channels (a network's first layer: 1 or 3),
 * uint8 NHWC activations x int8 weights -> requantized uint8, with the ReLU and a following 2x2
 * max-pool fused. Same contract and same codes as conv2d_u8s8_requant_nhwc (csrc/int8_gemm).
 *
 * Why a kernel of its own: with C = 1 a 3x3 kernel has 9 taps, so the implicit-im2col GEMM runs a
 * K = 12 (C = 3: K = 36, kernel rows padded to 4 bytes each) through tiles built for long K: per
 * output row it sets up rows and segments, per 16 columns it keeps an int32 tile, and the fixed
 * costs outweigh the few multiply-adds. Here the output channels are the vector lanes (32 per
 * block: 4 ymm, 2 zmm or 8 NEON q registers), one output pixel is a handful of broadcasts of its
 * own 4-byte tap groups against the packed weight, and a 2x2 window's max is requantized straight
 * from registers.
 *
 * Tap groups (tinyeff/kernels/int8_conv_small/spec.py builds the weight in the same order): a
 * kernel row is kw * c consecutive bytes of the padded image. Each row gives floor(kw*c / 4)
 * "direct" groups, 4 bytes read with one load. The rest, rem = kw*c % 4 bytes per row, are
 *   - gathered across the kernel rows into one more group when rem * kh <= 4 (C = 3, 3x3: 6 direct
 *     groups + 1 gathered = 7 groups for 27 taps, where padding each row would take 9), or
 *   - read as one more direct group per row, its bytes past the row meeting zero weights (C = 1,
 *     3x3: 3 groups for 9 taps).
 * Those zero-weight bytes may lie past the end of the image for the last windows; such windows
 * take the portable body, which reads only real taps.
 *
 * Sums: raw u8 x s8 sums in int32 (exact, K is tiny), then acc - zp_in * colsum + bias and the
 * fixed-point requantization of int8_common.h; the vector paths fold zp_in * colsum into the bias
 * and requantize 8 or 16 lanes at once when that cannot saturate (as the GEMM's fast epilogue).
 * The AVX2 path multiplies with vpmaddubsw, exact when A <= 127 (checked on the image) or when
 * every weight pair fits int16 (the caller's pairs_fit); otherwise it splits each input byte in
 * two (qconv_small_body.h), at twice the multiplies. With A <= 127 and the caller's quads_fit (7-bit
 * weights always), two groups share one vpmaddwd.
 * ARM64 (qconv_small_body.h): sdot (neon_dotprod) or vmull_s8 + vpadalq_s16 (neon) on the input
 * taken as a - 128, as the int8 GEMM does; every window's sums are then raw - 128 * colsum, and
 * the epilogue adds (128 - zp_in) * colsum back before te_requant4_neon (exact for any bias and
 * shift, so the ARM64 paths have no slow epilogue).
 * Threads: OpenMP over (image, pooled output row), handed out dynamically.
 */
#include <string.h>

#include "tinyeff.h"
#include "int8_common.h"

#define QS_BLOCK 32          /* output channels per block: the lanes of 4 ymm, 2 zmm or 8 NEON q registers */
#define QS_MAX_DIRECT 16     /* direct groups per kernel (64 taps): the layers this kernel is for */
#define QS_MAX_BLOCKS 8      /* up to 256 output channels */

typedef struct {
    int64_t doff[QS_MAX_DIRECT], drow_byte[QS_MAX_DIRECT];  /* image offset, byte inside its kernel row */
    int64_t goff[4];                                        /* offsets of the gathered bytes */
    int64_t pix_off[4];                                     /* pixels of a window from its origin */
    int64_t win_step, row_bytes, reach;                     /* reach: bytes a window may load */
    int nd, ng, npix;
    int exact8;                 /* AVX2: split the input bytes (see qconv_small_body.h) */
    int quad;                   /* AVX2: two groups per vpmaddwd (see qconv_small_body.h) */
} qs_geom;

typedef struct {
    int fast;
    const int32_t *colsum, *bias, *multiplier, *shift;      /* the block's first column */
    int32_t corr, zero_point, qmin, qmax;
#ifdef TE_HAVE_AVX2_REQUANT
    te_requant8_params p8[4];
    te_requant16_params p16[2];
#endif
#ifdef TE_HAVE_NEON_REQUANT
    /* per column, zero past ncols: the offset (128 - zp_in) * colsum (wrapping int32) and the requant */
    int32_t off[QS_BLOCK], nbias[QS_BLOCK], nmult[QS_BLOCK], nshift[QS_BLOCK];
#endif
} qs_epi;

static inline int32_t qs_load4(const uint8_t *p) { int32_t x; memcpy(&x, p, 4); return x; }

/* The tap groups of a kh x kw x c kernel on an image row of wp pixels (see the top). */
static int qs_geometry(int64_t c, int64_t kh, int64_t kw, int64_t wp, int64_t stride, int64_t pool, qs_geom *g) {
    int64_t rb = kw * c, full = rb / 4, rem = rb % 4, ys = wp * c;
    int gather = rem && rem * kh <= 4;
    g->exact8 = 0;
    g->quad = 0;
    int64_t per_row = gather ? full : (rb + 3) / 4;
    if (kh * per_row > QS_MAX_DIRECT || pool < 1 || pool > 2) return 0;
    g->nd = (int)(kh * per_row);
    g->ng = gather ? (int)(kh * rem) : 0;
    g->row_bytes = rb;
    g->reach = 0;
    for (int64_t r = 0, d = 0; r < kh; r++)
        for (int64_t i = 0; i < per_row; i++, d++) {
            g->doff[d] = r * ys + 4 * i;
            g->drow_byte[d] = 4 * i;
            if (g->doff[d] + 4 > g->reach) g->reach = g->doff[d] + 4;
        }
    for (int64_t r = 0; r < kh && gather; r++)
        for (int64_t t = 0; t < rem; t++) g->goff[r * rem + t] = r * ys + 4 * full + t;
    g->npix = (int)(pool * pool);
    for (int64_t dy = 0; dy < pool; dy++)
        for (int64_t dx = 0; dx < pool; dx++) g->pix_off[dy * pool + dx] = (dy * ys + dx * c) * stride;
    g->reach += g->pix_off[g->npix - 1];
    g->win_step = pool * stride * c;
    return 1;
}

/* requant(raw - corr * colsum + bias) per column, te_requant_one's int64 steps. */
static void qs_requant_slow(const int32_t *raw, const qs_epi *e, int64_t ncols, uint8_t *out) {
    for (int64_t j = 0; j < ncols; j++) {
        int64_t v = (int64_t)(int32_t)((uint32_t)raw[j] - (uint32_t)e->corr * (uint32_t)e->colsum[j]);
        out[j] = te_requant_one(v + (e->bias ? e->bias[j] : 0), e->multiplier[j], e->shift[j], e->zero_point,
                                e->qmin, e->qmax);
    }
}

/* ---- portable: any CPU, and the windows whose vector loads would pass the image's end ---------- */

static void qs_pixel_portable(const uint8_t *p, const qs_geom *g, const int8_t *wb, int64_t width, int32_t *acc) {
    memset(acc, 0, sizeof(int32_t) * QS_BLOCK);
    for (int d = 0; d < g->nd; d++, wb += 4 * width)
        for (int t = 0; t < 4; t++) {
            if (g->drow_byte[d] + t >= g->row_bytes) continue;        /* a zero weight: not read */
            int32_t a = p[g->doff[d] + t];
            for (int64_t j = 0; j < width; j++) acc[j] += a * wb[4 * j + t];
        }
    for (int t = 0; t < g->ng; t++) {
        int32_t a = p[g->goff[t]];
        for (int64_t j = 0; j < width; j++) acc[j] += a * wb[4 * j + t];
    }
}

static void qs_windows_portable(const qs_geom *g, const uint8_t *row0, int64_t nwin, const int8_t *wb,
                                const qs_epi *e, int64_t ncols, uint8_t *out, int64_t ldo, int64_t width) {
    for (int64_t i = 0; i < nwin; i++, row0 += g->win_step, out += ldo) {
        int32_t best[QS_BLOCK], acc[QS_BLOCK];
        for (int q = 0; q < g->npix; q++) {
            qs_pixel_portable(row0 + g->pix_off[q], g, wb, width, acc);
            for (int j = 0; j < QS_BLOCK; j++) best[j] = q == 0 || acc[j] > best[j] ? acc[j] : best[j];
        }
        qs_requant_slow(best, e, ncols, out);
    }
}

/* ---- x86 vector bodies -------------------------------------------------------------------------- */

#ifdef TE_HAVE_AVX2_REQUANT
#define QS_X86 1
#define QS_AVX2
#include "qconv_small_body.h"
#define QS_VNNI
#include "qconv_small_body.h"

/* 1 if every byte of p[0, len) is <= 127 (the vpmaddubsw pairs are then exact for any weights). */
__attribute__((target("avx2"))) static int qs_below_128(const uint8_t *p, int64_t len) {
    __m256i any = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= len; i += 32) any = _mm256_or_si256(any, _mm256_loadu_si256((const __m256i *)(p + i)));
    uint8_t rest = 0;
    for (; i < len; i++) rest |= p[i];
    return !_mm256_movemask_epi8(any) && !(rest & 0x80);
}

/* The vector epilogue's parameters for the block (bias folded with the zero-point correction),
 * when its preconditions hold (int8_common.h): every shift <= 0, no sum can leave int32. */
static int qs_fuse_bias(const qs_epi *e, int64_t ncols, int64_t k, int32_t *fused) {
    for (int64_t j = 0; j < QS_BLOCK; j++) {
        if (j >= ncols) { fused[j] = 0; continue; }
        int64_t b = (e->bias ? e->bias[j] : 0) - (int64_t)e->corr * e->colsum[j];
        if (e->shift[j] > 0 || (b < 0 ? -b : b) + k * (int64_t)(255 * 128) > INT32_MAX) return 0;
        fused[j] = (int32_t)b;
    }
    return 1;
}

__attribute__((target("avx2"))) static void qs_prepare_avx2(qs_epi *e, int64_t ncols, const int32_t *fused) {
    for (int64_t j = 0; j < ncols; j += 8)
        e->p8[j / 8] = te_requant8_load(fused + j, e->multiplier + j, e->shift + j, ncols - j);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
qs_prepare_avx512(qs_epi *e, int64_t ncols, const int32_t *fused) {
    for (int64_t j = 0; j < ncols; j += 16) {
        __mmask16 m = ncols - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ncols - j)) - 1);
        e->p16[j / 16] = te_requant16_load(fused + j, e->multiplier + j, e->shift + j, m);
    }
}

static void qs_prepare_fast(qs_epi *e, int64_t ncols, int64_t k, int isa) {
    int32_t fused[QS_BLOCK];
    e->fast = qs_fuse_bias(e, ncols, k, fused);
    if (e->fast && isa == TE_ISA_AVX512_VNNI) qs_prepare_avx512(e, ncols, fused);
    else if (e->fast) qs_prepare_avx2(e, ncols, fused);
}
#endif

/* ---- ARM64 vector bodies ------------------------------------------------------------------------ */

#ifdef TE_HAVE_NEON_REQUANT
#define QS_ARM 1

/* Plain NEON's accumulator for 4 columns: (c0 k01, c0 k23, c1 k01, c1 k23) and the same for c2, c3. */
typedef struct {
    int32x4_t c01, c23;
} qs_pair_neon;

/* acc += (a - 128) x w for one 16-byte slice (4 columns x 4 k): vmull_s8 gives int16 products
 * (|p| <= 2^14), vpadalq_s16 adds each adjacent pair into an int32 lane. */
static inline qs_pair_neon qs_pair_dot_neon(qs_pair_neon acc, int8x16_t a, int8x16_t w) {
    acc.c01 = vpadalq_s16(acc.c01, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
    acc.c23 = vpadalq_s16(acc.c23, vmull_high_s8(w, a));
    return acc;
}

#define QS_NEON_DOT
#include "qconv_small_body.h"
#define QS_NEON
#include "qconv_small_body.h"

/* The NEON epilogue's columns, zero-padded to the block: the sums arrive as raw - 128 * colsum, so
 * the offset is (128 - zp_in) * colsum, in wrapping int32 (exact: the corrected sum fits int32). */
static void qs_prepare_neon(qs_epi *e, int64_t ncols) {
    for (int64_t j = 0; j < QS_BLOCK; j++) {
        int in = j < ncols;
        e->off[j] = in ? (int32_t)((uint32_t)(128 - e->corr) * (uint32_t)e->colsum[j]) : 0;
        e->nbias[j] = in && e->bias ? e->bias[j] : 0;
        e->nmult[j] = in ? e->multiplier[j] : 0;
        e->nshift[j] = in ? e->shift[j] : 0;
    }
    e->fast = 1;
}
#endif

static int qs_isa_ok(int64_t isa) {
#ifdef QS_X86
    return isa == TE_ISA_PORTABLE || TE_ISA_HAS_AVX2(isa);
#elif defined(QS_ARM)
    return isa == TE_ISA_PORTABLE || TE_ISA_HAS_NEON(isa);
#else
    return isa == TE_ISA_PORTABLE;
#endif
}

/* One pooled output row of one 32-column block: the vector body for every window whose loads stay
 * inside the image (x_end), the portable one for the rest. */
static void qs_row(const qs_geom *g, const uint8_t *row0, const uint8_t *x_end, int64_t nwin, const int8_t *wb,
                   const qs_epi *e, int64_t ncols, int64_t width, uint8_t *out, int64_t ldo, int isa) {
    int64_t safe = 0;
#if defined(QS_X86) || defined(QS_ARM)
    if (isa != TE_ISA_PORTABLE) {
        int64_t room = (int64_t)(x_end - row0) - g->reach;      /* window i is safe if i * step <= room */
        safe = room < 0 ? 0 : room / g->win_step + 1;
        safe = safe < nwin ? safe : nwin;
#ifdef QS_X86
        if (isa == TE_ISA_AVX512_VNNI) qs_windows_vnni(g, row0, safe, wb, e, ncols, out, ldo, width);
        else qs_windows_avx2(g, row0, safe, wb, e, ncols, out, ldo, width);
#else
        if (isa == TE_ISA_NEON_DOTPROD) qs_windows_neon_dot(g, row0, safe, wb, e, ncols, out, ldo, width);
        else qs_windows_neon(g, row0, safe, wb, e, ncols, out, ldo, width);
#endif
    }
#else
    (void)x_end; (void)isa;
#endif
    qs_windows_portable(g, row0 + safe * g->win_step, nwin - safe, wb, e, ncols, out + safe * ldo, ldo, width);
}

int tinyeff_conv2d_u8s8_smallc_nhwc(const uint8_t *x, int64_t n, int64_t hp, int64_t wp, int64_t c,
                                          int64_t kh, int64_t kw, int64_t stride, int64_t pool, int64_t oh,
                                          int64_t ow, const int8_t *packed, const int32_t *colsum,
                                          int64_t pairs_fit, int64_t quads_fit, int64_t oc, int64_t a_zero_point, const int32_t *bias,
                                          const int32_t *multiplier, const int32_t *shift, int64_t zero_point_out,
                                          int64_t qmin, int64_t qmax, int64_t isa, uint8_t *out) {
    qs_geom g;
    if (n < 0 || c < 1 || kh < 1 || kw < 1 || stride < 1 || oh < pool || ow < pool || oc < 0 ||
        (oh - 1) * stride + kh > hp || (ow - 1) * stride + kw > wp || a_zero_point < 0 || a_zero_point > 255 ||
        !qs_geometry(c, kh, kw, wp, stride, pool, &g) || oc > QS_MAX_BLOCKS * QS_BLOCK) return 1;
    if (!qs_isa_ok(isa)) return 2;
    int64_t ph_n = oh / pool, pw_n = ow / pool, rows = n * ph_n, nblocks = (oc + QS_BLOCK - 1) / QS_BLOCK;
    int64_t groups = g.nd + (g.ng > 0);
    const uint8_t *x_end = x + n * hp * wp * c;
#ifdef QS_X86
    if (isa == TE_ISA_AVX2 || isa == TE_ISA_AVX512) {    /* is vpmaddubsw exact on the bytes as they are? */
        int a7 = (!pairs_fit || quads_fit) && qs_below_128(x, n * hp * wp * c);
        g.exact8 = !pairs_fit && !a7;
        g.quad = quads_fit && a7;
    }
#endif
    qs_epi epi[QS_MAX_BLOCKS];                   /* each block's epilogue, prepared once per call */
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t j0 = b * QS_BLOCK, ncols = oc - j0 < QS_BLOCK ? oc - j0 : QS_BLOCK;
        qs_epi e = {0, colsum + j0, bias ? bias + j0 : NULL, multiplier + j0, shift + j0,
                    (int32_t)a_zero_point, (int32_t)zero_point_out, (int32_t)qmin, (int32_t)qmax};
#ifdef QS_X86
        if (isa != TE_ISA_PORTABLE) qs_prepare_fast(&e, ncols, groups * 4, (int)isa);
#elif defined(QS_ARM)
        if (isa != TE_ISA_PORTABLE) qs_prepare_neon(&e, ncols);
#else
        (void)ncols;
#endif
        epi[b] = e;
    }
#pragma omp parallel for schedule(dynamic, 4) if (rows * pw_n * g.npix * oc * kh * kw * c >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t t = 0; t < rows; t++) {
        int64_t img = t / ph_n, py = t % ph_n;
        const uint8_t *row0 = x + (img * hp + py * pool * stride) * wp * c;
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t j0 = b * QS_BLOCK, ncols = oc - j0 < QS_BLOCK ? oc - j0 : QS_BLOCK;
            int64_t width = ncols > QS_BLOCK / 2 ? QS_BLOCK : QS_BLOCK / 2;   /* a last block of 16 */
            qs_row(&g, row0, x_end, pw_n, packed + b * groups * 4 * QS_BLOCK, &epi[b], ncols, width,
                   out + t * pw_n * oc + j0, oc, (int)isa);
        }
    }
    return 0;
}
