/* simd_each.h: compile the vector body named by SIMD_BODY once per vector ISA path of this build.
 *
 *     #define SIMD_BODY "pool_vec.h"
 *     #include "simd_each.h"
 *
 * gives the body's functions for AVX-512 and AVX2 on x86-64 (suffixed _avx512 / _avx2 by simd.h)
 * or for NEON on ARM64 (_neon): the same loop at each vector width. Bodies that need per-ISA
 * settings (register blocks, fallbacks) spell the instantiation out instead, as spconv.c does.
 */
#ifdef __x86_64__
#define SIMD_AVX512
#include "simd.h"
#include SIMD_BODY
#undef SIMD_AVX512
#define SIMD_AVX2
#include "simd.h"
#include SIMD_BODY
#undef SIMD_AVX2
#endif
#ifdef __aarch64__
#define SIMD_NEON
#include "simd.h"
#include SIMD_BODY
#undef SIMD_NEON
#endif
#undef SIMD_BODY
