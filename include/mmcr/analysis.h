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
 * quadrature does not reach its tolerance. GSL's process-wide error handler is switched off
 * during the call and restored, so do not call this concurrently with other GSL users. */
mmcr_status mmcr_mp_moment(double gamma, double s, double *value, mmcr_err *err);
/* m(gamma) = E[sqrt(lambda)]; m(1) = 8 / (3 pi),
 * m(gamma) = 1 - gamma/8 - gamma^2/64 - 5 gamma^3/1024 - 35 gamma^4/16384 + O(gamma^5). */
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
    /* The same two predictions at finite P, D: the asymptotic value plus the O(1/min(P,D)) mean
     * shift of the linear spectral statistic sum sqrt(lambda) (mmcr_mp_finite_size_shift; derivation
     * in docs/theory.md). This is what a Monte Carlo mean at these P, D estimates. */
    double ppe_aligned_finite, ppe_init_finite;
} mmcr_theory_pred;

/* Finite-size mean shift c(y, beta) of sum_i sqrt(lambda_i) for a D x D sample covariance
 * S = (1/P) G^T G of P isotropic samples (rows of G) in dimension D, y = D / P:
 * E sum sqrt(lambda_i(S)) = D * integral sqrt(x) dF_y(x) + c(y, beta) + o(1), with the real-case
 * CLT mean of Bai & Silverstein (2004) and its fourth-moment term (Pan & Zhou 2008):
 * c = (f(a) + f(b)) / 4 - (1/2pi) int_0^pi f(x(t)) dt + (beta/pi) int_0^pi f(x(t)) cos 2t dt,
 * f = sqrt, x(t) = 1 + y + 2 sqrt(y) cos t, a, b = (1 -+ sqrt y)^2. beta = Var(|g|^2)/D - 2 of a
 * row g scaled to identity covariance: 0 Gaussian, -2 uniform on the sphere, -2/K for the mean of
 * K independent unit vectors. MMCR_ERR_ARG for y <= 0 or non-finite input. */
mmcr_status mmcr_mp_finite_size_shift(double y, double beta, double *c, mmcr_err *err);

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

/* ======================================================================================
 * Geometry of embeddings, scaling-law fits and report figures (mmcr geometry / sweep /
 * report; docs/analyses.md). Paper-notes.md §1.5, §2.5-2.7, §4.
 * ====================================================================================== */

/* ---- Marchenko-Pastur distribution function and quantiles (gamma in (0, 1], unit mean) ---- */

/* P(lambda <= x): 0 below a, 1 above b. NaN for gamma outside (0, 1]. Composite Gauss-Legendre
 * after the substitution of mmcr_mp_moment, graded towards the lower edge (absolute error
 * below 1e-12). */
double mmcr_mp_cdf(double gamma, double x);
/* The x with P(lambda <= x) = q, q in [0, 1] (bisection to 1e-14 of the support). NaN for
 * arguments out of range. */
double mmcr_mp_quantile(double gamma, double q);

/* ---- the sphere S^{D-1}, von Mises-Fisher law, entropy ---- */

/* log I_nu(x) for nu >= 0, x >= 0 (-inf at x = 0 < nu): GSL's scaled Bessel function (or the
 * power series where that underflows) for nu < 20, the uniform (Debye) asymptotic expansion to
 * u_5 for nu >= 20 (relative error of I below 1e-9), so it neither overflows nor underflows for
 * any D and kappa. */
double mmcr_log_bessel_i(double nu, double x);
/* log |S^{D-1}| = log(2 pi^{D/2} / Gamma(D/2)), the surface area of the unit sphere in R^D. */
double mmcr_sphere_log_area(int d);
/* log C_D(kappa), the vMF normaliser: q(z) = C_D(kappa) exp(kappa mu.z) on S^{D-1} (surface
 * measure); kappa = 0 gives -log |S^{D-1}|. */
double mmcr_vmf_log_norm(int d, double kappa);
/* A_D(kappa) = I_{D/2}(kappa) / I_{D/2-1}(kappa) = E[mu.z] under vMF(kappa). */
double mmcr_vmf_mean_cos(int d, double kappa);
/* Maximum-likelihood kappa for a mean cosine rbar = E[z1.z2] (solves A_D(kappa) = rbar):
 * 0 for rbar <= 0, +inf for rbar >= 1. */
