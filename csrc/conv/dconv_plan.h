/* dconv_plan.h: which forward body and tiling of dconv.c computes the fewest positions.
 *
 * Included once by dconv.c, after the per-ISA bodies (dc_body_<path>) are instantiated. A plane
 * of OH x OW outputs on a padded grid WS wide can be covered in flat tiles (consecutive positions,
 * `length` = (OH-1)*WS + OW of them per plane, thrown-away columns included) or in row tiles
 * (whole vectors inside each output row); each body has its own tile width, and the narrow
 * bodies cost more per position. dc_pick weighs them all and returns the cheapest.
 */
/* Positions one forward pass computes per channel block: flat tiles cover each plane's `length`
 * (the last tile full width, overlapping or masked); row mode covers every output row of the batch
 * with whole vectors (the last of a row overlapping), rounded up to whole tiles. Row mode needs
 * OW >= one vector. */
static int64_t dc_flat_cost(const dc_body *b, int64_t length)
{
    if (length < b->width)       /* the masked tile: its loop spills the 24 accumulators on AVX-512 */
        return 2 * b->width;
    return (length + b->width - 1) / b->width * b->width;
}

static int64_t dc_rows_cost(const dc_body *b, int64_t nimg, int64_t oh, int64_t ow)
{
    if (ow < b->vl)
        return INT64_MAX / 64;
    int64_t nv = nimg * oh * ((ow + b->vl - 1) / b->vl);
    return (nv + b->fv - 1) / b->fv * b->width;
}

/* A forward plan: one ISA path's body and whether it runs in row mode. */
typedef struct {
    const dc_body *body;
    int rows;
} dc_plan;

/* Of an ISA path's bodies (widest first, each with its cost weight in 32nds per position), the
 * body and mode computing the fewest weighted positions; the first on a tie, row mode before flat
 * (its tiles store straight to the output: on AVX2 a 13x13 plane, the same positions either
 * way, ran ~7% faster in rows). mode: 0 either, 1 flat only, 2 row mode where OW allows it. */
static dc_plan dc_cheapest(const dc_body *const *bodies, const int64_t *weight, int n, int64_t nimg,
                           int64_t length, int64_t oh, int64_t ow, int64_t mode)
{
    dc_plan best = {bodies[0], 0};
    int64_t best_cost = INT64_MAX;
    for (int rows = 1; rows >= 0; rows--) {
        if ((mode == 1 && rows) || (mode == 2 && !rows && ow >= bodies[0]->vl))
            continue;
        for (int i = 0; i < n; i++) {
            int64_t cost = (rows ? dc_rows_cost(bodies[i], nimg, oh, ow)
                                 : nimg * dc_flat_cost(bodies[i], length)) * weight[i];
            if (cost < best_cost) {
                best_cost = cost;
                best = (dc_plan){bodies[i], rows};
            }
        }
    }
    return best;
}

/* The best body not above isa and its mode. On AVX-512 the forward tile is 96, 64, 48 or 32
 * positions wide, whichever wastes least of this plane: 32 zmm registers fit the widest, but a
 * 13x13 output (193 flat positions) would leave a third of it empty, and the narrow ones still do
 * 2 FMAs per load. AVX2 has 16 ymm registers: a 4 x 3 tile (24 positions) or a 4 x 2 one (16). The
 * narrow tile spends 6 loads on 8 FMAs instead of 7 on 12, and its 8 accumulators barely cover
 * the FMA latency (measured ~12% slower per position in row mode), so it costs 36/32 per
 * position. */
static dc_plan dc_pick(int64_t isa, int64_t nimg, int64_t length, int64_t oh, int64_t ow,
                       int64_t mode)
{
#ifdef __x86_64__
    static const dc_body *const avx512[] = {&dc_body_avx512, &dc_body_avx512_4, &dc_body_avx512_3,
                                            &dc_body_avx512_2};
    static const int64_t avx512_w[] = {32, 32, 32, 32};
    static const dc_body *const avx2[] = {&dc_body_avx2, &dc_body_avx2_2};
    static const int64_t avx2_w[] = {32, 36};
    if (TE_ISA_HAS_AVX512(isa))
        return dc_cheapest(avx512, avx512_w, 4, nimg, length, oh, ow, mode);
    if (TE_ISA_HAS_AVX2(isa))
        return dc_cheapest(avx2, avx2_w, 2, nimg, length, oh, ow, mode);
#endif
    static const int64_t one_w[] = {32};
#ifdef __aarch64__
    static const dc_body *const neon[] = {&dc_body_neon};
    if (TE_ISA_HAS_NEON(isa))
        return dc_cheapest(neon, one_w, 1, nimg, length, oh, ow, mode);
#endif
    (void)isa;
    static const dc_body *const portable[] = {&dc_body_portable};
    return dc_cheapest(portable, one_w, 1, nimg, length, oh, ow, mode);
}

