/* The model object: parameter/buffer tables over one flat buffer each, the MLP projector,
 * torchvision-style initialisation, and the forward/backward entry points. Everything a
 * forward or backward touches is allocated in mmcr_model_create. */
#include "nn/model_internal.h"
#include "nn/nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mmcr_model_config_default(mmcr_model_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = 3;
    c->image_size = 32;
    c->width = 64;
    for (int i = 0; i < 4; i++) c->blocks[i] = 2;
    c->proj_hidden = 512;
    c->proj_out = 128;
    c->proj_bias = 0;
    c->zero_init_residual = 0;
}

static mmcr_status validate(const mmcr_model_config *c, int max_batch, mmcr_err *err) {
    if (c->in_channels < 1 || c->in_channels > 64)
        return mmcr_err_set(err, MMCR_ERR_ARG, "model: in_channels must be in [1, 64], got %d", c->in_channels);
    if (c->image_size < 1 || c->image_size > 4096)
        return mmcr_err_set(err, MMCR_ERR_ARG, "model: image_size must be in [1, 4096], got %d", c->image_size);
    if (c->width < 1 || c->width > 4096)
        return mmcr_err_set(err, MMCR_ERR_ARG, "model: width must be in [1, 4096], got %d", c->width);
    for (int i = 0; i < 4; i++)
        if (c->blocks[i] < 0 || c->blocks[i] > 64)
            return mmcr_err_set(err, MMCR_ERR_ARG, "model: blocks[%d] must be in [0, 64], got %d", i, c->blocks[i]);
    if (c->proj_hidden < 0 || c->proj_hidden > (1 << 20))
        return mmcr_err_set(err, MMCR_ERR_ARG, "model: proj_hidden must be in [0, 2^20], got %d", c->proj_hidden);
    if (c->proj_out < 1 || c->proj_out > (1 << 20))
        return mmcr_err_set(err, MMCR_ERR_ARG, "model: proj_out must be in [1, 2^20], got %d", c->proj_out);
    if (max_batch < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "model: max_batch must be >= 1, got %d", max_batch);
    /* GEMM dimensions are int: one activation plane (N*H*W columns) must fit. */
    double cols = (double)max_batch * (double)c->image_size * (double)c->image_size;
    if (cols > 2147483647.0)
        return mmcr_err_set(err, MMCR_ERR_ARG, "model: max_batch %d is too large for image_size %d and width %d",
                            max_batch, c->image_size, c->width);
    return MMCR_OK;
}

int mmcr_nn_add_tensor(mmcr_model *m, int buffer, const char *name, int ndim, const int *shape, nn_init_kind kind,
                       int fan, int is_1d) {
    int *count = buffer ? &m->nbuf : &m->ntensors;
    int *cap = buffer ? &m->cap_buf : &m->cap_tensors;
    mmcr_tensor_info **tab = buffer ? &m->buf_tensors : &m->tensors;
    if (*count == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        mmcr_tensor_info *t = realloc(*tab, (size_t)nc * sizeof *t);
        if (!t) return -1;
        *tab = t;
        if (!buffer) {
            nn_init_kind *k = realloc(m->init_kind, (size_t)nc * sizeof *k);
            if (!k) return -1;
            m->init_kind = k;
            int *f = realloc(m->init_fan, (size_t)nc * sizeof *f);
            if (!f) return -1;
            m->init_fan = f;
        }
        *cap = nc;
    }
    mmcr_tensor_info *ti = &(*tab)[*count];
    memset(ti, 0, sizeof *ti);
    int len = snprintf(ti->name, sizeof ti->name, "%s", name);
    MMCR_ASSERT(len > 0 && (size_t)len < sizeof ti->name);
    MMCR_ASSERT(ndim >= 1 && ndim <= 4);
    ti->ndim = ndim;
    ti->size = 1;
    for (int i = 0; i < ndim; i++) {
        ti->shape[i] = shape[i];
        ti->size *= (size_t)shape[i];
    }
    ti->is_1d = is_1d;
    size_t *total = buffer ? &m->nbuffers : &m->nparams;
    ti->offset = *total;
    *total += ti->size;
    if (!buffer) {
        m->init_kind[*count] = kind;
        m->init_fan[*count] = fan;
    }
    return (*count)++;
}

