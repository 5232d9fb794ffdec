/* Analyses of the papers' claims. This part: the random-matrix predictions for the nuclear
 * norm of a P x D matrix of i.i.d. isotropic rows (paper-notes.md §1.5, §2.3, §2.6).
 *
 *   bound B(P,D) = sqrt(P * min(P,D))                     (Proposition 2.3)
 *   gamma        = min(P,D) / max(P,D)
 *   m(gamma)     = E[sqrt(lambda)], lambda ~ Marchenko-Pastur(gamma), unit mean
 *   PPE          ~ 1 - sqrt(c) * m(gamma),   c = E||mu_n||^2 (c = 1: aligned, c = 1/K: random init)
 *
 * The predictions are asymptotic (P, D -> infinity at fixed gamma); the Monte Carlo sampler
 * measures the finite-size value. */
#ifndef MMCR_ANALYSIS_H
#define MMCR_ANALYSIS_H

#include <stdint.h>

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Marchenko-Pastur law with ratio gamma in (0, 1] and unit mean ---- */

/* Support [a, b] = [(1 - sqrt(gamma))^2, (1 + sqrt(gamma))^2]. */
void mmcr_mp_support(double gamma, double *a, double *b);
/* Density sqrt((b-x)(x-a)) / (2 pi gamma x) on (a, b), 0 outside; NaN for gamma outside (0, 1]. */
double mmcr_mp_density(double gamma, double x);
/* E[lambda^s] for s >= 0 by adaptive Gauss-Kronrod quadrature after x = a + (b-a)(1-cos t)/2,
 * which removes the square-root endpoint behaviour (relative accuracy ~1e-13).
 * s = 0 gives the total mass (1), s = 1 the mean (1), s = 2 gives 1 + gamma.
 * MMCR_ERR_ARG for gamma outside (0, 1] or s < 0 / non-finite; MMCR_ERR_NUMERIC if the
 * quadrature does not reach its tolerance. */
mmcr_status mmcr_mp_moment(double gamma, double s, double *value, mmcr_err *err);
/* m(gamma) = E[sqrt(lambda)]; m(1) = 8 / (3 pi), m(gamma) = 1 - gamma/8 - gamma^2/64 + O(gamma^3). */
mmcr_status mmcr_mp_m(double gamma, double *m, mmcr_err *err);
/* The same quantity from its closed form in complete elliptic integrals (an independent
 * check of the quadrature; loses ~log10(1/sqrt(gamma)) digits for small gamma):
 * m = beta * ((alpha^2 + beta^2) E(k) - 2 alpha^2 K(k)) / (3 pi gamma),
 * alpha = 1 - sqrt(gamma), beta = 1 + sqrt(gamma), k^2 = 1 - alpha^2 / beta^2. */
mmcr_status mmcr_mp_m_elliptic(double gamma, double *m, mmcr_err *err);

/* ---- predictions for a P x D centroid matrix ---- */

/* B(P,D) = sqrt(P * min(P,D)) (0 when P or D < 1). */
double mmcr_ppe_bound(int64_t p, int64_t d);
/* min(P,D) / max(P,D) (0 when P or D < 1). */
double mmcr_ppe_gamma(int64_t p, int64_t d);

typedef struct mmcr_theory_pred {
    int64_t p, d, k;
    double bound;         /* sqrt(P * min(P,D)) */
    double gamma;         /* min / max */
    double m_gamma;       /* E sqrt(lambda) under MP(gamma) */
    double ppe_aligned;   /* 1 - m: views identical, rows uniform on the sphere */
    double ppe_init;      /* 1 - m / sqrt(K): each centroid the mean of K independent unit vectors */
    double ppe_predicted; /* 1 - sqrt(centroid_norm2) * m; NaN when no centroid norm was given */
} mmcr_theory_pred;

/* centroid_norm2: E||mu_n||^2 in [0, 1], or a negative value for "not given".
 * MMCR_ERR_ARG for P, D, K < 1 or centroid_norm2 > 1 / non-finite. */
mmcr_status mmcr_theory_predict(int64_t p, int64_t d, int64_t k, double centroid_norm2,
                                mmcr_theory_pred *out, mmcr_err *err);

/* ---- Monte Carlo at finite P, D ---- */

typedef struct mmcr_theory_mc {
    int n_samples;
    double ppe_mean, ppe_se;           /* rows uniform on the sphere (aligned views) */
    double ppe_init_mean, ppe_init_se; /* rows = mean of K independent unit vectors */
} mmcr_theory_mc;

/* n_samples >= 2 independent matrices for each estimate; se = sample std / sqrt(n).
 * The draws for (seed, P, D, sample, row, view) come from their own RNG stream, so the result
 * does not depend on the thread count, and the aligned estimate does not depend on K.
 * Uses the OpenMP threads set with mmcr_set_threads. P, D, K must fit in an int. */
mmcr_status mmcr_theory_monte_carlo(int64_t p, int64_t d, int64_t k, int n_samples, uint64_t seed,
                                    mmcr_theory_mc *out, mmcr_err *err);

#ifdef __cplusplus
}
#endif
#endif
