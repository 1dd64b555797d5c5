/* packed_s8.h: the packed int8 weight layout shared by gemm_s8.c (the tiles) and pack_s8.c (the
 * packer); the layout itself is documented in tinyeff/kernels/layout/packed_s8.py. */
#ifndef TINYEFF_PACKED_S8_H
#define TINYEFF_PACKED_S8_H
#include <stdint.h>

#define PANEL 64          /* columns per packed panel */
#define GROUP 16          /* last panel width is a multiple of this */

static inline int64_t k_groups(int64_t k) { return (k + 3) / 4; }

static inline int64_t panel_width(int64_t n, int64_t p0) {
    int64_t rest = n - p0;
    return rest >= PANEL ? PANEL : (rest + GROUP - 1) / GROUP * GROUP;
}

#endif
