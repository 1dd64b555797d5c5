/* tinyeff.h: the one list of C kernel declarations, one section per kernel family.
 *
 * tinyeff/kernels/_build_c.py feeds this file to cffi's cdef (dropping preprocessor lines) and
 * compiles every .c file in csrc/ into tinyeff._tinyeff_c. Conventions for every exported function:
 * const input pointers, an output pointer, int64_t sizes and strides, an int status return
 * (0 = ok, nonzero = see "status codes" below); never prints, exits or allocates what the
 * caller can. Validation happens once, in the Python wrapper.
 *
 * Keep declarations on one line each and free of macros: cffi parses them.
 */
#ifndef TINYEFF_H
#define TINYEFF_H
#include <stdint.h>

/* ---- status codes shared by every family ---------------------------------------------------- */
/* 0 ok; 1 bad argument (a size or option the wrapper should have rejected); 2 unsupported ISA. */

/* ---- OpenMP thresholds shared by every family ------------------------------------------------
 * Below these sizes (a batch-1 layer) a kernel runs on the calling thread: waking the sleeping
 * OpenMP workers (OMP_WAIT_POLICY=PASSIVE) costs tens of microseconds, more than the whole call
 * (seed CNN at batch 1: 0.91 -> 0.31 ms float, 0.63 -> 0.20 ms int8). */
#define TINYEFF_PARALLEL_MIN_ELEMS (1 << 18)    /* memory-bound passes: elements touched */
#define TINYEFF_PARALLEL_MIN_MACS (1 << 22)     /* compute kernels: multiply-adds */

/* ---- ISA paths: the `isa` argument of every kernel with bodies per instruction set ------------
 * Names and detection: tinyeff/kernels/cpu.py (the detected CPU features capped by
 * TINYEFF_CPU_FEATURES). Each kernel's Python wrapper declares the paths it has bodies for and
 * passes one of them; a path implies the ones below it on its architecture (AVX-512 VNNI > AVX-512
 * > AVX2 > portable; NEON dot-product > NEON > portable), so a kernel runs its best body not above
 * `isa`. x86 bodies carry target attributes and ARM64 bodies need no flag (NEON is baseline), so
 * one build runs on every CPU of its architecture. */
#define TE_ISA_PORTABLE 0
#define TE_ISA_AVX2 1
#define TE_ISA_AVX512 2
#define TE_ISA_AVX512_VNNI 3
#define TE_ISA_NEON 4
#define TE_ISA_NEON_DOTPROD 5
#define TE_ISA_MAX 5
#define TE_ISA_HAS_AVX2(isa) ((isa) >= TE_ISA_AVX2 && (isa) <= TE_ISA_AVX512_VNNI)
#define TE_ISA_HAS_AVX512(isa) ((isa) == TE_ISA_AVX512 || (isa) == TE_ISA_AVX512_VNNI)
#define TE_ISA_HAS_NEON(isa) ((isa) == TE_ISA_NEON || (isa) == TE_ISA_NEON_DOTPROD)
#define TE_ISA_OK(isa) ((isa) >= 0 && (isa) <= TE_ISA_MAX)

/* ---- runtime: OpenMP threads and compiled code paths (csrc/runtime.c) ----------------------- */
/* tinyeff_isa_built: bit (1 << TE_ISA_x) set for each path this build's architecture has. */
int64_t tinyeff_isa_built(void);
int tinyeff_set_num_threads(int64_t n);
int64_t tinyeff_get_num_threads(void);
int64_t tinyeff_has_openmp(void);

/* ---- FMA peak (csrc/peak.c): flops done by a register-only FMA loop of `iters` steps on every
 * OpenMP thread, at the widest body not above isa; the caller times it. */
int tinyeff_fma_peak(int64_t isa, int64_t iters, double *flops);
/* ---- int8 peak (csrc/int8_gemm/peak_s8.c): multiply-adds done by a register-only loop of the int8
 * GEMM tile's step on every OpenMP thread; quad = 1: AVX2's two-group step (status 3 elsewhere). */
int tinyeff_int8_peak(int64_t isa, int64_t quad, int64_t iters, double *macs);

/* ---- int8 GEMM family (csrc/int8_gemm/gemm_s8.c) -------------------------------------------------------
 * isa: TE_ISA_PORTABLE, TE_ISA_AVX2 / TE_ISA_AVX512 (the AVX2 tiles), TE_ISA_AVX512_VNNI, TE_ISA_NEON or
 * TE_ISA_NEON_DOTPROD; a code not compiled in (tinyeff_s8_isa_built(), the mask of those) gets status 2.
 * Packed weight layout: see tinyeff/kernels/layout/packed_s8.py; pairs_fit: one byte per 64-column panel
 * (pack_s8 writes it), 1 when the AVX2 vpmaddubsw tile is exact on that panel; quads_fit: one byte per
 * 16 columns and group of 4 k (K4 bytes per 16 columns), 1 when, for activations <= 127, the
 * vpmaddubsw results of that group and the next may be added as int16 in those columns. */
