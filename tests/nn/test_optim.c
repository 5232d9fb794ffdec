/* Optimisers and LR schedules: parity with torch (tests/fixtures/optim/optim_ref.txt, from
 * dev/ref/gen_optim_fixture.py), LARS 1-D exclusion and zero-norm guards, resume from saved
 * state, thread-count independence, schedule values at the boundaries. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/optim.h"
#include "test_util.h"

/* ---------------- fixture reader ---------------- */

#define MAXP 64
#define MAXS 8
#define MAXC 16
#define MAXV 128

typedef struct fcase {
    char name[64], kind[16];
    double momentum, wd, beta1, beta2, eps, eta;
    int nesterov, exclude_1d;
    double lrs[MAXS];
    float after[MAXS][MAXP];
    int nstate;
    float state[2][MAXP];
} fcase;

typedef struct fsched {
    char name[64], kind[16];
    long total, warmup;
    double ff, pct, div, fdiv;
    int count;
    long step[MAXV];
    double value[MAXV];
} fsched;

typedef struct fixture {
    int n, steps, ntensors;
    mmcr_tensor_info tensors[4];
    float init[MAXP];
    float grad[MAXS][MAXP];
    int ncases, nscheds;
    fcase cases[MAXC];
    fsched scheds[MAXC];
} fixture;

static FILE *fx;
static int tok(char *buf, size_t cap) {
    int c;
    for (;;) {
        c = fgetc(fx);
        if (c == '#') {
            while (c != '\n' && c != EOF) c = fgetc(fx);
        }
        if (c == EOF) return 0;
        if (c != ' ' && c != '\n' && c != '\t' && c != '\r') break;
    }
    size_t k = 0;
    while (c != EOF && c != ' ' && c != '\n' && c != '\t' && c != '\r') {
        if (k + 1 < cap) buf[k++] = (char)c;
        c = fgetc(fx);
    }
    buf[k] = '\0';
    return 1;
}
static double num(void) {
    char b[64];
    if (!tok(b, sizeof b)) return NAN;
    char *e;
    double v = strtod(b, &e);
    return *e ? NAN : v;
}
static void floats(float *out, int n) {
    for (int i = 0; i < n; i++) out[i] = (float)num();
}

static int load_fixture(fixture *f) {
    const char *dir = getenv("MMCR_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/optim/optim_ref.txt", dir ? dir : "tests/fixtures");
    fx = fopen(path, "r");
    if (!fx) {
        fprintf(stderr, "cannot open %s (set MMCR_FIXTURES; regenerate with dev/ref/gen_optim_fixture.py)\n", path);
        return 0;
    }
    memset(f, 0, sizeof *f);
    char t[64];
    int ok = tok(t, sizeof t) && !strcmp(t, "mmcr-optim-fixture") && num() == 1;
    while (ok && tok(t, sizeof t)) {
        if (!strcmp(t, "params")) {
            f->n = (int)num();
            ok = f->n > 0 && f->n <= MAXP;
        } else if (!strcmp(t, "tensor")) {
            mmcr_tensor_info *ti = &f->tensors[f->ntensors++];
            tok(ti->name, sizeof ti->name);
            ti->offset = (size_t)num();
            ti->size = (size_t)num();
            ti->is_1d = (int)num();
            ti->ndim = ti->is_1d ? 1 : 2;
        } else if (!strcmp(t, "steps")) {
            f->steps = (int)num();
            ok = f->steps > 0 && f->steps <= MAXS;
        } else if (!strcmp(t, "init")) {
            floats(f->init, f->n);
        } else if (!strcmp(t, "grad")) {
            int s = (int)num();
            floats(f->grad[s], f->n);
        } else if (!strcmp(t, "case")) {
            fcase *c = &f->cases[f->ncases++];
            tok(c->name, sizeof c->name);
            tok(c->kind, sizeof c->kind);
            c->momentum = num();
            c->nesterov = (int)num();
            c->wd = num();
            c->beta1 = num();
            c->beta2 = num();
            c->eps = num();
            c->eta = num();
            c->exclude_1d = (int)num();
        } else if (!strcmp(t, "lrs")) {
            for (int s = 0; s < f->steps; s++) f->cases[f->ncases - 1].lrs[s] = num();
        } else if (!strcmp(t, "after")) {
            int s = (int)num();
            floats(f->cases[f->ncases - 1].after[s], f->n);
        } else if (!strcmp(t, "state")) {
            fcase *c = &f->cases[f->ncases - 1];
            int k = (int)num();
            floats(c->state[k], f->n);
            c->nstate = k + 1;
        } else if (!strcmp(t, "sched")) {
            fsched *s = &f->scheds[f->nscheds++];
            tok(s->name, sizeof s->name);
            tok(s->kind, sizeof s->kind);
            s->total = (long)num();
            s->warmup = (long)num();
            s->ff = num();
            s->pct = num();
            s->div = num();
            s->fdiv = num();
            s->count = (int)num();
            ok = s->count <= MAXV;
            for (int i = 0; ok && i < s->count; i++) {
                tok(t, sizeof t);
                s->step[i] = (long)num();
                s->value[i] = num();
            }
        } else {
            fprintf(stderr, "fixture: unexpected token '%s'\n", t);
            ok = 0;
        }
        ok = ok && f->ncases < MAXC && f->nscheds < MAXC && f->ntensors < 4;
    }
    fclose(fx);
    return ok && f->ncases > 0;
}

