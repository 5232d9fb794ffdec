/* Linear probe: multinomial logistic regression on frozen, standardised features.
 *
 * Protocol (docs/evaluation.md): standardise with the training mean/std; hold out a seeded,
 * stratified validation split of the training rows; for every candidate L2 strength train with
 * mini-batch Adam under a cosine learning-rate schedule and score the validation split after
 * every epoch; keep the (L2, epoch count) with the best validation top-1; retrain on the full
 * training set with that setting and evaluate the test set once. The test labels are read only
 * in that final evaluation, so model selection cannot depend on them (pitfalls.md entry 13). */
#include "mmcr/eval.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* RNG stream tags: the split, the selection runs and the final run draw independent streams. */
#define STREAM_SPLIT 0x7370u
#define STREAM_SELECT 0x73656cu
#define STREAM_FINAL 0x66696eu

#define ADAM_BETA1 0.9
#define ADAM_BETA2 0.999
#define ADAM_EPS 1e-8
#define STD_FLOOR 1e-6

void mmcr_probe_config_default(mmcr_probe_config *c) {
    memset(c, 0, sizeof *c);
    c->val_fraction = 0.1;
    c->n_l2 = 4;
    c->l2[0] = 1e-6;
    c->l2[1] = 1e-5;
    c->l2[2] = 1e-4;
    c->l2[3] = 1e-3;
    c->epochs = 100; /* SSL papers train linear probes for 90-100 epochs; the count is chosen on validation */
    c->batch = 256;
    c->lr = 1e-3;
    c->seed = 0;
}

/* Everything one training run touches, allocated once per probe call so that the per-step
 * path does not allocate. */
typedef struct probe_ws {
    int d, nc;
    int bmax;                /* mini-batch rows */
    int cap;                 /* rows of the batch buffers (>= bmax; evaluation chunks) */
    size_t nw;               /* d * nc */
    float *w, *b;            /* parameters: W (d x nc) row-major, b (nc) */
    float *gw, *gb;          /* gradients */
    float *mw, *vw, *mb, *vb; /* Adam moments */
    float *xb;               /* gathered rows (cap x d) */
    int32_t *yb;             /* gathered labels (cap) */
    float *z;                /* logits, then probabilities / dL/dz (cap x nc) */
    uint32_t *order;         /* shuffled row order of one epoch */
    int64_t step;            /* Adam step counter */
} probe_ws;

static void ws_free(probe_ws *ws) {
    mmcr_free(ws->w); mmcr_free(ws->b);
    mmcr_free(ws->gw); mmcr_free(ws->gb);
    mmcr_free(ws->mw); mmcr_free(ws->vw);
    mmcr_free(ws->mb); mmcr_free(ws->vb);
    mmcr_free(ws->xb); mmcr_free(ws->yb);
    mmcr_free(ws->z); mmcr_free(ws->order);
    memset(ws, 0, sizeof *ws);
}

static mmcr_status ws_init(probe_ws *ws, int d, int nc, int bmax, int n_rows, mmcr_err *err) {
    memset(ws, 0, sizeof *ws);
    ws->d = d;
    ws->nc = nc;
    ws->bmax = bmax;
    ws->cap = bmax < 1024 ? 1024 : bmax;
    ws->nw = (size_t)d * (size_t)nc;
    size_t fw = sizeof(float) * ws->nw, fb = sizeof(float) * (size_t)nc;
    ws->w = mmcr_alloc(fw); ws->b = mmcr_alloc(fb);
    ws->gw = mmcr_alloc(fw); ws->gb = mmcr_alloc(fb);
    ws->mw = mmcr_alloc(fw); ws->vw = mmcr_alloc(fw);
    ws->mb = mmcr_alloc(fb); ws->vb = mmcr_alloc(fb);
    ws->xb = mmcr_alloc(sizeof(float) * (size_t)ws->cap * (size_t)d);
    ws->yb = mmcr_alloc(sizeof(int32_t) * (size_t)ws->cap);
    ws->z = mmcr_alloc(sizeof(float) * (size_t)ws->cap * (size_t)nc);
    ws->order = mmcr_alloc(sizeof(uint32_t) * (size_t)(n_rows > 0 ? n_rows : 1));
    if (!ws->w || !ws->b || !ws->gw || !ws->gb || !ws->mw || !ws->vw || !ws->mb || !ws->vb ||
        !ws->xb || !ws->yb || !ws->z || !ws->order) {
        ws_free(ws);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "linear probe: out of memory for the training workspace");
    }
    return MMCR_OK;
}

