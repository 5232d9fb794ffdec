/* Figures and summaries of a training run (metrics.jsonl) or a sweep directory (results.jsonl):
 * training curves; PPE heat maps over (P, D) with the P = D ridge check; the ridge seen along
 * D/P; measured PPE against the random-matrix prediction; downstream accuracy; scaling-law fits
 * with held-out predictions (docs/analyses.md). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmcr/analysis.h"
#include "mmcr/config.h"
#include "mmcr/io.h"
#include "mmcr/json.h"
#include "mmcr/plot.h"

#define PATH_CAP 1024
#define MINUS "\xe2\x88\x92"
#define GAMMA "\xce\xb3"
#define MU "\xce\xbc"
#define SQRT "\xe2\x88\x9a"
#define ALPHA "\xce\xb1"
#define PM "\xc2\xb1"

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static double num_or_nan(const mmcr_json *obj, const char *key) {
    const mmcr_json *v = mmcr_json_get(obj, key);
    return v && v->type == MMCR_JSON_NUMBER ? v->number : NAN;
}

static void fmt_num(char *buf, size_t cap, double v) { mmcr_format_double(buf, cap, v); }

/* A horizontal line y over [x0, x1] as a series of its own colour and dash (reference lines of
 * the plot module are all grey, which cannot tell two of them apart). Many points, so that the
 * automatic legend placement sees the line; spaced evenly in log x when x0 > 0. */
static mmcr_status add_hline(mmcr_plot *pl, double x0, double x1, double y, const char *label, mmcr_plot_color col,
                             mmcr_plot_line line, mmcr_err *err) {
    enum { NP = 64 };
    double x[NP], yy[NP];
    const int logx = x0 > 0 && x1 > 10 * x0;
    for (int i = 0; i < NP; i++) {
        const double t = (double)i / (NP - 1);
        x[i] = logx ? x0 * pow(x1 / x0, t) : x0 + (x1 - x0) * t;
        yy[i] = y;
    }
    mmcr_plot_series s = {.label = label, .x = x, .y = yy, .n = NP, .line = line, .color = &col, .line_width = 2};
    return mmcr_plot_add_series(pl, &s, err);
}

static const mmcr_plot_color COL_RED = {0.84, 0.15, 0.16}, COL_GREEN = {0.17, 0.63, 0.17},
                             COL_PURPLE = {0.58, 0.40, 0.74};

/* ------------------------------------------------------------------ a training run */

typedef struct series_buf {
    double *step, *loss, *ppe, *c2, *lr;
    size_t n, cap;
} series_buf;

static int push_metric(series_buf *s, double step, double loss, double ppe, double c2, double lr) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double **arr[5] = {&s->step, &s->loss, &s->ppe, &s->c2, &s->lr};
        for (int i = 0; i < 5; i++) {
            double *p = realloc(*arr[i], cap * sizeof(double));
            if (!p) return 0;
            *arr[i] = p;
        }
        s->cap = cap;
    }
    s->step[s->n] = step, s->loss[s->n] = loss, s->ppe[s->n] = ppe, s->c2[s->n] = c2, s->lr[s->n] = lr;
    s->n++;
    return 1;
}

typedef struct line_fig {
    const char *file, *title, *xlabel, *ylabel;
    const double *x, *y;
    size_t n;
    const char *label;
    int logy;
    mmcr_plot_legend legend; /* 0: automatic */
} line_fig;

static mmcr_status draw_line_fig(const char *out_dir, const line_fig *lf, const double *refs, const char *const *ref_labels,
                                 int nrefs, const mmcr_logger *log, mmcr_report_summary *sum, mmcr_err *err) {
    char path[2 * PATH_CAP + 256];
    snprintf(path, sizeof path, "%s/%s", out_dir, lf->file);
    mmcr_plot *pl = mmcr_plot_create(1000, 620, err);
    if (!pl) return MMCR_ERR_NOMEM;
    mmcr_status st = mmcr_plot_set_labels(pl, lf->title, lf->xlabel, lf->ylabel, err);
    if (lf->logy) mmcr_plot_set_scale(pl, MMCR_PLOT_LINEAR, MMCR_PLOT_LOG10);
    mmcr_plot_set_legend(pl, lf->legend);
    mmcr_plot_series s = {.label = lf->label, .x = lf->x, .y = lf->y, .n = lf->n, .line = MMCR_LINE_SOLID,
                          .marker = lf->n <= 60 ? MMCR_MARKER_CIRCLE : MMCR_MARKER_NONE, .marker_size = 5};
    if (st == MMCR_OK) st = mmcr_plot_add_series(pl, &s, err);
    double x0 = INFINITY, x1 = -INFINITY;
    for (size_t i = 0; i < lf->n; i++)
        if (isfinite(lf->x[i])) x0 = fmin(x0, lf->x[i]), x1 = fmax(x1, lf->x[i]);
    const mmcr_plot_color cols[2] = {COL_RED, COL_GREEN};
    const mmcr_plot_line lines[2] = {MMCR_LINE_DASHED, MMCR_LINE_DOTTED};
    for (int i = 0; i < nrefs && st == MMCR_OK; i++)
        if (isfinite(refs[i]) && x0 <= x1)
            st = add_hline(pl, x0, x1, refs[i], ref_labels[i], cols[i % 2], lines[i % 2], err);
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    if (st == MMCR_OK) {
        sum->figures++;
        mmcr_logf(log, MMCR_LOG_INFO, "wrote %s", path);
    }
    return st;
}

