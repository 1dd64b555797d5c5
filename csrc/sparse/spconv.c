/* spconv.c: direct sparse convolution / sparse linear over CSR rows, float32 and u8 x s8 -> int32.
 *
 * The one idea: with the flat-shift layout of tinyeff/kernels/layout/direct.py (direct_conv_layout),
 * every nonzero tap of an output channel reads one *contiguous* run of the input, so an output
 * plane is  acc[p] = sum_j data[j] * src[offsets[j] + p]  for p in [0, length). We cut p into
 * tiles of a few vectors, keep the tile in registers while streaming the row's nonzeros through
 * it (two accumulator sets, even and odd nonzeros, to hide the FMA latency),
 * then write the tile out once, adding the bias, applying ReLU and dropping the padding columns
 * (ow >= ow_valid) on the way, whole row segments at a time when output rows are contiguous.
 * Work is proportional to nnz; the weight is never densified.
 *
 * A following max-pool (k x k, stride k, no padding: the classic CNN's 2x2) can be fused: the
 * row's whole output plane is then accumulated into a per-thread scratch plane that stays in L1/L2,
 * and only the pooled plane is written out (4x less output traffic for 2x2). Because bias and
 * ReLU are monotonic, max(relu(x + b)) = relu(max(x) + b), so they are applied after the max.
 *
 * The same loop does a sparse linear layer: src = x transposed (IN, N), offsets = in_index * N,
 * length = N, so p runs over the batch.
 *
 * Threads: OpenMP over independent (image, row) pairs. isa (TE_ISA_ codes): the vector bodies of
 * spconv_vec.h (one loop, compiled for AVX-512, AVX2 + FMA and NEON) or portable C; the Python
 * wrapper picks the path from tinyeff.kernels.cpu. The int8 twin multiplies two nonzeros per
 * instruction (vpmaddwd on int16 pairs; see spconv_vec.h); its products never overflow
 * (|s8 * u8| <= 32640). Left out: blocked/bitmap formats, and VNNI here: the requantizing NHWC
 * conv (spconv_nhwc.c, sptile8_vnni.h) has it, four nonzeros per vpdpbusd on its uint8 source.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tinyeff.h"

#define SP_TILE 128               /* positions per portable tile; the scratch plane's slack */

/* Write one finished tile (positions p0 .. p0+cnt-1) to the output: bias, ReLU, crop, strides. */
static void sp_store_f32(const float *tile, int64_t p0, int64_t cnt, int64_t ws, int64_t ow_valid,
                         float b, int64_t relu, float *out, int64_t os_h, int64_t os_w)
{
    if (os_w == 1) {                 /* conv output rows are contiguous: copy whole row segments */
        for (int64_t p = p0, end = p0 + cnt; p < end;) {
            int64_t row = p / ws, col = p % ws;
            int64_t stop = row * ws + ow_valid < end ? row * ws + ow_valid : end;
            const float *t = tile + (p - p0);
            float *dst = out + row * os_h + col;
            if (relu)
                for (int64_t q = 0; q < stop - p; q++) { float y = t[q] + b; dst[q] = y > 0.0f ? y : 0.0f; }
            else
                for (int64_t q = 0; q < stop - p; q++) dst[q] = t[q] + b;
            p = (row + 1) * ws;
        }
        return;
    }
    int64_t oh = p0 / ws, ow = p0 % ws;
    for (int64_t q = 0; q < cnt; q++) {
        if (ow < ow_valid) {
            float y = tile[q] + b;
            out[oh * os_h + ow * os_w] = (relu && y < 0.0f) ? 0.0f : y;
        }
        if (++ow == ws) { ow = 0; oh++; }
    }
}

/* Output rows of a flat plane of `length` positions, rows `ws` apart, the last one ow_valid long. */
static inline int64_t sp_rows(int64_t length, int64_t ws, int64_t ow_valid)
{
    return (length - ow_valid) / ws + 1;
}

/* Max-pool a finished scratch plane (k x k windows, stride k, floor) into the output rows, then
 * bias and ReLU. plane[p] holds conv output (p / ws, p % ws); oh x ow_valid of it are valid. */
static void sp_pool_store_f32(const float *plane, int64_t ws, int64_t oh, int64_t ow_valid,
                              int64_t k, float b, int64_t relu, float *out, int64_t os_h)
{
    int64_t ph = oh / k, pw = ow_valid / k;
    for (int64_t i = 0; i < ph; i++) {
        float *dst = out + i * os_h;
        for (int64_t j = 0; j < pw; j++) {
            const float *win = plane + (i * k) * ws + j * k;
            float m = win[0];
            for (int64_t a = 0; a < k; a++)
                for (int64_t c = 0; c < k; c++)
                    m = win[a * ws + c] > m ? win[a * ws + c] : m;
            m += b;
            dst[j] = (relu && m < 0.0f) ? 0.0f : m;
        }
    }
}

