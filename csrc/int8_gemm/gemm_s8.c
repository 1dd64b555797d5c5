/* gemm_s8.c: int8 GEMM, uint8 activations x packed int8 weights -> int32, with an optional fused
 * requantization epilogue. Inside a GEMM, A is M x K (row-major), B is K x N, C is M x N.
 *
 * The one idea: VNNI's vpdpbusd multiplies 4 unsigned bytes of A by 4 signed bytes of B and adds
 * the 4 products into one int32 lane. Broadcasting A[m, 4g:4g+4] to all 16 lanes against one
 * 64-byte row of a packed panel (16 columns x 4 k, see tinyeff/kernels/layout/packed_s8.py) updates 16
 * outputs of row m in one instruction. A 6 x 64 register tile (24 zmm accumulators + 4 B vectors
 * + 1 broadcast = 29 of 32 registers) gives 24 vpdpbusd per 4 B loads and 6 broadcasts.
 *
 * Signed A (gemm_s8) on VNNI: vpdpbusd needs unsigned A, so we flip the sign bit (a + 128, a xor
 * 0x80) and subtract 128 * colsum(B) afterwards. The int32 sums wrap in the vector unit, but the
 * true result fits int32 (K <= 65536, checked in Python), and wrapping arithmetic is exact modulo
 * 2^32, so the corrected result is bit exact.
 *
 * Paths (isa argument, chosen in Python from the CPU's flags; a kernel runs its best body not above it):
 *   AVX-512 VNNI: the tile above.
 *   AVX2 (gemm_s8_avx2.h): vpmaddubsw + vpmaddwd on panels whose weight pairs cannot saturate int16
 *     (pack_s8 checks every pair once, PackedS8.pairs_fit) or on any panel when every byte of A is
 *     <= 127 (7-bit activations: run_gemm scans A once per call), two groups per vpmaddwd where
 *     PackedS8.quads_fit allows it (per 16 columns and group; gemm_s8_a7.h picks the tile per
 *     panel); otherwise operands widened to int16. A fused 2x2 max-pool is
 *     taken and requantized in registers, one window per 4-row tile.
 *   NEON dot-product / NEON (gemm_s8_neon.h): sdot on a - 128, or vmull_s8 + vpadalq_s16.
 *   portable C: the same loop order in plain C, for any CPU and compiler.
 * Every tile takes its rows as pointers plus segments, so the implicit-im2col convolution below
 * runs on every path.
 * Blocking: tasks are (block of mc rows, one 64-column panel); mc keeps the A block (mc x K) in
 * L2 while its panel (K x 64 bytes) is reused by every 6-row strip. OpenMP splits the tasks.
 *
 * Fused max-pool (group > 1, gemm_u8s8_requant_rowmax): requantization is monotonic (non-decreasing
 * in the sum, since multiplier >= 0), so max-pooling the requantized outputs equals requantizing
 * the max of the int32 sums. With im2col rows ordered so each pooling window's rows are
 * consecutive (im2col_8_nhwc's pool argument), the epilogue takes the max over groups of rows and
 * requantizes and writes one row in `group`.
 *
 * Left out: AMX (this machine's CPU has no amx_int8, so it could not be tested), and K blocking
 * (a panel streams from L2 fast enough: 256 bytes per 24 vpdpbusd).
 */
#include <string.h>

#include "tinyeff.h"
#include "int8_common.h"
#include "packed_s8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define TE_X86 1
#include <immintrin.h>
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
#endif
#if defined(__aarch64__)
#define TE_ARM64 1
#endif

#define MR 6              /* rows per register tile */
#define A_BLOCK_BYTES (256 * 1024)
#define MIN_TASKS 32      /* row blocks per GEMM at least, when there are rows enough */
#define CHUNK 12          /* rows per epilogue call: two register tiles; groups of 1, 2, 3, 4, 6, 12 divide it */

enum { ISA_PORTABLE = TE_ISA_PORTABLE, ISA_AVX2 = TE_ISA_AVX2, ISA_VNNI = TE_ISA_AVX512_VNNI,
       ISA_NEON = TE_ISA_NEON, ISA_NEON_DOT = TE_ISA_NEON_DOTPROD };

