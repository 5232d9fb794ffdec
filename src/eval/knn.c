/* Weighted kNN on cosine similarity (Wu et al. 2018; the original MMCR monitor: k = 200,
 * T = 0.5): the k most similar bank rows vote exp(sim / T) for their class. */
#include "mmcr/eval.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* Bound on the similarity block (floats) when the caller lets us choose the chunk size. */
#define KNN_BLOCK_FLOATS ((size_t)1 << 24)
#define KNN_MAX_CHUNK 1024

static mmcr_status check_rows(const float *x, int n, int d, const char *what, mmcr_err *err) {
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        for (int j = 0; j < d; j++)
            if (!isfinite(r[j]))
                return mmcr_err_set(err, MMCR_ERR_NONFINITE,
                                    "knn: %s row %d has a non-finite value in column %d", what, i, j);
    }
    return MMCR_OK;
}

static mmcr_status check_labels(const int32_t *y, int n, int num_classes, const char *what,
                                mmcr_err *err) {
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= num_classes)
            return mmcr_err_set(err, MMCR_ERR_ARG, "knn: %s label %d of row %d is outside [0, %d)",
                                what, (int)y[i], i, num_classes);
    return MMCR_OK;
}

/* Copy with every row scaled to unit L2 norm (norm clamped at 1e-12, so zero rows stay zero). */
static void normalise_rows(const float *x, int n, int d, float *out) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        float *o = out + (size_t)i * (size_t)d;
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)r[j] * r[j];
        double nrm = sqrt(s);
        float inv = (float)(1.0 / (nrm > 1e-12 ? nrm : 1e-12));
        for (int j = 0; j < d; j++) o[j] = r[j] * inv;
    }
}

/* Neighbour order: higher similarity first, ties to the smaller bank index, so the selected
 * set is unique whatever the scan order. */
static inline int better(float sa, int ia, float sb, int ib) {
    return sa > sb || (sa == sb && ia < ib);
}

/* Min-heap on `better`: the root is the worst of the kept neighbours. */
static void heap_sift_down(float *hs, int *hi, int m, int pos) {
    for (;;) {
        int l = 2 * pos + 1, r = l + 1, w = pos;
        if (l < m && better(hs[w], hi[w], hs[l], hi[l])) w = l;
        if (r < m && better(hs[w], hi[w], hs[r], hi[r])) w = r;
        if (w == pos) return;
        float ts = hs[pos]; hs[pos] = hs[w]; hs[w] = ts;
        int ti = hi[pos]; hi[pos] = hi[w]; hi[w] = ti;
        pos = w;
    }
}

/* Partial selection of the k best entries of one similarity row: O(n log k). */
static void select_top_k(const float *sim, int n, int k, float *hs, int *hi) {
    for (int j = 0; j < k; j++) {
        hs[j] = sim[j];
        hi[j] = j;
    }
    for (int p = k / 2 - 1; p >= 0; p--) heap_sift_down(hs, hi, k, p);
    for (int j = k; j < n; j++) {
        if (better(sim[j], j, hs[0], hi[0])) {
            hs[0] = sim[j];
            hi[0] = j;
            heap_sift_down(hs, hi, k, 0);
        }
    }
}

