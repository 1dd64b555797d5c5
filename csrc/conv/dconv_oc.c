/* dconv_oc.c: dense direct convolution, float32 forward, with output channels in the vector lanes;
 * optionally fused with the ReLU and a following non-overlapping max-pool.
 *
 * dconv.c's forward tile puts output positions in the lanes: it reads the flat-shift layout
 * (tinyeff/kernels/layout/direct.py) as contiguous runs, so it also computes the columns
 * ow >= OW and rounds every image plane up to its tile width. On small planes that is a large part
 * of the work (a 13x13 output in a 15-wide layout: 193 flat positions, computed as 216 for 169
 * kept; a 4x4 output in a 6-wide layout: 24 or 32 computed for 16 kept). Here the lanes hold
 * output channels instead and each position of a tile is one broadcast float with its own
 * pointer, so a tile takes only the positions the layer keeps, in any order, across image
 * boundaries. The caller lists them (`pos`, flat offsets into one image of the layout) in groups
 * of `group` consecutive entries; each group is reduced by max into one output element:
 *     out[n, o, j] = relu?(max_{g < group} conv[n, o, pos[j * group + g]] + bias[o])
 * With group 1 this is the plain convolution (pos = every output position, row-major); with
 * pos listing each k x k window of a stride-k max-pool, it is conv + (ReLU) + max-pool, and the
 * rows and columns the pool drops (floor mode) are never computed. ReLU and max commute, and so
 * does adding a per-channel bias, so the reduction runs on the raw sums.
 * Sums run over the taps in weight order, one FMA per tap, like dconv.c's tile: the two give the
 * same floats for the same output.
 *   path       vector    register block                 registers
 *   portable   16 B      8 channels x 4 positions = 8 acc    16 (SSE2 xmm)
 *   avx2       32 B      16 channels x 6 positions = 12 acc  16 ymm
 *   avx512     64 B      32 channels x 12 positions = 24 acc 32 zmm
 *   neon       16 B      16 channels x 6 positions = 24 acc  32 q
 * The weight comes transposed, (ntaps, ocp): each tap's output channels side by side, zero
 * columns up to ocp, a multiple of the path's channel block (tinyeff_dconv_oc_block).
 * Each task walks its images' listed positions in stripes of a few dozen rows: sums of one stripe
 * (positions x ocp) go to a small per-thread buffer and are finished (max over each group, bias,
 * ReLU, transposed to channel planes) while still in L1.
 * Threads: OpenMP over chunks of images, handed out dynamically; threads never share an output
 * element.
 */
#include <stdint.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __x86_64__
#include <immintrin.h>
#endif
#ifdef __aarch64__
#include <arm_neon.h>
#endif

#include "tinyeff.h"

#define DO_P_MAX 12                      /* widest position block of any path */
#define DO_STRIPE_BYTES (16 * 1024)      /* sums computed, then finished, while in L1 */
#define DO_CHUNKS_PER_THREAD 8

typedef void (*do_tile_fn)(const float *const *px, const int64_t *off, int64_t ntaps,
                           const float *w, int64_t ldw, float *dst, int64_t ldd);
/* One ISA path's tile: cb output channels x p positions. */
typedef struct {
    do_tile_fn tile;
    int64_t cb, p;
} do_body;

#define DO_SFX portable
#define DO_TARGET
#define DO_VB 16
#define DO_CV 2
#define DO_P 4
#define DO_FMA(a, b, c) ((a) * (b) + (c))
#include "dconv_oc_body.h"

#ifdef __x86_64__
#define DO_SFX avx2
#define DO_TARGET __attribute__((target("avx2,fma")))
#define DO_VB 32
#define DO_CV 2
#define DO_P 6
#define DO_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#include "dconv_oc_body.h"

#define DO_SFX avx512
#define DO_TARGET __attribute__((target("avx512f")))
#define DO_VB 64
#define DO_CV 2
#define DO_P 12
#define DO_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#include "dconv_oc_body.h"
#endif

#ifdef __aarch64__
#define DO_SFX neon
#define DO_TARGET
#define DO_VB 16
#define DO_CV 4
#define DO_P 6
#define DO_FMA(a, b, c) ((do_vf_neon)vfmaq_f32((float32x4_t)(c), (float32x4_t)(a), (float32x4_t)(b)))
#include "dconv_oc_body.h"
#endif

/* The best body not above isa. */
static const do_body *do_pick(int64_t isa)
{
#ifdef __x86_64__
    if (TE_ISA_HAS_AVX512(isa))
        return &do_body_avx512;
    if (TE_ISA_HAS_AVX2(isa))
        return &do_body_avx2;
#endif
#ifdef __aarch64__
    if (TE_ISA_HAS_NEON(isa))
        return &do_body_neon;
#endif
    (void)isa;
    return &do_body_portable;
}

