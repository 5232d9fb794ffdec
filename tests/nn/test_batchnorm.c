/* Batch norm (2-D over CNHW planes and 1-D over row-major features): forward against a direct
 * double computation, running statistics (unbiased variance, momentum 0.1), eval mode, fused
 * ReLU/residual variants, and finite-difference gradients with a random output weighting. The
 * blocked-layout version of the oneDNN path against the CNHW one, at 1 and 2 threads. */
#include "mmcr/nn.h"
#include "nn/nn_internal.h"
#include "test_util.h"

#include <string.h>

static void fill(float *a, size_t n, mmcr_rng *r, double mean, double scale) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(mean + scale * mmcr_rng_normal(r));
}

static double weighted(const float *y, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * (double)y[i];
    return s;
}

/* Element (channel c, position i) in either layout. */
static size_t at(int oned, int c, size_t i, int nc, size_t m) {
    return oned ? i * (size_t)nc + (size_t)c : (size_t)c * m + i;
}

static void bn_fwd(int oned, float *y, float *sm, float *si, const float *x, const float *g, const float *b,
                   float *rm, float *rv, const mmcr_bn_desc *d, size_t m, int train) {
    if (oned)
        mmcr_bn1d_forward(y, sm, si, x, g, b, rm, rv, d, (int)m, train);
    else
        mmcr_bn_forward(y, sm, si, x, g, b, rm, rv, d, m, train);
}

static void bn_bwd(int oned, float *dx, float *dg, float *db, const float *dy, const float *x, const float *sm,
                   const float *si, const float *g, const mmcr_bn_desc *d, size_t m) {
    if (oned)
        mmcr_bn1d_backward(dx, dg, db, dy, x, sm, si, g, d, (int)m);
    else
        mmcr_bn_backward(dx, dg, db, dy, x, sm, si, g, d, m);
}

/* Forward, statistics, running stats and eval mode against double arithmetic. */
static void check_forward(int oned, int nc, size_t m, double mean, double scale, uint64_t seed) {
    const size_t nt = (size_t)nc * m;
    mmcr_bn_desc d = {nc, 1e-5f, 0.1f};
    float *x = malloc(nt * sizeof *x), *y = malloc(nt * sizeof *y);
    float g[16], b[16], rm[16], rv[16], rm0[16], rv0[16], sm[16], si[16];
    mmcr_rng r;
    mmcr_rng_seed(&r, seed, 1, 0, 0);
    fill(x, nt, &r, mean, scale);
    fill(g, (size_t)nc, &r, 1.0, 0.5);
    fill(b, (size_t)nc, &r, 0.0, 0.5);
    for (int c = 0; c < nc; c++) {
        rm0[c] = rm[c] = (float)mmcr_rng_normal(&r);
        rv0[c] = rv[c] = (float)(0.5 + mmcr_rng_uniform(&r));
    }
    bn_fwd(oned, y, sm, si, x, g, b, rm, rv, &d, m, 1);
    for (int c = 0; c < nc; c++) {
        double s = 0, q = 0;
        for (size_t i = 0; i < m; i++) s += x[at(oned, c, i, nc, m)];
        double mu = s / (double)m;
        for (size_t i = 0; i < m; i++) {
            double t = x[at(oned, c, i, nc, m)] - mu;
            q += t * t;
        }
        double var = q / (double)m, invstd = 1.0 / sqrt(var + 1e-5);
        CHECK_CLOSE(sm[c], mu, 1e-6 * (fabs(mean) + scale), 0);
        CHECK_CLOSE(si[c], invstd, 0, 1e-5);
        CHECK_CLOSE(rm[c], 0.9 * rm0[c] + 0.1 * mu, 1e-6 * (fabs(mean) + scale), 1e-6);
        CHECK_CLOSE(rv[c], 0.9 * rv0[c] + 0.1 * q / (double)(m - 1), 0, 1e-5); /* unbiased */
        double err = 0;
        for (size_t i = 0; i < m; i++) {
            size_t t = at(oned, c, i, nc, m);
            double ref = (x[t] - mu) * invstd * g[c] + b[c];
            err = fmax(err, fabs(y[t] - ref));
        }
        CHECK_MSG(err < 2e-5 * (1.0 + fabs(g[c]) + fabs(b[c])), "train y err %g (c %d)", err, c);
    }
    /* Eval: running stats in, nothing written. */
    float rm1[16], rv1[16], sm1[16], si1[16];
    memcpy(rm1, rm, sizeof rm1);
    memcpy(rv1, rv, sizeof rv1);
    memcpy(sm1, sm, sizeof sm1);
    memcpy(si1, si, sizeof si1);
    bn_fwd(oned, y, sm, si, x, g, b, rm, rv, &d, m, 0);
    CHECK(memcmp(rm1, rm, sizeof rm1) == 0 && memcmp(rv1, rv, sizeof rv1) == 0);
    CHECK(memcmp(sm1, sm, sizeof sm1) == 0 && memcmp(si1, si, sizeof si1) == 0);
    for (int c = 0; c < nc; c++) {
        double err = 0;
        for (size_t i = 0; i < m; i++) {
            size_t t = at(oned, c, i, nc, m);
            double ref = (x[t] - rm[c]) / sqrt((double)rv[c] + 1e-5) * g[c] + b[c];
            err = fmax(err, fabs(y[t] - ref) / (1.0 + fabs(ref)));
        }
        CHECK_MSG(err < 1e-5, "eval y err %g (c %d)", err, c);
    }
    free(x), free(y);
}