/* Fresh run: zero weights (the problem is convex, so no random init is needed) and Adam state. */
static void ws_reset(probe_ws *ws) {
    size_t fw = sizeof(float) * ws->nw, fb = sizeof(float) * (size_t)ws->nc;
    memset(ws->w, 0, fw); memset(ws->b, 0, fb);
    memset(ws->mw, 0, fw); memset(ws->vw, 0, fw);
    memset(ws->mb, 0, fb); memset(ws->vb, 0, fb);
    ws->step = 0;
}

/* z (m x nc) = x (m x d) W + b. */
static void logits(const float *x, int m, int d, int nc, const float *w, const float *b, float *z) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nc, d, 1.0f, x, d, w, nc, 0.0f, z, nc);
    for (int i = 0; i < m; i++) {
        float *zi = z + (size_t)i * (size_t)nc;
        for (int c = 0; c < nc; c++) zi[c] += b[c];
    }
}

/* In place: logits -> softmax probabilities minus one-hot (= d CE / d z per row). Returns the
 * summed cross-entropy, computed with the max shift so large logits cannot overflow. */
static double softmax_xent_grad(float *z, const int32_t *y, int m, int nc) {
    double loss = 0;
    for (int i = 0; i < m; i++) {
        float *zi = z + (size_t)i * (size_t)nc;
        float mx = zi[0];
        for (int c = 1; c < nc; c++)
            if (zi[c] > mx) mx = zi[c];
        double zy = (double)zi[y[i]] - (double)mx;
        double s = 0;
        for (int c = 0; c < nc; c++) {
            double e = exp((double)zi[c] - (double)mx);
            zi[c] = (float)e;
            s += e;
        }
        loss += log(s) - zy;
        float inv = (float)(1.0 / s);
        for (int c = 0; c < nc; c++) zi[c] *= inv;
        zi[y[i]] -= 1.0f;
    }
    return loss;
}

/* Objective and gradients on m contiguous rows; z is an m x nc scratch. */
static double objective_grad(const float *x, const int32_t *y, int m, int d, int nc, const float *w,
                             const float *b, double l2, float *z, float *gw, float *gb) {
    logits(x, m, d, nc, w, b, z);
    double loss = softmax_xent_grad(z, y, m, nc) / m;
    size_t nw = (size_t)d * (size_t)nc;
    double wsq = 0;
    for (size_t j = 0; j < nw; j++) wsq += (double)w[j] * w[j];
    loss += 0.5 * l2 * wsq;
    /* gW = x^T dz / m + l2 W;  gb = colsum(dz) / m */
    for (size_t j = 0; j < nw; j++) gw[j] = (float)(l2 * w[j]);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, nc, m, 1.0f / (float)m, x, d, z, nc, 1.0f,
                gw, nc);
    for (int c = 0; c < nc; c++) gb[c] = 0;
    for (int i = 0; i < m; i++) {
        const float *zi = z + (size_t)i * (size_t)nc;
        for (int c = 0; c < nc; c++) gb[c] += zi[c];
    }
    for (int c = 0; c < nc; c++) gb[c] /= (float)m;
    return loss;
}

static void adam_update(float *p, const float *g, float *mo, float *ve, size_t n, double lr_t, double bc2) {
    const float b1 = (float)ADAM_BETA1, b2 = (float)ADAM_BETA2;
    for (size_t j = 0; j < n; j++) {
        mo[j] = b1 * mo[j] + (1.0f - b1) * g[j];
        ve[j] = b2 * ve[j] + (1.0f - b2) * g[j] * g[j];
        p[j] -= (float)(lr_t * mo[j] / (sqrt(ve[j] / bc2) + ADAM_EPS));
    }
}

/* One Adam step (PyTorch form; the L2 term is already in the gradient, as Adam's weight_decay). */
static void adam_step(probe_ws *ws, double lr) {
    ws->step++;
    double bc1 = 1.0 - pow(ADAM_BETA1, (double)ws->step);
    double bc2 = 1.0 - pow(ADAM_BETA2, (double)ws->step);
    double lr_t = lr / bc1;
    adam_update(ws->w, ws->gw, ws->mw, ws->vw, ws->nw, lr_t, bc2);
    adam_update(ws->b, ws->gb, ws->mb, ws->vb, (size_t)ws->nc, lr_t, bc2);
}

