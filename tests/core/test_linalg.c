/* Eigensolvers, Jacobi SVD values, nuclear norm and polar factor: LAPACK vs Jacobi, the exact
 * degenerate cases of pitfalls.md entry 7, paper-notes.md §3.6 test vectors, non-finite inputs,
 * workspace bounds (canaries after every workspace) and the polar factor as a gradient. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "mmcr/linalg.h"
#include "test_util.h"

#define CANARY 64
#define CANARY_VAL 12345.678

static double *ws_alloc(size_t n) {
    double *w = mmcr_alloc((n + CANARY) * sizeof *w);
    for (size_t i = 0; i < CANARY; i++) w[n + i] = CANARY_VAL;
    return w;
}
static int ws_intact(const double *w, size_t n) {
    for (size_t i = 0; i < CANARY; i++)
        if (w[n + i] != CANARY_VAL) return 0;
    return 1;
}

static void fill_normal(mmcr_rng *r, double *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = mmcr_rng_normal(r);
}

/* c (m x n) = a (m x k) * b (k x n), all row-major. */
static void matmul(const double *a, const double *b, double *c, int m, int k, int n) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int t = 0; t < k; t++) s += a[(size_t)i * k + t] * b[(size_t)t * n + j];
            c[(size_t)i * n + j] = s;
        }
}

static double max_abs_diff(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static int all_finite(const double *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* Random n x n orthogonal matrix: eigenvectors of a random symmetric matrix. */
static void random_orthogonal(mmcr_rng *r, double *o, int n) {
    size_t nn = (size_t)n * n;
    double *w = mmcr_alloc((size_t)n * sizeof *w), *ws = mmcr_alloc(mmcr_sym_eig_ws_size(n) * sizeof *ws);
    fill_normal(r, o, nn);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) o[(size_t)i * n + j] = o[(size_t)j * n + i];
    MMCR_ASSERT(mmcr_sym_eig(o, w, n, ws) == MMCR_OK);
    mmcr_free(w);
    mmcr_free(ws);
}

/* a = U diag(s) V^T with random orthogonal U (m x m), V (n x n); s has min(m,n) entries. Also
 * returns the exact polar factor U_k V_k^T over the first `keep` singular values. */
static void construct(mmcr_rng *r, double *a, double *qexp, int m, int n, const double *s, int keep) {
    double *u = mmcr_alloc((size_t)m * m * sizeof *u), *v = mmcr_alloc((size_t)n * n * sizeof *v);
    random_orthogonal(r, u, m);
    random_orthogonal(r, v, n);
    int k = m < n ? m : n;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double x = 0, y = 0;
            for (int t = 0; t < k; t++) {
                x += u[(size_t)i * m + t] * s[t] * v[(size_t)j * n + t];
                if (t < keep) y += u[(size_t)i * m + t] * v[(size_t)j * n + t];
            }
            a[(size_t)i * n + j] = x;
            if (qexp) qexp[(size_t)i * n + j] = y;
        }
    mmcr_free(u);
    mmcr_free(v);
}

/* Nuclear norm with both eigensolvers; checks workspace canaries and agreement. */
static mmcr_status nuclear_both(const double *a, int m, int n, double *nuc, double *q, mmcr_nuclear_info *info) {
    size_t wsn = mmcr_nuclear_ws_size(m, n), mn = (size_t)m * n;
    double *ws = ws_alloc(wsn), *q2 = q ? mmcr_alloc(mn * sizeof *q2) : NULL;
    mmcr_status st = mmcr_nuclear_norm_ex(a, m, n, NULL, nuc, q, ws, info);
    CHECK(ws_intact(ws, wsn));
    mmcr_nuclear_opts o = {0, 1};
    double nuc2 = 0;
    mmcr_nuclear_info i2;
    mmcr_status st2 = mmcr_nuclear_norm_ex(a, m, n, &o, &nuc2, q2, ws, &i2);
    CHECK(ws_intact(ws, wsn));
    CHECK(st2 == st);
    if (st == MMCR_OK) {
        CHECK(i2.used_jacobi || m == 1 || n == 1 || nuc2 == 0.0); /* 1 x 1 Gram or zero matrix: no solve */
        CHECK_CLOSE(nuc2, *nuc, 1e-13, 1e-13);
        /* both paths share the Gram matrix; Q's sensitivity to its rounding grows like kappa^2 */
        double kappa = i2.sigma_min_kept > 0 ? i2.sigma_max / i2.sigma_min_kept : 1.0;
        if (q)
            CHECK_MSG(max_abs_diff(q, q2, mn) < 1e-12 * fmax(10.0, kappa * kappa), "Q lapack vs jacobi %g (kappa %g)",
                      max_abs_diff(q, q2, mn), kappa);
    }
    mmcr_free(ws);
    mmcr_free(q2);
    return st;
}

