/* dconv.c: dense direct convolution, float32: the forward pass (which is also the input gradient
 * of a stride-1 convolution, with the flipped and transposed weight) and the weight gradient.
 *
 * The one idea, shared with spconv.c: in the flat-shift layout of tinyeff/kernels/layout/direct.py
 * (direct_conv_layout) every tap t of the kernel reads one contiguous run of the input,
 *     out[o, p] = sum_t w[o, t] * src[off[t] + p],   p = oh * WS + ow in [0, length).
 * No im2col matrix is ever written. What makes the dense case fast is register blocking:
 *   forward  a block of DC_R = 4 output channels x DC_FV vectors of positions lives in registers;
 *            per tap we load DC_FV input vectors once and broadcast DC_R weights. Flat tiles
 *            take DC_FV consecutive vectors of p and write the tile once, with bias, optional
 *            ReLU, and the throw-away columns ow >= OW dropped; row tiles take DC_FV vectors that
 *            each lie inside one output row (numbered across the batch) and store them straight
 *            to the output, so small planes (8x8, 16x16) compute no throw-away columns. Whichever
 *            computes fewer positions runs (dc_pick).
 *   weights  gw[o, t] = sum_n sum_p g[n, o, p] * src[n, off[t] + p], with g laid on the same
 *            padded grid (zeros at ow >= OW and from `length` to a whole number of vectors), or,
 *            when every output row is whole vectors (or half a vector, two rows then sharing
 *            one: an 8x8 plane on AVX-512), g as it is, walked row by row. A
 *            block of DC_WR channels x DC_WT taps keeps its vector accumulators over p and over
 *            a chunk of images small enough to stay in L2, and is reduced horizontally once per
 *            chunk.
 * The micro-kernels are written once, in dconv_body.h, and instantiated below per ISA path with
 * its vector width and register block:
 *   path       vector    forward block           weight-gradient block   registers
 *   portable   16 B      4 ch x 3 vec = 12 acc   3 ch x 4 taps = 12 acc  16 (SSE2 xmm)
 *   avx2       32 B      4 ch x 3 vec = 12 acc   3 ch x 4 taps = 12 acc  16 ymm
 *              (or 4 ch x 2 vec when that wastes much less of a small plane)
 *   avx512     64 B      4 ch x 6 vec = 24 acc   4 ch x 6 taps = 24 acc  32 zmm
 *              (or 4 ch x 4, 3 or 2 vec when that wastes less of a small plane)
 *   neon       16 B      4 ch x 5 vec = 20 acc   4 ch x 6 taps = 24 acc  32 q
 * Threads: OpenMP over (image, channel block) for the forward pass (row tiles: about one image's
 * tiles for a group of channel blocks per task); for the weight gradient over image chunks
 * (dynamic, several per thread), each thread summing into its own buffer, added up under a
 * critical section.
 * The caller packs the forward weight as (ceil(OC/DC_R), taps, DC_R) with zero rows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif
#ifdef __aarch64__
#include <arm_neon.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tinyeff.h"

#define DC_R 4                     /* forward: output channels per register block (every ISA) */
#define DC_TILE_MAX 96             /* forward: widest tile in positions (AVX-512, 6 x 16) */
#define DC_L2_BYTES (512 * 1024)   /* weight gradient: input bytes of one image chunk */

typedef void (*dc_tile_fn)(const float *s, const int64_t *off, int64_t ntaps, const float *wb,
                           int64_t cnt, float *tile);
typedef void (*dc_rtile_fn)(const float *s, const int64_t *off, int64_t ntaps, const float *wb,
                            const int64_t *vpos, const int64_t *vdst, float *out, int64_t plane,
                            int64_t nr, const float *bias, int64_t relu);
typedef void (*dc_wblock_fn)(const float *src, int64_t img_stride, int64_t src_len, const float *g,
                             int64_t g_img, int64_t glen, int64_t b0, int64_t b1, int64_t nr,
                             const int64_t *off, int64_t nt, int64_t length, int64_t rows,
                             int64_t xrow, int64_t grow, float *part, int64_t ldp);
