/* mmcr geometry: the geometry of a checkpoint's embeddings on fresh batches (K views per datum
 * with the checkpoint's training augmentations): PPE and its bound and random-matrix prediction,
 * centroid norms, alignment and uniformity, the vMF + entropy mutual-information bound, and the
 * singular-value spectrum of the centroid matrix beside the Marchenko-Pastur prediction.
 * One JSON object on stdout; with --out DIR also geometry.json (with the spectrum and the
 * centroid norms) and two figures. docs/analyses.md describes every number. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "mmcr/analysis.h"
#include "mmcr/io.h"
#include "mmcr/plot.h"
#include "mmcr/sweep.h"

typedef struct geometry_cfg {
    char checkpoint[MMCR_OPT_STRLEN];
    char data_dir[MMCR_OPT_STRLEN];
    int split;
    int batches, batch, views, seed, bn, entropy_k, bins, threads, chunk;
    char out[MMCR_OPT_STRLEN];
} geometry_cfg;

#define OFF(f) offsetof(geometry_cfg, f)
static const mmcr_option geometry_options[] = {
    {"checkpoint", MMCR_OPT_STRING, OFF(checkpoint), "", 0, 0, NULL, "checkpoint of the model to analyse (required)"},
    {"data-dir", MMCR_OPT_STRING, OFF(data_dir), "", 0, 0, NULL, "data folder (default: the checkpoint's)"},
    {"split", MMCR_OPT_CHOICE, OFF(split), "test", 0, 0, "train|test", "split the fresh batches are drawn from"},
    {"batches", MMCR_OPT_INT, OFF(batches), "4", 1, 10000, NULL, "fresh batches of P data"},
    {"batch", MMCR_OPT_INT, OFF(batch), "0", 0, 65536, NULL, "P: data per batch (0: the checkpoint's training P)"},
    {"views", MMCR_OPT_INT, OFF(views), "0", 0, 256, NULL, "K: views per datum (0: the checkpoint's training K)"},
    {"seed", MMCR_OPT_INT, OFF(seed), "12345", 0, 2147483647, NULL, "seed of the batches and augmentations"},
    {"bn", MMCR_OPT_CHOICE, OFF(bn), "eval", 0, 0, "eval|train",
     "batch norm: running statistics (eval) or the statistics of each batch's P*K views (train)"},
    {"entropy-k", MMCR_OPT_INT, OFF(entropy_k), "1", 1, 1000, NULL, "neighbour order of the kNN entropy estimate"},
    {"bins", MMCR_OPT_INT, OFF(bins), "40", 2, 1000, NULL, "bins of the centroid-norm histogram"},
    {"threads", MMCR_OPT_INT, OFF(threads), "0", 0, 1024, NULL, "threads (0 = all cores)"},
    {"chunk", MMCR_OPT_INT, OFF(chunk), "512", 1, 65536, NULL, "views per forward pass with --bn eval"},
    {"out", MMCR_OPT_STRING, OFF(out), "", 0, 0, NULL,
     "folder for geometry.json, spectrum.png and centroid_norms.png (default: JSON on stdout only)"},
};

static void put_num(FILE *f, const char *key, double v) {
    char buf[64];
    mmcr_format_double(buf, sizeof buf, v);
    fprintf(f, ",\"%s\":%s", key, buf);
}

static void put_array(FILE *f, const char *key, const double *v, long n) {
    char buf[64];
    fprintf(f, ",\"%s\":[", key);
    for (long i = 0; i < n; i++) {
        mmcr_format_double(buf, sizeof buf, v[i]);
        fprintf(f, "%s%s", i ? "," : "", buf);
    }
    fputc(']', f);
}

static void write_scalars(FILE *f, const geometry_cfg *gc, const mmcr_geometry_result *r) {
    char ck[2 * MMCR_OPT_STRLEN];
    mmcr_json_escape(ck, sizeof ck, gc->checkpoint);
    fprintf(f, "{\"checkpoint\":\"%s\",\"split\":\"%s\",\"bn\":\"%s\",\"P\":%d,\"K\":%d,\"D\":%d,\"batches\":%d,"
            "\"n_data\":%ld,\"seed\":%d", ck, gc->split ? "test" : "train", gc->bn ? "train" : "eval", r->p, r->k, r->d,
            r->batches, r->n_data, gc->seed);
    put_num(f, "bound", r->bound);
    put_num(f, "gamma", r->gamma);
    put_num(f, "m_gamma", r->m_gamma);
    put_num(f, "ppe", r->ppe_mean);
    put_num(f, "ppe_se", r->ppe_se);
    put_num(f, "nuclear_norm", r->nuclear_mean);
    put_num(f, "ppe_predicted", r->ppe_predicted);
    put_num(f, "centroid_norm2_mean", r->centroid_norm2_mean);
    put_num(f, "centroid_norm2_std", r->centroid_norm2_std);
    put_num(f, "centroid_norm_min", r->centroid_norm_min);
    put_num(f, "centroid_norm_q25", r->centroid_norm_q25);
    put_num(f, "centroid_norm_median", r->centroid_norm_median);
    put_num(f, "centroid_norm_q75", r->centroid_norm_q75);
    put_num(f, "centroid_norm_max", r->centroid_norm_max);
    put_num(f, "align", r->align);
    put_num(f, "mean_cos", r->mean_cos);
    put_num(f, "uniformity_views", r->unif_views);
    put_num(f, "uniformity_centroids", r->unif_centroids);
    put_num(f, "uniformity_uniform", r->unif_uniform);
    put_num(f, "vmf_kappa", r->vmf_kappa);
    put_num(f, "reconstruction", r->reconstruction);
    fprintf(f, ",\"entropy_k\":%d", r->entropy_k);
    put_num(f, "entropy", r->entropy);
    put_num(f, "entropy_uniform", r->entropy_uniform);
    put_num(f, "entropy_gap", r->entropy_gap);
    fprintf(f, ",\"entropy_duplicates\":%ld", r->entropy_duplicates);
    put_num(f, "mi_lower_bound", r->mi_lower_bound);
    fprintf(f, ",\"rank\":%d", r->rank);
    put_num(f, "sv_scale", r->sv_scale);
    put_num(f, "sv_max", r->sv_mean[0]);
    put_num(f, "sv_min", r->sv_mean[r->rank - 1]);
    put_num(f, "sv_mp_max", r->sv_mp[0]);
    put_num(f, "sv_mp_min", r->sv_mp[r->rank - 1]);
    put_num(f, "cond", r->cond_mean);
    put_num(f, "cond_mp", r->cond_mp);
}

static mmcr_status spectrum_png(const char *path, const mmcr_geometry_result *r, mmcr_err *err) {
    const int n = r->rank;
    double *x = malloc(sizeof(double) * (size_t)n);
    mmcr_plot *pl = mmcr_plot_create(1000, 650, err);
    mmcr_status st = (x && pl) ? MMCR_OK : mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    char title[256];
    snprintf(title, sizeof title,
             "Singular values of the %d x %d centroid matrix (K = %d, %d fresh batches)", r->p, r->d, r->k,
             r->batches);
    if (st == MMCR_OK) st = mmcr_plot_set_labels(pl, title, "rank i (descending)", "singular value \xcf\x83\xe1\xb5\xa2", err);
    if (st == MMCR_OK) mmcr_plot_set_legend(pl, MMCR_LEGEND_UPPER_RIGHT);
    for (int i = 0; st == MMCR_OK && i < n; i++) x[i] = i + 1;
    const mmcr_plot_color black = {0.1, 0.1, 0.1}, red = {0.84, 0.15, 0.16};
    if (st == MMCR_OK) {
        mmcr_plot_series s = {.label = "measured (sorted, averaged over batches)", .x = x, .y = r->sv_mean,
                              .n = (size_t)n, .line = MMCR_LINE_SOLID, .marker = n <= 80 ? MMCR_MARKER_CIRCLE : MMCR_MARKER_NONE,
                              .marker_size = 5, .color = &black};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    if (st == MMCR_OK) {
        char label[200];
        snprintf(label, sizeof label, "Marchenko-Pastur quantiles, \xce\xb3 = %.3g, scale %.3f", r->gamma, r->sv_scale);
        mmcr_plot_series s = {.label = label, .x = x, .y = r->sv_mp, .n = (size_t)n, .line = MMCR_LINE_DASHED,
                              .color = &red, .line_width = 2.5};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    if (st == MMCR_OK) {
        /* The optimum (PPE = 0): every centroid of norm 1 and all singular values equal. */
        const double opt = sqrt((double)(r->p > r->d ? r->p : r->d) / r->d);
        char label[160];
        snprintf(label, sizeof label, "optimum (PPE = 0): all equal to %.3f", opt);
        st = mmcr_plot_add_ref(pl, MMCR_REF_HORIZONTAL, opt, 0, label, err);
    }
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    free(x);
    return st;
}

