/* Dense symmetric eigensolvers, Jacobi SVD values, nuclear norm and polar factor, all in double.
 * Fast path: LAPACK dsyevd on the min(m,n)-sized Gram matrix (paper-notes.md §3.1, §3.5);
 * references and fallback: cyclic Jacobi, which cannot fail on repeated or zero eigenvalues
 * (pitfalls.md, entry 7). Finiteness is checked explicitly before and after every solve. */
#include "mmcr/linalg.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#define JACOBI_MAX_SWEEPS 80

/* Whether x[0..n) is all finite, with max |x| into *amax (may be NULL). One pass in four
 * independent lanes so it vectorises: x * 0 is 0 for finite x and NaN for Inf or NaN, and the
 * NaN survives the sum. */
static int finite_amax(const double *x, size_t n, double *amax) {
    double m[4] = {0.0, 0.0, 0.0, 0.0}, z[4] = {0.0, 0.0, 0.0, 0.0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) {
            const double v = fabs(x[i + j]);
            m[j] = v > m[j] ? v : m[j];
            z[j] += x[i + j] * 0.0;
        }
    for (; i < n; i++) {
        const double v = fabs(x[i]);
        m[0] = v > m[0] ? v : m[0];
        z[0] += x[i] * 0.0;
    }
    const double zz = (z[0] + z[1]) + (z[2] + z[3]);
    const double m01 = m[0] > m[1] ? m[0] : m[1], m23 = m[2] > m[3] ? m[2] : m[3];
    if (amax) *amax = m01 > m23 ? m01 : m23;
    return zz == 0.0;
}

static int all_finite(const double *x, size_t n) { return finite_amax(x, n, NULL); }

/* ---- symmetric eigendecomposition ---- */

static size_t eig_lwork(int n) { return 1 + 6 * (size_t)n + 2 * (size_t)n * (size_t)n; }
static size_t eig_liwork(int n) { return 3 + 5 * (size_t)n; }

size_t mmcr_sym_eig_ws_size(int n) {
    MMCR_ASSERT(n >= 1);
    size_t nn = (size_t)n * (size_t)n;
    size_t iw = (eig_liwork(n) * sizeof(lapack_int) + sizeof(double) - 1) / sizeof(double);
    /* backup copy of a (the Jacobi fallback restarts from it) + dsyevd work + iwork */
    return nn + eig_lwork(n) + iw;
}

/* Sort eigenvalues ascending, permuting the eigenvector columns of v along. */
static void sort_ascending(double *w, double *v, int n) {
    for (int i = 0; i < n - 1; i++) {
        int k = i;
        for (int j = i + 1; j < n; j++)
            if (w[j] < w[k]) k = j;
        if (k == i) continue;
        double t = w[i];
        w[i] = w[k];
        w[k] = t;
        for (int r = 0; r < n; r++) {
            t = v[(size_t)r * n + i];
            v[(size_t)r * n + i] = v[(size_t)r * n + k];
            v[(size_t)r * n + k] = t;
        }
    }
}

/* Cyclic Jacobi on the full symmetric row-major a (destroyed); eigenvectors into the columns of
 * v, eigenvalues ascending into w. A rotation is skipped when |a_pq| is negligible relative to
 * its diagonal (eps sqrt|a_pp a_qq|) or to the whole matrix (eps^2 ||A||_F, which guarantees
 * termination when diagonals are zero); the sweep loop ends when a sweep rotates nothing. */
