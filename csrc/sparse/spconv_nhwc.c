/* spconv_nhwc.c: the requantizing sparse int8 conv on NHWC: uint8 in, uint8 out, one pass.
 *
 * The dense int8 model keeps activations (N, H, W, C) uint8 and fuses bias, requantization, ReLU and
 * a 2x2 max-pool into its GEMM. This kernel is that layer for a CSR-pruned weight, so a pruned conv
 * drops into the same pipeline with no layout change and no int32 tensor in memory.
 *
 * The one idea: pixels are the vector lanes, and a block of SPN_NB images is interleaved into them.
 * Per block of 16 images, each thread copies the padded input into int16 (C, HP, WP, 16): position
 * p = (y * WP + x) * 16 + image. Then for an output row oh, the valid outputs (oh, 0..OW-1, all 16
 * images) are ONE contiguous run of OW * 16 positions, and nonzero (c, i, j) of a CSR row reads the
 * same run shifted by ((c * HP + i) * WP + j) * 16: the direct sparse loop of spconv.c (work ~ nnz,
 * tile in registers while the row's nonzeros stream through it) without the discarded columns of
 * the per-image flat layout, and with rows long enough for wide vectors even when OW is 3. Rows
 * are processed a band (one output row, or the two rows of a pooled row) at a time:
 *   for each output channel: sums of the band's runs -> 2x2 max (pool) -> requantize -> 16-byte codes
 *   then the band's codes (OC, PW, 16) are transposed into the NHWC output rows (OC contiguous).
 * Max before requantization is exact: requantization is non-decreasing in the sum (see
 * gemm_u8s8_requant_rowmax). Sums are exact int32 (|w * x| <= 128 * 255, K <= 65536 taps), and
 * the input zero point, which padding also holds, is folded into the bias: sum w (x - z) + b =
 * sum w x + (b - z * rowsum(w)).
 *
 * Threads: OpenMP over image blocks. isa: spconv_nhwc_vec.h's bodies (AVX-512, AVX2, NEON; the
 * x86 ones share spconv_vec.h's int16 tile, sptile16.h) or portable C; on x86 the sums of four nonzeros
 * at a time on a uint8 copy instead: VNNI's vpdpbusd (sptile8_vnni.h) for any bytes, AVX2's vpmaddubsw
 * (sptile8_avx2.h, also the AVX-512 path's) for a block whose bytes are all <= 127, as 7-bit
 * activations are; spn_fill checks each block as it lays it out. Left out: stride and dilation other
 * than 1 (spconv_u8s8_csr's phase planes handle those), pools other than 2x2.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tinyeff.h"
#include "int8_common.h"

#define SPN_NB 16                 /* images interleaved per block: the lanes of one pixel */
#define SPN_SLACK 64              /* positions the VNNI run may read and write past a run's end */
#define SPN_RUN_STRIDE(run) (((run) + SPN_SLACK - 1) / SPN_SLACK * SPN_SLACK)

/* ---- portable C: the same three steps, loops the compiler may vectorize ------------------------- */

static void spn_run_c(const int64_t *off, const int8_t *val, int64_t nnz, const int16_t *src, int64_t p0,
                      int64_t cnt, int32_t *acc)
{
    memset(acc, 0, (size_t)cnt * sizeof *acc);
    for (int64_t j = 0; j < nnz; j++) {
        const int16_t *s = src + off[j] + p0;
        const int32_t w = val[j];
        for (int64_t q = 0; q < cnt; q++)
            acc[q] += w * s[q];
    }
}

static void spn_pool2_c(const int32_t *r0, const int32_t *r1, int64_t pw, int32_t *out)
{
    for (int64_t q = 0; q < pw; q++)
        for (int64_t b = 0; b < SPN_NB; b++) {
            const int64_t a = 2 * q * SPN_NB + b;
            int32_t m = r0[a] > r0[a + SPN_NB] ? r0[a] : r0[a + SPN_NB];
            m = r1[a] > m ? r1[a] : m;
            out[q * SPN_NB + b] = r1[a + SPN_NB] > m ? r1[a + SPN_NB] : m;
        }
}

static void spn_requant_c(const int32_t *acc, int64_t n, int64_t bias, int32_t multiplier, int32_t shift,
                          int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t *codes)
{
    for (int64_t q = 0; q < n; q++)
        codes[q] = te_requant_one(acc[q] + bias, multiplier, shift, zero_point, qmin, qmax);
}