static mmcr_optim_kind kind_of(const char *k) {
    if (!strcmp(k, "sgd")) return MMCR_OPTIM_SGD;
    if (!strcmp(k, "lars")) return MMCR_OPTIM_LARS;
    if (!strcmp(k, "adam")) return MMCR_OPTIM_ADAM;
    return MMCR_OPTIM_ADAMW;
}

/* |a - ref| <= 1e-6 |ref| + 1e-8 (the absolute part only matters for entries near 0);
 * reports the worst element. */
static int compare(const char *what, const float *a, const float *ref, int n) {
    int bad = 0;
    double worst = 0;
    int wi = -1;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]), tol = 1e-6 * fabs(ref[i]) + 1e-8;
        if (!(d <= tol)) bad++;
        if (d / tol > worst || wi < 0) worst = d / tol, wi = i;
    }
    if (bad)
        fprintf(stderr, "  %s: %d mismatches, worst at %d: %.9g vs %.9g (%.2f x tol)\n", what, bad, wi, a[wi], ref[wi], worst);
    return bad == 0;
}

static void test_parity(const fixture *f) {
    for (int ci = 0; ci < f->ncases; ci++) {
        const fcase *c = &f->cases[ci];
        mmcr_optim_config cfg;
        mmcr_optim_config_default(&cfg, kind_of(c->kind));
        cfg.momentum = c->momentum;
        cfg.nesterov = c->nesterov;
        cfg.weight_decay = c->wd;
        cfg.beta1 = c->beta1;
        cfg.beta2 = c->beta2;
        cfg.eps = c->eps;
        cfg.lars_eta = c->eta;
        cfg.exclude_1d = c->exclude_1d;
        cfg.lr = 123; /* unused: the step takes the scheduled lr */
        mmcr_optim *o;
        mmcr_err e;
        CHECK(mmcr_optim_create(&o, &cfg, (size_t)f->n, f->tensors, f->ntensors, &e) == MMCR_OK);
        if (!o) continue;
        float p[MAXP];
        memcpy(p, f->init, sizeof p);
        for (int s = 0; s < f->steps; s++) {
            mmcr_optim_step(o, p, f->grad[s], c->lrs[s]);
            char what[96];
            snprintf(what, sizeof what, "%s step %d", c->name, s);
            CHECK_MSG(compare(what, p, c->after[s], f->n), "%s", what);
        }
        CHECK(mmcr_optim_get_step(o) == f->steps);
        CHECK((int)(mmcr_optim_state_floats(o) / (size_t)f->n) == c->nstate);
        for (int k = 0; k < c->nstate; k++) {
            char what[96];
            snprintf(what, sizeof what, "%s state %d", c->name, k);
            CHECK_MSG(compare(what, mmcr_optim_state(o) + (size_t)k * (size_t)f->n, c->state[k], f->n), "%s", what);
        }
        mmcr_optim_destroy(&o);
        CHECK(o == NULL);
    }
    CHECK(f->ncases == 7);
}

