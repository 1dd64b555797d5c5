/* gemm_s8_avx2.h: the AVX2 register tiles of gemm_s8.c (included there; x86-64 only).
 *
 * The one idea: vpmaddubsw multiplies 32 unsigned bytes of A by 32 signed bytes of B and adds
 * adjacent products into 16 int16 lanes; vpmaddwd against int16 ones then adds adjacent int16
 * pairs into 8 int32 lanes. With B in pack_s8's layout (8 columns x 4 k per 32 bytes) and 4 bytes
 * of an A row broadcast to every lane, the two instructions leave column j's 4-product sum in
 * int32 lane j: 32 multiply-adds per 3 instructions (maddubs, maddwd, add), twice the rate of
 * widening both operands to int16 first.
 *
 * The catch: an int16 pair sum a1*w1 + a2*w2 saturates when it leaves [-32768, 32767]. With a in
 * [0, 255] it cannot when the positive weights of the pair sum to at most 128 and the negative
 * ones to at least -128 (255 * 128 = 32640); |w1| + |w2| <= 128 implies it, and 7-bit weights
 * ([-64, 63], `tinyeff quantize --weight-bits 7`) always satisfy it. pack_s8 records per 64-column
 * panel whether every pair (k = 4g, 4g+1) and (4g+2, 4g+3) of every column does
 * (PackedS8.pairs_fit); only such panels take this tile, the others the exact one below. Either
 * way the result is the exact int32 sum.
 *
 * 7-bit activations (A <= 127, checked by gemm_s8.c on the operand itself) make every pair of any
 * int8 weights fit (2 * 127 * 128 = 32512), so every panel takes this tile; and where pack_s8 found
 * that four weights of a lane over groups g and g + 1 sum to at most 258 in each sign in every one
 * of the tile's 16 columns (PackedS8.quads_fit[c, g]; 127 * 258 = 32766), the quad step adds the two
 * vpmaddubsw results as int16 before one vpmaddwd: 64 multiply-adds per 5 vector instructions
 * instead of 6. The flag is per group, so trained 8-bit weights (which break the bound at a few
 * groups of each 16 columns) take the quad step wherever it holds and single steps elsewhere: the
 * walk over a segment's groups pairs g with g + 1 when the flag allows and steps one group
 * otherwise, the same decisions for every tile of those columns, so the branches predict well.
 *
 * The exact tile widens B (16 columns x 4 k) to four int16 vectors and the 4 A bytes to int16,
 * and vpmaddwd gives lanes (column, k01) and (column, k23), added per column at the end.
 *
 * Signed A (gemm_s8): both tiles take A xor 0x80 = a + 128 as unsigned and gemm_s8.c subtracts
 * 128 * colsum afterwards (wrapping int32 arithmetic, exact since the true sum fits int32).
 * Rows arrive as pointers and segments, as for the VNNI tile: nseg segments of k bytes,
 * seg_stride apart (an explicit A row is one segment; an implicit im2col row is KH of them).
 */
#ifndef TINYEFF_GEMM_S8_AVX2_H
#define TINYEFF_GEMM_S8_AVX2_H

#define AVX2_TARGET __attribute__((target("avx2")))
#define AVX2_MR 4          /* rows per fast tile: 4 rows x 2 vectors = 8 accumulators of 16 ymm */

/* Row I of the fast tile for one group of 4 k: broadcast its 4 A bytes against the 2 B vectors. */
#define AVX2_ROW_STEP(I, ACC, LOAD_A)                                                             \
    if (mr > (I)) {                                                                               \
        __m256i av = _mm256_set1_epi32(LOAD_A(I));                                                \
        if (a_signed) av = _mm256_xor_si256(av, flip);                                            \
        ACC[0] = _mm256_add_epi32(ACC[0], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones)); \
        ACC[1] = _mm256_add_epi32(ACC[1], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones)); \
    }

#define AVX2_LOAD_G(i) load4(r##i + 4 * g)      /* a full group's 4 bytes of row pointer r<i> */

#define AVX2_LOAD_ROW(I, ACC)                                                                     \
    if (mr > (I)) {                                                                               \
        ACC[0] = _mm256_loadu_si256((const __m256i *)(tile + (I) * PANEL));                       \
        ACC[1] = _mm256_loadu_si256((const __m256i *)(tile + (I) * PANEL + 8));                   \
    }