int64_t tinyeff_s8_isa_built(void);
int tinyeff_pack_s8(const int8_t *b, int64_t ldb, int64_t k, int64_t n, int8_t *packed, int32_t *colsum, uint8_t *pairs_fit, uint8_t *quads_fit);
int tinyeff_gemm_u8s8_packed(const uint8_t *a, int64_t lda, int64_t m, int64_t k, int64_t n, const int8_t *packed, const int32_t *colsum, const uint8_t *pairs_fit, const uint8_t *quads_fit, int64_t a_signed, int64_t isa, int32_t *out, int64_t ldo);
int tinyeff_gemm_u8s8_requant(const uint8_t *a, int64_t lda, int64_t m, int64_t k, int64_t n, const int8_t *packed, const int32_t *colsum, const uint8_t *pairs_fit, const uint8_t *quads_fit, int64_t a_zero_point, const int32_t *bias, const int32_t *multiplier, const int32_t *shift, int64_t zero_point_out, int64_t qmin, int64_t qmax, int64_t group, int64_t isa, uint8_t *out, int64_t ldo);
/* conv2d_u8s8_requant_nhwc: the requantizing GEMM on an implicit im2col of a zero-point-padded NHWC
 * image (hp, wp include the padding, and (ow - 1) * stride * c + roundup(kw * c, 4) <= wp * c);
 * any isa of the GEMM. */
int tinyeff_conv2d_u8s8_requant_nhwc(const uint8_t *x, int64_t n, int64_t hp, int64_t wp, int64_t c, int64_t kh, int64_t kw, int64_t stride, int64_t pool, int64_t oh, int64_t ow, const int8_t *packed, const int32_t *colsum, const uint8_t *pairs_fit, const uint8_t *quads_fit, int64_t oc, int64_t a_zero_point, const int32_t *bias, const int32_t *multiplier, const int32_t *shift, int64_t zero_point_out, int64_t qmin, int64_t qmax, int64_t isa, uint8_t *out);

/* ---- int8 small-channel convolution (csrc/int8_conv_small/qconv_small.c) ---------------------------------
 * conv2d_u8s8_requant_nhwc's contract for kernels of at most 16 tap groups (a first layer: C = 1 or 3),
 * output channels in the vector lanes; packed: tinyeff/kernels/int8_conv_small/spec.py's layout (blocks of
 * 32 columns); pairs_fit: 1 if every weight pair fits int16 (AVX2's vpmaddubsw exact for 8-bit inputs);
 * quads_fit: 1 if two consecutive groups may share one vpmaddwd for inputs <= 127;
 * isa: portable, or on x86-64 avx2 / avx512 (the AVX2 body) / avx512_vnni. */
int tinyeff_conv2d_u8s8_smallc_nhwc(const uint8_t *x, int64_t n, int64_t hp, int64_t wp, int64_t c, int64_t kh, int64_t kw, int64_t stride, int64_t pool, int64_t oh, int64_t ow, const int8_t *packed, const int32_t *colsum, int64_t pairs_fit, int64_t quads_fit, int64_t oc, int64_t a_zero_point, const int32_t *bias, const int32_t *multiplier, const int32_t *shift, int64_t zero_point_out, int64_t qmin, int64_t qmax, int64_t isa, uint8_t *out);

/* ---- int8 requantization, im2col and max-pool (csrc/int8_eltwise/requant.c, csrc/im2col/im2col_8.c) ------------- */
/* isa: requantize_s32 has portable, AVX2, AVX-512 and NEON bodies; the max-pools portable, AVX2, NEON. */
int tinyeff_requantize_s32(const int32_t *acc, int64_t lda, int64_t m, int64_t n, const int32_t *bias, const int32_t *multiplier, const int32_t *shift, int64_t zero_point_out, int64_t qmin, int64_t qmax, int64_t isa, uint8_t *out, int64_t ldo);
int tinyeff_im2col_8(const uint8_t *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh, int64_t ow, uint8_t pad_value, uint8_t *cols);
int tinyeff_maxpool2d_u8(const uint8_t *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kernel_size, int64_t stride, int64_t oh, int64_t ow, int64_t isa, uint8_t *out);
int tinyeff_im2col_8_nhwc(const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t pool, int64_t run_padded, int64_t oh, int64_t ow, uint8_t pad_value, uint8_t *cols);
int tinyeff_maxpool2d_u8_nhwc(const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kernel_size, int64_t stride, int64_t oh, int64_t ow, int64_t isa, uint8_t *out);

