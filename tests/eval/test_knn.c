/* Weighted kNN: a hand-made case with a known answer (including the weighting), k = 1 as the
 * nearest neighbour, k larger than the bank, chunk-size independence, ties, and errors. */
#include "mmcr/eval.h"
#include "test_util.h"

#include <math.h>
#include <string.h>

static void fill_normal(mmcr_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)mmcr_rng_normal(r);
}

static int32_t predict_one(const float *bank, const int32_t *yb, int nb, const float *t, int nc, int k, double temp,
                           mmcr_err *err) {
    int32_t p = -1;
    mmcr_status st = mmcr_knn_predict(bank, yb, nb, t, 1, 2, nc, k, temp, 0, &p, err);
    return st == MMCR_OK ? p : -100 - (int32_t)st;
}

static void hand_made(void) {
    /* Test point at angle 0. Class 1: one bank row at angle 0.1 (sim 0.995). Class 0: two rows at
     * +-1 rad (sim 0.540). Class 2: three rows at angle pi (sim -1). Bank rows have arbitrary
     * lengths: only directions matter. */
    const float t[2] = {3.0f, 0.0f};
    float bank[6 * 2];
    const double ang[6] = {0.1, 1.0, -1.0, 3.14159265358979, 3.14159265358979, 3.14159265358979};
    const double len[6] = {2.0, 0.5, 7.0, 1.0, 3.0, 0.25};
    const int32_t yb[6] = {1, 0, 0, 2, 2, 2};
    for (int i = 0; i < 6; i++) {
        bank[2 * i] = (float)(len[i] * cos(ang[i]));
        bank[2 * i + 1] = (float)(len[i] * sin(ang[i]));
    }
    mmcr_err err;
    /* Small T: the single close neighbour of class 1 outweighs the two far ones of class 0:
     * e^(0.995/0.05) = e^19.9 vs 2 e^(0.540/0.05) = 2 e^10.8. */
    CHECK(predict_one(bank, yb, 6, t, 3, 3, 0.05, &err) == 1);
    /* Large T: almost a plain vote, 2 e^0.054 = 2.11 vs e^0.0995 = 1.10 -> class 0. */
    CHECK(predict_one(bank, yb, 6, t, 3, 3, 10.0, &err) == 0);
    /* k = 1 is the nearest neighbour whatever T is. */
    CHECK(predict_one(bank, yb, 6, t, 3, 1, 10.0, &err) == 1);
    /* All 6 neighbours, T = 10: three votes e^-0.1 = 2.71 for class 2 beat 2.11 and 1.10. */
    CHECK(predict_one(bank, yb, 6, t, 3, 6, 10.0, &err) == 2);
    /* k > bank size behaves as k = bank size. */
    CHECK(predict_one(bank, yb, 6, t, 3, 200, 10.0, &err) == 2);
    /* T = 0.5 (the default): e^1.99 = 7.3 (class 1) > 2 e^1.08 = 5.9 > 3 e^-2 = 0.41. */
    CHECK(predict_one(bank, yb, 6, t, 3, 200, 0.5, &err) == 1);
    /* Very small T must not overflow: weights are relative to the best neighbour. */
    CHECK(predict_one(bank, yb, 6, t, 3, 6, 1e-4, &err) == 1);

    /* Accuracy through mmcr_knn on the same bank: two test points. */
    const float tt[4] = {1.0f, 0.0f, -1.0f, 0.01f};
    const int32_t yt[2] = {1, 2};
    double top1 = -1;
    CHECK(mmcr_knn(bank, yb, 6, tt, yt, 2, 2, 3, 3, 0.05, &top1, &err) == MMCR_OK);
    CHECK_CLOSE(top1, 1.0, 0, 0);
    const int32_t yt2[2] = {0, 2};
    CHECK(mmcr_knn(bank, yb, 6, tt, yt2, 2, 2, 3, 3, 0.05, &top1, &err) == MMCR_OK);
    CHECK_CLOSE(top1, 0.5, 0, 0);

    /* Exact tie between classes 3 and 1 (mirror images): the smaller class index wins. */
    const float tie_bank[4] = {(float)cos(0.5), (float)sin(0.5), (float)cos(0.5), (float)-sin(0.5)};
    const int32_t tie_y[2] = {3, 1};
    const float t1[2] = {1.0f, 0.0f};
    CHECK(predict_one(tie_bank, tie_y, 2, t1, 4, 2, 0.5, &err) == 1);
    const int32_t tie_y2[2] = {1, 3};
    CHECK(predict_one(tie_bank, tie_y2, 2, t1, 4, 2, 0.5, &err) == 1);
}

enum { NB = 600, NT = 300, D = 16, NC = 5 };

