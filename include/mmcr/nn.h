/* Network engine: explicit forward/backward ops and the ResNet encoder + MLP projector.
 *
 * Activation layout inside the encoder is "CNHW": C planes, each holding N*H*W floats
 * (image-major inside a plane). A convolution is then one GEMM over the whole batch,
 * W (Cout x Cin*k*k) * col (Cin*k*k x N*Ho*Wo), and batch-norm statistics are contiguous
 * per channel. Feature vectors after pooling, and everything in the projector, are
 * row-major (N x F). Images enter the model as NCHW (N x C x H x W), as the data layer
 * produces them.
 *
 * Argument order (llm.c): outputs, saved-for-backward, inputs, parameters, sizes.
 * Backward ACCUMULATES into parameter gradients and WRITES the input gradient.
 * Every op has a simple reference (_ref) beside the fast path; tests compare them. */
#ifndef MMCR_NN_H
#define MMCR_NN_H

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------- ops ---------------- */
typedef struct mmcr_conv2d_desc {
    int cin, cout, k, stride, pad;
} mmcr_conv2d_desc;
static inline int mmcr_conv_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }
/* Scratch (floats) that the fast conv needs for batch n at input size h x w (im2col buffer). */
size_t mmcr_conv2d_ws_floats(const mmcr_conv2d_desc *d, int n, int h, int w);
/* x (Cin, N, H, W) -> y (Cout, N, Ho, Wo); wt (Cout, Cin, k, k); no bias. */
void mmcr_conv2d_forward(float *y, const float *x, const float *wt, const mmcr_conv2d_desc *d,
                         int n, int h, int w, float *ws);
/* dx may be NULL (first layer). dwt accumulated. */
void mmcr_conv2d_backward(float *dx, float *dwt, const float *dy, const float *x, const float *wt,
                          const mmcr_conv2d_desc *d, int n, int h, int w, float *ws);
void mmcr_conv2d_forward_ref(float *y, const float *x, const float *wt, const mmcr_conv2d_desc *d, int n, int h, int w);
void mmcr_conv2d_backward_ref(float *dx, float *dwt, const float *dy, const float *x, const float *wt,
                              const mmcr_conv2d_desc *d, int n, int h, int w);

/* Batch norm over "channel planes": x is (C, M) with M = N*H*W (CNHW) for 2-D BN.
 * PyTorch semantics: biased batch variance to normalise, unbiased variance into the running
 * variance, running = (1-momentum)*running + momentum*batch, eps inside the sqrt.
 * train != 0 uses batch statistics and updates running stats; saves mean and invstd (C). */
typedef struct mmcr_bn_desc {
    int c;
    float eps;      /* 1e-5 */
    float momentum; /* 0.1 */
} mmcr_bn_desc;
void mmcr_bn_forward(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                     const float *beta, float *run_mean, float *run_var, const mmcr_bn_desc *d, size_t m, int train);
void mmcr_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *save_mean, const float *save_invstd, const float *gamma,
                      const mmcr_bn_desc *d, size_t m);
/* 1-D BN on row-major (N x C) features: same semantics, statistics over the N rows. */
void mmcr_bn1d_forward(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                       const float *beta, float *run_mean, float *run_var, const mmcr_bn_desc *d, int n, int train);
void mmcr_bn1d_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                        const float *save_mean, const float *save_invstd, const float *gamma,
                        const mmcr_bn_desc *d, int n);

void mmcr_relu_forward(float *y, const float *x, size_t n);
/* dx = dy * (y > 0); works in place (dx == dy). */
void mmcr_relu_backward(float *dx, const float *dy, const float *y, size_t n);

/* Global average pool: x (C, N, H, W) -> y (N, C) row-major. */
void mmcr_gap_forward(float *y, const float *x, int c, int n, int hw);
void mmcr_gap_backward(float *dx, const float *dy, int c, int n, int hw);

/* Linear: x (N, In) row-major, wt (Out, In) as PyTorch, bias (Out) or NULL -> y (N, Out). */
void mmcr_linear_forward(float *y, const float *x, const float *wt, const float *bias, int n, int in, int out);
void mmcr_linear_backward(float *dx, float *dwt, float *dbias, const float *dy, const float *x,
                          const float *wt, int n, int in, int out);