typedef struct {
    const uint8_t *a;
    int64_t lda, m, k, n;
    const int8_t *packed;
    const int32_t *colsum;
    const uint8_t *pairs_fit;     /* per panel: 1 if no int16 pair sum can saturate (AVX2 fast tile) */
    const uint8_t *quads_fit;     /* per panel and group g: 1 if the pair sums of g and g + 1 add inside
                                     int16 for A <= 127 (K4 bytes per panel) */
    int a_signed;
    int a7;                       /* every byte of A is <= 127 (set by run_gemm on the AVX2 path) */
    int isa;
    int32_t corr;                 /* subtract corr * colsum[j] from every output in column j */
    int32_t *out32;               /* int32 output, or NULL when requantizing */
    uint8_t *out8;                /* requantized output (uint8 or int8 bit patterns) */
    int64_t ldo;
    const int32_t *bias, *multiplier, *shift;
    int32_t zero_point_out, qmin, qmax;
    int64_t group;                /* requantize the max of each group of rows (1: no pooling) */
    /* Implicit im2col (conv != 0, every path): A is a zero-point-padded NHWC image (N, hp, wp, cin),
     * never unfolded. Row m is the output position of im2col_8_nhwc's row order (pool-ordered when
     * pool > 1); its K bytes are kh segments of kseg = roundup(kw * cin, 4) consecutive bytes,
     * seg_stride = wp * cin apart, so a tile reads its 4-byte groups straight from the image. A
     * segment's bytes past kw * cin meet the zero weight rows of the packed kernel row (the
     * row_align padding of im2col_8_nhwc), so whatever pixel they read adds 0. */
    int conv;
    int64_t cin, hp, wp, stride, pool, ph_n, pw_n, nseg, kseg, seg_stride;
} gemm_ctx;

/* The 4 activation bytes of group g of row ar as a little-endian int32 (x86 byte order, what
 * vpdpbusd expects), zero past K; never reads past the row. Byte by byte, not a variable-length
 * memcpy: a library call inside a tile would force the register accumulators onto the stack. */
static inline int32_t load_group(const uint8_t *ar, int64_t g, int64_t k) {
    uint32_t x = 0;
    for (int t = 0; t < 4; t++)
        if (4 * g + t < k) x |= (uint32_t)ar[4 * g + t] << (8 * t);
    return (int32_t)x;
}

static inline int32_t load4(const uint8_t *p) { int32_t x; memcpy(&x, p, 4); return x; }

#ifdef TE_X86
#include "gemm_s8_avx2.h"
#endif
#ifdef TE_ARM64
#include "gemm_s8_neon.h"
#endif

int64_t tinyeff_s8_isa_built(void) {
#if defined(TE_X86)
    return (1 << ISA_PORTABLE) | (1 << ISA_AVX2) | (1 << TE_ISA_AVX512) | (1 << ISA_VNNI);
#elif defined(TE_ARM64)
    return (1 << ISA_PORTABLE) | (1 << ISA_NEON) | (1 << ISA_NEON_DOT);
#else
    return 1 << ISA_PORTABLE;
#endif
}

/* ---- tile kernels: rows [0, mr) of A times one panel (width w) -> tile[mr][PANEL] int32 ------ */

/* Rows as pointers plus segments (see gemm_ctx.conv): row i's bytes are nseg runs of k bytes,
 * seg_stride apart; the packed groups of segment s follow those of segment s - 1. */
static void tile_portable(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k,
                          const int8_t *bp, int64_t w, int mr, int a_signed, int32_t *tile) {
    int64_t kg = k_groups(k);
    for (int i = 0; i < mr; i++) {
        int32_t *acc = tile + i * PANEL;
        memset(acc, 0, sizeof(int32_t) * PANEL);
        const int8_t *b = bp;
        for (int64_t s = 0; s < nseg; s++) {
            const uint8_t *ar = rows[i] + s * seg_stride;
            for (int64_t g = 0; g < kg; g++, b += w * 4) {
                int32_t av[4];
                for (int t = 0; t < 4; t++) {
                    int64_t kk = 4 * g + t;
                    av[t] = kk < k ? (a_signed ? (int32_t)(int8_t)ar[kk] : (int32_t)ar[kk]) : 0;
                }
                for (int64_t j = 0; j < w; j++)
                    acc[j] += av[0] * b[4 * j] + av[1] * b[4 * j + 1] + av[2] * b[4 * j + 2] + av[3] * b[4 * j + 3];
            }
        }
    }
}

