/* pool_vec.h: the 2x2, stride-2 max-pool (with or without argmax) written once over VL lanes.
 *
 * Included by csrc/im2col.c after simd.h, once per ISA path; needs its scalar maxpool_2x2.
 * VL windows per step: their four taps are de-interleaved from two rows of 2 * VL floats (even
 * and odd columns), then visited in the scalar loop's order with the same strict ">" from -inf,
 * so ties (first tap wins), NaN (never wins) and the all -inf window (index 0) give exactly the
 * scalar results. The compare yields an all-ones lane mask that selects both the value and its
 * index. Indices are int32 (a plane has < 2^31 elements), widened to int64 when stored. A row's
 * last step overlaps the one before it (recomputing equal values), so no load reads past the
 * row's last window; planes narrower than one vector of windows run the scalar loop.
 */
SIMD_TARGET static void V(maxpool_2x2)(const float *plane, int64_t w, int64_t oh, int64_t ow,
                                       float *out, int64_t *argmax)
{
    if (ow < VL) {
        maxpool_2x2(plane, w, oh, ow, out, argmax);
        return;
    }
    const vf lowest = V(vsplat)(-INFINITY);
    for (int64_t i = 0; i < oh; i++) {
        const float *r0 = plane + 2 * i * w, *r1 = r0 + w;
        for (int64_t j0 = 0; j0 < ow; j0 += VL) {
            const int64_t j = j0 + VL <= ow ? j0 : ow - VL;
            vf a0 = V(vload)(r0 + 2 * j), a1 = V(vload)(r0 + 2 * j + VL);
            vf b0 = V(vload)(r1 + 2 * j), b1 = V(vload)(r1 + 2 * j + VL);
            vf taps[4] = {V_EVEN(a0, a1), V_ODD(a0, a1), V_EVEN(b0, b1), V_ODD(b0, b1)};
            vi base = (int32_t)(2 * i * w + 2 * j) + 2 * V_IOTA;      /* window's top-left index */
            vi where[4] = {base, base + 1, base + (int32_t)w, base + (int32_t)w + 1};
            vf best = lowest;
            vi at = (vi){0};
            for (int k = 0; k < 4; k++) {
                vi gt = taps[k] > best;                               /* false for NaN */
                best = V(vselect)(gt, taps[k], best);
                at = (where[k] & gt) | (at & ~gt);
            }
            V(vstore)(out + i * ow + j, best);
            if (argmax != NULL)
                V(vstore_i64)(argmax + i * ow + j, at);
        }
    }
}
