/* spconv.c: direct sparse convolution / sparse linear over CSR rows, float32 and u8 x s8 -> int32.
 *
 * The one idea: with the flat-shift layout of tinyeff/kernels/layout/direct.py (direct_conv_layout),
 * every nonzero tap of an output channel reads one *contiguous* run of the input, so an output
 * plane is  acc[p] = sum_j data[j] * src[offsets[j] + p]  for p in [0, length). We cut p into
 * tiles of up to 8 vectors (128 floats), keep the tile in registers while streaming the row's
 * nonzeros through it (two accumulator sets, even and odd nonzeros, to hide the FMA latency),
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
 * Threads: OpenMP over independent (image, row) pairs. isa (TE_ISA_ codes): portable C or AVX-512F; the
 * Python wrapper picks it from tinyeff.kernels.cpu. Left out: blocked/bitmap formats, VNNI for the
 * int8 twin (it uses 32-bit multiplies; the products never overflow: |s8 * u8| <= 32640).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#include "tinyeff.h"

#define SP_VEC 16                 /* floats or int32 per 512-bit vector */
#define SP_TILE (8 * SP_VEC)      /* positions per register tile */

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

/* ---- AVX-512: the tile lives in zmm registers ------------------------------------------------- */
#ifdef __x86_64__

/* Masks for the NV vectors of a tile holding cnt positions (masked loads never touch memory
 * past the end of the run, so the last tile cannot read out of bounds). */
__attribute__((target("avx512f"))) static inline __mmask16 sp_mask(int64_t cnt, int k)
{
    int64_t left = cnt - (int64_t)k * SP_VEC;
    if (left >= SP_VEC) return (__mmask16)0xFFFF;
    if (left <= 0) return 0;
    return (__mmask16)((1u << left) - 1u);
}

/* One tile of NV vectors; NV is a compile-time constant after inlining into sp_tile_f32_avx512. */
__attribute__((target("avx512f"), always_inline)) static inline void
sp_tile_f32_nv(const int64_t *off, const float *val, int64_t nnz, const float *src, int64_t p0,
               int64_t cnt, float *tile, const int NV)
{
    __m512 a0[8], a1[8];
    __mmask16 m[8];
    for (int k = 0; k < NV; k++) {
        a0[k] = _mm512_setzero_ps();
        a1[k] = _mm512_setzero_ps();
        m[k] = sp_mask(cnt, k);
    }
    int64_t j = 0;
    for (; j + 1 < nnz; j += 2) {            /* even and odd nonzeros: two independent chains */
        const float *s0 = src + off[j] + p0, *s1 = src + off[j + 1] + p0;
        __m512 v0 = _mm512_set1_ps(val[j]), v1 = _mm512_set1_ps(val[j + 1]);
        for (int k = 0; k < NV; k++) {
            a0[k] = _mm512_fmadd_ps(v0, _mm512_maskz_loadu_ps(m[k], s0 + k * SP_VEC), a0[k]);
            a1[k] = _mm512_fmadd_ps(v1, _mm512_maskz_loadu_ps(m[k], s1 + k * SP_VEC), a1[k]);
        }
    }
    if (j < nnz) {
        const float *s0 = src + off[j] + p0;
        __m512 v0 = _mm512_set1_ps(val[j]);
        for (int k = 0; k < NV; k++)
            a0[k] = _mm512_fmadd_ps(v0, _mm512_maskz_loadu_ps(m[k], s0 + k * SP_VEC), a0[k]);
    }
    for (int k = 0; k < NV; k++)
        _mm512_storeu_ps(tile + k * SP_VEC, _mm512_add_ps(a0[k], a1[k]));
}

/* sp_pool_store_f32 for 2x2 windows, 16 pooled outputs per step: the max of two input rows,
 * then of even and odd columns (a two-source permute). The plane's one tile of slack keeps the
 * 32-float loads in bounds; lanes past the row end are read but never stored. */
__attribute__((target("avx512f"))) static void
sp_pool2_store_f32_avx512(const float *plane, int64_t ws, int64_t oh, int64_t ow_valid, float b,
                          int64_t relu, float *out, int64_t os_h)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 bias = _mm512_set1_ps(b), zero = _mm512_setzero_ps();
    int64_t ph = oh / 2, pw = ow_valid / 2;
    for (int64_t i = 0; i < ph; i++) {
        const float *r0 = plane + 2 * i * ws, *r1 = r0 + ws;
        for (int64_t j = 0; j < pw; j += SP_VEC) {
            __m512 lo = _mm512_max_ps(_mm512_loadu_ps(r0 + 2 * j), _mm512_loadu_ps(r1 + 2 * j));
            __m512 hi = _mm512_max_ps(_mm512_loadu_ps(r0 + 2 * j + SP_VEC),
                                      _mm512_loadu_ps(r1 + 2 * j + SP_VEC));
            __m512 m = _mm512_add_ps(_mm512_max_ps(_mm512_permutex2var_ps(lo, even, hi),
                                                   _mm512_permutex2var_ps(lo, odd, hi)), bias);
            if (relu) m = _mm512_max_ps(m, zero);
            _mm512_mask_storeu_ps(out + i * os_h + j, sp_mask(pw - j, 0), m);
        }
    }
}

