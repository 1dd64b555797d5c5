/* Depthwise convolution, float32, direct: one loop nest per output plane (tinyeff/kernels/depthwise).
 *
 * x (N, C, H, W), w (OC, 1, KH, KW) with OC = M * C; output channel o reads input channel o / M.
 * For each kernel tap (i, j) the loop runs over the output rows that tap reaches and, within a row,
 * over the contiguous range of output columns whose input column is inside the image: no padding
 * copy, no bounds test in the inner loop, which the compiler vectorises for stride 1.
 * Planes are independent in the forward pass and in the weight gradient (one filter per plane);
 * the input gradient gathers the M output planes of one input channel, so it is parallel over
 * input planes. Portable C only: a depthwise conv is memory-bound at KH*KW MACs per output.
 */
#include "tinyeff.h"

/* First and one-past-last output index o with 0 <= o*stride - pad + tap < size. */
static void valid_range(int64_t size, int64_t out, int64_t stride, int64_t pad, int64_t tap,
                        int64_t *lo, int64_t *hi) {
    int64_t first = pad - tap;                        /* need o*stride >= first */
    int64_t a = first <= 0 ? 0 : (first + stride - 1) / stride;
    int64_t last = size - 1 + pad - tap;              /* need o*stride <= last */
    int64_t b = last < 0 ? 0 : last / stride + 1;
    *lo = a;
    *hi = b < out ? b : out;
    if (*hi < *lo) *hi = *lo;
}

int tinyeff_dwconv_f32(const float *x, const float *w, int64_t n, int64_t c, int64_t h, int64_t wd,
                       int64_t oc, int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t dil,
                       int64_t oh, int64_t ow, float *out) {
    if (n < 0 || c <= 0 || oc % c || stride < 1 || dil < 1 || pad < 0) return 1;
    int64_t mult = oc / c, planes = n * oc;
    #pragma omp parallel for schedule(static) if (planes * oh * ow * kh * kw >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t p = 0; p < planes; p++) {
        int64_t o = p % oc;
        const float *xp = x + ((p / oc) * c + o / mult) * h * wd;
        float *op = out + p * oh * ow;
        for (int64_t k = 0; k < oh * ow; k++) op[k] = 0.0f;
        for (int64_t i = 0; i < kh; i++) {
            int64_t r0, r1;
            valid_range(h, oh, stride, pad, i * dil, &r0, &r1);
            for (int64_t j = 0; j < kw; j++) {
                float wv = w[(o * kh + i) * kw + j];
                int64_t c0, c1;
                valid_range(wd, ow, stride, pad, j * dil, &c0, &c1);
                for (int64_t r = r0; r < r1; r++) {
                    const float *xr = xp + (r * stride - pad + i * dil) * wd - pad + j * dil;
                    float *orow = op + r * ow;
                    for (int64_t s = c0; s < c1; s++) orow[s] += wv * xr[s * stride];
                }
            }
        }
    }
    return 0;
}

int tinyeff_dwconv_xgrad_f32(const float *g, const float *w, int64_t n, int64_t c, int64_t h, int64_t wd,
                             int64_t oc, int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t dil,
                             int64_t oh, int64_t ow, float *gx) {
    if (n < 0 || c <= 0 || oc % c || stride < 1 || dil < 1 || pad < 0) return 1;
    int64_t mult = oc / c, planes = n * c;
    #pragma omp parallel for schedule(static) if (planes * mult * oh * ow * kh * kw >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t p = 0; p < planes; p++) {
        float *gp = gx + p * h * wd;
        for (int64_t k = 0; k < h * wd; k++) gp[k] = 0.0f;
        for (int64_t m = 0; m < mult; m++) {
            int64_t o = (p % c) * mult + m;
            const float *go = g + ((p / c) * oc + o) * oh * ow;
            for (int64_t i = 0; i < kh; i++) {
                int64_t r0, r1;
                valid_range(h, oh, stride, pad, i * dil, &r0, &r1);
                for (int64_t j = 0; j < kw; j++) {
                    float wv = w[(o * kh + i) * kw + j];
                    int64_t c0, c1;
                    valid_range(wd, ow, stride, pad, j * dil, &c0, &c1);
                    for (int64_t r = r0; r < r1; r++) {
                        float *gr = gp + (r * stride - pad + i * dil) * wd - pad + j * dil;
                        const float *grow = go + r * ow;
                        for (int64_t s = c0; s < c1; s++) gr[s * stride] += wv * grow[s];
                    }
                }
            }
        }
    }
    return 0;
}

int tinyeff_dwconv_wgrad_f32(const float *x, const float *g, int64_t n, int64_t c, int64_t h, int64_t wd,
                             int64_t oc, int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t dil,
                             int64_t oh, int64_t ow, float *gw) {
    if (n < 0 || c <= 0 || oc % c || stride < 1 || dil < 1 || pad < 0) return 1;
    int64_t mult = oc / c;
    #pragma omp parallel for schedule(static) if (n * oc * oh * ow * kh * kw >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t o = 0; o < oc; o++) {
        for (int64_t i = 0; i < kh; i++) {
            int64_t r0, r1;
            valid_range(h, oh, stride, pad, i * dil, &r0, &r1);
            for (int64_t j = 0; j < kw; j++) {
                int64_t c0, c1;
                valid_range(wd, ow, stride, pad, j * dil, &c0, &c1);
                float acc = 0.0f;
                for (int64_t b = 0; b < n; b++) {
                    const float *xp = x + (b * c + o / mult) * h * wd;
                    const float *go = g + (b * oc + o) * oh * ow;
                    for (int64_t r = r0; r < r1; r++) {
                        const float *xr = xp + (r * stride - pad + i * dil) * wd - pad + j * dil;
                        const float *grow = go + r * ow;
                        for (int64_t s = c0; s < c1; s++) acc += grow[s] * xr[s * stride];
                    }
                }
                gw[(o * kh + i) * kw + j] = acc;
            }
        }
    }
    return 0;
}