/* One ISA path's micro-kernels: full and partial forward tiles (width = fv vectors of vl
 * positions), the row-mode tile (fv vectors anywhere), and the weight gradient block (wr
 * channels x wt taps). */
typedef struct {
    dc_tile_fn tile, tile_part;
    dc_rtile_fn rtile;
    int64_t width, fv, vl;
    dc_wblock_fn wblock;
    int64_t wr, wt;
} dc_body;

typedef float dc_v4 __attribute__((vector_size(16)));

static int64_t dc_max_offset(const int64_t *off, int64_t n)
{
    int64_t m = 0;
    for (int64_t k = 0; k < n; k++)
        m = off[k] > m ? off[k] : m;
    return m;
}

/* portable: plain C at a 16-byte width (SSE2 on x86-64, Advanced SIMD on ARM64, scalar code
 * elsewhere); no FMA instruction is assumed. */
#define DC_SFX portable
#define DC_TARGET
#define DC_VB 16
#define DC_FV 3
#define DC_WR 3
#define DC_WT 4
#define DC_FMA(a, b, c) ((a) * (b) + (c))
#include "dconv_body.h"
#undef DC_TARGET
#undef DC_VB
#undef DC_WR
#undef DC_WT
#undef DC_FMA

#ifdef __x86_64__
/* Masked loads for the tails: they never touch memory past the n-th float. */
__attribute__((target("avx2"))) static inline __m256 dc_part_avx2(const float *p, int64_t n)
{
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int32_t k = n < 0 ? 0 : n > 8 ? 8 : (int32_t)n;
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(k), lane));
}

__attribute__((target("avx512f"))) static inline __m512 dc_part_avx512(const float *p, int64_t n)
{
    __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : n > 0 ? (__mmask16)((1u << n) - 1u) : (__mmask16)0;
    return _mm512_maskz_loadu_ps(m, p);
}

/* Two half vectors, from a and from b, in one (two output rows of an 8x8 plane in a zmm). */
__attribute__((target("avx2"))) static inline __m256 dc_halves_avx2(const float *a, const float *b)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(a)), _mm_loadu_ps(b), 1);
}

__attribute__((target("avx512f"))) static inline __m512 dc_halves_avx512(const float *a, const float *b)
{
    __m512d lo = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(a)));
    return _mm512_castpd_ps(_mm512_insertf64x4(lo, _mm256_castps_pd(_mm256_loadu_ps(b)), 1));
}

#define DC_TARGET __attribute__((target("avx2,fma")))
#define DC_VB 32
#define DC_WR 3
#define DC_WT 4
#define DC_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define DC_LOAD_PART(p, n) dc_part_avx2(p, n)
#define DC_LOAD_HALVES(a, b) dc_halves_avx2(a, b)
#define DC_SFX avx2
#define DC_FV 3
#include "dconv_body.h"
#define DC_SFX avx2_2
#define DC_FV 2
#include "dconv_body.h"
#undef DC_TARGET
#undef DC_VB
#undef DC_WR
#undef DC_WT
#undef DC_FMA
#undef DC_LOAD_PART
#undef DC_LOAD_HALVES

#define DC_TARGET __attribute__((target("avx512f")))
#define DC_VB 64
#define DC_WR 4
#define DC_WT 6
#define DC_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define DC_LOAD_PART(p, n) dc_part_avx512(p, n)
#define DC_LOAD_HALVES(a, b) dc_halves_avx512(a, b)
#define DC_SFX avx512
#define DC_FV 6
#include "dconv_body.h"
#define DC_SFX avx512_4
#define DC_FV 4
#include "dconv_body.h"
#define DC_SFX avx512_3
#define DC_FV 3
#include "dconv_body.h"
#define DC_SFX avx512_2
#define DC_FV 2
#include "dconv_body.h"
#undef DC_TARGET
#undef DC_VB
#undef DC_WR
#undef DC_WT
#undef DC_FMA
#undef DC_LOAD_PART
#undef DC_LOAD_HALVES
#endif