#define AVX2_STORE_ROW(I, ACC)                                                                    \
    if (mr > (I)) {                                                                               \
        _mm256_storeu_si256((__m256i *)(tile + (I) * PANEL), ACC[0]);                             \
        _mm256_storeu_si256((__m256i *)(tile + (I) * PANEL + 8), ACC[1]);                         \
    }

/* Row I of the quad step, groups g and g + 1: the two vpmaddubsw results are added as int16 before
 * vpmaddwd (pack_s8's quads_fit proves the sum fits for A <= 127), 64 multiply-adds per 5 instructions. */
#define AVX2_QUAD_STEP(I, ACC, R)                                                                 \
    if (mr > (I)) {                                                                               \
        __m256i a0 = _mm256_set1_epi32(load4(R + 4 * g)), a1 = _mm256_set1_epi32(load4(R + 4 * g + 4)); \
        __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(a0, b0), _mm256_maddubs_epi16(a1, c0));  \
        __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(a0, b1), _mm256_maddubs_epi16(a1, c1));  \
        ACC[0] = _mm256_add_epi32(ACC[0], _mm256_madd_epi16(s0, ones));                            \
        ACC[1] = _mm256_add_epi32(ACC[1], _mm256_madd_epi16(s1, ones));                            \
    }

/* Where a pooled tile writes (pool4): the 2 x 8 columns' requantization parameters, the output
 * row and how many of its 16 columns exist. */
typedef struct {
    const te_requant8_params *prm;
    __m256i zp, vmin, vmax;
    uint8_t *out;
    int64_t ncols;
} avx2_pool_out;

/* mr rows x 16 columns (bp already points at the 16-column group inside the panel). mr, a_signed,
 * has_tail, quad and pool4 are compile-time constants after inlining, so the accumulators stay in
 * registers. quad (unsigned A <= 127): qf (the quads_fit of these 16 columns from this K position
 * on, segment after segment) says where two full groups may share one vpmaddwd; the rest go one by one.
 * pool4: the 4 rows are one 2x2 max-pool window (gemm_s8.c's fused pool); their max is requantized
 * in registers and 16 bytes are written to po->out, with no int32 tile in memory. */
AVX2_TARGET static inline __attribute__((always_inline)) void
tile_avx2_fast_fixed(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k, const int8_t *bp,
                     int64_t w, const int mr, const int a_signed, const int has_tail, const int quad,
                     const uint8_t *qf, int32_t *tile, const int pool4, const avx2_pool_out *po, const int acc_in) {
    const __m256i ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc0[2] = {zero, zero}, acc1[2] = {zero, zero}, acc2[2] = {zero, zero}, acc3[2] = {zero, zero};
    if (acc_in) {                        /* a later K block: continue the sums of the earlier ones */
        AVX2_LOAD_ROW(0, acc0) AVX2_LOAD_ROW(1, acc1) AVX2_LOAD_ROW(2, acc2) AVX2_LOAD_ROW(3, acc3)
    }
    int64_t kg = k_groups(k), kfull = k / 4;
    int32_t tail[AVX2_MR] = {0};
    if (has_tail)
        for (int i = 0; i < mr; i++) tail[i] = load_group(rows[i], kfull, k);
    const uint8_t *r0 = rows[0], *r1 = rows[mr > 1 ? 1 : 0], *r2 = rows[mr > 2 ? 2 : 0], *r3 = rows[mr > 3 ? 3 : 0];
    const int8_t *b = bp;
    for (int64_t s = 0; s < nseg; s++) {
        int64_t g = 0;
        const uint8_t *qs = quad ? qf + s * kg : NULL;
        while (quad && g + 1 < kfull) {
            for (; g + 1 < kfull && qs[g]; g += 2, b += w * 8) {        /* a run of quad steps */
                __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
                __m256i c0 = _mm256_loadu_si256((const __m256i *)(b + w * 4));
                __m256i c1 = _mm256_loadu_si256((const __m256i *)(b + w * 4 + 32));
                AVX2_QUAD_STEP(0, acc0, r0) AVX2_QUAD_STEP(1, acc1, r1)
                AVX2_QUAD_STEP(2, acc2, r2) AVX2_QUAD_STEP(3, acc3, r3)
            }
            for (; g < kfull && !(g + 1 < kfull && qs[g]); g++, b += w * 4) {   /* single steps */
                __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
                AVX2_ROW_STEP(0, acc0, AVX2_LOAD_G) AVX2_ROW_STEP(1, acc1, AVX2_LOAD_G)
                AVX2_ROW_STEP(2, acc2, AVX2_LOAD_G) AVX2_ROW_STEP(3, acc3, AVX2_LOAD_G)
            }
        }
        for (; g < kg; g++, b += w * 4) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
#define LOAD_A(i) (!has_tail || g < kfull ? load4(r##i + 4 * g) : tail[i])
            AVX2_ROW_STEP(0, acc0, LOAD_A) AVX2_ROW_STEP(1, acc1, LOAD_A)
            AVX2_ROW_STEP(2, acc2, LOAD_A) AVX2_ROW_STEP(3, acc3, LOAD_A)
#undef LOAD_A
        }
        r0 += seg_stride; r1 += seg_stride; r2 += seg_stride; r3 += seg_stride;
    }
    if (pool4) {
        __m256i m0 = _mm256_max_epi32(_mm256_max_epi32(acc0[0], acc1[0]), _mm256_max_epi32(acc2[0], acc3[0]));
        __m256i m1 = _mm256_max_epi32(_mm256_max_epi32(acc0[1], acc1[1]), _mm256_max_epi32(acc2[1], acc3[1]));
        __m256i q0 = te_requant8(m0, &po->prm[0], po->zp, po->vmin, po->vmax);
        if (po->ncols < 16) {
            te_store8_avx2(q0, po->out, po->ncols);
            if (po->ncols > 8)
                te_store8_avx2(te_requant8(m1, &po->prm[1], po->zp, po->vmin, po->vmax), po->out + 8, po->ncols - 8);
            return;
        }
        __m256i q1 = te_requant8(m1, &po->prm[1], po->zp, po->vmin, po->vmax);
        /* 16 codes in [qmin, qmax] (inside int16) -> 16 bytes, one store: pack q0 | q1 to int16 in
         * column order, keep each low byte (the int8 or uint8 bit pattern), pack again */
        __m256i w16 = _mm256_packs_epi32(_mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q0, q1, 0x31));
        __m256i low = _mm256_and_si256(w16, _mm256_set1_epi16(0xFF));
        __m256i b8 = _mm256_packus_epi16(low, low);
        _mm_storeu_si128((__m128i *)po->out, _mm256_castsi256_si128(_mm256_permute4x64_epi64(b8, 0x08)));
        return;
    }
    AVX2_STORE_ROW(0, acc0) AVX2_STORE_ROW(1, acc1) AVX2_STORE_ROW(2, acc2) AVX2_STORE_ROW(3, acc3)
}

