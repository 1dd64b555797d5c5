/* bnorm_vec.h: one channel of batch norm's forward and backward, written once over the vector width.
 *
 * Included by csrc/norm/bnorm.c after simd.h, once per ISA path; needs bnorm.c's bn_stats and
 * bn_backward_constants. Same two passes and the same double-precision shifted sums as the portable
 * loops. The sums are the speed limit (a chain of dependent vector adds): the portable loop has one
 * chain; here four independent chains of VD doubles each run in parallel (4 x 8 doubles in flight
 * on AVX-512), added together at the end of the channel. The write pass uses the same float32
 * formula as the portable loop, lane by lane, so y and grad_x differ across paths only through the
 * order of the double sums. The fused epilogues (residual, ReLU, the backward's ReLU mask) work on
 * float32 vectors; the masked backward first writes g * mask for a chunk of the plane into a
 * buffer on the stack (in L1) and sums that, so the double sums stay one loop.
 */
#define BN_CHUNK 256                             /* floats: a multiple of 4 * VD at every width */

/* Four chains of sum(g) and sum(g * (x - mu)) over len values (scalar tails into tg, tgd). */
SIMD_INLINE void V(bn_grad_sums)(const float *gp, const float *xp, int64_t len, double mu, vd *sg,
                                 vd *sgd, double *tg, double *tgd)
{
    int64_t i = 0;
    for (; i + 4 * VD <= len; i += 4 * VD)
        for (int u = 0; u < 4; u++) {
            vd g = V(vload_f2d)(gp + i + u * VD);
            sg[u] += g;
            sgd[u] += g * (V(vload_f2d)(xp + i + u * VD) - mu);
        }
    for (; i < len; i++) {
        *tg += (double)gp[i];
        *tgd += (double)gp[i] * ((double)xp[i] - mu);
    }
}

/* g where the forward's ReLU output (x - mu) * scale + offset was > 0, else g * 0. */
SIMD_INLINE vf V(bn_mask)(vf g, vf x, float mu, float scale, float offset)
{
    const vf v = (x - mu) * scale + offset;
    return g * V(vselect)(v > 0.0f, V(vsplat)(1.0f), (vf){0});
}
SIMD_INLINE double V(bn_hsum)(vd a, vd b, vd c, vd d)
{
    vd s = (a + b) + (c + d);
    double total = 0.0;
    for (int k = 0; k < VD; k++)
        total += s[k];
    return total;
}

SIMD_TARGET static void V(bn_forward_channel)(const float *x, const float *gamma, const float *beta,
                                              const float *residual, int64_t relu, int64_t n,
                                              int64_t c, int64_t hw, int64_t ch, double eps,
                                              float *y, float *mean, float *var, float *invstd)
{
    const double shift = (double)x[ch * hw];     /* first value of the channel */
    vd s1[4] = {{0}}, s2[4] = {{0}};
    double t1 = 0.0, t2 = 0.0;
    for (int64_t b = 0; b < n; b++) {
        const float *xp = x + (b * c + ch) * hw;
        int64_t i = 0;
        for (; i + 4 * VD <= hw; i += 4 * VD)
            for (int u = 0; u < 4; u++) {
                vd d = V(vload_f2d)(xp + i + u * VD) - shift;
                s1[u] += d;
                s2[u] += d * d;
            }
        for (; i < hw; i++) {
            double d = (double)xp[i] - shift;
            t1 += d;
            t2 += d * d;
        }
    }
    bn_stats(shift, V(bn_hsum)(s1[0], s1[1], s1[2], s1[3]) + t1,
             V(bn_hsum)(s2[0], s2[1], s2[2], s2[3]) + t2, (double)(n * hw), eps, ch, mean, var, invstd);
    const float mu = mean[ch], scale = invstd[ch] * gamma[ch], offset = beta[ch];
    for (int64_t b = 0; b < n; b++) {
        const float *xp = x + (b * c + ch) * hw;
        float *yp = y + (b * c + ch) * hw;
        const float *rp = residual ? residual + (b * c + ch) * hw : 0;
        int64_t i = 0;
        for (; i + VL <= hw; i += VL) {
            vf v = (V(vload)(xp + i) - mu) * scale + offset;
            if (rp)
                v += V(vload)(rp + i);
            if (relu)
                v = V(vselect)(v < 0.0f, (vf){0}, v);
            V(vstore)(yp + i, v);
        }
        for (; i < hw; i++) {
            float v = (xp[i] - mu) * scale + offset;
            if (rp)
                v += rp[i];
            yp[i] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

SIMD_TARGET static void V(bn_backward_channel)(const float *grad_out, const float *x,
                                               const float *mean, const float *invstd,
                                               const float *gamma, const float *relu_beta,
                                               int64_t n, int64_t c, int64_t hw, int64_t ch,
                                               float *grad_x, float *grad_gamma, float *grad_beta)
{
    const double mu = (double)mean[ch];
    const float fmu = mean[ch], scale = invstd[ch] * gamma[ch], offset = relu_beta ? relu_beta[ch] : 0.0f;
    vd sg[4] = {{0}}, sgd[4] = {{0}};            /* sum(g), sum(g * (x - mean)) */
    double tg = 0.0, tgd = 0.0;
    float masked[BN_CHUNK];
    for (int64_t b = 0; b < n; b++) {
        const float *gp = grad_out + (b * c + ch) * hw, *xp = x + (b * c + ch) * hw;
        if (!relu_beta) {
            V(bn_grad_sums)(gp, xp, hw, mu, sg, sgd, &tg, &tgd);
            continue;
        }
        for (int64_t j = 0; j < hw; j += BN_CHUNK) {
            const int64_t len = hw - j < BN_CHUNK ? hw - j : BN_CHUNK;
            int64_t i = 0;
            for (; i + VL <= len; i += VL)
                V(vstore)(masked + i, V(bn_mask)(V(vload)(gp + j + i), V(vload)(xp + j + i), fmu, scale, offset));
            for (; i < len; i++)
                masked[i] = bn_relu_masked(gp[j + i], xp[j + i], fmu, scale, offset);
            V(bn_grad_sums)(masked, xp + j, len, mu, sg, sgd, &tg, &tgd);
        }
    }
    float fa, fb, fk;
    bn_backward_constants(V(bn_hsum)(sg[0], sg[1], sg[2], sg[3]) + tg,
                          V(bn_hsum)(sgd[0], sgd[1], sgd[2], sgd[3]) + tgd, (double)(n * hw), ch,
                          invstd, gamma, grad_gamma, grad_beta, &fa, &fb, &fk);
    for (int64_t b = 0; b < n; b++) {
        const float *gp = grad_out + (b * c + ch) * hw, *xp = x + (b * c + ch) * hw;
        float *gxp = grad_x + (b * c + ch) * hw;
        int64_t i = 0;
        for (; i + VL <= hw; i += VL) {
            const vf xv = V(vload)(xp + i);
            vf g = V(vload)(gp + i);
            if (relu_beta)
                g = V(bn_mask)(g, xv, fmu, scale, offset);
            V(vstore)(gxp + i, fa * g + fb * (xv - fmu) + fk);
        }
        for (; i < hw; i++) {
            const float g = relu_beta ? bn_relu_masked(gp[i], xp[i], fmu, scale, offset) : gp[i];
            gxp[i] = fa * g + fb * (xp[i] - fmu) + fk;
        }
    }
}