/* ---- int8 residual add (csrc/int8_eltwise/add_u8.c): table lookups, int32 sum, requantization ------------ */
int tinyeff_add_u8(const uint8_t *a, const uint8_t *b, int64_t n, const int32_t *table_a, const int32_t *table_b, int64_t multiplier, int64_t shift, int64_t zero_point_out, int64_t qmin, int64_t qmax, int64_t isa, uint8_t *out);

/* ---- int8 model input (csrc/int8_eltwise/quantize_u8.c): float32 -> uint8 codes, NCHW -> NHWC on request ---- */
int tinyeff_quantize_f32_u8(const float *x, int64_t n, int64_t c, int64_t hw, double scale, int64_t zero_point, int64_t qmax, int64_t nhwc, int64_t isa, uint8_t *out, int64_t *nonfinite);

/* ---- float32 dense and sparse family (csrc/im2col/im2col.c, csrc/pool/pool.c, csrc/sparse/spconv.c; wrappers in kernels/<family>/c.py) ---
 * Layouts: tinyeff/kernels/im2col/spec.py, pool/spec.py and sparse/spec.py. sprows: the direct sparse
 * loop over CSR rows (see csrc/sparse/spconv.c); bias may be NULL. isa: a TE_ISA_ code (pad2d, maxpool2d
 * and sprows bodies: portable, AVX2, AVX-512, NEON). */
int tinyeff_im2col_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh, int64_t ow, float *cols);
int tinyeff_im2col_t_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh, int64_t ow, float *cols);
int tinyeff_col2im_f32(const float *cols, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t padding, int64_t dilation, int64_t oh, int64_t ow, float *x);
int tinyeff_pad2d_f32(const float *x, int64_t planes, int64_t h, int64_t w, int64_t pad, int64_t isa, float *out);
int tinyeff_maxpool2d_f32(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kernel, int64_t stride, int64_t padding, int64_t oh, int64_t ow, int64_t isa, float *out, int64_t *argmax);
int tinyeff_maxpool2d_backward_f32(const float *grad_out, const int64_t *argmax, int64_t planes, int64_t ohw, int64_t hw, float *grad_x);
int tinyeff_sprows_f32(const int64_t *indptr, const int64_t *offsets, const float *data, int64_t rows, const float *src, int64_t img_stride, int64_t nimg, int64_t length, int64_t ws, int64_t ow_valid, const float *bias, int64_t relu, int64_t pool, int64_t isa, float *out, int64_t os_img, int64_t os_row, int64_t os_h, int64_t os_w);
int tinyeff_sprows_u8s8(const int64_t *indptr, const int64_t *offsets, const int8_t *data, int64_t rows, const uint8_t *src, int64_t img_stride, int64_t nimg, int64_t length, int64_t ws, int64_t ow_valid, const int32_t *bias, int64_t isa, int32_t *out, int64_t os_img, int64_t os_row, int64_t os_h, int64_t os_w);
/* spconv_u8s8_requant_nhwc (csrc/sparse/spconv_nhwc.c): uint8 NHWC x CSR int8 weight (indices c*KH*KW + i*KW + j)
 * -> bias, requantization, clamp [qmin, qmax] (ReLU: qmin = zero_point_out), optional 2x2 max-pool -> uint8
 * NHWC (N, OH / pool, OW / pool, OC); stride 1, padding holds a_zero_point. isa: portable, AVX2, AVX-512, NEON. */
int tinyeff_spconv_u8s8_requant_nhwc(const int64_t *indptr, const int64_t *indices, const int8_t *data, int64_t oc, const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t padding, int64_t pool, int32_t a_zero_point, const int32_t *bias, const int32_t *multiplier, const int32_t *shift, int32_t zero_point_out, int32_t qmin, int32_t qmax, int64_t isa, uint8_t *out);
/* ---- end float32 dense and sparse family ---- */

/* ---- float32 dense direct convolution (csrc/conv/dconv.c) ------------------------------------------
 * Flat-shift layout of tinyeff/kernels/layout/direct.py. isa: a TE_ISA_ code (bodies: portable, AVX2,
 * AVX-512, NEON). wpack is (ceil(oc/4), ntaps, 4) float32 with zero rows; g of the weight gradient
 * is on the padded grid (glen >= length rounded up to 16 floats per channel, zeros at ow >= OW and
 * past length) when rows == 0, or dense (glen == rows * ow, ow a multiple of
 * tinyeff_dconv_vector_floats(isa)) when rows > 0. Forward mode: 0 the cheaper of flat and row
 * tiles, 1 flat, 2 rows where OW allows. Status 3: out of memory for a buffer. */
