/* MMCR loss: parity with the float64 reference fixtures, finite-difference gradients, and the
 * pitfalls.md tests (layout, normalisation axis, local term as a mean, lambda = 0 skipping,
 * double precision for float32 input, zero rows, non-finite rows, tiny shapes, workspace). */
#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/io.h"
#include "mmcr/linalg.h"
#include "mmcr/loss.h"
#include "test_util.h"

/* ---- helpers ---- */

static void fill_normal(mmcr_rng *r, double *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = mmcr_rng_normal(r);
}

static double max_abs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static int all_finite(const double *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* Loss (and gradient into g when non-NULL) of y in double; aborts the test on failure. */
static double eval(int P, int K, int D, double lambda, const double *y, double *g, mmcr_loss_result *out) {
    mmcr_loss *l = NULL;
    mmcr_err err;
    MMCR_ASSERT(mmcr_loss_create(&l, P, K, D, lambda, &err) == MMCR_OK);
    mmcr_loss_set_compute_grad(l, g != NULL);
    mmcr_loss_result res;
    mmcr_status st = mmcr_loss_forward_f64(l, y, &res, &err);
    CHECK_MSG(st == MMCR_OK, "forward: %s", err.msg);
    if (g && st == MMCR_OK) mmcr_loss_backward_f64(l, g);
    if (out) *out = res;
    mmcr_loss_destroy(&l);
    return res.loss;
}

/* Tiny JSON lookup: the number after "key": in a flat object. */
static int json_number(const char *js, const char *key, double *v) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(js, pat);
    if (!p) return 0;
    p = strchr(p + strlen(pat), ':');
    if (!p) return 0;
    char *end;
    *v = strtod(p + 1, &end);
    return end != p + 1;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* ---- fixtures ---- */

static void check_fixture(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/case.json", dir, name);
    char *js = slurp(path);
    CHECK_MSG(js != NULL, "cannot read %s", path);
    if (!js) return;
    double P, K, D, lambda, glob, local, loss, bound, ppe;
    int ok = json_number(js, "P", &P) && json_number(js, "K", &K) && json_number(js, "D", &D) &&
             json_number(js, "lambda", &lambda) && json_number(js, "global_nuclear_norm", &glob) &&
             json_number(js, "local_term", &local) && json_number(js, "loss", &loss) && json_number(js, "bound", &bound) &&
             json_number(js, "ppe", &ppe);
    free(js);
    CHECK_MSG(ok, "%s: missing keys", path);
    if (!ok) return;
    mmcr_npy y = {0}, gref = {0};
    mmcr_err err;
    snprintf(path, sizeof path, "%s/%s/y.npy", dir, name);
    CHECK_MSG(mmcr_npy_read(&y, path, &err) == MMCR_OK, "%s", err.msg);
    snprintf(path, sizeof path, "%s/%s/grad.npy", dir, name);
    CHECK_MSG(mmcr_npy_read(&gref, path, &err) == MMCR_OK, "%s", err.msg);
    int p = (int)P, k = (int)K, d = (int)D;
    size_t n = (size_t)p * k * d;
    CHECK(y.dtype == MMCR_F64 && y.ndim == 2 && y.shape[0] == p * k && y.shape[1] == d);
    CHECK(gref.dtype == MMCR_F64 && gref.ndim == 2 && gref.shape[0] == p * k && gref.shape[1] == d);
    if (y.data && gref.data && y.shape[0] == p * k && gref.shape[0] == p * k) {
        double *g = malloc(n * sizeof *g);
        mmcr_loss_result res;
        eval(p, k, d, lambda, y.data, g, &res);
        CHECK_MSG(fabs(res.global_nuclear_norm - glob) <= 1e-9 * fabs(glob), "%s global %.17g vs %.17g", name, res.global_nuclear_norm, glob);
        CHECK_MSG(fabs(res.local_term - local) <= 1e-9 * fabs(local), "%s local %.17g vs %.17g", name, res.local_term, local);
        CHECK_MSG(fabs(res.loss - loss) <= 1e-9 * fabs(loss), "%s loss %.17g vs %.17g", name, res.loss, loss);
        CHECK_MSG(fabs(res.bound - bound) <= 1e-12 * bound, "%s bound", name);
        CHECK_MSG(fabs(res.ppe - ppe) <= 1e-9 * fmax(fabs(ppe), 1e-6), "%s ppe %.17g vs %.17g", name, res.ppe, ppe);
        CHECK(all_finite(g, n));
        const double *gr = gref.data;
        int rmin = p < d ? p : d;
        if (res.global_rank == rmin) {
            /* unique gradient: elementwise parity */
            double worst = 0;
            for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] - gr[i]) / (1e-9 * fabs(gr[i]) + 1e-12));
            CHECK_MSG(worst <= 1.0, "%s gradient mismatch (worst ratio to tolerance %g)", name, worst);
        } else {
            /* rank-deficient centroids (collapse): the reference holds one arbitrary subgradient
             * from its SVD's choice of null-space vectors; ours is the minimum-norm one, so it
             * can only be smaller (here: all views of a datum coincide, and it is zero). */
            double n_ours = 0, n_ref = 0;
            for (size_t i = 0; i < n; i++) {
                n_ours += g[i] * g[i];
                n_ref += gr[i] * gr[i];
            }
            CHECK_MSG(n_ours <= n_ref, "%s: minimum-norm gradient larger than the reference's", name);
            CHECK_MSG(max_abs(g, n) < 1e-12, "%s: collapsed gradient %g", name, max_abs(g, n));
        }
        free(g);
    }
    mmcr_npy_free(&y);
    mmcr_npy_free(&gref);
}