/* Gather rows idx[0..m) of x (and their labels) into the workspace batch. */
static void gather(probe_ws *ws, const float *x, const int32_t *y, const uint32_t *idx, int m) {
    size_t rb = sizeof(float) * (size_t)ws->d;
    for (int i = 0; i < m; i++) {
        memcpy(ws->xb + (size_t)i * (size_t)ws->d, x + (size_t)idx[i] * (size_t)ws->d, rb);
        ws->yb[i] = y[idx[i]];
    }
}

/* Scores rows idx[0..n) of x (all rows 0..n if idx is NULL) with the current weights: counts
 * correct top-1 predictions (argmax, ties to the smaller class), sums the cross-entropy, and
 * optionally accumulates per-class hits/counts. */
static void evaluate(probe_ws *ws, const float *x, const int32_t *y, const uint32_t *idx, int n,
                     int64_t *correct, double *ce_sum, int64_t *cls_hit, int64_t *cls_cnt) {
    int d = ws->d, nc = ws->nc;
    int64_t hit = 0;
    double ce = 0;
    for (int r0 = 0; r0 < n; r0 += ws->cap) {
        int m = n - r0 < ws->cap ? n - r0 : ws->cap;
        const float *xr;
        const int32_t *yr;
        if (idx) {
            gather(ws, x, y, idx + r0, m);
            xr = ws->xb;
            yr = ws->yb;
        } else {
            xr = x + (size_t)r0 * (size_t)d;
            yr = y + r0;
        }
        logits(xr, m, d, nc, ws->w, ws->b, ws->z);
        for (int i = 0; i < m; i++) {
            const float *zi = ws->z + (size_t)i * (size_t)nc;
            int best = 0;
            for (int c = 1; c < nc; c++)
                if (zi[c] > zi[best]) best = c;
            double s = 0;
            for (int c = 0; c < nc; c++) s += exp((double)zi[c] - (double)zi[best]);
            ce += log(s) - ((double)zi[yr[i]] - (double)zi[best]);
            hit += best == yr[i];
            if (cls_cnt) {
                cls_cnt[yr[i]]++;
                cls_hit[yr[i]] += best == yr[i];
            }
        }
    }
    *correct = hit;
    if (ce_sum) *ce_sum = ce;
}

/* Per-epoch validation record of one selection run. */
typedef struct val_track {
    const uint32_t *idx;
    int n;
    double *acc; /* [epochs] */
    double *ce;  /* [epochs], mean cross-entropy, used to break accuracy ties */
} val_track;

/* Trains from zero for `run_epochs` epochs on rows fit[0..n_fit) with the learning rate
 * following a cosine over `sched_epochs` (stepped per epoch, as PyTorch's CosineAnnealingLR
 * with T_max = sched_epochs), scoring the validation rows after each epoch when val != NULL. */
static mmcr_status train_run(probe_ws *ws, const float *x, const int32_t *y, const uint32_t *fit, int n_fit,
                             double l2, double lr, int sched_epochs, int run_epochs, uint64_t seed,
                             uint64_t stream, val_track *val, mmcr_err *err) {
    const double pi = 3.14159265358979323846;
    ws_reset(ws);
    for (int e = 0; e < run_epochs; e++) {
        double lr_e = lr * 0.5 * (1.0 + cos(pi * (double)e / (double)sched_epochs));
        mmcr_rng r;
        mmcr_rng_seed(&r, seed, stream, (uint64_t)e, 0);
        memcpy(ws->order, fit, sizeof(uint32_t) * (size_t)n_fit);
        mmcr_rng_shuffle_u32(&r, ws->order, (size_t)n_fit);
        for (int r0 = 0; r0 < n_fit; r0 += ws->bmax) {
            int m = n_fit - r0 < ws->bmax ? n_fit - r0 : ws->bmax;
            gather(ws, x, y, ws->order + r0, m);
            double loss = objective_grad(ws->xb, ws->yb, m, ws->d, ws->nc, ws->w, ws->b, l2, ws->z,
                                         ws->gw, ws->gb);
            if (!isfinite(loss))
                return mmcr_err_set(err, MMCR_ERR_NONFINITE,
                                    "linear probe: non-finite training loss (l2 = %g, epoch %d); "
                                    "check the feature scale or lower --lr",
                                    l2, e + 1);
            adam_step(ws, lr_e);
        }
        if (val) {
            int64_t hit;
            double ce;
            evaluate(ws, x, y, val->idx, val->n, &hit, &ce, NULL, NULL);
            val->acc[e] = (double)hit / (double)val->n;
            val->ce[e] = ce / (double)val->n;
        }
    }
    return MMCR_OK;
}