static void random_cases(void) {
    static float bank[NB * D], test[NT * D];
    static int32_t yb[NB], yt[NT], pred[NT], pred2[NT];
    mmcr_rng r;
    mmcr_rng_seed(&r, 3, 0, 0, 0);
    fill_normal(&r, bank, (size_t)NB * D);
    fill_normal(&r, test, (size_t)NT * D);
    for (int i = 0; i < NB; i++) yb[i] = (int32_t)mmcr_rng_below(&r, NC);
    for (int i = 0; i < NT; i++) yt[i] = (int32_t)mmcr_rng_below(&r, NC);
    mmcr_err err;

    /* k = 1 equals the nearest neighbour by cosine (reference in double). */
    CHECK(mmcr_knn_predict(bank, yb, NB, test, NT, D, NC, 1, 0.5, 0, pred, &err) == MMCR_OK);
    int wrong = 0;
    for (int i = 0; i < NT; i++) {
        double best = -2, second = -2;
        int arg = -1;
        for (int j = 0; j < NB; j++) {
            double dot = 0, na = 0, nb = 0;
            for (int c = 0; c < D; c++) {
                dot += (double)test[i * D + c] * bank[j * D + c];
                na += (double)test[i * D + c] * test[i * D + c];
                nb += (double)bank[j * D + c] * bank[j * D + c];
            }
            double s = dot / sqrt(na * nb);
            if (s > best) {
                second = best;
                best = s;
                arg = j;
            } else if (s > second) {
                second = s;
            }
        }
        /* Only near-ties (below float resolution) may legitimately differ. */
        if (pred[i] != yb[arg] && best - second > 1e-5) wrong++;
    }
    CHECK_MSG(wrong == 0, "%d rows differ from the nearest neighbour", wrong);

    /* Chunking does not change any prediction. */
    CHECK(mmcr_knn_predict(bank, yb, NB, test, NT, D, NC, 20, 0.1, NT, pred, &err) == MMCR_OK);
    const int chunks[4] = {1, 7, 64, 0};
    for (int c = 0; c < 4; c++) {
        CHECK(mmcr_knn_predict(bank, yb, NB, test, NT, D, NC, 20, 0.1, chunks[c], pred2, &err) == MMCR_OK);
        CHECK_MSG(memcmp(pred, pred2, sizeof pred) == 0, "chunk %d differs", chunks[c]);
    }

    /* k beyond the bank equals k = bank size. */
    CHECK(mmcr_knn_predict(bank, yb, 50, test, NT, D, NC, 50, 0.5, 0, pred, &err) == MMCR_OK);
    CHECK(mmcr_knn_predict(bank, yb, 50, test, NT, D, NC, 5000, 0.5, 0, pred2, &err) == MMCR_OK);
    CHECK(memcmp(pred, pred2, sizeof pred) == 0);

    /* Permuting the test labels changes the accuracy, never the predictions: the accuracy is
     * exactly the agreement of the (label-free) predictions with whichever labels are given. */
    CHECK(mmcr_knn_predict(bank, yb, NB, test, NT, D, NC, 200, 0.5, 0, pred, &err) == MMCR_OK);
    static int32_t yperm[NT];
    memcpy(yperm, yt, sizeof yt);
    for (int i = NT - 1; i > 0; i--) {
        int j = (int)mmcr_rng_below(&r, (uint64_t)i + 1);
        int32_t t = yperm[i];
        yperm[i] = yperm[j];
        yperm[j] = t;
    }
    double a1 = -1, a2 = -1;
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 200, 0.5, &a1, &err) == MMCR_OK);
    CHECK(mmcr_knn(bank, yb, NB, test, yperm, NT, D, NC, 200, 0.5, &a2, &err) == MMCR_OK);
    int h1 = 0, h2 = 0;
    for (int i = 0; i < NT; i++) {
        h1 += pred[i] == yt[i];
        h2 += pred[i] == yperm[i];
    }
    CHECK_CLOSE(a1, (double)h1 / NT, 0, 0);
    CHECK_CLOSE(a2, (double)h2 / NT, 0, 0);
    CHECK(h1 != h2);

    /* The bank scored against itself with k = 1 is perfect. */
    CHECK(mmcr_knn(bank, yb, NB, bank, yb, NB, D, NC, 1, 0.5, &a1, &err) == MMCR_OK);
    CHECK_CLOSE(a1, 1.0, 0, 0);

    /* Separated clusters: high accuracy. Means well apart, unit noise. */
    static float means[NC * D];
    fill_normal(&r, means, (size_t)NC * D);
    for (int i = 0; i < NC * D; i++) means[i] *= 4.0f;
    for (int i = 0; i < NB; i++)
        for (int c = 0; c < D; c++) bank[i * D + c] = means[yb[i] * D + c] + (float)mmcr_rng_normal(&r);
    for (int i = 0; i < NT; i++)
        for (int c = 0; c < D; c++) test[i * D + c] = means[yt[i] * D + c] + (float)mmcr_rng_normal(&r);
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 200, 0.5, &a1, &err) == MMCR_OK);
    CHECK_MSG(a1 > 0.95, "cluster accuracy %.3f", a1);

    /* Errors. */
    float keep = test[4 * D + 3];
    test[4 * D + 3] = NAN;
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 10, 0.5, &a1, &err) == MMCR_ERR_NONFINITE);
    CHECK_MSG(strstr(err.msg, "test row 4") != NULL, "message: %s", err.msg);
    test[4 * D + 3] = keep;
    bank[7 * D] = INFINITY;
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 10, 0.5, &a1, &err) == MMCR_ERR_NONFINITE);
    CHECK_MSG(strstr(err.msg, "bank row 7") != NULL, "message: %s", err.msg);
    bank[7 * D] = 0;
    yb[9] = NC;
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 10, 0.5, &a1, &err) == MMCR_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "row 9") != NULL, "message: %s", err.msg);
    yb[9] = 0;
    yt[2] = -1;
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 10, 0.5, &a1, &err) == MMCR_ERR_ARG);
    yt[2] = 0;
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 0, 0.5, &a1, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 10, 0.0, &a1, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 10, NAN, &a1, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, 0, NC, 10, 0.5, &a1, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_knn(bank, yb, NB, test, yt, NT, D, NC, 10, 0.5, &a1, &err) == MMCR_OK);
}

int main(void) {
    hand_made();
    random_cases();
    return test_finish("eval_knn");
}