int tinyeff_dconv_f32(const float *src, int64_t img_stride, int64_t nimg, const float *wpack, const int64_t *offsets, int64_t ntaps, int64_t oc, int64_t length, int64_t ws, int64_t oh, int64_t ow, const float *bias, int64_t relu, int64_t mode, int64_t isa, float *out);
int tinyeff_dconv_wgrad_f32(const float *src, int64_t img_stride, int64_t nimg, const float *g, int64_t glen, const int64_t *offsets, int64_t ntaps, int64_t oc, int64_t length, int64_t rows, int64_t ws, int64_t ow, int64_t isa, float *gw);
int64_t tinyeff_dconv_vector_floats(int64_t isa);
/* Positions dconv_f32 (mode 0) computes per channel block for nimg images: its cost, for the
 * choice between the two forward tiles. */
int tinyeff_dconv_positions(int64_t isa, int64_t nimg, int64_t length, int64_t oh, int64_t ow, int64_t *positions);
/* Channels-in-lanes forward (csrc/conv/dconv_oc.c), optionally with a fused max-pool: pos lists
 * npos flat offsets into one image of the layout, in groups of `group` reduced by max; out is
 * (nimg, oc, npos / group). wt is (ntaps, ocp) float32, ocp a multiple of the channel block that
 * tinyeff_dconv_oc_block reports for isa (zero columns past oc). Status 3: out of memory. */
int tinyeff_dconv_oc_block(int64_t isa, int64_t *channels, int64_t *positions);
int tinyeff_dconv_oc_f32(const float *src, int64_t img_stride, int64_t nimg, const float *wt, int64_t ocp, const int64_t *offsets, int64_t ntaps, int64_t oc, const int64_t *pos, int64_t npos, int64_t group, const float *bias, int64_t relu, int64_t isa, float *out);
/* ---- end float32 dense direct convolution ---- */

/* ---- float32 depthwise convolution (csrc/depthwise/depthwise.c; wrappers in kernels/depthwise/c.py) -------
 * x / gx (N, C, H, W), w (OC, 1, KH, KW) with OC a multiple of C, out / g (N, OC, OH, OW), gw like w.
 * Portable C; OpenMP over output planes (forward, weight gradient) or input planes (input gradient). */
int tinyeff_dwconv_f32(const float *x, const float *w, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc, int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t dil, int64_t oh, int64_t ow, float *out);
int tinyeff_dwconv_xgrad_f32(const float *g, const float *w, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc, int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t dil, int64_t oh, int64_t ow, float *gx);
int tinyeff_dwconv_wgrad_f32(const float *x, const float *g, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc, int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t dil, int64_t oh, int64_t ow, float *gw);
/* ---- end float32 depthwise convolution ---- */

/* ---- float32 batch norm, training (csrc/norm/bnorm.c; wrappers in kernels/norm/c.py) --------------
 * NCHW with hw = H * W; an (N, C) input is hw = 1. Outputs as tinyeff/kernels/norm/spec.py: y and
 * grad_x (N, C, H, W); mean, var (biased), invstd, grad_gamma and grad_beta (C,). Forward epilogue:
 * residual (N, C, H, W) or NULL is added to y, then relu != 0 clamps y at 0. Backward: relu_beta
 * non-NULL (the forward's beta) masks grad_out where the forward's ReLU output, recomputed from x,
 * was 0 (a forward with ReLU and no residual); or relu_out non-NULL (the forward's output, a forward with
 * a residual and ReLU) masks it by relu_out > 0 into grad_masked (N, C, H, W), the shortcut's gradient.
 * isa: a TE_ISA_ code (bodies: portable, and bnorm_vec.h for AVX2, AVX-512, NEON). */
int tinyeff_batchnorm_train_f32(const float *x, const float *gamma, const float *beta, const float *residual, int64_t relu, int64_t n, int64_t c, int64_t hw, double eps, int64_t isa, float *y, float *mean, float *var, float *invstd);
int tinyeff_batchnorm_backward_f32(const float *grad_out, const float *x, const float *mean, const float *invstd, const float *gamma, const float *relu_beta, const float *relu_out, int64_t n, int64_t c, int64_t hw, int64_t isa, float *grad_x, float *grad_gamma, float *grad_beta, float *grad_masked);
/* ---- end float32 batch norm ---- */

/* ---- float32 ReLU (csrc/relu/relu.c; wrappers in kernels/relu/c.py) ----------------------
 * n elements, contiguous; forward y = max(x, 0) keeping NaN, backward gx = g * (out > 0).
 * isa: a TE_ISA_ code (bodies: portable, AVX2, AVX-512, NEON). */
int tinyeff_relu_f32(const float *x, int64_t n, int64_t isa, float *y);
int tinyeff_relu_backward_f32(const float *g, const float *out, int64_t n, int64_t isa, float *gx);
/* ---- end float32 ReLU ---- */

#endif /* TINYEFF_H */
