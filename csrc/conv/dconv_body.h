/* dconv_body.h: the direct-convolution micro-kernels of dconv.c, written once over a vector width.
 *
 * dconv.c includes this file once per ISA path and tile width, after defining (DC_SFX and DC_FV
 * are undefined at the end of this file, the ISA's parameters are left for its next width):
 *   DC_SFX            name suffix of this instantiation (portable, avx2, avx512, neon, ...)
 *   DC_TARGET         the function attribute that enables the ISA (empty for baseline code)
 *   DC_VB             vector width in bytes (16, 32 or 64); DC_VL = DC_VB / 4 floats
 *   DC_FV             forward: vectors of positions per register block (DC_R = 4 channels)
 *   DC_WR, DC_WT      weight gradient: channels x taps per register block
 *   DC_FMA(a, b, c)   a * b + c on vectors (one fused instruction where the ISA has one: the
 *                     build uses -std=c11, whose default -ffp-contract=off never fuses `c += a * b`)
 *   DC_LOAD_PART(p, n)  the first n floats at p (n may be <= 0 or >= DC_VL), zeros after them,
 *                     never touching memory past p + n: a masked load where the ISA has one
 *   DC_LOAD_HALVES(a, b)  (optional) DC_VL / 2 floats from a, then DC_VL / 2 from b
 * Accumulators are small arrays indexed only by constants once the fixed-count loops unroll, so
 * the compiler keeps them in registers (checked in the generated code: no stack traffic in the
 * tap loop). Register budget per ISA: accumulators + loads + one broadcast <= registers (16 ymm on
 * AVX2 and xmm on SSE2, 32 zmm on AVX-512 and 32 q on NEON).
 */
#define DC_CAT2(a, b) a##_##b
#define DC_CAT(a, b) DC_CAT2(a, b)
#define DC_NAME(x) DC_CAT(x, DC_SFX)
#define DC_VL (DC_VB / 4)
#define DC_VF DC_NAME(dc_vf)
#define DC_VFU DC_NAME(dc_vfu)
#define DC_VI DC_NAME(dc_vi)

typedef float DC_VF __attribute__((vector_size(DC_VB)));
typedef float DC_VFU __attribute__((vector_size(DC_VB), aligned(4), may_alias));   /* unaligned */
typedef int32_t DC_VI __attribute__((vector_size(DC_VB)));

#ifndef DC_LOAD_PART
#define DC_LOAD_PART(p, n) DC_NAME(dc_load_part)(p, n)
#define DC_LOAD_PART_GENERIC
DC_TARGET static inline __attribute__((always_inline)) DC_VF DC_NAME(dc_load_part)(const float *p, int64_t n)
{
    DC_VF v = {0};
    for (int i = 0; i < DC_VL; i++)
        if (i < n)
            v[i] = p[i];
    return v;
}
#endif

/* Forward: DC_R channels x DC_FV vectors of positions. Per tap, DC_FV input vectors are loaded
 * once and each of the DC_R weights is broadcast once: DC_FV + DC_R loads feed DC_R * DC_FV FMAs.
 * `partial` (a constant after inlining) loads only the first cnt positions, for planes shorter
 * than one tile; longer planes end with a full tile that overlaps the one before it. */
DC_TARGET static inline __attribute__((always_inline))
void DC_NAME(dc_tile_body)(const float *s, const int64_t *off, int64_t ntaps, const float *wb,
                           int64_t cnt, float *tile, const int partial)
{
    DC_VF acc[DC_R][DC_FV];
    for (int r = 0; r < DC_R; r++)
        for (int v = 0; v < DC_FV; v++)
            acc[r][v] = (DC_VF){0};
    for (int64_t t = 0; t < ntaps; t++) {
        const float *st = s + off[t];
        DC_VF x[DC_FV];
        for (int v = 0; v < DC_FV; v++) {
            if (partial)
                x[v] = DC_LOAD_PART(st + v * DC_VL, cnt - v * DC_VL);
            else
                x[v] = *(const DC_VFU *)(st + v * DC_VL);
        }
        for (int r = 0; r < DC_R; r++) {
            DC_VF w = wb[t * DC_R + r] - (DC_VF){0};     /* a broadcast: w - (+0) is w exactly */
            for (int v = 0; v < DC_FV; v++)
                acc[r][v] = DC_FMA(w, x[v], acc[r][v]);
        }
    }
    for (int r = 0; r < DC_R; r++)
        for (int v = 0; v < DC_FV; v++)
            *(DC_VFU *)(tile + r * DC_TILE_MAX + v * DC_VL) = acc[r][v];
}