static void test_eig_vs_jacobi(void) {
    mmcr_rng r;
    mmcr_rng_seed(&r, 1, 0, 0, 0);
    const int sizes[] = {1, 2, 3, 7, 33, 100};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int n = sizes[si];
        size_t nn = (size_t)n * n, wsn = mmcr_sym_eig_ws_size(n);
        double *a = mmcr_alloc(nn * 8), *a1 = mmcr_alloc(nn * 8), *a2 = mmcr_alloc(nn * 8), *w1 = mmcr_alloc((size_t)n * 8),
               *w2 = mmcr_alloc((size_t)n * 8), *t = mmcr_alloc(nn * 8), *ws = ws_alloc(wsn);
        fill_normal(&r, a, nn);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) a[(size_t)i * n + j] = a[(size_t)j * n + i];
        memcpy(a1, a, nn * 8);
        memcpy(a2, a, nn * 8);
        int used = -1;
        CHECK(mmcr_sym_eig_ex(a1, w1, n, ws, 0, &used) == MMCR_OK);
        CHECK(used == 0);
        CHECK(ws_intact(ws, wsn));
        CHECK(mmcr_sym_eig_jacobi(a2, w2, n) == MMCR_OK);
        double scale = 0;
        for (int i = 0; i < n; i++) scale = fmax(scale, fabs(w1[i]));
        CHECK_MSG(max_abs_diff(w1, w2, (size_t)n) <= 1e-13 * scale * n, "n=%d eig diff %g", n, max_abs_diff(w1, w2, (size_t)n));
        for (int i = 0; i + 1 < n; i++) CHECK(w1[i] <= w1[i + 1] && w2[i] <= w2[i + 1]);
        /* A V = V diag(w), V^T V = I for both (columns are eigenvectors) */
        double *vs[2] = {a1, a2}, *ws_[2] = {w1, w2};
        for (int s = 0; s < 2; s++) {
            matmul(a, vs[s], t, n, n, n);
            double res = 0, orth = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    res = fmax(res, fabs(t[(size_t)i * n + j] - vs[s][(size_t)i * n + j] * ws_[s][j]));
                    double d = 0;
                    for (int k = 0; k < n; k++) d += vs[s][(size_t)k * n + i] * vs[s][(size_t)k * n + j];
                    orth = fmax(orth, fabs(d - (i == j)));
                }
            CHECK_MSG(res <= 1e-12 * scale * n, "n=%d solver %d residual %g", n, s, res);
            CHECK_MSG(orth <= 1e-13 * n, "n=%d solver %d orthogonality %g", n, s, orth);
        }
        /* forced Jacobi through the workspace path gives the reference result */
        memcpy(a1, a, nn * 8);
        CHECK(mmcr_sym_eig_ex(a1, w1, n, ws, 1, &used) == MMCR_OK);
        CHECK(used == (n > 1)); /* n == 1 needs no solver */
        CHECK(ws_intact(ws, wsn));
        CHECK(max_abs_diff(w1, w2, (size_t)n) == 0.0);
        mmcr_free(a);
        mmcr_free(a1);
        mmcr_free(a2);
        mmcr_free(w1);
        mmcr_free(w2);
        mmcr_free(t);
        mmcr_free(ws);
    }
}