static void test_fixtures(void) {
    const char *root = getenv("MMCR_FIXTURES");
    CHECK_MSG(root != NULL, "MMCR_FIXTURES is not set");
    if (!root) return;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/mmcr-loss", root);
    DIR *dp = opendir(dir);
    CHECK_MSG(dp != NULL, "cannot open %s", dir);
    if (!dp) return;
    int count = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.') continue;
        check_fixture(dir, de->d_name);
        count++;
    }
    closedir(dp);
    CHECK_MSG(count >= 5, "only %d fixture cases found", count);
}

/* ---- finite differences ---- */

/* Directional derivatives along random directions and per-coordinate central differences, in
 * double, against <grad, direction>. The loss is a scalar, so the random weighting of the
 * output is the direction itself. */
static void fd_check(int P, int K, int D, double lambda, uint64_t seed) {
    size_t n = (size_t)P * K * D;
    double *y = malloc(n * 8), *g = malloc(n * 8), *yp = malloc(n * 8), *e = malloc(n * 8);
    mmcr_rng r;
    mmcr_rng_seed(&r, seed, (uint64_t)P, (uint64_t)K, (uint64_t)D);
    fill_normal(&r, y, n);
    eval(P, K, D, lambda, y, g, NULL);
    const double h = 1e-6;
    double worst = 0;
    for (int dir = 0; dir < 6; dir++) {
        fill_normal(&r, e, n);
        double an = 0;
        for (size_t i = 0; i < n; i++) {
            yp[i] = y[i] + h * e[i];
            an += g[i] * e[i];
        }
        double lp = eval(P, K, D, lambda, yp, NULL, NULL);
        for (size_t i = 0; i < n; i++) yp[i] = y[i] - h * e[i];
        double lm = eval(P, K, D, lambda, yp, NULL, NULL);
        double fd = (lp - lm) / (2 * h);
        worst = fmax(worst, fabs(fd - an) / (1e-8 + 1e-6 * fabs(an)));
    }
    for (size_t i = 0; i < n; i += (n > 64 ? n / 64 : 1)) {
        memcpy(yp, y, n * 8);
        yp[i] = y[i] + h;
        double lp = eval(P, K, D, lambda, yp, NULL, NULL);
        yp[i] = y[i] - h;
        double lm = eval(P, K, D, lambda, yp, NULL, NULL);
        double fd = (lp - lm) / (2 * h);
        worst = fmax(worst, fabs(fd - g[i]) / (1e-8 + 1e-6 * fabs(g[i])));
    }
    CHECK_MSG(worst <= 1.0, "FD P=%d K=%d D=%d lambda=%g: worst error/tolerance %g", P, K, D, lambda, worst);
    free(y);
    free(g);
    free(yp);
    free(e);
}

static void test_fd(void) {
    const double lambdas[] = {0.0, 0.1};
    for (int li = 0; li < 2; li++) {
        fd_check(5, 3, 4, lambdas[li], 1); /* P > D: D x D Gram */
        fd_check(4, 2, 7, lambdas[li], 2); /* P < D: P x P Gram */
        fd_check(6, 4, 6, lambdas[li], 3); /* P = D */
        fd_check(3, 4, 2, lambdas[li], 4); /* K > D: local term through the D x D Gram */
        fd_check(4, 1, 3, lambdas[li], 5); /* K = 1 */
        fd_check(1, 3, 5, lambdas[li], 6); /* P = 1 */
    }
}

