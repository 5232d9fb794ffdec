/* The MMCR objective (paper-notes.md §1.2-1.5, §3).
 *
 * Layout: raw embeddings y are (P*K) x D row-major, datum-major: rows n*K .. n*K+K-1 are the K
 * views of datum n. Each row is normalised (divide by max(||y||, 1e-12)), the K views of datum
 * n are averaged into the centroid mu_n, the P x D centroid matrix M gives
 *   global = ||M||_*,  local = (1/P) sum_n ||Z_n||_*  (skipped when lambda == 0),
 *   loss = lambda * local - global  (exactly -global when lambda == 0),
 *   bound = sqrt(P * min(P, D)),  ppe = (bound - global) / bound.
 * The decomposition always runs in double, whatever the input precision. The gradient is the
 * polar factor (never singular vectors), minimum-norm at rank-deficient points. */
#ifndef MMCR_LOSS_H
#define MMCR_LOSS_H

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mmcr_loss_result {
    int P, K, D;
    double lambda;
    double global_nuclear_norm;
    double local_term; /* mean_n ||Z_n||_* (unweighted, as the original code's diagnostic and
                        * the reference fixtures report it; loss adds lambda * local_term);
                        * 0 when lambda == 0, because the local solves are skipped */
    double loss;
    double bound;
    double ppe;
    double mean_centroid_norm2; /* mean_n ||mu_n||^2 */
    long zero_rows;             /* rows with ||y|| < 1e-12 (pitfalls.md entry 19) */
    long local_eig_solves;      /* per-datum eigensolves done (0 when lambda == 0) */
    long first_bad_row;         /* on MMCR_ERR_NONFINITE: first row with NaN/Inf, else -1 */
    long nonfinite_rows;        /* on MMCR_ERR_NONFINITE: how many rows have NaN/Inf */
    int global_rank;            /* singular directions of M above the threshold; below
                                 * min(P, D) the subgradient is not unique and the minimum-norm
                                 * one is returned */
} mmcr_loss_result;

/* Workspace sized once for (P, K, D); forward saves what backward needs. */
typedef struct mmcr_loss mmcr_loss;
mmcr_status mmcr_loss_create(mmcr_loss **out, int P, int K, int D, double lambda, mmcr_err *err);
void mmcr_loss_destroy(mmcr_loss **l);
size_t mmcr_loss_workspace_bytes(const mmcr_loss *l);
/* The workspace is (docs/loss.md, "Workspace"), in doubles, plus alignment padding:
 *   P*K*D + P*K + 2*P*D + P + nuclear_ws(P, D) + T * (nuclear_ws(K, D) + K*D)
 * with T the threads available at create. The P*K*D term holds the normalised views and then,
 * in place, the gradient; the rest is O(P*D + min(P,D)^2 + T*K*D) and never a full set of
 * singular vectors. At P=256, K=16, D=512 the part beyond the views is about 5.1 MiB plus
 * 0.14 MiB per thread. */
/* Forward computes the gradient too (default on); turn it off for evaluation-only use, after
 * which backward must not be called until a forward with it on. */
void mmcr_loss_set_compute_grad(mmcr_loss *l, int on);

/* Forward on float32 or float64 embeddings. On non-finite input returns MMCR_ERR_NONFINITE,
 * sets res->first_bad_row and err ("row R of the embeddings is not finite"). */
mmcr_status mmcr_loss_forward_f32(mmcr_loss *l, const float *y, mmcr_loss_result *res, mmcr_err *err);
mmcr_status mmcr_loss_forward_f64(mmcr_loss *l, const double *y, mmcr_loss_result *res, mmcr_err *err);
/* dLoss/dy for the last forward, written (not accumulated) into dy, (P*K) x D. */
void mmcr_loss_backward_f32(const mmcr_loss *l, float *dy);
void mmcr_loss_backward_f64(const mmcr_loss *l, double *dy);

#ifdef __cplusplus
}
#endif
#endif
