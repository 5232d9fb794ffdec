/* Fresh-batch embeddings and the resumable sweep on a small synthetic IDX data set: chunked
 * BN-eval forwards equal one big forward; a sweep stopped after some runs continues without
 * repeating a finished run; a run interrupted inside its training continues from its checkpoint
 * and ends with the same result as an uninterrupted one; a sweep folder made with other options
 * is refused; downstream kNN / probe accuracies are recorded when asked for. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmcr/sweep.h"
#include "test_idx_util.h"
#include "test_util.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = malloc(n + 1);
    if (s) memcpy(s, buf, n + 1);
    return s;
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    if (!f) return -1;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

static int count_substr(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

/* The value text after "key": in a one-line JSON object (up to the next , or }). */
static void json_value(const char *text, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = text ? strstr(text, pat) : NULL;
    out[0] = 0;
    if (!p) return;
    p += strlen(pat);
    size_t n = strcspn(p, ",}");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

static void test_fresh_batches(const char *dir) {
    mmcr_err err = {{0}};
    mmcr_dataset ds = {0};
    char path[512];
    CHECK(mmcr_dataset_load_mnist_dir(&ds, dir, "test", &err) == MMCR_OK);
    (void)path;
    mmcr_model_config mc;
    mmcr_model_config_default(&mc);
    mc.in_channels = 1, mc.image_size = 16, mc.width = 2, mc.proj_hidden = 32, mc.proj_out = 8;
    mmcr_model *m = NULL;
    CHECK(mmcr_model_create(&m, &mc, 64, &err) == MMCR_OK);
    mmcr_model_init(m, 3);
    mmcr_aug_config aug;
    mmcr_aug_config_none(&aug, 16);
    aug.crop_p = 1, aug.flip_p = 0.5f, aug.mean[0] = 0.3f, aug.std[0] = 0.4f;
    const int P = 8, K = 4, B = 3, D = 8;
    const size_t n = (size_t)B * P * K * D;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n), *c = malloc(sizeof(float) * n);
    CHECK(mmcr_embed_fresh_batches(m, &ds, &aug, P, K, B, 42, 0, 32, a, &err) == MMCR_OK);
    CHECK(mmcr_embed_fresh_batches(m, &ds, &aug, P, K, B, 42, 0, 5, b, &err) == MMCR_OK);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]) / (fabs((double)a[i]) + 1e-3));
    CHECK_MSG(worst < 1e-4, "chunked vs whole BN-eval forward: %g", worst);
    CHECK(mmcr_embed_fresh_batches(m, &ds, &aug, P, K, B, 43, 0, 32, c, &err) == MMCR_OK);
    CHECK(memcmp(a, c, sizeof(float) * n) != 0); /* another seed, other batches */
    /* Batch statistics: needs all P*K views at once; the result differs from eval mode. */
    CHECK(mmcr_embed_fresh_batches(m, &ds, &aug, P, K, B, 42, 1, 16, c, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_embed_fresh_batches(m, &ds, &aug, P, K, B, 42, 1, 32, c, &err) == MMCR_OK);
    CHECK(memcmp(a, c, sizeof(float) * n) != 0);
    mmcr_dataset small = ds;
    small.n = 4;
    CHECK(mmcr_embed_fresh_batches(m, &small, &aug, P, K, 1, 42, 0, 32, c, &err) == MMCR_ERR_ARG);
    free(a), free(b), free(c);
    mmcr_model_destroy(&m);
    mmcr_dataset_free(&ds);
}