/* ---- pitfalls.md tests ---- */

/* Entry 1: normalisation over the D features (D != K so the wrong axis fails). */
static void test_normalisation_axis(void) {
    enum { P = 4, K = 3, D = 5 };
    double y[P * K * D], g[P * K * D], g2[P * K * D];
    mmcr_rng r;
    mmcr_rng_seed(&r, 10, 0, 0, 0);
    fill_normal(&r, y, P * K * D);
    mmcr_loss_result res;
    double l1 = eval(P, K, D, 0.1, y, g, &res);
    CHECK(res.mean_centroid_norm2 <= 1.0 + 1e-15);
    CHECK(res.global_nuclear_norm <= res.bound);
    CHECK(res.ppe >= 0 && res.ppe <= 1);
    CHECK_CLOSE(res.bound, sqrt(P * 4.0), 0, 1e-15);
    /* scaling one row leaves the loss unchanged and scales that row's gradient by 1/s */
    for (int d = 0; d < D; d++) y[7 * D + d] *= 7.25;
    double l2 = eval(P, K, D, 0.1, y, g2, NULL);
    CHECK_CLOSE(l2, l1, 0, 1e-14);
    for (int d = 0; d < D; d++) CHECK_CLOSE(g2[7 * D + d], g[7 * D + d] / 7.25, 1e-15, 1e-12);
}

/* Entry 2: sample-major layout. */
static void test_layout(void) {
    enum { P = 6, K = 3, D = 8 };
    double y[P * K * D], yp[P * K * D], g[P * K * D], gp[P * K * D];
    mmcr_rng r;
    mmcr_rng_seed(&r, 11, 0, 0, 0);
    fill_normal(&r, y, P * K * D);
    const double lambdas[] = {0.0, 0.2};
    for (int li = 0; li < 2; li++) {
        double lam = lambdas[li];
        double l0 = eval(P, K, D, lam, y, g, NULL);
        /* reverse the views of datum 2: same loss, gradient rows permuted along */
        memcpy(yp, y, sizeof y);
        for (int k = 0; k < K; k++) memcpy(yp + (2 * K + k) * D, y + (2 * K + (K - 1 - k)) * D, D * 8);
        double l1 = eval(P, K, D, lam, yp, gp, NULL);
        CHECK_CLOSE(l1, l0, 0, 1e-14);
        double worst = 0;
        for (int k = 0; k < K; k++)
            for (int d = 0; d < D; d++)
                worst = fmax(worst, fabs(gp[(2 * K + k) * D + d] - g[(2 * K + (K - 1 - k)) * D + d]));
        CHECK(worst < 1e-14);
        /* swap view 0 of datum 0 with view 1 of datum 1: a different objective */
        memcpy(yp, y, sizeof y);
        memcpy(yp + 0 * D, y + (1 * K + 1) * D, D * 8);
        memcpy(yp + (1 * K + 1) * D, y + 0 * D, D * 8);
        double l2 = eval(P, K, D, lam, yp, NULL, NULL);
        CHECK_MSG(fabs(l2 - l0) > 1e-6, "cross-datum swap left the loss at %.17g", l2);
    }
}

/* Entry 3: the local term is a mean over data: batch == batch + copy of itself. */
static void test_local_mean(void) {
    enum { P = 5, K = 4, D = 6 };
    double y[2 * P * K * D];
    mmcr_rng r;
    mmcr_rng_seed(&r, 12, 0, 0, 0);
    fill_normal(&r, y, P * K * D);
    memcpy(y + P * K * D, y, P * K * D * 8);
    mmcr_loss_result a, b;
    eval(P, K, D, 0.1, y, NULL, &a);
    eval(2 * P, K, D, 0.1, y, NULL, &b);
    CHECK(a.local_term > 0);
    CHECK_CLOSE(b.local_term, a.local_term, 0, 1e-14);
    /* sqrt(K) <= ||Z_n||_* <= K for unit views (paper-notes.md §1.3) */
    CHECK(a.local_term >= 2.0 - 1e-12 && a.local_term <= 4.0 + 1e-12);
    CHECK_CLOSE(a.loss, 0.1 * a.local_term - a.global_nuclear_norm, 0, 1e-15);
}