/* Seeded stratified split: each class gives about val_fraction of its rows to validation
 * (largest-remainder rounding to hit round(val_fraction * n) in total; a class keeps at least
 * one training row while that is possible). fit and val come back sorted ascending. */
static mmcr_status split_train_val(const int32_t *y, int n, int nc, double frac, uint64_t seed,
                                   uint32_t *fit, int *n_fit, uint32_t *val, int *n_val, mmcr_err *err) {
    mmcr_status st = MMCR_OK;
    int64_t *cnt = mmcr_alloc(sizeof(int64_t) * ((size_t)nc + 1));
    int64_t *quota = mmcr_alloc(sizeof(int64_t) * (size_t)nc);
    unsigned char *bumped = mmcr_alloc((size_t)nc);
    uint32_t *bucket = mmcr_alloc(sizeof(uint32_t) * (size_t)n);
    unsigned char *is_val = mmcr_alloc((size_t)n);
    if (!cnt || !quota || !bumped || !bucket || !is_val) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "linear probe: out of memory for the validation split");
        goto done;
    }
    for (int i = 0; i < n; i++) cnt[y[i] + 1]++;
    int64_t target = (int64_t)floor(frac * n + 0.5);
    if (target < 1) target = 1;
    if (target > n - 1) target = n - 1;
    int64_t total = 0;
    for (int c = 0; c < nc; c++) {
        int64_t nc_c = cnt[c + 1];
        int64_t q = (int64_t)floor(frac * (double)nc_c);
        if (q > nc_c - 1) q = nc_c > 0 ? nc_c - 1 : 0;
        quota[c] = q;
        total += q;
    }
    /* Largest remainder first, then (tiny classes) whatever rows are left. */
    while (total < target) {
        int pick = -1;
        double best = -1;
        for (int c = 0; c < nc; c++) {
            if (bumped[c] || quota[c] >= cnt[c + 1] - 1) continue;
            double rem = frac * (double)cnt[c + 1] - (double)quota[c];
            if (rem > best) {
                best = rem;
                pick = c;
            }
        }
        if (pick < 0) break;
        bumped[pick] = 1;
        quota[pick]++;
        total++;
    }
    while (total < target) {
        int pick = -1;
        for (int c = 0; c < nc; c++)
            if (quota[c] < cnt[c + 1] && (pick < 0 || cnt[c + 1] - quota[c] > cnt[pick + 1] - quota[pick]))
                pick = c;
        MMCR_ASSERT(pick >= 0);
        quota[pick]++;
        total++;
    }
    for (int c = 0; c < nc; c++) cnt[c + 1] += cnt[c];
    {
        /* bucket rows by class (ascending within a class), then shuffle each class's rows. */
        int64_t *fill = quota; /* reuse after copying the quotas out */
        int64_t *q = mmcr_alloc(sizeof(int64_t) * (size_t)nc);
        if (!q) {
            st = mmcr_err_set(err, MMCR_ERR_NOMEM, "linear probe: out of memory for the validation split");
            goto done;
        }
        memcpy(q, quota, sizeof(int64_t) * (size_t)nc);
        memcpy(fill, cnt, sizeof(int64_t) * (size_t)nc);
        for (int i = 0; i < n; i++) bucket[fill[y[i]]++] = (uint32_t)i;
        for (int c = 0; c < nc; c++) {
            mmcr_rng r;
            mmcr_rng_seed(&r, seed, STREAM_SPLIT, (uint64_t)c, 0);
            uint32_t *b = bucket + cnt[c];
            size_t m = (size_t)(cnt[c + 1] - cnt[c]);
            mmcr_rng_shuffle_u32(&r, b, m);
            for (int64_t j = 0; j < q[c]; j++) is_val[b[j]] = 1;
        }
        mmcr_free(q);
    }
    int a = 0, v = 0;
    for (int i = 0; i < n; i++) {
        if (is_val[i]) val[v++] = (uint32_t)i;
        else fit[a++] = (uint32_t)i;
    }
    *n_fit = a;
    *n_val = v;
    MMCR_ASSERT(v == target && a == n - v);
