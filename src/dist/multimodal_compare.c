/* The MMCR-vs-CLIP grid: every (method, batch size, seed) run, resumable through each run's
 * results.json, then a markdown table of mean +- std over seeds and plots against batch size. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmcr/io.h"
#include "mmcr/multimodal.h"
#include "mmcr/plot.h"

#define NM 2 /* methods */
static const char *const method_label[NM] = {"MMCR", "CLIP"};
static const char *const method_dir[NM] = {"mmcr", "clip"};

typedef struct cell {
    int n;
    mmcr_mm_metrics m[8];
} cell;

/* Mean and sample standard deviation of a field over the seeds of a cell. */
typedef double (*getter)(const mmcr_mm_metrics *m, int arg);
static double g_ri(const mmcr_mm_metrics *m, int k) { return m->r_i2t[k]; }
static double g_rt(const mmcr_mm_metrics *m, int k) { return m->r_t2i[k]; }
static double g_zs(const mmcr_mm_metrics *m, int k) { return k < 0 ? m->zero_shot : m->zero_shot_per_class[k]; }
static double g_ppe(const mmcr_mm_metrics *m, int k) { return (void)k, m->ppe; }
static double g_gap(const mmcr_mm_metrics *m, int k) { return (void)k, m->modality_gap; }
static double g_loss(const mmcr_mm_metrics *m, int k) { return (void)k, m->final_loss; }
static double g_scale(const mmcr_mm_metrics *m, int k) { return (void)k, m->scale; }
static double g_sec(const mmcr_mm_metrics *m, int k) { return (void)k, m->train_seconds + m->eval_seconds; }

static void stats(const cell *c, getter g, int arg, double *mean, double *sd) {
    double s = 0, s2 = 0;
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        double v = g(&c->m[i], arg);
        if (!isfinite(v)) continue;
        s += v;
        n++;
    }
    *mean = n ? s / n : NAN;
    for (int i = 0; i < c->n; i++) {
        double v = g(&c->m[i], arg);
        if (isfinite(v)) s2 += (v - *mean) * (v - *mean);
    }
    *sd = n > 1 ? sqrt(s2 / (n - 1)) : NAN;
}

static void put_cell(FILE *f, const cell *c, getter g, int arg, int digits) {
    double m, sd;
    stats(c, g, arg, &m, &sd);
    if (!isfinite(m)) fprintf(f, " – |");
    else if (!isfinite(sd)) fprintf(f, " %.*f |", digits, m);
    else fprintf(f, " %.*f ± %.*f |", digits, m, digits, sd);
}

/* mkdir -p of the folder part of path (dir_only: path itself is the folder). */
static mmcr_status make_parent(const char *path, int dir_only, mmcr_err *err) {
    char buf[MMCR_OPT_STRLEN + 64];
    snprintf(buf, sizeof buf, "%s", path);
    if (!dir_only) {
        char *slash = strrchr(buf, '/');
        if (!slash) return MMCR_OK;
        *slash = '\0';
    }
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return mmcr_err_set(err, MMCR_ERR_IO, "cannot create folder '%s': %s", buf, strerror(errno));
        *p = c;
        if (!c) break;
    }
    return MMCR_OK;
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static mmcr_status plot_metric(const char *path, const char *title, const char *ylabel, const cell (*cells)[8],
                               const int *batches, int nb, getter g, int arg, getter g2, int arg2,
                               const char *const *suffix, double ref, const char *ref_label, mmcr_err *err) {
    mmcr_plot *pl = mmcr_plot_create(900, 600, err);
    if (!pl) return MMCR_ERR_NOMEM;
    mmcr_status st = mmcr_plot_set_labels(pl, title, "batch size P (pairs per step)", ylabel, err);
    mmcr_plot_set_scale(pl, MMCR_PLOT_LOG10, MMCR_PLOT_LINEAR);
    mmcr_plot_set_legend(pl, MMCR_LEGEND_OUTSIDE_RIGHT);
    double x[8], y[8], e[8];
    for (int m = 0; m < NM && st == MMCR_OK; m++)
        for (int v = 0; v < (g2 ? 2 : 1) && st == MMCR_OK; v++) {
            for (int b = 0; b < nb; b++) {
                double mean, sd;
                stats(&cells[m][b], v ? g2 : g, v ? arg2 : arg, &mean, &sd);
                x[b] = batches[b];
                y[b] = mean;
                e[b] = isfinite(sd) ? sd : 0;
            }
            char label[96];
            snprintf(label, sizeof label, "%s%s", method_label[m], suffix ? suffix[v] : "");
            mmcr_plot_color col = mmcr_plot_palette(m);
            mmcr_plot_series s = {.label = label, .x = x, .y = y, .yerr = e, .n = (size_t)nb,
                                  .line = v ? MMCR_LINE_DASHED : MMCR_LINE_SOLID,
                                  .marker = v ? MMCR_MARKER_SQUARE : MMCR_MARKER_CIRCLE, .color = &col};
            st = mmcr_plot_add_series(pl, &s, err);
        }
    if (st == MMCR_OK && isfinite(ref)) st = mmcr_plot_add_ref(pl, MMCR_REF_HORIZONTAL, ref, 0, ref_label, err);
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    return st;
}

