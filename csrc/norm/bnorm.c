/* bnorm.c: float32 batch norm for training, NCHW: the forward with batch statistics and its backward.
 *
 * Same math and outputs as tinyeff/kernels/norm/spec.py. Batch norm is memory-bound, so the loop
 * order is chosen to touch memory as few times as possible. OpenMP runs over channels: one thread
 * owns one channel, whose N planes of H*W floats (N * H * W * 4 bytes: 400 KB for ResNet-20's
 * (128, 16, 28, 28)) stay in that core's L2 between the two passes over them:
 *   forward:  pass 1 sums (x - shift) and (x - shift)^2; pass 2 writes y.
 *   backward: pass 1 sums grad_out and grad_out * (x - mean); pass 2 writes grad_x.
 * Fusions, so that a ResNet block's batch norm, residual add and ReLU are one pass each way:
 *   forward:  pass 2 adds the residual (if given) and applies the ReLU (if asked) as it writes y.
 *   backward: with the forward's output (a ReLU after a residual), grad_out is masked where it was
 *             0 into grad_masked (the shortcut's gradient), channel by channel in the same parallel
 *             loop, and the two passes read that.
 *             With the forward's beta (a ReLU and no residual), both passes mask grad_out where
 *             the ReLU output was 0. The mask is recomputed from x with the forward's own float32
 *             expression, (x - mean) * (invstd * gamma) + beta > 0, so it is bit for bit the
 *             forward's (no contraction into FMA: the extension builds with -std=c11) and the
 *             backward never reads y.
 * Each channel is reduced by one thread in a fixed order, so results do not depend on the thread
 * count.
 *
 * Numerics: the naive E[x^2] - E[x]^2 cancels catastrophically when |mean| >> std (mean 1e4, std 1
 * loses every digit in float32). We use shifted sums (Chan, Golub & LeVeque 1983, "Algorithms for
 * computing the sample variance", the "shifted data" method) in double: with the shift K = the
 * channel's first value, var = S2 / m - (S1 / m)^2 where S1 = sum(x - K), S2 = sum((x - K)^2), and
 * the relative error is about 1e-16 * (1 + (mean - K)^2 / var): harmless for any sample K. One pass,
 * no division per element.
 *
 * Vectorization: in the portable loops `omp simd reduction` lets gcc vectorize the double sums at
 * -O3 (without -ffast-math it would not reorder a plain reduction), but as one chain of dependent
 * vector adds: with SSE2 (2 doubles) a core reduces ~2 G values/s, less than the cache delivers.
 * The vector bodies (bnorm_vec.h, one loop compiled for AVX-512, AVX2 and NEON) keep four chains of
 * full-width double vectors; the Python wrapper picks the path from tinyeff.kernels.cpu.
 */
#include <math.h>
#include <stdint.h>

#include "tinyeff.h"

#define INLINE static inline __attribute__((always_inline))

/* The channel's statistics from its shifted sums, rounded to float32 as the reference returns them. */
INLINE void bn_stats(double shift, double s1, double s2, double m, double eps, int64_t ch,
                     float *mean, float *var, float *invstd)
{
    const double dmean = s1 / m;
    double v = s2 / m - dmean * dmean;
    if (v < 0.0)                                 /* rounding on a constant channel */
        v = 0.0;
    mean[ch] = (float)(shift + dmean);
    var[ch] = (float)v;
    invstd[ch] = (float)(1.0 / sqrt(v + eps));
}

/* grad_gamma, grad_beta and the constants of grad_x = fa * g + fb * (x - mean) + fk from the two sums:
 * grad_x = gamma * invstd / m * (m * g - sum(g) - x_hat * sum(g * x_hat)). */
INLINE void bn_backward_constants(double sg, double sgd, double m, int64_t ch, const float *invstd,
                                  const float *gamma, float *grad_gamma, float *grad_beta,
                                  float *fa, float *fb, float *fk)
{
    const double istd = (double)invstd[ch], g_gamma = sgd * istd;   /* sum(g * x_hat) */
    grad_gamma[ch] = (float)g_gamma;
    grad_beta[ch] = (float)sg;
    const double a = (double)gamma[ch] * istd;
    *fa = (float)a;
    *fb = (float)(-a * istd * g_gamma / m);
    *fk = (float)(-a * sg / m);
}

