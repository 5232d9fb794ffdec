/* Evaluation of frozen features: multinomial logistic-regression linear probe and weighted
 * kNN on cosine similarity. Model selection only on a validation split carved from the
 * training features (pitfalls.md entry 13); the test set is touched once, at the end. */
#ifndef MMCR_EVAL_H
#define MMCR_EVAL_H

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mmcr_probe_config {
    double val_fraction;   /* held out from train for selection, default 0.1 */
    int n_l2;              /* candidate L2 strengths, tried on the validation split */
    double l2[8];          /* default {1e-6, 1e-5, 1e-4, 1e-3} */
    int epochs;            /* max epochs; the best epoch on validation is kept, default 30 */
    int batch;             /* mini-batch, default 256 */
    double lr;             /* Adam, default 1e-3 with cosine decay */
    uint64_t seed;
} mmcr_probe_config;
void mmcr_probe_config_default(mmcr_probe_config *c);

typedef struct mmcr_probe_result {
    double test_top1;      /* fraction in [0,1] */
    double test_top1_se;   /* standard error sqrt(p(1-p)/n_test) */
    double val_top1;       /* of the selected setting */
    double chosen_l2;
    int chosen_epochs;
    double *per_class_top1; /* optional (num_classes), may be NULL; caller-provided array,
                             * NaN for a class absent from the test set */
} mmcr_probe_result;

/* x_train (n_train x d), x_test (n_test x d) row-major float; features are standardised with
 * the training mean/std inside. cfg NULL: defaults. Protocol: docs/evaluation.md. */
mmcr_status mmcr_linear_probe(const float *x_train, const int32_t *y_train, int n_train,
                              const float *x_test, const int32_t *y_test, int n_test, int d,
                              int num_classes, const mmcr_probe_config *cfg,
                              const mmcr_logger *log, mmcr_probe_result *res, mmcr_err *err);

/* Weighted kNN (Wu et al. / the original code): cosine similarity of L2-normalised features,
 * top-k neighbours vote exp(sim / T) for their class. Returns test top-1 in [0,1]. */
mmcr_status mmcr_knn(const float *x_bank, const int32_t *y_bank, int n_bank,
                     const float *x_test, const int32_t *y_test, int n_test, int d,
                     int num_classes, int k, double temperature, double *top1, mmcr_err *err);

/* kNN predictions (the same rule as mmcr_knn) without labels for the test rows. Test rows are
 * scored in chunks of chunk_rows (<= 0: automatic, at most 1024 rows and about 64 MB of
 * similarities); the predictions do not depend on the chunk size. pred has n_test entries. */
mmcr_status mmcr_knn_predict(const float *x_bank, const int32_t *y_bank, int n_bank,
                             const float *x_test, int n_test, int d, int num_classes, int k,
                             double temperature, int chunk_rows, int32_t *pred, mmcr_err *err);

/* The probe's objective on already standardised features x (n x d):
 *   mean_i CE(softmax(x_i W + b), y_i) + (l2 / 2) ||W||^2      (the bias is not regularised)
 * W is d x num_classes row-major, b has num_classes entries. Writes the loss and, when non-NULL,
 * the gradients (same layouts as W and b). Exposed for gradient checks and diagnostics. */
mmcr_status mmcr_probe_objective(const float *x, const int32_t *y, int n, int d, int num_classes,
                                 const float *w, const float *b, double l2, double *loss,
                                 float *grad_w, float *grad_b, mmcr_err *err);

/* Seeded class-balanced subset: per_class indices of each class (e.g. 60 for 1 % labels).
 * idx_out holds num_classes * per_class entries; they come back sorted ascending and *n_out is
 * set to their count. A class with fewer than per_class examples is an error naming it. */
mmcr_status mmcr_subset_per_class(const int32_t *labels, int n, int num_classes, int per_class,
                                  uint64_t seed, uint32_t *idx_out, int *n_out, mmcr_err *err);

#ifdef __cplusplus
}
#endif
#endif