static mmcr_status norms_png(const char *path, const mmcr_geometry_result *r, int bins, mmcr_err *err) {
    double *x = malloc(sizeof(double) * (size_t)(2 * bins + 2)), *y = malloc(sizeof(double) * (size_t)(2 * bins + 2));
    long *cnt = calloc((size_t)bins, sizeof(long));
    mmcr_plot *pl = mmcr_plot_create(1000, 650, err);
    mmcr_status st = (x && y && cnt && pl) ? MMCR_OK : mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    if (st == MMCR_OK) {
        for (long i = 0; i < r->n_data; i++) {
            int b = (int)floor(r->centroid_norms[i] * bins);
            cnt[b < 0 ? 0 : b >= bins ? bins - 1 : b]++;
        }
        /* A step outline of the density (fraction per unit of norm). */
        int m = 0;
        for (int b = 0; b < bins; b++) {
            const double h = (double)cnt[b] / (double)r->n_data * bins;
            x[m] = (double)b / bins, y[m++] = h;
            x[m] = (double)(b + 1) / bins, y[m++] = h;
        }
        char title[200];
        snprintf(title, sizeof title, "Centroid norms \xe2\x80\x96\xce\xbc\xe2\x80\x96 of %ld data (K = %d views, D = %d)",
                 r->n_data, r->k, r->d);
        st = mmcr_plot_set_labels(pl, title, "\xe2\x80\x96\xce\xbc\xe2\x80\x96 (1: all views identical)", "density", err);
        mmcr_plot_set_xlim(pl, 0.0, 1.0);
        mmcr_plot_set_legend(pl, MMCR_LEGEND_UPPER_LEFT);
        const mmcr_plot_color blue = {0.12, 0.47, 0.71};
        mmcr_plot_series s = {.label = "histogram", .x = x, .y = y, .n = (size_t)m, .line = MMCR_LINE_SOLID, .color = &blue};
        if (st == MMCR_OK) st = mmcr_plot_add_series(pl, &s, err);
    }
    /* Vertical markers as coloured series (the plot module's reference lines are all grey). */
    double ytop = 0;
    for (int b = 0; st == MMCR_OK && b < bins; b++) ytop = fmax(ytop, (double)cnt[b] / (double)r->n_data * bins);
    const double marks[2] = {r->centroid_norm_median, r->k > 1 ? 1.0 / sqrt((double)r->k) : NAN};
    const mmcr_plot_color cols[2] = {{0.84, 0.15, 0.16}, {0.17, 0.63, 0.17}};
    for (int i = 0; i < 2 && st == MMCR_OK; i++) {
        if (!isfinite(marks[i])) continue;
        char label[160];
        if (i == 0)
            snprintf(label, sizeof label, "median %.3f", marks[i]);
        else
            snprintf(label, sizeof label, "1/\xe2\x88\x9aK = %.3f (independent views)", marks[i]);
        const double vx[2] = {marks[i], marks[i]}, vy[2] = {0.0, 1.05 * ytop};
        mmcr_plot_series s = {.label = label, .x = vx, .y = vy, .n = 2,
                              .line = i == 0 ? MMCR_LINE_DASHED : MMCR_LINE_DOTTED, .color = &cols[i], .line_width = 2};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    free(x), free(y), free(cnt);
    return st;
}

int cmd_geometry(int argc, char **argv) {
    geometry_cfg gc;
    const int nopt = (int)(sizeof geometry_options / sizeof geometry_options[0]);
    int rc = cli_parse("geometry", "--checkpoint FILE [options]", geometry_options, nopt, &gc, argc, argv, NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (!gc.checkpoint[0]) {
        fprintf(stderr, "mmcr geometry: option --checkpoint is required (see 'mmcr geometry --help')\n");
        return 2;
    }
    mmcr_set_threads(gc.threads);
    mmcr_logger lg = cli_logger();
    mmcr_err err = {{0}};
    mmcr_model *model = NULL;
    mmcr_train_config tc;
    float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    mmcr_dataset ds = {0};
    mmcr_geometry *geo = NULL;
    float *emb = NULL;
    mmcr_status st = MMCR_OK;
    if (gc.out[0]) {
        st = mmcr_make_dirs(gc.out, &err);
        if (st != MMCR_OK) goto done;
    }
    /* Read the configuration first: the model's capacity depends on P and K. */
    st = mmcr_checkpoint_load_model(gc.checkpoint, &model, 1, 0, &tc, mean, std, &err);
    if (st != MMCR_OK) goto done;
    mmcr_model_destroy(&model);
    const int P = gc.batch > 0 ? gc.batch : tc.batch, K = gc.views > 0 ? gc.views : tc.views;
    const int views = P * K;
    const int cap = gc.bn ? views : (views < gc.chunk ? views : gc.chunk);
    st = mmcr_checkpoint_load_model(gc.checkpoint, &model, cap, 0, NULL, NULL, NULL, &err);
    if (st != MMCR_OK) goto done;
    if (gc.data_dir[0]) snprintf(tc.data_dir, sizeof tc.data_dir, "%s", gc.data_dir);
    st = mmcr_train_load_dataset(&tc, gc.split ? "test" : "train", &ds, &err);
    if (st != MMCR_OK) goto done;
    const int D = mmcr_model_embed_dim(model);
    mmcr_aug_config aug;
    mmcr_train_aug_config(&tc, ds.c, mean, std, &aug);
    st = mmcr_geometry_create(&geo, P, K, D, gc.batches, &err);
    if (st != MMCR_OK) goto done;
    emb = mmcr_alloc_or_err(sizeof(float) * (size_t)gc.batches * views * D, &err, "embeddings");
    if (!emb) {
        st = MMCR_ERR_NOMEM;
        goto done;
    }
    mmcr_logf(&lg, MMCR_LOG_INFO, "%d fresh batches of P = %d data x K = %d views from the %s split (%d images), D = %d",
              gc.batches, P, K, gc.split ? "test" : "train", ds.n, D);
    /* One loader for all batches: different data in every batch while the split lasts. */
    st = mmcr_embed_fresh_batches(model, &ds, &aug, P, K, gc.batches, (uint64_t)gc.seed, gc.bn, cap, emb, &err);
    for (int b = 0; st == MMCR_OK && b < gc.batches; b++)
        st = mmcr_geometry_add_batch(geo, emb + (size_t)b * views * D, &err);
    if (st != MMCR_OK) goto done;
    mmcr_geometry_result res;
    st = mmcr_geometry_finish(geo, gc.entropy_k, &res, &err);
    if (st != MMCR_OK) goto done;
    write_scalars(stdout, &gc, &res);
    fputs("}\n", stdout);
    fflush(stdout);
    if (gc.out[0]) {
        char path[MMCR_OPT_STRLEN + 64];
        snprintf(path, sizeof path, "%s/geometry.json", gc.out);
        mmcr_atomic_file af;
        st = mmcr_atomic_open(&af, path, &err);
        if (st != MMCR_OK) goto done;
        write_scalars(af.f, &gc, &res);
        put_array(af.f, "singular_values", res.sv_mean, res.rank);
        put_array(af.f, "singular_values_mp", res.sv_mp, res.rank);
        put_array(af.f, "centroid_norms", res.centroid_norms, res.n_data);
        fputs("}\n", af.f);
        st = mmcr_atomic_commit(&af, &err);
        if (st != MMCR_OK) goto done;
        mmcr_logf(&lg, MMCR_LOG_INFO, "wrote %s", path);
        snprintf(path, sizeof path, "%s/spectrum.png", gc.out);
        st = spectrum_png(path, &res, &err);
        if (st != MMCR_OK) goto done;
        mmcr_logf(&lg, MMCR_LOG_INFO, "wrote %s", path);
        snprintf(path, sizeof path, "%s/centroid_norms.png", gc.out);
        st = norms_png(path, &res, gc.bins, &err);
        if (st != MMCR_OK) goto done;
        mmcr_logf(&lg, MMCR_LOG_INFO, "wrote %s", path);
        mmcr_plot_release_caches();
    }
done:
    mmcr_free(emb);
    mmcr_geometry_destroy(&geo);
    mmcr_model_destroy(&model);
    mmcr_dataset_free(&ds);
    if (st != MMCR_OK) return cli_fail("geometry", st, &err);
    return 0;
}