static mmcr_status jacobi_eig(double *a, double *w, int n, double *v) {
    size_t nn = (size_t)n * n;
    double fro2 = 0.0;
    for (size_t i = 0; i < nn; i++) fro2 += a[i] * a[i];
    double abs_floor = DBL_EPSILON * DBL_EPSILON * sqrt(fro2);
    memset(v, 0, nn * sizeof *v);
    for (int i = 0; i < n; i++) v[(size_t)i * n + i] = 1.0;
    int converged = 0;
    for (int sweep = 0; sweep < JACOBI_MAX_SWEEPS && !converged; sweep++) {
        int rotated = 0;
        for (int p = 0; p < n - 1; p++) {
            for (int q = p + 1; q < n; q++) {
                double apq = a[(size_t)p * n + q];
                double app = a[(size_t)p * n + p], aqq = a[(size_t)q * n + q];
                if (fabs(apq) <= DBL_EPSILON * sqrt(fabs(app) * fabs(aqq)) || fabs(apq) <= abs_floor) {
                    a[(size_t)p * n + q] = a[(size_t)q * n + p] = 0.0;
                    continue;
                }
                rotated = 1;
                double theta = (aqq - app) / (2.0 * apq);
                double t;
                if (fabs(theta) > 1e150)
                    t = 0.5 / theta; /* theta^2 would overflow */
                else
                    t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < n; k++) {
                    if (k == p || k == q) continue;
                    double akp = a[(size_t)k * n + p], akq = a[(size_t)k * n + q];
                    double nkp = c * akp - s * akq, nkq = s * akp + c * akq;
                    a[(size_t)k * n + p] = a[(size_t)p * n + k] = nkp;
                    a[(size_t)k * n + q] = a[(size_t)q * n + k] = nkq;
                }
                a[(size_t)p * n + p] = app - t * apq;
                a[(size_t)q * n + q] = aqq + t * apq;
                a[(size_t)p * n + q] = a[(size_t)q * n + p] = 0.0;
                for (int k = 0; k < n; k++) {
                    double vkp = v[(size_t)k * n + p], vkq = v[(size_t)k * n + q];
                    v[(size_t)k * n + p] = c * vkp - s * vkq;
                    v[(size_t)k * n + q] = s * vkp + c * vkq;
                }
            }
        }
        if (!rotated) converged = 1;
    }
    if (!converged) return MMCR_ERR_NUMERIC;
    for (int i = 0; i < n; i++) w[i] = a[(size_t)i * n + i];
    sort_ascending(w, v, n);
    if (!all_finite(w, (size_t)n) || !all_finite(v, nn)) return MMCR_ERR_NONFINITE;
    return MMCR_OK;
}

mmcr_status mmcr_sym_eig_jacobi(double *a, double *w, int n) {
    MMCR_ASSERT(n >= 1);
    size_t nn = (size_t)n * n;
    if (!all_finite(a, nn)) return MMCR_ERR_NONFINITE;
    double *v = mmcr_alloc(nn * sizeof *v);
    if (!v) return MMCR_ERR_NOMEM;
    mmcr_status st = jacobi_eig(a, w, n, v);
    if (st == MMCR_OK) memcpy(a, v, nn * sizeof *v);
    mmcr_free(v);
    return st;
}

mmcr_status mmcr_sym_eig_ex(double *a, double *w, int n, double *ws, int force_jacobi, int *used_jacobi) {
    MMCR_ASSERT(n >= 1);
    size_t nn = (size_t)n * n;
    if (used_jacobi) *used_jacobi = 0;
    if (!all_finite(a, nn)) return MMCR_ERR_NONFINITE;
    if (n == 1) {
        w[0] = a[0];
        a[0] = 1.0;
        return MMCR_OK;
    }
    double *backup = ws;
    double *work = ws + nn;
    lapack_int *iwork = (lapack_int *)(work + eig_lwork(n));
    memcpy(backup, a, nn * sizeof *a);
    if (!force_jacobi) {
        /* Column-major call: the matrix is symmetric, so no transposition (and no hidden
         * LAPACKE allocation) on the way in; the eigenvectors come back as rows. */
        lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)n, a, (lapack_int)n, w,
                                              work, (lapack_int)eig_lwork(n), iwork, (lapack_int)eig_liwork(n));
        if (info == 0 && all_finite(w, (size_t)n) && all_finite(a, nn)) {
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++) {
                    double t = a[(size_t)i * n + j];
                    a[(size_t)i * n + j] = a[(size_t)j * n + i];
                    a[(size_t)j * n + i] = t;
                }
            return MMCR_OK;
        }
        memcpy(a, backup, nn * sizeof *a);
    }
    if (used_jacobi) *used_jacobi = 1;
    /* work holds at least 2 n^2 doubles: room for the eigenvector matrix. */
    mmcr_status st = jacobi_eig(a, w, n, work);
    if (st == MMCR_OK) memcpy(a, work, nn * sizeof *a);
    return st;
}