/* Loss L = sum r*y in training mode, for finite differences. */
static double loss_at(int oned, float *y, const float *x, const float *g, const float *b, const float *r,
                      const mmcr_bn_desc *d, size_t m) {
    float sm[16], si[16];
    bn_fwd(oned, y, sm, si, x, g, b, NULL, NULL, d, m, 1);
    return weighted(y, r, (size_t)d->c * m);
}

/* Richardson-extrapolated central difference of L along one coordinate (O(h^4) error). */
static double fd(int oned, float *v, float *y, const float *x, const float *g, const float *b, const float *r,
                 const mmcr_bn_desc *d, size_t m, float h) {
    const float keep = *v;
    double dd[2];
    for (int k = 0; k < 2; k++) {
        float hk = k ? h : h / 2;
        *v = keep + hk;
        double lp = loss_at(oned, y, x, g, b, r, d, m);
        *v = keep - hk;
        double lm = loss_at(oned, y, x, g, b, r, d, m);
        *v = keep;
        dd[k] = (lp - lm) / (2.0 * (double)hk);
    }
    return (4.0 * dd[0] - dd[1]) / 3.0;
}

static void check_grad(int oned, int nc, size_t m, uint64_t seed) {
    const size_t nt = (size_t)nc * m;
    mmcr_bn_desc d = {nc, 1e-5f, 0.1f};
    float *x = malloc(nt * sizeof *x), *y = malloc(nt * sizeof *y), *r = malloc(nt * sizeof *r);
    float *dx = malloc(nt * sizeof *dx);
    float g[16], b[16], sm[16], si[16], dg[16], db[16], dg0[16], db0[16];
    mmcr_rng rng;
    mmcr_rng_seed(&rng, seed, 2, 0, 0);
    fill(x, nt, &rng, 0.3, 1.0);
    fill(r, nt, &rng, 0.0, 1.0);
    fill(g, (size_t)nc, &rng, 1.0, 0.5);
    fill(b, (size_t)nc, &rng, 0.0, 0.5);
    fill(dg0, (size_t)nc, &rng, 0.0, 1.0);
    fill(db0, (size_t)nc, &rng, 0.0, 1.0);
    memcpy(dg, dg0, sizeof dg);
    memcpy(db, db0, sizeof db);
    bn_fwd(oned, y, sm, si, x, g, b, NULL, NULL, &d, m, 1);
    bn_bwd(oned, dx, dg, db, r, x, sm, si, g, &d, m);
    const float h = 1e-2f;
    double gmax = 0;
    for (size_t i = 0; i < nt; i++) gmax = fmax(gmax, fabs(dx[i]));
    for (size_t i = 0; i < nt; i++) {
        double f = fd(oned, &x[i], y, x, g, b, r, &d, m, h);
        CHECK_CLOSE(dx[i], f, 2e-3 * gmax, 2e-3);
    }
    for (int c = 0; c < nc; c++) {
        double f = fd(oned, &g[c], y, x, g, b, r, &d, m, h);
        CHECK_CLOSE((double)dg[c] - dg0[c], f, 1e-3, 1e-3);
        f = fd(oned, &b[c], y, x, g, b, r, &d, m, h);
        CHECK_CLOSE((double)db[c] - db0[c], f, 1e-3, 1e-3);
    }
    /* In place (dx == dy) gives the same dx. */
    float *dy2 = malloc(nt * sizeof *dy2);
    memcpy(dy2, r, nt * sizeof *dy2);
    bn_bwd(oned, dy2, dg, db, dy2, x, sm, si, g, &d, m);
    CHECK(memcmp(dy2, dx, nt * sizeof *dx) == 0);
    free(dy2);
    free(x), free(y), free(r), free(dx);
}