static int plan_projector(mmcr_model *m) {
    const mmcr_model_config *c = &m->cfg;
    const int f = m->feat_dim, hd = c->proj_hidden, d = c->proj_out;
    m->hidden = hd;
    m->embed_dim = d;
    m->lin1_b = m->lin2_b = m->lin2_w = -1;
    const int out1 = hd > 0 ? hd : d;
    int shape[2] = {out1, f};
    m->lin1_w = mmcr_nn_add_tensor(m, 0, "projector.0.weight", 2, shape, NN_INIT_UNIFORM_FAN_IN, f, 0);
    if (m->lin1_w < 0) return -1;
    if (c->proj_bias) {
        m->lin1_b = mmcr_nn_add_tensor(m, 0, "projector.0.bias", 1, shape, NN_INIT_UNIFORM_FAN_IN, f, 1);
        if (m->lin1_b < 0) return -1;
    }
    if (hd == 0) return 0;
    /* nn.Sequential(Linear, BatchNorm1d, ReLU, Linear): indices 0, 1, 2, 3 */
    const int bshape[1] = {hd};
    nn_bn *bn = &m->proj_bn;
    bn->c = hd;
    bn->gamma = mmcr_nn_add_tensor(m, 0, "projector.1.weight", 1, bshape, NN_INIT_ONES, 0, 1);
    bn->beta = mmcr_nn_add_tensor(m, 0, "projector.1.bias", 1, bshape, NN_INIT_ZEROS, 0, 1);
    bn->run_mean = mmcr_nn_add_tensor(m, 1, "projector.1.running_mean", 1, bshape, NN_INIT_ZEROS, 0, 1);
    bn->run_var = mmcr_nn_add_tensor(m, 1, "projector.1.running_var", 1, bshape, NN_INIT_ONES, 0, 1);
    if (bn->gamma < 0 || bn->beta < 0 || bn->run_mean < 0 || bn->run_var < 0) return -1;
    shape[0] = d;
    shape[1] = hd;
    m->lin2_w = mmcr_nn_add_tensor(m, 0, "projector.3.weight", 2, shape, NN_INIT_UNIFORM_FAN_IN, hd, 0);
    if (m->lin2_w < 0) return -1;
    if (c->proj_bias) {
        m->lin2_b = mmcr_nn_add_tensor(m, 0, "projector.3.bias", 1, shape, NN_INIT_UNIFORM_FAN_IN, hd, 1);
        if (m->lin2_b < 0) return -1;
    }
    return 0;
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Lays out the whole activation arena; with base == NULL it only measures. */
static size_t model_carve(mmcr_model *m, float *base) {
    size_t off = mmcr_nn_resnet_carve(m, base);
    const size_t nb = (size_t)m->max_batch, hd = (size_t)m->hidden;
#define TAKE(ptr, nfl)                                                                                         \
    do {                                                                                                       \
        (ptr) = base ? base + off : NULL;                                                                      \
        off += round16(nfl);                                                                                   \
    } while (0)
    TAKE(m->feat, nb * (size_t)m->feat_dim);
    TAKE(m->pz, nb * hd);
    TAKE(m->ph, nb * hd);
    TAKE(m->embed, nb * (size_t)m->embed_dim);
    TAKE(m->proj_bn.save_mean, hd);
    TAKE(m->proj_bn.save_invstd, hd);
    for (int i = 0; i < 3; i++) TAKE(m->g[i], m->act_max);
    TAKE(m->gfeat, nb * (size_t)m->feat_dim);
    TAKE(m->gph, nb * hd);
    TAKE(m->ws, m->ws_floats);
#undef TAKE
    return off;
}

mmcr_status mmcr_model_create(mmcr_model **out, const mmcr_model_config *cfg, int max_batch, mmcr_err *err) {
    if (!out || !cfg) return mmcr_err_set(err, MMCR_ERR_ARG, "model: NULL argument");
    *out = NULL;
    mmcr_status st = validate(cfg, max_batch, err);
    if (st != MMCR_OK) return st;
    mmcr_model *m = calloc(1, sizeof *m);
    if (!m) return mmcr_err_set(err, MMCR_ERR_NOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->max_batch = max_batch;
    m->bn_eps = 1e-5f;
    m->bn_momentum = 0.1f;
    if (mmcr_nn_resnet_plan(m) || plan_projector(m)) {
        mmcr_model_destroy(&m);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "model: out of memory building the parameter table");
    }
    m->arena_floats = model_carve(m, NULL);
    m->params = mmcr_alloc_or_err(m->nparams * sizeof(float), err, "model parameters");
    m->grads = m->params ? mmcr_alloc_or_err(m->nparams * sizeof(float), err, "model gradients") : NULL;
    m->buffers = m->grads ? mmcr_alloc_or_err(m->nbuffers * sizeof(float), err, "model buffers") : NULL;
    m->arena = m->buffers ? mmcr_alloc_or_err(m->arena_floats * sizeof(float), err, "model activations") : NULL;
    if (!m->arena) {
        mmcr_model_destroy(&m);
        return MMCR_ERR_NOMEM;
    }
    model_carve(m, m->arena);
    /* oneDNN when built in and its engine starts; otherwise GEMM (same results). */
    m->dnnl = nn_dnnl_create();
    if (m->dnnl && mmcr_nn_resnet_dnnl_init(m)) {
        mmcr_model_destroy(&m);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "model: out of memory setting up the convolution kernels");
    }
    m->use_dnnl = m->dnnl != NULL;
    mmcr_model_init(m, 0);
    *out = m;
    return MMCR_OK;
}