/* One 2x2 pooling window (4 rows) x 16 columns, requantized in registers (pool4 above). */
AVX2_TARGET static void tile_avx2_pool4(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k,
                                        const int8_t *bp, int64_t w, const uint8_t *qf, const avx2_pool_out *po) {
    if (qf && k % 4) tile_avx2_fast_fixed(rows, nseg, seg_stride, k, bp, w, 4, 0, 1, 1, qf, NULL, 1, po, 0);
    else if (qf) tile_avx2_fast_fixed(rows, nseg, seg_stride, k, bp, w, 4, 0, 0, 1, qf, NULL, 1, po, 0);
    else if (k % 4) tile_avx2_fast_fixed(rows, nseg, seg_stride, k, bp, w, 4, 0, 1, 0, NULL, NULL, 1, po, 0);
    else tile_avx2_fast_fixed(rows, nseg, seg_stride, k, bp, w, 4, 0, 0, 0, NULL, NULL, 1, po, 0);
}

#define AVX2_FAST_CALL(MRV, SIGNED, TAIL, QUAD) \
    tile_avx2_fast_fixed(rows, nseg, seg_stride, k, bp, w, MRV, SIGNED, TAIL, QUAD, qf, tile, 0, NULL, 0)
#define AVX2_FAST_MORE(MRV, SIGNED, TAIL, QUAD) \
    tile_avx2_fast_fixed(rows, nseg, seg_stride, k, bp, w, MRV, SIGNED, TAIL, QUAD, qf, tile, 0, NULL, 1)
#define AVX2_FAST_CASE(MRV)                                                                        \
    case MRV:                                                                                      \
        if (a_signed) AVX2_FAST_CALL(MRV, 1, 1, 0);                                                \
        else if (qf && k % 4) AVX2_FAST_CALL(MRV, 0, 1, 1);                                        \
        else if (qf) AVX2_FAST_CALL(MRV, 0, 0, 1);                                                 \
        else if (k % 4) AVX2_FAST_CALL(MRV, 0, 1, 0);                                              \
        else AVX2_FAST_CALL(MRV, 0, 0, 0);                                                         \
        break;
