/* gemm_s8_epilogue.h: what happens to a chunk's int32 sums in gemm_s8.c (included there, after
 * gemm_ctx and the tiles): the fast requantizing stores (16 lanes on AVX-512, 8 on AVX2, with their
 * preconditions checked per panel), the AVX2 pooled tile that requantizes a 2x2 window in
 * registers, and the row max of a fused max-pool on every path. The arithmetic is docs/int8.md
 * sections 3-6; int8_common.h holds the lane-level bodies.
 */
#ifndef TINYEFF_GEMM_S8_EPILOGUE_H
#define TINYEFF_GEMM_S8_EPILOGUE_H

/* The fast epilogue's preconditions for one panel (see int8_common.h): every shift <= 0, and the
 * raw sum plus the folded bias, bias[j] - corr * colsum[j], stays inside int32 for any A (the raw
 * VNNI sum is bounded by K * 255 * 128). Fills fused_bias[0, PANEL) and returns 1 when they hold. */
static int panel_fast_prepare(const gemm_ctx *c, int64_t p0, int32_t *fused_bias) {
    int64_t ncols = c->n - p0 < PANEL ? c->n - p0 : PANEL;
    if (!c->out8 || !TE_ISA_HAS_AVX2(c->isa)) return 0;
    for (int64_t j = 0; j < PANEL; j++) {
        if (j >= ncols) { fused_bias[j] = 0; continue; }
        if (c->shift[p0 + j] > 0) return 0;
        int64_t b = (c->bias ? c->bias[p0 + j] : 0) - (int64_t)c->corr * c->colsum[p0 + j];
        int64_t bound = (b < 0 ? -b : b) + c->k * (int64_t)(255 * 128);
        if (bound > INT32_MAX) return 0;
        fused_bias[j] = (int32_t)b;
    }
    return 1;
}

#ifdef TE_HAVE_AVX2_REQUANT
/* The same on 8 lanes (AVX2). */
/* prm: the panel's per-channel parameters, 8 columns each, loaded once per task (prepare_avx2). */
__attribute__((target("avx2"))) static void
store_tile_fast_avx2(const gemm_ctx *c, int64_t m0, int64_t p0, int mr, const int32_t *tile,
                     const te_requant8_params *prm) {
    int64_t ncols = c->n - p0 < PANEL ? c->n - p0 : PANEL;
    const __m256i zp = _mm256_set1_epi32(c->zero_point_out);
    const __m256i vmin = _mm256_set1_epi32(c->qmin), vmax = _mm256_set1_epi32(c->qmax);
    for (int64_t j = 0; j < ncols; j += 8)
        for (int i = 0; i < mr; i++) {
            __m256i q = te_requant8(_mm256_load_si256((const __m256i *)(tile + i * PANEL + j)), &prm[j / 8], zp, vmin, vmax);
            te_store8_avx2(q, c->out8 + (m0 + i) * c->ldo + p0 + j, ncols - j);
        }
}

/* The fused 2x2 max-pool on the AVX2 path: each window's 4 rows are one vpmaddubsw tile whose max
 * is requantized in registers (tile_avx2_pool4), rows / 4 output rows of the panel's columns. */
__attribute__((target("avx2"))) static void
pool_chunk_avx2(const gemm_ctx *c, const uint8_t *const *rows, int nrows, int64_t p, const int8_t *bp,
                int64_t w, const uint8_t *const *qf, const te_requant8_params *prm, int64_t out_row) {
    int64_t nseg = c->conv ? c->nseg : 1, seg_stride = c->conv ? c->seg_stride : 0, k = c->conv ? c->kseg : c->k;
    int64_t p0 = p * PANEL, ncols = c->n - p0 < PANEL ? c->n - p0 : PANEL;
    avx2_pool_out po = {NULL, _mm256_set1_epi32(c->zero_point_out), _mm256_set1_epi32(c->qmin),
                        _mm256_set1_epi32(c->qmax), NULL, 0};
    for (int64_t v = 0; v < w / 16; v++) {
        po.prm = prm + 2 * v;
        po.ncols = ncols - 16 * v;
        for (int i0 = 0; i0 < nrows; i0 += 4) {
            po.out = c->out8 + (out_row + i0 / 4) * c->ldo + p0 + 16 * v;
            tile_avx2_pool4(rows + i0, nseg, seg_stride, k, bp + 64 * v, w, qf[v], &po);
        }
    }
}

