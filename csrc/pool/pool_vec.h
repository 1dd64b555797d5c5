/* pool_vec.h: the 2x2, stride-2 max-pool (with or without argmax) and the zero padding of the direct
 * conv layout, written once over VL lanes.
 *
 * Included by csrc/pool/pool.c after simd.h, once per ISA path. VL windows per step: their four taps
 * are de-interleaved from two rows of 2 * VL floats (even and odd columns), then visited in the
 * scalar loop's order with the same strict ">" from -inf, so ties (first tap wins), NaN (never
 * wins) and the all -inf window (index 0) give exactly the scalar results. The compare yields a
 * lane mask (simd.h's vm: a k-register on AVX-512, all-ones lanes elsewhere) that selects both the
 * value and its index (the all-ones form cost the AVX-512 body ~20%: two xors a select and the
 * compare repeated). Indices are int32 (a plane has
 * < 2^31 elements), widened to int64 when stored. A row's last n < VL windows use partial loads
 * and stores (simd.h), so no access goes past the row's last window and narrow planes (the seed
 * CNN's 13 or 15 windows a row) still run whole vectors.
 */
SIMD_INLINE void V(pool_step)(const float *r0, const float *r1, int64_t top_left, int64_t w,
                              int64_t n, float *out, int64_t *argmax)
{
    vf a0, a1, b0, b1;
    if (n == VL) {
        a0 = V(vload)(r0), a1 = V(vload)(r0 + VL), b0 = V(vload)(r1), b1 = V(vload)(r1 + VL);
    } else {                                  /* 2n taps a row: lanes past them are never stored */
        int64_t lo = 2 * n < VL ? 2 * n : VL, hi = 2 * n - lo;
        a0 = V(vload_part)(r0, lo), a1 = V(vload_part)(r0 + VL, hi);
        b0 = V(vload_part)(r1, lo), b1 = V(vload_part)(r1 + VL, hi);
    }
    vf taps[4] = {V_EVEN(a0, a1), V_ODD(a0, a1), V_EVEN(b0, b1), V_ODD(b0, b1)};
    vi base = (int32_t)top_left + 2 * V_IOTA;                       /* each window's top-left index */
    vi where[4] = {base, base + 1, base + (int32_t)w, base + (int32_t)w + 1};
    vf best = V(vsplat)(-INFINITY);
    vi at = (vi){0};
    for (int k = 0; k < 4; k++) {
        vm gt = V(vgt)(taps[k], best);                               /* false for NaN */
        best = V(vpick)(gt, taps[k], best);
        at = V(vpick_i)(gt, where[k], at);
    }
    if (n == VL) {
        V(vstore)(out, best);
        if (argmax != NULL)
            V(vstore_i64)(argmax, at);
    } else {
        V(vstore_part)(out, best, n);
        if (argmax != NULL)
            V(vstore_i64_part)(argmax, at, n);
    }
}

SIMD_TARGET static void V(maxpool_2x2)(const float *plane, int64_t w, int64_t oh, int64_t ow,
                                       float *out, int64_t *argmax)
{
    for (int64_t i = 0; i < oh; i++) {
        const float *r0 = plane + 2 * i * w, *r1 = r0 + w;
        float *o = out + i * ow;
        int64_t *a = argmax == NULL ? NULL : argmax + i * ow;
        int64_t j = 0;
        for (; j + VL <= ow; j += VL)
            V(pool_step)(r0 + 2 * j, r1 + 2 * j, 2 * i * w + 2 * j, w, VL, o + j, a == NULL ? NULL : a + j);
        if (j < ow)
            V(pool_step)(r0 + 2 * j, r1 + 2 * j, 2 * i * w + 2 * j, w, ow - j, o + j, a == NULL ? NULL : a + j);
    }
}

/* ---- zero padding of one H x W plane into (H + 2p) x (W + 2p) ---------------------------------------
 * One pass of whole-vector stores: the right padding of a row and the left padding of the next are
 * 2p adjacent zeros, the row itself a vector copy with a partial last vector. The libc version
 * (memset | memcpy | memset per row) spends more time in calls than in moving bytes on the narrow
 * planes of a CNN (32 floats a row). */
SIMD_TARGET static void V(pad_plane)(const float *src, int64_t h, int64_t w, int64_t pad, float *dst)
{
    const int64_t wp = w + 2 * pad;
    const vf zero = (vf){0};
    if (h == 0) {                                                      /* only padding rows */
        memset(dst, 0, (size_t)(2 * pad * wp) * sizeof(float));
        return;
    }
    memset(dst, 0, (size_t)(pad * wp + pad) * sizeof(float));       /* top rows, first left pad */
    for (int64_t i = 0; i < h; i++) {
        const float *s = src + i * w;
        float *d = dst + (pad + i) * wp + pad;
        int64_t j = 0;
        for (; j + VL <= w; j += VL)
            V(vstore)(d + j, V(vload)(s + j));
        if (j < w)
            V(vstore_part)(d + j, V(vload_part)(s + j, w - j), w - j);
        float *gap = d + w;                                            /* right pad + next left pad */
        const int64_t zeros = i + 1 < h ? 2 * pad : pad;
        int64_t q = 0;
        for (; q + VL <= zeros; q += VL)
            V(vstore)(gap + q, zero);
        if (q < zeros)
            V(vstore_part)(gap + q, zero, zeros - q);
    }
    memset(dst + (pad + h) * wp, 0, (size_t)(pad * wp) * sizeof(float)); /* bottom rows */
}
