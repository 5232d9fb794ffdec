/* Compute scaling law PPE(C) = E + a * (C / c_ref)^(-alpha) (paper-notes.md §4, form (b)) by
 * nonlinear least squares with GSL's trust-region solver (Levenberg-Marquardt steps), several
 * starting points, and parameter uncertainties from the covariance of the linearised fit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit_nlinear.h>

#include "mmcr/analysis.h"

typedef struct fit_data {
    const double *x, *y; /* x = C / c_ref */
    size_t n;
    int fixed;
    double floor;
} fit_data;

/* Parameters: (E, a, alpha), or (a, alpha) with E = floor. */
static void unpack(const gsl_vector *p, const fit_data *d, double *e, double *a, double *alpha) {
    if (d->fixed) {
        *e = d->floor;
        *a = gsl_vector_get(p, 0);
        *alpha = gsl_vector_get(p, 1);
    } else {
        *e = gsl_vector_get(p, 0);
        *a = gsl_vector_get(p, 1);
        *alpha = gsl_vector_get(p, 2);
    }
}

static int resid_f(const gsl_vector *p, void *vd, gsl_vector *f) {
    const fit_data *d = vd;
    double e, a, alpha;
    unpack(p, d, &e, &a, &alpha);
    for (size_t i = 0; i < d->n; i++) gsl_vector_set(f, i, e + a * pow(d->x[i], -alpha) - d->y[i]);
    return GSL_SUCCESS;
}

static int resid_df(const gsl_vector *p, void *vd, gsl_matrix *j) {
    const fit_data *d = vd;
    double e, a, alpha;
    unpack(p, d, &e, &a, &alpha);
    for (size_t i = 0; i < d->n; i++) {
        const double xp = pow(d->x[i], -alpha);
        size_t c = 0;
        if (!d->fixed) gsl_matrix_set(j, i, c++, 1.0);
        gsl_matrix_set(j, i, c++, xp);
        gsl_matrix_set(j, i, c, -a * xp * log(d->x[i]));
    }
    return GSL_SUCCESS;
}

typedef struct trial {
    int ok;
    double chi2;
    double p[3], cov[3][3];
    int iterations;
} trial;

static void run_start(const fit_data *d, const double *start, trial *t) {
    const size_t np = d->fixed ? 2 : 3;
    t->ok = 0;
    gsl_multifit_nlinear_fdf fdf = {0};
    fdf.f = resid_f;
    fdf.df = resid_df;
    fdf.n = d->n;
    fdf.p = np;
    fdf.params = (void *)d;
    gsl_multifit_nlinear_parameters par = gsl_multifit_nlinear_default_parameters();
    par.trs = gsl_multifit_nlinear_trs_lm;
    gsl_multifit_nlinear_workspace *w = gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &par, d->n, np);
    gsl_matrix *cov = gsl_matrix_alloc(np, np);
    if (!w || !cov) {
        if (w) gsl_multifit_nlinear_free(w);
        if (cov) gsl_matrix_free(cov);
        return;
    }
    double x0[3];
    memcpy(x0, start, sizeof(double) * np);
    gsl_vector_view xv = gsl_vector_view_array(x0, np);
    int info = 0;
    int rc = gsl_multifit_nlinear_init(&xv.vector, &fdf, w);
    if (rc == GSL_SUCCESS) rc = gsl_multifit_nlinear_driver(500, 1e-12, 1e-12, 0.0, NULL, NULL, &info, w);
    if (rc == GSL_SUCCESS) {
        const gsl_vector *pos = gsl_multifit_nlinear_position(w);
        const gsl_vector *res = gsl_multifit_nlinear_residual(w);
        double chi2;
        gsl_blas_ddot(res, res, &chi2);
        gsl_multifit_nlinear_covar(gsl_multifit_nlinear_jac(w), 0.0, cov);
        int finite = isfinite(chi2);
        for (size_t i = 0; i < np; i++) {
            t->p[i] = gsl_vector_get(pos, i);
            finite &= isfinite(t->p[i]);
            for (size_t k = 0; k < np; k++) t->cov[i][k] = gsl_matrix_get(cov, i, k);
        }
        t->ok = finite;
        t->chi2 = chi2;
        t->iterations = (int)gsl_multifit_nlinear_niter(w);
    }
    gsl_matrix_free(cov);
    gsl_multifit_nlinear_free(w);
}

