/* Random-matrix predictions for the nuclear norm of uniform embeddings (paper-notes.md §2.6)
 * and a Monte Carlo sampler that measures the same quantities at finite P, D. */
#include "mmcr/analysis.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_sf_ellint.h>
#include <limits.h>
#include <math.h>
#include <omp.h>

#include "mmcr/linalg.h"

#define PI 3.14159265358979323846

static int gamma_ok(double gamma) { return isfinite(gamma) && gamma > 0.0 && gamma <= 1.0; }

void mmcr_mp_support(double gamma, double *a, double *b) {
    double r = sqrt(gamma);
    *a = (1.0 - r) * (1.0 - r);
    *b = (1.0 + r) * (1.0 + r);
}

double mmcr_mp_density(double gamma, double x) {
    if (!gamma_ok(gamma) || !isfinite(x)) return NAN;
    double a, b;
    mmcr_mp_support(gamma, &a, &b);
    if (x <= a || x >= b || x <= 0.0) return 0.0;
    return sqrt((b - x) * (x - a)) / (2.0 * PI * gamma * x);
}

/* After x = a + (b-a) sin^2(t/2) (the same as (1-cos t)/2, written without cancellation near
 * t = 0), the factor sqrt((b-x)(x-a)) dx becomes ((b-a)/2)^2 sin^2 t dt = 4 gamma sin^2 t dt, so
 *   E[x^s] = (2/pi) * integral_0^pi sin^2(t) x(t)^(s-1) dt,
 * a smooth integrand even at gamma = 1 (where a = 0 and x^(s-1) sin^2 t ~ t^(2s)). */
typedef struct mp_params {
    double a, w, s;
} mp_params;

static double mp_integrand(double t, void *vp) {
    const mp_params *p = vp;
    double h = sin(0.5 * t);
    double x = p->a + p->w * h * h;
    double st = sin(t);
    if (x <= 0.0) return 0.0; /* t = 0 at gamma = 1: the limit of sin^2 t * x^(s-1) for s > 0 */
    double xs = p->s == 0.5 ? 1.0 / sqrt(x) : pow(x, p->s - 1.0);
    return st * st * xs;
}

/* GSL reports failures through a process-wide handler that aborts by default; the library must
 * return a status instead, so the handler is switched off around each call and restored. */
mmcr_status mmcr_mp_moment(double gamma, double s, double *value, mmcr_err *err) {
    if (!gamma_ok(gamma))
        return mmcr_err_set(err, MMCR_ERR_ARG, "Marchenko-Pastur ratio gamma = %g is outside (0, 1]", gamma);
    if (!isfinite(s) || s < 0.0)
        return mmcr_err_set(err, MMCR_ERR_ARG, "Marchenko-Pastur moment order s = %g must be finite and >= 0", s);
    double a, b;
    mmcr_mp_support(gamma, &a, &b);
    if (a == 0.0 && s == 0.0) {
        /* gamma = 1, s = 0: the integrand is cos^2(t/2) (0/0 at t = 0), whose integral is pi/2. */
        *value = 1.0;
        return MMCR_OK;
    }
    mp_params par = {a, b - a, s};
    gsl_function f = {mp_integrand, &par};
    enum { LIMIT = 200 };
    gsl_integration_workspace *w = gsl_integration_workspace_alloc(LIMIT);
    if (!w) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the quadrature workspace");
    double result = 0.0, abserr = 0.0;
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    /* qags: 21-point Gauss-Kronrod with extrapolation, robust to the t^(2s) endpoint behaviour. */
    int rc = gsl_integration_qags(&f, 0.0, PI, 0.0, 1e-13, LIMIT, w, &result, &abserr);
    gsl_set_error_handler(old);
    gsl_integration_workspace_free(w);
    /* GSL_EROUND means the requested 1e-13 was limited by rounding; accept if the estimate is
     * still tiny. */
    if (rc != GSL_SUCCESS && !(rc == GSL_EROUND && abserr <= 1e-11 * fabs(result)))
        return mmcr_err_set(err, MMCR_ERR_NUMERIC,
                            "Marchenko-Pastur quadrature (gamma = %g, s = %g) failed: %s (error estimate %g)",
                            gamma, s, gsl_strerror(rc), abserr);
    *value = (2.0 / PI) * result;
    return MMCR_OK;
}

mmcr_status mmcr_mp_m(double gamma, double *m, mmcr_err *err) { return mmcr_mp_moment(gamma, 0.5, m, err); }

typedef struct shift_params {
    double y;
    int weight_cos2t;
} shift_params;