mmcr_status mmcr_knn_predict(const float *x_bank, const int32_t *y_bank, int n_bank,
                             const float *x_test, int n_test, int d, int num_classes, int k,
                             double temperature, int chunk_rows, int32_t *pred, mmcr_err *err) {
    if (!x_bank || !y_bank || !x_test || !pred)
        return mmcr_err_set(err, MMCR_ERR_ARG, "knn: feature, label and prediction arrays must not be NULL");
    if (n_bank < 1 || n_test < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "knn: need at least one bank and one test row (got %d, %d)",
                            n_bank, n_test);
    if (d < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "knn: feature dimension d = %d, need >= 1", d);
    if (num_classes < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "knn: num_classes = %d, need >= 1", num_classes);
    if (k < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "knn: k = %d, need >= 1", k);
    if (!(temperature > 0) || !isfinite(temperature))
        return mmcr_err_set(err, MMCR_ERR_ARG, "knn: temperature = %g, need a finite value > 0", temperature);
    mmcr_status st;
    if ((st = check_labels(y_bank, n_bank, num_classes, "bank", err))) return st;
    if ((st = check_rows(x_bank, n_bank, d, "bank", err))) return st;
    if ((st = check_rows(x_test, n_test, d, "test", err))) return st;
    if (k > n_bank) k = n_bank;

    int chunk = chunk_rows;
    if (chunk <= 0) {
        size_t c = KNN_BLOCK_FLOATS / (size_t)n_bank;
        chunk = c < 1 ? 1 : c > KNN_MAX_CHUNK ? KNN_MAX_CHUNK : (int)c;
    }
    if (chunk > n_test) chunk = n_test;

    int nt = omp_get_max_threads();
    float *bank = mmcr_alloc_or_err(sizeof(float) * (size_t)n_bank * (size_t)d, err, "knn bank copy");
    float *test = mmcr_alloc_or_err(sizeof(float) * (size_t)n_test * (size_t)d, err, "knn test copy");
    float *sim = mmcr_alloc_or_err(sizeof(float) * (size_t)chunk * (size_t)n_bank, err, "knn similarities");
    float *hs = mmcr_alloc_or_err(sizeof(float) * (size_t)nt * (size_t)k, err, "knn heaps");
    int *hi = mmcr_alloc_or_err(sizeof(int) * (size_t)nt * (size_t)k, err, "knn heaps");
    double *vote = mmcr_alloc_or_err(sizeof(double) * (size_t)nt * (size_t)num_classes, err, "knn votes");
    if (!bank || !test || !sim || !hs || !hi || !vote) {
        st = MMCR_ERR_NOMEM;
        goto done;
    }
    normalise_rows(x_bank, n_bank, d, bank);
    normalise_rows(x_test, n_test, d, test);
    const double inv_t = 1.0 / temperature;

    for (int r0 = 0; r0 < n_test; r0 += chunk) {
        int m = n_test - r0 < chunk ? n_test - r0 : chunk;
        /* sim (m x n_bank) = test rows (m x d) * bank^T (d x n_bank) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n_bank, d, 1.0f,
                    test + (size_t)r0 * (size_t)d, d, bank, d, 0.0f, sim, n_bank);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < m; i++) {
            int t = omp_get_thread_num();
            float *my_s = hs + (size_t)t * (size_t)k;
            int *my_i = hi + (size_t)t * (size_t)k;
            double *my_v = vote + (size_t)t * (size_t)num_classes;
            select_top_k(sim + (size_t)i * (size_t)n_bank, n_bank, k, my_s, my_i);
            /* exp((s - s_max) / T): the same argmax as exp(s / T), without overflow for small T. */
            float smax = my_s[0];
            for (int j = 1; j < k; j++)
                if (my_s[j] > smax) smax = my_s[j];
            memset(my_v, 0, sizeof(double) * (size_t)num_classes);
            for (int j = 0; j < k; j++)
                my_v[y_bank[my_i[j]]] += exp(((double)my_s[j] - (double)smax) * inv_t);
            int best = 0;
            for (int c = 1; c < num_classes; c++)
                if (my_v[c] > my_v[best]) best = c; /* strict: ties go to the smaller class */
            pred[r0 + i] = best;
        }
    }
    st = MMCR_OK;
done:
    mmcr_free(bank);
    mmcr_free(test);
    mmcr_free(sim);
    mmcr_free(hs);
    mmcr_free(hi);
    mmcr_free(vote);
    return st;
}

mmcr_status mmcr_knn(const float *x_bank, const int32_t *y_bank, int n_bank, const float *x_test,
                     const int32_t *y_test, int n_test, int d, int num_classes, int k,
                     double temperature, double *top1, mmcr_err *err) {
    if (!y_test || !top1) return mmcr_err_set(err, MMCR_ERR_ARG, "knn: y_test and top1 must not be NULL");
    if (n_test < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "knn: need at least one test row (got %d)", n_test);
    mmcr_status st;
    if (num_classes >= 1 && (st = check_labels(y_test, n_test, num_classes, "test", err))) return st;
    int32_t *pred = mmcr_alloc_or_err(sizeof(int32_t) * (size_t)n_test, err, "knn predictions");
    if (!pred) return MMCR_ERR_NOMEM;
    st = mmcr_knn_predict(x_bank, y_bank, n_bank, x_test, n_test, d, num_classes, k, temperature, 0,
                          pred, err);
    if (st == MMCR_OK) {
        int64_t hit = 0;
        for (int i = 0; i < n_test; i++) hit += pred[i] == y_test[i];
        *top1 = (double)hit / (double)n_test;
    }
    mmcr_free(pred);
    return st;
}