#ifdef TE_X86
/* mr, nv (16-column vectors) and a_signed are compile-time constants after inlining, so the
 * accumulator array lives in registers. */
/* Row I of one group of 4 k: broadcast the row's 4 A bytes against the nv B vectors. Macros, not
 * functions, and one small accumulator array per row (acc0..acc5): gcc keeps arrays of at most a
 * few vectors in registers, but spills a single 24-vector array to the stack every iteration. */
#define VNNI_ROW_STEP(I, ACC, LOAD_A)                                                             \
    if (mr > (I)) {                                                                               \
        __m512i av = _mm512_set1_epi32(LOAD_A(I));                                                \
        if (a_signed) av = _mm512_xor_si512(av, flip);         /* a + 128, as unsigned bytes */   \
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++)                                      \
            ACC[v] = _mm512_dpbusd_epi32(ACC[v], av, bv[v]);                                       \
    }

#define VNNI_GROUP(LOAD_A)                                                                        \
    do {                                                                                          \
        __m512i bv[4];                                                                            \
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++)                                      \
            bv[v] = _mm512_loadu_si512((const void *)(b + 64 * v));                               \
        VNNI_ROW_STEP(0, acc0, LOAD_A) VNNI_ROW_STEP(1, acc1, LOAD_A)                              \
        VNNI_ROW_STEP(2, acc2, LOAD_A) VNNI_ROW_STEP(3, acc3, LOAD_A)                              \
        VNNI_ROW_STEP(4, acc4, LOAD_A) VNNI_ROW_STEP(5, acc5, LOAD_A)                              \
    } while (0)

#define VNNI_STORE_ROW(I, ACC)                                                                    \
    if (mr > (I)) {                                                                               \
        _Pragma("GCC unroll 4") for (int v = 0; v < nv; v++)                                      \
            _mm512_storeu_si512((void *)(tile + (I) * PANEL + 16 * v), ACC[v]);                   \
    }

/* mr, nv (16-column vectors) and a_signed are compile-time constants after inlining, so the
 * accumulators live in registers. */
VNNI_TARGET static inline __attribute__((always_inline)) void
tile_vnni_fixed(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k, const int8_t *bp,
                int64_t w, const int mr, const int nv, const int a_signed, const int has_tail, int32_t *tile) {
    const __m512i flip = _mm512_set1_epi32((int32_t)0x80808080u);
    const __m512i zero = _mm512_setzero_si512();
    __m512i acc0[4] = {zero, zero, zero, zero}, acc1[4] = {zero, zero, zero, zero};
    __m512i acc2[4] = {zero, zero, zero, zero}, acc3[4] = {zero, zero, zero, zero};
    __m512i acc4[4] = {zero, zero, zero, zero}, acc5[4] = {zero, zero, zero, zero};
    /* k is one segment's length: the whole row (nseg = 1, any k) or one kernel row of an implicit
     * im2col (k % 4 == 0, so no tail). Row pointers past mr repeat row 0 and are never read.
     * has_tail (k % 4 != 0, a compile-time constant) keeps the branch out of the common loop. */
    int64_t kg = k_groups(k), kfull = k / 4;
    int32_t tail[MR] = {0};          /* the K % 4 tail group, zero-filled, against zero-padded B rows */
    if (kfull < kg)
        for (int i = 0; i < mr; i++) tail[i] = load_group(rows[i], kfull, k);
    const uint8_t *r0 = rows[0], *r1 = rows[mr > 1 ? 1 : 0], *r2 = rows[mr > 2 ? 2 : 0];
    const uint8_t *r3 = rows[mr > 3 ? 3 : 0], *r4 = rows[mr > 4 ? 4 : 0], *r5 = rows[mr > 5 ? 5 : 0];
    const int8_t *b = bp;
    for (int64_t s = 0; s < nseg; s++) {
        /* One loop with a predictable branch, not a main loop plus a tail copy: with two copies gcc
         * spills accumulators to the stack in the main loop. */
        for (int64_t g = 0; g < kg; g++, b += w * 4) {
#define LOAD_A(i) (!has_tail || g < kfull ? load4(r##i + 4 * g) : tail[i])
            VNNI_GROUP(LOAD_A);
        }
        r0 += seg_stride; r1 += seg_stride; r2 += seg_stride;
        r3 += seg_stride; r4 += seg_stride; r5 += seg_stride;
    }
    VNNI_STORE_ROW(0, acc0) VNNI_STORE_ROW(1, acc1) VNNI_STORE_ROW(2, acc2)
    VNNI_STORE_ROW(3, acc3) VNNI_STORE_ROW(4, acc4) VNNI_STORE_ROW(5, acc5)
}