mmcr_status mmcr_mm_compare(const mmcr_mm_config *base, const mmcr_mm_compare_config *cc, const mmcr_logger *log,
                            mmcr_err *err) {
    if (cc->n_batches < 1 || cc->n_batches > 8 || cc->n_seeds < 1 || cc->n_seeds > 8)
        return mmcr_err_set(err, MMCR_ERR_ARG, "compare: 1..8 batch sizes and 1..8 seeds (got %d and %d)",
                            cc->n_batches, cc->n_seeds);
    const double t_all = mmcr_now();
    mmcr_status st0 = make_parent(cc->table, 0, err);
    if (st0 == MMCR_OK) st0 = make_parent(cc->img_dir, 1, err);
    if (st0 != MMCR_OK) return st0;
    mmcr_pairs train, test;
    mmcr_status st = mmcr_mm_load_data(base, &train, &test, log, err);
    if (st != MMCR_OK) return st;
    cell(*cells)[8] = calloc(NM, sizeof *cells);
    if (!cells) {
        mmcr_pairs_free(&train);
        mmcr_pairs_free(&test);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    }
    const int nb = cc->n_batches, ns = cc->n_seeds, total = NM * nb * ns;
    int done = 0, ran = 0;
    double run_seconds = 0;
    for (int m = 0; m < NM && st == MMCR_OK; m++)
        for (int b = 0; b < nb && st == MMCR_OK; b++)
            for (int s = 0; s < ns && st == MMCR_OK; s++) {
                mmcr_mm_config cfg = *base;
                cfg.method = m;
                cfg.batch = cc->batches[b];
                cfg.seed = cc->seeds[s];
                cfg.quiet = 1;
                if ((size_t)snprintf(cfg.out, sizeof cfg.out, "%s/%s-b%d-s%d", cc->runs_dir, method_dir[m], cfg.batch,
                                     cfg.seed) >= sizeof cfg.out - 40) {
                    st = mmcr_err_set(err, MMCR_ERR_ARG, "--runs-dir '%s' is too long", cc->runs_dir);
                    break;
                }
                char rp[MMCR_OPT_STRLEN + 32];
                snprintf(rp, sizeof rp, "%s/results.json", cfg.out);
                mmcr_mm_metrics *res = &cells[m][b].m[s];
                done++;
                mmcr_err e2 = {{0}};
                if (file_exists(rp) && mmcr_mm_read_results(rp, res, &e2) == MMCR_OK) {
                    mmcr_logf(log, MMCR_LOG_INFO, "[%d/%d] %s P=%d seed %d: done before (%s)", done, total,
                              method_label[m], cfg.batch, cfg.seed, rp);
                } else {
                    mmcr_logf(log, MMCR_LOG_INFO, "[%d/%d] %s P=%d seed %d: training", done, total, method_label[m],
                              cfg.batch, cfg.seed);
                    st = mmcr_mm_train(&cfg, &train, &test, log, res, err);
                    if (st != MMCR_OK) break;
                    ran++;
                }
                run_seconds += res->train_seconds + res->eval_seconds;
                cells[m][b].n = s + 1;
            }
    if (st != MMCR_OK) goto out;
    const double wall = mmcr_now() - t_all;
    const mmcr_mm_metrics *any = &cells[0][0].m[0];
    const int nc = test.images.labels ? test.num_classes : 0;

    /* ---- table ---- */
    mmcr_atomic_file af;
    st = mmcr_atomic_open(&af, cc->table, err);
    if (st != MMCR_OK) goto out;
    FILE *f = af.f;
    fprintf(f, "# Multimodal MMCR against CLIP: measured results\n\n");
    fprintf(f, "Written by `mmcr multimodal compare` (docs/multimodal.md explains the setup and the findings). "
               "Each cell is the mean ± sample standard deviation over %d seed%s (", ns, ns > 1 ? "s" : "");
    for (int s = 0; s < ns; s++) fprintf(f, "%s%d", s ? ", " : "", cc->seeds[s]);
    fprintf(f, ").\n\n");
    fprintf(f, "- data: %s, %d training pairs, %d held-out pairs, %d classes; images %d×%d\n",
            base->data == MMCR_MM_DATA_EMOJI ? "gemojione emoji (caption = name + keywords)" : "pair files",
            train.images.n, test.images.n, nc, base->image_size, base->image_size);
    fprintf(f, "- image encoder: ResNet, width %d, %d block%s per stage, projector %d → D = %d; text encoder: mean of "
               "%d-d token embeddings, MLP %d → D\n", base->width, base->blocks, base->blocks > 1 ? "s" : "",
            base->proj_hidden, base->dim, base->text_embed, base->text_hidden);
    fprintf(f, "- training: %g epochs at every batch size (the same number of pairs seen), %s, lr %g (cosine, %g "
               "warm-up epoch%s), weight decay %g; MMCR with K = %d (%d image view%s + caption), λ = %g; CLIP "
               "temperature learned from log(1/0.07), clamped at 100\n",
            base->epochs, base->optimizer == 0 ? "Adam" : base->optimizer == 1 ? "AdamW" : base->optimizer == 2 ? "SGD" : "LARS",
            base->lr, base->warmup_epochs, base->warmup_epochs == 1 ? "" : "s", base->weight_decay,
            base->image_views + 1, base->image_views, base->image_views > 1 ? "s" : "", base->lambda);
    fprintf(f, "- zero-shot prompt: \"%s\"\n", base->prompt);
    fprintf(f, "- chance: recall@1/5/10 = %.4f / %.4f / %.4f; zero-shot uniform guess = %.3f\n", any->chance[0],
            any->chance[1], any->chance[2], nc ? 1.0 / nc : NAN);
    fprintf(f, "- cost: %d runs, %.1f s of training + evaluation in total (%.1f s per run on average); this "
               "invocation ran %d of them in %.1f s wall time on %d threads\n\n",
            total, run_seconds, run_seconds / total, ran, wall, mmcr_get_threads());

    fprintf(f, "## Held-out retrieval (recall@k)\n\n");
    fprintf(f, "| method | P | image→text R@1 | R@5 | R@10 | text→image R@1 | R@5 | R@10 |\n");
    fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int m = 0; m < NM; m++)
        for (int b = 0; b < nb; b++) {
            fprintf(f, "| %s | %d |", method_label[m], cc->batches[b]);
            for (int k = 0; k < 3; k++) put_cell(f, &cells[m][b], g_ri, k, 3);
            for (int k = 0; k < 3; k++) put_cell(f, &cells[m][b], g_rt, k, 3);
            fputc('\n', f);
        }
    fprintf(f, "\n## Zero-shot classification, geometry, cost\n\n");
    fprintf(f, "| method | P | zero-shot acc. | PPE (centroids) | modality gap | final train loss | logit scale | "
               "s per run |\n");
    fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int m = 0; m < NM; m++)
        for (int b = 0; b < nb; b++) {
            fprintf(f, "| %s | %d |", method_label[m], cc->batches[b]);
            put_cell(f, &cells[m][b], g_zs, -1, 3);
            put_cell(f, &cells[m][b], g_ppe, 0, 3);
            put_cell(f, &cells[m][b], g_gap, 0, 3);
            put_cell(f, &cells[m][b], g_loss, 0, 3);
            put_cell(f, &cells[m][b], g_scale, 0, 1);
            put_cell(f, &cells[m][b], g_sec, 0, 1);
            fputc('\n', f);
        }
    if (nc > 0) {
        fprintf(f, "\n## Zero-shot accuracy per class (mean over seeds)\n\n| method | P |");
        for (int c = 0; c < nc; c++) {
            int cnt = 0;
            for (int i = 0; i < test.images.n; i++) cnt += test.images.labels[i] == c;
            fprintf(f, " %s (%d) |", test.class_names[c], cnt);
        }
        fprintf(f, "\n|---|---:|");
        for (int c = 0; c < nc; c++) fprintf(f, "---:|");
        fputc('\n', f);
        for (int m = 0; m < NM; m++)
            for (int b = 0; b < nb; b++) {
                fprintf(f, "| %s | %d |", method_label[m], cc->batches[b]);
                for (int c = 0; c < nc; c++) {
                    double mean, sd;
                    stats(&cells[m][b], g_zs, c, &mean, &sd);
                    if (isfinite(mean)) fprintf(f, " %.2f |", mean);
                    else fprintf(f, " – |");
                }
                fputc('\n', f);
            }
    }
    const char *link = cc->img_link[0] ? cc->img_link : cc->img_dir;
    fprintf(f, "\n## Plots\n\n");
    fprintf(f, "![recall@10 against batch size](%s/multimodal-recall10.png)\n\n", link);
    fprintf(f, "![recall@1 against batch size](%s/multimodal-recall1.png)\n\n", link);
    if (nc > 0) fprintf(f, "![zero-shot accuracy against batch size](%s/multimodal-zeroshot.png)\n\n", link);
    fprintf(f, "![PPE of the centroid matrix against batch size](%s/multimodal-ppe.png)\n\n", link);
    fprintf(f, "![modality gap against batch size](%s/multimodal-gap.png)\n", link);
    st = mmcr_atomic_commit(&af, err);
    if (st != MMCR_OK) goto out;

    /* ---- plots ---- */
    {
        static const char *const dir_sfx[2] = {" image→text", " text→image"};
        char p[MMCR_OPT_STRLEN + 64];
        int ok = 1;
        char rl[64];
        snprintf(p, sizeof p, "%s/multimodal-recall10.png", cc->img_dir);
        snprintf(rl, sizeof rl, "chance (10/%d)", any->n_test);
        st = plot_metric(p, "Held-out recall@10", "recall@10", (const cell(*)[8])cells, cc->batches, nb, g_ri, 2, g_rt,
                         2, dir_sfx, any->chance[2], rl, err);
        ok = st == MMCR_OK;
        if (ok) {
            snprintf(p, sizeof p, "%s/multimodal-recall1.png", cc->img_dir);
            snprintf(rl, sizeof rl, "chance (1/%d)", any->n_test);
            st = plot_metric(p, "Held-out recall@1", "recall@1", (const cell(*)[8])cells, cc->batches, nb, g_ri, 0,
                             g_rt, 0, dir_sfx, any->chance[0], rl, err);
            ok = st == MMCR_OK;
        }
        if (ok && nc > 0) {
            snprintf(p, sizeof p, "%s/multimodal-zeroshot.png", cc->img_dir);
            snprintf(rl, sizeof rl, "uniform guess (1/%d)", nc);
            st = plot_metric(p, "Zero-shot category accuracy (held-out)", "accuracy", (const cell(*)[8])cells,
                             cc->batches, nb, g_zs, -1, NULL, 0, NULL, 1.0 / nc, rl, err);
            ok = st == MMCR_OK;
        }
        if (ok) {
            snprintf(p, sizeof p, "%s/multimodal-ppe.png", cc->img_dir);
            st = plot_metric(p, "PPE of the held-out centroid matrix (lower = higher nuclear norm)", "PPE",
                             (const cell(*)[8])cells, cc->batches, nb, g_ppe, 0, NULL, 0, NULL, NAN, NULL, err);
            ok = st == MMCR_OK;
        }
        if (ok) {
            snprintf(p, sizeof p, "%s/multimodal-gap.png", cc->img_dir);
            st = plot_metric(p, "Modality gap ||mean image - mean text|| (held-out)", "gap", (const cell(*)[8])cells,
                             cc->batches, nb, g_gap, 0, NULL, 0, NULL, NAN, NULL, err);
        }
    }
    mmcr_logf(log, MMCR_LOG_INFO, "compare: %d runs (%d trained now) in %.1f s wall; table '%s', plots in '%s'", total,
              ran, mmcr_now() - t_all, cc->table, cc->img_dir);
out:
    free(cells);
    mmcr_pairs_free(&train);
    mmcr_pairs_free(&test);
    return st;
}