void mmcr_model_destroy(mmcr_model **pm) {
    if (!pm || !*pm) return;
    mmcr_model *m = *pm;
    mmcr_nn_resnet_dnnl_free(m);
    nn_dnnl_destroy(m->dnnl);
    mmcr_free(m->arena);
    mmcr_free(m->params);
    mmcr_free(m->grads);
    mmcr_free(m->buffers);
    free(m->tensors);
    free(m->buf_tensors);
    free(m->init_kind);
    free(m->init_fan);
    free(m->blocks);
    free(m);
    *pm = NULL;
}

const mmcr_model_config *mmcr_model_get_config(const mmcr_model *m) { return &m->cfg; }

void mmcr_model_init(mmcr_model *m, uint64_t seed) {
    for (int t = 0; t < m->ntensors; t++) {
        const mmcr_tensor_info *ti = &m->tensors[t];
        float *p = m->params + ti->offset;
        /* One stream per tensor, so a tensor's values do not depend on the tensors before it. */
        mmcr_rng r;
        mmcr_rng_seed(&r, seed, 0x696e6974ull /* "init" */, (uint64_t)t, 0);
        switch (m->init_kind[t]) {
        case NN_INIT_KAIMING_FAN_OUT: {
            const double std = sqrt(2.0 / (double)m->init_fan[t]);
            for (size_t i = 0; i < ti->size; i++) p[i] = (float)(std * mmcr_rng_normal(&r));
            break;
        }
        case NN_INIT_UNIFORM_FAN_IN: {
            const double bound = 1.0 / sqrt((double)m->init_fan[t]);
            for (size_t i = 0; i < ti->size; i++) p[i] = (float)(bound * (2.0 * mmcr_rng_uniform(&r) - 1.0));
            break;
        }
        case NN_INIT_ONES:
            for (size_t i = 0; i < ti->size; i++) p[i] = 1.0f;
            break;
        case NN_INIT_ZEROS:
            memset(p, 0, ti->size * sizeof(float));
            break;
        }
    }
    mmcr_model_reset_bn_stats(m);
    mmcr_model_zero_grad(m);
    m->backward_ready = 0;
}

