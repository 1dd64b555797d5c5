/* gemm_s8_neon.h: the ARM64 register tiles of gemm_s8.c (included there; aarch64 only).
 *
 * The one idea: pack_s8's 16-byte unit (4 columns x 4 k) is exactly what `sdot` consumes: lane j
 * of vdotq_s32(acc, b, a) gains the 4-product sum of column j against 4 bytes of A broadcast to
 * every lane. sdot multiplies signed by signed, so A is taken as a - 128 (a xor 0x80 read as int8)
 * and gemm_s8.c adds 128 * colsum afterwards (corr = -128, wrapping int32 arithmetic, exact
 * because the true sum fits int32). Signed A (gemm_s8) needs no flip.
 *
 * Without the dot-product extension (path neon): vmull_s8 multiplies 8 signed bytes into int16
 * (|p| <= 128 * 128, no overflow) and vpadalq_s16 adds adjacent products into int32 lanes
 * (column, k01) and (column, k23), which vpaddq_s32 folds per column at the end: the
 * smull + sadalp pair, 16 multiply-adds per 4 instructions.
 *
 * Rows arrive as pointers and segments, as for the x86 tiles (see gemm_s8.c).
 */
#ifndef TINYEFF_GEMM_S8_NEON_H
#define TINYEFF_GEMM_S8_NEON_H
#include <arm_neon.h>

#define NEON_DOT_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))  /* gcc 12: "+dotprod" alone fails to inline vdotq_s32 */

/* Row I, one group of 4 k: 4 bytes of A (flipped to signed) against the 4 B vectors. */
#define NEON_DOT_ROW_STEP(I, ACC, LOAD_A)                                                         \
    if (mr > (I)) {                                                                               \
        int8x16_t av = vreinterpretq_s8_u32(vdupq_n_u32((uint32_t)LOAD_A(I) ^ flip));             \
        ACC[0] = vdotq_s32(ACC[0], b0, av); ACC[1] = vdotq_s32(ACC[1], b1, av);                   \
        ACC[2] = vdotq_s32(ACC[2], b2, av); ACC[3] = vdotq_s32(ACC[3], b3, av);                   \
    }

#define NEON_STORE_ROW(I, ACC)                                                                    \
    if (mr > (I)) {                                                                               \
        for (int q = 0; q < 4; q++) vst1q_s32(tile + (I) * PANEL + 4 * q, ACC[q]);                \
    }

/* mr rows x 16 columns: 24 accumulators + 4 B vectors + 1 broadcast of 32 registers. */
NEON_DOT_TARGET static inline __attribute__((always_inline)) void
tile_neon_dot_fixed(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k, const int8_t *bp,
                    int64_t w, const int mr, const int a_signed, const int has_tail, int32_t *tile) {
    const uint32_t flip = a_signed ? 0 : 0x80808080u;
    const int32x4_t zero = vdupq_n_s32(0);
    int32x4_t acc0[4] = {zero, zero, zero, zero}, acc1[4] = {zero, zero, zero, zero};
    int32x4_t acc2[4] = {zero, zero, zero, zero}, acc3[4] = {zero, zero, zero, zero};
    int32x4_t acc4[4] = {zero, zero, zero, zero}, acc5[4] = {zero, zero, zero, zero};
    int64_t kg = k_groups(k), kfull = k / 4;
    int32_t tail[MR] = {0};
    if (has_tail)
        for (int i = 0; i < mr; i++) tail[i] = load_group(rows[i], kfull, k);
    const uint8_t *r0 = rows[0], *r1 = rows[mr > 1 ? 1 : 0], *r2 = rows[mr > 2 ? 2 : 0];
    const uint8_t *r3 = rows[mr > 3 ? 3 : 0], *r4 = rows[mr > 4 ? 4 : 0], *r5 = rows[mr > 5 ? 5 : 0];
    const int8_t *b = bp;
    for (int64_t s = 0; s < nseg; s++) {
        for (int64_t g = 0; g < kg; g++, b += w * 4) {
            int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16), b2 = vld1q_s8(b + 32), b3 = vld1q_s8(b + 48);
#define LOAD_A(i) (!has_tail || g < kfull ? load4(r##i + 4 * g) : tail[i])
            NEON_DOT_ROW_STEP(0, acc0, LOAD_A) NEON_DOT_ROW_STEP(1, acc1, LOAD_A)
            NEON_DOT_ROW_STEP(2, acc2, LOAD_A) NEON_DOT_ROW_STEP(3, acc3, LOAD_A)
            NEON_DOT_ROW_STEP(4, acc4, LOAD_A) NEON_DOT_ROW_STEP(5, acc5, LOAD_A)
#undef LOAD_A
        }
        r0 += seg_stride; r1 += seg_stride; r2 += seg_stride;
        r3 += seg_stride; r4 += seg_stride; r5 += seg_stride;
    }
    NEON_STORE_ROW(0, acc0) NEON_STORE_ROW(1, acc1) NEON_STORE_ROW(2, acc2)
    NEON_STORE_ROW(3, acc3) NEON_STORE_ROW(4, acc4) NEON_STORE_ROW(5, acc5)
}

