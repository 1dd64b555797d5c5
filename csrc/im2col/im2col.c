/* im2col.c: float32 im2col / col2im.
 *
 * Same layout as tinyeff/kernels/im2col/spec.py: cols is (N*OH*OW, C*KH*KW) with rows (n, oh, ow)
 * and columns (c, kh, kw). OpenMP runs over independent outer rows: im2col over (n, oh) output
 * rows, col2im over (n, c) planes, so no two threads write one element and batch 1 uses every
 * core. Portable C: the inner loops are contiguous copies the compiler vectorizes on any ISA.
 */
#include <stdint.h>
#include <string.h>

#include "tinyeff.h"

/* First and one-past-last output column whose tap at input column offset `off` lands inside [0, w). */
static void valid_cols(int64_t off, int64_t stride, int64_t w, int64_t ow, int64_t *lo, int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = off >= w ? 0 : (w - 1 - off) / stride + 1;
    *lo = a < ow ? a : ow;
    *hi = b < ow ? b : ow;
    if (*hi < *lo) *hi = *lo;
}

int tinyeff_im2col_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh,
                       int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh,
                       int64_t ow, float *cols)
{
    if (n < 0 || c < 1 || kh < 1 || kw < 1 || stride < 1 || dilation < 1 || padding < 0)
        return 1;
    int64_t ncols = c * kh * kw;
    /* Loop order: one output row (n, oh) per task fills an OW x ncols block of cols (small
     * enough for L1/L2); inside it we walk columns (c, kh, kw) and, for each, the OW outputs,
     * reading the input row contiguously and computing the padding bounds once per column. */
    #pragma omp parallel for schedule(static) if (n * oh * ow * c * kh * kw >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t t = 0; t < n * oh; t++) {
        int64_t b = t / oh, i = t % oh;
        float *block = cols + t * ow * ncols;
        for (int64_t ch = 0; ch < c; ch++) {
            const float *plane = x + (b * c + ch) * h * w;
            for (int64_t ki = 0; ki < kh; ki++) {
                int64_t y = i * stride - padding + ki * dilation;
                for (int64_t kj = 0; kj < kw; kj++) {
                    float *dst = block + (ch * kh + ki) * kw + kj;
                    int64_t off = kj * dilation - padding, lo = ow, hi = ow;
                    if (y >= 0 && y < h)
                        valid_cols(off, stride, w, ow, &lo, &hi);
                    else
                        lo = hi = 0;
                    const float *src = plane + y * w + off;
                    for (int64_t j = 0; j < lo; j++)
                        dst[j * ncols] = 0.0f;
                    for (int64_t j = lo; j < hi; j++)
                        dst[j * ncols] = src[j * stride];
                    for (int64_t j = hi; j < ow; j++)
                        dst[j * ncols] = 0.0f;
                }
            }
        }
    }
    return 0;
}

/* The taps-major layout, (N, C*KH*KW, OH*OW): one row per weight tap (c, kh, kw), its OH*OW
 * positions in order, so w2d (OC, C*KH*KW) @ cols_t[n] is image n's (OC, OH*OW) output, already
 * NCHW (batch-1 inference: no transposing copy). A row is OH runs of OW input floats, each run one
 * contiguous copy at stride 1, where the layout above stores a tap's OW values C*KH*KW floats
 * apart. OpenMP over (n, c) planes: each owns KH*KW consecutive rows. */
int tinyeff_im2col_t_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh,
                         int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh,
                         int64_t ow, float *cols)
{
    if (n < 0 || c < 1 || kh < 1 || kw < 1 || stride < 1 || dilation < 1 || padding < 0)
        return 1;
    int64_t positions = oh * ow;
    #pragma omp parallel for schedule(static) if (n * c * kh * kw * positions >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t t = 0; t < n * c; t++) {
        const float *plane = x + t * h * w;
        for (int64_t ki = 0; ki < kh; ki++) {
            for (int64_t kj = 0; kj < kw; kj++) {
                float *dst = cols + (t * kh * kw + ki * kw + kj) * positions;
                int64_t off = kj * dilation - padding, lo, hi;
                valid_cols(off, stride, w, ow, &lo, &hi);
                for (int64_t i = 0; i < oh; i++, dst += ow) {
                    int64_t y = i * stride - padding + ki * dilation;
                    int64_t a = (y >= 0 && y < h) ? lo : ow, b = (y >= 0 && y < h) ? hi : ow;
                    const float *src = plane + y * w + off;
                    for (int64_t j = 0; j < a; j++)
                        dst[j] = 0.0f;
                    if (stride == 1)
                        for (int64_t j = a; j < b; j++)
                            dst[j] = src[j];
                    else
                        for (int64_t j = a; j < b; j++)
                            dst[j] = src[j * stride];
                    for (int64_t j = b; j < ow; j++)
                        dst[j] = 0.0f;
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
    #pragma omp parallel for schedule(static) if (n * oh * ow * ncols >= TINYEFF_PARALLEL_MIN_ELEMS)
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

/* The common 2x2, stride-2, unpadded pool: no bounds checks, so the compiler can vectorize the row
 * loop. Same semantics as the general loop: taps visited in row-major order, a strict ">" so the first
 * tap wins ties and NaN never wins. argmax may be NULL (inference needs no indices). */