#define VNNI_CASE(MRV, NVV)                                                                       \
    case (MRV) * 8 + (NVV):                                                                       \
        if (a_signed) tile_vnni_fixed(rows, nseg, seg_stride, k, bp, w, MRV, NVV, 1, 1, tile);    \
        else if (k % 4) tile_vnni_fixed(rows, nseg, seg_stride, k, bp, w, MRV, NVV, 0, 1, tile);  \
        else tile_vnni_fixed(rows, nseg, seg_stride, k, bp, w, MRV, NVV, 0, 0, tile);             \
        break;
#define VNNI_ROW(MRV) VNNI_CASE(MRV, 1) VNNI_CASE(MRV, 2) VNNI_CASE(MRV, 3) VNNI_CASE(MRV, 4)

VNNI_TARGET static void tile_vnni(const uint8_t *const *rows, int64_t nseg, int64_t seg_stride, int64_t k,
                                  const int8_t *bp, int64_t w, int mr, int a_signed, int32_t *tile) {
    switch (mr * 8 + (int)(w / 16)) {
        VNNI_ROW(1) VNNI_ROW(2) VNNI_ROW(3) VNNI_ROW(4) VNNI_ROW(5) VNNI_ROW(6)
        default: break;                    /* unreachable: 1 <= mr <= 6, 1 <= w/16 <= 4 */
    }
}

#endif /* TE_X86 */

/* ---- epilogue and driver -------------------------------------------------------------------- */

static void store_tile(const gemm_ctx *c, int64_t m0, int64_t p0, int mr, const int32_t *tile) {
    int64_t ncols = c->n - p0 < PANEL ? c->n - p0 : PANEL;
    const int32_t *colsum = c->colsum + p0;
    for (int i = 0; i < mr; i++) {
        const int32_t *t = tile + i * PANEL;
        if (c->out32) {
            int32_t *o = c->out32 + (m0 + i) * c->ldo + p0;
            for (int64_t j = 0; j < ncols; j++)  /* wrapping uint32 arithmetic: exact, see top */
                o[j] = (int32_t)((uint32_t)t[j] - (uint32_t)c->corr * (uint32_t)colsum[j]);
        } else {
            uint8_t *o = c->out8 + (m0 + i) * c->ldo + p0;
#ifdef TE_HAVE_AVX512_REQUANT
            if (c->isa == ISA_VNNI) {
                te_requant_row_avx512(t, colsum, c->corr, c->bias ? c->bias + p0 : NULL, c->multiplier + p0,
                                      c->shift + p0, c->zero_point_out, c->qmin, c->qmax, o, ncols);
                continue;
            }
#endif
#ifdef TE_HAVE_NEON_REQUANT
            if (TE_ISA_HAS_NEON(c->isa)) {
                te_requant_row_neon(t, colsum, c->corr, c->bias ? c->bias + p0 : NULL, c->multiplier + p0,
                                    c->shift + p0, c->zero_point_out, c->qmin, c->qmax, o, ncols);
                continue;
            }
#endif
            for (int64_t j = 0; j < ncols; j++) {
                int64_t v = (int64_t)(int32_t)((uint32_t)t[j] - (uint32_t)c->corr * (uint32_t)colsum[j]);
                int64_t bias = c->bias ? c->bias[p0 + j] : 0;
                o[j] = te_requant_one(v + bias, c->multiplier[p0 + j], c->shift[p0 + j],
                                      c->zero_point_out, c->qmin, c->qmax);
            }
        }
    }
}

#include "gemm_s8_a7.h"         /* avx2_tiles, avx2_mode, panel_quads, activations_7bit */

/* rows: the chunk's row pointers (explicit A: lda apart; implicit im2col: anywhere); p: the panel.
 * Each path walks the chunk in blocks of the rows its register tile holds. qf: panel p's
 * quads_fit per 16 columns where the AVX2 quad step may run (panel_quads), else NULLs. */