__attribute__((target("avx2"))) static void
prepare_avx2(const gemm_ctx *c, int64_t p0, const int32_t *fused_bias, te_requant8_params *prm) {
    int64_t ncols = c->n - p0 < PANEL ? c->n - p0 : PANEL;
    for (int64_t j = 0; j < ncols; j += 8)
        prm[j / 8] = te_requant8_load(fused_bias + j, c->multiplier + p0 + j, c->shift + p0 + j, ncols - j);
}
#endif

#ifdef TE_HAVE_AVX512_REQUANT
/* Requantize an mr x ncols tile with the 16-lane epilogue; fused_bias already holds -corr * colsum. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
store_tile_fast(const gemm_ctx *c, int64_t m0, int64_t p0, int mr, const int32_t *tile,
                const int32_t *fused_bias) {
    int64_t ncols = c->n - p0 < PANEL ? c->n - p0 : PANEL;
    const __m512i zp = _mm512_set1_epi32(c->zero_point_out);
    const __m512i vmin = _mm512_set1_epi32(c->qmin), vmax = _mm512_set1_epi32(c->qmax);
    for (int64_t j = 0; j < ncols; j += 16) {
        __mmask16 m = ncols - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ncols - j)) - 1);
        te_requant16_params prm = te_requant16_load(fused_bias + j, c->multiplier + p0 + j, c->shift + p0 + j, m);
        for (int i = 0; i < mr; i++) {
            __m128i q = te_requant16(_mm512_load_si512((const void *)(tile + i * PANEL + j)), &prm, zp, vmin, vmax);
            _mm_mask_storeu_epi8(c->out8 + (m0 + i) * c->ldo + p0 + j, m, q);
        }
    }
}
#endif

/* rows[0, nrows) of the chunk -> rows[0, nrows / group): the max of each group, in place. */
#ifdef TE_X86
__attribute__((target("avx512f"))) static void max_rows_avx512(int32_t *chunk, int64_t nrows, int64_t group, int64_t w) {
    for (int64_t r = 0; r < nrows / group; r++)
        for (int64_t j = 0; j < w; j += 16) {
            __m512i best = _mm512_load_si512((const void *)(chunk + r * group * PANEL + j));
            for (int64_t i = 1; i < group; i++)
                best = _mm512_max_epi32(best, _mm512_load_si512((const void *)(chunk + (r * group + i) * PANEL + j)));
            _mm512_store_si512((void *)(chunk + r * PANEL + j), best);
        }
}

__attribute__((target("avx2"))) static void max_rows_avx2(int32_t *chunk, int64_t nrows, int64_t group, int64_t w) {
    for (int64_t r = 0; r < nrows / group; r++)
        for (int64_t j = 0; j < w; j += 8) {
            __m256i best = _mm256_load_si256((const __m256i *)(chunk + r * group * PANEL + j));
            for (int64_t i = 1; i < group; i++)
                best = _mm256_max_epi32(best, _mm256_load_si256((const __m256i *)(chunk + (r * group + i) * PANEL + j)));
            _mm256_store_si256((__m256i *)(chunk + r * PANEL + j), best);
        }
}
#endif
#ifdef TE_ARM64
static void max_rows_neon(int32_t *chunk, int64_t nrows, int64_t group, int64_t w) {
    for (int64_t r = 0; r < nrows / group; r++)
        for (int64_t j = 0; j < w; j += 4) {
            int32x4_t best = vld1q_s32(chunk + r * group * PANEL + j);
            for (int64_t i = 1; i < group; i++) best = vmaxq_s32(best, vld1q_s32(chunk + (r * group + i) * PANEL + j));
            vst1q_s32(chunk + r * PANEL + j, best);
        }
}
#endif

static void max_rows(const gemm_ctx *c, int32_t *chunk, int64_t nrows, int64_t w) {
#ifdef TE_X86
    if (TE_ISA_HAS_AVX512(c->isa)) { max_rows_avx512(chunk, nrows, c->group, w); return; }
    if (TE_ISA_HAS_AVX2(c->isa)) { max_rows_avx2(chunk, nrows, c->group, w); return; }
#endif
#ifdef TE_ARM64
    if (TE_ISA_HAS_NEON(c->isa)) { max_rows_neon(chunk, nrows, c->group, w); return; }
#endif
    for (int64_t r = 0; r < nrows / c->group; r++)
        for (int64_t j = 0; j < w; j++) {
            int32_t best = chunk[r * c->group * PANEL + j];
            for (int64_t i = 1; i < c->group; i++) {
                int32_t v = chunk[(r * c->group + i) * PANEL + j];
                best = v > best ? v : best;
            }
            chunk[r * PANEL + j] = best;
        }
}

#endif
