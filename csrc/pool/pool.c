/* pool.c: float32 max-pooling (forward with argmax, backward scatter) and the zero padding of the
 * direct convolution's layout (pad2d).
 *
 * Same layouts as tinyeff/kernels/pool/spec.py and pad/spec.py: argmax is the flat h * W + w index
 * inside each (n, c) plane. OpenMP runs over independent (n, c) planes, so no two threads write
 * one element. The 2x2 max-pool with argmax has vector bodies (pool_vec.h, one loop compiled for
 * AVX-512, AVX2 and NEON): its compare-and-select chain does not vectorize from plain C, and
 * training runs it after every seed-CNN conv. pad2d's vector bodies (pad_plane, same header) write
 * each padded row with whole-vector stores; the per-row libc calls ran at about half the copy rate.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tinyeff.h"

/* Zero padding of `planes` H x W planes into (H + 2p) x (W + 2p): each output row is written once
 * (border rows zeroed, inner rows as zeros | copy | zeros), one OpenMP thread per block of planes.
 * The vector bodies (pad_plane in pool_vec.h) replace the per-row libc calls. */
static void pad_plane_c(const float *src, int64_t h, int64_t w, int64_t pad, float *dst)
{
    const int64_t wp = w + 2 * pad;
    memset(dst, 0, (size_t)(pad * wp) * sizeof(float));
    for (int64_t i = 0; i < h; i++) {
        float *row = dst + (pad + i) * wp;
        memset(row, 0, (size_t)pad * sizeof(float));
        memcpy(row + pad, src + i * w, (size_t)w * sizeof(float));
        memset(row + pad + w, 0, (size_t)pad * sizeof(float));
    }
    memset(dst + (pad + h) * wp, 0, (size_t)(pad * wp) * sizeof(float));
}


static void maxpool_2x2(const float *plane, int64_t w, int64_t oh, int64_t ow, float *out, int64_t *argmax)
{
    for (int64_t i = 0; i < oh; i++) {
        const float *r0 = plane + 2 * i * w, *r1 = r0 + w;
        float *o = out + i * ow;
        if (argmax == NULL) {
            for (int64_t j = 0; j < ow; j++) {
                float best = -INFINITY;
                best = r0[2 * j] > best ? r0[2 * j] : best;
                best = r0[2 * j + 1] > best ? r0[2 * j + 1] : best;
                best = r1[2 * j] > best ? r1[2 * j] : best;
                best = r1[2 * j + 1] > best ? r1[2 * j + 1] : best;
                o[j] = best;
            }
            continue;
        }
        int64_t *a = argmax + i * ow;
        for (int64_t j = 0; j < ow; j++) {
            const int64_t base = 2 * i * w + 2 * j;
            const float taps[4] = {r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]};
            const int64_t where[4] = {base, base + 1, base + w, base + w + 1};
            float best = -INFINITY;
            int64_t at = 0;
            for (int k = 0; k < 4; k++)
                if (taps[k] > best) {
                    best = taps[k];
                    at = where[k];
                }
            o[j] = best;
            a[j] = at;
        }
    }
}

/* ---- vector bodies of maxpool_2x2: pool_vec.h once per ISA path ------------------------------ */
#define SIMD_BODY "pool_vec.h"
#include "simd_each.h"

int tinyeff_pad2d_f32(const float *x, int64_t planes, int64_t h, int64_t w, int64_t pad, int64_t isa,
                      float *out)
{
    if (planes < 0 || h < 0 || w < 0 || pad < 0 || !TE_ISA_OK(isa))
        return 1;
    const int64_t hp = h + 2 * pad, wp = w + 2 * pad;
    #pragma omp parallel for schedule(static) if (planes * hp * wp >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t t = 0; t < planes; t++) {
        const float *src = x + t * h * w;
        float *dst = out + t * hp * wp;
#ifdef __x86_64__
        if (TE_ISA_HAS_AVX512(isa)) { pad_plane_avx512(src, h, w, pad, dst); continue; }
        if (TE_ISA_HAS_AVX2(isa)) { pad_plane_avx2(src, h, w, pad, dst); continue; }
#endif
#ifdef __aarch64__
        if (TE_ISA_HAS_NEON(isa)) { pad_plane_neon(src, h, w, pad, dst); continue; }
#endif
        pad_plane_c(src, h, w, pad, dst);
    }
    return 0;
}

int tinyeff_maxpool2d_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                          int64_t kernel, int64_t stride, int64_t padding, int64_t oh, int64_t ow,
                          int64_t isa, float *out, int64_t *argmax)
{
    if (n < 0 || c < 1 || kernel < 1 || stride < 1 || padding < 0 || !TE_ISA_OK(isa))
        return 1;
    const int fast = kernel == 2 && stride == 2 && padding == 0;
    #pragma omp parallel for schedule(static) if (n * c * h * w >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t t = 0; t < n * c; t++) {
        const float *plane = x + t * h * w;
        int64_t *plane_argmax = argmax == NULL ? NULL : argmax + t * oh * ow;
        if (fast) {
#ifdef __x86_64__
            if (TE_ISA_HAS_AVX512(isa)) {
                maxpool_2x2_avx512(plane, w, oh, ow, out + t * oh * ow, plane_argmax);
                continue;
            }
            if (TE_ISA_HAS_AVX2(isa)) {
                maxpool_2x2_avx2(plane, w, oh, ow, out + t * oh * ow, plane_argmax);
                continue;
            }
#endif
#ifdef __aarch64__
            if (TE_ISA_HAS_NEON(isa)) {
                maxpool_2x2_neon(plane, w, oh, ow, out + t * oh * ow, plane_argmax);
                continue;
            }
#endif
            maxpool_2x2(plane, w, oh, ow, out + t * oh * ow, plane_argmax);
            continue;
        }
        for (int64_t i = 0; i < oh; i++) {
            for (int64_t j = 0; j < ow; j++) {
                float best = -INFINITY;
                int64_t where = 0;               /* as the ref: an all -inf window reports 0 */
                for (int64_t ki = 0; ki < kernel; ki++) {
                    int64_t y = i * stride - padding + ki;
                    if (y < 0 || y >= h)
                        continue;
                    for (int64_t kj = 0; kj < kernel; kj++) {
                        int64_t xx = j * stride - padding + kj;
                        if (xx >= 0 && xx < w && plane[y * w + xx] > best) {  /* first tap wins ties */
                            best = plane[y * w + xx];
                            where = y * w + xx;
                        }
                    }
                }
                out[(t * oh + i) * ow + j] = best;
                if (plane_argmax != NULL)
                    plane_argmax[i * ow + j] = where;
            }
        }
    }
    return 0;
}

int tinyeff_maxpool2d_backward_f32(const float *grad_out, const int64_t *argmax, int64_t planes,
                                   int64_t ohw, int64_t hw, float *grad_x)
{
    if (planes < 0 || ohw < 0 || hw < 1)
        return 1;
    #pragma omp parallel for schedule(static) if (planes * hw >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t t = 0; t < planes; t++) {       /* one (n, c) plane per task: no write conflicts */
        float *g = grad_x + t * hw;
        memset(g, 0, (size_t)hw * sizeof(float));
        for (int64_t q = 0; q < ohw; q++)
            g[argmax[t * ohw + q]] += grad_out[t * ohw + q];
    }
    return 0;
}
