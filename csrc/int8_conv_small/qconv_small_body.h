/* qconv_small_body.h: the vector window of qconv_small.c, written once over a vector width and
 * included once per path (x86: QS_AVX2: 4 ymm per 32 output channels, vpmaddubsw + vpmaddwd;
 * QS_VNNI: 2 zmm, vpdpbusd. ARM64: QS_NEON_DOT: 8 q registers, sdot; QS_NEON: 8 q registers, each
 * summed as two halves by vmull_s8 + vpadalq_s16). Everything named here gets the path's suffix via QS().
 *
 * One window = the pool x pool output pixels whose max becomes one output element (1 pixel when
 * pool is 1). Per pixel and per group of 4 taps: one broadcast of the pixel's 4 input bytes
 * against the block's packed weights (32 columns x 4 k, what the group step consumes), so every
 * pixel runs exactly the groups its kernel has and nothing else: no row setup, no int32 tile in
 * memory. The running max of the pixels' raw sums stays in registers and is requantized there.
 * A block is 32 columns, or 16 (nv halved) for the last one when the output channels end there.
 * AVX2 variants, compile-time flags of one body: exact8 (input bytes split in two: any input, any
 * weight) and quad (two groups per vpmaddwd: input <= 127 and the weight's quads_fit).
 *
 * ARM64: a 16-byte slice of the packed block (4 columns x 4 k) is what sdot consumes, as in the
 * int8 GEMM (csrc/int8_gemm/gemm_s8_neon.h). sdot and vmull_s8 multiply signed bytes, so the
 * broadcast is a - 128 (a xor 0x80) and the sums are raw - 128 * colsum: the same shift for every
 * pixel of a column, so the window's max is unchanged, and qconv_small.c adds it back in the
 * epilogue's offset. Without sdot, a pixel keeps per column the sums of k01 and k23 apart (one
 * vpadalq_s16 each) and folds them once per pixel (QS_FOLD) instead of once per group.
 */
#if defined(QS_AVX2)
#define QS(name) qs_##name##_avx2
#define QS_TARGET __attribute__((target("avx2")))
#define QS_NV 4
typedef __m256i qs_vec_avx2;
#define qs_vec qs_vec_avx2
#define qs_bvec qs_vec_avx2
#define qs_acc qs_vec_avx2
#define QS_ZERO() _mm256_setzero_si256()
#define QS_BCAST(x) _mm256_set1_epi32(x)
#define QS_LOADW(p) _mm256_loadu_si256((const __m256i *)(p))
/* vpmaddubsw pairs are exact when A <= 127 or every weight pair fits int16; else exact8 splits A */
#define QS_DOT(acc, a, w) _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w), ones))
#define QS_DOT_HI(acc, a, w) _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w), k128))
#define QS_DOT_PAIR(acc, a0, w0, a1, w1) \
    _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(a0, w0), _mm256_maddubs_epi16(a1, w1)), ones))