DC_TARGET static void DC_NAME(dc_tile)(const float *s, const int64_t *off, int64_t ntaps,
                                       const float *wb, int64_t cnt, float *tile)
{
    DC_NAME(dc_tile_body)(s, off, ntaps, wb, cnt, tile, 0);
}

DC_TARGET static void DC_NAME(dc_tile_part)(const float *s, const int64_t *off, int64_t ntaps,
                                            const float *wb, int64_t cnt, float *tile)
{
    DC_NAME(dc_tile_body)(s, off, ntaps, wb, cnt, tile, 1);
}

/* Forward, row mode: the same register block, but vector v starts at its own position vpos[v]
 * (a whole vector inside one output row, the last of a row shifted left to end at OW), so no
 * thrown-away columns are computed: on an 8x8 plane padded to width 10 the flat tiles spend a
 * fifth of their FMAs on them. Each vector goes straight to its output plane at vdst[v], with
 * bias and maybe ReLU; channels from nr up are padding of the last block and are not stored. */
DC_TARGET static void DC_NAME(dc_rtile)(const float *s, const int64_t *off, int64_t ntaps,
                                        const float *wb, const int64_t *vpos, const int64_t *vdst,
                                        float *out, int64_t plane, int64_t nr, const float *bias,
                                        int64_t relu)
{
    DC_VF acc[DC_R][DC_FV];
    const float *sv[DC_FV];
    for (int v = 0; v < DC_FV; v++)
        sv[v] = s + vpos[v];
    for (int r = 0; r < DC_R; r++)
        for (int v = 0; v < DC_FV; v++)
            acc[r][v] = (DC_VF){0};
    for (int64_t t = 0; t < ntaps; t++) {
        int64_t o = off[t];
        DC_VF x[DC_FV];
        for (int v = 0; v < DC_FV; v++)
            x[v] = *(const DC_VFU *)(sv[v] + o);
        for (int r = 0; r < DC_R; r++) {
            DC_VF w = wb[t * DC_R + r] - (DC_VF){0};
            for (int v = 0; v < DC_FV; v++)
                acc[r][v] = DC_FMA(w, x[v], acc[r][v]);
        }
    }
    for (int r = 0; r < DC_R && r < nr; r++) {
        DC_VF b = (bias ? bias[r] : 0.0f) - (DC_VF){0};
        for (int v = 0; v < DC_FV; v++) {
            DC_VF y = acc[r][v] + b;
            if (relu)                       /* y where y > 0, else +0 (NaN too, as the reference) */
                y = (DC_VF)((DC_VI)y & (y > (DC_VF){0}));
            *(DC_VFU *)(out + r * plane + vdst[v]) = y;
        }
    }
}

#ifndef DC_LOAD_HALVES
/* Two output rows of DC_VL / 2 floats in one vector: the first half from a, the second from b.
 * (Paths with a vector insert define DC_LOAD_HALVES as a half load and an insert: built lane by
 * lane, a 64-byte vector went through the stack.) */
#define DC_LOAD_HALVES(a, b) DC_NAME(dc_load_halves)(a, b)
#define DC_LOAD_HALVES_GENERIC
DC_TARGET static inline __attribute__((always_inline)) DC_VF DC_NAME(dc_load_halves)(const float *a,
                                                                                  const float *b)
{
    DC_VF v;
    for (int i = 0; i < DC_VL / 2; i++) {
        v[i] = a[i];
        v[i + DC_VL / 2] = b[i];
    }
    return v;
}
#endif

/* Weight gradient: DC_WR channels x DC_WT taps, each accumulator a vector of partial sums over
 * positions, carried across images b0 .. b1-1 and reduced horizontally once at the end. Per
 * vector of positions: DC_WR gradient loads + DC_WT input loads feed DC_WR * DC_WT FMAs. Channel
 * rows past nr re-read the last real row and taps past nt the last real tap (their sums are
 * dropped), so the block needs no masks. The gradient rows are zero from position `length` up to
 * glen (a multiple of 16), so every image runs whole vectors past its end, reading input that
 * is multiplied by zero, unless those reads would leave src (src_len floats): such an image
 * (the last of a batch) stops at a whole vector, and `tail` (a constant after inlining: a second
 * function with its own accumulators, so the main loop's stay in registers) adds its last,
 * masked vector. */