static double shift_integrand(double t, void *vp) {
    const shift_params *p = vp;
    double x = 1.0 + p->y + 2.0 * sqrt(p->y) * cos(t);
    double f = x > 0.0 ? sqrt(x) : 0.0;
    return p->weight_cos2t ? f * cos(2.0 * t) : f;
}

mmcr_status mmcr_mp_finite_size_shift(double y, double beta, double *c, mmcr_err *err) {
    if (!isfinite(y) || y <= 0.0 || !isfinite(beta))
        return mmcr_err_set(err, MMCR_ERR_ARG, "finite-size shift: y = %g must be > 0 and beta = %g finite", y, beta);
    double val[2];
    enum { LIMIT = 200 };
    gsl_integration_workspace *w = gsl_integration_workspace_alloc(LIMIT);
    if (!w) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the quadrature workspace");
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int rc = GSL_SUCCESS;
    double abserr = 0.0;
    for (int i = 0; i < 2 && rc == GSL_SUCCESS; i++) {
        shift_params par = {y, i};
        gsl_function f = {shift_integrand, &par};
        /* Smooth on [0, pi] except a kink of sqrt at t = pi when y = 1: qags handles it. */
        rc = gsl_integration_qags(&f, 0.0, PI, 1e-14, 1e-12, LIMIT, w, &val[i], &abserr);
        if (rc == GSL_EROUND && abserr <= 1e-10) rc = GSL_SUCCESS;
    }
    gsl_set_error_handler(old);
    gsl_integration_workspace_free(w);
    if (rc != GSL_SUCCESS)
        return mmcr_err_set(err, MMCR_ERR_NUMERIC, "finite-size shift quadrature (y = %g) failed: %s", y,
                            gsl_strerror(rc));
    const double sa = fabs(1.0 - sqrt(y)), sb = 1.0 + sqrt(y); /* sqrt(a), sqrt(b) */
    *c = 0.25 * (sa + sb) - val[0] / (2.0 * PI) + beta / PI * val[1];
    return MMCR_OK;
}

mmcr_status mmcr_mp_m_elliptic(double gamma, double *m, mmcr_err *err) {
    if (!gamma_ok(gamma))
        return mmcr_err_set(err, MMCR_ERR_ARG, "Marchenko-Pastur ratio gamma = %g is outside (0, 1]", gamma);
    double r = sqrt(gamma);
    double al = 1.0 - r, be = 1.0 + r;
    if (al == 0.0) { /* K(1) diverges but is multiplied by alpha^2 = 0 */
        *m = be * be * be / (3.0 * PI * gamma);
        return MMCR_OK;
    }
    double k = 2.0 * sqrt(r) / be; /* k^2 = 1 - alpha^2/beta^2 = 4 sqrt(gamma) / beta^2 */
    gsl_sf_result ek, kk;
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int rc1 = gsl_sf_ellint_Ecomp_e(k, GSL_PREC_DOUBLE, &ek);
    int rc2 = gsl_sf_ellint_Kcomp_e(k, GSL_PREC_DOUBLE, &kk);
    gsl_set_error_handler(old);
    if (rc1 != GSL_SUCCESS || rc2 != GSL_SUCCESS)
        return mmcr_err_set(err, MMCR_ERR_NUMERIC, "complete elliptic integrals failed for k = %g", k);
    *m = be * ((al * al + be * be) * ek.val - 2.0 * al * al * kk.val) / (3.0 * PI * gamma);
    return MMCR_OK;
}

double mmcr_ppe_bound(int64_t p, int64_t d) {
    if (p < 1 || d < 1) return 0.0;
    double mn = (double)(p < d ? p : d);
    return sqrt((double)p * mn);
}

double mmcr_ppe_gamma(int64_t p, int64_t d) {
    if (p < 1 || d < 1) return 0.0;
    return p < d ? (double)p / (double)d : (double)d / (double)p;
}