static mmcr_status report_run(const char *dir, const char *out_dir, const mmcr_logger *log, mmcr_report_summary *sum,
                              mmcr_err *err) {
    char path[2 * PATH_CAP + 256];
    sum->kind = 1;
    /* P, D, K from config.json (optional: without it the reference lines are left out). */
    int64_t P = 0, D = 0, K = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    mmcr_json *cfg = NULL;
    if (file_exists(path) && mmcr_json_parse_file(&cfg, path, NULL) == MMCR_OK) {
        mmcr_json_int64(mmcr_json_get(cfg, "batch"), &P);
        mmcr_json_int64(mmcr_json_get(cfg, "proj-out"), &D);
        mmcr_json_int64(mmcr_json_get(cfg, "views"), &K);
    }
    mmcr_json_free(&cfg);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    series_buf s = {0};
    char line[8192];
    long lineno = 0;
    mmcr_status st = MMCR_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        mmcr_json *j = NULL;
        if (mmcr_json_parse(&j, line, strlen(line), path, NULL) != MMCR_OK) {
            mmcr_logf(log, MMCR_LOG_WARN, "%s: line %ld is not JSON; skipped", path, lineno);
            continue;
        }
        if (!push_metric(&s, num_or_nan(j, "step"), num_or_nan(j, "loss"), num_or_nan(j, "ppe"),
                         num_or_nan(j, "mean_centroid_norm2"), num_or_nan(j, "lr"))) {
            st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
            mmcr_json_free(&j);
            break;
        }
        mmcr_json_free(&j);
    }
    fclose(f);
    if (st == MMCR_OK && s.n == 0) st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' holds no metrics", path);
    char title[256];
    if (P > 0 && D > 0 && K > 0)
        snprintf(title, sizeof title, " (P = %lld, D = %lld, K = %lld)", (long long)P, (long long)D, (long long)K);
    else
        title[0] = '\0';
    if (st == MMCR_OK) {
        char t[320];
        snprintf(t, sizeof t, "Training loss " MINUS "\xe2\x80\x96M\xe2\x80\x96* (+ local term)%s", title);
        line_fig lf = {"loss.png", t, "step", "loss", s.step, s.loss, s.n, "training batches", 0, MMCR_LEGEND_AUTO};
        st = draw_line_fig(out_dir, &lf, NULL, NULL, 0, log, sum, err);
    }
    if (st == MMCR_OK) {
        double refs[2] = {NAN, NAN};
        char l0[96], l1[96];
        const char *labels[2] = {l0, l1};
        if (P > 0 && D > 0 && K > 0) {
            mmcr_theory_pred pr;
            if (mmcr_theory_predict(P, D, K, -1.0, &pr, NULL) == MMCR_OK) {
                refs[0] = pr.ppe_aligned, refs[1] = pr.ppe_init;
                snprintf(l0, sizeof l0, "aligned + uniform: 1 " MINUS " m(" GAMMA ") = %.3f", pr.ppe_aligned);
                snprintf(l1, sizeof l1, "random init: 1 " MINUS " m(" GAMMA ")/" SQRT "K = %.3f", pr.ppe_init);
            }
        }
        char t[320];
        snprintf(t, sizeof t, "Pretraining percent error on the training batches%s", title);
        line_fig lf = {"ppe.png", t, "step", "PPE", s.step, s.ppe, s.n, "PPE (training batch)", 0, MMCR_LEGEND_AUTO};
        st = draw_line_fig(out_dir, &lf, refs, labels, 2, log, sum, err);
    }
    if (st == MMCR_OK) {
        double refs[2] = {1.0, K > 0 ? 1.0 / (double)K : NAN};
        const char *labels[2] = {"1: views aligned", "1/K: independent views"};
        char t[320];
        snprintf(t, sizeof t, "Mean squared centroid norm%s", title);
        /* The line at 1 runs along the top edge, where an inside legend would cover it. */
        line_fig lf = {"centroid_norm.png", t, "step", "mean \xe2\x80\x96" MU "\xe2\x80\x96\xc2\xb2", s.step, s.c2, s.n,
                       "training batch", 0, MMCR_LEGEND_OUTSIDE_RIGHT};
        st = draw_line_fig(out_dir, &lf, refs, labels, 2, log, sum, err);
    }
    if (st == MMCR_OK) {
        int pos = 1;
        for (size_t i = 0; i < s.n; i++) pos &= s.lr[i] > 0;
        line_fig lf = {"lr.png", "Learning rate", "step", "learning rate", s.step, s.lr, s.n, "schedule", pos, MMCR_LEGEND_AUTO};
        st = draw_line_fig(out_dir, &lf, NULL, NULL, 0, log, sum, err);
    }
    free(s.step), free(s.loss), free(s.ppe), free(s.c2), free(s.lr);
    return st;
}

/* ------------------------------------------------------------------ a sweep */

enum { AX_P, AX_D, AX_K, AX_STEPS, AX_WIDTH, AX_SEED, N_AX };
static const char *const ax_names[N_AX] = {"P", "D", "K", "steps", "width", "seed"};

typedef struct rec {
    int ax[N_AX];
    double compute, ppe, ppe_se, c2, knn, probe, train_ppe;
} rec;

static mmcr_status read_results(const char *path, rec **out, size_t *n_out, const mmcr_logger *log, mmcr_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    rec *r = NULL;
    size_t n = 0, cap = 0;
    char line[16384];
    long lineno = 0;
    mmcr_status st = MMCR_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        mmcr_json *j = NULL;
        if (line[0] == '\n') continue;
        if (mmcr_json_parse(&j, line, strlen(line), path, NULL) != MMCR_OK) {
            mmcr_logf(log, MMCR_LOG_WARN, "%s: line %ld is not JSON; skipped", path, lineno);
            continue;
        }
        const char *status = mmcr_json_string(mmcr_json_get(j, "status"));
        if (status && strcmp(status, "ok") != 0) {
            mmcr_json_free(&j);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            rec *nr = realloc(r, cap * sizeof *nr);
            if (!nr) {
                mmcr_json_free(&j);
                st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
                break;
            }
            r = nr;
        }
        rec *q = &r[n];
        int ok = 1;
        for (int a = 0; a < N_AX; a++) {
            int64_t v = 0;
            ok &= mmcr_json_int64(mmcr_json_get(j, ax_names[a]), &v);
            q->ax[a] = (int)v;
        }
        q->compute = num_or_nan(j, "compute");
        q->ppe = num_or_nan(j, "ppe");
        q->ppe_se = num_or_nan(j, "ppe_se");
        q->c2 = num_or_nan(j, "centroid_norm2");
        q->knn = num_or_nan(j, "knn_top1");
        q->probe = num_or_nan(j, "probe_top1");
        q->train_ppe = num_or_nan(j, "train_ppe");
        mmcr_json_free(&j);
        if (!ok || !isfinite(q->ppe)) {
            mmcr_logf(log, MMCR_LOG_WARN, "%s: line %ld lacks the grid keys or a PPE; skipped", path, lineno);
            continue;
        }
        n++;
    }
    fclose(f);
    if (st != MMCR_OK) {
        free(r);
        return st;
    }
    *out = r;
    *n_out = n;
    return MMCR_OK;
}

