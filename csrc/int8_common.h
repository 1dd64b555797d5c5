/* int8_common.h: private helpers shared by the int8 C files (not part of the cffi interface).
 *
 * te_requant_one is gemmlowp's fixed-point requantization (Jacob et al. 2018, section 2.2), done in
 * int64 so no step has undefined behaviour; it matches tinyeff/kernels/ref/int8.py bit for bit:
 *   v = sat32(acc + bias); v = sat32(v << max(shift, 0));
 *   v = SQRDMULH(v, multiplier)      round(v * multiplier / 2^31), ties toward +inf (the nudge)
 *   v = RDIVPOT(v, max(-shift, 0))   round(v / 2^right), ties away from zero
 *   out = clamp(v + zero_point, qmin, qmax)
 */
#ifndef TINYEFF_INT8_COMMON_H
#define TINYEFF_INT8_COMMON_H
#include <stdint.h>

static inline int64_t te_sat32(int64_t v) {
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : v);
}

static inline uint8_t te_requant_one(int64_t acc_plus_bias, int32_t multiplier, int32_t shift,
                                     int32_t zero_point, int32_t qmin, int32_t qmax) {
    int64_t x = te_sat32(acc_plus_bias);
    if (shift > 0) x = te_sat32(x * ((int64_t)1 << shift));     /* |x| < 2^31, shift <= 30: no overflow */
    int64_t high;
    if (x == INT32_MIN && multiplier == INT32_MIN) {
        high = INT32_MAX;                                          /* the one SQRDMULH overflow case */
    } else {
        int64_t prod = x * (int64_t)multiplier;
        int64_t nudge = prod >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
        high = (prod + nudge) / ((int64_t)1 << 31);                /* C division truncates toward zero */
    }
    int right = shift < 0 ? -shift : 0;
    int64_t mask = ((int64_t)1 << right) - 1;
    int64_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    int64_t v = (high >> right) + ((high & mask) > threshold ? 1 : 0);  /* gcc: >> is arithmetic */
    v += zero_point;
    v = v < qmin ? qmin : (v > qmax ? qmax : v);
    return (uint8_t)(int8_t)v;                                     /* int8 outputs keep their bit pattern */
}

#endif