__attribute__((target("avx512f"))) static void
sp_row_f32_avx512(const int64_t *off, const float *val, int64_t nnz, const float *src,
                  int64_t length, int64_t ws, int64_t ow_valid, float b, int64_t relu,
                  int64_t pool, float *plane, float *out, int64_t os_h, int64_t os_w)
{
    float buf[SP_TILE];
    for (int64_t p0 = 0; p0 < length; p0 += SP_TILE) {
        int64_t cnt = length - p0 < SP_TILE ? length - p0 : SP_TILE;
        float *tile = pool > 1 ? plane + p0 : buf;      /* pooling: keep the whole plane */
        switch ((cnt + SP_VEC - 1) / SP_VEC) {   /* one specialised body per tile width */
        case 1: sp_tile_f32_nv(off, val, nnz, src, p0, cnt, tile, 1); break;
        case 2: sp_tile_f32_nv(off, val, nnz, src, p0, cnt, tile, 2); break;
        case 3: sp_tile_f32_nv(off, val, nnz, src, p0, cnt, tile, 3); break;
        case 4: sp_tile_f32_nv(off, val, nnz, src, p0, cnt, tile, 4); break;
        case 5: sp_tile_f32_nv(off, val, nnz, src, p0, cnt, tile, 5); break;
        case 6: sp_tile_f32_nv(off, val, nnz, src, p0, cnt, tile, 6); break;
        case 7: sp_tile_f32_nv(off, val, nnz, src, p0, cnt, tile, 7); break;
        default: sp_tile_f32_nv(off, val, nnz, src, p0, cnt, tile, 8); break;
        }
        if (pool == 1)
            sp_store_f32(tile, p0, cnt, ws, ow_valid, b, relu, out, os_h, os_w);
    }
    if (pool == 2)
        sp_pool2_store_f32_avx512(plane, ws, sp_rows(length, ws, ow_valid), ow_valid, b, relu, out, os_h);
    else if (pool > 2)
        sp_pool_store_f32(plane, ws, sp_rows(length, ws, ow_valid), ow_valid, pool, b, relu, out, os_h);
}

/* int8 twin: 16 u8 activations widened to int32, times the broadcast weight, 4 vectors a tile. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
sp_row_s32_avx512(const int64_t *off, const int8_t *val, int64_t nnz, const uint8_t *src,
                  int64_t length, int64_t ws, int64_t ow_valid, int32_t b, int32_t *out,
                  int64_t os_h, int64_t os_w)
{
    int32_t tile[4 * SP_VEC];
    for (int64_t p0 = 0; p0 < length; p0 += 4 * SP_VEC) {
        int64_t cnt = length - p0 < 4 * SP_VEC ? length - p0 : 4 * SP_VEC;
        __m512i a[4];
        __mmask16 m[4];
        for (int k = 0; k < 4; k++) {
            a[k] = _mm512_setzero_si512();
            m[k] = sp_mask(cnt, k);
        }
        for (int64_t j = 0; j < nnz; j++) {
            const uint8_t *s = src + off[j] + p0;
            __m512i v = _mm512_set1_epi32(val[j]);
            for (int k = 0; k < 4; k++) {
                __m512i x = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m[k], s + k * SP_VEC));
                a[k] = _mm512_add_epi32(a[k], _mm512_mullo_epi32(v, x));
            }
        }
        for (int k = 0; k < 4; k++)
            _mm512_storeu_si512((void *)(tile + k * SP_VEC), a[k]);
        sp_store_s32(tile, p0, cnt, ws, ow_valid, b, out, os_h, os_w);
    }
}
#endif /* __x86_64__ */

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
#endif
            sp_row_f32_c(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, relu, pool,
                         plane, o, os_h, os_w);
        }
        free(plane);
    }
    return failed ? 3 : 0;
}

int tinyeff_sprows_u8s8(const int64_t *indptr, const int64_t *offsets, const int8_t *data,
                        int64_t rows, const uint8_t *src, int64_t img_stride, int64_t nimg,
                        int64_t length, int64_t ws, int64_t ow_valid, const int32_t *bias,
                        int64_t isa, int32_t *out, int64_t os_img, int64_t os_row, int64_t os_h,
                        int64_t os_w)
{
    if (rows < 0 || nimg < 0 || length < 1 || ws < 1 || ow_valid > ws || !TE_ISA_OK(isa))
        return 1;
    #pragma omp parallel for schedule(dynamic, 4)
    for (int64_t t = 0; t < nimg * rows; t++) {
        int64_t img = t / rows, row = t % rows;
        int64_t j0 = indptr[row], nnz = indptr[row + 1] - j0;
        const uint8_t *s = src + img * img_stride;
        int32_t b = bias ? bias[row] : 0;
        int32_t *o = out + img * os_img + row * os_row;
#ifdef __x86_64__
        if (TE_ISA_HAS_AVX512(isa)) {
            sp_row_s32_avx512(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, o, os_h,
                              os_w);
            continue;
        }
#endif
        sp_row_s32_c(offsets + j0, data + j0, nnz, s, length, ws, ow_valid, b, o, os_h, os_w);
    }
    return 0;
}