int tinyeff_dconv_oc_block(int64_t isa, int64_t *channels, int64_t *positions)
{
    if (!TE_ISA_OK(isa))
        return 2;
    const do_body *body = do_pick(isa);
    *channels = body->cb;
    *positions = body->p;
    return 0;
}

/* Images per task: about DO_CHUNKS_PER_THREAD tasks per thread, handed out dynamically (on a
 * machine shared with other work a thread is often preempted; with one static share per thread
 * the others wait for it). */
static int64_t do_chunk(int64_t nimg, int parallel)
{
    int64_t threads = 1;
#ifdef _OPENMP
    if (parallel)
        threads = omp_get_max_threads();
#endif
    (void)parallel;
    int64_t chunk = (nimg + threads * DO_CHUNKS_PER_THREAD - 1) / (threads * DO_CHUNKS_PER_THREAD);
    return chunk < 1 ? 1 : chunk;
}

static int64_t do_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Rows per stripe: a multiple of the tile's p positions and of group * 8 (whole groups, and whole
 * 8-output blocks for the epilogue), about DO_STRIPE_BYTES of sums, so they are still in L1 when
 * the epilogue reads them back. */
static int64_t do_stripe_rows(int64_t p, int64_t group, int64_t ocp)
{
    int64_t unit = p / do_gcd(p, group * 8) * group * 8;
    int64_t units = DO_STRIPE_BYTES / (unit * ocp * (int64_t)sizeof(float));
    return unit * (units < 1 ? 1 : units);
}

/* Sums at rows r0 .. r0+count-1 of the chunk starting at image b0 (row i: position i % npos of
 * image b0 + i / npos), all ocp channels, into sums (row r0 first). Rows past `total` (the
 * chunk's end) repeat its last position: the buffer has p spare rows. */
static void do_sums(const do_body *body, const float *src, int64_t img_stride, int64_t b0,
                    int64_t total, int64_t r0, int64_t count, const float *wt, int64_t ocp,
                    const int64_t *off, int64_t ntaps, const int64_t *pos, int64_t npos, float *sums)
{
    int64_t p = body->p, last_row = total - 1;
    const float *img = src + (b0 + r0 / npos) * img_stride;
    const float *last = src + (b0 + last_row / npos) * img_stride + pos[last_row % npos];
    int64_t q = r0 % npos;                /* position in `img` of the next row (no divisions) */
    for (int64_t i0 = 0; i0 < count; i0 += p) {
        const float *px[DO_P_MAX];
        for (int64_t j = 0; j < p; j++) {
            if (r0 + i0 + j >= total) {
                px[j] = last;
                continue;
            }
            px[j] = img + pos[q];
            if (++q == npos) {
                q = 0;
                img += img_stride;
            }
        }
        for (int64_t c0 = 0; c0 < ocp; c0 += body->cb)
            body->tile(px, off, ntaps, wt + c0, ocp, sums + i0 * ocp + c0, ocp);
    }
}

