/* ResNet-18 encoder with the CIFAR stem (3x3 conv, stride 1, no max-pool): plan, forward and
 * backward over CNHW activations, or over oneDNN's blocked layout (N, C/B, H, W, B), B = 16 or 8
 * as the machine's kernels want, when the convolutions run on oneDNN and every width is a
 * multiple of B (then nothing is reordered between layers; only the input images stay CNHW).
 * Tensor names follow torchvision's state_dict under the prefix "backbone." so a PyTorch twin can
 * load the parameters by name. */
#include "nn/model_internal.h"
#include "nn/nn_internal.h"

#include <stdio.h>
#include <stdlib.h>

static int plan_conv(mmcr_model *m, nn_conv *cv, const char *name, int cin, int cout, int k, int stride,
                     int pad, int h, int w) {
    cv->d.cin = cin;
    cv->d.cout = cout;
    cv->d.k = k;
    cv->d.stride = stride;
    cv->d.pad = pad;
    cv->h = h;
    cv->w = w;
    cv->ho = mmcr_conv_out(h, k, stride, pad);
    cv->wo = mmcr_conv_out(w, k, stride, pad);
    const int shape[4] = {cout, cin, k, k};
    cv->wt = mmcr_nn_add_tensor(m, 0, name, 4, shape, NN_INIT_KAIMING_FAN_OUT, cout * k * k, 0);
    return cv->wt < 0 ? -1 : 0;
}

static int plan_bn(mmcr_model *m, nn_bn *bn, const char *prefix, int c, int zero_gamma) {
    char name[96];
    const int shape[1] = {c};
    bn->c = c;
    snprintf(name, sizeof name, "%s.weight", prefix);
    bn->gamma = mmcr_nn_add_tensor(m, 0, name, 1, shape, zero_gamma ? NN_INIT_ZEROS : NN_INIT_ONES, 0, 1);
    snprintf(name, sizeof name, "%s.bias", prefix);
    bn->beta = mmcr_nn_add_tensor(m, 0, name, 1, shape, NN_INIT_ZEROS, 0, 1);
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    bn->run_mean = mmcr_nn_add_tensor(m, 1, name, 1, shape, NN_INIT_ZEROS, 0, 1);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    bn->run_var = mmcr_nn_add_tensor(m, 1, name, 1, shape, NN_INIT_ONES, 0, 1);
    return (bn->gamma < 0 || bn->beta < 0 || bn->run_mean < 0 || bn->run_var < 0) ? -1 : 0;
}

static void note_conv(mmcr_model *m, const nn_conv *cv) {
    size_t ws = mmcr_conv2d_ws_floats(&cv->d, m->max_batch, cv->h, cv->w);
    if (ws > m->ws_floats) m->ws_floats = ws;
    size_t a = (size_t)cv->d.cout * (size_t)m->max_batch * (size_t)cv->ho * (size_t)cv->wo;
    size_t b = (size_t)cv->d.cin * (size_t)m->max_batch * (size_t)cv->h * (size_t)cv->w;
    if (a > m->act_max) m->act_max = a;
    if (b > m->act_max) m->act_max = b;
}

int mmcr_nn_resnet_plan(mmcr_model *m) {
    const mmcr_model_config *c = &m->cfg;
    int s = c->image_size, width = c->width;
    char name[96];
    m->nblocks = c->blocks[0] + c->blocks[1] + c->blocks[2] + c->blocks[3];
    m->blocks = calloc((size_t)m->nblocks, sizeof *m->blocks);
    if (!m->blocks) return -1;
    if (plan_conv(m, &m->stem, "backbone.conv1.weight", c->in_channels, width, 3, 1, 1, s, s)) return -1;
    if (plan_bn(m, &m->stem_bn, "backbone.bn1", width, 0)) return -1;
    note_conv(m, &m->stem);
    int cin = width, h = s, bi = 0;
    for (int stage = 0; stage < 4; stage++) {
        const int cout = width << stage;
        for (int j = 0; j < c->blocks[stage]; j++, bi++) {
            nn_block *b = &m->blocks[bi];
            const int stride = (stage > 0 && j == 0) ? 2 : 1;
            const int ho = mmcr_conv_out(h, 3, stride, 1);
            snprintf(name, sizeof name, "backbone.layer%d.%d.conv1.weight", stage + 1, j);
            if (plan_conv(m, &b->conv1, name, cin, cout, 3, stride, 1, h, h)) return -1;
            snprintf(name, sizeof name, "backbone.layer%d.%d.bn1", stage + 1, j);
            if (plan_bn(m, &b->bn1, name, cout, 0)) return -1;
            snprintf(name, sizeof name, "backbone.layer%d.%d.conv2.weight", stage + 1, j);
            if (plan_conv(m, &b->conv2, name, cout, cout, 3, 1, 1, ho, ho)) return -1;
            snprintf(name, sizeof name, "backbone.layer%d.%d.bn2", stage + 1, j);
            if (plan_bn(m, &b->bn2, name, cout, c->zero_init_residual)) return -1;
            note_conv(m, &b->conv1);
            note_conv(m, &b->conv2);
            b->has_down = stride != 1 || cin != cout;
            if (b->has_down) {
                snprintf(name, sizeof name, "backbone.layer%d.%d.downsample.0.weight", stage + 1, j);
                if (plan_conv(m, &b->down, name, cin, cout, 1, stride, 0, h, h)) return -1;
                snprintf(name, sizeof name, "backbone.layer%d.%d.downsample.1", stage + 1, j);
                if (plan_bn(m, &b->down_bn, name, cout, 0)) return -1;
                note_conv(m, &b->down);
                MMCR_ASSERT(b->down.ho == ho);
            }
            cin = cout;
            h = ho;
        }
    }
    m->feat_dim = cin;
    m->final_hw = h * h;
    return 0;
}

