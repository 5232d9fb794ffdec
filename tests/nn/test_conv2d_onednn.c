/* oneDNN convolutions (the model's default kernels) against the direct reference: forward,
 * backward data and weights, the accumulate semantics of both gradients, dx == NULL, batch sizes
 * that change between calls (more of them than the per-layer cache holds), and one and two
 * threads, with CNHW and with blocked (N, C/B, H, W, B) activations, B = 16 and 8, on either
 * side. Also the model-level switch: the same model with GEMM and with oneDNN kernels gives the
 * same embeddings and gradients, in the blocked layout the machine's kernels want or in CNHW. */
#include "mmcr/nn.h"
#include "nn/model_internal.h"
#include "nn/nn_internal.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct conv_case {
    int cin, cout, k, stride, pad, h, w;
} conv_case;

static const conv_case cases[] = {
    {3, 5, 3, 1, 1, 7, 6},    {5, 4, 3, 2, 1, 9, 8},   {7, 3, 1, 1, 0, 5, 5},  {6, 9, 1, 2, 0, 7, 7},
    {2, 3, 7, 1, 3, 10, 9},   {3, 4, 7, 2, 3, 11, 11}, {9, 11, 3, 1, 0, 6, 5}, {1, 8, 3, 1, 1, 6, 6},
    {4, 4, 3, 2, 0, 8, 8},    {3, 2, 3, 2, 1, 1, 1},   {13, 6, 3, 2, 1, 4, 4}, {2, 2, 3, 1, 1, 1, 1},
    /* The demo network's shapes: blocked-layout kernels with 16..64 channels. */
    {1, 16, 3, 1, 1, 20, 20}, {16, 16, 3, 1, 1, 20, 20}, {16, 32, 3, 2, 1, 20, 20}, {16, 32, 1, 2, 0, 20, 20},
    {32, 64, 3, 2, 1, 10, 10}, {64, 64, 3, 1, 1, 5, 5},
};

static void fill(float *a, size_t n, mmcr_rng *r, double scale) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(scale * mmcr_rng_normal(r));
}

static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > e || d != d) e = d;
        if (fabs((double)b[i]) > m) m = fabs((double)b[i]);
    }
    return e / (m + 1e-30);
}

/* The caller's layout of a CNHW tensor: blocked with block blk, or as is (blk 0). */
static void to_user(float *dst, const float *src, int c, int n, size_t hw, int blk) {
    if (blk)
        nn_cnhw_to_blocked(dst, src, c, n, hw, blk);
    else
        memcpy(dst, src, (size_t)c * (size_t)n * hw * 4);
}

static void from_user(float *dst, const float *src, int c, int n, size_t hw, int blk) {
    if (blk)
        nn_blocked_to_cnhw(dst, src, c, n, hw, blk);
    else
        memcpy(dst, src, (size_t)c * (size_t)n * hw * 4);
}

