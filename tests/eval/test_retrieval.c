/* Retrieval metrics: recall@k against a brute-force sort-based reference, perfect and collapsed
 * embeddings, zero-shot classification, modality gap and the PPE of the centroid matrix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/multimodal.h"
#include "test_util.h"

static double cosine(const float *x, const float *y, int d) {
    double s = 0, nx = 0, ny = 0;
    for (int k = 0; k < d; k++) {
        s += (double)x[k] * y[k];
        nx += (double)x[k] * x[k];
        ny += (double)y[k] * y[k];
    }
    return s / (fmax(sqrt(nx), 1e-12) * fmax(sqrt(ny), 1e-12));
}

/* Reference: recall@k with the pessimistic tie rule, by counting per query. */
static double ref_recall(const float *q, const float *c, int n, int d, int k) {
    int hits = 0;
    for (int i = 0; i < n; i++) {
        double p = cosine(q + i * d, c + i * d, d);
        int better = 0;
        for (int j = 0; j < n; j++)
            if (j != i && cosine(q + i * d, c + j * d, d) >= p) better++;
        hits += better < k;
    }
    return (double)hits / n;
}

static void test_recall(void) {
    enum { N = 60, D = 8 };
    float img[N * D], txt[N * D];
    mmcr_rng r;
    mmcr_rng_seed(&r, 3, 0, 0, 0);
    for (int i = 0; i < N * D; i++) img[i] = (float)mmcr_rng_normal(&r);
    for (int i = 0; i < N * D; i++) txt[i] = (float)(0.6 * img[i] + mmcr_rng_normal(&r));
    int ks[3] = {1, 5, 10};
    double i2t[3], t2i[3];
    mmcr_err err = {{0}};
    CHECK(mmcr_retrieval_recall(img, txt, N, D, ks, 3, i2t, t2i, &err) == MMCR_OK);
    for (int q = 0; q < 3; q++) {
        CHECK_CLOSE(i2t[q], ref_recall(img, txt, N, D, ks[q]), 1e-12, 0);
        CHECK_CLOSE(t2i[q], ref_recall(txt, img, N, D, ks[q]), 1e-12, 0);
    }
    CHECK(i2t[0] > 0.1 && i2t[0] < 1.0 && i2t[2] >= i2t[1] && i2t[1] >= i2t[0]);
    /* Identical modalities: perfect. Scaling rows changes nothing (cosine). */
    for (int i = 0; i < N * D; i++) txt[i] = 3.0f * img[i];
    CHECK(mmcr_retrieval_recall(img, txt, N, D, ks, 3, i2t, t2i, &err) == MMCR_OK);
    CHECK(i2t[0] == 1.0 && t2i[0] == 1.0);
    /* Collapsed: every text the same -> all ties -> no query succeeds below k = n. */
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) txt[i * D + k] = (float)(k + 1);
    CHECK(mmcr_retrieval_recall(img, txt, N, D, ks, 3, i2t, t2i, &err) == MMCR_OK);
    CHECK(i2t[2] == 0.0);
    int kn = N;
    CHECK(mmcr_retrieval_recall(img, txt, N, D, &kn, 1, i2t, t2i, &err) == MMCR_OK);
    CHECK(i2t[0] == 1.0);
    /* Errors. */
    txt[5] = NAN;
    CHECK(mmcr_retrieval_recall(img, txt, N, D, ks, 3, i2t, t2i, &err) == MMCR_ERR_NONFINITE);
    CHECK(strstr(err.msg, "row 0 of the text") != NULL);
    int k0 = 0;
    CHECK(mmcr_retrieval_recall(img, img, N, D, &k0, 1, i2t, t2i, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_retrieval_recall(img, img, 0, D, ks, 1, i2t, t2i, &err) == MMCR_ERR_ARG);
}