/* ---- vector bodies ---------------------------------------------------------------------------- */
#ifdef __x86_64__
#define SIMD_AVX2
#define SPN_NW 5                  /* 2 x 5 accumulators of 16 ymm registers, plus the pair shuffles */
#define SPN_NARROW spn_run_c
#include "simd.h"
#include "spconv_nhwc_vec.h"
#undef SIMD_AVX2
#undef SPN_NW
#undef SPN_NARROW
#define SIMD_AVX512
#define SPN_NW 4                  /* 2 x 4 accumulators of 32 zmm registers */
#define SPN_NARROW spn_run_avx2
#include "simd.h"
#include "spconv_nhwc_vec.h"
#undef SIMD_AVX512
#undef SPN_NW
#undef SPN_NARROW
#include "sptile8_vnni.h"
#include "sptile8_avx2.h"
#include "spn_fill32.h"
#endif
#ifdef __aarch64__
#define SIMD_NEON
#include "simd.h"
#include "spconv_nhwc_vec.h"
#undef SIMD_NEON
#endif

typedef void (*spn_run_fn)(const int64_t *, const int8_t *, int64_t, const int16_t *, int64_t, int64_t, int32_t *);
typedef void (*spn_quad_fn)(const int64_t *, const int32_t *, int64_t, const uint8_t *, int64_t, int64_t, int64_t,
                            int64_t, int64_t, int32_t *);
typedef void (*spn_pool_fn)(const int32_t *, const int32_t *, int64_t, int32_t *);
typedef void (*spn_requant_fn)(const int32_t *, int64_t, int64_t, int32_t, int32_t, int32_t, int32_t, int32_t,
                               uint8_t *);

typedef struct {
    spn_run_fn run;                /* on the int16 source; NULL: quads only */
    spn_quad_fn quad;              /* four nonzeros at a time on the uint8 source; NULL: none */
    int any_byte;                  /* quad is exact for every uint8 (VNNI); else only for bytes <= 127 */
    spn_pool_fn pool2;
    spn_requant_fn requant;        /* the fast one: shift <= 0 and no int32 overflow */
} spn_path;

static spn_path spn_pick(int64_t isa)
{
#ifdef __x86_64__
    if (isa == TE_ISA_AVX512_VNNI) return (spn_path){NULL, spn_run_vnni, 1, spn_pool2_avx512, spn_requant_avx512};
    if (TE_ISA_HAS_AVX512(isa)) return (spn_path){spn_run_avx512, spn_run_avx2_u8, 0, spn_pool2_avx512, spn_requant_avx512};
    if (TE_ISA_HAS_AVX2(isa)) return (spn_path){spn_run_avx2, spn_run_avx2_u8, 0, spn_pool2_avx2, spn_requant_avx2};
#endif
#ifdef __aarch64__
    if (TE_ISA_HAS_NEON(isa)) return (spn_path){spn_run_neon, NULL, 0, spn_pool2_neon, spn_requant_neon};
#endif
    (void)isa;
    return (spn_path){spn_run_c, NULL, 0, spn_pool2_c, spn_requant_c};
}

/* The layer's geometry and per-channel constants, shared read-only by the threads. */
typedef struct {
    int64_t h, w, c, hp, wp, pad, pool, oc, ph, pw;
    const int64_t *indptr, *off;
    const int8_t *data;
    const int64_t *gptr, *off4;                     /* the VNNI path's rows: groups of 4 nonzeros */
    const int32_t *w4;
    const int64_t *bias;                            /* b - z * rowsum(w) */
    const int32_t *multiplier, *shift;
    const uint8_t *fast;                            /* per channel: the vector requantization is exact */
    int32_t zero_point_in, zero_point, qmin, qmax;
    int fill32;                                     /* x86 with AVX2: spn_fill32.h's 32-channel transposes */
} spn_layer;

/* ---- 16 x 16 byte transposes: the two layout changes, portable vector code ---------------------
 * Four rounds of "row i' = interleave(row i, row i + 8)" transpose a 16 x 16 byte matrix (each round
 * moves one bit of the row index into the column index). GCC/Clang vector extensions compile this
 * to punpck on x86-64's SSE2 baseline and zip on ARM64. */
typedef uint8_t spn_u8x16 __attribute__((vector_size(16)));
typedef int16_t spn_i16x16 __attribute__((vector_size(32)));