DC_TARGET static inline __attribute__((always_inline))
void DC_NAME(dc_wpass)(const float *src, int64_t img_stride, int64_t src_len, const float *g,
                       int64_t g_img, int64_t glen, int64_t b0, int64_t b1, int64_t nr,
                       const int64_t *off, int64_t nt, int64_t length, int64_t rows, int64_t xrow,
                       int64_t grow, float *part, int64_t ldp, const int tail, const int rowmode)
{
    const int pairs = rowmode == 2;
    DC_VF c[DC_WR][DC_WT];
    for (int r = 0; r < DC_WR; r++)
        for (int k = 0; k < DC_WT; k++)
            c[r][k] = (DC_VF){0};
    int64_t full = length / DC_VL * DC_VL, whole = (length + DC_VL - 1) / DC_VL * DC_VL;
    int64_t reach = dc_max_offset(off, nt) + whole;    /* floats one image's whole vectors read */
    for (int64_t b = b0; b < b1; b++) {
        int64_t safe = rowmode || b * img_stride + reach <= src_len;
        if (tail && safe)
            continue;
        const float *sb = src + b * img_stride, *gr[DC_WR], *xs[DC_WT];
        for (int r = 0; r < DC_WR; r++)
            gr[r] = g + b * g_img + (r < nr ? r : nr - 1) * glen;
        for (int k = 0; k < DC_WT; k++)
            xs[k] = sb + off[k < nt ? k : nt - 1];
        int64_t p0 = tail ? full : 0, end = rowmode ? length : tail ? full + 1 : safe ? whole : full;
        for (int64_t i = 0; i < (rowmode ? rows : 1); i += pairs ? 2 : 1) {
            for (int64_t p = p0; p < end; p += DC_VL) {
                DC_VF gv[DC_WR];
                for (int r = 0; r < DC_WR; r++)
                    gv[r] = *(const DC_VFU *)(gr[r] + p);
                for (int k = 0; k < DC_WT; k++) {
                    DC_VF xv;
                    if (tail)
                        xv = DC_LOAD_PART(xs[k] + p, length - p);
                    else if (pairs)
                        xv = DC_LOAD_HALVES(xs[k], xs[k] + xrow);
                    else
                        xv = *(const DC_VFU *)(xs[k] + p);
                    for (int r = 0; r < DC_WR; r++)
                        c[r][k] = DC_FMA(gv[r], xv, c[r][k]);
                }
            }
            for (int r = 0; r < DC_WR && rowmode; r++)
                gr[r] += pairs ? 2 * grow : grow;
            for (int k = 0; k < DC_WT && rowmode; k++)
                xs[k] += pairs ? 2 * xrow : xrow;
        }
    }
    float sums[DC_WR][DC_WT];          /* constant indices only on c, so it stays in registers */
    for (int r = 0; r < DC_WR; r++)
        for (int k = 0; k < DC_WT; k++) {
            dc_v4 q = {0};                 /* add the 16-byte quarters, then the last 4 lanes */
            for (int i = 0; i < DC_VB / 16; i++) {
                dc_v4 h;
                memcpy(&h, (const char *)&c[r][k] + 16 * i, 16);
                q += h;
            }
            sums[r][k] = (q[0] + q[2]) + (q[1] + q[3]);
        }
    for (int r = 0; r < nr && r < DC_WR; r++)
        for (int k = 0; k < nt && k < DC_WT; k++)
            part[r * ldp + k] += sums[r][k];
}

DC_TARGET static __attribute__((noinline))
void DC_NAME(dc_wpass_main)(const float *src, int64_t img_stride, int64_t src_len, const float *g,
                            int64_t g_img, int64_t glen, int64_t b0, int64_t b1, int64_t nr,
                            const int64_t *off, int64_t nt, int64_t length, float *part, int64_t ldp)
{
    DC_NAME(dc_wpass)(src, img_stride, src_len, g, g_img, glen, b0, b1, nr, off, nt, length, 0, 0,
                      0, part, ldp, 0, 0);
}

/* Row mode gets its own copies (whole vectors per row; pairs of half-vector rows), so the flat
 * loop keeps the code it had without the row steps. */