mmcr_status mmcr_scaling_fit_power(const double *c, const double *ppe, int n, double floor, mmcr_scaling_fit *fit,
                                   mmcr_err *err) {
    memset(fit, 0, sizeof *fit);
    const int fixed = isfinite(floor);
    const int np = fixed ? 2 : 3;
    if (n < np)
        return mmcr_err_set(err, MMCR_ERR_ARG, "scaling fit: %d points for %d parameters", n, np);
    double lsum = 0, ymin = INFINITY;
    for (int i = 0; i < n; i++) {
        if (!(c[i] > 0) || !isfinite(c[i]) || !isfinite(ppe[i]))
            return mmcr_err_set(err, MMCR_ERR_ARG, "scaling fit: point %d has C = %g, PPE = %g (need C > 0 and finite)",
                                i, c[i], ppe[i]);
        lsum += log(c[i]);
        ymin = fmin(ymin, ppe[i]);
    }
    double *x = malloc(sizeof(double) * (size_t)n);
    if (!x) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    const double c_ref = exp(lsum / n);
    for (int i = 0; i < n; i++) x[i] = c[i] / c_ref;
    fit_data d = {x, ppe, (size_t)n, fixed, floor};

    /* Starts: floors below the smallest PPE; a and alpha from a log-log line through y - E. */
    const double fracs[] = {0.0, 0.5, 0.8, 0.95, 0.99};
    trial best = {0};
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    for (size_t s = 0; s < sizeof fracs / sizeof fracs[0]; s++) {
        const double e0 = fixed ? floor : fracs[s] * ymin;
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        int m = 0;
        for (int i = 0; i < n; i++) {
            const double r = ppe[i] - e0;
            if (!(r > 0)) continue;
            const double lx = log(x[i]), ly = log(r);
            sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly, m++;
        }
        double slope = -0.3, icpt = log(fmax(ymin - e0, 1e-6));
        if (m >= 2 && sxx * m - sx * sx > 0) {
            slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
            icpt = (sy - slope * sx) / m;
        }
        double alpha0 = -slope > 0.01 ? -slope : 0.1;
        double start[3];
        int k = 0;
        if (!fixed) start[k++] = e0;
        start[k++] = exp(icpt);
        start[k] = alpha0;
        trial t;
        run_start(&d, start, &t);
        if (t.ok && (!best.ok || t.chi2 < best.chi2)) best = t;
        if (fixed) break; /* one start is enough: the problem is nearly linear */
    }
    gsl_set_error_handler(old);
    free(x);
    if (!best.ok) return mmcr_err_set(err, MMCR_ERR_NUMERIC, "scaling fit: no starting point converged (%d points)", n);

    fit->n = n;
    fit->dof = n - np;
    fit->fixed_floor = fixed;
    fit->c_ref = c_ref;
    fit->iterations = best.iterations;
    const double scale = fit->dof > 0 ? best.chi2 / fit->dof : NAN;
    double se[3];
    for (int i = 0; i < np; i++) se[i] = sqrt(best.cov[i][i] * scale);
    if (fixed) {
        fit->e = floor, fit->e_se = 0;
        fit->a = best.p[0], fit->alpha = best.p[1];
        fit->a_se = se[0], fit->alpha_se = se[1];
    } else {
        fit->e = best.p[0], fit->a = best.p[1], fit->alpha = best.p[2];
        fit->e_se = se[0], fit->a_se = se[1], fit->alpha_se = se[2];
    }
    fit->a_raw = fit->a * pow(c_ref, fit->alpha);
    fit->rms = sqrt(best.chi2 / n);
    return MMCR_OK;
}

double mmcr_scaling_predict(const mmcr_scaling_fit *fit, double c) {
    return fit->e + fit->a * pow(c / fit->c_ref, -fit->alpha);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

mmcr_status mmcr_scaling_holdout(const double *c, const double *ppe, int n, int n_holdout, double floor,
                                 mmcr_scaling_fit *fit, double *held_c, double *pred, double *meas, double *relerr,
                                 mmcr_err *err) {
    if (n < 1 || n_holdout < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "held-out check needs points and n_holdout >= 1");
    double *u = malloc(sizeof(double) * (size_t)n);
    double *fc = malloc(sizeof(double) * (size_t)n), *fy = malloc(sizeof(double) * (size_t)n);
    if (!u || !fc || !fy) {
        free(u), free(fc), free(fy);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    }
    memcpy(u, c, sizeof(double) * (size_t)n);
    qsort(u, (size_t)n, sizeof(double), cmp_double);
    int nu = 0;
    for (int i = 0; i < n; i++)
        if (nu == 0 || u[i] != u[nu - 1]) u[nu++] = u[i];
    mmcr_status st = MMCR_OK;
    if (nu <= n_holdout) {
        st = mmcr_err_set(err, MMCR_ERR_ARG, "held-out check: %d distinct C values, %d held out", nu, n_holdout);
        goto out;
    }
    const double cut = u[nu - n_holdout];
    int m = 0;
    for (int i = 0; i < n; i++)
        if (c[i] < cut) fc[m] = c[i], fy[m] = ppe[i], m++;
    st = mmcr_scaling_fit_power(fc, fy, m, floor, fit, err);
    if (st != MMCR_OK) goto out;
    for (int h = 0; h < n_holdout; h++) {
        const double ch = u[nu - n_holdout + h];
        double s = 0;
        int cnt = 0;
        for (int i = 0; i < n; i++)
            if (c[i] == ch) s += ppe[i], cnt++;
        const double mv = s / cnt, pv = mmcr_scaling_predict(fit, ch);
        if (held_c) held_c[h] = ch;
        if (pred) pred[h] = pv;
        if (meas) meas[h] = mv;
        if (relerr) relerr[h] = (pv - mv) / mv;
    }
out:
    free(u), free(fc), free(fy);
    return st;
}