static void test_eig_repeated(void) {
    /* identity and a matrix with a triple eigenvalue: both solvers, exact spectra */
    enum { N = 6 };
    double a[N * N] = {0}, w[N], ws[2048];
    MMCR_ASSERT(mmcr_sym_eig_ws_size(N) <= 2048);
    for (int i = 0; i < N; i++) a[i * N + i] = 1.0;
    CHECK(mmcr_sym_eig(a, w, N, ws) == MMCR_OK);
    for (int i = 0; i < N; i++) CHECK_CLOSE(w[i], 1.0, 1e-15, 0);
    for (int i = 0; i < N; i++) a[i] = 0;
    memset(a, 0, sizeof a);
    for (int i = 0; i < N; i++) a[i * N + i] = 1.0;
    CHECK(mmcr_sym_eig_jacobi(a, w, N) == MMCR_OK);
    for (int i = 0; i < N; i++) CHECK_CLOSE(w[i], 1.0, 0, 0);
    /* all-ones 6x6: eigenvalues 0 (x5) and 6 */
    for (int i = 0; i < N * N; i++) a[i] = 1.0;
    CHECK(mmcr_sym_eig(a, w, N, ws) == MMCR_OK);
    CHECK_CLOSE(w[N - 1], 6.0, 1e-14, 0);
    for (int i = 0; i < N - 1; i++) CHECK_CLOSE(w[i], 0.0, 1e-14, 0);
    for (int i = 0; i < N * N; i++) a[i] = 1.0;
    CHECK(mmcr_sym_eig_jacobi(a, w, N) == MMCR_OK);
    CHECK_CLOSE(w[N - 1], 6.0, 1e-14, 0);
    for (int i = 0; i < N - 1; i++) CHECK_CLOSE(w[i], 0.0, 1e-14, 0);
    /* zero matrix */
    memset(a, 0, sizeof a);
    CHECK(mmcr_sym_eig_jacobi(a, w, N) == MMCR_OK);
    for (int i = 0; i < N; i++) CHECK(w[i] == 0.0);
}

static void test_svd_values(void) {
    double m1[] = {1, 0, 0, 2, 0, 0}, s[3];
    CHECK(mmcr_svd_values_jacobi(m1, 3, 2, s) == MMCR_OK);
    CHECK_CLOSE(s[0], 2.0, 1e-15, 0);
    CHECK_CLOSE(s[1], 1.0, 1e-15, 0);
    /* transposed orientation */
    double m1t[] = {1, 0, 0, 0, 2, 0};
    CHECK(mmcr_svd_values_jacobi(m1t, 2, 3, s) == MMCR_OK);
    CHECK_CLOSE(s[0], 2.0, 1e-15, 0);
    CHECK_CLOSE(s[1], 1.0, 1e-15, 0);

    /* constructed spectra in both orientations, including a 1e-10 singular value, which
     * one-sided Jacobi resolves to high relative accuracy */
    mmcr_rng r;
    mmcr_rng_seed(&r, 2, 0, 0, 0);
    const int shapes[][2] = {{5, 9}, {9, 5}, {7, 7}, {1, 4}, {4, 1}};
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        int m = shapes[t][0], n = shapes[t][1], k = m < n ? m : n;
        double sv[9], got[9], a[81];
        for (int i = 0; i < k; i++) sv[i] = pow(10.0, -2.5 * i); /* 1, 3e-3, 1e-5, ... */
        construct(&r, a, NULL, m, n, sv, k);
        CHECK(mmcr_svd_values_jacobi(a, m, n, got) == MMCR_OK);
        for (int i = 0; i < k; i++) CHECK_MSG(fabs(got[i] - sv[i]) <= 1e-14 + 1e-9 * sv[i], "%dx%d s[%d] %g vs %g", m, n, i, got[i], sv[i]);
    }
    /* extreme scales do not overflow */
    double big[] = {1e300, 0, 0, 3e299};
    CHECK(mmcr_svd_values_jacobi(big, 2, 2, s) == MMCR_OK);
    CHECK_CLOSE(s[0], 1e300, 0, 1e-15);
    CHECK_CLOSE(s[1], 3e299, 0, 1e-15);
}