#ifdef __aarch64__
#define DC_SFX neon
#define DC_TARGET
#define DC_VB 16
#define DC_FV 5
#define DC_WR 4
#define DC_WT 6
#define DC_FMA(a, b, c) ((dc_vf_neon)vfmaq_f32((float32x4_t)(c), (float32x4_t)(a), (float32x4_t)(b)))
#include "dconv_body.h"
#undef DC_TARGET
#undef DC_VB
#undef DC_WR
#undef DC_WT
#undef DC_FMA
#endif

#include "dconv_plan.h"

int64_t tinyeff_dconv_vector_floats(int64_t isa)
{
    return dc_pick(isa, 1, 1, 1, 1, 1).body->vl;
}

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

/* Forward in flat tiles: each tile covers `width` consecutive flat positions, and dc_store drops
 * the columns ow >= OW. */
static void dc_forward_flat(const dc_body *body, const float *src, int64_t img_stride, int64_t nimg,
                            const float *wpack, const int64_t *offsets, int64_t ntaps, int64_t oc,
                            int64_t length, int64_t ws, int64_t oh, int64_t ow, const float *bias,
                            int64_t relu, float *out)
{
    int64_t nblk = (oc + DC_R - 1) / DC_R, width = body->width;
    #pragma omp parallel for schedule(dynamic, 1) if (nimg * oc * length * ntaps >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t task = 0; task < nimg * nblk; task++) {
        int64_t b = task / nblk, blk = task % nblk;
        const float *s = src + b * img_stride, *wb = wpack + blk * ntaps * DC_R;
        float tile[DC_R * DC_TILE_MAX] __attribute__((aligned(64)));
        /* Full tiles; the last one ends at length, overlapping its neighbour (the positions both
         * compute get the same sums, so storing them twice is harmless). Only a plane shorter
         * than one tile needs the partial loads. */
        for (int64_t p0 = 0; p0 < length; p0 += width) {
            int64_t q = p0, cnt = width;
            if (length < width)
                body->tile_part(s, offsets, ntaps, wb, cnt = length, tile);
            else
                body->tile(s + (q = p0 + width <= length ? p0 : length - width), offsets, ntaps, wb,
                           cnt, tile);
            for (int r = 0; r < DC_R && blk * DC_R + r < oc; r++) {
                int64_t o = blk * DC_R + r;
                dc_store(tile + r * DC_TILE_MAX, q, cnt, ws, ow, bias ? bias[o] : 0.0f, relu,
                         out + (b * oc + o) * oh * ow);
            }
        }
    }
}

/* Forward in row mode: the vectors of every output row (the last one of a row shifted left to end
 * at OW), numbered across the whole batch and taken fv to a tile, so a tile may span two images:
 * on an 8x8 plane (8 vectors of 8 floats) 3-vector tiles per image would compute 9. The last tile
 * repeats the batch's last vector (same sums, stored twice). A task walks its vectors with
 * counters (image b, row i, vector k of the row) rather than dividing per vector: with a few
 * dozen taps three divisions per vector cost as much as the tile's FMAs.
 * Loop order: a task is about one image's tiles for a group of channel blocks, each tile run for
 * every block of the group before the next tile, so the input lines a tile reads are still in L1
 * for the group's next block. That matters where each line feeds few taps: a stride-2 input
 * gradient's phases read every channel plane once or twice per position (the 1 x 1 phase of a
 * 3 x 3 kernel, once), and block by block each block streamed them from L2 again. The group's
 * packed weights (taps x 4 floats per block) are kept within DC_WGROUP_BYTES so they share L1
 * with the tile's input; with 576 taps (64 channels, 3x3) that is one block, the order before. */
#define DC_WGROUP_BYTES (12 * 1024)

