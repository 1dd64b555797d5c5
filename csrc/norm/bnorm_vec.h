/* bnorm_vec.h: one channel of batch norm's forward and backward, written once over the vector width.
 *
 * Included by csrc/norm/bnorm.c after simd.h, once per ISA path; needs bnorm.c's bn_stats and
 * bn_backward_constants. Same two passes and the same double-precision shifted sums as the portable
 * loops. The sums are the speed limit (a chain of dependent vector adds): the portable loop has one
 * chain; here four independent chains of VD doubles each run in parallel (4 x 8 doubles in flight
 * on AVX-512), added together at the end of the channel. The write pass uses the same float32
 * formula as the portable loop, lane by lane, so y and grad_x differ across paths only through the
 * order of the double sums.
 */
SIMD_INLINE double V(bn_hsum)(vd a, vd b, vd c, vd d)
{
    vd s = (a + b) + (c + d);
    double total = 0.0;
    for (int k = 0; k < VD; k++)
        total += s[k];
    return total;
}

SIMD_TARGET static void V(bn_forward_channel)(const float *x, const float *gamma, const float *beta,
                                              int64_t n, int64_t c, int64_t hw, int64_t ch,
                                              double eps, float *y, float *mean, float *var,
                                              float *invstd)
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
        int64_t i = 0;
        for (; i + VL <= hw; i += VL)
            V(vstore)(yp + i, (V(vload)(xp + i) - mu) * scale + offset);
        for (; i < hw; i++)
            yp[i] = (xp[i] - mu) * scale + offset;
    }
}

SIMD_TARGET static void V(bn_backward_channel)(const float *grad_out, const float *x,
                                               const float *mean, const float *invstd,
                                               const float *gamma, int64_t n, int64_t c,
                                               int64_t hw, int64_t ch, float *grad_x,
                                               float *grad_gamma, float *grad_beta)
{
    const double mu = (double)mean[ch];
    vd sg[4] = {{0}}, sgd[4] = {{0}};            /* sum(g), sum(g * (x - mean)) */
    double tg = 0.0, tgd = 0.0;
    for (int64_t b = 0; b < n; b++) {
        const float *gp = grad_out + (b * c + ch) * hw, *xp = x + (b * c + ch) * hw;
        int64_t i = 0;
        for (; i + 4 * VD <= hw; i += 4 * VD)
            for (int u = 0; u < 4; u++) {
                vd g = V(vload_f2d)(gp + i + u * VD);
                sg[u] += g;
                sgd[u] += g * (V(vload_f2d)(xp + i + u * VD) - mu);
            }
        for (; i < hw; i++) {
            tg += (double)gp[i];
            tgd += (double)gp[i] * ((double)xp[i] - mu);
        }
    }
    float fa, fb, fk;
    bn_backward_constants(V(bn_hsum)(sg[0], sg[1], sg[2], sg[3]) + tg,
                          V(bn_hsum)(sgd[0], sgd[1], sgd[2], sgd[3]) + tgd, (double)(n * hw), ch,
                          invstd, gamma, grad_gamma, grad_beta, &fa, &fb, &fk);
    const float fmu = mean[ch];
    for (int64_t b = 0; b < n; b++) {
        const float *gp = grad_out + (b * c + ch) * hw, *xp = x + (b * c + ch) * hw;
        float *gxp = grad_x + (b * c + ch) * hw;
        int64_t i = 0;
        for (; i + VL <= hw; i += VL)
            V(vstore)(gxp + i, fa * V(vload)(gp + i) + fb * (V(vload)(xp + i) - fmu) + fk);
        for (; i < hw; i++)
            gxp[i] = fa * gp[i] + fb * (xp[i] - fmu) + fk;
    }
}