/* Floats per carved piece are rounded up to 16 so every piece stays 64-byte aligned. */
static float *carve(float *base, size_t *off, size_t nfloats) {
    float *p = base ? base + *off : NULL;
    *off += (nfloats + 15) & ~(size_t)15;
    return p;
}

static void carve_bn(float *base, size_t *off, nn_bn *bn) {
    bn->save_mean = carve(base, off, (size_t)bn->c);
    bn->save_invstd = carve(base, off, (size_t)bn->c);
}

size_t mmcr_nn_resnet_carve(mmcr_model *m, float *base) {
    const size_t nb = (size_t)m->max_batch, s2 = (size_t)m->cfg.image_size * (size_t)m->cfg.image_size;
    size_t off = 0;
    m->x0 = carve(base, &off, (size_t)m->cfg.in_channels * nb * s2);
    m->stem_c = carve(base, &off, (size_t)m->cfg.width * nb * s2);
    m->stem_out = carve(base, &off, (size_t)m->cfg.width * nb * s2);
    carve_bn(base, &off, &m->stem_bn);
    /* The widest BN is the last stage's (feat_dim); two floats per double. */
    m->bn_part = (double *)(void *)carve(base, &off, 2 * NN_BN_PART_DOUBLES(m->feat_dim));
    const float *prev = m->stem_out;
    for (int i = 0; i < m->nblocks; i++) {
        nn_block *b = &m->blocks[i];
        const size_t act = (size_t)b->conv1.d.cout * nb * (size_t)b->conv1.ho * (size_t)b->conv1.wo;
        b->in = prev;
        b->c1 = carve(base, &off, act);
        b->h1 = carve(base, &off, act);
        b->c2 = carve(base, &off, act);
        b->cd = b->has_down ? carve(base, &off, act) : NULL;
        b->out = carve(base, &off, act);
        carve_bn(base, &off, &b->bn1);
        carve_bn(base, &off, &b->bn2);
        if (b->has_down) carve_bn(base, &off, &b->down_bn);
        prev = b->out;
    }
    return off;
}

static void bn_fwd(mmcr_model *m, const nn_bn *bn, float *y, const float *x, int n, size_t hw, int train,
                   const float *residual, int relu) {
    mmcr_bn_desc d = {bn->c, m->bn_eps, m->bn_momentum};
    if (m->blocked)
        mmcr_bn_forward_blocked(y, bn->save_mean, bn->save_invstd, x, nn_param(m, bn->gamma), nn_param(m, bn->beta),
                                nn_buffer(m, bn->run_mean), nn_buffer(m, bn->run_var), &d, n, hw, m->blk, train,
                                residual, relu, m->bn_part);
    else
        mmcr_bn_forward_fused(y, bn->save_mean, bn->save_invstd, x, nn_param(m, bn->gamma), nn_param(m, bn->beta),
                              nn_buffer(m, bn->run_mean), nn_buffer(m, bn->run_var), &d, (size_t)n * hw, train,
                              residual, relu);
}