#define QS_CAN_SPLIT 1
#define QS_HAS_QUAD 1
#define QS_MAX(a, b) _mm256_max_epi32(a, b)
#define QS_STORE(p, v) _mm256_storeu_si256((__m256i *)(p), v)
#elif defined(QS_VNNI)
#define QS(name) qs_##name##_vnni
#define QS_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define QS_NV 2
typedef __m512i qs_vec_vnni;
#define qs_vec qs_vec_vnni
#define qs_bvec qs_vec_vnni
#define qs_acc qs_vec_vnni
#define QS_ZERO() _mm512_setzero_si512()
#define QS_BCAST(x) _mm512_set1_epi32(x)
#define QS_LOADW(p) _mm512_loadu_si512((const void *)(p))
#define QS_DOT(acc, a, w) _mm512_dpbusd_epi32(acc, a, w)   /* exact for any bytes */
#define QS_DOT_HI(acc, a, w) ((void)(a), (acc))
#define QS_DOT_PAIR(acc, a0, w0, a1, w1) QS_DOT(QS_DOT(acc, a0, w0), a1, w1)
#define QS_CAN_SPLIT 0
#define QS_HAS_QUAD 0
#define QS_MAX(a, b) _mm512_max_epi32(a, b)
#define QS_STORE(p, v) _mm512_storeu_si512((void *)(p), v)
#elif defined(QS_NEON_DOT)
#define QS(name) qs_##name##_neon_dot
#define QS_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))  /* as gemm_s8_neon.h: gcc 12 needs arch= */
#define QS_NV 8
#define qs_vec int32x4_t
#define qs_bvec int8x16_t
#define qs_acc int32x4_t
#define QS_ZERO() vdupq_n_s32(0)
#define QS_BCAST(x) vreinterpretq_s8_u32(vdupq_n_u32((uint32_t)(x) ^ 0x80808080u))      /* a - 128 */
#define QS_LOADW(p) vld1q_s8(p)
#define QS_DOT(acc, a, w) vdotq_s32(acc, w, a)   /* |(a - 128) w| <= 2^14: exact for any bytes */
#define QS_DOT_HI(acc, a, w) ((void)(a), (acc))
#define QS_DOT_PAIR(acc, a0, w0, a1, w1) QS_DOT(QS_DOT(acc, a0, w0), a1, w1)
#define QS_CAN_SPLIT 0
#define QS_HAS_QUAD 0
#define QS_MAX(a, b) vmaxq_s32(a, b)
#define QS_STORE(p, v) vst1q_s32(p, v)
#elif defined(QS_NEON)
#define QS(name) qs_##name##_neon
#define QS_TARGET
#define QS_NV 8
#define qs_vec int32x4_t
#define qs_bvec int8x16_t
#define qs_acc qs_pair_neon
#define QS_ZERO() vdupq_n_s32(0)
#define QS_ACC_ZERO() ((qs_pair_neon){vdupq_n_s32(0), vdupq_n_s32(0)})
#define QS_BCAST(x) vreinterpretq_s8_u32(vdupq_n_u32((uint32_t)(x) ^ 0x80808080u))      /* a - 128 */
#define QS_LOADW(p) vld1q_s8(p)
#define QS_DOT(acc, a, w) qs_pair_dot_neon(acc, a, w)
#define QS_DOT_HI(acc, a, w) ((void)(a), (acc))
#define QS_DOT_PAIR(acc, a0, w0, a1, w1) QS_DOT(QS_DOT(acc, a0, w0), a1, w1)
#define QS_FOLD(acc) vpaddq_s32((acc).c01, (acc).c23)   /* (c0 k01, c0 k23, c1 ..) + (c2 .., c3 ..) -> c0..c3 */
#define QS_CAN_SPLIT 0
#define QS_HAS_QUAD 0
#define QS_MAX(a, b) vmaxq_s32(a, b)
#define QS_STORE(p, v) vst1q_s32(p, v)
#else
#error "define QS_AVX2, QS_VNNI, QS_NEON_DOT or QS_NEON before including qconv_small_body.h"
#endif
#ifndef QS_ACC_ZERO
#define QS_ACC_ZERO() QS_ZERO()
#define QS_FOLD(acc) (acc)
#endif

#define QS_LANES (QS_BLOCK / QS_NV)              /* int32 lanes per vector */

/* best: the window's max raw sums (nv vectors: a block of 32 columns, or 16) -> requantized codes,
 * the first ncols stored. */