static int cmp_int(const void *a, const void *b) {
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sorted distinct values of axis a over the records that pass sel (NULL: all). */
static int distinct(const rec *r, size_t n, int a, const int *sel, int *vals) {
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        if (sel && !sel[i]) continue;
        int seen = 0;
        for (int k = 0; k < m; k++) seen |= vals[k] == r[i].ax[a];
        if (!seen) vals[m++] = r[i].ax[a];
    }
    qsort(vals, (size_t)m, sizeof(int), cmp_int);
    return m;
}

static int index_of(const int *vals, int n, int v) {
    for (int i = 0; i < n; i++)
        if (vals[i] == v) return i;
    return -1;
}

typedef struct table {
    int k, steps, width;
    int np, nd;
    int *ps, *ds;
    double *ppe, *c2, *knn, *probe, *pred; /* np x nd, mean over seeds; NaN: no run */
    int *count;
} table;

static void table_free(table *t) {
    free(t->ps), free(t->ds), free(t->ppe), free(t->c2), free(t->knn), free(t->probe), free(t->pred), free(t->count);
    memset(t, 0, sizeof *t);
}

static mmcr_status heatmap_png(const char *path, const table *t, const double *z, const char *title, const char *cbar,
                               int digits, mmcr_err *err) {
    char(*lab)[24] = malloc((size_t)(t->np + t->nd) * 24);
    const char **lp = malloc(sizeof(char *) * (size_t)(t->np + t->nd));
    if (!lab || !lp) {
        free(lab), free(lp);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < t->np + t->nd; i++) {
        snprintf(lab[i], 24, "%d", i < t->np ? t->ps[i] : t->ds[i - t->np]);
        lp[i] = lab[i];
    }
    int wpx = 260 + 120 * (t->nd < 6 ? 6 : t->nd), hpx = 180 + 70 * (t->np < 6 ? 6 : t->np);
    mmcr_plot *pl = mmcr_plot_create(wpx < 4000 ? wpx : 4000, hpx < 4000 ? hpx : 4000, err);
    mmcr_status st = pl ? MMCR_OK : MMCR_ERR_NOMEM;
    if (st == MMCR_OK) st = mmcr_plot_set_labels(pl, title, "D (embedding dimension)", "P (batch size)", err);
    mmcr_plot_heatmap h = {.z = z, .rows = t->np, .cols = t->nd, .row_labels = lp, .col_labels = lp + t->np,
                           .annotate = MMCR_ANNOT_FIXED, .digits = digits, .colorbar_label = cbar};
    if (st == MMCR_OK) st = mmcr_plot_set_heatmap(pl, &h, err);
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    free(lab), free(lp);
    return st;
}

