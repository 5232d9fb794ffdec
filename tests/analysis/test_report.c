/* mmcr_report on synthetic inputs: a sweep whose PPE follows the random-matrix prediction (the
 * ridge check finds every row and column peak at P = D, and the one row made to violate it),
 * a steps series following a known power law (the fit and its held-out check), and a training
 * run's metrics (four figures). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmcr/analysis.h"
#include "mmcr/plot.h"
#include "test_util.h"

static int is_png(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char b[8] = {0};
    int ok = f && fread(b, 1, 8, f) == 8 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G';
    if (f) fclose(f);
    return ok;
}

static int contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

int main(void) {
    char dir[] = "/tmp/mmcr_report_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[2048], sweep[256], out[512];
    mmcr_err err;
    snprintf(sweep, sizeof sweep, "%s/sweep", dir);
    mkdir(sweep, 0777);

    /* The ridge table: PPE = 1 - sqrt(c) m(gamma) + noise, c = 0.6; row P = 16 broken at D = 32. */
    snprintf(path, sizeof path, "%s/results.jsonl", sweep);
    FILE *f = fopen(path, "w");
    const int vals[5] = {16, 32, 64, 128, 256};
    mmcr_rng r;
    mmcr_rng_seed(&r, 3, 0, 0, 0);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            mmcr_theory_pred pr;
            CHECK(mmcr_theory_predict(vals[i], vals[j], 2, 0.6, &pr, &err) == MMCR_OK);
            double ppe = pr.ppe_predicted + 0.002 * mmcr_rng_normal(&r);
            if (i == 0 && j == 1) ppe += 0.2;
            fprintf(f, "{\"run\":\"x\",\"P\":%d,\"D\":%d,\"K\":2,\"steps\":200,\"width\":4,\"seed\":0,\"status\":\"ok\","
                    "\"compute\":%d,\"ppe\":%.6f,\"ppe_se\":0.002,\"centroid_norm2\":0.6,\"knn_top1\":%.3f}\n",
                    vals[i], vals[j], 200 * vals[i] * 2, ppe, 0.5 + 0.01 * i);
        }
    /* A steps series at P = 64, D = 128 (width 8): PPE = 0.14 + 0.3 (C / 3200)^-0.5, two seeds. */
    const int steps[8] = {25, 50, 100, 200, 400, 800, 1600, 3200};
    for (int s = 0; s < 8; s++)
        for (int seed = 0; seed < 2; seed++) {
            const double c = 128.0 * steps[s];
            const double ppe = 0.14 + 0.3 * pow(c / 3200.0, -0.5) + 0.001 * mmcr_rng_normal(&r);
            /* The centroid norm grows at the two largest C (held out): their floor must not leak
             * into the held-out fit. */
            fprintf(f, "{\"run\":\"y\",\"P\":64,\"D\":128,\"K\":2,\"steps\":%d,\"width\":8,\"seed\":%d,\"status\":\"ok\","
                    "\"compute\":%g,\"ppe\":%.6f,\"centroid_norm2\":%.1f}\n", steps[s], seed, c, ppe, s >= 6 ? 0.9 : 0.8);
        }
    fputs("{\"run\":\"z\",\"P\":64,\"D\":64,\"K\":2,\"steps\":200,\"width\":4,\"seed\":1,\"status\":\"failed\"}\n", f);
    fputs("not json\n", f);
    fclose(f);

    mmcr_report_summary s;
    mmcr_report_options opt = {.out_dir = NULL, .holdout = 2, .fit_by = NULL, .fit_floor_mp = 0};
    mmcr_status st = mmcr_report(sweep, &opt, NULL, &s, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    CHECK(s.kind == 2);
    CHECK(s.tables == 1 + 8); /* the 5 x 5 table, and one single-cell table per steps value */
    CHECK_MSG(s.rows_checked == 5 && s.rows_peak_diag == 4, "rows %d/%d", s.rows_peak_diag, s.rows_checked);
    CHECK_MSG(s.cols_checked == 5 && s.cols_peak_diag == 4, "cols %d/%d", s.cols_peak_diag, s.cols_checked);
    CHECK(s.fits == 1);
    printf("held-out relative error %.4f\n", s.max_holdout_relerr);
    CHECK(s.max_holdout_relerr < 0.02);
    snprintf(out, sizeof out, "%s/report", sweep);
    const char *files[] = {"heat_ppe_K2_steps200_w4.png", "ridge_K2_steps200_w4.png", "ppe_vs_theory_K2_steps200_w4.png",
                           "heat_knn_K2_steps200_w4.png", "fit_P64_D128_K2_width8.png"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        CHECK_MSG(is_png(path), "%s", path);
    }
    snprintf(path, sizeof path, "%s/ridge.json", out);
    CHECK(contains(path, "\"P\":16,\"argmax_D\":32,\"peak_at_P\":false"));
    CHECK(contains(path, "\"P\":64,\"argmax_D\":64,\"peak_at_P\":true"));
    snprintf(path, sizeof path, "%s/fits.jsonl", out);
    CHECK(contains(path, "\"group\":\"P64_D128_K2_width8\""));
    CHECK(contains(path, "\"holdout\":[{\"compute\":204800"));
    snprintf(path, sizeof path, "%s/tables.md", out);
    CHECK(contains(path, "| 64 | 0.") && contains(path, "in 4 of 5 rows"));

    /* Grouping by D,K,width pools P; a fixed random-matrix floor needs P and D in the group. */
    opt.fit_by = "K,width,seed";
    opt.fit_floor_mp = 1;
    CHECK(mmcr_report(sweep, &opt, NULL, &s, &err) == MMCR_ERR_ARG && strstr(err.msg, "fit-floor") != NULL);
    opt.fit_floor_mp = 0;
    opt.fit_by = "P,bogus";
    CHECK(mmcr_report(sweep, &opt, NULL, &s, &err) == MMCR_ERR_ARG && strstr(err.msg, "bogus") != NULL);
    opt.fit_by = "P,D,K,width";
    opt.fit_floor_mp = 1;
    snprintf(out, sizeof out, "%s/other", dir);
    opt.out_dir = out;
    CHECK(mmcr_report(sweep, &opt, NULL, &s, &err) == MMCR_OK && s.fits == 1);
    {
        mmcr_theory_pred p8, p9;
        CHECK(mmcr_theory_predict(64, 128, 2, 0.8, &p8, &err) == MMCR_OK);
        CHECK(mmcr_theory_predict(64, 128, 2, 0.9, &p9, &err) == MMCR_OK);
        snprintf(path, sizeof path, "%s/fits.jsonl", out);
        FILE *ff = fopen(path, "r");
        char line[8192] = "";
        if (ff) {
            if (!fgets(line, sizeof line, ff)) line[0] = 0;
            fclose(ff);
        }
        const char *a = strstr(line, "\"mp_floor\":"), *b = strstr(line, "\"mp_floor_holdout\":");
        CHECK(a && b);
        if (a && b) {
            CHECK_CLOSE(strtod(a + 11, NULL), p9.ppe_predicted, 1e-12, 0);
            CHECK_CLOSE(strtod(b + 19, NULL), p8.ppe_predicted, 1e-12, 0);
        }
        CHECK(strstr(line, "\"fixed_floor\":true") != NULL);
    }

    /* A training run. */
    char run[256];
    snprintf(run, sizeof run, "%s/run", dir);
    mkdir(run, 0777);
    snprintf(path, sizeof path, "%s/config.json", run);
    f = fopen(path, "w");
    fputs("{\n  \"batch\": 32,\n  \"proj-out\": 16,\n  \"views\": 2\n}\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    f = fopen(path, "w");
    for (int t = 1; t <= 50; t++)
        fprintf(f, "{\"step\":%d,\"epoch\":0.1,\"loss\":%.4f,\"ppe\":%.4f,\"global_nuclear_norm\":1,\"local_term\":0,"
                "\"mean_centroid_norm2\":%.4f,\"lr\":%.6f,\"images_per_s\":100,\"elapsed_s\":%d}\n",
                t, -10.0 - t * 0.1, 0.4 - t * 0.002, 0.5 + t * 0.005, 1e-3 * (1 - t / 60.0), t);
    fclose(f);
    opt.out_dir = NULL;
    st = mmcr_report(run, &opt, NULL, &s, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    CHECK(s.kind == 1 && s.figures == 4);
    const char *rf[] = {"loss.png", "ppe.png", "centroid_norm.png", "lr.png"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/report/%s", run, rf[i]);
        CHECK_MSG(is_png(path), "%s", path);
    }

    /* Neither kind of directory; an empty results file. */
    CHECK(mmcr_report(dir, &opt, NULL, &s, &err) == MMCR_ERR_ARG && strstr(err.msg, "neither") != NULL);
    snprintf(path, sizeof path, "%s/empty", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/empty/results.jsonl", dir);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof path, "%s/empty", dir);
    CHECK(mmcr_report(path, &opt, NULL, &s, &err) == MMCR_ERR_FORMAT);

    mmcr_plot_release_caches();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return test_finish("analysis_report");
}
