/* Distributions on the sphere S^{D-1}: log Bessel I, the von Mises-Fisher normaliser and its
 * maximum-likelihood concentration, spherical caps, and the Kozachenko-Leonenko entropy estimate
 * (docs/analyses.md, "Mutual-information bound"). Everything is in logs, because for D in the
 * hundreds the Bessel functions and cap areas leave the range of a double. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_bessel.h>
#include <gsl/gsl_sf_psi.h>

#include "mmcr/analysis.h"

#define PI 3.14159265358979323846

/* Uniform asymptotic expansion of I_nu(nu z) to u_5 (DLMF 10.41.3, polynomials u_k of 10.41.10;
 * u_k(1) are the Stirling coefficients -1/12, 1/288, 139/51840, -571/2488320, -163879/209018880). */
static double log_bessel_debye(double nu, double x) {
    const double z = x / nu, s = sqrt(1.0 + z * z), p = 1.0 / s;
    /* eta = s + log(z / (1 + s)); for tiny z, log(z) - log(1 + s) stays accurate. */
    const double eta = s + log(z) - log1p(s);
    const double p2 = p * p;
    const double u1 = p * (3.0 - 5.0 * p2) / 24.0;
    const double u2 = p2 * (81.0 + p2 * (-462.0 + p2 * 385.0)) / 1152.0;
    const double u3 = p * p2 * (30375.0 + p2 * (-369603.0 + p2 * (765765.0 - p2 * 425425.0))) / 414720.0;
    const double u4 =
        p2 * p2 * (4465125.0 + p2 * (-94121676.0 + p2 * (349922430.0 + p2 * (-446185740.0 + p2 * 185910725.0)))) /
        39813120.0;
    const double u5 = p * p2 * p2 *
                      (1519035525.0 +
                       p2 * (-49286948607.0 +
                             p2 * (284499769554.0 + p2 * (-614135872350.0 + p2 * (566098157625.0 - p2 * 188699385875.0))))) /
                      6688604160.0;
    const double inv = 1.0 / nu;
    const double series = 1.0 + inv * (u1 + inv * (u2 + inv * (u3 + inv * (u4 + inv * u5))));
    return nu * eta - 0.5 * log(2.0 * PI * nu) - 0.5 * log(s) + log(series);
}

/* Power series in logs for small x: I_nu(x) = sum_m (x/2)^{2m+nu} / (m! Gamma(m+nu+1)). */
static double log_bessel_series(double nu, double x) {
    const double l = log(0.5 * x);
    const double t0 = nu * l - lgamma(nu + 1.0);
    double sum = 1.0, term = 1.0;
    for (int m = 1; m < 500; m++) {
        term *= 0.25 * x * x / ((double)m * ((double)m + nu));
        sum += term;
        if (term < 1e-17 * sum) break;
    }
    return t0 + log(sum);
}

double mmcr_log_bessel_i(double nu, double x) {
    if (!(nu >= 0) || !(x >= 0) || isinf(nu)) return NAN;
    if (x == 0) return nu == 0 ? 0.0 : -INFINITY;
    if (isinf(x)) return INFINITY;
    if (nu >= 20.0) return log_bessel_debye(nu, x);
    if (x < 1e-3) return log_bessel_series(nu, x);
    gsl_sf_result r;
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int rc = gsl_sf_bessel_Inu_scaled_e(nu, x, &r);
    gsl_set_error_handler(old);
    if (rc != GSL_SUCCESS || !(r.val > 0)) return log_bessel_series(nu, x);
    return log(r.val) + x;
}

double mmcr_sphere_log_area(int d) {
    if (d < 1) return NAN;
    const double h = 0.5 * (double)d;
    return log(2.0) + h * log(PI) - lgamma(h);
}

double mmcr_vmf_log_norm(int d, double kappa) {
    if (d < 2 || !(kappa >= 0)) return NAN;
    if (kappa == 0) return -mmcr_sphere_log_area(d);
    const double nu = 0.5 * (double)d - 1.0;
    return nu * log(kappa) - (nu + 1.0) * log(2.0 * PI) - mmcr_log_bessel_i(nu, kappa);
}

double mmcr_vmf_mean_cos(int d, double kappa) {
    if (d < 2 || !(kappa >= 0)) return NAN;
    if (kappa == 0) return 0.0;
    if (isinf(kappa)) return 1.0;
    const double nu = 0.5 * (double)d - 1.0;
    /* For tiny kappa the logs are huge and nearly equal; A ~ kappa / D there. */
    if (kappa < 1e-8) return kappa / (double)d;
    return exp(mmcr_log_bessel_i(nu + 1.0, kappa) - mmcr_log_bessel_i(nu, kappa));
}

double mmcr_vmf_kappa_ml(int d, double rbar) {
    if (d < 2 || isnan(rbar)) return NAN;
    if (rbar <= 0) return 0.0;
    if (rbar >= 1) return INFINITY;
    /* A_D is increasing from 0 to 1; bracket the root and bisect on log(kappa). */
    double lo = 1e-10, hi = fmax(10.0, 2.0 * (double)d / (1.0 - rbar));
    while (mmcr_vmf_mean_cos(d, hi) < rbar && hi < 1e300) hi *= 4.0;
    if (mmcr_vmf_mean_cos(d, lo) > rbar) return lo;
    for (int it = 0; it < 200; it++) {
        const double mid = sqrt(lo * hi);
        if (mmcr_vmf_mean_cos(d, mid) < rbar)
            lo = mid;
        else
            hi = mid;
        if (hi - lo <= 1e-13 * hi) break;
    }
    return sqrt(lo * hi);
}

/* Continued fraction of I_x(a, b) (DLMF 8.17.22) by the modified Lentz method; converges fast
 * for x < (a + 1) / (a + b + 2). */
