/* activation.c: float32 ReLU forward and backward (contract: tinyeff/kernels/relu/spec.py).
 *
 * Both loops are memory-bound streams. NumPy runs them on one core; here OpenMP splits the array
 * into one contiguous block per thread, and each block runs a vector body (activation_vec.h, one
 * loop compiled for AVX-512, AVX2 and NEON) or the portable loop, which gcc vectorizes for the
 * baseline (SSE2 on x86-64). Out of cache every width runs at DRAM speed; the wider bodies pay
 * off on arrays that fit in L2 (bench/bench_pool_relu.py measures both per ISA path).
 * Forward keeps NaN, as np.maximum does: `x < 0 ? 0 : x` is false for NaN. Backward multiplies
 * by 0 or 1 rather than selecting, so a NaN or inf gradient where out <= 0 gives NaN, as
 * `g * (out > 0)` does in NumPy. Small calls stay on the calling thread (TINYEFF_PARALLEL_MIN_ELEMS).
 */
#include <stdint.h>

#include "tinyeff.h"

static void relu_block_c(const float *x, int64_t n, float *y)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* out > 0 tested on the bits: a float is > 0 iff its int32 pattern is in (0, +inf's 0x7F800000]
 * (negatives and -0.0 are negative ints, NaNs lie above +inf). gcc will not if-convert a float
 * compare without -fno-trapping-math, nor a short-circuit &&; this integer form with & vectorizes
 * (the branchy loop mispredicts on every other sign: 6x slower). */
static void relu_backward_block_c(const float *g, const float *out, int64_t n, float *gx)
{
    const int32_t *bits = (const int32_t *)out;
    #pragma omp simd
    for (int64_t i = 0; i < n; i++)
        gx[i] = g[i] * (float)((bits[i] > 0) & (bits[i] <= 0x7F800000));
}

#define SIMD_BODY "activation_vec.h"
#include "simd_each.h"

/* Blocks of 16 K floats (64 KB): whole vectors per block, and enough blocks to balance threads. */
#define RELU_BLOCK 16384

int tinyeff_relu_f32(const float *x, int64_t n, int64_t isa, float *y)
{
    if (n < 0 || !TE_ISA_OK(isa))
        return 1;
    const int64_t blocks = (n + RELU_BLOCK - 1) / RELU_BLOCK;
    #pragma omp parallel for schedule(static) if (n >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t t = 0; t < blocks; t++) {
        const int64_t i = t * RELU_BLOCK, len = n - i < RELU_BLOCK ? n - i : RELU_BLOCK;
#ifdef __x86_64__
        if (TE_ISA_HAS_AVX512(isa)) { relu_block_avx512(x + i, len, y + i); continue; }
        if (TE_ISA_HAS_AVX2(isa)) { relu_block_avx2(x + i, len, y + i); continue; }
#endif
#ifdef __aarch64__
        if (TE_ISA_HAS_NEON(isa)) { relu_block_neon(x + i, len, y + i); continue; }
#endif
        relu_block_c(x + i, len, y + i);
    }
    return 0;
}

int tinyeff_relu_backward_f32(const float *g, const float *out, int64_t n, int64_t isa, float *gx)
{
    if (n < 0 || !TE_ISA_OK(isa))
        return 1;
    const int64_t blocks = (n + RELU_BLOCK - 1) / RELU_BLOCK;
    #pragma omp parallel for schedule(static) if (n >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t t = 0; t < blocks; t++) {
        const int64_t i = t * RELU_BLOCK, len = n - i < RELU_BLOCK ? n - i : RELU_BLOCK;
#ifdef __x86_64__
        if (TE_ISA_HAS_AVX512(isa)) { relu_backward_block_avx512(g + i, out + i, len, gx + i); continue; }
        if (TE_ISA_HAS_AVX2(isa)) { relu_backward_block_avx2(g + i, out + i, len, gx + i); continue; }
#endif
#ifdef __aarch64__
        if (TE_ISA_HAS_NEON(isa)) { relu_backward_block_neon(g + i, out + i, len, gx + i); continue; }
#endif
        relu_backward_block_c(g + i, out + i, len, gx + i);
    }
    return 0;
}