/* PPE against D/P, one curve per P, with the predicted ridge D/P = 1 marked. */
static mmcr_status ridge_png(const char *path, const table *t, const char *title, mmcr_err *err) {
    double *x = malloc(sizeof(double) * (size_t)t->nd), *y = malloc(sizeof(double) * (size_t)t->nd);
    double *ye = malloc(sizeof(double) * (size_t)t->nd);
    mmcr_plot *pl = mmcr_plot_create(1000, 650, err);
    mmcr_status st = (x && y && ye && pl) ? MMCR_OK : mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    if (st == MMCR_OK) st = mmcr_plot_set_labels(pl, title, "D / P  (embedding dimension / batch size)", "PPE on fresh batches", err);
    if (st == MMCR_OK) {
        mmcr_plot_set_scale(pl, MMCR_PLOT_LOG10, MMCR_PLOT_LINEAR);
        mmcr_plot_set_legend(pl, MMCR_LEGEND_OUTSIDE_RIGHT);
    }
    static const mmcr_plot_marker marks[] = {MMCR_MARKER_CIRCLE, MMCR_MARKER_SQUARE, MMCR_MARKER_TRIANGLE,
                                             MMCR_MARKER_DIAMOND, MMCR_MARKER_CROSS, MMCR_MARKER_PLUS};
    for (int i = 0; i < t->np && st == MMCR_OK; i++) {
        size_t n = 0;
        for (int j = 0; j < t->nd; j++) {
            const double v = t->ppe[(size_t)i * t->nd + j];
            if (!isfinite(v)) continue;
            x[n] = (double)t->ds[j] / t->ps[i];
            y[n] = v;
            ye[n] = NAN;
            n++;
        }
        char label[48];
        snprintf(label, sizeof label, "P = %d", t->ps[i]);
        mmcr_plot_series s = {.label = label, .x = x, .y = y, .n = n, .line = MMCR_LINE_SOLID,
                              .marker = marks[i % 6], .marker_size = 8};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    if (st == MMCR_OK) st = mmcr_plot_add_ref(pl, MMCR_REF_VERTICAL, 1.0, 0, "P = D (predicted ridge)", err);
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    free(x), free(y), free(ye);
    return st;
}

/* Measured PPE against the prediction 1 - sqrt(c) m(gamma) with each run's measured c. */
static mmcr_status theory_png(const char *path, const table *t, const char *title, mmcr_err *err) {
    const size_t nc = (size_t)t->np * t->nd;
    double *x = malloc(sizeof(double) * nc), *y = malloc(sizeof(double) * nc);
    mmcr_plot *pl = mmcr_plot_create(900, 700, err);
    mmcr_status st = (x && y && pl) ? MMCR_OK : mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    if (st == MMCR_OK)
        st = mmcr_plot_set_labels(pl, title, "predicted PPE = 1 " MINUS " " SQRT "(E\xe2\x80\x96" MU "\xe2\x80\x96\xc2\xb2) m(" GAMMA ")",
                                  "measured PPE (fresh batches)", err);
    if (st == MMCR_OK) mmcr_plot_set_legend(pl, MMCR_LEGEND_UPPER_LEFT);
    /* Three groups: P < D, P = D, P > D. */
    static const char *const names[3] = {"P < D", "P = D", "P > D"};
    static const mmcr_plot_marker marks[3] = {MMCR_MARKER_TRIANGLE, MMCR_MARKER_CIRCLE, MMCR_MARKER_SQUARE};
    double lo = INFINITY, hi = -INFINITY;
    for (int g = 0; g < 3 && st == MMCR_OK; g++) {
        size_t n = 0;
        for (int i = 0; i < t->np; i++)
            for (int j = 0; j < t->nd; j++) {
                const int cmp = (t->ps[i] > t->ds[j]) - (t->ps[i] < t->ds[j]);
                const double m = t->ppe[(size_t)i * t->nd + j], p = t->pred[(size_t)i * t->nd + j];
                if (cmp + 1 != g || !isfinite(m) || !isfinite(p)) continue;
                x[n] = p, y[n] = m, n++;
                lo = fmin(lo, fmin(p, m)), hi = fmax(hi, fmax(p, m));
            }
        mmcr_plot_series s = {.label = names[g], .x = x, .y = y, .n = n, .line = MMCR_LINE_NONE, .marker = marks[g],
                              .marker_size = 9};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    if (st == MMCR_OK && isfinite(lo)) {
        const double pad = 0.05 * (hi - lo + 1e-3);
        mmcr_plot_set_xlim(pl, lo - pad, hi + pad);
        mmcr_plot_set_ylim(pl, lo - pad, hi + pad);
        st = mmcr_plot_add_ref(pl, MMCR_REF_LINE, 1.0, 0.0, "measured = predicted", err);
    }
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    free(x), free(y);
    return st;
}

static void json_matrix(FILE *f, const char *key, const double *z, int rows, int cols) {
    char buf[64];
    fprintf(f, ",\"%s\":[", key);
    for (int i = 0; i < rows; i++) {
        fputs(i ? ",[" : "[", f);
        for (int j = 0; j < cols; j++) {
            fmt_num(buf, sizeof buf, z[(size_t)i * cols + j]);
            fprintf(f, "%s%s", j ? "," : "", buf);
        }
        fputs("]", f);
    }
    fputs("]", f);
}

static void json_ints(FILE *f, const char *key, const int *v, int n) {
    fprintf(f, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? "," : "", v[i]);
    fputs("]", f);
}

/* The P = D check of one table: in each row (column) whose P (D) is also a column (row)
 * value, is the largest PPE on the diagonal cell? Rows with a missing cell are not checked. */
static void ridge_check(const table *t, FILE *js, FILE *md, mmcr_report_summary *sum) {
    int rows_ok = 0, rows_n = 0, cols_ok = 0, cols_n = 0;
    fputs(",\"rows\":[", js);
    int first = 1;
    for (int i = 0; i < t->np; i++) {
        const int jd = index_of(t->ds, t->nd, t->ps[i]);
        if (jd < 0) continue;
        int full = 1, arg = 0;
        for (int j = 0; j < t->nd; j++) {
            const double v = t->ppe[(size_t)i * t->nd + j];
            full &= isfinite(v);
            if (isfinite(v) && v > t->ppe[(size_t)i * t->nd + arg]) arg = j;
        }
        if (!full) continue;
        rows_n++;
        rows_ok += arg == jd;
        fprintf(js, "%s{\"P\":%d,\"argmax_D\":%d,\"peak_at_P\":%s}", first ? "" : ",", t->ps[i], t->ds[arg],
                arg == jd ? "true" : "false");
        first = 0;
    }
    fputs("],\"cols\":[", js);
    first = 1;
    for (int j = 0; j < t->nd; j++) {
        const int ip = index_of(t->ps, t->np, t->ds[j]);
        if (ip < 0) continue;
        int full = 1, arg = 0;
        for (int i = 0; i < t->np; i++) {
            const double v = t->ppe[(size_t)i * t->nd + j];
            full &= isfinite(v);
            if (isfinite(v) && v > t->ppe[(size_t)arg * t->nd + j]) arg = i;
        }
        if (!full) continue;
        cols_n++;
        cols_ok += arg == ip;
        fprintf(js, "%s{\"D\":%d,\"argmax_P\":%d,\"peak_at_D\":%s}", first ? "" : ",", t->ds[j], t->ps[arg],
                arg == ip ? "true" : "false");
        first = 0;
    }
    fprintf(js, "],\"rows_checked\":%d,\"rows_peak_at_P_eq_D\":%d,\"cols_checked\":%d,\"cols_peak_at_P_eq_D\":%d",
            rows_n, rows_ok, cols_n, cols_ok);
    fprintf(md, "\nRidge check: the row maximum is at D = P in %d of %d rows; the column maximum is at P = D in %d of "
            "%d columns.\n", rows_ok, rows_n, cols_ok, cols_n);
    sum->rows_checked += rows_n, sum->rows_peak_diag += rows_ok;
    sum->cols_checked += cols_n, sum->cols_peak_diag += cols_ok;
}

static void md_table(FILE *md, const table *t, const double *z, const char *what, int digits) {
    fprintf(md, "\n%s (rows P, columns D; **bold**: the row maximum):\n\n| P \\ D |", what);
    for (int j = 0; j < t->nd; j++) fprintf(md, " %d |", t->ds[j]);
    fputs("\n|---|", md);
    for (int j = 0; j < t->nd; j++) fputs("---|", md);
    fputc('\n', md);
    for (int i = 0; i < t->np; i++) {
        int arg = -1;
        for (int j = 0; j < t->nd; j++) {
            const double v = z[(size_t)i * t->nd + j];
            if (isfinite(v) && (arg < 0 || v > z[(size_t)i * t->nd + arg])) arg = j;
        }
        fprintf(md, "| %d |", t->ps[i]);
        for (int j = 0; j < t->nd; j++) {
            const double v = z[(size_t)i * t->nd + j];
            if (!isfinite(v))
                fputs(" – |", md);
            else if (j == arg)
                fprintf(md, " **%.*f** |", digits, v);
            else
                fprintf(md, " %.*f |", digits, v);
        }
        fputc('\n', md);
    }
}

static mmcr_status sweep_tables(const rec *r, size_t n, const char *out_dir, const mmcr_logger *log,
                                mmcr_report_summary *sum, mmcr_err *err) {
    int *sel = calloc(n ? n : 1, sizeof(int));
    int *ks = malloc(sizeof(int) * (n + 1)), *ss = malloc(sizeof(int) * (n + 1)), *ws = malloc(sizeof(int) * (n + 1));
    char path[2 * PATH_CAP + 256];
    FILE *js = NULL, *md = NULL;
    mmcr_atomic_file ajs = {0}, amd = {0};
    mmcr_status st = (sel && ks && ss && ws) ? MMCR_OK : mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    if (st == MMCR_OK) {
        snprintf(path, sizeof path, "%s/ridge.json", out_dir);
        st = mmcr_atomic_open(&ajs, path, err);
        js = ajs.f;
    }
    if (st == MMCR_OK) {
        snprintf(path, sizeof path, "%s/tables.md", out_dir);
        st = mmcr_atomic_open(&amd, path, err);
        md = amd.f;
        if (st != MMCR_OK) mmcr_atomic_abort(&ajs), js = NULL;
    }
    if (st != MMCR_OK) goto out;
    fputs("{\"tables\":[", js);
    const int nk = distinct(r, n, AX_K, NULL, ks), ns = distinct(r, n, AX_STEPS, NULL, ss),
              nw = distinct(r, n, AX_WIDTH, NULL, ws);
    int first = 1;
    for (int a = 0; a < nk && st == MMCR_OK; a++)
        for (int b = 0; b < ns && st == MMCR_OK; b++)
            for (int c = 0; c < nw && st == MMCR_OK; c++) {
                int cnt = 0;
                for (size_t i = 0; i < n; i++) {
                    sel[i] = r[i].ax[AX_K] == ks[a] && r[i].ax[AX_STEPS] == ss[b] && r[i].ax[AX_WIDTH] == ws[c];
                    cnt += sel[i];
                }
                if (!cnt) continue;
                table t = {.k = ks[a], .steps = ss[b], .width = ws[c]};
                t.ps = malloc(sizeof(int) * (size_t)cnt), t.ds = malloc(sizeof(int) * (size_t)cnt);
                if (!t.ps || !t.ds) {
                    table_free(&t);
                    st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
                    break;
                }
                t.np = distinct(r, n, AX_P, sel, t.ps);
                t.nd = distinct(r, n, AX_D, sel, t.ds);
                const size_t nc = (size_t)t.np * t.nd;
                double **arrs[5] = {&t.ppe, &t.c2, &t.knn, &t.probe, &t.pred};
                int okm = 1;
                for (int q = 0; q < 5; q++) okm &= (*arrs[q] = calloc(nc, sizeof(double))) != NULL;
                t.count = calloc(nc, sizeof(int));
                int *cknn = calloc(nc, sizeof(int)), *cprobe = calloc(nc, sizeof(int));
                if (!okm || !t.count || !cknn || !cprobe) {
                    free(cknn), free(cprobe);
                    table_free(&t);
                    st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
                    break;
                }
                int any_knn = 0, any_probe = 0;
                for (size_t i = 0; i < n; i++) {
                    if (!sel[i]) continue;
                    const size_t cell = (size_t)index_of(t.ps, t.np, r[i].ax[AX_P]) * t.nd +
                                        (size_t)index_of(t.ds, t.nd, r[i].ax[AX_D]);
                    t.ppe[cell] += r[i].ppe;
                    t.c2[cell] += r[i].c2;
                    t.count[cell]++;
                    if (isfinite(r[i].knn)) t.knn[cell] += r[i].knn, cknn[cell]++, any_knn = 1;
                    if (isfinite(r[i].probe)) t.probe[cell] += r[i].probe, cprobe[cell]++, any_probe = 1;
                }
                for (size_t q = 0; q < nc; q++) {
                    const int m = t.count[q];
                    t.ppe[q] = m ? t.ppe[q] / m : NAN;
                    t.c2[q] = m ? t.c2[q] / m : NAN;
                    t.knn[q] = cknn[q] ? t.knn[q] / cknn[q] : NAN;
                    t.probe[q] = cprobe[q] ? t.probe[q] / cprobe[q] : NAN;
                    const int P = t.ps[q / t.nd], D = t.ds[q % t.nd];
                    mmcr_theory_pred pr;
                    t.pred[q] = (m && t.c2[q] >= 0 && t.c2[q] <= 1 &&
                                 mmcr_theory_predict(P, D, t.k, t.c2[q], &pr, NULL) == MMCR_OK)
                                    ? pr.ppe_predicted
                                    : NAN;
                }
                free(cknn), free(cprobe);
                sum->tables++;
                char tag[96], title[256];
                snprintf(tag, sizeof tag, "K%d_steps%d_w%d", t.k, t.steps, t.width);
                fprintf(js, "%s{\"K\":%d,\"steps\":%d,\"width\":%d", first ? "" : ",", t.k, t.steps, t.width);
                first = 0;
                json_ints(js, "P", t.ps, t.np);
                json_ints(js, "D", t.ds, t.nd);
                json_matrix(js, "ppe", t.ppe, t.np, t.nd);
                json_matrix(js, "centroid_norm2", t.c2, t.np, t.nd);
                json_matrix(js, "ppe_predicted", t.pred, t.np, t.nd);
                if (any_knn) json_matrix(js, "knn_top1", t.knn, t.np, t.nd);
                if (any_probe) json_matrix(js, "probe_top1", t.probe, t.np, t.nd);
                fprintf(md, "\n### K = %d, %d steps, width %d\n", t.k, t.steps, t.width);
                md_table(md, &t, t.ppe, "PPE on fresh batches", 3);
                ridge_check(&t, js, md, sum);
                md_table(md, &t, t.pred, "Prediction 1 - sqrt(E||mu||^2) m(gamma) with each run's measured E||mu||^2", 3);
                md_table(md, &t, t.c2, "Mean squared centroid norm E||mu||^2 on fresh batches", 3);
                if (any_knn) md_table(md, &t, t.knn, "kNN top-1 accuracy", 3);
                if (any_probe) md_table(md, &t, t.probe, "Linear-probe top-1 accuracy", 3);
                fputs("}", js);

                snprintf(title, sizeof title, "PPE on fresh batches, K = %d, %d steps, width %d (diagonal: P = D, the "
                         "predicted ridge)", t.k, t.steps, t.width);
                /* A single cell (e.g. one point of a steps series) is in the tables, not in figures. */
                if (nc < 2) {
                    table_free(&t);
                    continue;
                }
                snprintf(path, sizeof path, "%s/heat_ppe_%s.png", out_dir, tag);
                st = heatmap_png(path, &t, t.ppe, title, "PPE", 3, err);
                if (st == MMCR_OK) sum->figures++, mmcr_logf(log, MMCR_LOG_INFO, "wrote %s", path);
                if (st == MMCR_OK && t.np >= 1 && t.nd >= 2) {
                    snprintf(title, sizeof title, "The P = D ridge: PPE on fresh batches, K = %d, %d steps, width %d",
                             t.k, t.steps, t.width);
                    snprintf(path, sizeof path, "%s/ridge_%s.png", out_dir, tag);
                    st = ridge_png(path, &t, title, err);
                    if (st == MMCR_OK) sum->figures++, mmcr_logf(log, MMCR_LOG_INFO, "wrote %s", path);
                }
                if (st == MMCR_OK) {
                    snprintf(title, sizeof title, "Measured vs random-matrix PPE, K = %d, %d steps, width %d", t.k,
                             t.steps, t.width);
                    snprintf(path, sizeof path, "%s/ppe_vs_theory_%s.png", out_dir, tag);
                    st = theory_png(path, &t, title, err);
                    if (st == MMCR_OK) sum->figures++, mmcr_logf(log, MMCR_LOG_INFO, "wrote %s", path);
                }
                for (int acc = 0; acc < 2 && st == MMCR_OK; acc++) {
                    if (!(acc ? any_probe : any_knn)) continue;
                    snprintf(title, sizeof title, "%s top-1 accuracy, K = %d, %d steps, width %d",
                             acc ? "Linear-probe" : "kNN", t.k, t.steps, t.width);
                    snprintf(path, sizeof path, "%s/heat_%s_%s.png", out_dir, acc ? "probe" : "knn", tag);
                    st = heatmap_png(path, &t, acc ? t.probe : t.knn, title, "top-1 accuracy", 3, err);
                    if (st == MMCR_OK) sum->figures++, mmcr_logf(log, MMCR_LOG_INFO, "wrote %s", path);
                }
                table_free(&t);
            }
    fputs("]}\n", js);
    if (st == MMCR_OK) {
        st = mmcr_atomic_commit(&ajs, err);
        if (st == MMCR_OK) st = mmcr_atomic_commit(&amd, err);
        else mmcr_atomic_abort(&amd);
    } else {
        mmcr_atomic_abort(&ajs);
        mmcr_atomic_abort(&amd);
    }
out:
    free(sel), free(ks), free(ss), free(ws);
    return st;
}

/* ---- scaling fits ---- */

static mmcr_status parse_fit_by(const char *s, int *use, mmcr_err *err) {
    for (int a = 0; a < N_AX; a++) use[a] = 0;
    if (!s) s = "P,D,K,width";
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int a = 0; a < N_AX; a++)
            if (a != AX_STEPS && strlen(ax_names[a]) == len && strncmp(p, ax_names[a], len) == 0) use[a] = found = 1;
        if (!found)
            return mmcr_err_set(err, MMCR_ERR_ARG, "option --fit-by: '%.*s' is not one of P, D, K, width, seed",
                                (int)len, p);
        p += len;
        if (*p == ',') p++;
    }
    return MMCR_OK;
}