static void run_tile(const gemm_ctx *c, const uint8_t *const *rows, int64_t p, const int8_t *bp, int64_t w,
                     int nrows, const uint8_t *const *qf, int32_t *chunk) {
    int64_t nseg = c->conv ? c->nseg : 1, seg_stride = c->conv ? c->seg_stride : 0, k = c->conv ? c->kseg : c->k;
#ifdef TE_X86
    if (avx2_tiles(c)) {
        tile_avx2(rows, nseg, seg_stride, k, bp, w, nrows, c->a_signed, avx2_mode(c, p), qf, chunk);
        return;
    }
#else
    (void)p, (void)qf;
#endif
    for (int i0 = 0; i0 < nrows; i0 += MR) {
        int mr = nrows - i0 < MR ? nrows - i0 : MR;
        int32_t *tile = chunk + i0 * PANEL;
#ifdef TE_X86
        if (c->isa == ISA_VNNI) { tile_vnni(rows + i0, nseg, seg_stride, k, bp, w, mr, c->a_signed, tile); continue; }
#endif
#ifdef TE_ARM64
        if (TE_ISA_HAS_NEON(c->isa)) {
            tile_neon(rows + i0, nseg, seg_stride, k, bp, w, mr, c->a_signed, c->isa == ISA_NEON_DOT, tile);
            continue;
        }
#endif
        tile_portable(rows + i0, nseg, seg_stride, k, bp, w, mr, c->a_signed, tile);
    }
}

/* What the tiles add to every sum of column j, times colsum[j]: x86 tiles read signed A as a + 128
 * (vpdpbusd and vpmaddubsw take unsigned bytes), NEON tiles read unsigned A as a - 128 (sdot and
 * vmull_s8 take signed bytes); the portable tile reads A as it is. */
static int32_t flip_correction(int64_t isa, int a_signed) {
    if (TE_ISA_HAS_AVX2(isa)) return a_signed ? 128 : 0;
    if (TE_ISA_HAS_NEON(isa)) return a_signed ? 0 : -128;
    return 0;
}

#include "gemm_s8_epilogue.h"      /* requantizing stores and the row max of a chunk */

/* The pooling window of row m in im2col_8_nhwc's row order (n, ph, pw, dy, dx), for m at the
 * start of a window; stepped, not divided, from one window to the next (row_pointers). */
typedef struct { int64_t img, ph, pw; } rowpos;

static rowpos row_start(const gemm_ctx *c, int64_t m) {
    int64_t win = c->pool * c->pool, per_img = c->ph_n * c->pw_n * win;
    int64_t wi = m % per_img / win;
    rowpos p = {m / per_img, wi / c->pw_n, wi % c->pw_n};
    return p;
}

/* ptrs[0, rows): where rows m0.. of A start (the top-left of each window when conv). *p is the
 * position of row m0 (conv), stepped past the chunk: the next chunk of the task starts there, so
 * the divisions of row_start run once per task, not once per chunk (a small-K conv has many). */
static void row_pointers(const gemm_ctx *c, int64_t m0, int rows, rowpos *p, const uint8_t **ptrs) {
    if (!c->conv) {
        for (int i = 0; i < rows; i++) ptrs[i] = c->a + (m0 + i) * c->lda;
        return;
    }
    int64_t pool = c->pool, xs = c->stride * c->cin, ys = c->stride * c->wp * c->cin;
    /* A chunk holds whole windows (CHUNK is a multiple of pool * pool): one pointer per window, the
     * window's rows at fixed offsets from it, in row_step's order (dx fastest). */
    for (int i = 0; i < rows; i += (int)(pool * pool)) {
        const uint8_t *base = c->a + ((p->img * c->hp + p->ph * pool * c->stride) * c->wp +
                                      p->pw * pool * c->stride) * c->cin;
        for (int64_t dy = 0; dy < pool; dy++)
            for (int64_t dx = 0; dx < pool; dx++) ptrs[i + dy * pool + dx] = base + dy * ys + dx * xs;
        if (++p->pw < c->pw_n) continue;
        p->pw = 0;
        if (++p->ph < c->ph_n) continue;
        p->ph = 0;
        p->img++;
    }
}