static void test_sched_parity(const fixture *f) {
    for (int si = 0; si < f->nscheds; si++) {
        const fsched *fs = &f->scheds[si];
        mmcr_schedule s;
        mmcr_schedule_default(&s, !strcmp(fs->kind, "onecycle") ? MMCR_SCHED_ONECYCLE : MMCR_SCHED_COSINE, fs->total);
        s.warmup_steps = fs->warmup;
        s.final_factor = fs->ff;
        s.pct_start = fs->pct;
        s.div_factor = fs->div;
        s.final_div_factor = fs->fdiv;
        CHECK(mmcr_schedule_check(&s, NULL) == MMCR_OK);
        for (int i = 0; i < fs->count; i++) {
            double v = mmcr_schedule_factor(&s, fs->step[i]);
            CHECK_MSG(fabs(v - fs->value[i]) <= 1e-9 * fabs(fs->value[i]) + 1e-15, "%s step %ld: %.17g vs %.17g", fs->name,
                      fs->step[i], v, fs->value[i]);
        }
    }
    CHECK(f->nscheds == 5);
}

/* ---------------- LARS rules by hand ---------------- */

static double norm2(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static void test_lars_rules(void) {
    mmcr_tensor_info t[3];
    memset(t, 0, sizeof t);
    snprintf(t[0].name, sizeof t[0].name, "w");
    t[0].offset = 0, t[0].size = 6, t[0].ndim = 2;
    snprintf(t[1].name, sizeof t[1].name, "bn.weight");
    t[1].offset = 6, t[1].size = 3, t[1].ndim = 1, t[1].is_1d = 1;
    snprintf(t[2].name, sizeof t[2].name, "zero");
    t[2].offset = 9, t[2].size = 3, t[2].ndim = 2;
    mmcr_optim_config cfg;
    mmcr_optim_config_default(&cfg, MMCR_OPTIM_LARS);
    cfg.weight_decay = 0.1;
    cfg.lars_eta = 0.01;
    cfg.momentum = 0.5;
    mmcr_optim *o;
    CHECK(mmcr_optim_create(&o, &cfg, 12, t, 3, NULL) == MMCR_OK);
    float p[12] = {1, -2, 3, 0.5f, 0.25f, -1, 2, 3, 4, 0, 0, 0};
    float g[12] = {0.1f, 0.2f, -0.3f, 0.4f, 0.0f, 0.1f, 0.5f, -0.5f, 1.0f, 0.3f, -0.4f, 0.0f};
    float p0[12], mu[12];
    memcpy(p0, p, sizeof p);
    const double lr = 0.7;
    mmcr_optim_step(o, p, g, lr);
    /* 2-D tensor: dp = g + wd p scaled by eta ||p|| / ||dp||. */
    float dp[6];
    for (int i = 0; i < 6; i++) dp[i] = g[i] + 0.1f * p0[i];
    double q = 0.01 * norm2(p0, 6) / norm2(dp, 6);
    for (int i = 0; i < 6; i++) {
        mu[i] = (float)(q * dp[i]);
        CHECK_CLOSE(p[i], p0[i] - lr * mu[i], 1e-7, 1e-6);
    }
    /* 1-D tensor: no weight decay and no adaptation, plain momentum SGD. */
    for (int i = 6; i < 9; i++) {
        mu[i] = g[i];
        CHECK_CLOSE(p[i], p0[i] - lr * g[i], 1e-7, 1e-6);
    }
    /* ||p|| == 0: q = 1, so the step is lr * (g + wd*0) = lr * g, not 0. */
    for (int i = 9; i < 12; i++) {
        mu[i] = g[i];
        CHECK_CLOSE(p[i], -lr * g[i], 1e-7, 1e-6);
    }
    /* Second step: momentum carries over (mu = m mu + q dp). */
    memcpy(p0, p, sizeof p);
    mmcr_optim_step(o, p, g, lr);
    for (int i = 6; i < 9; i++) CHECK_CLOSE(p[i], p0[i] - lr * (0.5 * mu[i] + g[i]), 1e-7, 1e-6);
    for (int i = 0; i < 12; i++) CHECK(isfinite(p[i]));
    mmcr_optim_destroy(&o);

    /* ||dp|| == 0 (zero gradient, no weight decay): q = 1 and nothing moves, no 0 * inf = NaN. */
    cfg.weight_decay = 0;
    CHECK(mmcr_optim_create(&o, &cfg, 12, t, 3, NULL) == MMCR_OK);
    float z[12] = {0};
    float p2[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0};
    mmcr_optim_step(o, p2, z, 1.0);
    for (int i = 0; i < 12; i++) CHECK(p2[i] == (i < 9 ? (float)(i + 1) : 0.0f));
    mmcr_optim_destroy(&o);

    /* exclude_1d = 0: the 1-D tensor is adapted and decayed like the others. */
    cfg.weight_decay = 0.1;
    cfg.exclude_1d = 0;
    CHECK(mmcr_optim_create(&o, &cfg, 12, t, 3, NULL) == MMCR_OK);
    float p3[12] = {1, -2, 3, 0.5f, 0.25f, -1, 2, 3, 4, 0, 0, 0};
    mmcr_optim_step(o, p3, g, lr);
    float dpb[3];
    for (int i = 0; i < 3; i++) dpb[i] = g[6 + i] + 0.1f * (float)(2 + i);
    double qb = 0.01 * sqrt(4.0 + 9.0 + 16.0) / norm2(dpb, 3);
    for (int i = 0; i < 3; i++) CHECK_CLOSE(p3[6 + i], (2 + i) - lr * (float)(qb * dpb[i]), 1e-7, 1e-6);
    mmcr_optim_destroy(&o);
}

/* Saving (state, step) mid-run and continuing in a fresh optimiser is bitwise identical. */
static void test_resume(void) {
    const size_t n = 40000; /* above the threading threshold */
    mmcr_tensor_info t[2];
    memset(t, 0, sizeof t);
    snprintf(t[0].name, sizeof t[0].name, "w");
    t[0].offset = 0, t[0].size = n - 100, t[0].ndim = 2;
    snprintf(t[1].name, sizeof t[1].name, "b");
    t[1].offset = n - 100, t[1].size = 100, t[1].ndim = 1, t[1].is_1d = 1;
    float *p0 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    float *pa = malloc(n * sizeof(float)), *pb = malloc(n * sizeof(float));
    mmcr_rng r;
    mmcr_rng_seed(&r, 7, 0, 0, 0);
    for (size_t i = 0; i < n; i++) p0[i] = (float)mmcr_rng_normal(&r), g[i] = (float)(0.1 * mmcr_rng_normal(&r));
    for (int k = 0; k < 4; k++) {
        mmcr_optim_config cfg;
        mmcr_optim_config_default(&cfg, (mmcr_optim_kind)k);
        cfg.nesterov = k == 0;
        mmcr_optim *a, *b;
        CHECK(mmcr_optim_create(&a, &cfg, n, t, 2, NULL) == MMCR_OK);
        CHECK(mmcr_optim_create(&b, &cfg, n, t, 2, NULL) == MMCR_OK);
        memcpy(pa, p0, n * sizeof(float));
        for (int s = 0; s < 3; s++) mmcr_optim_step(a, pa, g, 0.1 * (s + 1));
        memcpy(pb, pa, n * sizeof(float));
        memcpy(mmcr_optim_state(b), mmcr_optim_state(a), mmcr_optim_state_floats(a) * sizeof(float));
        mmcr_optim_set_step(b, mmcr_optim_get_step(a));
        for (int s = 3; s < 6; s++) {
            mmcr_optim_step(a, pa, g, 0.1 * (s + 1));
            mmcr_optim_step(b, pb, g, 0.1 * (s + 1));
        }
        CHECK_MSG(!memcmp(pa, pb, n * sizeof(float)), "resume differs for kind %d", k);
        mmcr_optim_destroy(&a);
        mmcr_optim_destroy(&b);
    }

    /* LARS with 1 and 2 threads gives the same bits (chunked norms). */
    mmcr_optim_config cfg;
    mmcr_optim_config_default(&cfg, MMCR_OPTIM_LARS);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        mmcr_optim *a;
        CHECK(mmcr_optim_create(&a, &cfg, n, t, 2, NULL) == MMCR_OK);
        float *dst = threads == 1 ? pa : pb;
        memcpy(dst, p0, n * sizeof(float));
        for (int s = 0; s < 3; s++) mmcr_optim_step(a, dst, g, 4.8);
        mmcr_optim_destroy(&a);
    }
    CHECK(!memcmp(pa, pb, n * sizeof(float)));
    free(p0), free(g), free(pa), free(pb);
}