static void base_config(mmcr_sweep_config *cfg, const char *data, const char *out) {
    memset(cfg, 0, sizeof *cfg);
    int nopt;
    const mmcr_option *opts = mmcr_train_options(&nopt);
    mmcr_options_defaults(opts, nopt, &cfg->base, NULL);
    snprintf(cfg->base.data_dir, sizeof cfg->base.data_dir, "%s", data);
    cfg->base.image_size = 16;
    cfg->base.proj_hidden = 32;
    cfg->base.threads = 1;
    cfg->base.log_every = 2;
    cfg->base.checkpoint_every = 4;
    cfg->base.erase_p = 0;
    cfg->p.n = 2, cfg->p.v[0] = 8, cfg->p.v[1] = 16;
    cfg->d.n = 2, cfg->d.v[0] = 8, cfg->d.v[1] = 16;
    cfg->k.n = 1, cfg->k.v[0] = 2;
    cfg->steps.n = 1, cfg->steps.v[0] = 12;
    cfg->width.n = 1, cfg->width.v[0] = 2;
    cfg->seed.n = 1, cfg->seed.v[0] = 0;
    snprintf(cfg->out, sizeof cfg->out, "%s", out);
    cfg->eval_batches = 2;
    cfg->eval_seed = 7;
    cfg->eval_split = 1;
    cfg->knn_k = 20;
    cfg->knn_t = 0.5;
    cfg->probe_epochs = 3;
    cfg->eval_train = 300;
    cfg->eval_test = 100;
}