#define AVX2_MORE_CASE(MRV)                                                                        \
    case MRV:                                                                                      \
        if (a_signed) AVX2_FAST_MORE(MRV, 1, 1, 0);                                                \
        else if (qf && k % 4) AVX2_FAST_MORE(MRV, 0, 1, 1);                                        \
        else if (qf) AVX2_FAST_MORE(MRV, 0, 0, 1);                                                 \
        else if (k % 4) AVX2_FAST_MORE(MRV, 0, 1, 0);                                              \
        else AVX2_FAST_MORE(MRV, 0, 0, 0);                                                         \
        break;

/* qf: these 16 columns' quads_fit from this K position (quad steps where it allows), or NULL (single steps) */
AVX2_TARGET static void tile_avx2_fast(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k,
                                       const int8_t *bp, int64_t w, int mr, int a_signed, const uint8_t *qf,
                                       int32_t *tile) {
    switch (mr) {
        AVX2_FAST_CASE(1) AVX2_FAST_CASE(2) AVX2_FAST_CASE(3) AVX2_FAST_CASE(4)
        default: break;                    /* unreachable: 1 <= mr <= AVX2_MR */
    }
}

/* A later K block of a split row (tile_avx2): the sums continue from tile. a_signed is a
 * compile-time constant here too: as a run-time flag its 0x80 vector took one of the 16 registers
 * and gcc spilled accumulators. */
AVX2_TARGET static void tile_avx2_fast_more(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k,
                                            const int8_t *bp, int64_t w, int mr, int a_signed, const uint8_t *qf,
                                            int32_t *tile) {
    switch (mr) {
        AVX2_MORE_CASE(1) AVX2_MORE_CASE(2) AVX2_MORE_CASE(3) AVX2_MORE_CASE(4)
        default: break;                    /* unreachable: 1 <= mr <= AVX2_MR */
    }
}

/* Exact tile: up to 2 rows x 16 columns, operands widened to int16 (no pair can saturate:
 * |a1 w1 + a2 w2| <= 2 * 255 * 128 < 2^31). Lanes hold (column, k01) and (column, k23). */
AVX2_TARGET static inline __attribute__((always_inline)) void
tile_avx2_exact_fixed(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k, const int8_t *bp,
                      int64_t w, const int mr, const int a_signed, const int has_tail, int32_t *tile) {
    const __m128i flip = _mm_set1_epi8((char)0x80);
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc0[4] = {zero, zero, zero, zero}, acc1[4] = {zero, zero, zero, zero};
    int64_t kg = k_groups(k), kfull = k / 4;
    int32_t tail[2] = {0, 0};
    if (has_tail)
        for (int i = 0; i < mr; i++) tail[i] = load_group(rows[i], kfull, k);
    const uint8_t *r0 = rows[0], *r1 = rows[mr > 1 ? 1 : 0];
    const int8_t *b = bp;
    for (int64_t s = 0; s < nseg; s++) {
        for (int64_t g = 0; g < kg; g++, b += w * 4) {
            __m256i bw[4];
            for (int q = 0; q < 4; q++)
                bw[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 16 * q)));
#define EXACT_ROW(I, ACC)                                                                         \
            if (mr > (I)) {                                                                       \
                __m128i x = _mm_set1_epi32(!has_tail || g < kfull ? load4(r##I + 4 * g) : tail[I]); \
                if (a_signed) x = _mm_xor_si128(x, flip);                                         \
                __m256i aw = _mm256_cvtepu8_epi16(x);                                             \
                for (int q = 0; q < 4; q++) ACC[q] = _mm256_add_epi32(ACC[q], _mm256_madd_epi16(aw, bw[q])); \
            }
            EXACT_ROW(0, acc0) EXACT_ROW(1, acc1)
#undef EXACT_ROW
        }
        r0 += seg_stride; r1 += seg_stride;
    }
    for (int r = 0; r < mr; r++) {
        __m256i *acc = r ? acc1 : acc0;
        /* hadd pairs lanes (c, k01) + (c, k23) within 128-bit halves: (c0 c1 c4 c5 | c2 c3 c6 c7) */
        __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[0], acc[1]), 0xD8);
        __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[2], acc[3]), 0xD8);
        _mm256_storeu_si256((__m256i *)(tile + r * PANEL), lo);
        _mm256_storeu_si256((__m256i *)(tile + r * PANEL + 8), hi);
    }
}