#ifdef __x86_64__
/* 8 vectors of 8 floats, v[r][c] -> v[c][r] (the usual unpack / shuffle / lane-permute ladder). */
__attribute__((target("avx2"))) static inline void do_transpose8(__m256 v[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* do_finish_run with 8 x 8 blocks: 8 outputs' channel vectors, each the max of its group's rows
 * (max_ps(x, m) is x > m ? x : m, the scalar rule), turned into 8 channels' runs of 8 outputs.
 * ocp is a multiple of 16 here, so a block never reads past a row. `group` is a constant after
 * inlining (do_finish_avx2 instantiates the common 1 and 4), so the max chain unrolls. */
__attribute__((target("avx2"))) static inline __attribute__((always_inline))
void do_finish_avx2_body(const float *rows, int64_t count, const int64_t group, int64_t ocp,
                         int64_t oc, const float *bias, int64_t relu, float *out, int64_t plane)
{
    for (int64_t c0 = 0; c0 < oc; c0 += 8) {
        __m256 b[8];
        for (int64_t cc = 0; cc < 8; cc++)
            b[cc] = _mm256_set1_ps(bias && c0 + cc < oc ? bias[c0 + cc] : 0.0f);
        for (int64_t j0 = 0; j0 < count; j0 += 8) {
            int64_t nj = count - j0 < 8 ? count - j0 : 8;
            __m256 v[8];
            for (int64_t jj = 0; jj < 8; jj++) {
                const float *r = rows + (j0 + (jj < nj ? jj : nj - 1)) * group * ocp + c0;
                __m256 m = _mm256_loadu_ps(r);
                for (int64_t g = 1; g < group; g++)
                    m = _mm256_max_ps(_mm256_loadu_ps(r + g * ocp), m);
                v[jj] = m;
            }
            do_transpose8(v);
            for (int64_t cc = 0; cc < 8 && c0 + cc < oc; cc++) {
                __m256 y = _mm256_add_ps(v[cc], b[cc]);
                if (relu)
                    y = _mm256_max_ps(y, _mm256_setzero_ps());    /* NaN -> 0, as the scalar rule */
                float *dst = out + (c0 + cc) * plane + j0;
                if (nj == 8) {
                    _mm256_storeu_ps(dst, y);
                } else {
                    float tmp[8];
                    _mm256_storeu_ps(tmp, y);
                    for (int64_t jj = 0; jj < nj; jj++)
                        dst[jj] = tmp[jj];
                }
            }
        }
    }
}

__attribute__((target("avx2"))) static void do_finish_avx2(const float *rows, int64_t count,
                                                         int64_t group, int64_t ocp, int64_t oc,
                                                         const float *bias, int64_t relu,
                                                         float *out, int64_t plane)
{
    if (group == 1)
        do_finish_avx2_body(rows, count, 1, ocp, oc, bias, relu, out, plane);
    else if (group == 4)
        do_finish_avx2_body(rows, count, 4, ocp, oc, bias, relu, out, plane);
    else
        do_finish_avx2_body(rows, count, group, ocp, oc, bias, relu, out, plane);
}
#endif

/* `count` consecutive outputs of one image from their groups of rows: the max of each group, plus
 * the bias, maybe ReLU, written to channel planes `plane` floats apart (out: channel 0's first). */
static void do_finish_run(const float *rows, int64_t count, int64_t group, int64_t ocp, int64_t oc,
                          const float *bias, int64_t relu, int64_t isa, float *out, int64_t plane)
{
#ifdef __x86_64__
    if (TE_ISA_HAS_AVX2(isa)) {
        do_finish_avx2(rows, count, group, ocp, oc, bias, relu, out, plane);
        return;
    }
#endif
    (void)isa;
    for (int64_t j = 0; j < count; j++) {
        const float *r = rows + j * group * ocp;
        for (int64_t c = 0; c < oc; c++) {
            float m = r[c];
            for (int64_t g = 1; g < group; g++)
                m = r[g * ocp + c] > m ? r[g * ocp + c] : m;
            float y = m + (bias ? bias[c] : 0.0f);
            out[c * plane + j] = relu && !(y > 0.0f) ? 0.0f : y;
        }
    }
}

/* The outputs of chunk rows r0 .. r0+count-1 (whole groups), split where an image ends. */
static void do_finish(const float *sums, int64_t b0, int64_t r0, int64_t count, int64_t npos,
                      int64_t group, int64_t ocp, int64_t oc, const float *bias, int64_t relu,
                      int64_t isa, float *out)
{
    int64_t nout = npos / group, o = r0 / group, end = (r0 + count) / group;
    while (o < end) {
        int64_t b = b0 + o / nout, j = o % nout, run = nout - j < end - o ? nout - j : end - o;
        do_finish_run(sums + (o * group - r0) * ocp, run, group, ocp, oc, bias, relu, isa,
                      out + b * oc * nout + j, nout);
        o += run;
    }
}

int tinyeff_dconv_oc_f32(const float *src, int64_t img_stride, int64_t nimg, const float *wt,
                         int64_t ocp, const int64_t *offsets, int64_t ntaps, int64_t oc,
                         const int64_t *pos, int64_t npos, int64_t group, const float *bias,
                         int64_t relu, int64_t isa, float *out)
{
    if (nimg < 0 || ntaps < 1 || oc < 1 || ocp < oc || npos < 1 || group < 1 || npos % group)
        return 1;
    if (!TE_ISA_OK(isa))
        return 2;
    const do_body *body = do_pick(isa);
    if (ocp % body->cb)
        return 1;
    int parallel = nimg * ocp * npos * ntaps >= TINYEFF_PARALLEL_MIN_MACS;
    int64_t chunk = do_chunk(nimg, parallel), stripe = do_stripe_rows(body->p, group, ocp);
    int64_t nchunks = (nimg + chunk - 1) / chunk, failed = 0;
    #pragma omp parallel if (parallel)
    {
        float *sums = malloc(sizeof(float) * (size_t)((stripe + body->p) * ocp));
        if (!sums) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t ci = 0; ci < nchunks; ci++) {
            if (!sums)
                continue;
            int64_t b0 = ci * chunk, total = ((b0 + chunk < nimg ? b0 + chunk : nimg) - b0) * npos;
            for (int64_t r0 = 0; r0 < total; r0 += stripe) {
                int64_t count = total - r0 < stripe ? total - r0 : stripe;
                do_sums(body, src, img_stride, b0, total, r0, count, wt, ocp, offsets, ntaps, pos,
                        npos, sums);
                do_finish(sums, b0, r0, count, npos, group, ocp, oc, bias, relu, isa, out);
            }
        }
        free(sums);
    }
    return failed ? 3 : 0;
}