static inline void spn_transpose16(spn_u8x16 r[16])
{
    for (int round = 0; round < 4; round++) {
        spn_u8x16 t[16];
        for (int i = 0; i < 8; i++) {
            t[2 * i] = __builtin_shufflevector(r[i], r[i + 8], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            t[2 * i + 1] = __builtin_shufflevector(r[i], r[i + 8], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29,
                                                   14, 30, 15, 31);
        }
        memcpy(r, t, sizeof t);
    }
}

/* Images n0 .. n0 + nb - 1 of NHWC x into the interior of src (C, HP, WP, SPN_NB); lanes >= nb and
 * the border keep what they hold (the zero point, set once per thread; stale lanes are never stored).
 * Per pixel, 16 images x 16 channels at a time through one byte transpose; int16 (src) or uint8 (src8).
 * Returns the OR of the bytes stored: bit 7 set if any is above 127 (the AVX2 quads' limit). */
static uint8_t spn_fill(const spn_layer *L, const uint8_t *x, int64_t nb, int16_t *src, uint8_t *src8)
{
    const int64_t plane = L->hp * L->wp * SPN_NB, image = L->h * L->w * L->c, c16 = nb == SPN_NB ? L->c / 16 * 16 : 0;
    spn_u8x16 bits = {0};
    uint8_t bits1 = 0;
    for (int64_t y = 0; y < L->h; y++)
        for (int64_t xx = 0; xx < L->w; xx++) {
            const int64_t at = ((y + L->pad) * L->wp + xx + L->pad) * SPN_NB;
            const uint8_t *px = x + (y * L->w + xx) * L->c;
            int64_t c0 = 0;
#ifdef __x86_64__
            if (L->fill32 && src8 && nb == SPN_NB) {
                c0 = L->c / 32 * 32;
                bits1 |= spn_fill32_px(px, image, c0, src8 + at, plane);
            }
#endif
            for (; c0 < c16; c0 += 16) {
                spn_u8x16 r[16];
                for (int b = 0; b < 16; b++)
                    memcpy(&r[b], px + b * image + c0, 16);
                spn_transpose16(r);
                for (int ci = 0; src8 && ci < 16; ci++) {
                    bits |= r[ci];
                    memcpy(src8 + at + (c0 + ci) * plane, &r[ci], 16);
                }
                for (int ci = 0; !src8 && ci < 16; ci++) {
                    spn_i16x16 wide = __builtin_convertvector(r[ci], spn_i16x16);
                    memcpy(src + at + (c0 + ci) * plane, &wide, sizeof wide);
                }
            }
            for (int64_t b = 0; b < nb; b++)
                for (int64_t ci = c16; ci < L->c; ci++) {
                    bits1 |= px[b * image + ci];
                    if (src8)
                        src8[at + ci * plane + b] = px[b * image + ci];
                    else
                        src[at + ci * plane + b] = px[b * image + ci];
                }
        }
    for (int i = 0; i < 16; i++)
        bits1 |= bits[i];
    return bits1;
}

/* One band (pooled row r) of one block: every channel's sums, max, codes; then the NHWC transpose.
 * src8 non-NULL: the sums come from the quads on the uint8 source, else from the int16 one. */
static void spn_band(const spn_layer *L, const spn_path *P, const int16_t *src, const uint8_t *src8, int64_t r,
                     int64_t nb, int32_t *acc, int32_t *pooled, uint8_t *codes, uint8_t *out)
{
    const int64_t run = L->pw * L->pool * SPN_NB, n = L->pw * SPN_NB, stride = SPN_RUN_STRIDE(run);
    for (int64_t o = 0; o < L->oc; o++) {
        const int64_t j0 = L->indptr[o], nnz = L->indptr[o + 1] - j0, g0 = src8 ? L->gptr[o] : 0;
        const int64_t p0 = r * L->pool * L->wp * SPN_NB;
        if (src8)                                 /* the band's rows in one call */
            P->quad(L->off4 + 4 * g0, L->w4 + g0, L->gptr[o + 1] - g0, src8, p0, run, L->pool, L->wp * SPN_NB, stride,
                    acc);
        for (int64_t dy = 0; !src8 && dy < L->pool; dy++)
            P->run(L->off + j0, L->data + j0, nnz, src, p0 + dy * L->wp * SPN_NB, run, acc + dy * stride);
        const int32_t *sums = acc;
        if (L->pool == 2) {
            P->pool2(acc, acc + stride, L->pw, pooled);
            sums = pooled;
        }
        spn_requant_fn requant = L->fast[o] ? P->requant : spn_requant_c;
        requant(sums, n, L->bias[o], L->multiplier[o], L->shift[o], L->zero_point, L->qmin, L->qmax,
                codes + o * n);
    }
    const int64_t o16 = nb == SPN_NB ? L->oc / 16 * 16 : 0;      /* codes (OC, PW, NB) -> out[b, r, q, :] */
    for (int64_t q = 0; q < L->pw; q++) {
        uint8_t *dst = out + (r * L->pw + q) * L->oc;
        const int64_t image = L->ph * L->pw * L->oc;
        for (int64_t o0 = 0; o0 < o16; o0 += 16) {
            spn_u8x16 t[16];
            for (int o = 0; o < 16; o++)
                memcpy(&t[o], codes + (o0 + o) * n + q * SPN_NB, 16);
            spn_transpose16(t);
            for (int b = 0; b < 16; b++)
                memcpy(dst + b * image + o0, &t[b], 16);
        }
        for (int64_t b = 0; b < nb; b++)
            for (int64_t o = o16; o < L->oc; o++)
                dst[b * image + o] = codes[o * n + q * SPN_NB + b];
    }
}

/* One block's source: uint8 where the path has quads and the block's bytes let them run exactly (*s8 =
 * src8), else int16 (*s8 = NULL; widened from the uint8 copy where there is one, into an int16 buffer
 * made on first need). Returns 0, or 3 when that buffer cannot be allocated. */
static int spn_source(const spn_layer *L, const spn_path *P, const uint8_t *xb, int64_t nb, int64_t len,
                      int16_t **src16, uint8_t *src8, const uint8_t **s8)
{
    *s8 = NULL;
    if (!P->quad) {
        spn_fill(L, xb, nb, *src16, NULL);
        return 0;
    }
    const uint8_t bits = spn_fill(L, xb, nb, NULL, src8);
    if (P->any_byte || !((bits | L->zero_point_in) & 0x80)) {
        *s8 = src8;
        return 0;
    }
    if (!*src16 && !(*src16 = malloc((size_t)(len + SPN_SLACK) * sizeof **src16)))
        return 3;
    for (int64_t i = 0; i < len + SPN_SLACK; i++)  /* a byte above 127: the int16 pairs, on the same bytes */
        (*src16)[i] = src8[i];
    return 0;
}

static int spn_layer_run(const spn_layer *L, const spn_path *P, const uint8_t *x, int64_t n, uint8_t *out)
{
    const int64_t blocks = (n + SPN_NB - 1) / SPN_NB, src_len = L->c * L->hp * L->wp * SPN_NB;
    const int64_t stride = SPN_RUN_STRIDE(L->pw * L->pool * SPN_NB);
    int failed = 0;
    #pragma omp parallel if (blocks > 1 && n * L->ph * L->pw * L->indptr[L->oc] >= TINYEFF_PARALLEL_MIN_MACS)
    {
        /* the source the path reads first (uint8 for quads, else int16), SPN_SLACK zero positions past its end */
        uint8_t *src8 = P->quad ? malloc((size_t)(src_len + SPN_SLACK)) : NULL;
        int16_t *src16 = P->quad ? NULL : malloc((size_t)(src_len + SPN_SLACK) * sizeof *src16);
        int32_t *acc = malloc((size_t)(2 * stride + L->pw * SPN_NB) * sizeof *acc);
        uint8_t *codes = malloc((size_t)(L->oc * L->pw * SPN_NB));
        int ok = acc && codes && (src8 || src16);
        if (ok && src8) {
            memset(src8, L->zero_point_in, (size_t)src_len);
            memset(src8 + src_len, 0, SPN_SLACK);
        }
        if (ok && src16) {
            for (int64_t i = 0; i < src_len; i++)
                src16[i] = (int16_t)L->zero_point_in;
            memset(src16 + src_len, 0, SPN_SLACK * sizeof *src16);
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < blocks; blk++) {
            const int64_t n0 = blk * SPN_NB, nb = n - n0 < SPN_NB ? n - n0 : SPN_NB;
            const uint8_t *s8 = NULL;
            ok = ok && spn_source(L, P, x + n0 * L->h * L->w * L->c, nb, src_len, &src16, src8, &s8) == 0;
            for (int64_t r = 0; ok && r < L->ph; r++)
                spn_band(L, P, src16, s8, r, nb, acc, acc + 2 * stride, codes, out + n0 * L->ph * L->pw * L->oc);
        }
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        free(src8);
        free(src16);
        free(acc);
        free(codes);
    }
    return failed ? 3 : 0;
}

/* The per-channel constants: the folded bias, and whether the vector requantization is exact for
 * channel o: shift <= 0, and |sum w (x - z) + b| <= 255 * sum |w| + |b| stays inside int32, so the
 * int32 (wrapping) add of the raw sum and the folded bias gives the true value. */
static void spn_channels(const int64_t *indptr, const int8_t *data, int64_t oc, int32_t a_zero_point,
                         const int32_t *bias, const int32_t *shift, int64_t *folded, uint8_t *fast)
{
    for (int64_t o = 0; o < oc; o++) {
        int64_t rowsum = 0, abssum = 0;
        for (int64_t j = indptr[o]; j < indptr[o + 1]; j++) {
            rowsum += data[j];
            abssum += data[j] < 0 ? -data[j] : data[j];
        }
        const int64_t b = bias ? bias[o] : 0, f = b - (int64_t)a_zero_point * rowsum;
        folded[o] = f;
        fast[o] = shift[o] <= 0 && 255 * abssum + (b < 0 ? -b : b) <= INT32_MAX;
    }
}

/* The VNNI path's rows: each row's nonzeros in groups of 4 (offsets off4, weights packed as the 4 bytes
 * of w4), the last group padded with weight 0 at the row's first offset (a valid read). gptr: (oc + 1). */
static int spn_quads(const int64_t *indptr, const int64_t *off, const int8_t *data, int64_t oc,
                     int64_t **gptr, int64_t **off4, int32_t **w4)
{
    *gptr = malloc((size_t)(oc + 1) * sizeof **gptr);
    if (!*gptr) return 3;
    (*gptr)[0] = 0;
    for (int64_t o = 0; o < oc; o++)
        (*gptr)[o + 1] = (*gptr)[o] + (indptr[o + 1] - indptr[o] + 3) / 4;
    const int64_t groups = (*gptr)[oc];
    *off4 = malloc((size_t)(4 * groups + 1) * sizeof **off4);
    *w4 = malloc((size_t)(groups + 1) * sizeof **w4);
    if (!*off4 || !*w4) return 3;
    for (int64_t o = 0; o < oc; o++)
        for (int64_t g = (*gptr)[o]; g < (*gptr)[o + 1]; g++) {
            uint32_t packed = 0;
            for (int k = 0; k < 4; k++) {
                const int64_t j = indptr[o] + 4 * (g - (*gptr)[o]) + k;
                const int in_row = j < indptr[o + 1];
                (*off4)[4 * g + k] = off[in_row ? j : indptr[o]];
                packed |= (uint32_t)(uint8_t)(in_row ? data[j] : 0) << (8 * k);
            }
            (*w4)[g] = (int32_t)packed;
        }
    return 0;
}

int tinyeff_spconv_u8s8_requant_nhwc(const int64_t *indptr, const int64_t *indices, const int8_t *data, int64_t oc,
                                     const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                                     int64_t kw, int64_t padding, int64_t pool, int32_t a_zero_point,
                                     const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                                     int32_t zero_point_out, int32_t qmin, int32_t qmax, int64_t isa, uint8_t *out)
{
    const int64_t hp = h + 2 * padding, wp = w + 2 * padding;
    if (oc < 1 || n < 0 || c < 1 || kh < 1 || kw < 1 || padding < 0 || hp < kh || wp < kw ||
        (pool != 1 && pool != 2) || !TE_ISA_OK(isa))
        return 1;
    const int64_t ph = (hp - kh + 1) / pool, pw = (wp - kw + 1) / pool, nnz = indptr[oc];
    if (n == 0 || ph == 0 || pw == 0)
        return 0;
    int64_t *off = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *off);
    int64_t *folded = malloc((size_t)oc * sizeof *folded);
    uint8_t *fast = malloc((size_t)oc);
    int64_t *gptr = NULL, *off4 = NULL;
    int32_t *w4 = NULL;
    const spn_path P = spn_pick(isa);
    int status = 3;
    if (off && folded && fast) {
        for (int64_t j = 0; j < nnz; j++) {         /* weight column (c, i, j) -> shift in the block */
            const int64_t ci = indices[j] / (kh * kw), i = indices[j] / kw % kh, jj = indices[j] % kw;
            off[j] = ((ci * hp + i) * wp + jj) * SPN_NB;
        }
        spn_channels(indptr, data, oc, a_zero_point, bias, shift, folded, fast);
        status = P.quad ? spn_quads(indptr, off, data, oc, &gptr, &off4, &w4) : 0;
        if (status == 0) {
            const spn_layer L = {h, w, c, hp, wp, padding, pool, oc, ph, pw, indptr, off, data, gptr, off4, w4,
                                 folded, multiplier, shift, fast, a_zero_point, zero_point_out, qmin, qmax,
                                 TE_ISA_HAS_AVX2(isa)};
            status = spn_layer_run(&L, &P, x, n, out);
        }
    }
    free(gptr);
    free(off4);
    free(w4);
    free(off);
    free(folded);
    free(fast);
    return status;
}