#define AVX2_EXACT_CASE(MRV)                                                                       \
    case MRV:                                                                                      \
        if (a_signed) tile_avx2_exact_fixed(rows, nseg, seg_stride, k, bp, w, MRV, 1, 1, tile);    \
        else if (k % 4) tile_avx2_exact_fixed(rows, nseg, seg_stride, k, bp, w, MRV, 0, 1, tile);  \
        else tile_avx2_exact_fixed(rows, nseg, seg_stride, k, bp, w, MRV, 0, 0, tile);             \
        break;

AVX2_TARGET static void tile_avx2_exact(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k,
                                        const int8_t *bp, int64_t w, int mr, int a_signed, int32_t *tile) {
    switch (mr) {
        AVX2_EXACT_CASE(1) AVX2_EXACT_CASE(2)
        default: break;                    /* unreachable: 1 <= mr <= 2 */
    }
}

/* nrows rows (a chunk) x one panel of width w: 16-column groups, rows in blocks the chosen tile holds.
 * mode: AVX2_EXACT, AVX2_FAST (vpmaddubsw) or AVX2_QUAD (vpmaddubsw, two groups per vpmaddwd where
 * the panel's quads_fit, qf, allows). */
enum { AVX2_EXACT = 0, AVX2_FAST = 1, AVX2_QUAD = 2 };

/* K blocks of a long row for the fast tiles: a 16-column strip of a panel is one 64-byte line every
 * w * 4 = 256 bytes, so it lands in a quarter of L1's sets; AVX2_KC groups (16 KB of panel, 4 KB of
 * strip) keep the strip in L1 while the chunk's row blocks reuse it. */
#define AVX2_KC 64

AVX2_TARGET static void tile_avx2_kblocked(const uint8_t *const *rows, int64_t k, const int8_t *bp, int64_t w, int mr,
                                           int a_signed, const uint8_t *const *qf, int32_t *tile) {
    const uint8_t *shifted[16];
    for (int64_t kb = 0; kb < k; kb += 4 * AVX2_KC) {
        int64_t len = k - kb < 4 * AVX2_KC ? k - kb : 4 * AVX2_KC;
        for (int i = 0; i < mr; i++) shifted[i] = rows[i] + kb;
        const int8_t *bk = bp + kb * w;                               /* kb / 4 groups of w * 4 bytes */
        for (int64_t v = 0; v < w / 16; v++)
            for (int i0 = 0; i0 < mr; i0 += AVX2_MR) {
                /* a quad never straddles two K blocks: each block's walk ends at its end */
                const uint8_t *qk = qf[v] ? qf[v] + kb / 4 : NULL;
                int rows_here = mr - i0 < AVX2_MR ? mr - i0 : AVX2_MR;
                if (kb == 0)
                    tile_avx2_fast(shifted + i0, 1, 0, len, bk + 64 * v, w, rows_here, a_signed, qk,
                                   tile + i0 * PANEL + 16 * v);
                else
                    tile_avx2_fast_more(shifted + i0, 1, 0, len, bk + 64 * v, w, rows_here, a_signed, qk,
                                        tile + i0 * PANEL + 16 * v);
            }
    }
}

/* qf[v]: the quads_fit flags of 16-column group v (NULL: single steps), read in AVX2_QUAD mode only */
AVX2_TARGET static void tile_avx2(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k,
                                  const int8_t *bp, int64_t w, int mr, int a_signed, int mode,
                                  const uint8_t *const *qf, int32_t *tile) {
    static const uint8_t *const none[PANEL / GROUP] = {NULL, NULL, NULL, NULL};
    int fast = mode != AVX2_EXACT;
    if (mode != AVX2_QUAD) qf = none;
    if (fast && nseg == 1 && k > 4 * AVX2_KC && mr <= 16) {
        tile_avx2_kblocked(rows, k, bp, w, mr, a_signed, qf, tile);
        return;
    }
    int block = fast ? AVX2_MR : 2;
    for (int64_t v = 0; v < w / 16; v++)
        for (int i0 = 0; i0 < mr; i0 += block) {
            int rows_here = mr - i0 < block ? mr - i0 : block;
            if (fast)
                tile_avx2_fast(rows + i0, nseg, seg_stride, k, bp + 64 * v, w, rows_here, a_signed, qf[v],
                               tile + i0 * PANEL + 16 * v);
            else
                tile_avx2_exact(rows + i0, nseg, seg_stride, k, bp + 64 * v, w, rows_here, a_signed,
                                tile + i0 * PANEL + 16 * v);
        }
}

#endif
