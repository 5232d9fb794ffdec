/* Dense linear algebra in double precision: symmetric eigensolvers, nuclear norm and polar
 * factor. The fast path is LAPACK (dsyevd) on the min(P,D)-sized Gram matrix; a cyclic Jacobi
 * eigensolver and a one-sided Jacobi SVD are the references and the fallback, because they
 * cannot fail on repeated or zero singular values (pitfalls.md, entry 7). */
#ifndef MMCR_LINALG_H
#define MMCR_LINALG_H

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Symmetric eigendecomposition of the n x n row-major matrix a (overwritten with the
 * eigenvectors as columns, i.e. a[i*n + j] = j-th eigenvector's i-th entry); eigenvalues in
 * w, ascending. ws: workspace of mmcr_sym_eig_ws_size(n) doubles. Uses LAPACKE_dsyevd and
 * falls back to Jacobi if it reports failure. */
size_t mmcr_sym_eig_ws_size(int n);
mmcr_status mmcr_sym_eig(double *a, double *w, int n, double *ws);
/* Cyclic Jacobi reference (robust, O(n^3) per sweep). */
mmcr_status mmcr_sym_eig_jacobi(double *a, double *w, int n);

/* Singular values of the m x n row-major matrix a via one-sided Jacobi (reference). s gets
 * min(m,n) values, descending. a is not modified. */
mmcr_status mmcr_svd_values_jacobi(const double *a, int m, int n, double *s);

/* Nuclear norm of the m x n row-major matrix a, and optionally (q != NULL) its polar factor
 * Q = U V^T (m x n), the minimum-norm (sub)gradient of the nuclear norm: directions whose
 * singular value is below tol * sigma_max (or absolutely tiny) contribute zero.
 * ws: mmcr_nuclear_ws_size(m, n) doubles. Returns MMCR_ERR_NONFINITE on a NaN/Inf input. */
size_t mmcr_nuclear_ws_size(int m, int n);
mmcr_status mmcr_nuclear_norm(const double *a, int m, int n, double *nuc, double *q, double *ws);

/* ---- additions: the threshold, options and diagnostics of the nuclear-norm routine ---- */

/* Default relative threshold on singular values: sqrt(2 (m + n) eps). The Gram matrix squares
 * the condition number, so its eigenvalues carry rounding noise of about sqrt(r L) eps lam_max
 * (r = min(m,n), L = max(m,n); sqrt(r L) <= (m + n) / 2); eigenvalues below 2 (m + n) eps
 * lam_max, i.e. sigma <= sqrt(2 (m + n) eps) sigma_max (about 3e-7 for 100 x 100), cannot be
 * told from zero and contribute nothing (docs/loss.md, "Numerics"). */
double mmcr_nuclear_sigma_rtol(int m, int n);

typedef struct mmcr_nuclear_opts {
    double sigma_rtol; /* <= 0: mmcr_nuclear_sigma_rtol(m, n) */
    int force_jacobi;  /* non-zero: skip LAPACK, use the Jacobi eigensolver (tests, reference) */
} mmcr_nuclear_opts;

typedef struct mmcr_nuclear_info {
    int rank;              /* directions kept (sigma > sigma_tol) */
    double sigma_max;      /* largest singular value */
    double sigma_min_kept; /* smallest kept singular value, 0 when rank == 0 */
    double sigma_tol;      /* absolute threshold actually used */
    int used_jacobi;       /* the eigensolver fell back to (or was forced to) Jacobi */
} mmcr_nuclear_info;

/* mmcr_nuclear_norm with options (NULL: defaults) and diagnostics (info may be NULL).
 * Inputs whose largest |entry| lies outside [2^-256, 2^256] are rescaled by an exact power of
 * two first (so the Gram matrix neither overflows nor underflows); results are unchanged. */
mmcr_status mmcr_nuclear_norm_ex(const double *a, int m, int n, const mmcr_nuclear_opts *opts,
                                 double *nuc, double *q, double *ws, mmcr_nuclear_info *info);

/* mmcr_sym_eig with the LAPACK path optionally skipped; *used_jacobi (may be NULL) tells
 * whether the Jacobi solver produced the result. a must hold the full symmetric matrix. */
mmcr_status mmcr_sym_eig_ex(double *a, double *w, int n, double *ws, int force_jacobi, int *used_jacobi);

#ifdef __cplusplus
}
#endif
#endif
