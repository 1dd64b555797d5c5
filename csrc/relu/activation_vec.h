/* activation_vec.h: ReLU forward and backward over VL lanes, one block of a thread's share.
 *
 * Included by csrc/relu/relu.c after simd.h, once per ISA path. Same rules as its scalar loops:
 * forward keeps NaN (x < 0 is false for NaN); backward multiplies by 1.0f or 0.0f, built from the
 * bits of out (a float is > 0 iff its int32 pattern lies in (0, 0x7F800000]), so a NaN or inf
 * gradient where out <= 0 still gives NaN, as g * (out > 0) does in NumPy.
 */
SIMD_TARGET static void V(relu_block)(const float *x, int64_t n, float *y)
{
    int64_t i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {   /* two vectors per step: two loads in flight */
        vf a = V(vload)(x + i), b = V(vload)(x + i + VL);
        V(vstore)(y + i, V(vselect)(a < 0.0f, (vf){0}, a));
        V(vstore)(y + i + VL, V(vselect)(b < 0.0f, (vf){0}, b));
    }
    for (; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

SIMD_TARGET static void V(relu_backward_block)(const float *g, const float *out, int64_t n, float *gx)
{
    const vi one = (vi)V(vsplat)(1.0f);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        vi bits = V(vload_i)((const int32_t *)out + i);
        vi keep = (bits > 0) & (bits <= 0x7F800000);            /* all ones where out > 0 */
        V(vstore)(gx + i, V(vload)(g + i) * (vf)(keep & one));
    }
    const int32_t *bits = (const int32_t *)out;
    for (; i < n; i++)
        gx[i] = g[i] * (float)((bits[i] > 0) & (bits[i] <= 0x7F800000));
}
