/* runtime.c: OpenMP thread control shared by every C kernel family.
 *
 * The thread count is OpenMP's own runtime state (OMP_NUM_THREADS or tinyeff_set_num_threads);
 * without OpenMP every kernel runs on one thread and these report that.
 */
#include "tinyeff.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int tinyeff_set_num_threads(int64_t n) {
    if (n < 1) return 1;
#ifdef _OPENMP
    omp_set_num_threads((int)n);
#endif
    return 0;
}

int64_t tinyeff_get_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int64_t tinyeff_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int64_t tinyeff_isa_built(void) {
#if defined(__x86_64__)
    return (1 << TE_ISA_PORTABLE) | (1 << TE_ISA_AVX2) | (1 << TE_ISA_AVX512) | (1 << TE_ISA_AVX512_VNNI);
#elif defined(__aarch64__)
    return (1 << TE_ISA_PORTABLE) | (1 << TE_ISA_NEON) | (1 << TE_ISA_NEON_DOTPROD);
#else
    return 1 << TE_ISA_PORTABLE;
#endif
}