mmcr_status mmcr_sym_eig(double *a, double *w, int n, double *ws) {
    return mmcr_sym_eig_ex(a, w, n, ws, 0, NULL);
}

/* ---- one-sided Jacobi (Hestenes) singular values ---- */

mmcr_status mmcr_svd_values_jacobi(const double *a, int m, int n, double *s) {
    MMCR_ASSERT(m >= 1 && n >= 1);
    size_t mn = (size_t)m * n;
    double amax = 0.0;
    if (!finite_amax(a, mn, &amax)) return MMCR_ERR_NONFINITE;
    /* Orthogonalise the min(m,n) "columns" of length max(m,n), stored contiguously. */
    int ncol = m < n ? m : n, len = m < n ? n : m;
    double *b = mmcr_alloc(mn * sizeof *b);
    if (!b) return MMCR_ERR_NOMEM;
    int e = 0;
    if (amax > 0) frexp(amax, &e);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double x = ldexp(a[(size_t)i * n + j], -e); /* exact power-of-two scaling */
            if (m < n)
                b[(size_t)i * len + j] = x; /* rows of a are the columns */
            else
                b[(size_t)j * len + i] = x;
        }
    int converged = 0;
    for (int sweep = 0; sweep < JACOBI_MAX_SWEEPS && !converged; sweep++) {
        int rotated = 0;
        for (int p = 0; p < ncol - 1; p++) {
            for (int q = p + 1; q < ncol; q++) {
                double *bp = b + (size_t)p * len, *bq = b + (size_t)q * len;
                double alpha = 0, beta = 0, gamma = 0;
                for (int i = 0; i < len; i++) {
                    alpha += bp[i] * bp[i];
                    beta += bq[i] * bq[i];
                    gamma += bp[i] * bq[i];
                }
                if (gamma == 0.0 || fabs(gamma) <= DBL_EPSILON * sqrt(alpha * beta)) continue;
                rotated = 1;
                double zeta = (beta - alpha) / (2.0 * gamma);
                double t;
                if (fabs(zeta) > 1e150)
                    t = 0.5 / zeta;
                else
                    t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                double c = 1.0 / sqrt(1.0 + t * t), sn = c * t;
                for (int i = 0; i < len; i++) {
                    double x = bp[i], y = bq[i];
                    bp[i] = c * x - sn * y;
                    bq[i] = sn * x + c * y;
                }
            }
        }
        if (!rotated) converged = 1;
    }
    for (int j = 0; j < ncol; j++) {
        double ss = 0;
        for (int i = 0; i < len; i++) ss += b[(size_t)j * len + i] * b[(size_t)j * len + i];
        s[j] = ldexp(sqrt(ss), e);
    }
    mmcr_free(b);
    if (!converged) return MMCR_ERR_NUMERIC;
    for (int i = 0; i < ncol - 1; i++) /* descending */
        for (int j = i + 1; j < ncol; j++)
            if (s[j] > s[i]) {
                double t = s[i];
                s[i] = s[j];
                s[j] = t;
            }
    return all_finite(s, (size_t)ncol) ? MMCR_OK : MMCR_ERR_NONFINITE;
}

/* ---- nuclear norm and minimum-norm polar factor ---- */

double mmcr_nuclear_sigma_rtol(int m, int n) { return sqrt(2.0 * ((double)m + (double)n) * DBL_EPSILON); }

/* Workspace layout, in doubles: G (r*r: Gram, then eigenvectors), w (r), W (r*r: the inverse
 * square root), the rescaled copy of a (m*n, used only for extreme scales), eigensolver ws. */
size_t mmcr_nuclear_ws_size(int m, int n) {
    MMCR_ASSERT(m >= 1 && n >= 1);
    size_t r = (size_t)(m < n ? m : n);
    return 2 * r * r + r + (size_t)m * (size_t)n + mmcr_sym_eig_ws_size((int)r);
}