static void sp_store_s32(const int32_t *tile, int64_t p0, int64_t cnt, int64_t ws,
                         int64_t ow_valid, int32_t b, int32_t *out, int64_t os_h, int64_t os_w)
{
    if (os_w == 1) {                 /* as in sp_store_f32 */
        for (int64_t p = p0, end = p0 + cnt; p < end;) {
            int64_t row = p / ws, col = p % ws;
            int64_t stop = row * ws + ow_valid < end ? row * ws + ow_valid : end;
            const int32_t *t = tile + (p - p0);
            int32_t *dst = out + row * os_h + col;
            for (int64_t q = 0; q < stop - p; q++) dst[q] = t[q] + b;
            p = (row + 1) * ws;
        }
        return;
    }
    int64_t oh = p0 / ws, ow = p0 % ws;
    for (int64_t q = 0; q < cnt; q++) {
        if (ow < ow_valid)
            out[oh * os_h + ow * os_w] = tile[q] + b;
        if (++ow == ws) { ow = 0; oh++; }
    }
}

/* ---- portable C: a tile in a local array; the compiler vectorizes the q loop ----------------- */

static void sp_row_f32_c(const int64_t *off, const float *val, int64_t nnz, const float *src,
                         int64_t length, int64_t ws, int64_t ow_valid, float b, int64_t relu,
                         int64_t pool, float *plane, float *out, int64_t os_h, int64_t os_w)
{
    float buf[SP_TILE];
    for (int64_t p0 = 0; p0 < length; p0 += SP_TILE) {
        int64_t cnt = length - p0 < SP_TILE ? length - p0 : SP_TILE;
        float *tile = pool > 1 ? plane + p0 : buf;      /* pooling: keep the whole plane */
        memset(tile, 0, sizeof buf);
        for (int64_t j = 0; j < nnz; j++) {
            const float *s = src + off[j] + p0;
            float v = val[j];
            for (int64_t q = 0; q < cnt; q++)
                tile[q] += v * s[q];
        }
        if (pool == 1)
            sp_store_f32(tile, p0, cnt, ws, ow_valid, b, relu, out, os_h, os_w);
    }
    if (pool > 1)
        sp_pool_store_f32(plane, ws, sp_rows(length, ws, ow_valid), ow_valid, pool, b, relu, out, os_h);
}

static void sp_row_s32_c(const int64_t *off, const int8_t *val, int64_t nnz, const uint8_t *src,
                         int64_t length, int64_t ws, int64_t ow_valid, int32_t b, int32_t *out,
                         int64_t os_h, int64_t os_w)
{
    int32_t tile[SP_TILE];
    for (int64_t p0 = 0; p0 < length; p0 += SP_TILE) {
        int64_t cnt = length - p0 < SP_TILE ? length - p0 : SP_TILE;
        memset(tile, 0, sizeof tile);
        for (int64_t j = 0; j < nnz; j++) {
            const uint8_t *s = src + off[j] + p0;
            int32_t v = val[j];
            for (int64_t q = 0; q < cnt; q++)
                tile[q] += v * (int32_t)s[q];
        }
        sp_store_s32(tile, p0, cnt, ws, ow_valid, b, out, os_h, os_w);
    }
}

/* ---- vector bodies: spconv_vec.h once per ISA path, the tile in registers ------------------- */
#define SP_NARROW_F32 sp_row_f32_c       /* rows shorter than one vector: the next narrower body */
#define SP_NARROW_S32 sp_row_s32_c
#ifdef __x86_64__
#define SIMD_AVX2
#define SP_NV 6                   /* 2 x 6 accumulators + 2 broadcasts of the 16 ymm registers */
#include "simd.h"
#include "spconv_vec.h"
#undef SIMD_AVX2
#undef SP_NV
#undef SP_NARROW_F32
#undef SP_NARROW_S32
#define SP_NARROW_F32 sp_row_f32_avx2
#define SP_NARROW_S32 sp_row_s32_avx2
#define SIMD_AVX512
#define SP_NV 8                   /* 2 x 8 accumulators of the 32 zmm registers */
#include "simd.h"
#include "spconv_vec.h"
#undef SIMD_AVX512
#undef SP_NV
#endif
#ifdef __aarch64__
#define SIMD_NEON
#define SP_NV 8                   /* 2 x 8 accumulators of the 32 q registers */
#include "simd.h"
#include "spconv_vec.h"
#undef SIMD_NEON
#undef SP_NV
#endif

/* ---- exported entry points -------------------------------------------------------------------- */

/* pool > 1 fuses a pool x pool, stride-pool max-pool; then out and its strides are the pooled
 * output's and os_w must be 1. Returns 3 if a thread's scratch plane cannot be allocated. */