void mmcr_model_reset_bn_stats(mmcr_model *m) {
    /* Running mean 0, running variance 1 (as a fresh torch BatchNorm). */
    for (int t = 0; t < m->nbuf; t++) {
        const mmcr_tensor_info *ti = &m->buf_tensors[t];
        static const char suffix[] = "running_var";
        const size_t len = strlen(ti->name), sl = sizeof suffix - 1;
        const int is_var = len >= sl && strcmp(ti->name + len - sl, suffix) == 0;
        for (size_t i = 0; i < ti->size; i++) m->buffers[ti->offset + i] = is_var ? 1.0f : 0.0f;
    }
}

void mmcr_model_set_bn_momentum(mmcr_model *m, float momentum) { m->bn_momentum = momentum; }

mmcr_status mmcr_model_set_conv_backend(mmcr_model *m, mmcr_conv_backend backend) {
    if (backend == MMCR_CONV_GEMM) {
        m->use_dnnl = 0;
        return MMCR_OK;
    }
    if (backend != MMCR_CONV_ONEDNN || !m->dnnl) return MMCR_ERR_ARG;
    m->use_dnnl = 1;
    return MMCR_OK;
}

mmcr_conv_backend mmcr_model_get_conv_backend(const mmcr_model *m) {
    return m->use_dnnl ? MMCR_CONV_ONEDNN : MMCR_CONV_GEMM;
}

const char *mmcr_conv_backend_name(mmcr_conv_backend backend) {
    return backend == MMCR_CONV_ONEDNN ? "onednn" : "gemm";
}

int mmcr_model_feature_dim(const mmcr_model *m) { return m->feat_dim; }
int mmcr_model_embed_dim(const mmcr_model *m) { return m->embed_dim; }
size_t mmcr_model_num_params(const mmcr_model *m) { return m->nparams; }
float *mmcr_model_params(mmcr_model *m) { return m->params; }
float *mmcr_model_grads(mmcr_model *m) { return m->grads; }
int mmcr_model_num_tensors(const mmcr_model *m) { return m->ntensors; }
const mmcr_tensor_info *mmcr_model_tensor(const mmcr_model *m, int i) {
    return (i >= 0 && i < m->ntensors) ? &m->tensors[i] : NULL;
}
size_t mmcr_model_num_buffers(const mmcr_model *m) { return m->nbuffers; }
float *mmcr_model_buffers(mmcr_model *m) { return m->buffers; }
int mmcr_model_num_buffer_tensors(const mmcr_model *m) { return m->nbuf; }
const mmcr_tensor_info *mmcr_model_buffer_tensor(const mmcr_model *m, int i) {
    return (i >= 0 && i < m->nbuf) ? &m->buf_tensors[i] : NULL;
}

void mmcr_model_zero_grad(mmcr_model *m) { memset(m->grads, 0, m->nparams * sizeof(float)); }

/* NCHW images -> CNHW planes (a plain copy when C == 1). The copy also means backward does not
 * depend on the caller keeping the image buffer alive. */
static void load_images(mmcr_model *m, const float *images, int n) {
    const int c = m->cfg.in_channels;
    const size_t hw = (size_t)m->cfg.image_size * (size_t)m->cfg.image_size;
    if (c == 1) {
        memcpy(m->x0, images, (size_t)n * hw * sizeof(float));
        return;
    }
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)c * (size_t)n * hw >= 32768)
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < n; i++)
            memcpy(m->x0 + ((size_t)ch * (size_t)n + (size_t)i) * hw, images + ((size_t)i * (size_t)c + (size_t)ch) * hw,
                   hw * sizeof(float));
}

