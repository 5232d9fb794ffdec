/* The model object shared by resnet.c (encoder plan, forward, backward) and model.c (public
 * API, projector, parameter table, initialisation). Not installed. */
#ifndef MMCR_NN_MODEL_INTERNAL_H
#define MMCR_NN_MODEL_INTERNAL_H

#include "mmcr/nn.h"
#include "nn/nn_internal.h"

/* How mmcr_model_init fills a tensor (torchvision / torch.nn defaults). */
typedef enum nn_init_kind {
    NN_INIT_KAIMING_FAN_OUT, /* normal(0, sqrt(2 / fan_out)), fan_out = cout * k * k */
    NN_INIT_UNIFORM_FAN_IN,  /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): Linear weight and bias */
    NN_INIT_ONES,
    NN_INIT_ZEROS
} nn_init_kind;

typedef struct nn_conv {
    mmcr_conv2d_desc d;
    int h, w, ho, wo; /* input and output spatial size */
    int wt;           /* parameter tensor index */
    nn_dnnl_conv *dnnl; /* oneDNN kernels for this layer (NULL: GEMM only) */
} nn_conv;

typedef struct nn_bn {
    int c;
    int gamma, beta;       /* parameter tensor indices */
    int run_mean, run_var; /* buffer tensor indices */
    float *save_mean, *save_invstd;
} nn_bn;

/* BasicBlock: out = relu(bn2(conv2(relu(bn1(conv1(in))))) + shortcut(in)). */
typedef struct nn_block {
    nn_conv conv1, conv2, down; /* down: 1x1 stride-s conv when the shape changes */
    nn_bn bn1, bn2, down_bn;
    int has_down;
    /* Saved activations, each (C, N, H, W), or blocked (N, C/B, H, W, B) on the oneDNN path: */
    const float *in; /* block input (previous block's out, or the stem output) */
    float *c1;       /* conv1 output = bn1 input */
    float *h1;       /* relu(bn1(c1)) = conv2 input */
    float *c2;       /* conv2 output = bn2 input */
    float *cd;       /* downsample conv output (has_down only) */
    float *out;      /* block output (after the final ReLU) */
} nn_block;

struct mmcr_model {
    mmcr_model_config cfg;
    int max_batch;
    float bn_eps, bn_momentum;

    /* Parameter and buffer tables; init_kind/init_fan parallel to tensors (and buffers). */
    mmcr_tensor_info *tensors;
    nn_init_kind *init_kind;
    int *init_fan;
    int ntensors, cap_tensors;
    mmcr_tensor_info *buf_tensors;
    int nbuf, cap_buf;
    size_t nparams, nbuffers;
    float *params, *grads, *buffers;

    /* Encoder plan. */
    nn_conv stem;
    nn_bn stem_bn;
    nn_block *blocks;
    int nblocks;
    int feat_dim, final_hw;

    /* Projector: hidden > 0: Linear(F, hidden) -> BN1d -> ReLU -> Linear(hidden, D);
     * hidden == 0: Linear(F, D) in lin1. Bias indices are -1 when absent. */
    int hidden, embed_dim;
    int lin1_w, lin1_b, lin2_w, lin2_b;
    nn_bn proj_bn;

    /* Activation arena (allocated once for max_batch) and what lives in it. */
    float *arena;
    size_t arena_floats;
    float *x0;                /* input images as (C, N, H, W) */
    float *stem_c, *stem_out; /* stem conv output (bn input) and relu(bn(.)) */
    float *feat;              /* (N, F) */
    float *pz, *ph;           /* projector hidden pre-BN and post-ReLU (N, hidden) */
    float *embed;             /* (N, D) */
    float *g[3];              /* backward scratch, each the largest activation */
    float *gfeat, *gph;       /* (N, F), (N, hidden) */
    float *ws;                /* conv workspace */
    double *bn_part;          /* blocked-BN partial sums, NN_BN_PART_DOUBLES(widest BN) */
    size_t act_max, ws_floats;

    /* Convolution kernels: oneDNN context (NULL when unavailable) and whether it is used. */
    nn_dnnl *dnnl;
    int use_dnnl;
    nn_conv **dnnl_convs; /* every conv layer, stem first (set up with the oneDNN objects) */
    int nconvs;
    int blk; /* the oneDNN kernels' activation block when every encoder channel count is a
              * multiple of it, else 0 (no blocked layout) */
    /* Set by each forward, used by the backward after it: this pass runs its convolutions on
     * oneDNN (dnnl_now) and keeps activations blocked (blocked = dnnl_now && blk). */
    int dnnl_now, blocked;

    int last_n;
    int backward_ready; /* last forward was train=1, project=1 */
};

/* model.c: append a tensor to the parameter (buffer=0) or buffer (buffer=1) table; returns its
 * index or -1 when out of memory. */
int mmcr_nn_add_tensor(mmcr_model *m, int buffer, const char *name, int ndim, const int *shape,
                        nn_init_kind kind, int fan, int is_1d);

/* resnet.c */
int mmcr_nn_resnet_plan(mmcr_model *m);                    /* tables + descriptors; 0 or -1 (NOMEM) */
size_t mmcr_nn_resnet_carve(mmcr_model *m, float *base); /* assigns pointers when base != NULL */
int mmcr_nn_resnet_dnnl_init(mmcr_model *m);     /* per-layer oneDNN objects; 0 or -1 */
void mmcr_nn_resnet_dnnl_free(mmcr_model *m);
void mmcr_nn_resnet_forward(mmcr_model *m, int n, int train);
void mmcr_nn_resnet_backward(mmcr_model *m, int n);
double mmcr_nn_resnet_flops(const mmcr_model *m);

static inline float *nn_param(mmcr_model *m, int t) { return m->params + m->tensors[t].offset; }
static inline float *nn_grad(mmcr_model *m, int t) { return m->grads + m->tensors[t].offset; }
static inline float *nn_buffer(mmcr_model *m, int t) { return m->buffers + m->buf_tensors[t].offset; }

#endif
