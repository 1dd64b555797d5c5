/* spconv_vec.h: the sparse row loops of spconv.c written once over a vector of VL lanes.
 *
 * Included by csrc/sparse/spconv.c after simd.h, once per ISA path (AVX-512, AVX2, NEON), with SP_NV (the
 * tile's vectors: as many as leave registers for two accumulator sets) defined. Needs spconv.c's
 * portable helpers (sp_row_f32_c, sp_row_s32_c, the store functions, sp_rows) declared first.
 *
 * The tile of NV vectors stays in registers while the row's nonzeros stream through it. Tails need
 * no masks: the last vector of a tile starts at cnt - VL instead of (NV - 1) * VL, overlapping the
 * one before it. Both compute the shared positions from the same products in the same order, so
 * the overlap rewrites equal values, and no load ever reads past the row's run. Rows shorter than
 * one vector (the seed CNN's last conv: 13 positions; a linear layer with batch < VL) run the next
 * narrower body, SP_NARROW_F32 / SP_NARROW_S32 (AVX-512 -> AVX2 -> portable).
 */

/* One tile: cnt (>= VL) positions from p0, NV vectors; NV is a constant after inlining. */
SIMD_INLINE void V(sp_tile_f32)(const int64_t *off, const float *val, int64_t nnz, const float *src,
                                int64_t p0, int64_t cnt, float *tile, const int NV)
{
    vf a0[SP_NV], a1[SP_NV];
    int64_t at[SP_NV];
    for (int k = 0; k < NV; k++) {
        a0[k] = a1[k] = (vf){0};
        at[k] = k < NV - 1 ? k * VL : cnt - VL;          /* the last vector ends at cnt */
    }
    int64_t j = 0;
    for (; j + 1 < nnz; j += 2) {            /* even and odd nonzeros: two independent FMA chains */
        const float *s0 = src + off[j] + p0, *s1 = src + off[j + 1] + p0;
        vf v0 = V(vsplat)(val[j]), v1 = V(vsplat)(val[j + 1]);
        for (int k = 0; k < NV; k++) {
            a0[k] = V(vfma)(v0, V(vload)(s0 + at[k]), a0[k]);
            a1[k] = V(vfma)(v1, V(vload)(s1 + at[k]), a1[k]);
        }
    }
    if (j < nnz) {
        const float *s0 = src + off[j] + p0;
        vf v0 = V(vsplat)(val[j]);
        for (int k = 0; k < NV; k++)
            a0[k] = V(vfma)(v0, V(vload)(s0 + at[k]), a0[k]);
    }
    for (int k = 0; k < NV; k++)
        V(vstore)(tile + at[k], a0[k] + a1[k]);
}

/* sp_pool_store_f32 for 2x2 windows, VL pooled outputs per step: the max of two input rows, then
 * of their even and odd columns. Loads reach at most 2 * VL floats past the last window (the
 * scratch plane has a tile of slack); a row's last step overlaps the one before it. */
SIMD_TARGET static void V(sp_pool2_store_f32)(const float *plane, int64_t ws, int64_t oh,
                                              int64_t ow_valid, float b, int64_t relu, float *out,
                                              int64_t os_h)
{
    const int64_t ph = oh / 2, pw = ow_valid / 2;
    if (pw < VL) {
        sp_pool_store_f32(plane, ws, oh, ow_valid, 2, b, relu, out, os_h);
        return;
    }
    const vf bias = V(vsplat)(b), zero = (vf){0};
    for (int64_t i = 0; i < ph; i++) {
        const float *r0 = plane + 2 * i * ws, *r1 = r0 + ws;
        for (int64_t j0 = 0; j0 < pw; j0 += VL) {
            int64_t j = j0 + VL <= pw ? j0 : pw - VL;
            vf lo = V(vmax)(V(vload)(r0 + 2 * j), V(vload)(r1 + 2 * j));
            vf hi = V(vmax)(V(vload)(r0 + 2 * j + VL), V(vload)(r1 + 2 * j + VL));
            vf m = V(vmax)(V_EVEN(lo, hi), V_ODD(lo, hi)) + bias;
            if (relu)
                m = V(vmax)(m, zero);
            V(vstore)(out + i * os_h + j, m);
        }
    }
}