/* Entry 4: lambda = 0 skips the local solves; lambda > 0 does P of them. */
static void test_lambda_switch(void) {
    enum { P = 7, K = 3, D = 5 };
    double y[P * K * D];
    mmcr_rng r;
    mmcr_rng_seed(&r, 13, 0, 0, 0);
    fill_normal(&r, y, P * K * D);
    mmcr_loss_result a, b;
    eval(P, K, D, 0.0, y, NULL, &a);
    CHECK(a.local_eig_solves == 0);
    CHECK(a.local_term == 0.0);
    CHECK(a.loss == -a.global_nuclear_norm); /* bit for bit */
    eval(P, K, D, 0.5, y, NULL, &b);
    CHECK(b.local_eig_solves == P);
    CHECK(b.global_nuclear_norm == a.global_nuclear_norm);
    /* the gradient switch does not change the value */
    mmcr_loss_result c;
    double g[P * K * D];
    eval(P, K, D, 0.5, y, g, &c);
    CHECK(c.loss == b.loss);
}

/* Entry 10: float32 input, decomposition in double: same result as float64 on the same
 * rounded inputs. P = D = 64 random unit rows (smallest singular value near 0). */
static void test_f32_path(void) {
    enum { P = 64, K = 2, D = 64, N = P * K * D };
    static float y32[N], g32[N];
    static double y64[N], ga[N], gb[N];
    mmcr_rng r;
    mmcr_rng_seed(&r, 14, 0, 0, 0);
    for (int row = 0; row < P * K; row++) {
        double v[D], nn = 0;
        fill_normal(&r, v, D);
        for (int d = 0; d < D; d++) nn += v[d] * v[d];
        for (int d = 0; d < D; d++) y32[row * D + d] = (float)(v[d] / sqrt(nn));
    }
    for (int i = 0; i < N; i++) y64[i] = (double)y32[i];
    mmcr_loss *l = NULL;
    mmcr_err err;
    MMCR_ASSERT(mmcr_loss_create(&l, P, K, D, 0.05, &err) == MMCR_OK);
    mmcr_loss_result a, b;
    CHECK(mmcr_loss_forward_f32(l, y32, &a, &err) == MMCR_OK);
    mmcr_loss_backward_f64(l, ga);
    mmcr_loss_backward_f32(l, g32);
    CHECK(mmcr_loss_forward_f64(l, y64, &b, &err) == MMCR_OK);
    mmcr_loss_backward_f64(l, gb);
    mmcr_loss_destroy(&l);
    CHECK_CLOSE(a.global_nuclear_norm, b.global_nuclear_norm, 0, 1e-12);
    CHECK_CLOSE(a.loss, b.loss, 0, 1e-12);
    double gmax = max_abs(gb, N), worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(ga[i] - gb[i]));
    CHECK_MSG(worst <= 1e-10 * gmax, "f32 vs f64 gradient %g", worst);
    /* the float32 gradient is the double one rounded once */
    int rounded = 1;
    for (int i = 0; i < N; i++)
        if (g32[i] != (float)gb[i]) rounded = 0;
    CHECK(rounded);
    CHECK(a.global_rank == 64);
}

/* Entry 19: a zero row gives finite values, is counted, and follows the clamp convention. */
static void test_zero_row(void) {
    enum { P = 5, K = 2, D = 4 };
    double y[P * K * D], g[P * K * D];
    mmcr_rng r;
    mmcr_rng_seed(&r, 15, 0, 0, 0);
    fill_normal(&r, y, P * K * D);
    memset(y + 3 * D, 0, D * 8); /* datum 1, view 1 */
    mmcr_loss_result res;
    double loss = eval(P, K, D, 0.0, y, g, &res);
    CHECK(isfinite(loss));
    CHECK(all_finite(g, P * K * D));
    CHECK(res.zero_rows == 1);
    /* lambda = 0: both views of datum 1 see the same dL/dz = g0. The zero row's gradient is
     * g0 / 1e-12; the other view's is the tangent part of g0 over its norm. */
    double nrm = 0, g0[D], dot = 0;
    for (int d = 0; d < D; d++) nrm += y[2 * D + d] * y[2 * D + d];
    nrm = sqrt(nrm);
    for (int d = 0; d < D; d++) {
        g0[d] = g[3 * D + d] * 1e-12;
        dot += (y[2 * D + d] / nrm) * g0[d];
    }
    for (int d = 0; d < D; d++) CHECK_CLOSE(g[2 * D + d], (g0[d] - y[2 * D + d] / nrm * dot) / nrm, 1e-15, 1e-10);
    /* with the local term on as well */
    eval(P, K, D, 0.1, y, g, &res);
    CHECK(isfinite(res.loss) && all_finite(g, P * K * D));
    CHECK(res.zero_rows == 1);
    /* tiny but non-zero row: clamped (counted as zero-norm), still finite */
    for (int d = 0; d < D; d++) y[3 * D + d] = 1e-14;
    eval(P, K, D, 0.1, y, g, &res);
    CHECK(res.zero_rows == 1 && isfinite(res.loss) && all_finite(g, P * K * D));
    /* all rows zero: loss 0, gradient finite */
    memset(y, 0, sizeof y);
    eval(P, K, D, 0.1, y, g, &res);
    CHECK(res.loss == 0.0 && res.zero_rows == P * K && all_finite(g, P * K * D));
}