done:
    mmcr_free(cnt);
    mmcr_free(quota);
    mmcr_free(bumped);
    mmcr_free(bucket);
    mmcr_free(is_val);
    return st;
}

static mmcr_status check_features(const float *x, int n, int d, const char *what, mmcr_err *err) {
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        for (int j = 0; j < d; j++)
            if (!isfinite(r[j]))
                return mmcr_err_set(err, MMCR_ERR_NONFINITE,
                                    "linear probe: %s row %d has a non-finite value in column %d", what, i, j);
    }
    return MMCR_OK;
}

static mmcr_status check_labels(const int32_t *y, int n, int nc, const char *what, mmcr_err *err) {
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= nc)
            return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: %s label %d of row %d is outside [0, %d)",
                                what, (int)y[i], i, nc);
    return MMCR_OK;
}

/* Column mean and standard deviation (population, two passes in double, floored). */
static void column_stats(const float *x, int n, int d, double *mean, double *sd) {
    for (int j = 0; j < d; j++) mean[j] = sd[j] = 0;
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        for (int j = 0; j < d; j++) mean[j] += r[j];
    }
    for (int j = 0; j < d; j++) mean[j] /= n;
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        for (int j = 0; j < d; j++) {
            double t = r[j] - mean[j];
            sd[j] += t * t;
        }
    }
    for (int j = 0; j < d; j++) {
        sd[j] = sqrt(sd[j] / n);
        if (!(sd[j] >= STD_FLOOR)) sd[j] = STD_FLOOR;
    }
}

static void standardise(const float *x, int n, int d, const double *mean, const double *sd, float *out) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        float *o = out + (size_t)i * (size_t)d;
        for (int j = 0; j < d; j++) o[j] = (float)((r[j] - mean[j]) / sd[j]);
    }
}

mmcr_status mmcr_probe_objective(const float *x, const int32_t *y, int n, int d, int num_classes,
                                 const float *w, const float *b, double l2, double *loss,
                                 float *grad_w, float *grad_b, mmcr_err *err) {
    if (!x || !y || !w || !b || !loss)
        return mmcr_err_set(err, MMCR_ERR_ARG, "probe objective: x, y, w, b and loss must not be NULL");
    if (n < 1 || d < 1 || num_classes < 2)
        return mmcr_err_set(err, MMCR_ERR_ARG, "probe objective: need n >= 1, d >= 1, num_classes >= 2 (got %d, %d, %d)",
                            n, d, num_classes);
    if (!(l2 >= 0) || !isfinite(l2))
        return mmcr_err_set(err, MMCR_ERR_ARG, "probe objective: l2 = %g, need a finite value >= 0", l2);
    mmcr_status st;
    if ((st = check_labels(y, n, num_classes, "train", err))) return st;
    if ((st = check_features(x, n, d, "train", err))) return st;
    size_t nw = (size_t)d * (size_t)num_classes;
    float *z = mmcr_alloc_or_err(sizeof(float) * (size_t)n * (size_t)num_classes, err, "probe logits");
    float *gw = grad_w ? grad_w : mmcr_alloc_or_err(sizeof(float) * nw, err, "probe gradient");
    float *gb = grad_b ? grad_b : mmcr_alloc_or_err(sizeof(float) * (size_t)num_classes, err, "probe gradient");
    if (z && gw && gb) *loss = objective_grad(x, y, n, d, num_classes, w, b, l2, z, gw, gb);
    st = z && gw && gb ? MMCR_OK : MMCR_ERR_NOMEM;
    mmcr_free(z);
    if (!grad_w) mmcr_free(gw);
    if (!grad_b) mmcr_free(gb);
    return st;
}

