/* activation.c: float32 ReLU forward and backward (contract: tinyeff/kernels/relu/spec.py).
 *
 * Both loops are memory-bound streams. NumPy runs them on one core; here OpenMP splits the array
 * into one contiguous block per thread and gcc vectorizes each block (`omp parallel for simd`).
 * Forward keeps NaN, as np.maximum does: `x < 0 ? 0 : x` is false for NaN. Backward multiplies
 * by 0 or 1 rather than selecting, so a NaN or inf gradient where out <= 0 gives NaN, as
 * `g * (out > 0)` does in NumPy. Small calls stay on the calling thread (TINYEFF_PARALLEL_MIN_ELEMS).
 */
#include <stdint.h>

#include "tinyeff.h"

int tinyeff_relu_f32(const float *x, int64_t n, float *y)
{
    if (n < 0)
        return 1;
    #pragma omp parallel for simd schedule(static) if (n >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
    return 0;
}

int tinyeff_relu_backward_f32(const float *g, const float *out, int64_t n, float *gx)
{
    if (n < 0)
        return 1;
    /* out > 0 tested on the bits: a float is > 0 iff its int32 pattern is in (0, +inf's 0x7F800000]
     * (negatives and -0.0 are negative ints, NaNs lie above +inf). gcc will not if-convert a float
     * compare without -fno-trapping-math, nor a short-circuit &&; this integer form with & vectorizes
     * (the branchy loop mispredicts on every other sign: 6x slower). */
    const int32_t *bits = (const int32_t *)out;
    #pragma omp parallel for simd schedule(static) if (n >= TINYEFF_PARALLEL_MIN_ELEMS)
    for (int64_t i = 0; i < n; i++)
        gx[i] = g[i] * (float)((bits[i] > 0) & (bits[i] <= 0x7F800000));
    return 0;
}