double mmcr_vmf_kappa_ml(int d, double rbar);
/* log of the regularised incomplete beta function I_x(a, b) (continued fraction with the
 * prefactor in logs, so it does not underflow for large a). */
double mmcr_log_beta_inc(double a, double b, double x);
/* log of the fraction of S^{D-1} inside a cap of angular radius theta in [0, pi]. */
double mmcr_sphere_log_cap(int d, double theta);

/* Kozachenko-Leonenko k-nearest-neighbour estimate of the differential entropy (nats, w.r.t.
 * the surface measure) of n i.i.d. unit vectors z (n x d row-major, rows must have unit norm):
 *   H = log|S^{D-1}| + psi(n) - psi(k) + (1/n) sum_i log F(theta_i),
 * theta_i the angle from z_i to its k-th nearest other point and F the cap fraction. It is
 * unbiased for the uniform law (log F(theta_k) of a uniform point is log Beta(k, n-k)).
 * Points at distance 0 from their k-th neighbour make H = -inf; *n_dup counts them (may be NULL).
 * Also returns (unif may be NULL) the Wang-Isola uniformity log mean_{i != j} exp(-2||z_i - z_j||^2).
 * MMCR_ERR_ARG for n <= k, k < 1, d < 2. */
mmcr_status mmcr_sphere_knn_entropy(const double *z, int n, int d, int k, double *entropy, double *unif,
                                    long *n_dup, mmcr_err *err);
/* log E exp(-2||x - y||^2) for x, y independent and uniform on S^{D-1}:
 * -4 + log Gamma(D/2) - (D/2 - 1) log 2 + log I_{D/2-1}(4). */
double mmcr_uniformity_uniform(int d);

/* ---- geometry of a model's embeddings over several batches (mmcr geometry) ---- */

typedef struct mmcr_geometry mmcr_geometry;

typedef struct mmcr_geometry_result {
    int p, k, d, batches;
    long n_data;                 /* batches * P */
    /* the centroid matrix and its PPE (§1.5) */
    double bound, gamma, m_gamma;
    double ppe_mean, ppe_se;     /* over batches (se: sample std / sqrt(batches); NaN for 1 batch) */
    double nuclear_mean;
    double ppe_predicted;        /* 1 - sqrt(centroid_norm2_mean) m(gamma) (§2.6) */
    /* centroid norms ||mu_n|| over every datum */
    double centroid_norm2_mean, centroid_norm2_std;
    double centroid_norm_min, centroid_norm_q25, centroid_norm_median, centroid_norm_q75, centroid_norm_max;
    const double *centroid_norms; /* n_data values (owned by the accumulator) */
    /* alignment (Wang & Isola) over the K(K-1)/2 view pairs of each datum; NaN for K = 1 */
    double align;                /* E||z_k - z_l||^2 */
    double mean_cos;             /* E z_k.z_l */
    /* uniformity log E_{x != y} exp(-2||z_x - z_y||^2), over pairs of distinct data:
     * unif_views on view 0 of each datum, unif_centroids on the centroid directions mu/||mu|| */
    double unif_views, unif_centroids, unif_uniform; /* the last: the value of the uniform law */
    /* MI lower bound (§2.7): vMF reconstruction + kNN entropy of view 0, in nats */
    double vmf_kappa;            /* ML fit of kappa to mean_cos */
    double reconstruction;       /* log C_D(kappa) + kappa * mean_cos */
    int entropy_k;
    double entropy, entropy_uniform, entropy_gap; /* KL estimate, log|S^{D-1}|, their difference */
    long entropy_duplicates;
    double mi_lower_bound;       /* reconstruction + entropy */
    /* singular values of the centroid matrix: mean over batches of the sorted values, and the
     * Marchenko-Pastur prediction sv_scale * sqrt(Q_gamma(1 - (i + 1/2)/r)) with
     * sv_scale = sqrt(centroid_norm2_mean * max(P,D) / D) (docs/analyses.md) */
    int rank;                    /* r = min(P, D) */
    const double *sv_mean, *sv_mp; /* r values each, descending (owned by the accumulator) */
    double sv_scale;
    double cond_mean;            /* mean over batches of sigma_max / sigma_min */
    double cond_mp;              /* (1 + sqrt(gamma)) / (1 - sqrt(gamma)); +inf at P = D */
} mmcr_geometry_result;

