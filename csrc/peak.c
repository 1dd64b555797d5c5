/* peak.c: the FMA peak of one ISA path, measured rather than looked up.
 *
 * The benches quote every kernel as a percentage of this: a loop of independent vector FMAs on
 * registers only (12 accumulators cover the 4-cycle latency of two FMA pipes, and fit in the 16
 * registers of AVX2 and SSE2), run on every OpenMP thread at once, so turbo and shared-core effects
 * at that thread count are in the number. The same loop is compiled per ISA path at its vector
 * width; the portable path has no fused instruction and counts its multiply + add as the 2 flops
 * the portable kernels get from them. The caller times the call; this returns the flops done.
 */
#include <stdint.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif
#ifdef __aarch64__
#include <arm_neon.h>
#endif

#include "tinyeff.h"

#define PK_ACC 12

/* One instantiation per path: VB-byte vectors, FMA(a, b, c) = a * b + c. Returns the flops done. */
#define PK_LOOP(name, attr, VB, FMA)                                                          \
    attr static double name(int64_t iters)                                                    \
    {                                                                                         \
        typedef float v __attribute__((vector_size(VB)));                                     \
        v a[PK_ACC], m = 0.999999f - (v){0}, c = 1e-7f - (v){0};                              \
        for (int i = 0; i < PK_ACC; i++)                                                      \
            a[i] = (float)i - (v){0};                                                         \
        for (int64_t it = 0; it < iters; it++)                                                \
            for (int i = 0; i < PK_ACC; i++)                                                  \
                a[i] = FMA(a[i], m, c);                                                       \
        v s = a[0];                                                                           \
        for (int i = 1; i < PK_ACC; i++)                                                      \
            s += a[i];                                                                        \
        volatile float sink = s[0];     /* the result is used, so the loop cannot vanish */   \
        (void)sink;                                                                           \
        return 2.0 * PK_ACC * (VB / 4) * (double)iters;                                       \
    }

#define PK_MULADD(a, b, c) ((a) * (b) + (c))
PK_LOOP(pk_portable, , 16, PK_MULADD)
#ifdef __x86_64__
PK_LOOP(pk_avx2, __attribute__((target("avx2,fma"))), 32, _mm256_fmadd_ps)
PK_LOOP(pk_avx512, __attribute__((target("avx512f"))), 64, _mm512_fmadd_ps)
#endif
#ifdef __aarch64__
#define PK_NEON_FMA(a, b, c) vfmaq_f32(c, a, b)
PK_LOOP(pk_neon, , 16, PK_NEON_FMA)
#endif

static double pk_run(int64_t isa, int64_t iters)
{
#ifdef __x86_64__
    if (TE_ISA_HAS_AVX512(isa))
        return pk_avx512(iters);
    if (TE_ISA_HAS_AVX2(isa))
        return pk_avx2(iters);
#endif
#ifdef __aarch64__
    if (TE_ISA_HAS_NEON(isa))
        return pk_neon(iters);
#endif
    (void)isa;
    return pk_portable(iters);
}

int tinyeff_fma_peak(int64_t isa, int64_t iters, double *flops)
{
    if (iters < 1)
        return 1;
    if (!TE_ISA_OK(isa))
        return 2;
    double total = 0.0;
    #pragma omp parallel reduction(+ : total)
    total += pk_run(isa, iters);
    *flops = total;
    return 0;
}
