/* mmcr sweep: a resumable grid of short pretraining runs over P (batch), D (proj-out), K (views),
 * steps and width (and seeds); each finished run's PPE on fresh batches, training metrics and
 * optional downstream accuracy go into OUT/results.jsonl, and the report (heat maps, ridge
 * check, scaling fits) is drawn at the end. Every training option is accepted as well. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "mmcr/analysis.h"
#include "mmcr/plot.h"
#include "mmcr/sweep.h"

typedef struct sweep_cli {
    mmcr_train_config tc;
    char p[MMCR_OPT_STRLEN], d[MMCR_OPT_STRLEN], k[MMCR_OPT_STRLEN], steps[MMCR_OPT_STRLEN];
    char width[MMCR_OPT_STRLEN], seed[MMCR_OPT_STRLEN];
    char out[MMCR_OPT_STRLEN];
    int eval_batches, eval_seed, eval_split, bn, eval, eval_train, eval_test, knn_k, probe_epochs, max_runs;
    double knn_t;
    int report, holdout, fit_floor;
    char fit_by[MMCR_OPT_STRLEN];
} sweep_cli;

#define OFF(f) offsetof(sweep_cli, f)
static const mmcr_option sweep_own[] = {
    {"P", MMCR_OPT_STRING, OFF(p), "16,32,64,128,256", 0, 0, NULL, "grid: batch sizes P, comma-separated"},
    {"D", MMCR_OPT_STRING, OFF(d), "16,32,64,128,256", 0, 0, NULL, "grid: embedding dimensions D (proj-out)"},
    {"K", MMCR_OPT_STRING, OFF(k), "2", 0, 0, NULL, "grid: views per datum K"},
    {"steps", MMCR_OPT_STRING, OFF(steps), "300", 0, 0, NULL, "grid: training steps of each run"},
    {"width", MMCR_OPT_STRING, OFF(width), "4", 0, 0, NULL, "grid: ResNet base widths"},
    {"seed", MMCR_OPT_STRING, OFF(seed), "0", 0, 0, NULL, "grid: seeds (repeats)"},
    {"out", MMCR_OPT_STRING, OFF(out), "runs/sweep", 0, 0, NULL, "sweep directory (runs/, results.jsonl, report/)"},
    {"eval-batches", MMCR_OPT_INT, OFF(eval_batches), "5", 1, 10000, NULL,
     "fresh batches of P data on which each run's PPE is measured after training"},
    {"eval-seed", MMCR_OPT_INT, OFF(eval_seed), "12345", 0, 2147483647, NULL,
     "seed of the evaluation batches (the same data for every run of one P)"},
    {"eval-split", MMCR_OPT_CHOICE, OFF(eval_split), "test", 0, 0, "train|test",
     "split the evaluation batches come from"},
    {"bn", MMCR_OPT_CHOICE, OFF(bn), "eval", 0, 0, "eval|train",
     "batch norm during the evaluation: running statistics (eval) or each batch's statistics (train)"},
    {"eval", MMCR_OPT_CHOICE, OFF(eval), "none", 0, 0, "none|knn|probe|both",
     "downstream accuracy of each run's backbone features (off by default: it costs time)"},
    {"eval-train", MMCR_OPT_INT, OFF(eval_train), "10000", 1, 100000000, NULL,
     "downstream: first N training images (kNN bank / probe training set)"},
    {"eval-test", MMCR_OPT_INT, OFF(eval_test), "2000", 1, 100000000, NULL, "downstream: first N test images"},
    {"knn-k", MMCR_OPT_INT, OFF(knn_k), "200", 1, 100000, NULL, "kNN: neighbours"},
    {"knn-t", MMCR_OPT_DOUBLE, OFF(knn_t), "0.5", 1e-6, 1e6, NULL, "kNN: temperature"},
    {"probe-epochs", MMCR_OPT_INT, OFF(probe_epochs), "30", 1, 10000, NULL, "linear probe: maximum epochs"},
    {"max-runs", MMCR_OPT_INT, OFF(max_runs), "0", 0, 1000000, NULL,
     "stop after this many newly finished runs (0: all); a later call continues"},
    {"report", MMCR_OPT_BOOL, OFF(report), "1", 0, 1, NULL, "draw the report into OUT/report at the end"},
    {"holdout", MMCR_OPT_INT, OFF(holdout), "2", 0, 16, NULL, "report: largest compute values held out of the fits"},
    {"fit-by", MMCR_OPT_STRING, OFF(fit_by), "P,D,K,width", 0, 0, NULL,
     "report: axes that define one scaling fit (subset of P,D,K,width,seed)"},
    {"fit-floor", MMCR_OPT_CHOICE, OFF(fit_floor), "free", 0, 0, "free|mp",
     "report: fit the floor E, or hold it at the random-matrix floor"},
};

/* Training options the grid sets per run (or that make no sense in a sweep). */
static const char *const excluded[] = {"batch", "proj-out", "views", "max-steps", "width", "seed", "out", "resume",
                                       "stop-at", "time-budget", "epochs", "quiet"};