static double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1.0, dd = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(dd) < tiny) dd = tiny;
    dd = 1.0 / dd;
    double h = dd;
    for (int m = 1; m <= 10000; m++) {
        const double m2 = 2.0 * m;
        double coef = (double)m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        dd = 1.0 + coef * dd;
        if (fabs(dd) < tiny) dd = tiny;
        c = 1.0 + coef / c;
        if (fabs(c) < tiny) c = tiny;
        dd = 1.0 / dd;
        h *= dd * c;
        coef = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        dd = 1.0 + coef * dd;
        if (fabs(dd) < tiny) dd = tiny;
        c = 1.0 + coef / c;
        if (fabs(c) < tiny) c = tiny;
        dd = 1.0 / dd;
        const double del = dd * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-16) break;
    }
    return h;
}

double mmcr_log_beta_inc(double a, double b, double x) {
    if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1)) return NAN;
    if (x == 0) return -INFINITY;
    if (x == 1) return 0.0;
    const double lbeta = lgamma(a) + lgamma(b) - lgamma(a + b);
    if (x < (a + 1.0) / (a + b + 2.0)) {
        const double lpre = a * log(x) + b * log1p(-x) - lbeta - log(a);
        return lpre + log(beta_cf(a, b, x));
    }
    /* Symmetry: I_x(a, b) = 1 - I_{1-x}(b, a); here the value is not small. */
    const double lpre = b * log1p(-x) + a * log(x) - lbeta - log(b);
    const double other = exp(lpre) * beta_cf(b, a, 1.0 - x);
    return log1p(-other);
}

double mmcr_sphere_log_cap(int d, double theta) {
    if (d < 2 || !(theta >= 0) || !(theta <= PI)) return NAN;
    if (theta == 0) return -INFINITY;
    if (d == 2) return log(theta / PI);
    /* Cap fraction = I_{sin^2 theta}((D-1)/2, 1/2) / 2 below pi/2, 1 minus that above. */
    const double s = sin(theta), s2 = s * s;
    const double a = 0.5 * (double)(d - 1);
    const double lhalf = mmcr_log_beta_inc(a, 0.5, s2) + log(0.5);
    if (theta <= 0.5 * PI) return lhalf;
    return log1p(-exp(lhalf));
}

double mmcr_uniformity_uniform(int d) {
    if (d < 2) return NAN;
    const double nu = 0.5 * (double)d - 1.0;
    return -4.0 + lgamma(nu + 1.0) - nu * log(2.0) + mmcr_log_bessel_i(nu, 4.0);
}

/* Inserts value v (with index j) into the descending top-k list (vals, idx) of length k. */
static void topk_insert(double *vals, int *idx, int k, double v, int j) {
    if (v <= vals[k - 1]) return;
    int i = k - 1;
    while (i > 0 && vals[i - 1] < v) {
        vals[i] = vals[i - 1];
        idx[i] = idx[i - 1];
        i--;
    }
    vals[i] = v;
    idx[i] = j;
}

mmcr_status mmcr_sphere_knn_entropy(const double *z, int n, int d, int k, double *entropy, double *unif,
                                    long *n_dup, mmcr_err *err) {
    if (k < 1 || n <= k || d < 2)
        return mmcr_err_set(err, MMCR_ERR_ARG, "kNN entropy needs k >= 1, more than k points and D >= 2 (k=%d, n=%d, D=%d)",
                            k, n, d);
    enum { BLOCK = 128 };
    const int nb = n < BLOCK ? n : BLOCK;
    double *gram = malloc(sizeof(double) * (size_t)nb * (size_t)n);
    double *topv = malloc(sizeof(double) * (size_t)k);
    int *topi = malloc(sizeof(int) * (size_t)k);
    if (!gram || !topv || !topi) {
        free(gram), free(topv), free(topi);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the %d x %d similarity block", nb, n);
    }
    double sum_logf = 0, sum_exp = 0;
    long dup = 0;
    for (int r0 = 0; r0 < n; r0 += BLOCK) {
        const int rows = n - r0 < BLOCK ? n - r0 : BLOCK;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, d, 1.0, z + (size_t)r0 * d, d, z, d, 0.0, gram,
                    n);
        for (int i = 0; i < rows; i++) {
            const int gi = r0 + i;
            const double *g = gram + (size_t)i * n;
            for (int t = 0; t < k; t++) topv[t] = -INFINITY, topi[t] = -1;
            for (int j = 0; j < n; j++) {
                if (j == gi) continue;
                sum_exp += exp(4.0 * g[j] - 4.0);
                topk_insert(topv, topi, k, g[j], j);
            }
            /* The angle from the exact difference: 2 - 2 dot cancels for close points. */
            const double *a = z + (size_t)gi * d, *b = z + (size_t)topi[k - 1] * d;
            double c2 = 0;
            for (int t = 0; t < d; t++) c2 += (a[t] - b[t]) * (a[t] - b[t]);
            const double chord = sqrt(c2);
            if (chord == 0) {
                dup++;
                continue;
            }
            const double theta = 2.0 * asin(fmin(1.0, 0.5 * chord));
            sum_logf += mmcr_sphere_log_cap(d, theta);
        }
    }
    free(gram), free(topv), free(topi);
    if (entropy) {
        if (dup > 0)
            *entropy = -INFINITY;
        else
            *entropy = mmcr_sphere_log_area(d) + gsl_sf_psi_int(n) - gsl_sf_psi_int(k) + sum_logf / (double)n;
    }
    if (unif) *unif = log(sum_exp / ((double)n * (double)(n - 1)));
    if (n_dup) *n_dup = dup;
    return MMCR_OK;
}