SIMD_TARGET static void V(sp_row_f32)(const int64_t *off, const float *val, int64_t nnz,
                                      const float *src, int64_t length, int64_t ws, int64_t ow_valid,
                                      float b, int64_t relu, int64_t pool, float *plane, float *out,
                                      int64_t os_h, int64_t os_w)
{
    if (length < VL) {
        SP_NARROW_F32(off, val, nnz, src, length, ws, ow_valid, b, relu, pool, plane, out, os_h, os_w);
        return;
    }
    float buf[SP_NV * VL];
    for (int64_t p0 = 0; p0 < length; p0 += SP_NV * VL) {
        int64_t cnt = length - p0 < SP_NV * VL ? length - p0 : SP_NV * VL;
        if (cnt < VL)                        /* a short last tile: end it at the run's end */
            p0 = length - (cnt = VL);
        float *tile = pool > 1 ? plane + p0 : buf;      /* pooling: keep the whole plane */
        switch ((cnt + VL - 1) / VL) {       /* one specialised body per tile width */
        case 1: V(sp_tile_f32)(off, val, nnz, src, p0, cnt, tile, 1); break;
        case 2: V(sp_tile_f32)(off, val, nnz, src, p0, cnt, tile, 2); break;
        case 3: V(sp_tile_f32)(off, val, nnz, src, p0, cnt, tile, 3); break;
        case 4: V(sp_tile_f32)(off, val, nnz, src, p0, cnt, tile, 4); break;
        case 5: V(sp_tile_f32)(off, val, nnz, src, p0, cnt, tile, 5); break;
#if SP_NV > 6
        case 6: V(sp_tile_f32)(off, val, nnz, src, p0, cnt, tile, 6); break;
        case 7: V(sp_tile_f32)(off, val, nnz, src, p0, cnt, tile, 7); break;
#endif
        default: V(sp_tile_f32)(off, val, nnz, src, p0, cnt, tile, SP_NV); break;
        }
        if (pool == 1)
            sp_store_f32(tile, p0, cnt, ws, ow_valid, b, relu, out, os_h, os_w);
    }
    if (pool == 2)
        V(sp_pool2_store_f32)(plane, ws, sp_rows(length, ws, ow_valid), ow_valid, b, relu, out, os_h);
    else if (pool > 2)
        sp_pool_store_f32(plane, ws, sp_rows(length, ws, ow_valid), ow_valid, pool, b, relu, out, os_h);
}

/* ---- u8 x s8 -> int32: two nonzeros per step ----------------------------------------------------
 * x86: the u8 activations of two runs become int16 pairs in each int32 lane (x0 | x1 << 16; both
 * are 0..255), and one vpmaddwd with the broadcast weight pair (w0, w1) gives x0 * w0 + x1 * w1:
 * exact, 16 x 16 -> 32-bit products (|sum| <= 2 * 255 * 128). One multiply per two nonzeros,
 * where widening each to int32 needs a 32-bit multiply (vpmulld: two uops) per nonzero.
 * ARM64: no pair instruction short of sdot; widened lanes and two multiply-accumulates. */
#if defined(SIMD_AVX512)
SIMD_INLINE vi V(sp_pair)(vi acc, vi x0, vi x1, int32_t w0, int32_t w1)
{
    vi wpair = (vi){0} + (int32_t)(((uint32_t)(uint16_t)w0) | ((uint32_t)w1 << 16));
    return acc + (vi)_mm512_madd_epi16((__m512i)(x0 | (x1 << 16)), (__m512i)wpair);
}
#elif defined(SIMD_AVX2)
SIMD_INLINE vi V(sp_pair)(vi acc, vi x0, vi x1, int32_t w0, int32_t w1)
{
    vi wpair = (vi){0} + (int32_t)(((uint32_t)(uint16_t)w0) | ((uint32_t)w1 << 16));
    return acc + (vi)_mm256_madd_epi16((__m256i)(x0 | (x1 << 16)), (__m256i)wpair);
}
#else
SIMD_INLINE vi V(sp_pair)(vi acc, vi x0, vi x1, int32_t w0, int32_t w1)
{
    return acc + x0 * w0 + x1 * w1;
}
#endif