/* Different defaults for short runs. */
static const struct {
    const char *name, *def;
} sweep_defaults[] = {{"image-size", "16"},
                      {"eval-image-size", "16"}, /* short runs: evaluate at the training size, */
                      {"bn-recalibrate", "0"},   /* so no recalibration pass per run */
                      {"checkpoint-every", "100"}};

static int is_excluded(const char *name) {
    for (size_t i = 0; i < sizeof excluded / sizeof excluded[0]; i++)
        if (!strcmp(name, excluded[i])) return 1;
    return 0;
}

static mmcr_option *build_table(int *n_out) {
    int nt;
    const mmcr_option *topts = mmcr_train_options(&nt);
    const int nown = (int)(sizeof sweep_own / sizeof sweep_own[0]);
    mmcr_option *t = malloc(sizeof *t * (size_t)(nt + nown));
    if (!t) return NULL;
    int n = 0;
    for (int i = 0; i < nown; i++) t[n++] = sweep_own[i];
    for (int i = 0; i < nt; i++) {
        if (is_excluded(topts[i].name)) continue;
        t[n] = topts[i];
        t[n].offset += offsetof(sweep_cli, tc);
        for (size_t j = 0; j < sizeof sweep_defaults / sizeof sweep_defaults[0]; j++)
            if (!strcmp(t[n].name, sweep_defaults[j].name)) t[n].def = sweep_defaults[j].def;
        n++;
    }
    *n_out = n;
    return t;
}

/* "16,32,64" -> axis values; every item an integer in [lo, INT_MAX]. */
static int parse_axis(const char *opt, const char *s, int lo, mmcr_sweep_axis *ax) {
    ax->n = 0;
    if (!s[0]) {
        fprintf(stderr, "mmcr sweep: option --%s is empty (comma-separated integers)\n", opt);
        return 0;
    }
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        int64_t v;
        if (len == 0 || len >= sizeof item) {
            fprintf(stderr, "mmcr sweep: option --%s: bad item in '%s'\n", opt, s);
            return 0;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (mmcr_parse_int64(item, &v) != MMCR_OK || v < lo || v > INT_MAX) {
            fprintf(stderr, "mmcr sweep: option --%s: '%s' is not an integer in [%d, %d]\n", opt, item, lo, INT_MAX);
            return 0;
        }
        for (int i = 0; i < ax->n; i++)
            if (ax->v[i] == (int)v) {
                fprintf(stderr, "mmcr sweep: option --%s: %s appears twice\n", opt, item);
                return 0;
            }
        if (ax->n >= MMCR_SWEEP_MAX_AXIS) {
            fprintf(stderr, "mmcr sweep: option --%s: more than %d values\n", opt, MMCR_SWEEP_MAX_AXIS);
            return 0;
        }
        ax->v[ax->n++] = (int)v;
        if (!comma) return 1;
        p = comma + 1;
    }
}