int main(void) {
    char dir[] = "/tmp/mmcr_sweep_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    write_split(dir, "train", 600, 1);
    write_split(dir, "t10k", 200, 2);
    test_fresh_batches(dir);

    mmcr_err err = {{0}};
    char out[100], results[200], path[1200];
    snprintf(out, sizeof out, "%s/sweep", dir);
    snprintf(results, sizeof results, "%s/results.jsonl", out);
    mmcr_sweep_config cfg;
    base_config(&cfg, dir, out);
    mmcr_sweep_summary sum;

    /* Stopped after 3 of 4 runs, then continued: each run once. */
    cfg.max_new_runs = 3;
    mmcr_status st = mmcr_sweep_run(&cfg, NULL, &sum, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    CHECK(sum.total == 4 && sum.finished == 3 && sum.skipped == 0 && sum.failed == 0);
    CHECK(count_lines(results) == 3);
    cfg.max_new_runs = 0;
    st = mmcr_sweep_run(&cfg, NULL, &sum, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    CHECK(sum.finished == 1 && sum.skipped == 3);
    char *r1 = slurp(results);
    CHECK(count_lines(results) == 4);
    CHECK(count_substr(r1, "\"run\":\"P8_D8_K2_steps12_w2_seed0\"") == 1);
    CHECK(count_substr(r1, "\"run\":\"P16_D16_K2_steps12_w2_seed0\"") == 1);
    CHECK(count_substr(r1, "\"status\":\"ok\"") == 4);
    char v[64];
    json_value(r1, "ppe", v, sizeof v);
    CHECK_MSG(atof(v) > 0 && atof(v) < 1, "ppe '%s'", v);
    json_value(r1, "compute", v, sizeof v);
    CHECK(atof(v) == 12.0 * 8 * 2); /* first line: P = 8, D = 8 */
    CHECK(strstr(r1, "knn_top1") == NULL); /* off by default */
    /* Nothing left: a third call changes nothing. */
    st = mmcr_sweep_run(&cfg, NULL, &sum, &err);
    CHECK(st == MMCR_OK && sum.finished == 0 && sum.skipped == 4);
    char *r2 = slurp(results);
    CHECK(r1 && r2 && strcmp(r1, r2) == 0);
    free(r2);

    /* A run interrupted inside its training (checkpoint at step 8 of 12, no result) continues from
     * the checkpoint and ends exactly as the uninterrupted run. */
    char name[100], rdir[240];
    mmcr_sweep_run_name(name, sizeof name, 16, 8, 2, 12, 2, 0);
    snprintf(rdir, sizeof rdir, "%s/runs/%s", out, name);
    snprintf(path, sizeof path, "%s/result.json", rdir);
    char *before = slurp(path);
    char ppe_before[64], c2_before[64];
    json_value(before, "ppe", ppe_before, sizeof ppe_before);
    json_value(before, "centroid_norm2", c2_before, sizeof c2_before);
    CHECK(remove(path) == 0);
    {
        mmcr_train_config tc = cfg.base;
        tc.batch = 16, tc.proj_out = 8, tc.views = 2, tc.max_steps = 12, tc.width = 2, tc.seed = 0, tc.quiet = 1;
        tc.stop_at = 8;
        snprintf(tc.out, sizeof tc.out, "%s", rdir);
        mmcr_train_summary ts;
        st = mmcr_train_run(&tc, NULL, &ts, &err);
        CHECK_MSG(st == MMCR_OK && ts.steps == 8, "%s", err.msg);
    }
    st = mmcr_sweep_run(&cfg, NULL, &sum, &err);
    CHECK_MSG(st == MMCR_OK && sum.finished == 1 && sum.skipped == 3, "%s", err.msg);
    char *after = slurp(path);
    char ppe_after[64], c2_after[64];
    json_value(after, "ppe", ppe_after, sizeof ppe_after);
    json_value(after, "centroid_norm2", c2_after, sizeof c2_after);
    CHECK_MSG(strcmp(ppe_before, ppe_after) == 0 && strcmp(c2_before, c2_after) == 0, "ppe %s -> %s", ppe_before,
              ppe_after);
    CHECK(count_lines(results) == 4);
    r2 = slurp(results);
    CHECK(count_substr(r2, name) == 1);
    snprintf(path, sizeof path, "%s/metrics.jsonl", rdir);
    CHECK(count_lines(path) == 6); /* steps 2, 4, ..., 12 once each */
    free(before), free(after), free(r1), free(r2);

    /* Other base options in the same folder: refused, naming the option. */
    mmcr_sweep_config other = cfg;
    other.base.lr = 0.01;
    CHECK(mmcr_sweep_run(&other, NULL, &sum, &err) == MMCR_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "train.lr") != NULL, "%s", err.msg);
    other = cfg;
    other.eval_batches = 3;
    CHECK(mmcr_sweep_run(&other, NULL, &sum, &err) == MMCR_ERR_ARG && strstr(err.msg, "eval_batches") != NULL);
    /* ...while a larger grid with the same options just adds runs. */
    other = cfg;
    other.d.n = 3, other.d.v[2] = 4;
    other.max_new_runs = 1;
    CHECK(mmcr_sweep_run(&other, NULL, &sum, &err) == MMCR_OK && sum.finished == 1 && sum.skipped == 4);
    CHECK(count_lines(results) == 5);

    /* Downstream accuracy on request. */
    mmcr_sweep_config ev;
    snprintf(path, sizeof path, "%s/sweep_eval", dir);
    base_config(&ev, dir, path);
    ev.p.n = 1, ev.d.n = 1;
    ev.eval = MMCR_SWEEP_EVAL_BOTH;
    st = mmcr_sweep_run(&ev, NULL, &sum, &err);
    CHECK_MSG(st == MMCR_OK && sum.finished == 1, "%s", err.msg);
    snprintf(path, sizeof path, "%s/sweep_eval/results.jsonl", dir);
    char *re = slurp(path);
    json_value(re, "knn_top1", v, sizeof v);
    CHECK_MSG(atof(v) > 0.2 && atof(v) <= 1, "knn_top1 '%s'", v); /* 10 easy classes */
    json_value(re, "probe_top1", v, sizeof v);
    CHECK_MSG(atof(v) > 0.2 && atof(v) <= 1, "probe_top1 '%s'", v);
    free(re);

    /* Bad grids. */
    mmcr_sweep_config bad = cfg;
    bad.p.n = 0;
    CHECK(mmcr_sweep_run(&bad, NULL, &sum, &err) == MMCR_ERR_ARG && strstr(err.msg, "--P") != NULL);
    bad = cfg;
    bad.steps.v[0] = 0;
    CHECK(mmcr_sweep_run(&bad, NULL, &sum, &err) == MMCR_ERR_ARG && strstr(err.msg, "steps") != NULL);
    bad = cfg;
    bad.out[0] = 0;
    CHECK(mmcr_sweep_run(&bad, NULL, &sum, &err) == MMCR_ERR_ARG);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return test_finish("dist_sweep");
}
