/* Linear probe: accuracy on separable and on pure-noise data, standardisation invariance,
 * selection blind to the test labels (pitfalls.md entry 13), the objective's gradient against
 * finite differences, per-class accuracy, the small-label regime and input validation. */
#include "mmcr/eval.h"
#include "test_util.h"

#include <math.h>
#include <string.h>

enum { D = 20, NC = 5, NTR = 2000, NTE = 1000 };

static float xtr[NTR * D], xte[NTE * D];
static int32_t ytr[NTR], yte[NTE];

/* Gaussian clusters: class means ~ sep * N(0, I), unit isotropic noise. sep = 0: pure noise. */
static void make_clusters(uint64_t seed, double sep) {
    mmcr_rng r;
    mmcr_rng_seed(&r, seed, 0, 0, 0);
    float means[NC * D];
    for (int i = 0; i < NC * D; i++) means[i] = (float)(sep * mmcr_rng_normal(&r));
    for (int i = 0; i < NTR; i++) {
        ytr[i] = (int32_t)mmcr_rng_below(&r, NC);
        for (int j = 0; j < D; j++) xtr[i * D + j] = means[ytr[i] * D + j] + (float)mmcr_rng_normal(&r);
    }
    for (int i = 0; i < NTE; i++) {
        yte[i] = (int32_t)mmcr_rng_below(&r, NC);
        for (int j = 0; j < D; j++) xte[i * D + j] = means[yte[i] * D + j] + (float)mmcr_rng_normal(&r);
    }
}

typedef struct log_count {
    int info, total;
} log_count;

static void count_log(void *user, mmcr_log_level level, const char *msg) {
    log_count *c = user;
    c->total++;
    if (level == MMCR_LOG_INFO && strstr(msg, "linear probe")) c->info++;
}

static void separable_and_invariance(void) {
    make_clusters(1, 1.5);
    mmcr_probe_config cfg;
    mmcr_probe_config_default(&cfg);
    cfg.seed = 17;
    double per_class[NC];
    mmcr_probe_result res;
    memset(&res, 0, sizeof res);
    res.per_class_top1 = per_class;
    log_count lc = {0, 0};
    mmcr_logger lg = {count_log, &lc};
    mmcr_err err;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, &lg, &res, &err) == MMCR_OK);
    CHECK_MSG(res.test_top1 > 0.95, "test top-1 %.4f", res.test_top1);
    CHECK_MSG(res.val_top1 > 0.9, "val top-1 %.4f", res.val_top1);
    CHECK_CLOSE(res.test_top1_se, sqrt(res.test_top1 * (1 - res.test_top1) / NTE), 1e-12, 0);
    CHECK(res.chosen_epochs >= 1 && res.chosen_epochs <= cfg.epochs);
    int known = 0;
    for (int l = 0; l < cfg.n_l2; l++) known |= res.chosen_l2 == cfg.l2[l];
    CHECK(known);
    /* Per-class accuracies average (weighted by class counts) to the overall accuracy. */
    int cnt[NC] = {0};
    for (int i = 0; i < NTE; i++) cnt[yte[i]]++;
    double wsum = 0;
    for (int c = 0; c < NC; c++) {
        CHECK_MSG(per_class[c] > 0.85, "class %d: %.3f", c, per_class[c]);
        wsum += per_class[c] * cnt[c];
    }
    CHECK_CLOSE(wsum / NTE, res.test_top1, 1e-12, 0);
    /* Progress goes through the logger: one line per candidate plus header and summary. */
    CHECK_MSG(lc.info >= cfg.n_l2 + 2, "%d info lines", lc.info);

    /* Deterministic for a fixed seed. */
    mmcr_probe_result again;
    memset(&again, 0, sizeof again);
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, NULL, &again, &err) == MMCR_OK);
    CHECK(again.test_top1 == res.test_top1 && again.chosen_l2 == res.chosen_l2 &&
          again.chosen_epochs == res.chosen_epochs && again.val_top1 == res.val_top1);

    /* Standardisation: feature 0 scaled by 1000 and feature 3 by 1e-3, in train and test,
     * gives the same accuracy (up to float rounding of the standardised values). */
    static float xtr2[NTR * D], xte2[NTE * D];
    memcpy(xtr2, xtr, sizeof xtr);
    memcpy(xte2, xte, sizeof xte);
    for (int i = 0; i < NTR; i++) {
        xtr2[i * D] *= 1000.0f;
        xtr2[i * D + 3] *= 1e-3f;
    }
    for (int i = 0; i < NTE; i++) {
        xte2[i * D] *= 1000.0f;
        xte2[i * D + 3] *= 1e-3f;
    }
    mmcr_probe_result sc;
    memset(&sc, 0, sizeof sc);
    CHECK(mmcr_linear_probe(xtr2, ytr, NTR, xte2, yte, NTE, D, NC, &cfg, NULL, &sc, &err) == MMCR_OK);
    CHECK_CLOSE(sc.test_top1, res.test_top1, 0.01, 0);
    CHECK_CLOSE(sc.val_top1, res.val_top1, 0.02, 0);

    /* Selection never reads the test labels: permuting them leaves the chosen setting and the
     * validation score unchanged; only the reported test accuracy moves. */
    static int32_t yperm[NTE];
    memcpy(yperm, yte, sizeof yte);
    mmcr_rng r;
    mmcr_rng_seed(&r, 99, 0, 0, 0);
    for (int i = NTE - 1; i > 0; i--) {
        int j = (int)mmcr_rng_below(&r, (uint64_t)i + 1);
        int32_t t = yperm[i];
        yperm[i] = yperm[j];
        yperm[j] = t;
    }
    mmcr_probe_result pm;
    memset(&pm, 0, sizeof pm);
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yperm, NTE, D, NC, &cfg, NULL, &pm, &err) == MMCR_OK);
    CHECK(pm.chosen_l2 == res.chosen_l2);
    CHECK(pm.chosen_epochs == res.chosen_epochs);
    CHECK(pm.val_top1 == res.val_top1);
    CHECK_MSG(pm.test_top1 < 0.5, "permuted-label accuracy %.3f", pm.test_top1);

    /* A class absent from the test set reports NaN, the others stay finite. */
    static int32_t ysub[NTE];
    static float xsub[NTE * D];
    int ns = 0;
    for (int i = 0; i < NTE; i++)
        if (yte[i] != 4) {
            ysub[ns] = yte[i];
            memcpy(xsub + (size_t)ns * D, xte + (size_t)i * D, sizeof(float) * D);
            ns++;
        }
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xsub, ysub, ns, D, NC, &cfg, NULL, &res, &err) == MMCR_OK);
    CHECK(isnan(per_class[4]));
    for (int c = 0; c < 4; c++) CHECK(isfinite(per_class[c]));

    /* The 1 %-labels regime: 20 per class (100 rows, 10 for validation) still works. */
    uint32_t idx[NC * 20];
    int nidx = 0;
    CHECK(mmcr_subset_per_class(ytr, NTR, NC, 20, 5, idx, &nidx, &err) == MMCR_OK);
    static float xs[NC * 20 * D];
    int32_t ys[NC * 20];
    for (int i = 0; i < nidx; i++) {
        memcpy(xs + (size_t)i * D, xtr + (size_t)idx[i] * D, sizeof(float) * D);
        ys[i] = ytr[idx[i]];
    }
    mmcr_probe_result few;
    memset(&few, 0, sizeof few);
    CHECK(mmcr_linear_probe(xs, ys, nidx, xte, yte, NTE, D, NC, &cfg, NULL, &few, &err) == MMCR_OK);
    CHECK_MSG(few.test_top1 > 0.85, "1%%-regime accuracy %.3f", few.test_top1);
}

