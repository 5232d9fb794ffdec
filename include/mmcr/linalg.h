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

#ifdef __cplusplus
}
#endif
#endif
