/* im2col.c: float32 im2col / col2im and max-pooling (forward with argmax, backward scatter).
 *
 * Same layouts as tinyeff/kernels/ref/im2col.py and ref/pool.py: cols is (N*OH*OW, C*KH*KW) with
 * rows (n, oh, ow) and columns (c, kh, kw); argmax is the flat h * W + w index inside each (n, c)
 * plane. OpenMP runs over independent outer rows: im2col over (n, oh) output rows, col2im and
 * pooling over (n, c) planes, so no two threads write one element and batch 1 uses every core.
 * Portable C only: these loops are memory-bound copies, and gcc vectorizes the contiguous ones.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tinyeff.h"

int tinyeff_im2col_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh,
                       int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh,
                       int64_t ow, float *cols)
{
    if (n < 0 || c < 1 || kh < 1 || kw < 1 || stride < 1 || dilation < 1 || padding < 0)
        return 1;
    int64_t ncols = c * kh * kw;
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < n * oh; t++) {
        int64_t b = t / oh, i = t % oh;
        for (int64_t j = 0; j < ow; j++) {
            float *row = cols + ((b * oh + i) * ow + j) * ncols;
            for (int64_t ch = 0; ch < c; ch++) {
                const float *plane = x + (b * c + ch) * h * w;
                for (int64_t ki = 0; ki < kh; ki++) {
                    int64_t y = i * stride - padding + ki * dilation;
                    float *dst = row + (ch * kh + ki) * kw;
                    if (y < 0 || y >= h) {
                        memset(dst, 0, (size_t)kw * sizeof(float));
                        continue;
                    }
                    for (int64_t kj = 0; kj < kw; kj++) {
                        int64_t xx = j * stride - padding + kj * dilation;
                        dst[kj] = (xx >= 0 && xx < w) ? plane[y * w + xx] : 0.0f;
                    }
                }
            }
        }
    }
    return 0;
}

int tinyeff_col2im_f32(const float *cols, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh,
                       int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh,
                       int64_t ow, float *x)
{
    if (n < 0 || c < 1 || kh < 1 || kw < 1 || stride < 1 || dilation < 1 || padding < 0)
        return 1;
    int64_t ncols = c * kh * kw;
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < n * c; t++) {        /* one (n, c) plane per task */
        int64_t b = t / c, ch = t % c;
        float *plane = x + t * h * w;
        memset(plane, 0, (size_t)(h * w) * sizeof(float));
        for (int64_t i = 0; i < oh; i++) {
            for (int64_t j = 0; j < ow; j++) {
                const float *row = cols + ((b * oh + i) * ow + j) * ncols + ch * kh * kw;
                for (int64_t ki = 0; ki < kh; ki++) {
                    int64_t y = i * stride - padding + ki * dilation;
                    if (y < 0 || y >= h)
                        continue;
                    for (int64_t kj = 0; kj < kw; kj++) {
                        int64_t xx = j * stride - padding + kj * dilation;
                        if (xx >= 0 && xx < w)
                            plane[y * w + xx] += row[ki * kw + kj];
                    }
                }
            }
        }
    }
    return 0;
}

int tinyeff_maxpool2d_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                          int64_t kernel, int64_t stride, int64_t padding, int64_t oh, int64_t ow,
                          float *out, int64_t *argmax)
{
    if (n < 0 || c < 1 || kernel < 1 || stride < 1 || padding < 0)
        return 1;
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < n * c; t++) {
        const float *plane = x + t * h * w;
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
                argmax[(t * oh + i) * ow + j] = where;
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
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < planes; t++) {       /* one (n, c) plane per task: no write conflicts */
        float *g = grad_x + t * hw;
        memset(g, 0, (size_t)hw * sizeof(float));
        for (int64_t q = 0; q < ohw; q++)
            g[argmax[t * ohw + q]] += grad_out[t * ohw + q];
    }
    return 0;
}
