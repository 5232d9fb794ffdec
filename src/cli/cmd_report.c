/* mmcr report DIR: figures of a training run (loss, PPE, centroid norm, learning rate against
 * the step) or of a sweep directory (PPE and accuracy heat maps, the P = D ridge, measured
 * against predicted PPE, scaling-law fits with held-out predictions). Prints a JSON summary. */
#include <stddef.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "mmcr/analysis.h"
#include "mmcr/plot.h"

typedef struct report_cfg {
    char out[MMCR_OPT_STRLEN];
    int holdout, fit_floor;
    char fit_by[MMCR_OPT_STRLEN];
} report_cfg;

#define OFF(f) offsetof(report_cfg, f)
static const mmcr_option report_options[] = {
    {"out", MMCR_OPT_STRING, OFF(out), "", 0, 0, NULL, "folder for the figures (default: DIR/report)"},
    {"holdout", MMCR_OPT_INT, OFF(holdout), "2", 0, 16, NULL, "sweep: largest compute values held out of the fits"},
    {"fit-by", MMCR_OPT_STRING, OFF(fit_by), "P,D,K,width", 0, 0, NULL,
     "sweep: axes that define one scaling fit (subset of P,D,K,width,seed; steps vary inside a fit)"},
    {"fit-floor", MMCR_OPT_CHOICE, OFF(fit_floor), "free", 0, 0, "free|mp",
     "sweep: fit the floor E, or hold it at the random-matrix floor 1 - sqrt(E|mu|^2) m(gamma)"},
};

int cmd_report(int argc, char **argv) {
    report_cfg rc_;
    char *pos[2] = {NULL, NULL};
    int npos = 0;
    const int nopt = (int)(sizeof report_options / sizeof report_options[0]);
    int rc = cli_parse("report", "DIR [options]   (DIR: a training run or a sweep directory)", report_options, nopt,
                       &rc_, argc, argv, pos, 2, &npos);
    if (rc >= 0) return rc;
    if (npos != 1) {
        fprintf(stderr, "mmcr report: give exactly one directory (a training run or a sweep; see 'mmcr report --help')\n");
        return 2;
    }
    mmcr_logger lg = cli_logger();
    mmcr_err err = {{0}};
    mmcr_report_options ro = {.out_dir = rc_.out[0] ? rc_.out : NULL, .holdout = rc_.holdout, .fit_by = rc_.fit_by,
                              .fit_floor_mp = rc_.fit_floor};
    mmcr_report_summary s;
    mmcr_status st = mmcr_report(pos[0], &ro, &lg, &s, &err);
    mmcr_plot_release_caches();
    if (st != MMCR_OK) return cli_fail("report", st, &err);
    char rel[64];
    mmcr_format_double(rel, sizeof rel, s.max_holdout_relerr);
    if (s.kind == 1) {
        printf("{\"kind\":\"run\",\"figures\":%d}\n", s.figures);
    } else {
        printf("{\"kind\":\"sweep\",\"figures\":%d,\"tables\":%d,\"rows_checked\":%d,\"rows_peak_at_P_eq_D\":%d,"
               "\"cols_checked\":%d,\"cols_peak_at_P_eq_D\":%d,\"fits\":%d,\"max_holdout_relative_error\":%s}\n",
               s.figures, s.tables, s.rows_checked, s.rows_peak_diag, s.cols_checked, s.cols_peak_diag, s.fits, rel);
    }
    return 0;
}
