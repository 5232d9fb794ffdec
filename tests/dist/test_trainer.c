/* End-to-end training on a small synthetic IDX data set (10 classes of noisy prototypes):
 * the loss and the PPE fall over a few hundred steps, a checkpoint round-trips, and an
 * interrupted + resumed run equals the uninterrupted one bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmcr/io.h"
#include "mmcr/train.h"
#include "test_idx_util.h"
#include "test_util.h"

static double metric_at(const char *path, long step, const char *key) {
    FILE *f = fopen(path, "r");
    char line[4096], pat[64];
    double v = NAN;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    while (f && fgets(line, sizeof line, f)) {
        const char *s = strstr(line, "\"step\":");
        if (!s || strtol(s + 7, NULL, 10) != step) continue;
        const char *k = strstr(line, pat);
        if (k) v = strtod(k + strlen(pat), NULL);
    }
    if (f) fclose(f);
    return v;
}

/* Mean over the metric lines with step in [a, b]. */
static double metric_mean(const char *path, long a, long b, const char *key) {
    double s = 0;
    int n = 0;
    for (long t = a; t <= b; t++) {
        double v = metric_at(path, t, key);
        if (!isnan(v)) s += v, n++;
    }
    return n ? s / n : NAN;
}

static int same_tensors(const char *a, const char *b) {
    mmcr_safetensors x, y;
    mmcr_err err;
    if (mmcr_safetensors_read(&x, a, &err) != MMCR_OK) return 0;
    if (mmcr_safetensors_read(&y, b, &err) != MMCR_OK) {
        mmcr_safetensors_free(&x);
        return 0;
    }
    int ok = x.n == y.n;
    for (int i = 0; ok && i < x.n; i++) {
        const mmcr_st_tensor *t = mmcr_safetensors_find(&y, x.t[i].name);
        ok = t && t->nbytes == x.t[i].nbytes && memcmp(t->data, x.t[i].data, t->nbytes) == 0;
        if (!ok) fprintf(stderr, "tensor %s differs\n", x.t[i].name);
    }
    mmcr_safetensors_free(&x);
    mmcr_safetensors_free(&y);
    return ok;
}