static void test_reference_vectors(void) {
    /* paper-notes.md §3.6 */
    double m1[] = {1, 0, 0, 2, 0, 0}, q[6], nuc;
    double qexp[] = {1, 0, 0, 1, 0, 0};
    CHECK(nuclear_both(m1, 3, 2, &nuc, q, NULL) == MMCR_OK);
    CHECK_CLOSE(nuc, 3.0, 1e-15, 0);
    CHECK(max_abs_diff(q, qexp, 6) < 1e-15);
    double m2[] = {0.6, 0.8, 0.3, -0.1};
    CHECK(nuclear_both(m2, 2, 2, &nuc, q, NULL) == MMCR_OK);
    CHECK_CLOSE(nuc, 1.3038404810405297, 0, 1e-15);
    double closed = sqrt(1.0 + 0.1 + 2 * fabs(0.6 * -0.1 - 0.8 * 0.3));
    CHECK_CLOSE(nuc, closed, 0, 1e-15);
    /* ... and the Jacobi SVD reference agrees */
    double s[2];
    CHECK(mmcr_svd_values_jacobi(m2, 2, 2, s) == MMCR_OK);
    CHECK_CLOSE(s[0] + s[1], 1.3038404810405297, 0, 1e-15);
}

static void test_degenerate(void) {
    mmcr_rng r;
    mmcr_rng_seed(&r, 3, 0, 0, 0);
    mmcr_nuclear_info info;
    double nuc;

    /* orthonormal rows, P <= D: ||M||_* = P and Q = M */
    {
        enum { P = 5, D = 9 };
        double o[D * D], a[P * D], q[P * D];
        random_orthogonal(&r, o, D);
        memcpy(a, o, sizeof a); /* first P rows of an orthogonal matrix */
        CHECK(nuclear_both(a, P, D, &nuc, q, &info) == MMCR_OK);
        CHECK_CLOSE(nuc, (double)P, 0, 1e-12);
        CHECK(info.rank == P);
        CHECK(max_abs_diff(q, a, P * D) < 1e-13);
    }
    /* tight frame: 4 unit vectors at 0, 45, 90, 135 degrees in D = 2: every sigma = sqrt(2) */
    {
        const double c = sqrt(0.5);
        double a[] = {1, 0, c, c, 0, 1, -c, c}, q[8];
        CHECK(nuclear_both(a, 4, 2, &nuc, q, &info) == MMCR_OK);
        CHECK_CLOSE(nuc, 2.0 * sqrt(2.0), 0, 1e-12);
        CHECK_CLOSE(info.sigma_max, sqrt(2.0), 0, 1e-12);
        CHECK_CLOSE(info.sigma_min_kept, sqrt(2.0), 0, 1e-12);
        /* polar factor = M / sqrt(2) */
        for (int i = 0; i < 8; i++) CHECK_CLOSE(q[i], a[i] / sqrt(2.0), 1e-14, 0);
    }
    /* 64 x 64 orthogonal: 64, Q = A */
    {
        enum { N = 64 };
        static double a[N * N], q[N * N];
        random_orthogonal(&r, a, N);
        CHECK(nuclear_both(a, N, N, &nuc, q, &info) == MMCR_OK);
        CHECK_CLOSE(nuc, 64.0, 0, 1e-12);
        CHECK(max_abs_diff(q, a, N * N) < 1e-12);
        double s[N], ssum = 0;
        CHECK(mmcr_svd_values_jacobi(a, N, N, s) == MMCR_OK);
        for (int i = 0; i < N; i++) ssum += s[i];
        CHECK_CLOSE(ssum, 64.0, 0, 1e-12);
    }
    /* 16 identical unit rows (collapse): sqrt(16) = 4; Q = u v^T with u = 1/4, v = z */
    {
        enum { P = 16, D = 8 };
        double z[D], a[P * D], q[P * D], nz = 0;
        fill_normal(&r, z, D);
        for (int d = 0; d < D; d++) nz += z[d] * z[d];
        for (int d = 0; d < D; d++) z[d] /= sqrt(nz);
        for (int i = 0; i < P; i++) memcpy(a + i * D, z, sizeof z);
        CHECK(nuclear_both(a, P, D, &nuc, q, &info) == MMCR_OK);
        CHECK_CLOSE(nuc, 4.0, 0, 1e-12);
        CHECK(info.rank == 1);
        CHECK(all_finite(q, P * D));
        for (int i = 0; i < P; i++)
            for (int d = 0; d < D; d++) CHECK_CLOSE(q[i * D + d], z[d] / 4.0, 1e-12, 0);
        /* and with the long side first (D x P layout) */
        double at[D * P], qt[D * P];
        for (int i = 0; i < P; i++)
            for (int d = 0; d < D; d++) at[d * P + i] = a[i * D + d];
        CHECK(nuclear_both(at, D, P, &nuc, qt, &info) == MMCR_OK);
        CHECK_CLOSE(nuc, 4.0, 0, 1e-12);
        CHECK(info.rank == 1);
    }
    /* zero matrices: 0, minimum-norm subgradient 0 */
    {
        double a[8 * 16] = {0}, q[8 * 16];
        for (int i = 0; i < 8 * 16; i++) q[i] = 7.0;
        CHECK(nuclear_both(a, 8, 16, &nuc, q, &info) == MMCR_OK);
        CHECK(nuc == 0.0);
        CHECK(info.rank == 0);
        for (int i = 0; i < 8 * 16; i++) CHECK(q[i] == 0.0);
        for (int i = 0; i < 8 * 16; i++) q[i] = 7.0;
        CHECK(nuclear_both(a, 16, 8, &nuc, q, &info) == MMCR_OK);
        CHECK(nuc == 0.0);
        for (int i = 0; i < 8 * 16; i++) CHECK(q[i] == 0.0);
    }
    /* 4 x 4 identity: 4, Q = I, finite */
    {
        double a[16] = {0}, q[16];
        for (int i = 0; i < 4; i++) a[i * 5] = 1.0;
        CHECK(nuclear_both(a, 4, 4, &nuc, q, NULL) == MMCR_OK);
        CHECK(nuc == 4.0);
        CHECK(max_abs_diff(q, a, 16) < 1e-15);
    }
    /* 1 x 1 and vectors */
    {
        double a[] = {-3.0}, q[1];
        CHECK(nuclear_both(a, 1, 1, &nuc, q, NULL) == MMCR_OK);
        CHECK(nuc == 3.0);
        CHECK_CLOSE(q[0], -1.0, 1e-15, 0);
        double v[] = {3, 4}, qv[2];
        CHECK(nuclear_both(v, 1, 2, &nuc, qv, NULL) == MMCR_OK);
        CHECK_CLOSE(nuc, 5.0, 0, 1e-15);
        CHECK_CLOSE(qv[0], 0.6, 1e-15, 0);
        CHECK_CLOSE(qv[1], 0.8, 1e-15, 0);
        CHECK(nuclear_both(v, 2, 1, &nuc, qv, NULL) == MMCR_OK);
        CHECK_CLOSE(nuc, 5.0, 0, 1e-15);
    }
}