static void dc_forward_rows(const dc_body *body, const float *src, int64_t img_stride, int64_t nimg,
                            const float *wpack, const int64_t *offsets, int64_t ntaps, int64_t oc,
                            int64_t length, int64_t ws, int64_t oh, int64_t ow, const float *bias,
                            int64_t relu, float *out)
{
    int64_t vl = body->vl, fv = body->fv, per_row = (ow + vl - 1) / vl, plane = oh * ow;
    int64_t nvec = nimg * oh * per_row, ntile = (nvec + fv - 1) / fv, nblk = (oc + DC_R - 1) / DC_R;
    int64_t group = DC_WGROUP_BYTES / (ntaps * DC_R * (int64_t)sizeof(float));
    group = group < 1 ? 1 : group > nblk ? nblk : group;
    int64_t ngroup = (nblk + group - 1) / group;
    int64_t chunk = oh * per_row / fv > 1 ? oh * per_row / fv : 1, nchunk = (ntile + chunk - 1) / chunk;
    #pragma omp parallel for schedule(static) if (nimg * oc * length * ntaps >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t task = 0; task < nchunk * ngroup; task++) {
        int64_t blk0 = task % ngroup * group, t0 = task / ngroup * chunk;
        int64_t blk1 = blk0 + group < nblk ? blk0 + group : nblk;
        int64_t t1 = t0 + chunk < ntile ? t0 + chunk : ntile;
        int64_t j = t0 * fv, b = j / (oh * per_row), i = j / per_row % oh, k = j % per_row;
        for (int64_t t = t0; t < t1; t++) {
            int64_t vpos[8], vdst[8];              /* fv <= 6 on every path */
            for (int64_t v = 0; v < fv; v++, j++) {
                if (j >= nvec) {                   /* only in the batch's last tile, never at v = 0 */
                    vpos[v] = vpos[v - 1];
                    vdst[v] = vdst[v - 1];
                    continue;
                }
                int64_t col = k * vl + vl <= ow ? k * vl : ow - vl;
                vpos[v] = b * img_stride + i * ws + col;
                vdst[v] = b * oc * plane + i * ow + col;
                if (++k == per_row) {
                    k = 0;
                    if (++i == oh) {
                        i = 0;
                        b++;
                    }
                }
            }
            for (int64_t blk = blk0; blk < blk1; blk++) {
                int64_t nr = oc - blk * DC_R;
                body->rtile(src, offsets, ntaps, wpack + blk * ntaps * DC_R, vpos, vdst,
                            out + blk * DC_R * plane, plane, nr < DC_R ? nr : DC_R,
                            bias ? bias + blk * DC_R : NULL, relu);
            }
        }
    }
}

int tinyeff_dconv_f32(const float *src, int64_t img_stride, int64_t nimg, const float *wpack,
                      const int64_t *offsets, int64_t ntaps, int64_t oc, int64_t length, int64_t ws,
                      int64_t oh, int64_t ow, const float *bias, int64_t relu, int64_t mode,
                      int64_t isa, float *out)
{
    if (nimg < 0 || ntaps < 1 || oc < 1 || length < 1 || ws < 1 || oh < 1 || ow < 1 || ow > ws
        || length != (oh - 1) * ws + ow || mode < 0 || mode > 2)
        return 1;
    if (!TE_ISA_OK(isa))
        return 2;
    dc_plan plan = dc_pick(isa, nimg, length, oh, ow, mode);
    if (plan.rows)
        dc_forward_rows(plan.body, src, img_stride, nimg, wpack, offsets, ntaps, oc, length, ws, oh,
                        ow, bias, relu, out);
    else
        dc_forward_flat(plan.body, src, img_stride, nimg, wpack, offsets, ntaps, oc, length, ws, oh, ow,
                    bias, relu, out);
    return 0;
}

/* How many image chunks the weight gradient splits the batch into. Each (channel, tap) register
 * block of a chunk reduces its vector sums horizontally once, so a chunk is as large as lets its
 * input stay in L2 while every block reads it (the output gradient rows of one channel block are
 * read by one sweep over the taps only, so they need no room there), but there are at least
 * DC_WCHUNKS_PER_THREAD per thread, handed out dynamically: on a machine shared with other work a
 * thread is often preempted, and with a few large chunks the others wait for it. */
#define DC_WCHUNKS_PER_THREAD 8