/* Tasks: (block of mc rows, one panel), handed out dynamically: on a shared machine a preempted
 * thread then delays only its own task, not a fixed half of the GEMM. Inside a task, chunks of up to CHUNK rows (two MR-row
 * register tiles) go through the optional row max and then the epilogue. mc is a multiple of
 * CHUNK, so a pooling group (which divides CHUNK and M) never straddles a chunk. */
static void run_gemm(gemm_ctx *c) {
    c->a7 = activations_7bit(c);
    int64_t kg = k_groups(c->k);
    int64_t npanels = (c->n + PANEL - 1) / PANEL;
    int64_t mc = A_BLOCK_BYTES / (c->k > 0 ? c->k : 1) / CHUNK * CHUNK;
    /* at least MIN_TASKS row blocks (a small-K conv has few): a thread descheduled by a busy machine
     * then holds back the end of the GEMM by a small task, not by an eighth of it */
    int64_t balanced = (c->m / MIN_TASKS + CHUNK - 1) / CHUNK * CHUNK;
    if (mc > balanced) mc = balanced;
    if (mc < CHUNK) mc = CHUNK;
    int64_t nmb = (c->m + mc - 1) / mc;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (c->m * c->n * c->k >= TINYEFF_PARALLEL_MIN_MACS)
    for (int64_t mb = 0; mb < nmb; mb++) {
        for (int64_t p = 0; p < npanels; p++) {
            int32_t chunk[CHUNK * PANEL] __attribute__((aligned(64)));
            int32_t fused_bias[PANEL];
            int64_t p0 = p * PANEL, w = panel_width(c->n, p0);
            const int8_t *bp = c->packed + p0 * kg * 4;
            int64_t mend = (mb + 1) * mc < c->m ? (mb + 1) * mc : c->m;
            int fast = panel_fast_prepare(c, p0, fused_bias);
#ifdef TE_HAVE_AVX2_REQUANT
            te_requant8_params prm[PANEL / 8];
            /* the in-register pool needs the AVX2 epilogue's parameters even on an AVX-512 CPU */
            int pooled = fast && c->group == 4 && avx2_tiles(c) && avx2_mode(c, p) != AVX2_EXACT;
            if (fast && (pooled || !TE_ISA_HAS_AVX512(c->isa))) prepare_avx2(c, p0, fused_bias, prm);
#endif
            const uint8_t *qf[PANEL / GROUP] = {NULL, NULL, NULL, NULL};
#ifdef TE_X86
            if (avx2_tiles(c) && avx2_mode(c, p) == AVX2_QUAD) panel_quads(c, p, qf);
#endif
            rowpos pos = c->conv ? row_start(c, mb * mc) : (rowpos){0, 0, 0};
            for (int64_t m0 = mb * mc; m0 < mend; m0 += CHUNK) {
                int rows = (int)(mend - m0 < CHUNK ? mend - m0 : CHUNK);
                const uint8_t *ptrs[CHUNK];
                row_pointers(c, m0, rows, &pos, ptrs);
#ifdef TE_HAVE_AVX2_REQUANT
                if (pooled) { pool_chunk_avx2(c, ptrs, rows, p, bp, w, qf, prm, m0 / 4); continue; }
#endif
                run_tile(c, ptrs, p, bp, w, rows, qf, chunk);
                int64_t out_row = m0;
                if (c->group > 1) {
                    max_rows(c, chunk, rows, w);
                    rows = (int)(rows / c->group);
                    out_row = m0 / c->group;
                }
#ifdef TE_HAVE_AVX512_REQUANT
                if (fast && TE_ISA_HAS_AVX512(c->isa)) { store_tile_fast(c, out_row, p0, rows, chunk, fused_bias); continue; }
#endif
#ifdef TE_HAVE_AVX2_REQUANT
                if (fast) { store_tile_fast_avx2(c, out_row, p0, rows, chunk, prm); continue; }
#else
                (void)fast;
#endif
                store_tile(c, out_row, p0, rows, chunk);
            }
        }
    }
}

static int check_isa(int64_t isa) {
    return TE_ISA_OK(isa) && (tinyeff_s8_isa_built() >> isa & 1);
}