/* grad_out where the fused forward's ReLU passed it, 0 where it clamped (g * 0 keeps NaN as the
 * reference's g * (y > 0) does). */
INLINE float bn_relu_masked(float g, float x, float mu, float scale, float offset)
{
    return g * (float)((x - mu) * scale + offset > 0.0f);
}

/* ---- portable: `omp simd reduction` lets gcc vectorize the double sums (one chain) ------------- */

/* Forward for one channel: statistics, then y. */
static void forward_channel(const float *x, const float *gamma, const float *beta,
                            const float *residual, int64_t relu, int64_t n, int64_t c, int64_t hw,
                            int64_t ch, double eps, float *y, float *mean, float *var, float *invstd)
{
    const double shift = (double)x[ch * hw];     /* first value of the channel */
    double s1 = 0.0, s2 = 0.0;
    for (int64_t b = 0; b < n; b++) {
        const float *xp = x + (b * c + ch) * hw;
        #pragma omp simd reduction(+:s1, s2)
        for (int64_t i = 0; i < hw; i++) {
            double d = (double)xp[i] - shift;
            s1 += d;
            s2 += d * d;
        }
    }
    bn_stats(shift, s1, s2, (double)(n * hw), eps, ch, mean, var, invstd);
    /* y = (x - mean) * (invstd * gamma) + beta: subtracting the float32 mean first, as the
     * reference does, keeps large-mean inputs accurate where x * scale + offset would cancel. */
    const float mu = mean[ch], scale = invstd[ch] * gamma[ch], offset = beta[ch];
    for (int64_t b = 0; b < n; b++) {
        const float *xp = x + (b * c + ch) * hw;
        float *yp = y + (b * c + ch) * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++)
            yp[i] = (xp[i] - mu) * scale + offset;
        if (residual) {                          /* the plane is in L1: the epilogue is cheap */
            const float *rp = residual + (b * c + ch) * hw;
            #pragma omp simd
            for (int64_t i = 0; i < hw; i++)
                yp[i] += rp[i];
        }
        if (relu) {
            #pragma omp simd
            for (int64_t i = 0; i < hw; i++)
                yp[i] = yp[i] < 0.0f ? 0.0f : yp[i];
        }
    }
}

/* Backward for one channel: the two sums, then grad_x. */
static void backward_channel(const float *grad_out, const float *x, const float *mean,
                             const float *invstd, const float *gamma, const float *relu_beta,
                             int64_t n, int64_t c, int64_t hw, int64_t ch, float *grad_x,
                             float *grad_gamma, float *grad_beta)
{
    const double mu = (double)mean[ch];
    const float fmu = mean[ch], scale = invstd[ch] * gamma[ch], offset = relu_beta ? relu_beta[ch] : 0.0f;
    double sg = 0.0, sgd = 0.0;                  /* sum(g), sum(g * (x - mean)) */
    for (int64_t b = 0; b < n; b++) {
        const float *gp = grad_out + (b * c + ch) * hw, *xp = x + (b * c + ch) * hw;
        #pragma omp simd reduction(+:sg, sgd)
        for (int64_t i = 0; i < hw; i++) {
            const float g = relu_beta ? bn_relu_masked(gp[i], xp[i], fmu, scale, offset) : gp[i];
            sg += (double)g;
            sgd += (double)g * ((double)xp[i] - mu);
        }
    }
    float fa, fb, fk;
    bn_backward_constants(sg, sgd, (double)(n * hw), ch, invstd, gamma, grad_gamma, grad_beta,
                          &fa, &fb, &fk);
    for (int64_t b = 0; b < n; b++) {
        const float *gp = grad_out + (b * c + ch) * hw, *xp = x + (b * c + ch) * hw;
        float *gxp = grad_x + (b * c + ch) * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++) {
            const float g = relu_beta ? bn_relu_masked(gp[i], xp[i], fmu, scale, offset) : gp[i];
            gxp[i] = fa * g + fb * (xp[i] - fmu) + fk;
        }
    }
}

/* grad_out * (out > 0) for one channel's planes, into grad_masked: the gradient a fused forward with
 * a residual hands to its shortcut, then the batch norm's own grad_out. out > 0 is tested on the
 * bits, as csrc/relu/relu.c does (so gcc vectorizes it): a float is > 0 iff its int32 pattern is in
 * (0, 0x7F800000]. */