QS_TARGET static inline __attribute__((always_inline)) void
QS(epilogue)(const qs_vec *best, const qs_epi *e, int64_t ncols, uint8_t *out, const int nv) {
#if defined(QS_NEON) || defined(QS_NEON_DOT)
    /* te_requant4_neon is exact for any bias and shift, so there is no slow case; off adds the
     * -zp * colsum correction and the 128 * colsum of the flipped input back (qconv_small.c). */
    const int32x4_t zp = vdupq_n_s32(e->zero_point), vmin = vdupq_n_s32(e->qmin), vmax = vdupq_n_s32(e->qmax);
    uint8_t tmp[QS_BLOCK];
    uint8_t *dst = ncols >= QS_LANES * nv ? out : tmp;
    for (int v = 0; v < nv; v += 4) {                   /* 16 columns: four int32x4 -> one uint8x16 */
        int16x4_t h[4];
        for (int u = 0; u < 4; u++) {
            const int o = QS_LANES * (v + u);
            int32x4_t r = te_requant4_neon(vaddq_s32(best[v + u], vld1q_s32(e->off + o)), vld1q_s32(e->nbias + o),
                                           vld1q_s32(e->nmult + o), vld1q_s32(e->nshift + o), zp, vmin, vmax);
            h[u] = vmovn_s32(r);                        /* codes in [qmin, qmax] within [0, 255] */
        }
        int16x8_t lo = vcombine_s16(h[0], h[1]), hi = vcombine_s16(h[2], h[3]);
        vst1q_u8(dst + QS_LANES * v, vcombine_u8(vmovn_u16(vreinterpretq_u16_s16(lo)),
                                                 vmovn_u16(vreinterpretq_u16_s16(hi))));
    }
    if (dst == tmp) memcpy(out, tmp, (size_t)ncols);
#else
    if (!e->fast) {
        int32_t raw[QS_BLOCK];
        for (int v = 0; v < nv; v++) QS_STORE(raw + v * QS_LANES, best[v]);
        qs_requant_slow(raw, e, ncols, out);
        return;
    }
#if defined(QS_AVX2)
    const __m256i zp = _mm256_set1_epi32(e->zero_point), vmin = _mm256_set1_epi32(e->qmin);
    const __m256i vmax = _mm256_set1_epi32(e->qmax);
    __m256i q[4];
    for (int v = 0; v < nv; v++) q[v] = te_requant8(best[v], &e->p8[v], zp, vmin, vmax);
    if (nv == 2) {                     /* 16 columns: pack to int16, the two quarters of q1 after q0's */
        __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
        __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
        if (ncols >= 16) { _mm_storeu_si128((__m128i *)out, b); return; }
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b);
        memcpy(out, tmp, (size_t)ncols);
        return;
    }
    /* codes are in [0, 255]: two saturating packs, then the dwords back in column order */
    __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    if (ncols >= QS_BLOCK) { _mm256_storeu_si256((__m256i *)out, b); return; }
    uint8_t tmp[QS_BLOCK];
    _mm256_storeu_si256((__m256i *)tmp, b);
    memcpy(out, tmp, (size_t)ncols);
#else
    const __m512i zp = _mm512_set1_epi32(e->zero_point), vmin = _mm512_set1_epi32(e->qmin);
    const __m512i vmax = _mm512_set1_epi32(e->qmax);
    __m128i q0 = te_requant16(best[0], &e->p16[0], zp, vmin, vmax);
    if (nv == 1) {
        if (ncols >= 16) _mm_storeu_si128((__m128i *)out, q0);
        else _mm_mask_storeu_epi8(out, (__mmask16)((1u << ncols) - 1), q0);
        return;
    }
    __m128i q1 = te_requant16(best[1], &e->p16[1], zp, vmin, vmax);
    if (ncols >= QS_BLOCK) {           /* one plain store: a masked vpmovdb to memory is slow */
        _mm256_storeu_si256((__m256i *)out, _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1));
        return;
    }
    __mmask32 m = (__mmask32)((1u << ncols) - 1);
    _mm256_mask_storeu_epi8(out, m, _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1));
#endif
#endif
}

/* One group of 4 input bytes x against the block's 32 columns of packed weights wb. exact8 (AVX2,
 * a compile-time constant): the input has bytes > 127 and the weight pairs do not fit int16, so x
 * is split as (x & 127) + 128 * (x >> 7) and each half gets its own exact vpmaddubsw. */