static void bn_bwd(mmcr_model *m, const nn_bn *bn, float *dx, const float *dy, const float *x, int n, size_t hw,
                   const float *relu_y) {
    mmcr_bn_desc d = {bn->c, m->bn_eps, m->bn_momentum};
    if (m->blocked)
        mmcr_bn_backward_blocked(dx, nn_grad(m, bn->gamma), nn_grad(m, bn->beta), dy, x, bn->save_mean,
                                 bn->save_invstd, nn_param(m, bn->gamma), &d, n, hw, m->blk, relu_y, m->bn_part);
    else
        mmcr_bn_backward_fused(dx, nn_grad(m, bn->gamma), nn_grad(m, bn->beta), dy, x, bn->save_mean,
                               bn->save_invstd, nn_param(m, bn->gamma), &d, (size_t)n * hw, relu_y);
}

/* Every conv layer of the encoder, for the loops below. */
static int conv_list(mmcr_model *m, nn_conv **out) {
    int k = 0;
    out[k++] = &m->stem;
    for (int i = 0; i < m->nblocks; i++) {
        out[k++] = &m->blocks[i].conv1;
        out[k++] = &m->blocks[i].conv2;
        if (m->blocks[i].has_down) out[k++] = &m->blocks[i].down;
    }
    return k;
}

int mmcr_nn_resnet_dnnl_init(mmcr_model *m) {
    if (!m->dnnl) return 0;
    nn_conv **all = malloc((size_t)(3 * m->nblocks + 1) * sizeof *all);
    if (!all) return -1;
    m->dnnl_convs = all;
    m->nconvs = conv_list(m, all);
    /* The kernels' block, when every encoder channel count (width << stage) is a multiple of it. */
    const int blk = nn_dnnl_block(m->dnnl);
    m->blk = blk && m->stem.d.cout % blk == 0 ? blk : 0;
    for (int i = 0; i < m->nconvs; i++) {
        /* all[0] is the stem: its input is the images, always CNHW. */
        all[i]->dnnl = nn_dnnl_conv_create(m->dnnl, &all[i]->d, all[i]->h, all[i]->w, i > 0 ? m->blk : 0, m->blk);
        if (!all[i]->dnnl) return -1;
    }
    return 0;
}

void mmcr_nn_resnet_dnnl_free(mmcr_model *m) {
    for (int i = 0; m->dnnl_convs && i < m->nconvs; i++) {
        nn_dnnl_conv_destroy(m->dnnl_convs[i]->dnnl);
        m->dnnl_convs[i]->dnnl = NULL;
    }
    free(m->dnnl_convs);
    m->dnnl_convs = NULL;
    m->nconvs = 0;
}

/* Chooses the kernels of one forward pass (and the backward after it): oneDNN when selected and
 * every layer's primitives for batch n exist or can be built now, else im2col + GEMM on CNHW. */
static void choose_kernels(mmcr_model *m, int n) {
    m->dnnl_now = 0;
    if (m->use_dnnl && m->dnnl) {
        nn_conv **all = m->dnnl_convs;
        int ok = 1;
        for (int i = 0; i < m->nconvs && ok; i++) ok = all[i]->dnnl && nn_dnnl_conv_prepare(all[i]->dnnl, n) == 0;
        m->dnnl_now = ok;
    }
    m->blocked = m->dnnl_now && m->blk;
}

static void conv_fwd(mmcr_model *m, const nn_conv *cv, float *y, const float *x, int n) {
    if (m->dnnl_now) {
        /* Prepared for n in choose_kernels: cannot fail. */
        const int rc = nn_dnnl_conv_forward(cv->dnnl, y, x, nn_param(m, cv->wt), n);
        MMCR_ASSERT(rc == 0);
        return;
    }
    mmcr_conv2d_forward(y, x, nn_param(m, cv->wt), &cv->d, n, cv->h, cv->w, m->ws);
}

static void conv_bwd(mmcr_model *m, const nn_conv *cv, float *dx, const float *dy, const float *x, int n,
                     int accumulate) {
    if (m->dnnl_now) {
        const int rc =
            nn_dnnl_conv_backward(cv->dnnl, dx, nn_grad(m, cv->wt), dy, x, nn_param(m, cv->wt), n, accumulate);
        MMCR_ASSERT(rc == 0); /* prepared by the forward for this n */
        return;
    }
    mmcr_conv2d_backward_acc(dx, nn_grad(m, cv->wt), dy, x, nn_param(m, cv->wt), &cv->d, n, cv->h, cv->w, m->ws,
                             accumulate);
}

