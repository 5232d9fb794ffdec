/* Linear, ReLU and global average pooling: forward against direct double computation,
 * finite-difference gradients with a random output weighting (all three are linear or
 * piecewise linear, so central differences are exact away from kinks), shapes and the
 * write/accumulate conventions; pooling over the blocked layout of the oneDNN path against the
 * CNHW one. */
#include "mmcr/nn.h"
#include "nn/nn_internal.h"
#include "test_util.h"

#include <string.h>

static void fill(float *a, size_t n, mmcr_rng *r, double scale) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(scale * mmcr_rng_normal(r));
}

static double weighted(const float *y, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * (double)y[i];
    return s;
}

static void test_linear(int n, int in, int out, int with_bias, uint64_t seed) {
    const size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
    float *x = malloc(nx * 4), *wt = malloc(nw * 4), *b = malloc((size_t)out * 4), *y = malloc(ny * 4);
    float *r = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc((size_t)out * 4);
    float *dw0 = malloc(nw * 4), *db0 = malloc((size_t)out * 4);
    mmcr_rng g;
    mmcr_rng_seed(&g, seed, 10, 0, 0);
    fill(x, nx, &g, 1.0);
    fill(wt, nw, &g, 0.3);
    fill(b, (size_t)out, &g, 1.0);
    fill(r, ny, &g, 1.0);
    fill(dw0, nw, &g, 1.0);
    fill(db0, (size_t)out, &g, 1.0);
    const float *bias = with_bias ? b : NULL;
    mmcr_linear_forward(y, x, wt, bias, n, in, out);
    double err = 0;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = with_bias ? b[o] : 0.0;
            for (int k = 0; k < in; k++) s += (double)x[(size_t)i * in + k] * wt[(size_t)o * in + k];
            err = fmax(err, fabs(s - y[(size_t)i * out + o]) / (1.0 + fabs(s)));
        }
    CHECK_MSG(err < 1e-5, "linear forward err %g (n %d in %d out %d)", err, n, in, out);

    memcpy(dw, dw0, nw * 4);
    memcpy(db, db0, (size_t)out * 4);
    fill(dx, nx, &g, 100.0); /* overwritten */
    mmcr_linear_backward(dx, dw, with_bias ? db : NULL, r, x, wt, n, in, out);
    const float h = 0.25f;
    for (int t = 0; t < 8; t++) {
        size_t j = (size_t)mmcr_rng_below(&g, nx);
        float keep = x[j];
        x[j] = keep + h;
        mmcr_linear_forward(y, x, wt, bias, n, in, out);
        double lp = weighted(y, r, ny);
        x[j] = keep - h;
        mmcr_linear_forward(y, x, wt, bias, n, in, out);
        double lm = weighted(y, r, ny);
        x[j] = keep;
        CHECK_CLOSE(dx[j], (lp - lm) / (2 * h), 1e-4, 1e-4);
        j = (size_t)mmcr_rng_below(&g, nw);
        keep = wt[j];
        wt[j] = keep + h;
        mmcr_linear_forward(y, x, wt, bias, n, in, out);
        lp = weighted(y, r, ny);
        wt[j] = keep - h;
        mmcr_linear_forward(y, x, wt, bias, n, in, out);
        lm = weighted(y, r, ny);
        wt[j] = keep;
        CHECK_CLOSE((double)dw[j] - dw0[j], (lp - lm) / (2 * h), 1e-4, 1e-4);
    }
    if (with_bias) {
        for (int o = 0; o < out; o++) {
            float keep = b[o];
            b[o] = keep + h;
            mmcr_linear_forward(y, x, wt, bias, n, in, out);
            double lp = weighted(y, r, ny);
            b[o] = keep - h;
            mmcr_linear_forward(y, x, wt, bias, n, in, out);
            double lm = weighted(y, r, ny);
            b[o] = keep;
            CHECK_CLOSE((double)db[o] - db0[o], (lp - lm) / (2 * h), 1e-4, 1e-4);
        }
    }
    /* dx NULL: only parameter gradients, identical. */
    float *dw2 = malloc(nw * 4);
    memcpy(dw2, dw0, nw * 4);
    mmcr_linear_backward(NULL, dw2, NULL, r, x, wt, n, in, out);
    CHECK(memcmp(dw2, dw, nw * 4) == 0);
    free(dw2);
    free(x), free(wt), free(b), free(y), free(r), free(dx), free(dw), free(db), free(dw0), free(db0);
}