int main(void) {
    char dir[] = "/tmp/mmcr_trainer_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    write_split(dir, "train", 2000, 1);
    write_split(dir, "t10k", 500, 2);

    int nopt;
    const mmcr_option *opts = mmcr_train_options(&nopt);
    mmcr_train_config cfg;
    mmcr_err err = {{0}};
    CHECK(mmcr_options_defaults(opts, nopt, &cfg, &err) == MMCR_OK);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
    cfg.image_size = 16;
    cfg.width = 4;
    cfg.proj_hidden = 64;
    cfg.proj_out = 16;
    cfg.batch = 32;
    cfg.views = 2;
    cfg.max_steps = 300;
    cfg.log_every = 1;
    cfg.checkpoint_every = 100;
    cfg.threads = 2;
    cfg.quiet = 1;
    cfg.erase_p = 0.25;
    snprintf(cfg.out, sizeof cfg.out, "%s/run_a", dir);
    mmcr_train_summary sum;
    mmcr_status st = mmcr_train_run(&cfg, NULL, &sum, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    CHECK(sum.steps == 300);
    char metrics[600];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", cfg.out);
    double loss0 = metric_mean(metrics, 1, 20, "loss"), loss1 = metric_mean(metrics, 281, 300, "loss");
    double ppe0 = metric_mean(metrics, 1, 20, "ppe"), ppe1 = metric_mean(metrics, 281, 300, "ppe");
    printf("loss %.4f -> %.4f, ppe %.4f -> %.4f\n", loss0, loss1, ppe0, ppe1);
    CHECK_MSG(loss1 < loss0 - 0.5, "loss did not fall: %g -> %g", loss0, loss1);
    CHECK_MSG(ppe1 < ppe0 - 0.02, "PPE did not fall: %g -> %g", ppe0, ppe1);
    CHECK(ppe1 >= 0 && ppe0 <= 1);

    /* Interrupted at 100 then resumed == uninterrupted, bit for bit (same thread count). */
    mmcr_train_config b = cfg;
    snprintf(b.out, sizeof b.out, "%s/run_b", dir);
    b.stop_at = 100;
    st = mmcr_train_run(&b, NULL, &sum, &err);
    CHECK_MSG(st == MMCR_OK && sum.steps == 100, "%s", err.msg);
    b.stop_at = 0;
    b.resume = 1;
    st = mmcr_train_run(&b, NULL, &sum, &err);
    CHECK_MSG(st == MMCR_OK && sum.steps == 300, "%s", err.msg);
    char ca[600], cb[600];
    snprintf(ca, sizeof ca, "%s/checkpoint.safetensors", cfg.out);
    snprintf(cb, sizeof cb, "%s/checkpoint.safetensors", b.out);
    CHECK(same_tensors(ca, cb));
    char mb[600];
    snprintf(mb, sizeof mb, "%s/metrics.jsonl", b.out);
    CHECK(metric_at(mb, 300, "loss") == metric_at(metrics, 300, "loss"));
    CHECK(!isnan(metric_at(mb, 150, "loss")));

    /* The checkpoint loads back into a frozen encoder with the same weights. */
    mmcr_model *m = NULL;
    mmcr_train_config c2;
    float mean[3], std[3];
    st = mmcr_checkpoint_load_model(ca, &m, 64, 1, &c2, mean, std, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    if (m) {
        CHECK(c2.width == 4 && c2.proj_out == 16 && c2.image_size == 16);
        mmcr_safetensors s;
        CHECK(mmcr_safetensors_read(&s, ca, &err) == MMCR_OK);
        const mmcr_tensor_info *ti = mmcr_model_tensor(m, 0);
        const mmcr_st_tensor *t = mmcr_safetensors_find(&s, ti->name);
        CHECK(t && memcmp(t->data, mmcr_model_params(m) + ti->offset, t->nbytes) == 0);
        mmcr_safetensors_free(&s);
        mmcr_model_destroy(&m);
    }

    /* Training on smaller views than the evaluation images: the frozen encoder is built for
     * --eval-image-size, the fresh-view model for --image-size, with the same weights. */
    {
        mmcr_train_config r = cfg;
        snprintf(r.out, sizeof r.out, "%s/run_res", dir);
        r.image_size = 12;
        r.eval_image_size = 16;
        r.max_steps = 5;
        st = mmcr_train_run(&r, NULL, &sum, &err);
        CHECK_MSG(st == MMCR_OK && sum.steps == 5, "%s", err.msg);
        char cr[600];
        snprintf(cr, sizeof cr, "%s/checkpoint.safetensors", r.out);
        mmcr_model *me = NULL, *mt = NULL;
        mmcr_train_config c3;
        CHECK(mmcr_checkpoint_load_model(cr, &me, 32, 1, &c3, mean, std, &err) == MMCR_OK);
        CHECK(mmcr_checkpoint_load_model(cr, &mt, 32, 0, NULL, NULL, NULL, &err) == MMCR_OK);
        if (me && mt) {
            CHECK(c3.image_size == 12 && mmcr_train_eval_image_size(&c3) == 16);
            CHECK(mmcr_model_get_config(me)->image_size == 16 && mmcr_model_get_config(mt)->image_size == 12);
            CHECK(memcmp(mmcr_model_params(me), mmcr_model_params(mt), sizeof(float) * mmcr_model_num_params(me)) == 0);
            /* Recalibration: equal batches average to the statistics of one big batch (the stem's
             * running mean agrees; variances differ by the between-batch spread); the parameters
             * do not move. */
            mmcr_dataset trd = {0};
            CHECK(mmcr_train_load_dataset(&c3, "train", &trd, &err) == MMCR_OK);
            mmcr_model *m2 = NULL;
            CHECK(mmcr_checkpoint_load_model(cr, &m2, 32, 1, NULL, NULL, NULL, &err) == MMCR_OK);
            const size_t nb = mmcr_model_num_buffers(me), np = mmcr_model_num_params(me);
            float *before = malloc(sizeof(float) * nb), *pbefore = malloc(sizeof(float) * np);
            if (m2 && before && pbefore) {
                memcpy(before, mmcr_model_buffers(me), sizeof(float) * nb);
                memcpy(pbefore, mmcr_model_params(me), sizeof(float) * np);
                CHECK(mmcr_train_recalibrate_bn(&c3, me, &trd, mean, std, 96, 24, &err) == MMCR_OK);
                CHECK(mmcr_train_recalibrate_bn(&c3, m2, &trd, mean, std, 96, 96, &err) == MMCR_OK);
                CHECK(memcmp(pbefore, mmcr_model_params(me), sizeof(float) * np) == 0);
                CHECK(memcmp(before, mmcr_model_buffers(me), sizeof(float) * nb) != 0);
                int means = 0;
                double maxdiff = 0;
                for (int t = 0; t < mmcr_model_num_buffer_tensors(me); t++) {
                    const mmcr_tensor_info *ti = mmcr_model_buffer_tensor(me, t);
                    if (!strstr(ti->name, "running_mean")) continue;
                    /* Only the stem's input is the same whatever the batching: deeper layers see
                     * activations normalised with each batch's own statistics. */
                    if (means++ > 0) break;
                    for (size_t i = 0; i < ti->size; i++) {
                        double ra = mmcr_model_buffers(me)[ti->offset + i], rb = mmcr_model_buffers(m2)[ti->offset + i];
                        maxdiff = fmax(maxdiff, fabs(ra - rb) / (1e-3 + fabs(rb)));
                    }
                }
                CHECK_MSG(maxdiff < 1e-4, "running means: 4 batches of 24 vs one of 96 differ by %g", maxdiff);
                CHECK(mmcr_train_recalibrate_bn(&c3, me, &trd, mean, std, 0, 24, &err) == MMCR_ERR_ARG);
            }
            free(before);
            free(pbefore);
            mmcr_model_destroy(&m2);
            mmcr_dataset_free(&trd);
            mmcr_dataset te = {0};
            CHECK(mmcr_train_load_dataset(&c3, "test", &te, &err) == MMCR_OK);
            const int fd = mmcr_model_feature_dim(me), nt = 40;
            float *feat = calloc((size_t)nt * fd, sizeof(float));
            te.n = nt; /* the first images are enough */
            CHECK(feat && mmcr_extract_features(me, &te, mean, std, 16, 32, 0, feat, NULL, &err) == MMCR_OK);
            double ss = 0;
            for (int i = 0; feat && i < nt * fd; i++) ss += (double)feat[i] * feat[i];
            CHECK(isfinite(ss) && ss > 0);
            free(feat);
            mmcr_dataset_free(&te);
        }
        mmcr_model_destroy(&me);
        mmcr_model_destroy(&mt);
    }

    /* Errors: resume without a checkpoint; a missing data folder; a corrupt checkpoint. */
    mmcr_train_config e = cfg;
    snprintf(e.out, sizeof e.out, "%s/run_none", dir);
    e.resume = 1;
    CHECK(mmcr_train_run(&e, NULL, &sum, &err) == MMCR_ERR_IO);
    CHECK(strstr(err.msg, "checkpoint") != NULL);
    e = cfg;
    snprintf(e.data_dir, sizeof e.data_dir, "%s/missing", dir);
    CHECK(mmcr_train_run(&e, NULL, &sum, &err) != MMCR_OK);
    CHECK(strstr(err.msg, "missing") != NULL);
    FILE *f = fopen(cb, "r+b");
    if (f) {
        fseek(f, 0, SEEK_SET);
        fputc(0xff, f), fputc(0xff, f), fputc(0xff, f);
        fclose(f);
    }
    CHECK(mmcr_checkpoint_load_model(cb, &m, 8, 1, NULL, NULL, NULL, &err) != MMCR_OK);
    CHECK(strstr(err.msg, "run_b") != NULL);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return test_finish("dist_trainer");
}