static void test_nonfinite(void) {
    double ws[4096], nuc = -1, q[4];
    MMCR_ASSERT(mmcr_nuclear_ws_size(2, 2) <= 4096);
    double bad[4] = {NAN, 0, 0, 1};
    CHECK(mmcr_nuclear_norm(bad, 2, 2, &nuc, q, ws) == MMCR_ERR_NONFINITE);
    CHECK(mmcr_nuclear_norm(bad, 2, 2, &nuc, NULL, ws) == MMCR_ERR_NONFINITE);
    CHECK(nuc != 2.0);
    bad[0] = INFINITY;
    CHECK(mmcr_nuclear_norm(bad, 2, 2, &nuc, q, ws) == MMCR_ERR_NONFINITE);
    bad[0] = -INFINITY;
    CHECK(mmcr_nuclear_norm(bad, 2, 2, &nuc, NULL, ws) == MMCR_ERR_NONFINITE);
    double s[2];
    bad[0] = NAN;
    CHECK(mmcr_svd_values_jacobi(bad, 2, 2, s) == MMCR_ERR_NONFINITE);
    double sym[4] = {NAN, 0, 0, 1}, w[2];
    CHECK(mmcr_sym_eig(sym, w, 2, ws) == MMCR_ERR_NONFINITE);
    sym[0] = NAN;
    CHECK(mmcr_sym_eig_jacobi(sym, w, 2) == MMCR_ERR_NONFINITE);
    /* finite entries whose Gram overflows are rescaled, not reported */
    double huge[4] = {1e200, 0, 0, 1e200};
    CHECK(mmcr_nuclear_norm(huge, 2, 2, &nuc, q, ws) == MMCR_OK);
    CHECK_CLOSE(nuc, 2e200, 0, 1e-15);
}