static const float *opt_param(mmcr_model *m, int t) { return t >= 0 ? nn_param(m, t) : NULL; }
static float *opt_grad(mmcr_model *m, int t) { return t >= 0 ? nn_grad(m, t) : NULL; }

mmcr_status mmcr_model_forward(mmcr_model *m, const float *images, int n, int train, int project,
                               const float **features, const float **embed) {
    if (!m || !images || n < 1 || n > m->max_batch) return MMCR_ERR_ARG;
    /* Training-mode BN needs more than one value per channel (PyTorch raises there too). */
    if (train && ((size_t)n * (size_t)m->final_hw < 2 || (project && m->hidden > 0 && n < 2))) return MMCR_ERR_ARG;
    m->backward_ready = 0;
    load_images(m, images, n);
    mmcr_nn_resnet_forward(m, n, train);
    if (project) {
        const int f = m->feat_dim, hd = m->hidden, d = m->embed_dim;
        if (hd > 0) {
            nn_bn *bn = &m->proj_bn;
            mmcr_bn_desc bd = {hd, m->bn_eps, m->bn_momentum};
            mmcr_linear_forward(m->pz, m->feat, nn_param(m, m->lin1_w), opt_param(m, m->lin1_b), n, f, hd);
            mmcr_bn1d_forward_fused(m->ph, bn->save_mean, bn->save_invstd, m->pz, nn_param(m, bn->gamma),
                                    nn_param(m, bn->beta), nn_buffer(m, bn->run_mean), nn_buffer(m, bn->run_var), &bd,
                                    n, train, 1);
            mmcr_linear_forward(m->embed, m->ph, nn_param(m, m->lin2_w), opt_param(m, m->lin2_b), n, hd, d);
        } else {
            mmcr_linear_forward(m->embed, m->feat, nn_param(m, m->lin1_w), opt_param(m, m->lin1_b), n, f, d);
        }
    }
    if (features) *features = m->feat;
    if (embed) *embed = project ? m->embed : NULL;
    m->last_n = n;
    m->backward_ready = train && project;
    return MMCR_OK;
}

void mmcr_model_backward(mmcr_model *m, const float *d_embed) {
    /* Backward reads the activations of the last forward, so that forward must have been a
     * training forward through the projector. */
    MMCR_ASSERT(m->backward_ready);
    const int n = m->last_n, f = m->feat_dim, hd = m->hidden, d = m->embed_dim;
    if (hd > 0) {
        nn_bn *bn = &m->proj_bn;
        mmcr_bn_desc bd = {hd, m->bn_eps, m->bn_momentum};
        mmcr_linear_backward(m->gph, nn_grad(m, m->lin2_w), opt_grad(m, m->lin2_b), d_embed, m->ph,
                             nn_param(m, m->lin2_w), n, hd, d);
        mmcr_bn1d_backward_fused(m->gph, nn_grad(m, bn->gamma), nn_grad(m, bn->beta), m->gph, m->pz, bn->save_mean,
                                 bn->save_invstd, nn_param(m, bn->gamma), &bd, n, m->ph);
        mmcr_linear_backward(m->gfeat, nn_grad(m, m->lin1_w), opt_grad(m, m->lin1_b), m->gph, m->feat,
                             nn_param(m, m->lin1_w), n, f, hd);
    } else {
        mmcr_linear_backward(m->gfeat, nn_grad(m, m->lin1_w), opt_grad(m, m->lin1_b), d_embed, m->feat,
                             nn_param(m, m->lin1_w), n, f, d);
    }
    mmcr_nn_resnet_backward(m, n);
}

double mmcr_model_forward_flops(const mmcr_model *m) {
    double f = mmcr_nn_resnet_flops(m);
    const double fd = (double)m->feat_dim, hd = (double)m->hidden, d = (double)m->embed_dim;
    f += m->hidden > 0 ? 2.0 * (fd * hd + hd * d) : 2.0 * fd * d;
    return f;
}
