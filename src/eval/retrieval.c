/* Image-text evaluation on held-out pairs: cross-modal recall@k, zero-shot classification
 * with one text prompt per class, the modality gap and the PPE of the centroid matrix. All on
 * L2-normalised rows (max(||y||, 1e-12), as the losses) and cosine similarity. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/linalg.h"
#include "mmcr/multimodal.h"

#define NORM_EPS 1e-12

/* Normalised double copy of n x d rows; NULL on allocation failure, *bad = first non-finite row. */
static double *normalised(const float *x, int n, int d, long *bad) {
    *bad = -1;
    double *z = malloc(sizeof(double) * (size_t)(n ? n : 1) * (size_t)d);
    if (!z) return NULL;
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)r[j] * (double)r[j];
        if (!isfinite(s) && *bad < 0) *bad = i;
        double inv = 1.0 / fmax(sqrt(s), NORM_EPS);
        for (int j = 0; j < d; j++) z[(size_t)i * (size_t)d + (size_t)j] = (double)r[j] * inv;
    }
    return z;
}

static mmcr_status check_args(int n, int d, mmcr_err *err) {
    if (n < 1 || d < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "evaluation needs n >= 1 and d >= 1 (n %d, d %d)", n, d);
    return MMCR_OK;
}

/* Both operands normalised; err names which side is not finite. */
static mmcr_status norm_pair(const float *img, const float *txt, int n, int d, double **zi, double **zt,
                             mmcr_err *err) {
    long bi, bt;
    *zi = normalised(img, n, d, &bi);
    *zt = normalised(txt, n, d, &bt);
    mmcr_status st = MMCR_OK;
    if (!*zi || !*zt) st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for %d x %d embeddings", n, d);
    else if (bi >= 0) st = mmcr_err_set(err, MMCR_ERR_NONFINITE, "row %ld of the image embeddings is not finite", bi);
    else if (bt >= 0) st = mmcr_err_set(err, MMCR_ERR_NONFINITE, "row %ld of the text embeddings is not finite", bt);
    if (st != MMCR_OK) {
        free(*zi);
        free(*zt);
        *zi = *zt = NULL;
    }
    return st;
}

mmcr_status mmcr_retrieval_recall(const float *img, const float *txt, int n, int d, const int *ks, int nk,
                                  double *i2t, double *t2i, mmcr_err *err) {
    mmcr_status st = check_args(n, d, err);
    if (st != MMCR_OK) return st;
    for (int q = 0; q < nk; q++)
        if (ks[q] < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "recall@k needs k >= 1 (got %d)", ks[q]);
    double *zi, *zt;
    st = norm_pair(img, txt, n, d, &zi, &zt, err);
    if (st != MMCR_OK) return st;
    double *s = malloc(sizeof(double) * (size_t)n * (size_t)n);
    long *rank_i = malloc(sizeof(long) * (size_t)n), *rank_t = malloc(sizeof(long) * (size_t)n);
    if (!s || !rank_i || !rank_t) {
        free(zi);
        free(zt);
        free(s);
        free(rank_i);
        free(rank_t);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the %d x %d similarity matrix", n, n);
    }
    /* s_ij = <image i, text j> */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0, zi, d, zt, d, 0.0, s, n);
    for (int i = 0; i < n; i++) {
        const double p = s[(size_t)i * (size_t)n + (size_t)i];
        long ri = 0, rt = 0;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            ri += s[(size_t)i * (size_t)n + (size_t)j] >= p; /* texts competing for image i */
            rt += s[(size_t)j * (size_t)n + (size_t)i] >= p; /* images competing for text i */
        }
        rank_i[i] = ri;
        rank_t[i] = rt;
    }
    for (int q = 0; q < nk; q++) {
        long hi = 0, ht = 0;
        for (int i = 0; i < n; i++) {
            hi += rank_i[i] < ks[q];
            ht += rank_t[i] < ks[q];
        }
        if (i2t) i2t[q] = (double)hi / n;
        if (t2i) t2i[q] = (double)ht / n;
    }
    free(zi);
    free(zt);
    free(s);
    free(rank_i);
    free(rank_t);
    return MMCR_OK;
}