int tinyeff_gemm_u8s8_packed(const uint8_t *a, int64_t lda, int64_t m, int64_t k, int64_t n,
                             const int8_t *packed, const int32_t *colsum, const uint8_t *pairs_fit, const uint8_t *quads_fit,
                             int64_t a_signed,
                             int64_t isa, int32_t *out, int64_t ldo) {
    if (m < 0 || k < 0 || n < 0 || lda < k || ldo < n) return 1;
    if (!check_isa(isa)) return 2;
    gemm_ctx c = {a, lda, m, k, n, packed, colsum, pairs_fit, quads_fit, (int)(a_signed != 0), 0, (int)isa,
                  flip_correction(isa, a_signed != 0), out, NULL, ldo, NULL, NULL, NULL, 0, 0, 0, 1};
    run_gemm(&c);
    return 0;
}

int tinyeff_gemm_u8s8_requant(const uint8_t *a, int64_t lda, int64_t m, int64_t k, int64_t n,
                              const int8_t *packed, const int32_t *colsum, const uint8_t *pairs_fit,
                              const uint8_t *quads_fit, int64_t a_zero_point, const int32_t *bias, const int32_t *multiplier,
                              const int32_t *shift, int64_t zero_point_out, int64_t qmin, int64_t qmax, int64_t group,
                              int64_t isa, uint8_t *out, int64_t ldo) {
    if (m < 0 || k < 0 || n < 0 || lda < k || ldo < n || a_zero_point < 0 || a_zero_point > 255) return 1;
    if (group < 1 || CHUNK % group != 0 || m % group != 0) return 1;
    if (!check_isa(isa)) return 2;
    gemm_ctx c = {a, lda, m, k, n, packed, colsum, pairs_fit, quads_fit, 0, 0, (int)isa,
                  (int32_t)a_zero_point + flip_correction(isa, 0), NULL, out, ldo, bias, multiplier, shift,
                  (int32_t)zero_point_out, (int32_t)qmin, (int32_t)qmax, group};
    run_gemm(&c);
    return 0;
}

/* conv + requantization (+ fused 2x2 max-pool) on an NHWC image without materialising im2col: the
 * GEMM above with implicit rows (gemm_ctx.conv). x is (n, hp, wp, c), already padded with the
 * input zero point, and wide enough that the last window's rounded-up segment stays inside a row
 * ((ow - 1) * stride * c + kseg <= wp * c); the weight is packed in im2col_8_nhwc's (kh, kw, c)
 * column order with each kernel row padded to kseg. */
int tinyeff_conv2d_u8s8_requant_nhwc(const uint8_t *x, int64_t n, int64_t hp, int64_t wp, int64_t c, int64_t kh,
                                     int64_t kw, int64_t stride, int64_t pool, int64_t oh, int64_t ow,
                                     const int8_t *packed, const int32_t *colsum, const uint8_t *pairs_fit,
                                     const uint8_t *quads_fit, int64_t oc,
                                     int64_t a_zero_point, const int32_t *bias, const int32_t *multiplier,
                                     const int32_t *shift, int64_t zero_point_out, int64_t qmin, int64_t qmax,
                                     int64_t isa, uint8_t *out) {
    int64_t kseg = (kw * c + 3) / 4 * 4;
    if (n < 0 || c < 1 || kh < 1 || kw < 1 || stride < 1 || pool < 1 || oh < pool || ow < pool || oc < 0 ||
        (oh - 1) * stride + kh > hp || (ow - 1) * stride * c + kseg > wp * c ||
        a_zero_point < 0 || a_zero_point > 255 || CHUNK % (pool * pool) != 0) return 1;
    if (!check_isa(isa)) return 2;
    int64_t ph_n = oh / pool, pw_n = ow / pool, m = n * ph_n * pw_n * pool * pool;
    gemm_ctx ctx = {x, 0, m, kh * kseg, oc, packed, colsum, pairs_fit, quads_fit, 0, 0, (int)isa,
                    (int32_t)a_zero_point + flip_correction(isa, 0), NULL, out, oc, bias, multiplier, shift,
                    (int32_t)zero_point_out, (int32_t)qmin, (int32_t)qmax, pool * pool,
                    1, c, hp, wp, stride, pool, ph_n, pw_n, kh, kseg, wp * c};
    if (m && oc) run_gemm(&ctx);
    return 0;
}
