/* The ResNet-18 + projector model: whole-model finite-difference gradients on a tiny config,
 * the parameter table, initialisation, train/eval semantics of BN (statistics over all rows of
 * the batch; eval forward changes nothing), and the FLOP count. */
#include "mmcr/nn.h"
#include "test_util.h"

#include <string.h>

static void fill(float *a, size_t n, mmcr_rng *r, double scale) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(scale * mmcr_rng_normal(r));
}

static int find_tensor(const mmcr_model *m, const char *name) {
    for (int i = 0; i < mmcr_model_num_tensors(m); i++)
        if (strcmp(mmcr_model_tensor(m, i)->name, name) == 0) return i;
    return -1;
}

static int find_buffer(const mmcr_model *m, const char *name) {
    for (int i = 0; i < mmcr_model_num_buffer_tensors(m); i++)
        if (strcmp(mmcr_model_buffer_tensor(m, i)->name, name) == 0) return i;
    return -1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static void tiny_config(mmcr_model_config *c, int in_ch, int hidden, int bias) {
    mmcr_model_config_default(c);
    c->in_channels = in_ch;
    c->image_size = 8;
    c->width = 4;
    c->proj_hidden = hidden;
    c->proj_out = 8;
    c->proj_bias = bias;
}

static double loss_of(mmcr_model *m, const float *img, int n, const float *r) {
    const float *feat, *emb;
    mmcr_status st = mmcr_model_forward(m, img, n, 1, 1, &feat, &emb);
    MMCR_ASSERT(st == MMCR_OK);
    double s = 0;
    for (size_t i = 0; i < (size_t)n * (size_t)mmcr_model_embed_dim(m); i++) s += (double)r[i] * (double)emb[i];
    return s;
}

/* L = sum r * embed; analytic gradient vs central differences at two coordinates per tensor. */
static void test_gradcheck(int in_ch, int hidden, int bias, int image, int n, uint64_t seed) {
    mmcr_model_config c;
    tiny_config(&c, in_ch, hidden, bias);
    c.image_size = image;
    mmcr_model *m = NULL;
    CHECK(mmcr_model_create(&m, &c, n, NULL) == MMCR_OK);
    if (!m) return;
    mmcr_model_init(m, seed);
    const int d = mmcr_model_embed_dim(m);
    const size_t nimg = (size_t)n * in_ch * image * image;
    float *img = malloc(nimg * 4), *r = malloc((size_t)n * d * 4);
    mmcr_rng g;
    mmcr_rng_seed(&g, seed, 20, 0, 0);
    fill(img, nimg, &g, 1.0);
    fill(r, (size_t)n * d, &g, 1.0);
    /* Non-trivial BN affine parameters, so gamma/beta gradients are generic. */
    float *p = mmcr_model_params(m), *gr = mmcr_model_grads(m);
    for (int t = 0; t < mmcr_model_num_tensors(m); t++) {
        const mmcr_tensor_info *ti = mmcr_model_tensor(m, t);
        if (ti->is_1d)
            for (size_t i = 0; i < ti->size; i++) p[ti->offset + i] += (float)(0.2 * mmcr_rng_normal(&g));
    }
    mmcr_model_zero_grad(m);
    loss_of(m, img, n, r);
    mmcr_model_backward(m, r);
    /* A net this small has a ReLU kink within a tiny step of almost any point (thousands of units,
     * BN over a handful of values), and float forward passes are too noisy for steps much below
     * 1e-4. So each coordinate passes if the analytic value matches the central, the right or the
     * left difference at one of four steps: near a kink the side away from it is exact to O(h),
     * while a wrong gradient is off on both sides at every step. */
    static const float steps[4] = {1e-3f, 5e-4f, 2.5e-4f, 1.25e-4f};
    int checked = 0, bad = 0;
    double worst = 0;
    for (int t = 0; t < mmcr_model_num_tensors(m); t++) {
        const mmcr_tensor_info *ti = mmcr_model_tensor(m, t);
        double gscale = 0;
        for (size_t i = 0; i < ti->size; i++) gscale = fmax(gscale, fabs(gr[ti->offset + i]));
        for (int k = 0; k < 2; k++) {
            size_t j = ti->offset + (size_t)mmcr_rng_below(&g, ti->size);
            double best = INFINITY, best_fd = 0;
            const float keep = p[j];
            const double l0 = loss_of(m, img, n, r);
            for (int si = 0; si < 4 && best > 1.0; si++) {
                p[j] = keep + steps[si];
                const double hp = (double)p[j] - (double)keep, lp = loss_of(m, img, n, r);
                p[j] = keep - steps[si];
                const double hm = (double)keep - (double)p[j], lm = loss_of(m, img, n, r);
                p[j] = keep;
                const double cand[3] = {(lp - lm) / (hp + hm), (lp - l0) / hp, (l0 - lm) / hm};
                for (int q = 0; q < 3; q++) {
                    double err = fabs(cand[q] - gr[j]) / (1e-3 * (1.0 + gscale) + 2e-2 * fabs((double)gr[j]));
                    if (err < best) best = err, best_fd = cand[q];
                }
            }
            if (best > worst) worst = best;
            checked++;
            if (best > 1.0) {
                bad++;
                fprintf(stderr, "  %s[%zu]: analytic %.6g fd %.6g\n", ti->name, j - ti->offset, gr[j], best_fd);
            }
        }
    }
    CHECK_MSG(bad == 0, "%d of %d coordinates off (worst %.3g of tolerance)", bad, checked, worst);
    /* The backbone gradient is not identically zero (the check is not vacuous). */
    const mmcr_tensor_info *stem = mmcr_model_tensor(m, 0);
    double s = 0;
    for (size_t i = 0; i < stem->size; i++) s += fabs(gr[stem->offset + i]);
    CHECK(s > 1e-3);
    /* Backward accumulates: a second backward doubles the gradient. */
    float *g1 = malloc(mmcr_model_num_params(m) * 4);
    mmcr_model_zero_grad(m);
    loss_of(m, img, n, r);
    mmcr_model_backward(m, r);
    memcpy(g1, gr, mmcr_model_num_params(m) * 4);
    mmcr_model_backward(m, r);
    double e = 0, gm = 0;
    for (size_t i = 0; i < mmcr_model_num_params(m); i++) {
        e = fmax(e, fabs(gr[i] - 2.0 * g1[i]));
        gm = fmax(gm, fabs(g1[i]));
    }
    CHECK_MSG(e <= 1e-6 * gm, "accumulation err %g (max |g| %g)", e, gm);
    free(g1), free(img), free(r);
    mmcr_model_destroy(&m);
    CHECK(m == NULL);
}

static void test_table(void) {
    mmcr_model_config c;
    mmcr_model_config_default(&c);
    mmcr_model *m = NULL;
    mmcr_err err;
    CHECK(mmcr_model_create(&m, &c, 2, &err) == MMCR_OK);
    if (!m) return;
    /* torchvision resnet18 with a 3x3 stem and no fc: 11,168,832; projector 512-512-128: 328,704 */
    CHECK(mmcr_model_num_params(m) == (size_t)11168832 + 328704);
    CHECK(mmcr_model_feature_dim(m) == 512 && mmcr_model_embed_dim(m) == 128);
    size_t off = 0;
    int ok_contig = 1, ok_unique = 1, ok_1d = 1, ok_size = 1, nbn = 0;
    for (int t = 0; t < mmcr_model_num_tensors(m); t++) {
        const mmcr_tensor_info *ti = mmcr_model_tensor(m, t);
        ok_contig &= ti->offset == off;
        off += ti->size;
        size_t prod = 1;
        for (int k = 0; k < ti->ndim; k++) prod *= (size_t)ti->shape[k];
        ok_size &= prod == ti->size;
        int bn_or_bias = ends_with(ti->name, ".bias") || (ti->ndim == 1 && ends_with(ti->name, ".weight"));
        ok_1d &= ti->is_1d == bn_or_bias && (ti->is_1d == (ti->ndim == 1));
        for (int u = 0; u < t; u++) ok_unique &= strcmp(mmcr_model_tensor(m, u)->name, ti->name) != 0;
        if (ti->ndim == 1 && ends_with(ti->name, ".weight")) nbn++;
        CHECK_MSG(strncmp(ti->name, "backbone.", 9) == 0 || strncmp(ti->name, "projector.", 10) == 0, "%s",
                  ti->name);
        CHECK_MSG(!(strncmp(ti->name, "projector.", 10) == 0 && ends_with(ti->name, ".bias") &&
                    !(ti->ndim == 1 && strstr(ti->name, "projector.1."))),
                  "projector bias present without proj_bias: %s", ti->name);
    }
    CHECK(ok_contig && off == mmcr_model_num_params(m));
    CHECK(ok_unique);
    CHECK(ok_1d);
    CHECK(ok_size);
    CHECK(nbn == 1 + 16 + 3 + 1);
    CHECK(mmcr_model_num_buffer_tensors(m) == 2 * nbn);
    off = 0;
    int ok_b = 1;
    for (int t = 0; t < mmcr_model_num_buffer_tensors(m); t++) {
        const mmcr_tensor_info *ti = mmcr_model_buffer_tensor(m, t);
        ok_b &= ti->offset == off && (ends_with(ti->name, ".running_mean") || ends_with(ti->name, ".running_var"));
        off += ti->size;
    }
    CHECK(ok_b && off == mmcr_model_num_buffers(m));
    CHECK(strcmp(mmcr_model_tensor(m, 0)->name, "backbone.conv1.weight") == 0);
    const mmcr_tensor_info *st = mmcr_model_tensor(m, 0);
    CHECK(st->ndim == 4 && st->shape[0] == 64 && st->shape[1] == 3 && st->shape[2] == 3 && st->shape[3] == 3);
    int t = find_tensor(m, "backbone.layer2.0.downsample.0.weight");
    CHECK(t >= 0);
    if (t >= 0) {
        const mmcr_tensor_info *ti = mmcr_model_tensor(m, t);
        CHECK(ti->shape[0] == 128 && ti->shape[1] == 64 && ti->shape[2] == 1 && ti->shape[3] == 1);
    }
    CHECK(find_tensor(m, "backbone.layer1.0.downsample.0.weight") < 0);
    CHECK(find_tensor(m, "backbone.layer4.1.bn2.weight") >= 0);
    CHECK(find_tensor(m, "projector.0.weight") >= 0 && find_tensor(m, "projector.3.weight") >= 0);
    CHECK(find_tensor(m, "projector.1.weight") >= 0 && find_tensor(m, "projector.1.bias") >= 0);
    CHECK(find_buffer(m, "projector.1.running_var") >= 0 && find_buffer(m, "backbone.bn1.running_mean") >= 0);
    CHECK(mmcr_model_tensor(m, -1) == NULL && mmcr_model_tensor(m, mmcr_model_num_tensors(m)) == NULL);
    /* FLOPs of torchvision resnet18 (CIFAR stem) at 32x32x3 plus the projector, counted in PyTorch. */
    CHECK(mmcr_model_forward_flops(m) == 1111490560.0);

    /* Initialisation statistics on the largest tensors. */
    const float *p = mmcr_model_params(m);
    t = find_tensor(m, "backbone.layer4.1.conv2.weight");
    if (t >= 0) {
        const mmcr_tensor_info *ti = mmcr_model_tensor(m, t);
        double s = 0, q = 0;
        for (size_t i = 0; i < ti->size; i++) s += p[ti->offset + i], q += (double)p[ti->offset + i] * p[ti->offset + i];
        double mean = s / ti->size, sd = sqrt(q / ti->size - mean * mean);
        CHECK_CLOSE(sd, sqrt(2.0 / (512 * 9)), 0, 0.01); /* kaiming normal, fan_out */
        CHECK(fabs(mean) < 0.05 * sd);
    }
    t = find_tensor(m, "projector.0.weight");
    if (t >= 0) {
        const mmcr_tensor_info *ti = mmcr_model_tensor(m, t);
        double bound = 1.0 / sqrt(512.0), mx = 0, q = 0;
        for (size_t i = 0; i < ti->size; i++) mx = fmax(mx, fabs(p[ti->offset + i])), q += (double)p[ti->offset + i] * p[ti->offset + i];
        CHECK(mx <= bound && mx > 0.99 * bound);
        CHECK_CLOSE(q / ti->size, bound * bound / 3.0, 0, 0.02); /* uniform */
    }
    t = find_tensor(m, "backbone.layer3.0.bn2.weight");
    int ones = 1;
    if (t >= 0)
        for (size_t i = 0; i < mmcr_model_tensor(m, t)->size; i++) ones &= p[mmcr_model_tensor(m, t)->offset + i] == 1.0f;
    CHECK(t >= 0 && ones);
    mmcr_model_destroy(&m);

    /* zero_init_residual zeroes exactly the last BN gamma of each block. */
    c.zero_init_residual = 1;
    c.width = 8;
    CHECK(mmcr_model_create(&m, &c, 2, NULL) == MMCR_OK);
    if (!m) return;
    p = mmcr_model_params(m);
    int ok = 1;
    for (int k = 0; k < mmcr_model_num_tensors(m); k++) {
        const mmcr_tensor_info *ti = mmcr_model_tensor(m, k);
        if (ti->ndim != 1 || !ends_with(ti->name, ".weight")) continue;
        float want = ends_with(ti->name, "bn2.weight") ? 0.0f : 1.0f;
        for (size_t i = 0; i < ti->size; i++) ok &= p[ti->offset + i] == want;
    }
    CHECK(ok);
    mmcr_model_destroy(&m);

    /* proj_hidden = 0: a single linear layer; proj_bias adds its bias. */
    mmcr_model_config_default(&c);
    c.width = 8;
    c.proj_hidden = 0;
    c.proj_out = 16;
    c.proj_bias = 1;
    CHECK(mmcr_model_create(&m, &c, 2, NULL) == MMCR_OK);
    if (!m) return;
    CHECK(find_tensor(m, "projector.0.weight") >= 0 && find_tensor(m, "projector.0.bias") >= 0);
    CHECK(find_tensor(m, "projector.1.weight") < 0 && find_buffer(m, "projector.1.running_mean") < 0);
    CHECK(mmcr_model_forward_flops(m) > 0);
    mmcr_model_destroy(&m);

    /* Bad configurations are reported, not asserted. */
    mmcr_model_config_default(&c);
    c.width = 0;
    err.msg[0] = 0;
    CHECK(mmcr_model_create(&m, &c, 2, &err) == MMCR_ERR_ARG && m == NULL && strstr(err.msg, "width"));
    mmcr_model_config_default(&c);
    CHECK(mmcr_model_create(&m, &c, 0, &err) == MMCR_ERR_ARG && strstr(err.msg, "max_batch"));
    mmcr_model_destroy(&m); /* NULL-safe */
}

/* Deterministic init; eval forward changes no state and treats images independently; train
 * forward updates running stats with statistics over all rows of the batch. */
static void test_semantics(void) {
    mmcr_model_config c;
    tiny_config(&c, 3, 16, 0);
    c.image_size = 9; /* odd sizes through the stride-2 stages: 9, 5, 3, 2 */
    const int n = 6;
    mmcr_model *a = NULL, *b = NULL;
    CHECK(mmcr_model_create(&a, &c, n, NULL) == MMCR_OK);
    CHECK(mmcr_model_create(&b, &c, 2 * n, NULL) == MMCR_OK);
    if (!a || !b) return;
    const size_t np = mmcr_model_num_params(a), nbuf = mmcr_model_num_buffers(a);
    mmcr_model_init(a, 123);
    mmcr_model_init(b, 123);
    CHECK(memcmp(mmcr_model_params(a), mmcr_model_params(b), np * 4) == 0);
    mmcr_model_init(b, 124);
    CHECK(memcmp(mmcr_model_params(a), mmcr_model_params(b), np * 4) != 0);
    mmcr_model_init(b, 123);

    const int fdim = mmcr_model_feature_dim(a), d = mmcr_model_embed_dim(a);
    const size_t per = 3 * 81, nimg = (size_t)n * per;
    float *img = malloc(nimg * 4);
    mmcr_rng g;
    mmcr_rng_seed(&g, 9, 30, 0, 0);
    fill(img, nimg, &g, 1.0);
    for (size_t i = 0; i < nimg; i++) img[i] += 0.5f; /* non-zero channel means */

    /* Same batch through models with different max_batch: identical results. */
    const float *fa, *ea, *fb, *eb;
    CHECK(mmcr_model_forward(a, img, n, 1, 1, &fa, &ea) == MMCR_OK);
    CHECK(mmcr_model_forward(b, img, n, 1, 1, &fb, &eb) == MMCR_OK);
    CHECK(memcmp(ea, eb, (size_t)n * d * 4) == 0 && memcmp(fa, fb, (size_t)n * fdim * 4) == 0);
    CHECK(memcmp(mmcr_model_buffers(a), mmcr_model_buffers(b), nbuf * 4) == 0);

    /* Eval forward: params, buffers and grads unchanged; results independent of the batch. */
    float *p0 = malloc(np * 4), *b0 = malloc(nbuf * 4), *g0 = malloc(np * 4), *e0 = malloc((size_t)n * d * 4);
    float *f0 = malloc((size_t)n * fdim * 4);
    memcpy(p0, mmcr_model_params(a), np * 4);
    memcpy(b0, mmcr_model_buffers(a), nbuf * 4);
    memcpy(g0, mmcr_model_grads(a), np * 4);
    CHECK(mmcr_model_forward(a, img, n, 0, 1, &fa, &ea) == MMCR_OK);
    CHECK(memcmp(p0, mmcr_model_params(a), np * 4) == 0);
    CHECK(memcmp(b0, mmcr_model_buffers(a), nbuf * 4) == 0);
    CHECK(memcmp(g0, mmcr_model_grads(a), np * 4) == 0);
    memcpy(e0, ea, (size_t)n * d * 4);
    memcpy(f0, fa, (size_t)n * fdim * 4);
    CHECK(mmcr_model_forward(a, img, 2, 0, 1, &fa, &ea) == MMCR_OK);
    double e = 0;
    for (size_t i = 0; i < (size_t)2 * d; i++) e = fmax(e, fabs(ea[i] - e0[i]));
    CHECK_MSG(e < 1e-5, "eval embed depends on the batch: %g", e);
    /* project = 0: features only, same features. */
    CHECK(mmcr_model_forward(a, img, n, 0, 0, &fa, &ea) == MMCR_OK);
    CHECK(ea == NULL && memcmp(fa, f0, (size_t)n * fdim * 4) == 0);
    CHECK(memcmp(b0, mmcr_model_buffers(a), nbuf * 4) == 0);
    /* Train forward: outputs depend on the batch companions. */
    CHECK(mmcr_model_forward(a, img, n, 1, 1, &fa, &ea) == MMCR_OK);
    memcpy(e0, ea, (size_t)n * d * 4);
    CHECK(mmcr_model_forward(a, img, 3, 1, 1, &fa, &ea) == MMCR_OK);
    e = 0;
    for (size_t i = 0; i < (size_t)2 * d; i++) e = fmax(e, fabs(ea[i] - e0[i]));
    CHECK(e > 1e-4);

    /* Running stats after ONE train forward from a fresh init: 0.1 * batch mean and
     * 0.9 + 0.1 * unbiased batch variance over ALL n*H*W positions of the batch. */
    mmcr_model_init(a, 123);
    CHECK(mmcr_model_forward(a, img, n, 1, 1, &fa, &ea) == MMCR_OK);
    mmcr_conv2d_desc cd = {3, c.width, 3, 1, 1};
    float *x = malloc(nimg * 4), *y = malloc((size_t)c.width * n * 81 * 4);
    for (int ch = 0; ch < 3; ch++) /* NCHW -> CNHW */
        for (int i = 0; i < n; i++) memcpy(x + ((size_t)ch * n + i) * 81, img + ((size_t)i * 3 + ch) * 81, 81 * 4);
    const float *p = mmcr_model_params(a), *buf = mmcr_model_buffers(a);
    mmcr_conv2d_forward_ref(y, x, p + mmcr_model_tensor(a, find_tensor(a, "backbone.conv1.weight"))->offset, &cd, n,
                            9, 9);
    const float *rm = buf + mmcr_model_buffer_tensor(a, find_buffer(a, "backbone.bn1.running_mean"))->offset;
    const float *rv = buf + mmcr_model_buffer_tensor(a, find_buffer(a, "backbone.bn1.running_var"))->offset;
    const size_t mm = (size_t)n * 81;
    for (int ch = 0; ch < c.width; ch++) {
        double s = 0, q = 0;
        for (size_t i = 0; i < mm; i++) s += y[ch * mm + i];
        double mu = s / mm;
        for (size_t i = 0; i < mm; i++) q += (y[ch * mm + i] - mu) * (y[ch * mm + i] - mu);
        CHECK_CLOSE(rm[ch], 0.1 * mu, 1e-6, 1e-4);
        CHECK_CLOSE(rv[ch], 0.9 + 0.1 * q / (mm - 1), 1e-6, 1e-5);
    }
    /* Projector BN1d: statistics over the n rows of features * W1^T. */
    const float *w1 = p + mmcr_model_tensor(a, find_tensor(a, "projector.0.weight"))->offset;
    const float *prm = buf + mmcr_model_buffer_tensor(a, find_buffer(a, "projector.1.running_mean"))->offset;
    const float *prv = buf + mmcr_model_buffer_tensor(a, find_buffer(a, "projector.1.running_var"))->offset;
    for (int o = 0; o < 16; o++) {
        double z[64], s = 0, q = 0;
        for (int i = 0; i < n; i++) {
            z[i] = 0;
            for (int k = 0; k < fdim; k++) z[i] += (double)fa[(size_t)i * fdim + k] * w1[(size_t)o * fdim + k];
            s += z[i];
        }
        double mu = s / n;
        for (int i = 0; i < n; i++) q += (z[i] - mu) * (z[i] - mu);
        CHECK_CLOSE(prm[o], 0.1 * mu, 1e-6, 1e-4);
        CHECK_CLOSE(prv[o], 0.9 + 0.1 * q / (n - 1), 1e-6, 1e-4);
    }
    /* init resets the buffers. */
    mmcr_model_init(a, 123);
    CHECK(buf[mmcr_model_buffer_tensor(a, find_buffer(a, "backbone.bn1.running_var"))->offset] == 1.0f);
    CHECK(buf[mmcr_model_buffer_tensor(a, find_buffer(a, "backbone.bn1.running_mean"))->offset] == 0.0f);

    /* Argument errors. */
    CHECK(mmcr_model_forward(a, img, n + 1, 0, 1, &fa, &ea) == MMCR_ERR_ARG);
    CHECK(mmcr_model_forward(a, img, 0, 0, 1, &fa, &ea) == MMCR_ERR_ARG);
    CHECK(mmcr_model_forward(a, img, 1, 1, 1, &fa, &ea) == MMCR_ERR_ARG); /* BN1d on one row */
    CHECK(mmcr_model_forward(a, img, 1, 0, 1, &fa, &ea) == MMCR_OK);       /* eval is fine */
    free(x), free(y), free(img), free(p0), free(b0), free(g0), free(e0), free(f0);
    mmcr_model_destroy(&a);
    mmcr_model_destroy(&b);
}

int main(void) {
    mmcr_set_threads(2);
    test_gradcheck(3, 16, 1, 8, 4, 1);  /* the brief's tiny net: stages 8, 4, 2, 1 */
    test_gradcheck(1, 0, 0, 12, 5, 2); /* one channel, no hidden layer; stages 12, 6, 3, 2 */
    test_table();
    test_semantics();
    return test_finish("test_model");
}