/* Entries 8, 9: one NaN in one row of P = 8 is reported, never dropped. */
static void test_nonfinite(void) {
    enum { P = 8, K = 2, D = 6 };
    double y[P * K * D];
    float yf[P * K * D];
    mmcr_rng r;
    mmcr_rng_seed(&r, 16, 0, 0, 0);
    fill_normal(&r, y, P * K * D);
    mmcr_loss *l = NULL;
    mmcr_err err;
    MMCR_ASSERT(mmcr_loss_create(&l, P, K, D, 0.1, &err) == MMCR_OK);
    mmcr_loss_result res;
    y[11 * D + 3] = NAN;
    CHECK(mmcr_loss_forward_f64(l, y, &res, &err) == MMCR_ERR_NONFINITE);
    CHECK(res.first_bad_row == 11);
    CHECK(res.nonfinite_rows == 1);
    CHECK(strstr(err.msg, "row 11") != NULL);
    CHECK(res.loss == 0.0 && res.global_nuclear_norm == 0.0); /* no loss over P - 1 rows */
    y[5 * D] = -INFINITY;
    CHECK(mmcr_loss_forward_f64(l, y, &res, &err) == MMCR_ERR_NONFINITE);
    CHECK(res.first_bad_row == 5 && res.nonfinite_rows == 2);
    for (int i = 0; i < P * K * D; i++) yf[i] = (float)y[i];
    CHECK(mmcr_loss_forward_f32(l, yf, &res, &err) == MMCR_ERR_NONFINITE);
    CHECK(res.first_bad_row == 5);
    /* finite but huge rows are normalised, not reported */
    y[11 * D + 3] = 1e300;
    y[5 * D] = -1e300;
    CHECK(mmcr_loss_forward_f64(l, y, &res, &err) == MMCR_OK);
    CHECK(isfinite(res.loss) && res.first_bad_row == -1);
    mmcr_loss_destroy(&l);
}