static int64_t dc_wgrad_chunks(int64_t nimg, int64_t img_bytes, int parallel)
{
    int64_t chunk = DC_L2_BYTES / (img_bytes > 0 ? img_bytes : 1), threads = 1;
    chunk = chunk < 1 ? 1 : chunk > nimg ? nimg : chunk;
    int64_t nchunks = (nimg + chunk - 1) / chunk;
#ifdef _OPENMP
    if (parallel)
        threads = omp_get_max_threads();
#endif
    (void)parallel;
    if (threads > 1 && nchunks < DC_WCHUNKS_PER_THREAD * threads)
        nchunks = DC_WCHUNKS_PER_THREAD * threads;
    return nchunks < nimg ? nchunks : nimg;
}

int tinyeff_dconv_wgrad_f32(const float *src, int64_t img_stride, int64_t nimg, const float *g,
                            int64_t glen, const int64_t *offsets, int64_t ntaps, int64_t oc,
                            int64_t length, int64_t rows, int64_t ws, int64_t ow, int64_t isa,
                            float *gw)
{
    if (nimg < 1 || ntaps < 1 || oc < 1 || length < 1 || rows < 0)
        return 1;
    if (!TE_ISA_OK(isa))
        return 2;
    const dc_body *body = dc_pick(isa, 1, length, 1, 1, 1).body;
    int row_ok = ow >= 1 && (ow % body->vl == 0 || (2 * ow == body->vl && rows % 2 == 0));
    if (rows ? !row_ok || glen != rows * ow || length != (rows - 1) * ws + ow
             : glen < (length + 15) / 16 * 16)
        return 1;
    int64_t nchunks = dc_wgrad_chunks(nimg, img_stride * (int64_t)sizeof(float),
                                      nimg * oc * length * ntaps >= TINYEFF_PARALLEL_MIN_MACS);
    int64_t chunk = (nimg + nchunks - 1) / nchunks, failed = 0;
    nchunks = (nimg + chunk - 1) / chunk;
    memset(gw, 0, sizeof(float) * oc * ntaps);
    #pragma omp parallel if (nimg * oc * length * ntaps >= TINYEFF_PARALLEL_MIN_MACS)
    {
        float *part = calloc((size_t)(oc * ntaps), sizeof(float));
        if (!part) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t ci = 0; ci < nchunks; ci++) {
            if (!part)
                continue;
            int64_t b0 = ci * chunk, b1 = b0 + chunk < nimg ? b0 + chunk : nimg;
            for (int64_t o0 = 0; o0 < oc; o0 += body->wr) {
                int64_t nr = oc - o0 < body->wr ? oc - o0 : body->wr;
                for (int64_t t0 = 0; t0 < ntaps; t0 += body->wt) {
                    int64_t nt = ntaps - t0 < body->wt ? ntaps - t0 : body->wt;
                    body->wblock(src, img_stride, nimg * img_stride, g + o0 * glen, oc * glen,
                                 glen, b0, b1, nr, offsets + t0, nt, rows ? ow : length, rows,
                                 ws, ow, part + o0 * ntaps + t0, ntaps);
                }
            }
        }
        if (part) {
            #pragma omp critical
            for (int64_t i = 0; i < oc * ntaps; i++)
                gw[i] += part[i];
            free(part);
        }
    }
    return failed ? 3 : 0;
}

/* Positions tinyeff_dconv_f32 computes per channel block on nimg planes (callers weigh them against
 * dconv_oc.c's channels-in-lanes tile). */
int tinyeff_dconv_positions(int64_t isa, int64_t nimg, int64_t length, int64_t oh, int64_t ow,
                            int64_t *positions)
{
    if (!TE_ISA_OK(isa))
        return 2;
    if (nimg < 1 || length < 1 || oh < 1 || ow < 1)
        return 1;
    dc_plan plan = dc_pick(isa, nimg, length, oh, ow, 0);
    *positions = plan.rows ? dc_rows_cost(plan.body, nimg, oh, ow)
                           : nimg * dc_flat_cost(plan.body, length);
    return 0;
}