static void test_create_errors(void) {
    mmcr_optim_config cfg;
    mmcr_optim *o = NULL;
    mmcr_err e;
    mmcr_tensor_info t[2];
    memset(t, 0, sizeof t);
    snprintf(t[0].name, sizeof t[0].name, "a");
    snprintf(t[1].name, sizeof t[1].name, "b");
    t[0].offset = 0, t[0].size = 10;
    t[1].offset = 8, t[1].size = 4;
    mmcr_optim_config_default(&cfg, MMCR_OPTIM_LARS);
    CHECK(mmcr_optim_create(&o, &cfg, 20, NULL, 0, &e) == MMCR_ERR_ARG && o == NULL);
    CHECK(mmcr_optim_create(&o, &cfg, 20, t, 2, &e) == MMCR_ERR_ARG && strstr(e.msg, "overlap"));
    t[1].offset = 18;
    CHECK(mmcr_optim_create(&o, &cfg, 20, t, 2, &e) == MMCR_ERR_ARG && strstr(e.msg, "'b'"));
    t[1].offset = 12; /* a gap of padding is allowed */
    CHECK(mmcr_optim_create(&o, &cfg, 20, t, 2, &e) == MMCR_OK);
    CHECK(mmcr_optim_state_floats(o) == 20);
    mmcr_optim_destroy(&o);
    cfg.momentum = 1.0;
    CHECK(mmcr_optim_create(&o, &cfg, 20, t, 2, &e) == MMCR_ERR_ARG && strstr(e.msg, "momentum"));
    mmcr_optim_config_default(&cfg, MMCR_OPTIM_SGD);
    cfg.momentum = 0;
    cfg.nesterov = 1;
    CHECK(mmcr_optim_create(&o, &cfg, 20, NULL, 0, &e) == MMCR_ERR_ARG && strstr(e.msg, "Nesterov"));
    cfg.nesterov = 0;
    CHECK(mmcr_optim_create(&o, &cfg, 20, NULL, 0, &e) == MMCR_OK && mmcr_optim_state_floats(o) == 0);
    mmcr_optim_destroy(&o);
    mmcr_optim_config_default(&cfg, MMCR_OPTIM_ADAM);
    cfg.eps = 0;
    CHECK(mmcr_optim_create(&o, &cfg, 20, NULL, 0, &e) == MMCR_ERR_ARG && strstr(e.msg, "eps"));
    cfg.eps = 1e-8;
    cfg.beta2 = 1.0;
    CHECK(mmcr_optim_create(&o, &cfg, 20, NULL, 0, &e) == MMCR_ERR_ARG);
    cfg.beta2 = 0.999;
    cfg.weight_decay = -1;
    CHECK(mmcr_optim_create(&o, &cfg, 20, NULL, 0, &e) == MMCR_ERR_ARG);
    cfg.weight_decay = 0;
    CHECK(mmcr_optim_create(&o, &cfg, 0, NULL, 0, &e) == MMCR_ERR_ARG);
    CHECK(mmcr_optim_create(&o, &cfg, 20, NULL, 0, &e) == MMCR_OK && mmcr_optim_state_floats(o) == 40);
    mmcr_optim_destroy(&o);
    mmcr_optim_destroy(&o); /* NULL is a no-op */
}