SIMD_INLINE void V(sp_tile_s32)(const int64_t *off, const int8_t *val, int64_t nnz,
                                const uint8_t *src, int64_t p0, int64_t cnt, int32_t *tile,
                                const int NV)
{
    vi acc[SP_NV];
    int64_t at[SP_NV];
    for (int k = 0; k < NV; k++) {
        acc[k] = (vi){0};
        at[k] = k < NV - 1 ? k * VL : cnt - VL;
    }
    int64_t j = 0;
    for (; j + 1 < nnz; j += 2) {
        const uint8_t *s0 = src + off[j] + p0, *s1 = src + off[j + 1] + p0;
        for (int k = 0; k < NV; k++)
            acc[k] = V(sp_pair)(acc[k], V(vload_u8)(s0 + at[k]), V(vload_u8)(s1 + at[k]), val[j],
                                val[j + 1]);
    }
    if (j < nnz) {                           /* an odd count: the last nonzero pairs with zeros */
        const uint8_t *s0 = src + off[j] + p0;
        for (int k = 0; k < NV; k++)
            acc[k] = V(sp_pair)(acc[k], V(vload_u8)(s0 + at[k]), (vi){0}, val[j], 0);
    }
    for (int k = 0; k < NV; k++)
        V(vstore_i)(tile + at[k], acc[k]);
}

SIMD_TARGET static void V(sp_row_s32)(const int64_t *off, const int8_t *val, int64_t nnz,
                                      const uint8_t *src, int64_t length, int64_t ws,
                                      int64_t ow_valid, int32_t b, int32_t *out, int64_t os_h,
                                      int64_t os_w)
{
    if (length < VL) {
        SP_NARROW_S32(off, val, nnz, src, length, ws, ow_valid, b, out, os_h, os_w);
        return;
    }
    int32_t tile[SP_NV * VL];
    for (int64_t p0 = 0; p0 < length; p0 += SP_NV * VL) {
        int64_t cnt = length - p0 < SP_NV * VL ? length - p0 : SP_NV * VL;
        if (cnt < VL)
            p0 = length - (cnt = VL);
        switch ((cnt + VL - 1) / VL) {
        case 1: V(sp_tile_s32)(off, val, nnz, src, p0, cnt, tile, 1); break;
        case 2: V(sp_tile_s32)(off, val, nnz, src, p0, cnt, tile, 2); break;
        case 3: V(sp_tile_s32)(off, val, nnz, src, p0, cnt, tile, 3); break;
        case 4: V(sp_tile_s32)(off, val, nnz, src, p0, cnt, tile, 4); break;
        case 5: V(sp_tile_s32)(off, val, nnz, src, p0, cnt, tile, 5); break;
#if SP_NV > 6
        case 6: V(sp_tile_s32)(off, val, nnz, src, p0, cnt, tile, 6); break;
        case 7: V(sp_tile_s32)(off, val, nnz, src, p0, cnt, tile, 7); break;
#endif
        default: V(sp_tile_s32)(off, val, nnz, src, p0, cnt, tile, SP_NV); break;
        }
        sp_store_s32(tile, p0, cnt, ws, ow_valid, b, out, os_h, os_w);
    }
}

#if defined(SIMD_AVX512) || defined(SIMD_AVX2)
#define SP_NW (SP_NV / 2)         /* int16 vectors a tile: each covers 2 * VL positions */
#include "sptile16.h"

/* One row on the int16 source; rows shorter than one int16 vector take the u8 loop above. */
SIMD_TARGET static void V(sp_row_s16)(const int64_t *off, const int8_t *val, int64_t nnz,
                                      const int16_t *src16, const uint8_t *src8, int64_t length,
                                      int64_t ws, int64_t ow_valid, int32_t b, int32_t *out,
                                      int64_t os_h, int64_t os_w)
{
    if (length < 2 * VL) {
        V(sp_row_s32)(off, val, nnz, src8, length, ws, ow_valid, b, out, os_h, os_w);
        return;
    }
    int32_t tile[SP_NW * 2 * VL];
    for (int64_t p0 = 0; p0 < length; p0 += SP_NW * 2 * VL) {
        int64_t cnt = length - p0 < SP_NW * 2 * VL ? length - p0 : SP_NW * 2 * VL;
        if (cnt < 2 * VL)
            p0 = length - (cnt = 2 * VL);
        switch ((cnt + 2 * VL - 1) / (2 * VL)) {
        case 1: V(sp16_tile)(off, val, nnz, src16, p0, cnt, tile, 1); break;
        case 2: V(sp16_tile)(off, val, nnz, src16, p0, cnt, tile, 2); break;
#if SP_NW > 3
        case 3: V(sp16_tile)(off, val, nnz, src16, p0, cnt, tile, 3); break;
#endif
        default: V(sp16_tile)(off, val, nnz, src16, p0, cnt, tile, SP_NW); break;
        }
        sp_store_s32(tile, p0, cnt, ws, ow_valid, b, out, os_h, os_w);
    }
}
#undef SP_NW
#endif /* x86 int16 twin */