static void run_case(nn_dnnl *ctx, const conv_case *cc, int ci, int sb, int db) {
    mmcr_conv2d_desc d = {cc->cin, cc->cout, cc->k, cc->stride, cc->pad};
    const int h = cc->h, w = cc->w;
    const int ho = mmcr_conv_out(h, d.k, d.stride, d.pad), wo = mmcr_conv_out(w, d.k, d.stride, d.pad);
    const size_t hwi = (size_t)h * (size_t)w, hwo = (size_t)ho * (size_t)wo;
    nn_dnnl_conv *cv = nn_dnnl_conv_create(ctx, &d, h, w, sb, db);
    CHECK(cv != NULL);
    /* Batch sizes in an order that revisits, evicts (6 distinct > 4 cached) and rebuilds. */
    static const int ns[] = {3, 1, 3, 5, 2, 7, 4, 3};
    mmcr_rng rng;
    mmcr_rng_seed(&rng, 7, (uint64_t)ci, 0, 0);
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        const int n = ns[t];
        const size_t nx = (size_t)d.cin * n * h * w, ny = (size_t)d.cout * n * ho * wo;
        const size_t nw = (size_t)d.cout * d.cin * d.k * d.k;
        float *x = malloc(nx * 4), *wt = malloc(nw * 4), *dy = malloc(ny * 4), *y = malloc(ny * 4);
        float *yr = malloc(ny * 4), *dx = malloc(nx * 4), *dxr = malloc(nx * 4), *base = malloc(nx * 4);
        float *dw = malloc(nw * 4), *dwr = malloc(nw * 4), *dw0 = malloc(nw * 4);
        float *xu = malloc(nx * 4), *dyu = malloc(ny * 4), *yu = malloc(ny * 4), *dxu = malloc(nx * 4);
        fill(x, nx, &rng, 1.0);
        fill(wt, nw, &rng, 0.5);
        fill(dy, ny, &rng, 1.0);
        fill(dw0, nw, &rng, 1.0);
        fill(yu, ny, &rng, 50.0); /* stale output must be overwritten */
        to_user(xu, x, d.cin, n, hwi, sb);
        to_user(dyu, dy, d.cout, n, hwo, db);

        CHECK(nn_dnnl_conv_forward(cv, yu, xu, wt, n) == 0);
        from_user(y, yu, d.cout, n, hwo, db);
        mmcr_conv2d_forward_ref(yr, x, wt, &d, n, h, w);
        double e = rel_err(y, yr, ny);
        CHECK_MSG(e < 1e-5, "case %d (layouts %d,%d) n %d forward rel err %g", ci, sb, db, n, e);

        /* dx overwritten (garbage before), dW added onto dw0. */
        fill(dxu, nx, &rng, 50.0);
        memcpy(dw, dw0, nw * 4);
        memcpy(dwr, dw0, nw * 4);
        CHECK(nn_dnnl_conv_backward(cv, dxu, dw, dyu, xu, wt, n, 0) == 0);
        from_user(dx, dxu, d.cin, n, hwi, sb);
        mmcr_conv2d_backward_ref(dxr, dwr, dy, x, wt, &d, n, h, w);
        e = rel_err(dx, dxr, nx);
        CHECK_MSG(e < 1e-5, "case %d (layouts %d,%d) n %d dx rel err %g", ci, sb, db, n, e);
        e = rel_err(dw, dwr, nw);
        CHECK_MSG(e < 1e-5, "case %d (layouts %d,%d) n %d dW rel err %g", ci, sb, db, n, e);

        /* Accumulating dx: base + dx; dx == NULL leaves only dW, added again. */
        fill(base, nx, &rng, 1.0);
        to_user(dxu, base, d.cin, n, hwi, sb);
        memcpy(dw, dw0, nw * 4);
        CHECK(nn_dnnl_conv_backward(cv, dxu, dw, dyu, xu, wt, n, 1) == 0);
        from_user(dx, dxu, d.cin, n, hwi, sb);
        for (size_t i = 0; i < nx; i++) dx[i] -= base[i];
        e = rel_err(dx, dxr, nx);
        CHECK_MSG(e < 1e-5, "case %d (layouts %d,%d) n %d accumulated dx rel err %g", ci, sb, db, n, e);
        CHECK(nn_dnnl_conv_backward(cv, NULL, dw, dyu, xu, wt, n, 0) == 0);
        for (size_t i = 0; i < nw; i++) dw[i] -= dwr[i] - dw0[i]; /* twice the gradient minus once */
        e = rel_err(dw, dwr, nw);
        CHECK_MSG(e < 1e-5, "case %d (layouts %d,%d) n %d dW accumulated twice rel err %g", ci, sb, db, n, e);
        free(x), free(wt), free(dy), free(y), free(yr), free(dx), free(dxr), free(base);
        free(dw), free(dwr), free(dw0), free(xu), free(dyu), free(yu), free(dxu);
    }
    nn_dnnl_conv_destroy(cv);
}

/* One small ResNet with both kernel sets: same embeddings, gradients and running statistics in
 * training, same embeddings in eval mode at another batch size. Width 16 keeps the oneDNN pass
 * in the blocked layout, width 8 does where the kernels use blocks of 8 (AVX2), width 12 keeps it
 * in CNHW. */