#define NEON_DOT_CASE(MRV)                                                                         \
    case MRV:                                                                                      \
        if (a_signed) tile_neon_dot_fixed(rows, nseg, seg_stride, k, bp, w, MRV, 1, k % 4 != 0, tile); \
        else if (k % 4) tile_neon_dot_fixed(rows, nseg, seg_stride, k, bp, w, MRV, 0, 1, tile);    \
        else tile_neon_dot_fixed(rows, nseg, seg_stride, k, bp, w, MRV, 0, 0, tile);               \
        break;

NEON_DOT_TARGET static void tile_neon_dot16(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride,
                                            int64_t k, const int8_t *bp, int64_t w, int mr, int a_signed,
                                            int32_t *tile) {
    switch (mr) {
        NEON_DOT_CASE(1) NEON_DOT_CASE(2) NEON_DOT_CASE(3) NEON_DOT_CASE(4) NEON_DOT_CASE(5) NEON_DOT_CASE(6)
        default: break;                    /* unreachable: 1 <= mr <= MR */
    }
}

/* Widening tile: up to 2 rows x 16 columns, 8 accumulators per row (column pairs k01 / k23). */
static void tile_neon_widen16(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k,
                              const int8_t *bp, int64_t w, int mr, int a_signed, int32_t *tile) {
    const uint32_t flip = a_signed ? 0 : 0x80808080u;
    int64_t kg = k_groups(k);
    int32x4_t acc[2][8];
    for (int r = 0; r < 2; r++)
        for (int q = 0; q < 8; q++) acc[r][q] = vdupq_n_s32(0);
    const int8_t *b = bp;
    for (int64_t s = 0; s < nseg; s++)
        for (int64_t g = 0; g < kg; g++, b += w * 4) {
            int8x16_t bv[4] = {vld1q_s8(b), vld1q_s8(b + 16), vld1q_s8(b + 32), vld1q_s8(b + 48)};
            for (int r = 0; r < mr; r++) {
                uint32_t x = (uint32_t)load_group(rows[r] + s * seg_stride, g, k) ^ flip;
                int8x16_t av = vreinterpretq_s8_u32(vdupq_n_u32(x));
                for (int q = 0; q < 4; q++) {
                    acc[r][2 * q] = vpadalq_s16(acc[r][2 * q], vmull_s8(vget_low_s8(bv[q]), vget_low_s8(av)));
                    acc[r][2 * q + 1] = vpadalq_s16(acc[r][2 * q + 1], vmull_high_s8(bv[q], av));
                }
            }
        }
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < 4; q++)   /* (c0 k01, c0 k23, c1 k01, c1 k23) + (c2 .., c3 ..) -> c0..c3 */
            vst1q_s32(tile + r * PANEL + 4 * q, vpaddq_s32(acc[r][2 * q], acc[r][2 * q + 1]));
}

/* mr <= MR rows x one panel of width w, 16-column groups. */
static void tile_neon(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k, const int8_t *bp,
                      int64_t w, int mr, int a_signed, int dot, int32_t *tile) {
    for (int64_t v = 0; v < w / 16; v++) {
        if (dot) {
            tile_neon_dot16(rows, nseg, seg_stride, k, bp + 64 * v, w, mr, a_signed, tile + 16 * v);
            continue;
        }
        for (int i0 = 0; i0 < mr; i0 += 2)
            tile_neon_widen16(rows + i0, nseg, seg_stride, k, bp + 64 * v, w, mr - i0 < 2 ? mr - i0 : 2, a_signed,
                              tile + i0 * PANEL + 16 * v);
    }
}

#endif