static void relu_mask_channel(const float *grad_out, const float *out, int64_t n, int64_t c, int64_t hw,
                              int64_t ch, float *grad_masked)
{
    for (int64_t b = 0; b < n; b++) {
        const float *gp = grad_out + (b * c + ch) * hw;
        const int32_t *bits = (const int32_t *)out + (b * c + ch) * hw;
        float *mp = grad_masked + (b * c + ch) * hw;
        #pragma omp simd
        for (int64_t i = 0; i < hw; i++)
            mp[i] = gp[i] * (float)((bits[i] > 0) & (bits[i] <= 0x7F800000));
    }
}

/* ---- vector bodies: bnorm_vec.h once per ISA path -------------------------------------------- */
#define SIMD_BODY "bnorm_vec.h"
#include "simd_each.h"

int tinyeff_batchnorm_train_f32(const float *x, const float *gamma, const float *beta,
                                const float *residual, int64_t relu, int64_t n, int64_t c,
                                int64_t hw, double eps, int64_t isa, float *y, float *mean,
                                float *var, float *invstd)
{
    if (n < 1 || c < 1 || hw < 1 || !(eps >= 0.0) || !TE_ISA_OK(isa))
        return 1;
    #pragma omp parallel for schedule(static) if (n * c * hw >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t ch = 0; ch < c; ch++) {
#ifdef __x86_64__
        if (TE_ISA_HAS_AVX512(isa)) {
            bn_forward_channel_avx512(x, gamma, beta, residual, relu, n, c, hw, ch, eps, y, mean, var,
                                    invstd);
            continue;
        }
        if (TE_ISA_HAS_AVX2(isa)) {
            bn_forward_channel_avx2(x, gamma, beta, residual, relu, n, c, hw, ch, eps, y, mean, var,
                                    invstd);
            continue;
        }
#endif
#ifdef __aarch64__
        if (TE_ISA_HAS_NEON(isa)) {
            bn_forward_channel_neon(x, gamma, beta, residual, relu, n, c, hw, ch, eps, y, mean, var,
                                    invstd);
            continue;
        }
#endif
        forward_channel(x, gamma, beta, residual, relu, n, c, hw, ch, eps, y, mean, var,
                                    invstd);
    }
    return 0;
}

int tinyeff_batchnorm_backward_f32(const float *grad_out, const float *x, const float *mean,
                                   const float *invstd, const float *gamma, const float *relu_beta,
                                   const float *relu_out, int64_t n, int64_t c, int64_t hw,
                                   int64_t isa, float *grad_x, float *grad_gamma, float *grad_beta,
                                   float *grad_masked)
{
    if (n < 1 || c < 1 || hw < 1 || !TE_ISA_OK(isa) || (relu_out && (relu_beta || !grad_masked)))
        return 1;
    #pragma omp parallel for schedule(static) if (n * c * hw >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t ch = 0; ch < c; ch++) {
        const float *grad_out_ch = grad_out;     /* masked first when the mask comes from the output */
        if (relu_out) {
            relu_mask_channel(grad_out, relu_out, n, c, hw, ch, grad_masked);
            grad_out_ch = grad_masked;
        }
#ifdef __x86_64__
        if (TE_ISA_HAS_AVX512(isa)) {
            bn_backward_channel_avx512(grad_out_ch, x, mean, invstd, gamma, relu_beta, n, c, hw, ch, grad_x,
                                       grad_gamma, grad_beta);
            continue;
        }
        if (TE_ISA_HAS_AVX2(isa)) {
            bn_backward_channel_avx2(grad_out_ch, x, mean, invstd, gamma, relu_beta, n, c, hw, ch, grad_x,
                                     grad_gamma, grad_beta);
            continue;
        }
#endif
#ifdef __aarch64__
        if (TE_ISA_HAS_NEON(isa)) {
            bn_backward_channel_neon(grad_out_ch, x, mean, invstd, gamma, relu_beta, n, c, hw, ch, grad_x,
                                     grad_gamma, grad_beta);
            continue;
        }
#endif
        backward_channel(grad_out_ch, x, mean, invstd, gamma, relu_beta, n, c, hw, ch, grad_x, grad_gamma,
                         grad_beta);
    }
    return 0;
}