#define QS_GROUP(x, wb)                                                                           \
    do {                                                                                          \
        uint32_t x_ = (x);                                                                        \
        if (!QS_CAN_SPLIT || !exact8) {                                                           \
            qs_bvec a = QS_BCAST((int32_t)x_);                                                    \
            for (int v = 0; v < nv; v++) part[v] = QS_DOT(part[v], a, QS_LOADW(wb + v * 4 * QS_LANES)); \
        } else {                                                                                  \
            qs_bvec lo = QS_BCAST((int32_t)(x_ & 0x7F7F7F7Fu)), hi = QS_BCAST((int32_t)((x_ >> 7) & 0x01010101u)); \
            for (int v = 0; v < nv; v++) part[v] = QS_DOT_HI(QS_DOT(part[v], lo, QS_LOADW(wb + v * 4 * QS_LANES)), \
                                                             hi, QS_LOADW(wb + v * 4 * QS_LANES)); \
        }                                                                                         \
    } while (0)

/* Groups i and i + 1 at once (AVX2, quad): their vpmaddubsw results added as int16 before one
 * vpmaddwd, exact when the input is <= 127 and the weight's quads_fit holds (four weights of a lane
 * sum to at most 258 in each sign: 127 * 258 < 32768). */
#define QS_QUAD(x0, x1, w0, w1)                                                                   \
    do {                                                                                          \
        qs_bvec a0 = QS_BCAST((int32_t)(x0)), a1 = QS_BCAST((int32_t)(x1));                       \
        for (int v = 0; v < nv; v++)                                                              \
            part[v] = QS_DOT_PAIR(part[v], a0, QS_LOADW(w0 + v * 4 * QS_LANES), a1, QS_LOADW(w1 + v * 4 * QS_LANES)); \
    } while (0)

/* The raw sums of one pixel (origin p) for the block's nv vectors of columns, into acc. nd, ng
 * (direct groups, gathered bytes), exact8 and quad are compile-time constants where the caller
 * specializes them. */
QS_TARGET static inline __attribute__((always_inline)) void
QS(pixel)(const uint8_t *p, const qs_geom *g, const int8_t *wb, const int nd, const int ng, const int exact8,
          const int quad, const int nv, qs_vec *acc) {
#if defined(QS_AVX2)
    const __m256i ones = _mm256_set1_epi16(1), k128 = _mm256_set1_epi16(128);
#endif
    uint32_t xs[QS_MAX_DIRECT + 1];
    for (int d = 0; d < nd; d++) xs[d] = (uint32_t)qs_load4(p + g->doff[d]);
    if (ng) {
        uint32_t x = 0;
        for (int t = 0; t < ng; t++) x |= (uint32_t)p[g->goff[t]] << (8 * t);
        xs[nd] = x;
    }
    const int ngroups = nd + (ng > 0);
    const int64_t step = 4 * QS_LANES * nv;                  /* bytes of packed weight per group */
    qs_acc part[QS_NV];                  /* per vector of columns; wider than qs_vec on plain NEON */
    for (int v = 0; v < nv; v++) part[v] = QS_ACC_ZERO();
    int i = 0;
    if (QS_HAS_QUAD && quad)
        for (; i + 1 < ngroups; i += 2) QS_QUAD(xs[i], xs[i + 1], wb + i * step, wb + (i + 1) * step);
    for (; i < ngroups; i++) QS_GROUP(xs[i], wb + i * step);
    for (int v = 0; v < nv; v++) acc[v] = QS_FOLD(part[v]);
}