static void test_relu(void) {
    float x[7] = {-2.0f, -0.0f, 0.0f, 1e-30f, 3.5f, NAN, -INFINITY}, y[7], dy[7], dx[7];
    mmcr_relu_forward(y, x, 7);
    CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 0.0f && y[3] == 1e-30f && y[4] == 3.5f && y[6] == 0.0f);
    CHECK(isnan(y[5])); /* NaN is not hidden */
    for (int i = 0; i < 7; i++) dy[i] = (float)(i + 1);
    mmcr_relu_backward(dx, dy, y, 7);
    CHECK(dx[0] == 0.0f && dx[1] == 0.0f && dx[2] == 0.0f && dx[3] == 4.0f && dx[4] == 5.0f && dx[6] == 0.0f);
    /* In place, and the large (parallel) path. */
    const size_t n = 200003;
    float *a = malloc(n * 4), *b = malloc(n * 4), *g = malloc(n * 4);
    mmcr_rng r;
    mmcr_rng_seed(&r, 3, 11, 0, 0);
    fill(a, n, &r, 1.0);
    fill(g, n, &r, 1.0);
    mmcr_relu_forward(b, a, n);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= b[i] == (a[i] > 0 ? a[i] : 0.0f);
    CHECK(ok);
    mmcr_relu_backward(g, g, b, n); /* dx == dy */
    ok = 1;
    for (size_t i = 0; i < n; i++) ok &= (b[i] > 0) ? 1 : g[i] == 0.0f;
    CHECK(ok);
    /* FD through relu at non-kink points with a random weighting. */
    float xs[5] = {-1.3f, 0.7f, 2.2f, -0.4f, 0.9f}, ys[5], rs[5] = {0.3f, -1.1f, 0.8f, 2.0f, -0.6f}, ds[5];
    mmcr_relu_forward(ys, xs, 5);
    mmcr_relu_backward(ds, rs, ys, 5);
    for (int i = 0; i < 5; i++) {
        float keep = xs[i];
        xs[i] = keep + 0.1f;
        mmcr_relu_forward(ys, xs, 5);
        double lp = weighted(ys, rs, 5);
        xs[i] = keep - 0.1f;
        mmcr_relu_forward(ys, xs, 5);
        double lm = weighted(ys, rs, 5);
        xs[i] = keep;
        CHECK_CLOSE(ds[i], (lp - lm) / 0.2, 1e-6, 1e-5);
    }
    free(a), free(b), free(g);
}

static void test_gap(int c, int n, int hw, uint64_t seed) {
    const size_t nx = (size_t)c * n * hw, ny = (size_t)n * c;
    float *x = malloc(nx * 4), *y = malloc(ny * 4), *r = malloc(ny * 4), *dx = malloc(nx * 4);
    mmcr_rng g;
    mmcr_rng_seed(&g, seed, 12, 0, 0);
    fill(x, nx, &g, 1.0);
    fill(r, ny, &g, 1.0);
    mmcr_gap_forward(y, x, c, n, hw);
    /* y is (N, C) row-major; x is (C, N, HW) */
    double err = 0;
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int t = 0; t < hw; t++) s += x[((size_t)ch * n + i) * hw + t];
            err = fmax(err, fabs(s / hw - y[(size_t)i * c + ch]));
        }
    CHECK_MSG(err < 1e-6, "gap forward err %g", err);
    fill(dx, nx, &g, 100.0);
    mmcr_gap_backward(dx, r, c, n, hw);
    for (int t = 0; t < 10; t++) {
        size_t j = (size_t)mmcr_rng_below(&g, nx);
        float keep = x[j];
        x[j] = keep + 0.5f;
        mmcr_gap_forward(y, x, c, n, hw);
        double lp = weighted(y, r, ny);
        x[j] = keep - 0.5f;
        mmcr_gap_forward(y, x, c, n, hw);
        double lm = weighted(y, r, ny);
        x[j] = keep;
        CHECK_CLOSE(dx[j], (lp - lm) / 1.0, 1e-6, 1e-5);
    }
    free(x), free(y), free(r), free(dx);
}

/* Blocked pooling = CNHW pooling of the same tensor; its backward = CNHW backward, blocked. */
static void test_gap_blocked(int c, int n, int hw, int B, uint64_t seed) {
    const size_t nt = (size_t)c * (size_t)n * (size_t)hw, nf = (size_t)c * (size_t)n;
    float *x = malloc(nt * 4), *xb = malloc(nt * 4), *y = malloc(nf * 4), *yb = malloc(nf * 4), *dy = malloc(nf * 4);
    float *dx = malloc(nt * 4), *dxb = malloc(nt * 4), *t = malloc(nt * 4);
    mmcr_rng r;
    mmcr_rng_seed(&r, seed, 3, 0, 0);
    fill(x, nt, &r, 1.0);
    fill(dy, nf, &r, 1.0);
    nn_cnhw_to_blocked(xb, x, c, n, (size_t)hw, B);
    nn_blocked_to_cnhw(t, xb, c, n, (size_t)hw, B);
    CHECK(memcmp(t, x, nt * 4) == 0); /* the conversions are inverses */
    mmcr_gap_forward(y, x, c, n, hw);
    mmcr_gap_forward_blocked(yb, xb, c, n, hw, B);
    CHECK(memcmp(y, yb, nf * 4) == 0); /* same sums in the same order */
    mmcr_gap_backward(dx, dy, c, n, hw);
    fill(dxb, nt, &r, 9.0); /* overwritten */
    mmcr_gap_backward_blocked(dxb, dy, c, n, hw, B);
    nn_blocked_to_cnhw(t, dxb, c, n, (size_t)hw, B);
    CHECK(memcmp(t, dx, nt * 4) == 0);
    free(x), free(xb), free(y), free(yb), free(dy), free(dx), free(dxb), free(t);
}

int main(void) {
    test_gap_blocked(16, 3, 9, 16, 8);
    test_gap_blocked(48, 64, 16, 16, 9);
    test_gap_blocked(24, 5, 9, 8, 10);
    test_gap_blocked(48, 64, 16, 8, 11);
    test_linear(5, 7, 3, 1, 1);
    test_linear(1, 16, 9, 0, 2);
    test_linear(33, 65, 17, 1, 3);
    test_linear(256, 128, 64, 0, 4);
    test_relu();
    test_gap(3, 2, 5, 5);
    test_gap(1, 1, 1, 6);
    test_gap(16, 64, 49, 7);
    return test_finish("test_linear_relu_pool");
}