void mmcr_nn_resnet_forward(mmcr_model *m, int n, int train) {
    const size_t s2 = (size_t)m->cfg.image_size * (size_t)m->cfg.image_size;
    choose_kernels(m, n);
    conv_fwd(m, &m->stem, m->stem_c, m->x0, n);
    bn_fwd(m, &m->stem_bn, m->stem_out, m->stem_c, n, s2, train, NULL, 1);
    for (int i = 0; i < m->nblocks; i++) {
        nn_block *b = &m->blocks[i];
        const size_t hw = (size_t)b->conv1.ho * (size_t)b->conv1.wo;
        conv_fwd(m, &b->conv1, b->c1, b->in, n);
        bn_fwd(m, &b->bn1, b->h1, b->c1, n, hw, train, NULL, 1);
        conv_fwd(m, &b->conv2, b->c2, b->h1, n);
        if (b->has_down) {
            conv_fwd(m, &b->down, b->cd, b->in, n);
            bn_fwd(m, &b->down_bn, b->out, b->cd, n, hw, train, NULL, 0);
            bn_fwd(m, &b->bn2, b->out, b->c2, n, hw, train, b->out, 1);
        } else {
            bn_fwd(m, &b->bn2, b->out, b->c2, n, hw, train, b->in, 1);
        }
    }
    const float *last = m->nblocks ? m->blocks[m->nblocks - 1].out : m->stem_out;
    if (m->blocked)
        mmcr_gap_forward_blocked(m->feat, last, m->feat_dim, n, m->final_hw, m->blk);
    else
        mmcr_gap_forward(m->feat, last, m->feat_dim, n, m->final_hw);
}

/* From m->gfeat (N x F) back to the stem weights, in the layout and with the kernels of the
 * forward before it. Three scratch planes rotate: ga = dL/d(block output), gb and gc =
 * intermediate gradients. */
void mmcr_nn_resnet_backward(mmcr_model *m, int n) {
    float *ga = m->g[0], *gb = m->g[1], *gc = m->g[2];
    if (m->blocked)
        mmcr_gap_backward_blocked(ga, m->gfeat, m->feat_dim, n, m->final_hw, m->blk);
    else
        mmcr_gap_backward(ga, m->gfeat, m->feat_dim, n, m->final_hw);
    for (int i = m->nblocks - 1; i >= 0; i--) {
        nn_block *b = &m->blocks[i];
        const size_t hw = (size_t)b->conv1.ho * (size_t)b->conv1.wo;
        const size_t cm = (size_t)b->conv1.d.cout * (size_t)n * hw;
        mmcr_relu_backward(ga, ga, b->out, cm);           /* ga = dL/d(bn2 + shortcut) */
        bn_bwd(m, &b->bn2, gb, ga, b->c2, n, hw, NULL);    /* gb = dL/dc2 */
        conv_bwd(m, &b->conv2, gc, gb, b->h1, n, 0);       /* gc = dL/dh1 */
        bn_bwd(m, &b->bn1, gc, gc, b->c1, n, hw, b->h1);   /* gc = dL/dc1 (ReLU mask fused) */
        if (b->has_down) {
            conv_bwd(m, &b->conv1, gb, gc, b->in, n, 0); /* gb = dL/din, main path */
            bn_bwd(m, &b->down_bn, gc, ga, b->cd, n, hw, NULL);
            conv_bwd(m, &b->down, gb, gc, b->in, n, 1);  /* gb += shortcut path */
            float *t = ga;
            ga = gb;
            gb = t;
        } else {
            conv_bwd(m, &b->conv1, ga, gc, b->in, n, 1); /* identity shortcut: ga already holds it */
        }
    }
    const size_t s2 = (size_t)m->cfg.image_size * (size_t)m->cfg.image_size;
    bn_bwd(m, &m->stem_bn, gb, ga, m->stem_c, n, s2, m->stem_out);
    conv_bwd(m, &m->stem, NULL, gb, m->x0, n, 0);
}

static double conv_flops(const nn_conv *cv) {
    return 2.0 * (double)cv->d.cout * (double)cv->d.cin * (double)cv->d.k * (double)cv->d.k * (double)cv->ho *
           (double)cv->wo;
}

double mmcr_nn_resnet_flops(const mmcr_model *m) {
    double f = conv_flops(&m->stem);
    for (int i = 0; i < m->nblocks; i++) {
        const nn_block *b = &m->blocks[i];
        f += conv_flops(&b->conv1) + conv_flops(&b->conv2);
        if (b->has_down) f += conv_flops(&b->down);
    }
    return f;
}