/* Fused epilogues equal the composition of the plain ops. */
static void check_fused(void) {
    const int nc = 3;
    const size_t m = 61, nt = (size_t)nc * m;
    mmcr_bn_desc d = {nc, 1e-5f, 0.1f};
    float x[183], res[183], y1[183], y2[183], dy[183], dx1[183], dx2[183], t[183];
    float g[3] = {1.2f, -0.7f, 0.4f}, b[3] = {0.1f, 0.3f, -0.2f}, sm[3], si[3];
    float rm1[3] = {0}, rv1[3] = {1, 1, 1}, rm2[3] = {0}, rv2[3] = {1, 1, 1};
    float dg1[3] = {0}, db1[3] = {0}, dg2[3] = {0}, db2[3] = {0};
    mmcr_rng rng;
    mmcr_rng_seed(&rng, 5, 3, 0, 0);
    fill(x, nt, &rng, 0.0, 1.0);
    fill(res, nt, &rng, 0.0, 1.0);
    fill(dy, nt, &rng, 0.0, 1.0);
    /* y = relu(bn(x) + res), residual aliasing the output */
    mmcr_bn_forward(y1, sm, si, x, g, b, rm1, rv1, &d, m, 1);
    for (size_t i = 0; i < nt; i++) y1[i] += res[i];
    mmcr_relu_forward(y1, y1, nt);
    memcpy(y2, res, sizeof y2);
    mmcr_bn_forward_fused(y2, sm, si, x, g, b, rm2, rv2, &d, m, 1, y2, 1);
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    CHECK(memcmp(rm1, rm2, sizeof rm1) == 0 && memcmp(rv1, rv2, sizeof rv1) == 0);
    /* BN backward with the ReLU mask fused = relu_backward then bn_backward */
    mmcr_bn_forward_fused(y2, sm, si, x, g, b, NULL, NULL, &d, m, 1, NULL, 1);
    mmcr_relu_backward(t, dy, y2, nt);
    mmcr_bn_backward(dx1, dg1, db1, t, x, sm, si, g, &d, m);
    mmcr_bn_backward_fused(dx2, dg2, db2, dy, x, sm, si, g, &d, m, y2);
    CHECK(memcmp(dx1, dx2, sizeof dx1) == 0);
    CHECK(memcmp(dg1, dg2, sizeof dg1) == 0 && memcmp(db1, db2, sizeof db1) == 0);
    /* 1-D: (N = 61 rows, C = 3) */
    float z1[183], z2[183];
    mmcr_bn1d_forward(z1, sm, si, x, g, b, NULL, NULL, &d, (int)m, 1);
    mmcr_relu_forward(z1, z1, nt);
    mmcr_bn1d_forward_fused(z2, sm, si, x, g, b, NULL, NULL, &d, (int)m, 1, 1);
    CHECK(memcmp(z1, z2, sizeof z1) == 0);
    mmcr_relu_backward(t, dy, z2, nt);
    memset(dg1, 0, sizeof dg1), memset(db1, 0, sizeof db1), memset(dg2, 0, sizeof dg2), memset(db2, 0, sizeof db2);
    mmcr_bn1d_backward(dx1, dg1, db1, t, x, sm, si, g, &d, (int)m);
    mmcr_bn1d_backward_fused(dx2, dg2, db2, dy, x, sm, si, g, &d, (int)m, z2);
    CHECK(memcmp(dx1, dx2, sizeof dx1) == 0);
    /* A NaN input reaches the output (it must not be hidden by the ReLU). */
    x[5] = NAN;
    mmcr_bn_forward_fused(y2, sm, si, x, g, b, NULL, NULL, &d, m, 1, NULL, 1);
    CHECK(isnan(y2[0]) && isnan(y2[m - 1]));
}