/* Random matrices: nuc = sum of Jacobi singular values, Q has orthonormal short-side rows or
 * columns, Q^T A is symmetric PSD with trace nuc; extreme scales give identical results. */
static void test_random_properties(void) {
    mmcr_rng r;
    mmcr_rng_seed(&r, 4, 0, 0, 0);
    const int shapes[][2] = {{6, 11}, {11, 6}, {9, 9}, {40, 25}, {3, 64}};
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        int m = shapes[t][0], n = shapes[t][1], k = m < n ? m : n;
        size_t mn = (size_t)m * n;
        double *a = mmcr_alloc(mn * 8), *q = mmcr_alloc(mn * 8), *s = mmcr_alloc((size_t)k * 8), *g = mmcr_alloc((size_t)n * n * 8),
               *at = mmcr_alloc(mn * 8), *q2 = mmcr_alloc(mn * 8);
        fill_normal(&r, a, mn);
        double nuc;
        CHECK(nuclear_both(a, m, n, &nuc, q, NULL) == MMCR_OK);
        CHECK(mmcr_svd_values_jacobi(a, m, n, s) == MMCR_OK);
        double ssum = 0;
        for (int i = k - 1; i >= 0; i--) ssum += s[i];
        CHECK_MSG(fabs(nuc - ssum) <= 1e-12 * ssum, "%dx%d nuc %.17g vs jacobi %.17g", m, n, nuc, ssum);
        /* orthonormality on the short side */
        double orth = 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                double d = 0;
                if (m <= n)
                    for (int c = 0; c < n; c++) d += q[(size_t)i * n + c] * q[(size_t)j * n + c];
                else
                    for (int c = 0; c < m; c++) d += q[(size_t)c * n + i] * q[(size_t)c * n + j];
                orth = fmax(orth, fabs(d - (i == j)));
            }
        CHECK_MSG(orth < 1e-12, "%dx%d orth %g", m, n, orth);
        /* Q^T A symmetric with trace nuc */
        double tr = 0, asym = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double d = 0;
                for (int c = 0; c < m; c++) d += q[(size_t)c * n + i] * a[(size_t)c * n + j];
                g[(size_t)i * n + j] = d;
                if (i == j) tr += d;
            }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) asym = fmax(asym, fabs(g[(size_t)i * n + j] - g[(size_t)j * n + i]));
        CHECK_CLOSE(tr, nuc, 0, 1e-12);
        CHECK_MSG(asym < 1e-12 * nuc, "%dx%d asym %g", m, n, asym);
        /* exact power-of-two rescaling: bitwise the same Q, scaled nuclear norm */
        const double scales[] = {0x1p600, 0x1p-600, 1e-300};
        for (int si = 0; si < 3; si++) {
            for (size_t i = 0; i < mn; i++) at[i] = a[i] * scales[si];
            double nuc2;
            size_t wsn = mmcr_nuclear_ws_size(m, n);
            double *ws = ws_alloc(wsn);
            CHECK(mmcr_nuclear_norm(at, m, n, &nuc2, q2, ws) == MMCR_OK);
            CHECK(ws_intact(ws, wsn));
            mmcr_free(ws);
            CHECK_MSG(fabs(nuc2 / scales[si] - nuc) <= 1e-14 * nuc, "scale %g: %.17g vs %.17g", scales[si], nuc2 / scales[si], nuc);
            CHECK_MSG(max_abs_diff(q, q2, mn) <= (si < 2 ? 0.0 : 1e-13), "scale %g: Q diff %g", scales[si], max_abs_diff(q, q2, mn));
        }
        mmcr_free(a);
        mmcr_free(q);
        mmcr_free(s);
        mmcr_free(g);
        mmcr_free(at);
        mmcr_free(q2);
    }
}

