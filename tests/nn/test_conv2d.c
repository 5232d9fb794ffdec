/* Convolution: the im2col/GEMM path against the direct reference on odd shapes (forward and
 * backward, accumulation semantics, chunked batches), and a finite-difference check of the
 * reference. Conv is linear in x and in W, so central differences are exact up to rounding and
 * a large step keeps the rounding noise small. */
#include "mmcr/nn.h"
#include "nn/nn_internal.h"
#include "test_util.h"

#include <string.h>

typedef struct conv_case {
    int cin, cout, k, stride, pad, n, h, w;
} conv_case;

static const conv_case cases[] = {
    {3, 5, 3, 1, 1, 2, 7, 6},   {5, 4, 3, 2, 1, 1, 9, 8},   {7, 3, 1, 1, 0, 3, 5, 5},
    {6, 9, 1, 2, 0, 2, 7, 7},   {2, 3, 7, 1, 3, 2, 10, 9},  {3, 4, 7, 2, 3, 1, 11, 11},
    {9, 11, 3, 1, 0, 2, 6, 5},  {1, 8, 3, 1, 1, 4, 6, 6},   {4, 4, 3, 2, 0, 1, 8, 8},
    {3, 2, 3, 2, 1, 2, 1, 1},   {13, 6, 3, 2, 1, 3, 4, 4},  {5, 3, 3, 1, 1, 1, 5, 4},
    {4, 6, 5, 1, 2, 3, 2, 3},   {2, 2, 3, 1, 1, 2, 1, 1},
    /* > 1 Mi floats of im2col: with one thread the batch is cut into chunks (25 + 5 images). */
    {8, 4, 3, 1, 1, 30, 24, 24},
};

static void fill(float *a, size_t n, mmcr_rng *r, double scale) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(scale * mmcr_rng_normal(r));
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i]) > m) m = fabs((double)a[i]);
    return m;
}

/* max |a - b| / (max |b| + tiny) */
static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > e || d != d) e = d;
    }
    return e / (max_abs(b, n) + 1e-30);
}

static double weighted(const float *y, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * (double)y[i];
    return s;
}

