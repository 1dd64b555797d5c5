/* peak_s8.c: the int8 multiply-add peak of one ISA path, measured rather than looked up.
 *
 * The int8 benches quote a GEMM or a conv as a percentage of this: a register-only loop of the
 * very instruction step the path's int8 tile runs (gemm_s8.c, gemm_s8_avx2.h, gemm_s8_neon.h),
 * with independent accumulators, run on every OpenMP thread at once, so the clock and the sharing
 * of the cores at that thread count are in the number. The caller times the call; this returns
 * the multiply-adds done. Per path, per 32 multiply-adds (uint8 x int8 -> int32):
 *   AVX2 / AVX-512 (the AVX2 tiles), "pair": vpmaddubsw, vpmaddwd (against int16 ones), vpaddd;
 *   AVX2 "quad" (7-bit activations, quads_fit panels): two vpmaddubsw added as int16 (vpaddw)
 *     before one vpmaddwd and one vpaddd: 5 instructions per 64 instead of 6;
 *   AVX-512 VNNI: half a zmm vpdpbusd;
 *   NEON: vmull_s8 twice and vpadalq_s16 twice per 16, i.e. 8 instructions;
 *   NEON dot product: two vdotq_s32;
 *   portable: 32 scalar int32 multiply-adds (whatever the compiler makes of them).
 * The x86 loops are inline assembly: in C, gcc merges the identical products of a register-only
 * loop and spills part of 8 vector accumulators, and the loop would then time something else.
 * What it leaves out: loads, broadcasts and the epilogue, which a real tile also issues; a kernel
 * at 100% of this would run nothing but its multiply-add chain.
 */
#include <stdint.h>
#ifdef __aarch64__
#include <arm_neon.h>
#endif

#include "tinyeff.h"

#if defined(__x86_64__) && defined(__GNUC__)
/* One step: ymm13 = maddubs(a, b); ymm13 = maddwd(ymm13, ones = ymm15); acc += ymm13. */
#define PS8_PAIR(ACC, A, B)                                                                         \
    "vpmaddubsw %%ymm" #B ", %%ymm" #A ", %%ymm13\n\t"                                              \
    "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n\t"                                                        \
    "vpaddd %%ymm13, %%ymm" #ACC ", %%ymm" #ACC "\n\t"
/* Two groups: ymm13 = maddubs(a, b) + maddubs(b, a) as int16, then one maddwd and one add. */
#define PS8_QUAD(ACC, A, B)                                                                         \
    "vpmaddubsw %%ymm" #B ", %%ymm" #A ", %%ymm13\n\t"                                              \
    "vpmaddubsw %%ymm" #A ", %%ymm" #B ", %%ymm14\n\t"                                              \
    "vpaddw %%ymm14, %%ymm13, %%ymm13\n\t"                                                          \
    "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n\t"                                                        \
    "vpaddd %%ymm13, %%ymm" #ACC ", %%ymm" #ACC "\n\t"
#define PS8_DOT(ACC, A, B) "vpdpbusd %%zmm" #B ", %%zmm" #A ", %%zmm" #ACC "\n\t"
/* 8 accumulators (registers 0-7), A in 8-9, B in 10-12: the 4 x 2 shape of the AVX2 tile */
#define PS8_EIGHT(STEP) STEP(0, 8, 10) STEP(1, 8, 11) STEP(2, 9, 10) STEP(3, 9, 11) \
                        STEP(4, 8, 12) STEP(5, 9, 12) STEP(6, 8, 10) STEP(7, 9, 11)

/* iters > 0 steps of BODY; returns the multiply-adds done */
#define PS8_LOOP(NAME, TARGET, SETUP, BODY, MACS_PER_ITER, CLOBBERS...)                            \
    __attribute__((target(TARGET))) static double NAME(int64_t iters) {                            \
        int64_t left = iters;                                                                      \
        __asm__ volatile(SETUP "1:\n\t" BODY "dec %0\n\tjnz 1b\n\t"                                \
                         : "+r"(left) : : "cc", CLOBBERS);                                         \
        return (double)(MACS_PER_ITER) * (double)iters;                                            \
    }

#define PS8_YMM_SETUP "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\tvpabsw %%ymm15, %%ymm15\n\t"   /* int16 ones */
#define PS8_YMM "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
                "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
PS8_LOOP(ps8_pair, "avx2", PS8_YMM_SETUP, PS8_EIGHT(PS8_PAIR), 8 * 32, PS8_YMM)
PS8_LOOP(ps8_quad, "avx2", PS8_YMM_SETUP, PS8_EIGHT(PS8_QUAD), 8 * 64, PS8_YMM)
/* 12 zmm accumulators cover vpdpbusd's latency on CPUs with two 512-bit ports */
PS8_LOOP(ps8_vnni, "avx512f,avx512vnni", "",
         PS8_EIGHT(PS8_DOT) PS8_DOT(16, 8, 10) PS8_DOT(17, 9, 11) PS8_DOT(18, 8, 12) PS8_DOT(19, 9, 12),
         12 * 64, PS8_YMM, "xmm16", "xmm17", "xmm18", "xmm19")
#endif