int tinyeff_sprows_f32(const int64_t *indptr, const int64_t *offsets, const float *data,
                       int64_t rows, const float *src, int64_t img_stride, int64_t nimg,
                       int64_t length, int64_t ws, int64_t ow_valid, const float *bias,
                       int64_t relu, int64_t pool, int64_t isa, float *out, int64_t os_img,
                       int64_t os_row, int64_t os_h, int64_t os_w)
{
    if (rows < 0 || nimg < 0 || length < 1 || ws < 1 || ow_valid > ws || !TE_ISA_OK(isa) ||
        pool < 1 || (pool > 1 && os_w != 1))
        return 1;
    int failed = 0;
    #pragma omp parallel if (nimg * indptr[rows] * length >= TINYEFF_PARALLEL_MIN_MACS)
    {
        /* whole tiles are written, so the plane has one tile of slack past length */
        float *plane = pool > 1 ? malloc((size_t)(length + SP_TILE) * sizeof(float)) : NULL;
        if (pool > 1 && !plane) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 4)
        for (int64_t t = 0; t < nimg * rows; t++) {
            if (pool > 1 && !plane) continue;
            int64_t img = t / rows, row = t % rows;
            int64_t j0 = indptr[row], nnz = indptr[row + 1] - j0;
            const float *s = src + img * img_stride;
            float b = bias ? bias[row] : 0.0f;
            float *o = out + img * os_img + row * os_row;
#ifdef __x86_64__
            if (TE_ISA_HAS_AVX512(isa)) {
                sp_row_f32_avx512(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, relu,
                                  pool, plane, o, os_h, os_w);
                continue;
            }
            if (TE_ISA_HAS_AVX2(isa)) {
                sp_row_f32_avx2(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, relu,
                                pool, plane, o, os_h, os_w);
                continue;
            }
#endif
#ifdef __aarch64__
            if (TE_ISA_HAS_NEON(isa)) {
                sp_row_f32_neon(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, relu,
                                pool, plane, o, os_h, os_w);
                continue;
            }
#endif
            sp_row_f32_c(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, relu, pool,
                         plane, o, os_h, os_w);
        }
        free(plane);
    }
    return failed ? 3 : 0;
}

/* The u8 source widened to int16 for the x86 vector bodies (see spconv_vec.h): every element the
 * rows can read, (nimg - 1) * img_stride + the largest tap offset + length of them. NULL when the
 * path has no int16 body or there is nothing to read; *failed set if malloc fails. */
static int16_t *sp_widen_src(const int64_t *offsets, int64_t nnz_total, const uint8_t *src,
                             int64_t img_stride, int64_t nimg, int64_t length, int64_t isa, int *failed)
{
    *failed = 0;
#ifdef __x86_64__
    if (!TE_ISA_HAS_AVX2(isa) || nimg == 0 || nnz_total == 0)
        return NULL;
    int64_t max_off = 0;
    for (int64_t j = 0; j < nnz_total; j++)
        max_off = offsets[j] > max_off ? offsets[j] : max_off;
    const int64_t extent = (nimg - 1) * img_stride + max_off + length;
    int16_t *wide = malloc((size_t)extent * sizeof(int16_t));
    if (wide == NULL) {
        *failed = 1;
        return NULL;
    }
    #pragma omp parallel for simd schedule(static) if (extent >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t i = 0; i < extent; i++)
        wide[i] = (int16_t)src[i];
    return wide;
#else
    (void)offsets; (void)nnz_total; (void)src; (void)img_stride; (void)nimg; (void)length; (void)isa;
    return NULL;
#endif
}

/* Returns 3 if the int16 copy of the source cannot be allocated. */
int tinyeff_sprows_u8s8(const int64_t *indptr, const int64_t *offsets, const int8_t *data,
                        int64_t rows, const uint8_t *src, int64_t img_stride, int64_t nimg,
                        int64_t length, int64_t ws, int64_t ow_valid, const int32_t *bias,
                        int64_t isa, int32_t *out, int64_t os_img, int64_t os_row, int64_t os_h,
                        int64_t os_w)
{
    if (rows < 0 || nimg < 0 || length < 1 || ws < 1 || ow_valid > ws || !TE_ISA_OK(isa))
        return 1;
    int failed;
    int16_t *wide = sp_widen_src(offsets, indptr[rows], src, img_stride, nimg, length, isa, &failed);
    if (failed)
        return 3;
    #pragma omp parallel for schedule(dynamic, 4) if (nimg * indptr[rows] * length >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t t = 0; t < nimg * rows; t++) {
        int64_t img = t / rows, row = t % rows;
        int64_t j0 = indptr[row], nnz = indptr[row + 1] - j0;
        const uint8_t *s = src + img * img_stride;
        int32_t b = bias ? bias[row] : 0;
        int32_t *o = out + img * os_img + row * os_row;
#ifdef __x86_64__
        if (wide != NULL && TE_ISA_HAS_AVX512(isa)) {
            sp_row_s16_avx512(offsets + j0, data + j0, nnz, wide + img * img_stride, s, length, ws,
                              ow_valid, b, o, os_h, os_w);
            continue;
        }
        if (wide != NULL && TE_ISA_HAS_AVX2(isa)) {
            sp_row_s16_avx2(offsets + j0, data + j0, nnz, wide + img * img_stride, s, length, ws,
                            ow_valid, b, o, os_h, os_w);
            continue;
        }
#endif
#ifdef __aarch64__
        if (TE_ISA_HAS_NEON(isa)) {
            sp_row_s32_neon(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, o, os_h, os_w);
            continue;
        }
#endif
        sp_row_s32_c(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, o, os_h, os_w);
    }
    free(wide);
    return 0;
}