/* One block of columns (nv vectors) for a run of windows: out[i * ldo + j] for window i, j < ncols. */
QS_TARGET static inline __attribute__((always_inline)) void
QS(windows_fixed)(const qs_geom *g, const uint8_t *row0, int64_t nwin, const int8_t *wb, const qs_epi *e,
                  int64_t ncols, uint8_t *out, int64_t ldo, const int nd, const int ng, const int exact8,
                  const int quad, const int npix, const int nv) {
    for (int64_t i = 0; i < nwin; i++, row0 += g->win_step, out += ldo) {
        qs_vec best[QS_NV], acc[QS_NV];
        QS(pixel)(row0, g, wb, nd, ng, exact8, quad, nv, best);  /* pix_off[0] is 0: the window's origin */
        for (int q = 1; q < npix; q++) {
            QS(pixel)(row0 + g->pix_off[q], g, wb, nd, ng, exact8, quad, nv, acc);
            for (int v = 0; v < nv; v++) best[v] = QS_MAX(best[v], acc[v]);
        }
        QS(epilogue)(best, e, ncols, out, nv);
    }
}

/* The common group counts get their own copies, with the loops over groups fully unrolled. */
QS_TARGET static inline __attribute__((always_inline)) void
QS(windows_nv)(const qs_geom *g, const uint8_t *row0, int64_t nwin, const int8_t *wb, const qs_epi *e,
               int64_t ncols, uint8_t *out, int64_t ldo, const int nv) {
    int np = g->npix, quad = QS_HAS_QUAD && g->quad;
    if (QS_CAN_SPLIT && g->exact8)
        QS(windows_fixed)(g, row0, nwin, wb, e, ncols, out, ldo, g->nd, g->ng, 1, 0, np, nv);
    else if (g->nd == 3 && g->ng == 0 && np == 4 && quad)                            /* C = 1, 2x2 pool */
        QS(windows_fixed)(g, row0, nwin, wb, e, ncols, out, ldo, 3, 0, 0, 1, 4, nv);
    else if (g->nd == 3 && g->ng == 0 && np == 4)
        QS(windows_fixed)(g, row0, nwin, wb, e, ncols, out, ldo, 3, 0, 0, 0, 4, nv);
    else if (g->nd == 6 && g->ng == 3 && np == 4 && quad)                            /* C = 3, 2x2 pool */
        QS(windows_fixed)(g, row0, nwin, wb, e, ncols, out, ldo, 6, 3, 0, 1, 4, nv);
    else if (g->nd == 6 && g->ng == 3 && np == 4)
        QS(windows_fixed)(g, row0, nwin, wb, e, ncols, out, ldo, 6, 3, 0, 0, 4, nv);
    else if (g->nd == 6 && g->ng == 3)                                               /* C = 3, no pool */
        QS(windows_fixed)(g, row0, nwin, wb, e, ncols, out, ldo, 6, 3, 0, quad, 1, nv);
    else QS(windows_fixed)(g, row0, nwin, wb, e, ncols, out, ldo, g->nd, g->ng, 0, quad, np, nv);
}

/* A block of 32 columns, or of 16 (the last block, when the output channels end there). */
QS_TARGET static void QS(windows)(const qs_geom *g, const uint8_t *row0, int64_t nwin, const int8_t *wb,
                                  const qs_epi *e, int64_t ncols, uint8_t *out, int64_t ldo, int64_t width) {
    if (width == QS_BLOCK) QS(windows_nv)(g, row0, nwin, wb, e, ncols, out, ldo, QS_NV);
    else QS(windows_nv)(g, row0, nwin, wb, e, ncols, out, ldo, QS_NV / 2);
}

#undef QS
#undef QS_TARGET
#undef QS_NV
#undef qs_vec
#undef qs_bvec
#undef qs_acc
#undef QS_ACC_ZERO
#undef QS_FOLD
#undef QS_ZERO
#undef QS_BCAST
#undef QS_LOADW
#undef QS_DOT
#undef QS_MAX
#undef QS_STORE
#undef QS_DOT_HI
#undef QS_CAN_SPLIT
#undef QS_GROUP
#undef QS_QUAD
#undef QS_DOT_PAIR
#undef QS_HAS_QUAD
#undef QS_LANES
#undef QS_AVX2
#undef QS_VNNI
#undef QS_NEON
#undef QS_NEON_DOT