mmcr_status mmcr_theory_predict(int64_t p, int64_t d, int64_t k, double centroid_norm2,
                                mmcr_theory_pred *out, mmcr_err *err) {
    if (p < 1 || d < 1 || k < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "P = %lld, D = %lld, K = %lld: all must be >= 1", (long long)p,
                            (long long)d, (long long)k);
    if (!isfinite(centroid_norm2) || centroid_norm2 > 1.0)
        return mmcr_err_set(err, MMCR_ERR_ARG,
                            "centroid squared norm %g must lie in [0, 1] (unit-norm views)", centroid_norm2);
    out->p = p;
    out->d = d;
    out->k = k;
    out->bound = mmcr_ppe_bound(p, d);
    out->gamma = mmcr_ppe_gamma(p, d);
    mmcr_status st = mmcr_mp_m(out->gamma, &out->m_gamma, err);
    if (st != MMCR_OK) return st;
    out->ppe_aligned = 1.0 - out->m_gamma;
    out->ppe_init = 1.0 - out->m_gamma / sqrt((double)k);
    out->ppe_predicted = centroid_norm2 >= 0.0 ? 1.0 - sqrt(centroid_norm2) * out->m_gamma : NAN;
    /* ||M||_* = sqrt(P / (K D)) sum sqrt(lambda(S)), S = (1/P) G^T G with G = sqrt(K D) M the rows
     * scaled to identity covariance, so a shift c of the sum moves the PPE by
     * -sqrt(P / D) c / (sqrt(K) bound). */
    const double y = (double)d / (double)p, scale = sqrt((double)p / (double)d) / out->bound;
    double c1 = 0.0, ck = 0.0;
    st = mmcr_mp_finite_size_shift(y, -2.0, &c1, err);
    if (st == MMCR_OK) st = mmcr_mp_finite_size_shift(y, -2.0 / (double)k, &ck, err);
    if (st != MMCR_OK) return st;
    out->ppe_aligned_finite = out->ppe_aligned - scale * c1;
    out->ppe_init_finite = out->ppe_init - scale * ck / sqrt((double)k);
    return MMCR_OK;
}

/* d standard normals by Marsaglia's polar method (two normals per accepted pair, no
 * trigonometry); returns their sum of squares. */
static double fill_gauss(mmcr_rng *r, double *g, int d) {
    double s2 = 0.0;
    int j = 0;
    while (j < d) {
        double u = 2.0 * mmcr_rng_uniform(r) - 1.0, v = 2.0 * mmcr_rng_uniform(r) - 1.0;
        double s = u * u + v * v;
        if (s >= 1.0 || s == 0.0) continue;
        double f = sqrt(-2.0 * log(s) / s);
        g[j] = u * f;
        s2 += g[j] * g[j];
        if (++j < d) {
            g[j] = v * f;
            s2 += g[j] * g[j];
            j++;
        }
    }
    return s2;
}

/* Row n of one sample: the mean of `views` independent unit vectors (views = 1: one unit
 * vector), each a normalised Gaussian vector. Each (sample, row, view) has its own stream;
 * `tag` separates the aligned draws (tag 0) from the K-view draws (tag 1), so the two
 * estimates are independent. scratch: d doubles (used when views > 1). */
static void fill_row(double *row, double *scratch, int d, int views, uint64_t seed, uint64_t sample, uint64_t n,
                     uint64_t tag) {
    for (int v = 0; v < views; v++) {
        mmcr_rng r;
        mmcr_rng_seed(&r, seed, sample, n, (tag << 32) | (uint64_t)v);
        double *g = views == 1 ? row : scratch;
        double s2;
        /* All zero only if every accepted u (and v) is exactly 0 (d = 1: odds 2^-53): draw again
         * from the same stream, which keeps the result deterministic. */
        do s2 = fill_gauss(&r, g, d);
        while (s2 == 0.0);
        double scale = 1.0 / (sqrt(s2) * (double)views);
        if (views == 1)
            for (int j = 0; j < d; j++) row[j] *= scale;
        else if (v == 0)
            for (int j = 0; j < d; j++) row[j] = scale * g[j];
        else
            for (int j = 0; j < d; j++) row[j] += scale * g[j];
    }
}

/* scratch: d doubles per thread that may run (views > 1). */
static void fill_matrix(double *a, double *scratch, int p, int d, int views, uint64_t seed, uint64_t sample,
                        uint64_t tag, int parallel) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int n = 0; n < p; n++) {
        double *sc = scratch + (size_t)omp_get_thread_num() * (size_t)d;
        fill_row(a + (size_t)n * (size_t)d, sc, d, views, seed, sample, (uint64_t)n, tag);
    }
}

static void mean_se(const double *x, int n, double *mean, double *se) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    double mu = s / n, v = 0.0;
    for (int i = 0; i < n; i++) v += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *se = sqrt(v / (n - 1) / n);
}

typedef struct mc_job {
    int p, d, k, n_samples;
    uint64_t seed;
    double bound;
    size_t pd, ws_n;
    double *vals; /* aligned values, then K-view values */
    int *sts;
} mc_job;

/* Job j: sample j / 2, aligned (j even) or K views (j odd); w: this worker's buffer. */
static void run_job(const mc_job *jb, int job, double *w, int parallel_rows) {
    double *a = w, *ws = a + jb->pd, *scratch = ws + jb->ws_n;
    int init = job % 2, s = job / 2;
    fill_matrix(a, scratch, jb->p, jb->d, init ? jb->k : 1, jb->seed, (uint64_t)s, (uint64_t)init, parallel_rows);
    double nuc = 0.0;
    jb->sts[job] = (int)mmcr_nuclear_norm(a, jb->p, jb->d, &nuc, NULL, ws);
    jb->vals[(size_t)init * (size_t)jb->n_samples + (size_t)s] = 1.0 - nuc / jb->bound;
}