DC_TARGET static __attribute__((noinline))
void DC_NAME(dc_wpass_pairs)(const float *src, int64_t img_stride, int64_t src_len, const float *g,
                             int64_t g_img, int64_t glen, int64_t b0, int64_t b1, int64_t nr,
                             const int64_t *off, int64_t nt, int64_t length, int64_t rows,
                             int64_t xrow, int64_t grow, float *part, int64_t ldp)
{
    DC_NAME(dc_wpass)(src, img_stride, src_len, g, g_img, glen, b0, b1, nr, off, nt, length, rows,
                      xrow, grow, part, ldp, 0, 2);
}

DC_TARGET static __attribute__((noinline))
void DC_NAME(dc_wpass_rows)(const float *src, int64_t img_stride, int64_t src_len, const float *g,
                            int64_t g_img, int64_t glen, int64_t b0, int64_t b1, int64_t nr,
                            const int64_t *off, int64_t nt, int64_t length, int64_t rows,
                            int64_t xrow, int64_t grow, float *part, int64_t ldp)
{
    DC_NAME(dc_wpass)(src, img_stride, src_len, g, g_img, glen, b0, b1, nr, off, nt, length, rows,
                      xrow, grow, part, ldp, 0, 1);
}

DC_TARGET static __attribute__((noinline))
void DC_NAME(dc_wpass_tail)(const float *src, int64_t img_stride, int64_t src_len, const float *g,
                            int64_t g_img, int64_t glen, int64_t b0, int64_t b1, int64_t nr,
                            const int64_t *off, int64_t nt, int64_t length, float *part, int64_t ldp)
{
    DC_NAME(dc_wpass)(src, img_stride, src_len, g, g_img, glen, b0, b1, nr, off, nt, length, 0, 0,
                      0, part, ldp, 1, 0);
}

/* rows == 0: the flat pass over `length` positions (g on the padded grid, channel stride glen);
 * rows > 0: `rows` output rows of `length` positions (a multiple of DC_VL, or half a vector with
 * rows even: two rows per vector), the input rows xrow
 * floats apart and the gradient rows grow apart (g dense: no padded copy of it, no thrown-away
 * columns). */
static void DC_NAME(dc_wblock)(const float *src, int64_t img_stride, int64_t src_len,
                               const float *g, int64_t g_img, int64_t glen, int64_t b0, int64_t b1,
                               int64_t nr, const int64_t *off, int64_t nt, int64_t length,
                               int64_t rows, int64_t xrow, int64_t grow, float *part, int64_t ldp)
{
    if (rows && length % DC_VL) {          /* length == DC_VL / 2, rows even (dconv.c checks) */
        DC_NAME(dc_wpass_pairs)(src, img_stride, src_len, g, g_img, glen, b0, b1, nr, off, nt, length,
                                rows, xrow, grow, part, ldp);
        return;
    }
    if (rows) {
        DC_NAME(dc_wpass_rows)(src, img_stride, src_len, g, g_img, glen, b0, b1, nr, off, nt, length,
                               rows, xrow, grow, part, ldp);
        return;
    }
    DC_NAME(dc_wpass_main)(src, img_stride, src_len, g, g_img, glen, b0, b1, nr, off, nt, length,
                           part, ldp);
    int64_t whole = (length + DC_VL - 1) / DC_VL * DC_VL;
    if (length % DC_VL && (b1 - 1) * img_stride + dc_max_offset(off, nt) + whole > src_len)
        DC_NAME(dc_wpass_tail)(src, img_stride, src_len, g, g_img, glen, b0, b1, nr, off, nt,
                               length, part, ldp);
}

/* The table dconv.c dispatches through. */
static const dc_body DC_NAME(dc_body) = {DC_NAME(dc_tile), DC_NAME(dc_tile_part),
                                         DC_NAME(dc_rtile), DC_FV * DC_VL, DC_FV, DC_VL,
                                         DC_NAME(dc_wblock), DC_WR, DC_WT};

#ifdef DC_LOAD_PART_GENERIC
#undef DC_LOAD_PART
#undef DC_LOAD_PART_GENERIC
#endif
#ifdef DC_LOAD_HALVES_GENERIC
#undef DC_LOAD_HALVES
#undef DC_LOAD_HALVES_GENERIC
#endif
#undef DC_VFU
#undef DC_VI
#undef DC_VF
#undef DC_VL
#undef DC_NAME
#undef DC_CAT
#undef DC_CAT2
#undef DC_FV
#undef DC_SFX