/* The polar factor is the gradient of the nuclear norm: central differences along random
 * directions E agree with <Q, E> (full-rank points, where the gradient is unique). */
static void test_polar_is_gradient(void) {
    mmcr_rng r;
    mmcr_rng_seed(&r, 5, 0, 0, 0);
    const int shapes[][2] = {{4, 7}, {7, 4}, {5, 5}};
    for (size_t t = 0; t < 3; t++) {
        int m = shapes[t][0], n = shapes[t][1];
        size_t mn = (size_t)m * n;
        double a[49], q[49], e[49], ap[49], ws[4096], nuc, np_, nm_;
        MMCR_ASSERT(mmcr_nuclear_ws_size(m, n) <= 4096);
        fill_normal(&r, a, mn);
        CHECK(mmcr_nuclear_norm(a, m, n, &nuc, q, ws) == MMCR_OK);
        for (int dir = 0; dir < 5; dir++) {
            fill_normal(&r, e, mn);
            const double h = 1e-6;
            double an = 0;
            for (size_t i = 0; i < mn; i++) {
                ap[i] = a[i] + h * e[i];
                an += q[i] * e[i];
            }
            CHECK(mmcr_nuclear_norm(ap, m, n, &np_, NULL, ws) == MMCR_OK);
            for (size_t i = 0; i < mn; i++) ap[i] = a[i] - h * e[i];
            CHECK(mmcr_nuclear_norm(ap, m, n, &nm_, NULL, ws) == MMCR_OK);
            double fd = (np_ - nm_) / (2 * h);
            CHECK_MSG(fabs(fd - an) <= 1e-8 + 1e-7 * fabs(an), "%dx%d dir %d: fd %.12g vs %.12g", m, n, dir, fd, an);
        }
    }
}

/* Threshold: a singular value far below the noise floor is dropped, one above it is kept and its
 * polar component is accurate to about eps * kappa^2. */
static void test_threshold(void) {
    mmcr_rng r;
    mmcr_rng_seed(&r, 6, 0, 0, 0);
    enum { M = 6, N = 10 };
    double s[M] = {1.0, 0.7, 0.3, 1e-2, 1e-4, 1e-11}, a[M * N], qexp[M * N], q[M * N], nuc;
    construct(&r, a, qexp, M, N, s, 5);
    mmcr_nuclear_info info;
    CHECK(nuclear_both(a, M, N, &nuc, q, &info) == MMCR_OK);
    CHECK(info.rank == 5);
    CHECK_CLOSE(info.sigma_tol, sqrt(2.0 * (M + N) * DBL_EPSILON), 0, 1e-6);
    CHECK_CLOSE(nuc, 2.0101, 1e-10, 0);
    CHECK_MSG(max_abs_diff(q, qexp, M * N) < 1e-7, "Q error %g", max_abs_diff(q, qexp, M * N));
    /* a user threshold above 1e-4 drops that direction too */
    mmcr_nuclear_opts o = {1e-3, 0};
    double ws[8192];
    MMCR_ASSERT(mmcr_nuclear_ws_size(M, N) <= 8192);
    CHECK(mmcr_nuclear_norm_ex(a, M, N, &o, &nuc, q, ws, &info) == MMCR_OK);
    CHECK(info.rank == 4);
    CHECK_CLOSE(nuc, 2.01, 1e-10, 0);
    CHECK(mmcr_nuclear_sigma_rtol(3, 4) == sqrt(14.0 * DBL_EPSILON));
}

int main(void) {
    test_eig_vs_jacobi();
    test_eig_repeated();
    test_svd_values();
    test_reference_vectors();
    test_degenerate();
    test_nonfinite();
    test_random_properties();
    test_polar_is_gradient();
    test_threshold();
    return test_finish("test_linalg");
}