#ifdef __aarch64__
/* The empty asm statements make every operand new in every step, so no product is shared. */
#define PS8_FRESH(x) __asm__ volatile("" : "+w"(x))

static double ps8_neon(int64_t iters) {
    int8x16_t a0 = vdupq_n_s8(3), a1 = vdupq_n_s8(5), b0 = vdupq_n_s8(7), b1 = vdupq_n_s8(-9);
    int32x4_t acc[8];
    for (int i = 0; i < 8; i++) acc[i] = vdupq_n_s32(i);
    for (int64_t it = 0; it < iters; it++) {
        PS8_FRESH(a0); PS8_FRESH(a1); PS8_FRESH(b0); PS8_FRESH(b1);
        acc[0] = vpadalq_s16(acc[0], vmull_s8(vget_low_s8(a0), vget_low_s8(b0)));
        acc[1] = vpadalq_s16(acc[1], vmull_high_s8(a0, b0));
        acc[2] = vpadalq_s16(acc[2], vmull_s8(vget_low_s8(a1), vget_low_s8(b0)));
        acc[3] = vpadalq_s16(acc[3], vmull_high_s8(a1, b0));
        acc[4] = vpadalq_s16(acc[4], vmull_s8(vget_low_s8(a0), vget_low_s8(b1)));
        acc[5] = vpadalq_s16(acc[5], vmull_high_s8(a0, b1));
        acc[6] = vpadalq_s16(acc[6], vmull_s8(vget_low_s8(a1), vget_low_s8(b1)));
        acc[7] = vpadalq_s16(acc[7], vmull_high_s8(a1, b1));
    }
    int32x4_t s = acc[0];
    for (int i = 1; i < 8; i++) s = vaddq_s32(s, acc[i]);
    volatile int32_t sink = vgetq_lane_s32(s, 0);     /* the result is used: the loop cannot vanish */
    (void)sink;
    return 8.0 * 8 * (double)iters;
}

__attribute__((target("arch=armv8.2-a+dotprod"))) static double ps8_neon_dot(int64_t iters) {
    int8x16_t a0 = vdupq_n_s8(3), a1 = vdupq_n_s8(5), b0 = vdupq_n_s8(7), b1 = vdupq_n_s8(-9);
    int32x4_t acc[8];
    for (int i = 0; i < 8; i++) acc[i] = vdupq_n_s32(i);
    for (int64_t it = 0; it < iters; it++) {
        PS8_FRESH(a0); PS8_FRESH(a1); PS8_FRESH(b0); PS8_FRESH(b1);
        acc[0] = vdotq_s32(acc[0], b0, a0); acc[1] = vdotq_s32(acc[1], b1, a0);
        acc[2] = vdotq_s32(acc[2], b0, a1); acc[3] = vdotq_s32(acc[3], b1, a1);
        acc[4] = vdotq_s32(acc[4], a0, b0); acc[5] = vdotq_s32(acc[5], a0, b1);
        acc[6] = vdotq_s32(acc[6], a1, b0); acc[7] = vdotq_s32(acc[7], a1, b1);
    }
    int32x4_t s = acc[0];
    for (int i = 1; i < 8; i++) s = vaddq_s32(s, acc[i]);
    volatile int32_t sink = vgetq_lane_s32(s, 0);
    (void)sink;
    return 8.0 * 16 * (double)iters;
}
#endif

/* 8 independent int32 accumulators, 4 multiply-adds each per step. */
static double ps8_portable(int64_t iters) {
    int32_t acc[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    volatile int32_t seed = 3;
    int32_t a = seed, b = -seed;
    for (int64_t it = 0; it < iters; it++) {
        for (int i = 0; i < 8; i++)
            acc[i] += (a + i) * b + (a - i) * (b + 1) + (a + 2 * i) * (b - 1) + (a ^ i) * (b + 2);
        a = (int32_t)((uint32_t)a + (uint32_t)acc[7]);  /* every step depends on the one before */
    }
    volatile int32_t sink = acc[0] + acc[3] + acc[7];
    (void)sink;
    return 8.0 * 4 * (double)iters;
}

static double ps8_run(int64_t isa, int quad, int64_t iters) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa == TE_ISA_AVX512_VNNI) return ps8_vnni(iters);
    if (TE_ISA_HAS_AVX2(isa)) return quad ? ps8_quad(iters) : ps8_pair(iters);
#endif
#ifdef __aarch64__
    if (isa == TE_ISA_NEON_DOTPROD) return ps8_neon_dot(iters);
    if (isa == TE_ISA_NEON) return ps8_neon(iters);
#endif
    (void)quad;
    return ps8_portable(iters);
}

int tinyeff_int8_peak(int64_t isa, int64_t quad, int64_t iters, double *macs) {
    if (iters < 1) return 1;
    if (!TE_ISA_OK(isa) || !(tinyeff_s8_isa_built() >> isa & 1)) return 2;
    if (quad && !(TE_ISA_HAS_AVX2(isa) && isa != TE_ISA_AVX512_VNNI)) return 3;
    double total = 0.0;
#pragma omp parallel reduction(+ : total)
    total += ps8_run(isa, quad != 0, iters);
    *macs = total;
    return 0;
}