/* ---------------- model: ResNet-18 (CIFAR stem) + projector ---------------- */
typedef struct mmcr_model_config {
    int in_channels;   /* 1 or 3 */
    int image_size;    /* square input, e.g. 28 or 32 */
    int width;         /* base width: 64 is the standard ResNet-18; 16 for the demo */
    int blocks[4];     /* basic blocks per stage: {2,2,2,2} for ResNet-18 */
    int proj_hidden;   /* projector hidden width (default 512); 0 = no hidden layer */
    int proj_out;      /* D (default 128) */
    int proj_bias;     /* 0 as the original code */
    int zero_init_residual;
} mmcr_model_config;
void mmcr_model_config_default(mmcr_model_config *c);

/* One named tensor of the parameter (or buffer) table. */
typedef struct mmcr_tensor_info {
    char name[96];
    int ndim;
    int shape[4];
    size_t offset; /* in floats, into params/grads (or buffers) */
    size_t size;   /* in floats */
    int is_1d;     /* biases and BN affine params: excluded from LARS adaptation and weight decay */
} mmcr_tensor_info;

typedef struct mmcr_model mmcr_model;
/* Plans every activation and workspace for batches of up to max_batch images, allocates once. */
mmcr_status mmcr_model_create(mmcr_model **out, const mmcr_model_config *cfg, int max_batch, mmcr_err *err);
void mmcr_model_destroy(mmcr_model **m);
const mmcr_model_config *mmcr_model_get_config(const mmcr_model *m);
/* PyTorch/torchvision initialisation from an explicit seed: conv kaiming_normal(fan_out, relu),
 * BN gamma=1 beta=0, linear U(-1/sqrt(in), 1/sqrt(in)). */
void mmcr_model_init(mmcr_model *m, uint64_t seed);
/* Batch-norm running statistics back to a fresh layer's (mean 0, variance 1); parameters untouched. */
void mmcr_model_reset_bn_stats(mmcr_model *m);
/* Momentum of every batch-norm running-statistics update (0.1 as torch); 1/b for the b-th batch
 * after a reset gives the plain average over the batches. */
void mmcr_model_set_bn_momentum(mmcr_model *m, float momentum);
/* Convolution kernels of the encoder. ONEDNN (the default when libmmcr is built with oneDNN):
 * oneDNN's direct kernels, about 3x faster than GEMM on small channel counts; a batch size for
 * which oneDNN builds no kernel falls back to GEMM. GEMM: im2col + OpenBLAS sgemm. Both compute
 * the same convolution (tests compare them); summation order, hence the last float bits, differs.
 * Setting ONEDNN on a build without it returns MMCR_ERR_ARG and keeps GEMM. */
typedef enum mmcr_conv_backend { MMCR_CONV_ONEDNN = 0, MMCR_CONV_GEMM = 1 } mmcr_conv_backend;
mmcr_status mmcr_model_set_conv_backend(mmcr_model *m, mmcr_conv_backend backend);
mmcr_conv_backend mmcr_model_get_conv_backend(const mmcr_model *m);
const char *mmcr_conv_backend_name(mmcr_conv_backend backend);

int mmcr_model_feature_dim(const mmcr_model *m); /* backbone output (8 * width) */
int mmcr_model_embed_dim(const mmcr_model *m);   /* projector output D */

/* One flat buffer each for parameters and gradients, same layout. */
size_t mmcr_model_num_params(const mmcr_model *m);
float *mmcr_model_params(mmcr_model *m);
float *mmcr_model_grads(mmcr_model *m);
int mmcr_model_num_tensors(const mmcr_model *m);
const mmcr_tensor_info *mmcr_model_tensor(const mmcr_model *m, int i);
/* Non-trainable buffers (BN running mean/var), one flat buffer. */
size_t mmcr_model_num_buffers(const mmcr_model *m);
float *mmcr_model_buffers(mmcr_model *m);
int mmcr_model_num_buffer_tensors(const mmcr_model *m);
const mmcr_tensor_info *mmcr_model_buffer_tensor(const mmcr_model *m, int i);

void mmcr_model_zero_grad(mmcr_model *m);
/* Forward a batch of n <= max_batch images (n x C x H x W). train: BN batch statistics and
 * running-stat updates. Returns pointers into the model's own activation memory, valid until
 * the next forward: features (n x feature_dim), embed (n x D; NULL if project == 0). */
mmcr_status mmcr_model_forward(mmcr_model *m, const float *images, int n, int train, int project,
                               const float **features, const float **embed);
/* Backward from dL/d(embed) (n x D) of the last training forward; accumulates into grads. */
void mmcr_model_backward(mmcr_model *m, const float *d_embed);
/* FLOPs of one forward pass for one image (multiply-add = 2 FLOPs). */
double mmcr_model_forward_flops(const mmcr_model *m);

#ifdef __cplusplus
}
#endif
#endif