static void test_zero_shot(void) {
    /* Three class prompts on the axes; images near their class axis; class 3 absent. */
    float cls[4 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
    float img[6 * 3] = {2, .1f, 0, .9f, .2f, .1f, 0, 3, .5f, .1f, .1f, 1, 0, 1, .2f, 1, .1f, 0};
    int32_t lab[6] = {0, 0, 1, 2, 1, 2}; /* the last image is misclassified (closest to class 0) */
    double per[4], all;
    int32_t pred[6];
    mmcr_err err = {{0}};
    CHECK(mmcr_zero_shot(img, lab, 6, cls, 4, 3, pred, per, &all, &err) == MMCR_OK);
    CHECK(pred[0] == 0 && pred[1] == 0 && pred[2] == 1 && pred[3] == 2 && pred[4] == 1 && pred[5] == 0);
    CHECK_CLOSE(all, 5.0 / 6.0, 1e-15, 0);
    CHECK(per[0] == 1.0 && per[1] == 1.0 && per[2] == 0.5 && isnan(per[3]));
    /* Ties go to the lowest class index. */
    float same[2 * 3] = {1, 0, 0, 1, 0, 0};
    int32_t l1 = 1;
    CHECK(mmcr_zero_shot(img, &l1, 1, same, 2, 3, pred, NULL, &all, &err) == MMCR_OK);
    CHECK(pred[0] == 0 && all == 0.0);
    int32_t badl = 4;
    CHECK(mmcr_zero_shot(img, &badl, 1, cls, 4, 3, NULL, NULL, &all, &err) == MMCR_ERR_ARG);
}

static void test_gap_and_ppe(void) {
    mmcr_err err = {{0}};
    /* Images all e1, texts all e2: gap = ||e1 - e2|| = sqrt 2. */
    float a[4 * 3] = {1, 0, 0, 2, 0, 0, 3, 0, 0, .5f, 0, 0}, b[4 * 3] = {0, 1, 0, 0, 4, 0, 0, 1, 0, 0, 2, 0};
    double gap;
    CHECK(mmcr_modality_gap(a, b, 4, 3, &gap, &err) == MMCR_OK);
    CHECK_CLOSE(gap, sqrt(2.0), 1e-14, 0);
    CHECK(mmcr_modality_gap(a, a, 4, 3, &gap, &err) == MMCR_OK);
    CHECK(gap == 0.0);
    /* PPE: texts equal to images, orthonormal rows (n <= d): ||M||_* = n = bound -> 0. */
    float e[3 * 4] = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0};
    double ppe, nuc;
    CHECK(mmcr_multimodal_ppe(e, e, 3, 4, &ppe, &nuc, &err) == MMCR_OK);
    CHECK_CLOSE(nuc, 3.0, 1e-10, 0);
    CHECK_CLOSE(ppe, 0.0, 1e-10, 0);
    /* Collapsed: every row the same unit vector -> ||M||_* = sqrt(n), bound sqrt(n min(n, d)). */
    CHECK(mmcr_multimodal_ppe(a, a, 4, 3, &ppe, &nuc, &err) == MMCR_OK);
    CHECK_CLOSE(nuc, 2.0, 1e-10, 0);
    CHECK_CLOSE(ppe, 1.0 - 2.0 / sqrt(4.0 * 3.0), 1e-10, 0);
    /* Opposite modalities: centroids 0 -> ppe 1. */
    float na[2 * 2] = {1, 0, 0, 1}, nb[2 * 2] = {-1, 0, 0, -1};
    CHECK(mmcr_multimodal_ppe(na, nb, 2, 2, &ppe, &nuc, &err) == MMCR_OK);
    CHECK_CLOSE(ppe, 1.0, 1e-12, 0);
    na[0] = INFINITY;
    CHECK(mmcr_multimodal_ppe(na, nb, 2, 2, &ppe, &nuc, &err) == MMCR_ERR_NONFINITE);
    CHECK(mmcr_modality_gap(na, nb, 2, 2, &gap, &err) == MMCR_ERR_NONFINITE);
}

int main(void) {
    mmcr_set_threads(1);
    test_recall();
    test_zero_shot();
    test_gap_and_ppe();
    return test_finish("test_retrieval");
}