/* The nuclear norm goes through mmcr_nuclear_norm (LAPACK dsyevd on the min-side Gram matrix
 * with a Jacobi fallback), the same routine the loss uses, so the Monte Carlo also exercises
 * the production path. */
mmcr_status mmcr_theory_monte_carlo(int64_t p, int64_t d, int64_t k, int n_samples, uint64_t seed,
                                    mmcr_theory_mc *out, mmcr_err *err) {
    if (p < 1 || d < 1 || k < 1 || p > INT_MAX || d > INT_MAX || k > INT_MAX)
        return mmcr_err_set(err, MMCR_ERR_ARG, "Monte Carlo: P = %lld, D = %lld, K = %lld must lie in [1, %d]",
                            (long long)p, (long long)d, (long long)k, INT_MAX);
    if (n_samples < 2)
        return mmcr_err_set(err, MMCR_ERR_ARG,
                            "Monte Carlo: %d samples given, at least 2 are needed for a standard error", n_samples);
    int ip = (int)p, id = (int)d, ik = (int)k;
    size_t pd = (size_t)ip * (size_t)id;
    if (pd / (size_t)ip != (size_t)id || pd > SIZE_MAX / sizeof(double) / 4)
        return mmcr_err_set(err, MMCR_ERR_ARG, "Monte Carlo: a %d x %d matrix is too large", ip, id);
    size_t ws_n = mmcr_nuclear_ws_size(ip, id);

    /* Per-sample stream seed: depends on (seed, P, D) so grid points do not share draws. */
    mmcr_rng sr;
    mmcr_rng_seed(&sr, seed, (uint64_t)p, (uint64_t)d, 0x5050455f6d63ull);
    uint64_t seed2 = mmcr_rng_u64(&sr);

    /* Samples in parallel, one per thread (LAPACK then runs single-threaded inside the region),
     * unless the matrices are large or too few: then samples in turn, rows generated in
     * parallel and LAPACK/BLAS using the threads. Either way each sample's draws come from
     * fixed streams, so the numbers do not depend on the choice. */
    int total = 2 * n_samples;
    int threads = mmcr_get_threads();
    if (threads < 1) threads = 1;
    size_t mat_bytes = (pd + ws_n) * sizeof(double);
    int by_sample = threads == 1 || (mat_bytes <= ((size_t)32 << 20) && total >= threads);
    int nw = by_sample ? (threads < total ? threads : total) : 1;
    int row_threads = by_sample ? 1 : threads;
    /* Per worker: the matrix, the nuclear-norm workspace, and row scratch for each thread
     * that fills rows. */
    size_t per = pd + ws_n + (size_t)row_threads * (size_t)id;
    double *buf = mmcr_alloc_or_err((size_t)nw * per * sizeof(double), err, "Monte Carlo matrices");
    double *vals = mmcr_alloc_or_err((size_t)total * sizeof(double), err, "Monte Carlo values");
    int *sts = mmcr_alloc_or_err((size_t)total * sizeof(int), err, "Monte Carlo statuses");
    if (!buf || !vals || !sts) {
        mmcr_free(buf);
        mmcr_free(vals);
        mmcr_free(sts);
        return MMCR_ERR_NOMEM;
    }
    mc_job jb = {ip, id, ik, n_samples, seed2, mmcr_ppe_bound(p, d), pd, ws_n, vals, sts};
    if (by_sample) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nw)
        for (int job = 0; job < total; job++) run_job(&jb, job, buf + (size_t)omp_get_thread_num() * per, 0);
    } else {
        for (int job = 0; job < total; job++) run_job(&jb, job, buf, 1);
    }
    mmcr_status st = MMCR_OK;
    for (int j = 0; j < total; j++)
        if (sts[j] != MMCR_OK) {
            st = mmcr_err_set(err, (mmcr_status)sts[j], "Monte Carlo: nuclear norm of a %d x %d sample failed: %s",
                              ip, id, mmcr_status_str((mmcr_status)sts[j]));
            break;
        }
    if (st == MMCR_OK) {
        out->n_samples = n_samples;
        mean_se(vals, n_samples, &out->ppe_mean, &out->ppe_se);
        mean_se(vals + n_samples, n_samples, &out->ppe_init_mean, &out->ppe_init_se);
    }
    mmcr_free(buf);
    mmcr_free(vals);
    mmcr_free(sts);
    return st;
}