mmcr_status mmcr_nuclear_norm_ex(const double *a, int m, int n, const mmcr_nuclear_opts *opts,
                                 double *nuc, double *q, double *ws, mmcr_nuclear_info *info) {
    MMCR_ASSERT(m >= 1 && n >= 1 && nuc && ws);
    int r = m < n ? m : n;
    size_t rr = (size_t)r * r, mn = (size_t)m * n;
    mmcr_nuclear_info inf = {0};
    *nuc = 0.0;
    if (info) *info = inf;
    double amax = 0.0;
    if (!finite_amax(a, mn, &amax)) return MMCR_ERR_NONFINITE;

    double *g = ws, *w = g + rr, *wm = w + r, *scaled = wm + rr, *eig_ws = scaled + mn;
    if (amax == 0.0) { /* zero matrix: norm 0, minimum-norm subgradient 0 */
        if (q) memset(q, 0, mn * sizeof *q);
        return MMCR_OK;
    }
    int e = 0;
    frexp(amax, &e);
    const double *as = a;
    if (e > 256 || e < -256) {
        for (size_t i = 0; i < mn; i++) scaled[i] = ldexp(a[i], -e);
        as = scaled;
    } else {
        e = 0;
    }

    /* Gram of the short side: A A^T (m <= n) or A^T A (m > n), upper triangle, then mirrored. */
    if (m <= n)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, n, 1.0, as, n, 0.0, g, r);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, m, 1.0, as, n, 0.0, g, r);
    for (int i = 0; i < r; i++)
        for (int j = 0; j < i; j++) g[(size_t)i * r + j] = g[(size_t)j * r + i];
    if (!all_finite(g, rr)) return MMCR_ERR_NONFINITE;

    int used = 0;
    mmcr_status st = mmcr_sym_eig_ex(g, w, r, eig_ws, opts ? opts->force_jacobi : 0, &used);
    inf.used_jacobi = used;
    if (st != MMCR_OK) {
        if (info) *info = inf;
        return st;
    }
    double lam_max = fmax(w[r - 1], 0.0);
    double rtol = (opts && opts->sigma_rtol > 0) ? opts->sigma_rtol : mmcr_nuclear_sigma_rtol(m, n);
    /* DBL_MIN floor: an all-underflowed spectrum keeps nothing. */
    double lam_tol = fmax(rtol * rtol * lam_max, DBL_MIN);
    int first = r; /* eigenvalues ascend, so the kept ones are w[first .. r-1] */
    while (first > 0 && w[first - 1] > lam_tol) first--;
    double sum = 0.0;
    for (int i = first; i < r; i++) sum += sqrt(w[i]); /* smallest first */
    *nuc = ldexp(sum, e);
    inf.rank = r - first;
    inf.sigma_max = ldexp(sqrt(lam_max), e);
    inf.sigma_min_kept = first < r ? ldexp(sqrt(w[first]), e) : 0.0;
    inf.sigma_tol = ldexp(sqrt(lam_tol), e);
    if (info) *info = inf;
    if (!isfinite(*nuc)) return MMCR_ERR_NONFINITE;

    if (q) {
        int k = r - first;
        if (k == 0) {
            memset(q, 0, mn * sizeof *q);
            return MMCR_OK;
        }
        /* W = sum_kept lam^-1/2 v v^T, formed as (V lam^-1/4)(V lam^-1/4)^T; dropped
         * directions contribute zero (minimum-norm subgradient). Q is scale invariant, so the
         * rescaled matrix gives the same Q. */
        for (int i = 0; i < r; i++)
            for (int j = first; j < r; j++) g[(size_t)i * r + j] /= sqrt(sqrt(w[j]));
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, r, k, 1.0, g + first, r, 0.0, wm, r);
        if (m <= n) /* Q = (A A^T)^-1/2 A */
            cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, m, n, 1.0, wm, r, as, n, 0.0, q, n);
        else /* Q = A (A^T A)^-1/2 */
            cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, m, n, 1.0, wm, r, as, n, 0.0, q, n);
        if (!all_finite(q, mn)) return MMCR_ERR_NONFINITE;
    }
    return MMCR_OK;
}

mmcr_status mmcr_nuclear_norm(const double *a, int m, int n, double *nuc, double *q, double *ws) {
    return mmcr_nuclear_norm_ex(a, m, n, NULL, nuc, q, ws, NULL);
}