static void run_case(const conv_case *cc, int ci) {
    mmcr_conv2d_desc d = {cc->cin, cc->cout, cc->k, cc->stride, cc->pad};
    const int n = cc->n, h = cc->h, w = cc->w;
    const int ho = mmcr_conv_out(h, d.k, d.stride, d.pad), wo = mmcr_conv_out(w, d.k, d.stride, d.pad);
    const size_t nx = (size_t)d.cin * n * h * w, ny = (size_t)d.cout * n * ho * wo;
    const size_t nw = (size_t)d.cout * d.cin * d.k * d.k;
    const size_t nws = mmcr_conv2d_ws_floats(&d, n, h, w);
    float *x = malloc(nx * sizeof *x), *wt = malloc(nw * sizeof *wt), *dy = malloc(ny * sizeof *dy);
    float *y = malloc(ny * sizeof *y), *yr = malloc(ny * sizeof *yr);
    float *dx = malloc(nx * sizeof *dx), *dxr = malloc(nx * sizeof *dxr), *dx2 = malloc(nx * sizeof *dx2);
    float *dw = malloc(nw * sizeof *dw), *dwr = malloc(nw * sizeof *dwr), *dw0 = malloc(nw * sizeof *dw0);
    float *ws = malloc((nws ? nws : 1) * sizeof *ws);
    mmcr_rng rng;
    mmcr_rng_seed(&rng, 42, (uint64_t)ci, 0, 0);
    fill(x, nx, &rng, 1.0);
    fill(wt, nw, &rng, 0.5);
    fill(dy, ny, &rng, 1.0);
    fill(dw0, nw, &rng, 1.0);
    fill(ws, nws ? nws : 1, &rng, 100.0); /* stale workspace must not leak into results */

    mmcr_conv2d_forward(y, x, wt, &d, n, h, w, ws);
    mmcr_conv2d_forward_ref(yr, x, wt, &d, n, h, w);
    double e = rel_err(y, yr, ny);
    CHECK_MSG(e < 1e-5, "case %d forward rel err %g", ci, e);

    /* Backward: dx overwritten (pre-filled with garbage), dW accumulated onto dw0. */
    fill(dx, nx, &rng, 50.0);
    memcpy(dw, dw0, nw * sizeof *dw);
    memcpy(dwr, dw0, nw * sizeof *dwr);
    mmcr_conv2d_backward(dx, dw, dy, x, wt, &d, n, h, w, ws);
    mmcr_conv2d_backward_ref(dxr, dwr, dy, x, wt, &d, n, h, w);
    e = rel_err(dx, dxr, nx);
    CHECK_MSG(e < 1e-5, "case %d dx rel err %g", ci, e);
    e = rel_err(dw, dwr, nw);
    CHECK_MSG(e < 1e-5, "case %d dW rel err %g", ci, e);
    /* The accumulation really added: dW - dw0 is the gradient, not dw0 itself. */
    for (size_t i = 0; i < nw; i++) dw[i] -= dw0[i];
    CHECK(max_abs(dw, nw) > 1e-3);

    /* dx == NULL: only dW, same values. */
    memcpy(dw, dw0, nw * sizeof *dw);
    mmcr_conv2d_backward(NULL, dw, dy, x, wt, &d, n, h, w, ws);
    e = rel_err(dw, dwr, nw);
    CHECK_MSG(e < 1e-5, "case %d dW (dx NULL) rel err %g", ci, e);

    /* Accumulating variant: dx2 = base + dx. */
    fill(dx2, nx, &rng, 1.0);
    float *base = malloc(nx * sizeof *base);
    memcpy(base, dx2, nx * sizeof *base);
    memcpy(dw, dw0, nw * sizeof *dw);
    mmcr_conv2d_backward_acc(dx2, dw, dy, x, wt, &d, n, h, w, ws, 1);
    for (size_t i = 0; i < nx; i++) dx2[i] -= base[i];
    e = rel_err(dx2, dxr, nx);
    CHECK_MSG(e < 1e-5, "case %d accumulated dx rel err %g", ci, e);
    free(base);

    /* Finite differences of the reference: L = sum r*y with r = dy. */
    const float hstep = 0.5f;
    for (int t = 0; t < 6; t++) {
        size_t j = (size_t)mmcr_rng_below(&rng, nx);
        float keep = x[j];
        x[j] = keep + hstep;
        mmcr_conv2d_forward_ref(yr, x, wt, &d, n, h, w);
        double lp = weighted(yr, dy, ny);
        x[j] = keep - hstep;
        mmcr_conv2d_forward_ref(yr, x, wt, &d, n, h, w);
        double lm = weighted(yr, dy, ny);
        x[j] = keep;
        double fd = (lp - lm) / (2.0 * hstep);
        CHECK_CLOSE(dxr[j], fd, 1e-4 * (1.0 + max_abs(dxr, nx)), 1e-4);
    }
    for (int t = 0; t < 6; t++) {
        size_t j = (size_t)mmcr_rng_below(&rng, nw);
        float keep = wt[j];
        wt[j] = keep + hstep;
        mmcr_conv2d_forward_ref(yr, x, wt, &d, n, h, w);
        double lp = weighted(yr, dy, ny);
        wt[j] = keep - hstep;
        mmcr_conv2d_forward_ref(yr, x, wt, &d, n, h, w);
        double lm = weighted(yr, dy, ny);
        wt[j] = keep;
        double fd = (lp - lm) / (2.0 * hstep);
        double g = (double)dwr[j] - (double)dw0[j];
        CHECK_CLOSE(g, fd, 1e-4 * (1.0 + max_abs(dwr, nw)), 1e-4);
    }
    free(x), free(wt), free(dy), free(y), free(yr), free(dx), free(dxr), free(dx2);
    free(dw), free(dwr), free(dw0), free(ws);
}

int main(void) {
    /* Two threads run whole-batch GEMMs (spinning wait policy); one thread cuts the batch into
     * 4 MiB chunks (the last case into 25 + 5 images), so both paths are checked. */
    mmcr_set_threads(2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], (int)i);
    mmcr_set_threads(1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], (int)i);
    mmcr_set_threads(0);
    /* The workspace covers the largest chunk: the whole batch when it fits in 2^25 floats, a
     * whole number of images below that otherwise. */
    mmcr_conv2d_desc d = {8, 4, 3, 1, 1};
    CHECK(mmcr_conv2d_ws_floats(&d, 30, 24, 24) == (size_t)72 * 30 * 576);
    mmcr_conv2d_desc big = {64, 64, 3, 1, 1};
    const size_t per = (size_t)576 * 1024, ws = mmcr_conv2d_ws_floats(&big, 256, 32, 32);
    CHECK(ws <= ((size_t)1 << 25) && ws >= per && ws % per == 0);
    mmcr_conv2d_desc p = {8, 4, 1, 1, 0};
    CHECK(mmcr_conv2d_ws_floats(&p, 30, 24, 24) == 0);
    return test_finish("test_conv2d");
}