static void test_tiny_shapes(void) {
    mmcr_loss_result res;
    /* P = K = D = 1 */
    double y1[] = {-2.5}, g1[1];
    eval(1, 1, 1, 0.3, y1, g1, &res);
    CHECK(res.global_nuclear_norm == 1.0 && res.local_term == 1.0 && res.bound == 1.0 && res.ppe == 0.0);
    CHECK_CLOSE(res.loss, 0.3 - 1.0, 0, 1e-15);
    CHECK(g1[0] == 0.0);
    /* D = 1: rows normalise to +-1; M is a column, ||M||_* = ||M||_F; gradient is zero */
    double yd[] = {1, 2, -3, 4, -1, -1}, gd[6];
    eval(3, 2, 1, 0.0, yd, gd, &res);
    CHECK_CLOSE(res.global_nuclear_norm, sqrt(1.0 + 0.0 + 1.0), 0, 1e-15);
    CHECK(max_abs(gd, 6) == 0.0);
    /* K = 1: minus the nuclear norm of the normalised rows */
    enum { P = 6, D = 4 };
    double y[P * D], z[P * D], ws[4096], nuc;
    MMCR_ASSERT(mmcr_nuclear_ws_size(P, D) <= 4096);
    mmcr_rng r;
    mmcr_rng_seed(&r, 17, 0, 0, 0);
    fill_normal(&r, y, P * D);
    for (int i = 0; i < P; i++) {
        double nn = 0;
        for (int d = 0; d < D; d++) nn += y[i * D + d] * y[i * D + d];
        for (int d = 0; d < D; d++) z[i * D + d] = y[i * D + d] / sqrt(nn);
    }
    CHECK(mmcr_nuclear_norm(z, P, D, &nuc, NULL, ws) == MMCR_OK);
    eval(P, 1, D, 0.2, y, NULL, &res);
    CHECK_CLOSE(-res.global_nuclear_norm, -nuc, 0, 1e-14);
    CHECK_CLOSE(res.local_term, 1.0, 0, 1e-14); /* one unit view per datum */
    /* P = 1: ||M||_* = ||mu||, bound 1 */
    double yp[] = {1, 0, 0, 1}, gp[4];
    eval(1, 2, 2, 0.0, yp, gp, &res);
    CHECK_CLOSE(res.global_nuclear_norm, sqrt(0.5), 0, 1e-15);
    CHECK(res.bound == 1.0);
    CHECK(all_finite(gp, 4));
    /* invalid sizes and lambdas */
    mmcr_loss *l = NULL;
    mmcr_err err;
    CHECK(mmcr_loss_create(&l, 0, 1, 1, 0, &err) == MMCR_ERR_ARG && l == NULL);
    CHECK(mmcr_loss_create(&l, 1, 0, 1, 0, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_loss_create(&l, 1, 1, 0, 0, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_loss_create(&l, 1, 1, 1, -0.1, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_loss_create(&l, 1, 1, 1, NAN, &err) == MMCR_ERR_ARG);
    mmcr_loss_destroy(&l); /* NULL-safe */
}

/* Results do not depend on the thread count (per-datum work is independent). */
static void test_threads(void) {
    enum { P = 24, K = 4, D = 10, N = P * K * D };
    static double y[N], g1[N], g2[N];
    mmcr_rng r;
    mmcr_rng_seed(&r, 18, 0, 0, 0);
    fill_normal(&r, y, N);
    int saved = omp_get_max_threads();
    mmcr_loss_result a, b;
    omp_set_num_threads(1);
    eval(P, K, D, 0.1, y, g1, &a);
    omp_set_num_threads(saved > 1 ? saved : 2);
    eval(P, K, D, 0.1, y, g2, &b);
    omp_set_num_threads(saved);
    CHECK_CLOSE(a.loss, b.loss, 0, 1e-14);
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(g1[i] - g2[i]));
    CHECK(worst < 1e-14);
}

/* Entry 5: P = 256, K = 16, D = 512, lambda > 0 with a bounded workspace. Beyond the normalised
 * views / gradient (8 P K D bytes, the input's size in double), the workspace is below
 * 6 MiB + 192 KiB per thread (docs/loss.md); a full-SVD implementation needs 256 MiB for the
 * per-sample V^T alone. */
static void test_large(void) {
    enum { P = 256, K = 16, D = 512 };
    size_t n = (size_t)P * K * D;
    float *y = malloc(n * sizeof *y), *g = malloc(n * sizeof *g);
    mmcr_rng r;
    mmcr_rng_seed(&r, 19, 0, 0, 0);
    for (size_t i = 0; i < n; i++) y[i] = (float)mmcr_rng_normal(&r);
    mmcr_loss *l = NULL;
    mmcr_err err;
    MMCR_ASSERT(mmcr_loss_create(&l, P, K, D, 0.005, &err) == MMCR_OK);
    size_t ws = mmcr_loss_workspace_bytes(l), views = 8 * n;
    size_t bound = views + ((size_t)6 << 20) + (size_t)omp_get_max_threads() * ((size_t)192 << 10);
    CHECK_MSG(ws <= bound, "workspace %zu bytes = views %zu + %zu", ws, views, ws - views);
    mmcr_loss_result res;
    double t0 = mmcr_now();
    CHECK(mmcr_loss_forward_f32(l, y, &res, &err) == MMCR_OK);
    mmcr_loss_backward_f32(l, g);
    double t1 = mmcr_now();
    CHECK(res.local_eig_solves == P);
    CHECK(isfinite(res.loss) && res.global_nuclear_norm <= res.bound && res.ppe > 0 && res.ppe < 1);
    int fin = 1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(g[i])) fin = 0;
    CHECK(fin);
    printf("large case: workspace %.2f MiB (views %.2f MiB), forward+backward %.3f s\n", ws / 1048576.0, views / 1048576.0, t1 - t0);
    mmcr_loss_destroy(&l);
    CHECK(l == NULL);
    free(y);
    free(g);
}

int main(void) {
    test_fixtures();
    test_fd();
    test_normalisation_axis();
    test_layout();
    test_local_mean();
    test_lambda_switch();
    test_f32_path();
    test_zero_row();
    test_nonfinite();
    test_tiny_shapes();
    test_threads();
    test_large();
    return test_finish("test_mmcr_loss");
}
