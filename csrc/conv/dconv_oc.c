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
 * Threads: OpenMP over chunks of images, handed out dynamically; each thread keeps its chunk's
 * sums in its own buffer (positions x ocp, at most DO_SCRATCH_BYTES per chunk where an image
 * fits) and writes the finished outputs, so threads never share an output element.
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
#define DO_SCRATCH_BYTES (256 * 1024)    /* a chunk's sums stay in L2 */
#define DO_CHUNKS_PER_THREAD 8
#define DO_FINISH_ROWS 16                /* rows per block of the final transpose */

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
#undef DO_SFX
#undef DO_TARGET
#undef DO_VB
#undef DO_CV
#undef DO_P
#undef DO_FMA

#ifdef __x86_64__
#define DO_SFX avx2
#define DO_TARGET __attribute__((target("avx2,fma")))
#define DO_VB 32
#define DO_CV 2
#define DO_P 6
#define DO_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#include "dconv_oc_body.h"
#undef DO_SFX
#undef DO_TARGET
#undef DO_VB
#undef DO_CV
#undef DO_P
#undef DO_FMA

#define DO_SFX avx512
#define DO_TARGET __attribute__((target("avx512f")))
#define DO_VB 64
#define DO_CV 2
#define DO_P 12
#define DO_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#include "dconv_oc_body.h"
#undef DO_SFX
#undef DO_TARGET
#undef DO_VB
#undef DO_CV
#undef DO_P
#undef DO_FMA
#endif

#ifdef __aarch64__
#define DO_SFX neon
#define DO_TARGET
#define DO_VB 16
#define DO_CV 4
#define DO_P 6
#define DO_FMA(a, b, c) ((do_vf_neon)vfmaq_f32((float32x4_t)(c), (float32x4_t)(a), (float32x4_t)(b)))
#include "dconv_oc_body.h"
#undef DO_SFX
#undef DO_TARGET
#undef DO_VB
#undef DO_CV
#undef DO_P
#undef DO_FMA
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

/* Images per chunk: about DO_CHUNKS_PER_THREAD chunks per thread, handed out dynamically (on a
 * machine shared with other work a thread is often preempted; with one static chunk per thread
 * the others wait for it), capped so a chunk's sums fit the scratch budget (at least one image). */
static int64_t do_chunk(int64_t nimg, int64_t npos, int64_t ocp, int parallel)
{
    int64_t threads = 1;
#ifdef _OPENMP
    if (parallel)
        threads = omp_get_max_threads();
#endif
    (void)parallel;
    int64_t chunk = (nimg + threads * DO_CHUNKS_PER_THREAD - 1) / (threads * DO_CHUNKS_PER_THREAD);
    int64_t fit = DO_SCRATCH_BYTES / (npos * ocp * (int64_t)sizeof(float));
    chunk = chunk > fit ? fit : chunk;
    return chunk < 1 ? 1 : chunk;
}

/* Sums of images b0 .. b1-1 at every listed position, all ocp channels: row i of `sums` is
 * position i % npos of image b0 + i / npos. The last block repeats the last position in the rows
 * past the end (the buffer has p spare rows). */
static void do_sums(const do_body *body, const float *src, int64_t img_stride, int64_t b0,
                    int64_t b1, const float *wt, int64_t ocp, const int64_t *off, int64_t ntaps,
                    const int64_t *pos, int64_t npos, float *sums)
{
    int64_t total = (b1 - b0) * npos, p = body->p;
    const float *img = src + b0 * img_stride, *last = src + (b1 - 1) * img_stride + pos[npos - 1];
    int64_t q = 0;                        /* position in `img` of the next row (no divisions) */
    for (int64_t i0 = 0; i0 < total; i0 += p) {
        const float *px[DO_P_MAX];
        for (int64_t j = 0; j < p; j++) {
            if (i0 + j >= total) {
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

/* do_finish on one image with 8 x 8 blocks: 8 outputs' channel vectors, each the max of its
 * group's rows (max_ps(x, m) is x > m ? x : m, the scalar rule), turned into 8 channels' runs of
 * 8 outputs. ocp is a multiple of 16 here, so a block never reads past a row. */
__attribute__((target("avx2"))) static void do_finish_avx2(const float *rows, int64_t nout,
                                                         int64_t group, int64_t ocp, int64_t oc,
                                                         const float *bias, int64_t relu, float *out)
{
    for (int64_t j0 = 0; j0 < nout; j0 += 8) {
        int64_t nj = nout - j0 < 8 ? nout - j0 : 8;
        for (int64_t c0 = 0; c0 < oc; c0 += 8) {
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
                __m256 y = _mm256_add_ps(v[cc], _mm256_set1_ps(bias ? bias[c0 + cc] : 0.0f));
                if (relu)
                    y = _mm256_max_ps(y, _mm256_setzero_ps());    /* NaN -> 0, as the scalar rule */
                float *dst = out + (c0 + cc) * nout + j0;
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
#endif

/* Reduce each group of rows by max (in place: row j is written after rows j*group.. are read),
 * then add the bias, maybe ReLU, and write image b's channel planes (oc, npos / group). */
static void do_finish(float *sums, int64_t b0, int64_t b1, int64_t npos, int64_t group,
                      int64_t ocp, int64_t oc, const float *bias, int64_t relu, int64_t isa,
                      float *out)
{
    int64_t nout = npos / group;
    for (int64_t b = b0; b < b1; b++) {
        float *rows = sums + (b - b0) * npos * ocp;
#ifdef __x86_64__
        if (TE_ISA_HAS_AVX2(isa)) {
            do_finish_avx2(rows, nout, group, ocp, oc, bias, relu, out + b * oc * nout);
            continue;
        }
#endif
        (void)isa;
        for (int64_t j = 0; group > 1 && j < nout; j++) {
            const float *r = rows + j * group * ocp;
            float *dst = rows + j * ocp;
            for (int64_t c = 0; c < oc; c++) {
                float m = r[c];
                for (int64_t g = 1; g < group; g++)
                    m = r[g * ocp + c] > m ? r[g * ocp + c] : m;
                dst[c] = m;
            }
        }
        /* The transpose to channel planes in blocks of DO_FINISH_ROWS rows, which stay in L1
         * while every channel reads its column of them. */
        for (int64_t j0 = 0; j0 < nout; j0 += DO_FINISH_ROWS) {
            int64_t j1 = j0 + DO_FINISH_ROWS < nout ? j0 + DO_FINISH_ROWS : nout;
            for (int64_t c = 0; c < oc; c++) {
                float bc = bias ? bias[c] : 0.0f, *plane = out + (b * oc + c) * nout;
                for (int64_t j = j0; j < j1; j++) {
                    float y = rows[j * ocp + c] + bc;
                    plane[j] = relu && !(y > 0.0f) ? 0.0f : y;
                }
            }
        }
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
    int64_t chunk = do_chunk(nimg, npos, ocp, parallel);
    int64_t nchunks = (nimg + chunk - 1) / chunk, failed = 0;
    #pragma omp parallel if (parallel)
    {
        float *sums = malloc(sizeof(float) * (size_t)((chunk * npos + body->p) * ocp));
        if (!sums) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t ci = 0; ci < nchunks; ci++) {
            if (!sums)
                continue;
            int64_t b0 = ci * chunk, b1 = b0 + chunk < nimg ? b0 + chunk : nimg;
            do_sums(body, src, img_stride, b0, b1, wt, ocp, offsets, ntaps, pos, npos, sums);
            do_finish(sums, b0, b1, npos, group, ocp, oc, bias, relu, isa, out);
        }
        free(sums);
    }
    return failed ? 3 : 0;
}