static mmcr_status check_config(const mmcr_probe_config *c, mmcr_err *err) {
    if (!(c->val_fraction > 0 && c->val_fraction < 1))
        return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: val_fraction = %g, need a value in (0, 1)",
                            c->val_fraction);
    if (c->n_l2 < 1 || c->n_l2 > 8)
        return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: n_l2 = %d, need 1..8 candidate L2 strengths",
                            c->n_l2);
    for (int i = 0; i < c->n_l2; i++)
        if (!(c->l2[i] >= 0) || !isfinite(c->l2[i]))
            return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: l2[%d] = %g, need a finite value >= 0", i,
                                c->l2[i]);
    if (c->epochs < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: epochs = %d, need >= 1", c->epochs);
    if (c->batch < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: batch = %d, need >= 1", c->batch);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: lr = %g, need a finite value > 0", c->lr);
    return MMCR_OK;
}

mmcr_status mmcr_linear_probe(const float *x_train, const int32_t *y_train, int n_train,
                              const float *x_test, const int32_t *y_test, int n_test, int d,
                              int num_classes, const mmcr_probe_config *cfg,
                              const mmcr_logger *log, mmcr_probe_result *res, mmcr_err *err) {
    mmcr_probe_config defaults;
    if (!cfg) {
        mmcr_probe_config_default(&defaults);
        cfg = &defaults;
    }
    if (!x_train || !y_train || !x_test || !y_test || !res)
        return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: feature, label and result pointers must not be NULL");
    if (n_train < 2) return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: n_train = %d, need >= 2", n_train);
    if (n_test < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: n_test = %d, need >= 1", n_test);
    if (d < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: feature dimension d = %d, need >= 1", d);
    if (num_classes < 2)
        return mmcr_err_set(err, MMCR_ERR_ARG, "linear probe: num_classes = %d, need >= 2", num_classes);
    mmcr_status st;
    if ((st = check_config(cfg, err))) return st;
    if ((st = check_labels(y_train, n_train, num_classes, "train", err))) return st;
    if ((st = check_labels(y_test, n_test, num_classes, "test", err))) return st;
    if ((st = check_features(x_train, n_train, d, "train", err))) return st;
    if ((st = check_features(x_test, n_test, d, "test", err))) return st;

    const int ne = cfg->epochs, nl = cfg->n_l2;
    probe_ws ws[8];
    memset(ws, 0, sizeof ws);
    float *xs = mmcr_alloc(sizeof(float) * (size_t)n_train * (size_t)d);
    float *xt = mmcr_alloc(sizeof(float) * (size_t)n_test * (size_t)d);
    double *mean = mmcr_alloc(sizeof(double) * (size_t)d);
    double *sd = mmcr_alloc(sizeof(double) * (size_t)d);
    uint32_t *fit = mmcr_alloc(sizeof(uint32_t) * (size_t)n_train);
    uint32_t *val = mmcr_alloc(sizeof(uint32_t) * (size_t)n_train);
    double *acc = mmcr_alloc(sizeof(double) * (size_t)nl * (size_t)ne);
    double *ce = mmcr_alloc(sizeof(double) * (size_t)nl * (size_t)ne);
    int64_t *cls_hit = mmcr_alloc(sizeof(int64_t) * (size_t)num_classes);
    int64_t *cls_cnt = mmcr_alloc(sizeof(int64_t) * (size_t)num_classes);
    if (!xs || !xt || !mean || !sd || !fit || !val || !acc || !ce || !cls_hit || !cls_cnt) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "linear probe: out of memory for %d x %d features", n_train, d);
        goto done;
    }
    for (int l = 0; l < nl; l++)
        if ((st = ws_init(&ws[l], d, num_classes, cfg->batch, n_train, err))) goto done;

    /* Label-free statistics of the whole training set; the test set is mapped with them too. */
    column_stats(x_train, n_train, d, mean, sd);
    standardise(x_train, n_train, d, mean, sd, xs);
    standardise(x_test, n_test, d, mean, sd, xt);

    int n_fit = 0, n_val = 0;
    if ((st = split_train_val(y_train, n_train, num_classes, cfg->val_fraction, cfg->seed, fit, &n_fit, val,
                              &n_val, err)))
        goto done;
    mmcr_logf(log, MMCR_LOG_INFO, "linear probe: %d train rows (%d fit, %d validation), %d test rows, d = %d, %d classes",
              n_train, n_fit, n_val, n_test, d, num_classes);

    /* A mini-batch GEMM this small runs slower on several BLAS threads than on one (measured
     * 2-5x on 2 busy cores), so small problems run the candidates side by side, each on one
     * thread (OpenBLAS stays single-threaded inside a parallel region), and the final run on
     * one thread. Large problems keep threaded BLAS and run the candidates in turn. */
    const int small = (double)cfg->batch * d * num_classes < (double)(1 << 22);
    const int nthreads = omp_get_max_threads();
    mmcr_status cst[8];
    mmcr_err cerr[8];
    double ctime[8];
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads < nl ? nthreads : nl) if (small && nl > 1)
    for (int l = 0; l < nl; l++) {
        val_track vt = {val, n_val, acc + (size_t)l * (size_t)ne, ce + (size_t)l * (size_t)ne};
        double t0 = mmcr_now();
        cerr[l].msg[0] = 0;
        cst[l] = train_run(&ws[l], xs, y_train, fit, n_fit, cfg->l2[l], cfg->lr, ne, ne, cfg->seed,
                           STREAM_SELECT, &vt, &cerr[l]);
        ctime[l] = mmcr_now() - t0;
    }
    for (int l = 0; l < nl; l++)
        if (cst[l] != MMCR_OK) {
            st = mmcr_err_set(err, cst[l], "%s", cerr[l].msg);
            goto done;
        }
    int best_l = 0, best_e = 0;
    for (int l = 0; l < nl; l++) {
        val_track vt = {val, n_val, acc + (size_t)l * (size_t)ne, ce + (size_t)l * (size_t)ne};
        int be = 0;
        for (int e = 1; e < ne; e++)
            if (vt.acc[e] > vt.acc[be] || (vt.acc[e] == vt.acc[be] && vt.ce[e] < vt.ce[be])) be = e;
        for (int e = 0; e < ne; e++)
            mmcr_logf(log, MMCR_LOG_DEBUG, "linear probe: l2 = %g epoch %d: val top-1 %.4f, val CE %.4f",
                      cfg->l2[l], e + 1, vt.acc[e], vt.ce[e]);
        mmcr_logf(log, MMCR_LOG_INFO,
                  "linear probe: l2 = %g: best val top-1 %.4f at epoch %d (last epoch %.4f), %.1f s",
                  cfg->l2[l], vt.acc[be], be + 1, vt.acc[ne - 1], ctime[l]);
        double a = vt.acc[be], ba = acc[(size_t)best_l * ne + best_e];
        if (l == 0 || a > ba || (a == ba && vt.ce[be] < ce[(size_t)best_l * ne + best_e])) {
            best_l = l;
            best_e = be;
        }
    }
    res->chosen_l2 = cfg->l2[best_l];
    res->chosen_epochs = best_e + 1;
    res->val_top1 = acc[(size_t)best_l * ne + best_e];

    /* Retrain on every training row with the selected setting, same schedule, then the single
     * test evaluation. */
    for (int i = 0; i < n_train; i++) fit[i] = (uint32_t)i;
    if (small) omp_set_num_threads(1);
    st = train_run(&ws[0], xs, y_train, fit, n_train, res->chosen_l2, cfg->lr, ne, res->chosen_epochs, cfg->seed,
                   STREAM_FINAL, NULL, err);
    if (small) omp_set_num_threads(nthreads);
    if (st) goto done;
    int64_t hit;
    evaluate(&ws[0], xt, y_test, NULL, n_test, &hit, NULL, cls_hit, cls_cnt);
    double p = (double)hit / (double)n_test;
    res->test_top1 = p;
    res->test_top1_se = sqrt(p * (1.0 - p) / (double)n_test);
    if (res->per_class_top1)
        for (int c = 0; c < num_classes; c++)
            res->per_class_top1[c] = cls_cnt[c] ? (double)cls_hit[c] / (double)cls_cnt[c] : NAN;
    mmcr_logf(log, MMCR_LOG_INFO,
              "linear probe: selected l2 = %g, %d epochs (val top-1 %.4f); retrained on %d rows; "
              "test top-1 %.4f +- %.4f",
              res->chosen_l2, res->chosen_epochs, res->val_top1, n_train, p, res->test_top1_se);
    st = MMCR_OK;
done:
    for (int l = 0; l < 8; l++) ws_free(&ws[l]);
    mmcr_free(xs);
    mmcr_free(xt);
    mmcr_free(mean);
    mmcr_free(sd);
    mmcr_free(fit);
    mmcr_free(val);
    mmcr_free(acc);
    mmcr_free(ce);
    mmcr_free(cls_hit);
    mmcr_free(cls_cnt);
    return st;
}