static void test_sched_boundaries(void) {
    mmcr_schedule s;
    mmcr_schedule_default(&s, MMCR_SCHED_CONSTANT, 10);
    CHECK(mmcr_schedule_factor(&s, 0) == 1.0 && mmcr_schedule_factor(&s, 1000) == 1.0);

    mmcr_schedule_default(&s, MMCR_SCHED_COSINE, 100);
    s.warmup_steps = 10;
    s.final_factor = 0.001;
    CHECK(mmcr_schedule_factor(&s, 0) == 0.0);          /* warm-up starts from 0 */
    CHECK(mmcr_schedule_factor(&s, -5) == 0.0);         /* negative steps clamp to 0 */
    CHECK_CLOSE(mmcr_schedule_factor(&s, 5), 0.5, 0, 1e-15);
    CHECK_CLOSE(mmcr_schedule_factor(&s, 9), 0.9, 0, 1e-15);
    CHECK(mmcr_schedule_factor(&s, 10) == 1.0);         /* peak right after warm-up */
    CHECK_CLOSE(mmcr_schedule_factor(&s, 55), 0.5005, 0, 1e-12); /* half-way: (1 + f) / 2 */
    CHECK_CLOSE(mmcr_schedule_factor(&s, 100), 0.001, 0, 1e-12);
    CHECK_CLOSE(mmcr_schedule_factor(&s, 10000), 0.001, 0, 1e-12); /* stays at the floor */
    s.warmup_steps = 0;
    CHECK(mmcr_schedule_factor(&s, 0) == 1.0);
    s.warmup_steps = 200; /* warm-up longer than the run: ends at the floor */
    CHECK_CLOSE(mmcr_schedule_factor(&s, 150), 0.75, 0, 1e-15);
    CHECK_CLOSE(mmcr_schedule_factor(&s, 300), 0.001, 0, 1e-12);

    mmcr_schedule_default(&s, MMCR_SCHED_ONECYCLE, 100);
    CHECK_CLOSE(mmcr_schedule_factor(&s, 0), 1.0 / 25, 0, 1e-15);             /* max/div */
    CHECK_CLOSE(mmcr_schedule_factor(&s, 29), 1.0, 0, 1e-15);                 /* peak at pct*T - 1 */
    CHECK_CLOSE(mmcr_schedule_factor(&s, 99), 1.0 / 25 / 1e4, 0, 1e-12);      /* min at T - 1 */
    CHECK_CLOSE(mmcr_schedule_factor(&s, 100), 1.0 / 25 / 1e4, 0, 1e-12);     /* and after */
    /* Rising phase under one step: starts at (or past) the peak, never NaN. */
    s.total_steps = 10;
    s.pct_start = 0.1; /* end1 = 0 */
    CHECK_CLOSE(mmcr_schedule_factor(&s, 0), 1.0, 0, 1e-15);
    s.pct_start = 0.05; /* end1 < 0 */
    CHECK(mmcr_schedule_factor(&s, 0) < 1.0 && mmcr_schedule_factor(&s, 0) > 0.99);
    s.total_steps = 1;
    s.pct_start = 1.0;
    CHECK(isfinite(mmcr_schedule_factor(&s, 0)));

    mmcr_err e;
    mmcr_schedule_default(&s, MMCR_SCHED_COSINE, 0);
    CHECK(mmcr_schedule_check(&s, &e) == MMCR_ERR_ARG && strstr(e.msg, "total_steps"));
    mmcr_schedule_default(&s, MMCR_SCHED_COSINE, 10);
    s.final_factor = 2;
    CHECK(mmcr_schedule_check(&s, &e) == MMCR_ERR_ARG && strstr(e.msg, "final_factor"));
    mmcr_schedule_default(&s, MMCR_SCHED_ONECYCLE, 10);
    s.pct_start = 0;
    CHECK(mmcr_schedule_check(&s, &e) == MMCR_ERR_ARG && strstr(e.msg, "pct_start"));
    s.pct_start = 0.3;
    s.div_factor = 0;
    CHECK(mmcr_schedule_check(&s, &e) == MMCR_ERR_ARG);
}

int main(void) {
    static fixture f;
    int ok = load_fixture(&f);
    CHECK_MSG(ok, "fixture could not be read");
    if (ok) {
        test_parity(&f);
        test_sched_parity(&f);
    }
    test_lars_rules();
    test_resume();
    test_create_errors();
    test_sched_boundaries();
    return test_finish("test_optim");
}