int cmd_sweep(int argc, char **argv) {
    int n;
    mmcr_option *opts = build_table(&n);
    if (!opts) {
        fprintf(stderr, "mmcr sweep: out of memory\n");
        return 1;
    }
    sweep_cli sc;
    int rc = cli_parse("sweep", "[--P list] [--D list] [--K list] [--steps list] [--width list] [--seed list] "
                       "[--out DIR] [training options]", opts, n, &sc, argc, argv, NULL, 0, NULL);
    free(opts);
    if (rc >= 0) return rc;
    mmcr_sweep_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.base = sc.tc;
    if (!parse_axis("P", sc.p, 1, &cfg.p) || !parse_axis("D", sc.d, 1, &cfg.d) || !parse_axis("K", sc.k, 1, &cfg.k) ||
        !parse_axis("steps", sc.steps, 1, &cfg.steps) || !parse_axis("width", sc.width, 1, &cfg.width) ||
        !parse_axis("seed", sc.seed, 0, &cfg.seed))
        return 2;
    if (!sc.out[0]) {
        fprintf(stderr, "mmcr sweep: option --out is empty\n");
        return 2;
    }
    snprintf(cfg.out, sizeof cfg.out, "%s", sc.out);
    cfg.eval_batches = sc.eval_batches;
    cfg.eval_seed = sc.eval_seed;
    cfg.eval_split = sc.eval_split;
    cfg.bn_train = sc.bn;
    cfg.eval = sc.eval;
    cfg.eval_train = sc.eval_train;
    cfg.eval_test = sc.eval_test;
    cfg.knn_k = sc.knn_k;
    cfg.knn_t = sc.knn_t;
    cfg.probe_epochs = sc.probe_epochs;
    cfg.max_new_runs = sc.max_runs;
    mmcr_set_threads(cfg.base.threads);
    mmcr_logger lg = cli_logger();
    mmcr_err err = {{0}};
    mmcr_sweep_summary sum;
    mmcr_logf(&lg, MMCR_LOG_INFO, "sweep into %s: %d x %d x %d x %d x %d x %d runs (P x D x K x steps x width x seed)",
              cfg.out, cfg.p.n, cfg.d.n, cfg.k.n, cfg.steps.n, cfg.width.n, cfg.seed.n);
    mmcr_status st = mmcr_sweep_run(&cfg, &lg, &sum, &err);
    if (st != MMCR_OK) return cli_fail("sweep", st, &err);
    mmcr_report_summary rs = {0};
    rs.max_holdout_relerr = NAN;
    if (sc.report && sum.skipped + sum.finished > 0) {
        mmcr_report_options ro = {.out_dir = NULL, .holdout = sc.holdout, .fit_by = sc.fit_by,
                                  .fit_floor_mp = sc.fit_floor};
        st = mmcr_report(cfg.out, &ro, &lg, &rs, &err);
        mmcr_plot_release_caches();
        if (st != MMCR_OK) return cli_fail("sweep", st, &err);
    }
    char esc[2 * MMCR_OPT_STRLEN], rel[64];
    mmcr_json_escape(esc, sizeof esc, cfg.out);
    mmcr_format_double(rel, sizeof rel, rs.max_holdout_relerr);
    printf("{\"out\":\"%s\",\"runs\":%d,\"skipped\":%d,\"finished\":%d,\"failed\":%d,\"seconds\":%.1f,"
           "\"rows_checked\":%d,\"rows_peak_at_P_eq_D\":%d,\"cols_checked\":%d,\"cols_peak_at_P_eq_D\":%d,\"fits\":%d,"
           "\"max_holdout_relative_error\":%s}\n",
           esc, sum.total, sum.skipped, sum.finished, sum.failed, sum.seconds, rs.rows_checked, rs.rows_peak_diag,
           rs.cols_checked, rs.cols_peak_diag, rs.fits, rel);
    return 0;
}