/* Accumulates up to max_batches batches of P x K embeddings in dimension D (D >= 2). */
mmcr_status mmcr_geometry_create(mmcr_geometry **g, int p, int k, int d, int max_batches, mmcr_err *err);
void mmcr_geometry_destroy(mmcr_geometry **g);
/* One batch of raw embeddings y ((P*K) x D, datum-major as the loss takes them); rows are
 * normalised here. MMCR_ERR_NONFINITE on NaN/Inf, MMCR_ERR_ARG past max_batches or on a zero row. */
mmcr_status mmcr_geometry_add_batch(mmcr_geometry *g, const float *y, mmcr_err *err);
/* Statistics of the batches added so far (at least one). entropy_k >= 1 must be below the
 * number of data. Pointers in res stay valid until the accumulator is destroyed. */
mmcr_status mmcr_geometry_finish(mmcr_geometry *g, int entropy_k, mmcr_geometry_result *res, mmcr_err *err);

/* ---- scaling law PPE(C) = E + a * C^(-alpha) (§4), GSL trust-region least squares ---- */

typedef struct mmcr_scaling_fit {
    int n, dof;                  /* points used; n - free parameters */
    int fixed_floor;             /* E was held fixed */
    double c_ref;                /* the fit uses x = C / c_ref (c_ref: geometric mean of the C used) */
    double e, a, alpha;          /* PPE = e + a * (C / c_ref)^(-alpha) */
    double e_se, a_se, alpha_se; /* from the covariance (J^T J)^-1 scaled by chi2/dof; NaN when dof = 0 */
    double a_raw;                /* a * c_ref^alpha: PPE = e + a_raw * C^(-alpha) */
    double rms;                  /* root mean squared residual */
    int iterations;
} mmcr_scaling_fit;

/* Least-squares fit over n points (C > 0, finite PPE). floor: a finite value holds E fixed at
 * it, NaN fits E. Several starting points; the best converged one is kept. MMCR_ERR_ARG for too
 * few points (3 with a free floor, 2 with a fixed one) or bad values, MMCR_ERR_NUMERIC when no
 * start converges. */
mmcr_status mmcr_scaling_fit_power(const double *c, const double *ppe, int n, double floor, mmcr_scaling_fit *fit,
                                   mmcr_err *err);
double mmcr_scaling_predict(const mmcr_scaling_fit *fit, double c);

/* Held-out check: the points at the n_holdout largest distinct C are left out, the law is fitted
 * on the rest, and for each held-out C (ascending) the prediction, the mean measured PPE and the
 * relative error (pred - meas) / meas are written to pred, meas, relerr (n_holdout entries,
 * any may be NULL); held_c gets those C values. */
mmcr_status mmcr_scaling_holdout(const double *c, const double *ppe, int n, int n_holdout, double floor,
                                 mmcr_scaling_fit *fit, double *held_c, double *pred, double *meas, double *relerr,
                                 mmcr_err *err);

/* ---- figures and summaries of a training run or a sweep directory (mmcr report) ---- */

typedef struct mmcr_report_options {
    const char *out_dir;   /* where PNGs and JSON go; NULL: DIR/report */
    int holdout;           /* scaling fits: largest distinct C values held out (default 2; 0 = none) */
    const char *fit_by;    /* grouping axes for the fits, comma-separated subset of P,D,K,width,seed
                            * (NULL: "P,D,K,width": every axis except steps; seeds are pooled) */
    int fit_floor_mp;      /* 1: hold E at the random-matrix floor 1 - sqrt(c) m(gamma) */
} mmcr_report_options;

typedef struct mmcr_report_summary {
    int kind;                      /* 1: training run, 2: sweep */
    int figures;                   /* PNG files written */
    /* sweep: PPE ridge check over each full P x D table (same K, steps, width) */
    int tables, rows_checked, rows_peak_diag, cols_checked, cols_peak_diag;
    int fits;                      /* scaling fits made */
    double max_holdout_relerr;     /* largest |relative error| of the held-out predictions (NaN: none) */
} mmcr_report_summary;

/* DIR holding metrics.jsonl (a training run) or results.jsonl (a sweep). Writes PNGs, and for
 * a sweep ridge.json (tables and the row/column peak check) and fits.jsonl; lists what it wrote
 * through the logger. */
mmcr_status mmcr_report(const char *dir, const mmcr_report_options *opt, const mmcr_logger *log,
                        mmcr_report_summary *sum, mmcr_err *err);

#ifdef __cplusplus
}
#endif
#endif