static void noise_is_chance(void) {
    make_clusters(2, 0.0);
    mmcr_probe_config cfg;
    mmcr_probe_config_default(&cfg);
    cfg.epochs = 10;
    mmcr_probe_result res;
    memset(&res, 0, sizeof res);
    mmcr_err err;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err) == MMCR_OK);
    /* Chance is 0.2; the standard error over 1000 test rows is 0.013. */
    CHECK_MSG(fabs(res.test_top1 - 0.2) < 0.06, "noise accuracy %.3f", res.test_top1);
}

static double dot_f(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Directional derivatives of the objective vs a 4-point central difference. */
static void gradient_check(void) {
    enum { N = 40, DD = 7, C = 4 };
    static float x[N * DD], w[DD * C], b[C], gw[DD * C], gb[C], uw[DD * C], ub[C], wp[DD * C], bp[C];
    int32_t y[N];
    mmcr_rng r;
    mmcr_rng_seed(&r, 5, 0, 0, 0);
    for (int i = 0; i < N * DD; i++) x[i] = (float)mmcr_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = (int32_t)mmcr_rng_below(&r, C);
    for (int i = 0; i < DD * C; i++) w[i] = (float)(0.5 * mmcr_rng_normal(&r));
    for (int i = 0; i < C; i++) b[i] = (float)(0.5 * mmcr_rng_normal(&r));
    mmcr_err err;
    const double l2s[2] = {0.0, 0.3};
    for (int li = 0; li < 2; li++) {
        double l2 = l2s[li], f0;
        CHECK(mmcr_probe_objective(x, y, N, DD, C, w, b, l2, &f0, gw, gb, &err) == MMCR_OK);
        CHECK(isfinite(f0) && f0 > 0);
        for (int dir = 0; dir < 6; dir++) {
            /* dir 0: weights only, dir 1: bias only, others: both. */
            for (int i = 0; i < DD * C; i++) uw[i] = dir == 1 ? 0.0f : (float)mmcr_rng_normal(&r);
            for (int i = 0; i < C; i++) ub[i] = dir == 0 ? 0.0f : (float)mmcr_rng_normal(&r);
            double analytic = dot_f(gw, uw, DD * C) + dot_f(gb, ub, C);
            const double h = 1e-2;
            double f[4];
            const double steps[4] = {h, -h, 2 * h, -2 * h};
            for (int s = 0; s < 4; s++) {
                for (int i = 0; i < DD * C; i++) wp[i] = (float)(w[i] + steps[s] * uw[i]);
                for (int i = 0; i < C; i++) bp[i] = (float)(b[i] + steps[s] * ub[i]);
                CHECK(mmcr_probe_objective(x, y, N, DD, C, wp, bp, l2, &f[s], NULL, NULL, &err) == MMCR_OK);
            }
            double numeric = (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * h);
            CHECK_CLOSE(analytic, numeric, 2e-4, 2e-3);
        }
    }
    /* The L2 term adds exactly l2 * W to the weight gradient and nothing to the bias. */
    static float gw0[DD * C], gb0[C];
    double f0, f1;
    CHECK(mmcr_probe_objective(x, y, N, DD, C, w, b, 0.0, &f0, gw0, gb0, &err) == MMCR_OK);
    CHECK(mmcr_probe_objective(x, y, N, DD, C, w, b, 0.3, &f1, gw, gb, &err) == MMCR_OK);
    CHECK_CLOSE(f1 - f0, 0.15 * dot_f(w, w, DD * C), 1e-5, 1e-5);
    double maxd = 0, maxb = 0;
    for (int i = 0; i < DD * C; i++) maxd = fmax(maxd, fabs(gw[i] - gw0[i] - 0.3 * w[i]));
    for (int i = 0; i < C; i++) maxb = fmax(maxb, fabs(gb[i] - gb0[i]));
    CHECK(maxd < 1e-5);
    CHECK(maxb == 0);
    /* Large logits stay finite (max-shifted softmax). */
    for (int i = 0; i < DD * C; i++) wp[i] = 1e3f * w[i];
    CHECK(mmcr_probe_objective(x, y, N, DD, C, wp, b, 0.0, &f0, gw, gb, &err) == MMCR_OK);
    CHECK(isfinite(f0) && isfinite(gw[0]));
}

static void input_errors(void) {
    make_clusters(3, 1.0);
    mmcr_probe_config cfg;
    mmcr_probe_config_default(&cfg);
    cfg.epochs = 2;
    mmcr_probe_result res;
    memset(&res, 0, sizeof res);
    mmcr_err err;
    mmcr_status st;

    ytr[11] = NC;
    st = mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err);
    CHECK(st == MMCR_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "row 11") != NULL, "message: %s", err.msg);
    ytr[11] = -1;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err) == MMCR_ERR_ARG);
    ytr[11] = 0;
    yte[5] = 99;
    st = mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err);
    CHECK(st == MMCR_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "test") != NULL, "message: %s", err.msg);
    yte[5] = 0;

    xtr[7 * D + 2] = NAN;
    st = mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err);
    CHECK(st == MMCR_ERR_NONFINITE);
    CHECK_MSG(strstr(err.msg, "train row 7") != NULL, "message: %s", err.msg);
    xtr[7 * D + 2] = 0;
    xte[3 * D] = -INFINITY;
    st = mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err);
    CHECK(st == MMCR_ERR_NONFINITE);
    CHECK_MSG(strstr(err.msg, "test row 3") != NULL, "message: %s", err.msg);
    xte[3 * D] = 0;

    CHECK(mmcr_linear_probe(xtr, ytr, 1, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, 0, NC, &cfg, NULL, &res, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, 0, D, NC, &cfg, NULL, &res, &err) == MMCR_ERR_ARG);
    mmcr_probe_config bad = cfg;
    bad.val_fraction = 0;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &bad, NULL, &res, &err) == MMCR_ERR_ARG);
    CHECK(strstr(err.msg, "val_fraction") != NULL);
    bad = cfg;
    bad.n_l2 = 9;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &bad, NULL, &res, &err) == MMCR_ERR_ARG);
    bad = cfg;
    bad.l2[1] = -1;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &bad, NULL, &res, &err) == MMCR_ERR_ARG);
    bad = cfg;
    bad.epochs = 0;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &bad, NULL, &res, &err) == MMCR_ERR_ARG);
    bad = cfg;
    bad.lr = 0;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &bad, NULL, &res, &err) == MMCR_ERR_ARG);
    /* Smallest legal problem: two rows (one fit, one validation), and it still runs. */
    CHECK(mmcr_linear_probe(xtr, ytr, 2, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err) == MMCR_OK);
    /* A constant feature (std 0) is floored, not divided by zero. */
    for (int i = 0; i < NTR; i++) xtr[i * D + 1] = 3.0f;
    CHECK(mmcr_linear_probe(xtr, ytr, NTR, xte, yte, NTE, D, NC, &cfg, NULL, &res, &err) == MMCR_OK);
    CHECK(isfinite(res.test_top1));
}

int main(void) {
    gradient_check();
    separable_and_invariance();
    noise_is_chance();
    input_errors();
    return test_finish("eval_linear_probe");
}
