/* gemm_s8_a7.h: which AVX2 tile a panel of gemm_s8.c takes (included there, after gemm_ctx and
 * gemm_s8_avx2.h): the exact one, vpmaddubsw where pack_s8 proved the pairs fit or the operand
 * holds no byte above 127 (7-bit activations, scanned once per call), and the quad step where, in
 * addition, quads_fit allows it for the tile's 16 columns (docs/int8.md sections 9-11).
 */
#ifndef TINYEFF_GEMM_S8_A7_H
#define TINYEFF_GEMM_S8_A7_H
#ifdef TE_X86
static int avx2_tiles(const gemm_ctx *c) { return TE_ISA_HAS_AVX2(c->isa) && c->isa != ISA_VNNI; }

/* The AVX2 tile panel p may use: vpmaddubsw with two groups per vpmaddwd where quads_fit allows,
 * vpmaddubsw, or the exact one. */
static int avx2_mode(const gemm_ctx *c, int64_t p) {
    return c->a7 ? AVX2_QUAD : c->pairs_fit[p] ? AVX2_FAST : AVX2_EXACT;
}

/* qf[v]: the quads_fit flags (one per packed group) of panel p's 16-column group v, or NULL (single
 * steps only) when fewer than a quarter of them are set: the walk that follows the flags costs a
 * test per step, which the few quad steps of, say, uniformly random 8-bit weights do not pay back. */
static void panel_quads(const gemm_ctx *c, int64_t p, const uint8_t **qf) {
    int64_t kg = k_groups(c->k), w = panel_width(c->n, p * PANEL);
    for (int64_t v = 0; v < PANEL / GROUP; v++) {
        qf[v] = NULL;
        if (v * GROUP >= w) continue;
        const uint8_t *f = c->quads_fit + (p * (PANEL / GROUP) + v) * kg;
        int64_t set = 0;
        for (int64_t g = 0; g < kg; g++) set += f[g];
        if (4 * set >= kg) qf[v] = f;
    }
}
#endif

#ifdef TE_X86
/* 1 if no byte of rows x len bytes (ld apart) has its top bit set, i.e. every byte is <= 127;
 * stops at the first row that has one (an 8-bit activation usually shows one in its first rows). */
__attribute__((target("avx2"))) static int bytes_below_128(const uint8_t *p, int64_t rows, int64_t len, int64_t ld) {
    for (int64_t r = 0; r < rows; r++, p += ld) {
        __m256i any = _mm256_setzero_si256();
        int64_t i = 0;
        for (; i + 32 <= len; i += 32) any = _mm256_or_si256(any, _mm256_loadu_si256((const __m256i *)(p + i)));
        uint8_t rest = 0;
        for (; i < len; i++) rest |= p[i];
        if (_mm256_movemask_epi8(any) || (rest & 0x80)) return 0;
    }
    return 1;
}
#endif

/* Whether the AVX2 tiles may rely on A <= 127 (every pair of any 8-bit weights then fits int16,
 * and quads_fit panels may add two pairs): checked on the operand itself, once per call, so the
 * proof is the data's, not a promise. Only the AVX2 path, unsigned A, and when some panel gains. */
static int activations_7bit(const gemm_ctx *c) {
#ifdef TE_X86
    if (c->a_signed || !TE_ISA_HAS_AVX2(c->isa) || c->isa == ISA_VNNI) return 0;
    int64_t npanels = (c->n + PANEL - 1) / PANEL, nflags = (c->n + GROUP - 1) / GROUP * k_groups(c->k), gain = 0;
    for (int64_t p = 0; p < npanels; p++) gain |= !c->pairs_fit[p];
    for (int64_t i = 0; i < nflags; i++) gain |= c->quads_fit[i];
    if (!gain) return 0;
    if (!c->conv) return bytes_below_128(c->a, c->m, c->k, c->lda);
    int64_t images = c->m / (c->ph_n * c->pw_n * c->pool * c->pool);
    return bytes_below_128(c->a, 1, images * c->hp * c->wp * c->cin, 0);
#else
    (void)c;
    return 0;
#endif
}

#endif