static double max_rel(const float *a, const float *b, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > e || d != d) e = d;
        m = fmax(m, fabs((double)b[i]));
    }
    return e / (m + 1e-30);
}

/* Blocked (N, C/B, HW, B) BN, B = 16 and 8, = CNHW BN on the same data, in training (residual aliasing the
 * output, ReLU, running stats) and eval, forward and backward (ReLU mask, dx aliasing dy); the
 * blocked results are bit-identical at 1 and 2 threads. */
static void check_blocked(int nc, int n, size_t hw, int B, double mean, uint64_t seed) {
    const size_t m = (size_t)n * hw, nt = (size_t)nc * m;
    mmcr_bn_desc d = {nc, 1e-5f, 0.1f};
    float *x = malloc(nt * 4), *res = malloc(nt * 4), *dy = malloc(nt * 4), *xb = malloc(nt * 4);
    float *resb = malloc(nt * 4), *dyb = malloc(nt * 4), *yr = malloc(nt * 4), *yb = malloc(nt * 4);
    float *t = malloc(nt * 4), *dxr = malloc(nt * 4), *dxb = malloc(nt * 4), *y1 = malloc(nt * 4);
    float *g = malloc((size_t)nc * 4), *b = malloc((size_t)nc * 4), *st = malloc((size_t)nc * 4 * 12);
    float *smr = st, *sir = st + nc, *smb = st + 2 * nc, *sib = st + 3 * nc, *rmr = st + 4 * nc, *rvr = st + 5 * nc;
    float *rmb = st + 6 * nc, *rvb = st + 7 * nc, *dgr = st + 8 * nc, *dbr = st + 9 * nc, *dgb = st + 10 * nc;
    float *dbb = st + 11 * nc;
    double *part = malloc(NN_BN_PART_DOUBLES(nc) * sizeof *part);
    mmcr_rng r;
    mmcr_rng_seed(&r, seed, 2, 0, 0);
    fill(x, nt, &r, mean, 1.0);
    fill(res, nt, &r, 0.0, 1.0);
    fill(dy, nt, &r, 0.0, 1.0);
    fill(g, (size_t)nc, &r, 1.0, 0.5);
    fill(b, (size_t)nc, &r, 0.0, 0.5);
    for (int c = 0; c < nc; c++) rmr[c] = rmb[c] = (float)mmcr_rng_normal(&r), rvr[c] = rvb[c] = 1.5f;
    memset(dgr, 0, (size_t)nc * 16); /* dgr dbr dgb dbb */
    nn_cnhw_to_blocked(xb, x, nc, n, hw, B);
    nn_cnhw_to_blocked(resb, res, nc, n, hw, B);
    nn_cnhw_to_blocked(dyb, dy, nc, n, hw, B);
    for (int threads = 2; threads >= 1; threads--) {
        mmcr_set_threads(threads);
        memcpy(yr, res, nt * 4);
        mmcr_bn_forward_fused(yr, smr, sir, x, g, b, threads == 2 ? rmr : NULL, threads == 2 ? rvr : NULL, &d, m, 1,
                              yr, 1);
        memcpy(yb, resb, nt * 4);
        mmcr_bn_forward_blocked(yb, smb, sib, xb, g, b, threads == 2 ? rmb : NULL, threads == 2 ? rvb : NULL, &d, n,
                                hw, B, 1, yb, 1, part);
        nn_blocked_to_cnhw(t, yb, nc, n, hw, B);
        double e = max_rel(t, yr, nt);
        CHECK_MSG(e < 2e-6, "blocked BN forward (C %d, n %d, hw %zu, B %d) rel err %g", nc, n, hw, B, e);
        CHECK(max_rel(smb, smr, (size_t)nc) < 1e-6 && max_rel(sib, sir, (size_t)nc) < 1e-6);
        CHECK(max_rel(rmb, rmr, (size_t)nc) < 1e-6 && max_rel(rvb, rvr, (size_t)nc) < 1e-6);
        if (threads == 2)
            memcpy(y1, yb, nt * 4);
        else
            CHECK(memcmp(y1, yb, nt * 4) == 0); /* thread-count independent */
        /* Backward of relu(bn(x)) (no residual), dx aliasing dy. */
        mmcr_bn_forward_fused(yr, smr, sir, x, g, b, NULL, NULL, &d, m, 1, NULL, 1);
        mmcr_bn_forward_blocked(yb, smb, sib, xb, g, b, NULL, NULL, &d, n, hw, B, 1, NULL, 1, part);
        memcpy(dxr, dy, nt * 4);
        memcpy(dxb, dyb, nt * 4);
        mmcr_bn_backward_fused(dxr, dgr, dbr, dxr, x, smr, sir, g, &d, m, yr);
        mmcr_bn_backward_blocked(dxb, dgb, dbb, dxb, xb, smb, sib, g, &d, n, hw, B, yb, part);
        nn_blocked_to_cnhw(t, dxb, nc, n, hw, B);
        e = max_rel(t, dxr, nt);
        CHECK_MSG(e < 1e-5, "blocked BN backward (C %d, n %d, hw %zu, B %d) rel err %g", nc, n, hw, B, e);
        CHECK(max_rel(dgb, dgr, (size_t)nc) < 1e-5 && max_rel(dbb, dbr, (size_t)nc) < 1e-5);
    }
    /* Eval mode: the running statistics, nothing written to them. */
    mmcr_bn_forward_fused(yr, smr, sir, x, g, b, rmr, rvr, &d, m, 0, NULL, 0);
    mmcr_bn_forward_blocked(yb, smb, sib, xb, g, b, rmb, rvb, &d, n, hw, B, 0, NULL, 0, part);
    nn_blocked_to_cnhw(t, yb, nc, n, hw, B);
    CHECK(max_rel(t, yr, nt) < 2e-6);
    /* A NaN passes the ReLU. */
    xb[3] = NAN;
    mmcr_bn_forward_blocked(yb, smb, sib, xb, g, b, NULL, NULL, &d, n, hw, B, 1, NULL, 1, part);
    CHECK(isnan(yb[3]));
    free(x), free(res), free(dy), free(xb), free(resb), free(dyb), free(yr), free(yb), free(t), free(dxr);
    free(dxb), free(y1), free(g), free(b), free(st), free(part);
}