static mmcr_status fit_png(const char *path, const char *title, const double *c, const double *y, int n,
                           const double *held_c, int nh, const mmcr_scaling_fit *full, const mmcr_scaling_fit *ho,
                           double mp_floor, mmcr_err *err) {
    enum { NC = 200 };
    double cx[NC], cy[NC];
    double *fx = malloc(sizeof(double) * (size_t)n), *fy = malloc(sizeof(double) * (size_t)n);
    double *hx = malloc(sizeof(double) * (size_t)n), *hy = malloc(sizeof(double) * (size_t)n);
    mmcr_plot *pl = mmcr_plot_create(1000, 650, err);
    mmcr_status st = (fx && fy && hx && hy && pl) ? MMCR_OK : mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    if (st == MMCR_OK)
        st = mmcr_plot_set_labels(pl, title, "compute C = steps \xc3\x97 P \xc3\x97 K (views processed)", "PPE on fresh batches", err);
    if (st == MMCR_OK) {
        mmcr_plot_set_scale(pl, MMCR_PLOT_LOG10, MMCR_PLOT_LINEAR);
        mmcr_plot_set_legend(pl, MMCR_LEGEND_UPPER_RIGHT);
    }
    double cmin = INFINITY, cmax = -INFINITY;
    int nf = 0, nhp = 0;
    const double cut = nh > 0 ? held_c[0] : INFINITY;
    for (int i = 0; i < n; i++) {
        cmin = fmin(cmin, c[i]), cmax = fmax(cmax, c[i]);
        if (c[i] < cut)
            fx[nf] = c[i], fy[nf] = y[i], nf++;
        else
            hx[nhp] = c[i], hy[nhp] = y[i], nhp++;
    }
    const mmcr_plot_color black = {0.1, 0.1, 0.1}, red = {0.84, 0.15, 0.16}, blue = {0.12, 0.47, 0.71};
    if (st == MMCR_OK) {
        mmcr_plot_series s = {.label = nh > 0 ? "runs used by the held-out fit" : "runs", .x = fx, .y = fy, .n = (size_t)nf,
                              .line = MMCR_LINE_NONE, .marker = MMCR_MARKER_CIRCLE, .marker_size = 9, .color = &black};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    if (st == MMCR_OK && nhp > 0) {
        mmcr_plot_series s = {.label = "held-out runs (largest C)", .x = hx, .y = hy, .n = (size_t)nhp,
                              .line = MMCR_LINE_NONE, .marker = MMCR_MARKER_SQUARE, .marker_size = 10, .color = &red};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    const double l0 = log10(cmin) - 0.1, l1 = log10(cmax) + 0.1;
    for (int pass = 0; pass < 2 && st == MMCR_OK; pass++) {
        const mmcr_scaling_fit *f = pass == 0 ? full : ho;
        if (!f) continue;
        for (int i = 0; i < NC; i++) {
            cx[i] = pow(10.0, l0 + (l1 - l0) * i / (NC - 1));
            cy[i] = mmcr_scaling_predict(f, cx[i]);
        }
        char label[200];
        snprintf(label, sizeof label, "%s: %.3f + %.3g C^" MINUS "%.3f", pass == 0 ? "fit on all runs" : "fit without held-out",
                 f->e, f->a_raw, f->alpha);
        mmcr_plot_series s = {.label = label, .x = cx, .y = cy, .n = NC,
                              .line = pass == 0 ? MMCR_LINE_SOLID : MMCR_LINE_DASHED, .color = pass == 0 ? &blue : &red};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    if (st == MMCR_OK && full) {
        char label[120];
        snprintf(label, sizeof label, full->fixed_floor ? "floor E = %.4f (held fixed)" : "fitted floor E = %.4f", full->e);
        st = add_hline(pl, pow(10.0, l0), pow(10.0, l1), full->e, label, blue, MMCR_LINE_DOTTED, err);
    }
    if (st == MMCR_OK && isfinite(mp_floor)) {
        char label[160];
        snprintf(label, sizeof label, "random-matrix floor 1 " MINUS " " SQRT "(E\xe2\x80\x96" MU "\xe2\x80\x96\xc2\xb2) m(" GAMMA ") = %.4f", mp_floor);
        st = add_hline(pl, pow(10.0, l0), pow(10.0, l1), mp_floor, label, COL_PURPLE, MMCR_LINE_DASHED, err);
    }
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    free(fx), free(fy), free(hx), free(hy);
    return st;
}

static void fit_json(FILE *f, const char *key, const mmcr_scaling_fit *fit) {
    char b[6][64];
    fmt_num(b[0], 64, fit->e), fmt_num(b[1], 64, fit->e_se), fmt_num(b[2], 64, fit->a_raw);
    fmt_num(b[3], 64, fit->alpha), fmt_num(b[4], 64, fit->alpha_se), fmt_num(b[5], 64, fit->rms);
    char a[3][64];
    fmt_num(a[0], 64, fit->a), fmt_num(a[1], 64, fit->a_se), fmt_num(a[2], 64, fit->c_ref);
    fprintf(f, ",\"%s\":{\"n\":%d,\"dof\":%d,\"E\":%s,\"E_se\":%s,\"a\":%s,\"a_se\":%s,\"c_ref\":%s,\"a_raw\":%s,"
            "\"alpha\":%s,\"alpha_se\":%s,\"rms\":%s,\"fixed_floor\":%s}",
            key, fit->n, fit->dof, b[0], b[1], a[0], a[1], a[2], b[2], b[3], b[4], b[5],
            fit->fixed_floor ? "true" : "false");
}

static int cmp_dbl(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 1 - sqrt(c) m(gamma) for the group of record i0, with c the mean centroid norm of the points at
 * the largest compute below limit (NaN when there is none). */
static double mp_floor_below(const rec *r, size_t i0, const double *c, const double *c2, int m, double limit) {
    double best = -INFINITY, cc = 0;
    int cn = 0;
    for (int i = 0; i < m; i++)
        if (c[i] < limit && c[i] > best) best = c[i];
    for (int i = 0; i < m; i++)
        if (c[i] == best && isfinite(c2[i])) cc += c2[i], cn++;
    mmcr_theory_pred pr;
    if (cn && mmcr_theory_predict(r[i0].ax[AX_P], r[i0].ax[AX_D], r[i0].ax[AX_K] > 0 ? r[i0].ax[AX_K] : 1,
                                  fmin(fmax(cc / cn, 0.0), 1.0), &pr, NULL) == MMCR_OK)
        return pr.ppe_predicted;
    return NAN;
}

static mmcr_status sweep_fits(const rec *r, size_t n, const char *out_dir, const mmcr_report_options *opt,
                              const mmcr_logger *log, mmcr_report_summary *sum, mmcr_err *err) {
    int use[N_AX];
    mmcr_status st = parse_fit_by(opt ? opt->fit_by : NULL, use, err);
    if (st != MMCR_OK) return st;
    const int holdout = opt ? opt->holdout : 2;
    const int floor_mp = opt ? opt->fit_floor_mp : 0;
    if (floor_mp && !(use[AX_P] && use[AX_D] && use[AX_K]))
        return mmcr_err_set(err, MMCR_ERR_ARG, "option --fit-floor mp needs P, D and K in --fit-by");
    int *done = calloc(n ? n : 1, sizeof(int));
    double *c = malloc(sizeof(double) * (n + 1)), *y = malloc(sizeof(double) * (n + 1));
    double *c2 = malloc(sizeof(double) * (n + 1));
    char path[2 * PATH_CAP + 256];
    mmcr_atomic_file af = {0};
    if (!done || !c || !y || !c2) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(path, sizeof path, "%s/fits.jsonl", out_dir);
    st = mmcr_atomic_open(&af, path, err);
    if (st != MMCR_OK) goto out;
    sum->max_holdout_relerr = NAN;
    for (size_t i0 = 0; i0 < n && st == MMCR_OK; i0++) {
        if (done[i0]) continue;
        int m = 0;
        for (size_t i = i0; i < n; i++) {
            int same = 1;
            for (int a = 0; a < N_AX; a++)
                if (use[a]) same &= r[i].ax[a] == r[i0].ax[a];
            if (!same) continue;
            done[i] = 1;
            c[m] = r[i].compute, y[m] = r[i].ppe, c2[m] = r[i].c2, m++;
        }
        int nd = 0;
        for (int i = 0; i < m; i++) {
            int seen = 0;
            for (int j = 0; j < i; j++) seen |= c[j] == c[i];
            nd += !seen;
        }
        const int np = floor_mp ? 2 : 3;
        if (nd < np + 1) continue; /* a fit needs more distinct C values than parameters */
        char tag[160] = "", title[320];
        size_t tl = 0;
        for (int a = 0; a < N_AX; a++)
            if (use[a]) tl += (size_t)snprintf(tag + tl, sizeof tag - tl, "%s%s%d", tl ? "_" : "", ax_names[a], r[i0].ax[a]);
        /* The random-matrix floor 1 - sqrt(c) m(gamma), c measured at the largest compute (needs
         * one P and D); for the held-out fit, at the largest compute it may use. */
        const int have_pd = use[AX_P] && use[AX_D];
        const double mp_floor = have_pd ? mp_floor_below(r, i0, c, c2, m, INFINITY) : NAN;
        /* The smallest held-out compute: the holdout-th largest distinct C. */
        double cut = INFINITY;
        if (holdout > 0) {
            double *u = malloc(sizeof(double) * (size_t)m);
            if (u) {
                memcpy(u, c, sizeof(double) * (size_t)m);
                qsort(u, (size_t)m, sizeof(double), cmp_dbl);
                int nu = 0;
                for (int i = 0; i < m; i++)
                    if (nu == 0 || u[i] != u[nu - 1]) u[nu++] = u[i];
                if (nu > holdout) cut = u[nu - holdout];
                free(u);
            }
        }
        const double mp_floor_ho = have_pd ? mp_floor_below(r, i0, c, c2, m, cut) : NAN;
        const double floor = floor_mp ? mp_floor : NAN, floor_ho = floor_mp ? mp_floor_ho : NAN;
        mmcr_scaling_fit full, ho;
        mmcr_err ferr = {{0}};
        if (mmcr_scaling_fit_power(c, y, m, floor, &full, &ferr) != MMCR_OK) {
            mmcr_logf(log, MMCR_LOG_WARN, "scaling fit %s: %s", tag, ferr.msg);
            continue;
        }
        sum->fits++;
        fprintf(af.f, "{\"group\":\"%s\"", tag);
        for (int a = 0; a < N_AX; a++)
            if (use[a]) fprintf(af.f, ",\"%s\":%d", ax_names[a], r[i0].ax[a]);
        char nb[64];
        fmt_num(nb, sizeof nb, mp_floor);
        char nb2[64];
        fmt_num(nb2, sizeof nb2, mp_floor_ho);
        fprintf(af.f, ",\"points\":%d,\"distinct_compute\":%d,\"compute\":\"steps*P*K\",\"mp_floor\":%s,"
                "\"mp_floor_holdout\":%s", m, nd, nb, nb2);
        fit_json(af.f, "fit", &full);
        double hc[16], hp[16], hm[16], he[16];
        int nh = holdout < 16 ? holdout : 16, have_ho = 0;
        if (nh > 0 && nd - nh >= np + 1 &&
            mmcr_scaling_holdout(c, y, m, nh, floor_ho, &ho, hc, hp, hm, he, &ferr) == MMCR_OK) {
            have_ho = 1;
            fit_json(af.f, "holdout_fit", &ho);
            /* Baseline for the held-out errors: "no further improvement", i.e. the mean PPE at
             * the largest compute used by the fit. */
            double cl = -INFINITY, yl = 0;
            int nl = 0;
            for (int i = 0; i < m; i++)
                if (c[i] < hc[0] && c[i] > cl) cl = c[i];
            for (int i = 0; i < m; i++)
                if (c[i] == cl) yl += y[i], nl++;
            yl /= nl;
            fputs(",\"holdout\":[", af.f);
            for (int h = 0; h < nh; h++) {
                char v[5][64];
                fmt_num(v[0], 64, hc[h]), fmt_num(v[1], 64, hp[h]), fmt_num(v[2], 64, hm[h]), fmt_num(v[3], 64, he[h]);
                fmt_num(v[4], 64, (yl - hm[h]) / hm[h]);
                fprintf(af.f, "%s{\"compute\":%s,\"predicted\":%s,\"measured\":%s,\"relative_error\":%s,"
                        "\"baseline_relative_error\":%s}", h ? "," : "", v[0], v[1], v[2], v[3], v[4]);
                if (!(fabs(he[h]) <= sum->max_holdout_relerr)) sum->max_holdout_relerr = fabs(he[h]);
            }
            fputs("]", af.f);
        } else if (nh > 0) {
            mmcr_logf(log, MMCR_LOG_INFO, "scaling fit %s: too few distinct C values (%d) for a held-out check of %d",
                      tag, nd, nh);
        }
        fputs("}\n", af.f);
        snprintf(title, sizeof title, "Scaling of PPE with compute (%s): PPE = E + a C^" MINUS ALPHA, tag);
        snprintf(path, sizeof path, "%s/fit_%s.png", out_dir, tag);
        st = fit_png(path, title, c, y, m, hc, have_ho ? nh : 0, &full, have_ho ? &ho : NULL, mp_floor, err);
        if (st == MMCR_OK) {
            sum->figures++;
            mmcr_logf(log, MMCR_LOG_INFO, "wrote %s (E = %.4f " PM " %.4f, alpha = %.3f " PM " %.3f)", path, full.e,
                      full.e_se, full.alpha, full.alpha_se);
        }
    }
    if (st == MMCR_OK)
        st = mmcr_atomic_commit(&af, err);
    else
        mmcr_atomic_abort(&af);
out:
    free(done), free(c), free(y), free(c2);
    return st;
}

mmcr_status mmcr_report(const char *dir, const mmcr_report_options *opt, const mmcr_logger *log,
                        mmcr_report_summary *sum, mmcr_err *err) {
    mmcr_report_summary local;
    if (!sum) sum = &local;
    memset(sum, 0, sizeof *sum);
    sum->max_holdout_relerr = NAN;
    char results[PATH_CAP], metrics[PATH_CAP], out_dir[PATH_CAP];
    snprintf(results, sizeof results, "%s/results.jsonl", dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    const int is_sweep = file_exists(results), is_run = file_exists(metrics);
    if (!is_sweep && !is_run)
        return mmcr_err_set(err, MMCR_ERR_ARG, "'%s' holds neither results.jsonl (a sweep) nor metrics.jsonl (a training run)",
                            dir);
    if (opt && opt->out_dir && opt->out_dir[0])
        snprintf(out_dir, sizeof out_dir, "%s", opt->out_dir);
    else
        snprintf(out_dir, sizeof out_dir, "%s/report", dir);
    mmcr_status st = mmcr_make_dirs(out_dir, err);
    if (st != MMCR_OK) return st;
    if (!is_sweep) return report_run(dir, out_dir, log, sum, err);
    sum->kind = 2;
    rec *r = NULL;
    size_t n = 0;
    st = read_results(results, &r, &n, log, err);
    if (st != MMCR_OK) return st;
    if (n == 0) {
        free(r);
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' holds no finished run", results);
    }
    st = sweep_tables(r, n, out_dir, log, sum, err);
    if (st == MMCR_OK) st = sweep_fits(r, n, out_dir, opt, log, sum, err);
    free(r);
    return st;
}