static void test_model_backends(int width, int in_channels) {
    mmcr_model_config c;
    mmcr_model_config_default(&c);
    c.in_channels = in_channels;
    c.image_size = 12;
    c.width = width;
    c.proj_hidden = 32;
    c.proj_out = 8;
    const int n = 6;
    mmcr_model *m = NULL;
    CHECK(mmcr_model_create(&m, &c, n, NULL) == MMCR_OK);
    mmcr_model_init(m, 5);
    CHECK(mmcr_model_get_conv_backend(m) == MMCR_CONV_ONEDNN);
    CHECK(strcmp(mmcr_conv_backend_name(MMCR_CONV_ONEDNN), "onednn") == 0);
    const size_t np = mmcr_model_num_params(m), ne = (size_t)n * 8, nimg = (size_t)n * 144 * (size_t)in_channels;
    const size_t nbuf = mmcr_model_num_buffers(m);
    float *img = malloc(nimg * 4), *dz = malloc(ne * 4), *e1 = malloc(ne * 4), *g1 = malloc(np * 4);
    float *r1 = malloc(nbuf * 4), *v1 = malloc(ne * 4);
    mmcr_rng rng;
    mmcr_rng_seed(&rng, 11, 0, 0, 0);
    fill(img, nimg, &rng, 1.0);
    fill(dz, ne, &rng, 1.0);
    float *b0 = malloc(mmcr_model_num_buffers(m) * 4);
    memcpy(b0, mmcr_model_buffers(m), mmcr_model_num_buffers(m) * 4);
    for (int pass = 0; pass < 2; pass++) {
        CHECK(mmcr_model_set_conv_backend(m, pass ? MMCR_CONV_GEMM : MMCR_CONV_ONEDNN) == MMCR_OK);
        memcpy(mmcr_model_buffers(m), b0, mmcr_model_num_buffers(m) * 4);
        mmcr_model_zero_grad(m);
        const float *emb;
        CHECK(mmcr_model_forward(m, img, n, 1, 1, NULL, &emb) == MMCR_OK);
        const int blk = nn_dnnl_block(m->dnnl);
        CHECK(m->dnnl_now == !pass && m->blocked == (!pass && blk && width % blk == 0));
        mmcr_model_backward(m, dz);
        if (pass == 0) {
            memcpy(e1, emb, ne * 4);
            memcpy(g1, mmcr_model_grads(m), np * 4);
            memcpy(r1, mmcr_model_buffers(m), nbuf * 4);
        } else {
            double e = rel_err(e1, emb, ne);
            CHECK_MSG(e < 1e-4, "width %d: embeddings differ between kernels: %g", width, e);
            e = rel_err(g1, mmcr_model_grads(m), np);
            CHECK_MSG(e < 1e-3, "width %d: gradients differ between kernels: %g", width, e);
            e = rel_err(r1, mmcr_model_buffers(m), nbuf);
            CHECK_MSG(e < 1e-5, "width %d: running statistics differ between kernels: %g", width, e);
        }
        /* Eval mode (running statistics) on 4 of the images: a second batch size. */
        CHECK(mmcr_model_forward(m, img, 4, 0, 1, NULL, &emb) == MMCR_OK);
        if (pass == 0) {
            memcpy(v1, emb, (size_t)4 * 8 * 4);
        } else {
            double e = rel_err(v1, emb, (size_t)4 * 8);
            CHECK_MSG(e < 1e-4, "width %d: eval embeddings differ between kernels: %g", width, e);
        }
    }
    CHECK(mmcr_model_get_conv_backend(m) == MMCR_CONV_GEMM);
    CHECK(mmcr_model_set_conv_backend(m, (mmcr_conv_backend)7) == MMCR_ERR_ARG);
    mmcr_model_destroy(&m);
    free(img), free(dz), free(e1), free(g1), free(b0), free(r1), free(v1);
}

int main(void) {
    if (!nn_dnnl_available()) {
        /* Built without oneDNN: no context, and models use GEMM. */
        CHECK(nn_dnnl_create() == NULL);
        return test_finish("test_conv2d_onednn");
    }
    nn_dnnl *ctx = nn_dnnl_create();
    CHECK(ctx != NULL);
    /* The machine's kernels use blocks of 16 (AVX-512) or 8 (AVX2). */
    const int blk = nn_dnnl_block(ctx);
    CHECK(blk == 16 || blk == 8);
    {
        /* Channel counts that are not multiples of the block cannot be blocked; no other blocks. */
        mmcr_conv2d_desc d = {16, 8, 3, 1, 1};
        CHECK(nn_dnnl_conv_create(ctx, &d, 4, 4, 16, 16) == NULL);
        CHECK(nn_dnnl_conv_create(ctx, &d, 4, 4, 0, 16) == NULL);
        CHECK(nn_dnnl_conv_create(ctx, &d, 4, 4, 4, 0) == NULL);
        nn_dnnl_conv *ok = nn_dnnl_conv_create(ctx, &d, 4, 4, 16, 8);
        CHECK(ok != NULL);
        nn_dnnl_conv_destroy(ok);
    }
    for (int threads = 2; threads >= 1; threads--) {
        mmcr_set_threads(threads);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int sb = 0; sb <= 16; sb += 8)
                for (int db = 0; db <= 16; db += 8) {
                    if ((sb && cases[i].cin % sb) || (db && cases[i].cout % db)) continue;
                    run_case(ctx, &cases[i], (int)i, sb, db);
                }
    }
    nn_dnnl_destroy(ctx);
    mmcr_set_threads(2);
    test_model_backends(16, 1);
    test_model_backends(16, 3);
    test_model_backends(8, 1);
    test_model_backends(12, 3);
    return test_finish("test_conv2d_onednn");
}
