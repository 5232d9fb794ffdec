/* Internal (library-only) variants of the nn ops: fused epilogues and accumulate flags that
 * the model uses to save passes over memory. The public ops in mmcr/nn.h call these. */
#ifndef MMCR_NN_INTERNAL_H
#define MMCR_NN_INTERNAL_H

#include "mmcr/nn.h"

/* y = act(BN(x) + residual): residual (C, M) may be NULL or alias y; relu != 0 applies max(., 0). */
void mmcr_bn_forward_fused(float *y, float *save_mean, float *save_invstd, const float *x,
                           const float *gamma, const float *beta, float *run_mean, float *run_var,
                           const mmcr_bn_desc *d, size_t m, int train, const float *residual, int relu);
/* BN backward of act(BN(x)): relu_y (the forward output) masks dy when non-NULL. dx may alias dy. */
void mmcr_bn_backward_fused(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma,
                            const mmcr_bn_desc *d, size_t m, const float *relu_y);
/* 1-D BN with an optional fused ReLU (forward) / ReLU mask (backward); same aliasing rules. */
void mmcr_bn1d_forward_fused(float *y, float *save_mean, float *save_invstd, const float *x,
                             const float *gamma, const float *beta, float *run_mean, float *run_var,
                             const mmcr_bn_desc *d, int n, int train, int relu);
void mmcr_bn1d_backward_fused(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                              const float *save_mean, const float *save_invstd, const float *gamma,
                              const mmcr_bn_desc *d, int n, const float *relu_y);
/* The blocked activation layout of the oneDNN path: (N, C/B, H*W, B), the layout oneDNN's
 * convolution kernels read and write ("nChw16c" for its AVX-512 kernels, B = 16; "nChw8c" for
 * its AVX2 ones, B = 8), so that no reorder is needed between layers. Used only when every
 * channel count is a multiple of B; nn_dnnl_block says which B the machine's kernels want. */
#define NN_BLK_MAX 16
#define NN_BN_CHUNKS 8 /* batch chunks of the blocked BN sums (fixed: thread-count independent) */
#define NN_BN_PART_DOUBLES(c) ((size_t)2 * NN_BN_CHUNKS * (size_t)(c))
/* BN over the blocked layout with block B (8 or 16), same semantics and aliasing as the _fused
 * CNHW versions; part is scratch of NN_BN_PART_DOUBLES(c) doubles. */
void mmcr_bn_forward_blocked(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                             const float *beta, float *run_mean, float *run_var, const mmcr_bn_desc *d, int n,
                             size_t hw, int B, int train, const float *residual, int relu, double *part);
void mmcr_bn_backward_blocked(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                              const float *save_mean, const float *save_invstd, const float *gamma,
                              const mmcr_bn_desc *d, int n, size_t hw, int B, const float *relu_y, double *part);
/* Global average pooling from / back to the blocked layout; features are row-major (N x C). */
void mmcr_gap_forward_blocked(float *y, const float *x, int c, int n, int hw, int B);
void mmcr_gap_backward_blocked(float *dx, const float *dy, int c, int n, int hw, int B);
/* Layout conversions between CNHW planes and the blocked layout (c a multiple of B). */
void nn_cnhw_to_blocked(float *dst, const float *src, int c, int n, size_t hw, int B);
void nn_blocked_to_cnhw(float *dst, const float *src, int c, int n, size_t hw, int B);

/* Conv backward; accumulate_dx != 0 adds into dx instead of overwriting it. */
void mmcr_conv2d_backward_acc(float *dx, float *dwt, const float *dy, const float *x, const float *wt,
                              const mmcr_conv2d_desc *d, int n, int h, int w, float *ws, int accumulate_dx);

/* oneDNN convolutions (conv2d_onednn.c). A context (engine, stream, scratch shared by all layers)
 * per model and one object per conv layer. forward/backward return -1, having written nothing,
 * when no oneDNN primitive can be built for this batch size; the caller then uses the im2col
 * path. Without oneDNN at build time nn_dnnl_create returns NULL. backward accumulates into dwt
 * and writes (or with accumulate_dx adds into) dx, exactly as mmcr_conv2d_backward_acc. */
typedef struct nn_dnnl nn_dnnl;
typedef struct nn_dnnl_conv nn_dnnl_conv;
int nn_dnnl_available(void);
nn_dnnl *nn_dnnl_create(void);
void nn_dnnl_destroy(nn_dnnl *c);
/* The block B (16 or 8) of the blocked layout that this machine's oneDNN convolution kernels
 * use, or 0 when they want neither (or ctx is NULL). */
int nn_dnnl_block(const nn_dnnl *ctx);
/* src_blk / dst_blk: the caller's activations are in the blocked layout with that block (8 or
 * 16), or 0: CNHW. */
nn_dnnl_conv *nn_dnnl_conv_create(nn_dnnl *ctx, const mmcr_conv2d_desc *d, int h, int w, int src_blk,
                                  int dst_blk);
/* Builds (or finds) the primitives for batch n at the current thread count: 0, or -1 when they
 * cannot be built; after 0, forward and backward for n on these threads cannot fail. */
int nn_dnnl_conv_prepare(nn_dnnl_conv *cv, int n);
void nn_dnnl_conv_destroy(nn_dnnl_conv *cv);
int nn_dnnl_conv_forward(nn_dnnl_conv *cv, float *y, const float *x, const float *wt, int n);
int nn_dnnl_conv_backward(nn_dnnl_conv *cv, float *dx, float *dwt, const float *dy, const float *x,
                          const float *wt, int n, int accumulate_dx);

#endif
