/* dconv_oc_body.h: the channels-in-lanes forward tile of dconv_oc.c, written once over a vector width.
 *
 * dconv_oc.c includes this file once per ISA path, after defining:
 *   DO_SFX            name suffix of this instantiation (portable, avx2, avx512, neon)
 *   DO_TARGET         the function attribute that enables the ISA (empty for baseline code)
 *   DO_VB             vector width in bytes (16, 32 or 64); DO_VL = DO_VB / 4 floats
 *   DO_CV             vectors of output channels per register block (DO_CV * DO_VL channels)
 *   DO_P              output positions per register block
 *   DO_FMA(a, b, c)   a * b + c on vectors (one fused instruction where the ISA has one)
 * (this file undefines them at its end, so the next path defines its own)
 * The tile keeps DO_P x DO_CV accumulators in registers across all taps: per tap it loads DO_CV
 * weight vectors (DO_CV * DO_VL consecutive output channels of that tap) and broadcasts one input
 * float per position, DO_CV + DO_P loads feeding DO_P * DO_CV FMAs. Each position has its own
 * pointer, so a tile may take any positions: only the ones the layer keeps, across image
 * boundaries. Register budget: accumulators + DO_CV weights + one broadcast <= registers.
 */
#define DO_CAT2(a, b) a##_##b
#define DO_CAT(a, b) DO_CAT2(a, b)
#define DO_NAME(x) DO_CAT(x, DO_SFX)
#define DO_VL (DO_VB / 4)
#define DO_VF DO_NAME(do_vf)
#define DO_VFU DO_NAME(do_vfu)

typedef float DO_VF __attribute__((vector_size(DO_VB)));
typedef float DO_VFU __attribute__((vector_size(DO_VB), aligned(4), may_alias));   /* unaligned */

/* px[j] + off[t] is the input float tap t reads for position j; w + t * ldw the DO_CV * DO_VL
 * weights of tap t; row j of the result goes to dst + j * ldd. */
DO_TARGET static void DO_NAME(do_tile)(const float *const *px, const int64_t *off, int64_t ntaps,
                                       const float *w, int64_t ldw, float *dst, int64_t ldd)
{
    const float *p[DO_P];
    DO_VF acc[DO_P][DO_CV];
    for (int j = 0; j < DO_P; j++) {
        p[j] = px[j];
        for (int v = 0; v < DO_CV; v++)
            acc[j][v] = (DO_VF){0};
    }
    for (int64_t t = 0; t < ntaps; t++) {
        const float *wt = w + t * ldw;
        int64_t o = off[t];
        DO_VF wv[DO_CV];
        for (int v = 0; v < DO_CV; v++)
            wv[v] = *(const DO_VFU *)(wt + v * DO_VL);
        for (int j = 0; j < DO_P; j++) {
            DO_VF x = p[j][o] - (DO_VF){0};              /* a broadcast: x - (+0) is x exactly */
            for (int v = 0; v < DO_CV; v++)
                acc[j][v] = DO_FMA(wv[v], x, acc[j][v]);
        }
    }
    for (int j = 0; j < DO_P; j++)
        for (int v = 0; v < DO_CV; v++)
            *(DO_VFU *)(dst + j * ldd + v * DO_VL) = acc[j][v];
}

/* The table dconv_oc.c dispatches through. */
static const do_body DO_NAME(do_body) = {DO_NAME(do_tile), DO_CV * DO_VL, DO_P};

#undef DO_VFU
#undef DO_VF
#undef DO_VL
#undef DO_NAME
#undef DO_CAT
#undef DO_CAT2
#undef DO_SFX
#undef DO_TARGET
#undef DO_VB
#undef DO_CV
#undef DO_P
#undef DO_FMA