int main(void) {
    for (int B = 16; B >= 8; B /= 2) {
        check_blocked(16, 3, 25, B, 0.0, 11);  /* fewer images than sum chunks */
        check_blocked(32, 19, 9, B, 5.0, 12);  /* uneven chunks, a mean far from zero */
        check_blocked(64, 8, 1, B, -1.0, 13);  /* 1x1 spatial */
        check_blocked(32, 21, 64, B, 0.5, 14); /* large enough for the parallel loops */
    }
    check_blocked(8, 5, 7, 8, 2.0, 15); /* one block of 8 */
    /* m not a multiple of 8 exercises the scalar tail of the 8-lane sums. */
    check_forward(0, 5, 1003, 0.0, 1.0, 1);
    check_forward(0, 3, 4096, 1000.0, 0.01, 2); /* large mean, small spread: no cancellation */
    check_forward(0, 2, 2, 0.0, 1.0, 3);
    check_forward(1, 7, 37, 0.5, 2.0, 4);
    check_forward(1, 16, 256, -3.0, 0.1, 5);
    check_grad(0, 3, 13, 6);
    check_grad(0, 2, 40, 7);
    check_grad(1, 4, 9, 8);
    check_grad(1, 5, 3, 9);
    check_fused();
    return test_finish("test_batchnorm");
}