mmcr_status mmcr_zero_shot(const float *img, const int32_t *labels, int n, const float *class_emb, int num_classes,
                           int d, int32_t *pred, double *per_class, double *overall, mmcr_err *err) {
    mmcr_status st = check_args(n, d, err);
    if (st != MMCR_OK) return st;
    if (num_classes < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "zero-shot needs at least one class");
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= num_classes)
            return mmcr_err_set(err, MMCR_ERR_ARG, "label %d of image %d is outside [0, %d)", (int)labels[i], i,
                                num_classes);
    long bi, bc;
    double *zi = normalised(img, n, d, &bi), *zc = normalised(class_emb, num_classes, d, &bc);
    long *hit = calloc((size_t)num_classes, sizeof(long)), *cnt = calloc((size_t)num_classes, sizeof(long));
    if (!zi || !zc || !hit || !cnt) st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for zero-shot evaluation");
    else if (bi >= 0) st = mmcr_err_set(err, MMCR_ERR_NONFINITE, "row %ld of the image embeddings is not finite", bi);
    else if (bc >= 0) st = mmcr_err_set(err, MMCR_ERR_NONFINITE, "the prompt embedding of class %ld is not finite", bc);
    if (st == MMCR_OK) {
        long correct = 0;
        for (int i = 0; i < n; i++) {
            int best = 0;
            double bs = -INFINITY;
            for (int c = 0; c < num_classes; c++) {
                double v = 0;
                for (int k = 0; k < d; k++) v += zi[(size_t)i * (size_t)d + (size_t)k] * zc[(size_t)c * (size_t)d + (size_t)k];
                if (v > bs) {
                    bs = v;
                    best = c;
                }
            }
            if (pred) pred[i] = best;
            cnt[labels[i]]++;
            if (best == labels[i]) {
                hit[labels[i]]++;
                correct++;
            }
        }
        if (per_class)
            for (int c = 0; c < num_classes; c++) per_class[c] = cnt[c] ? (double)hit[c] / (double)cnt[c] : NAN;
        if (overall) *overall = (double)correct / n;
    }
    free(zi);
    free(zc);
    free(hit);
    free(cnt);
    return st;
}

mmcr_status mmcr_modality_gap(const float *img, const float *txt, int n, int d, double *gap, mmcr_err *err) {
    mmcr_status st = check_args(n, d, err);
    if (st != MMCR_OK) return st;
    double *zi, *zt;
    st = norm_pair(img, txt, n, d, &zi, &zt, err);
    if (st != MMCR_OK) return st;
    double s2 = 0;
    for (int k = 0; k < d; k++) {
        double m = 0;
        for (int i = 0; i < n; i++) m += zi[(size_t)i * (size_t)d + (size_t)k] - zt[(size_t)i * (size_t)d + (size_t)k];
        m /= n;
        s2 += m * m;
    }
    *gap = sqrt(s2);
    free(zi);
    free(zt);
    return MMCR_OK;
}

mmcr_status mmcr_multimodal_ppe(const float *img, const float *txt, int n, int d, double *ppe, double *nuclear,
                                mmcr_err *err) {
    mmcr_status st = check_args(n, d, err);
    if (st != MMCR_OK) return st;
    double *zi, *zt;
    st = norm_pair(img, txt, n, d, &zi, &zt, err);
    if (st != MMCR_OK) return st;
    /* Centroids overwrite the image rows. */
    for (size_t k = 0; k < (size_t)n * (size_t)d; k++) zi[k] = 0.5 * (zi[k] + zt[k]);
    double *ws = malloc(sizeof(double) * mmcr_nuclear_ws_size(n, d));
    double nuc = 0;
    if (!ws) st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the nuclear norm of a %d x %d matrix", n, d);
    else st = mmcr_nuclear_norm(zi, n, d, &nuc, NULL, ws);
    if (st != MMCR_OK && ws) mmcr_err_set(err, st, "nuclear norm of the %d x %d centroid matrix failed", n, d);
    if (st == MMCR_OK) {
        double bound = sqrt((double)n * (double)(n < d ? n : d));
        if (ppe) *ppe = (bound - nuc) / bound;
        if (nuclear) *nuclear = nuc;
    }
    free(ws);
    free(zi);
    free(zt);
    return st;
}
