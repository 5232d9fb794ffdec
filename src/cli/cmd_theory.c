/* mmcr theory: random-matrix predictions for the nuclear norm of uniform embeddings (bound,
 * m(gamma), PPE of aligned and of random K-view embeddings), optionally checked by Monte Carlo
 * and drawn as a figure. One JSON object per line per (P, D, K) grid point. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "mmcr/analysis.h"
#include "mmcr/config.h"
#include "mmcr/plot.h"

#define MAX_LIST 256

typedef struct theory_cfg {
    char p[MMCR_OPT_STRLEN], d[MMCR_OPT_STRLEN], k[MMCR_OPT_STRLEN];
    char centroid_norm2[MMCR_OPT_STRLEN];
    int monte_carlo, seed, threads;
    char plot[MMCR_OPT_STRLEN], heatmap[MMCR_OPT_STRLEN];
} theory_cfg;

static const mmcr_option theory_opts[] = {
    {"P", MMCR_OPT_STRING, offsetof(theory_cfg, p), "", 0, 0, NULL,
     "batch sizes (rows of the centroid matrix), comma-separated integers >= 1 (required)"},
    {"D", MMCR_OPT_STRING, offsetof(theory_cfg, d), "", 0, 0, NULL,
     "embedding dimensions, comma-separated integers >= 1 (required)"},
    {"K", MMCR_OPT_STRING, offsetof(theory_cfg, k), "1", 0, 0, NULL,
     "views per datum for ppe_init = 1 - m/sqrt(K), comma-separated integers >= 1"},
    {"centroid-norm2", MMCR_OPT_STRING, offsetof(theory_cfg, centroid_norm2), "", 0, 0, NULL,
     "measured mean squared centroid norm C in [0, 1]: adds ppe_predicted = 1 - sqrt(C) m"},
    {"monte-carlo", MMCR_OPT_INT, offsetof(theory_cfg, monte_carlo), "0", 0, 10000000, NULL,
     "random matrices per grid point for the Monte Carlo check (0: none; else >= 2)"},
    {"seed", MMCR_OPT_INT, offsetof(theory_cfg, seed), "0", 0, 2147483647, NULL, "Monte Carlo seed"},
    {"threads", MMCR_OPT_INT, offsetof(theory_cfg, threads), "0", 0, 4096, NULL, "threads (0: all cores)"},
    {"plot", MMCR_OPT_STRING, offsetof(theory_cfg, plot), "", 0, 0, NULL,
     "PNG: PPE (aligned; K = 2, 4, 8 and the K list) against P/D, log-log, with the Monte Carlo points"},
    {"heatmap", MMCR_OPT_STRING, offsetof(theory_cfg, heatmap), "", 0, 0, NULL,
     "PNG: table of the aligned PPE over the P x D grid (Monte Carlo mean when --monte-carlo is given)"},
};
#define N_OPTS ((int)(sizeof theory_opts / sizeof theory_opts[0]))

static void theory_usage(FILE *f) {
    fprintf(f,
            "usage: mmcr theory --P P[,P...] --D D[,D...] [--K K[,K...]] [--centroid-norm2 C]\n"
            "                   [--monte-carlo N [--seed S]] [--plot OUT.png] [--heatmap OUT.png]\n"
            "\n"
            "Random-matrix predictions for a P x D matrix of i.i.d. rows uniform on the sphere:\n"
            "bound = sqrt(P min(P,D)), gamma = min/max, m_gamma = E sqrt(lambda) under the\n"
            "Marchenko-Pastur law of ratio gamma, ppe_aligned = 1 - m, ppe_init = 1 - m/sqrt(K).\n"
            "Prints one JSON object per line for every (P, D, K) in the grid (P outermost).\n"
            "\noptions:\n");
    mmcr_options_help(f, theory_opts, N_OPTS);
}

/* "64,128,256" -> values; every item an integer in [1, INT_MAX]. */
static int parse_list(const char *opt, const char *s, int64_t *out, int *n) {
    *n = 0;
    if (!s[0]) {
        fprintf(stderr, "mmcr theory: option --%s is missing or empty (comma-separated integers >= 1)\n", opt);
        return 0;
    }
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        if (len == 0) {
            fprintf(stderr, "mmcr theory: option --%s: empty item in '%s'\n", opt, s);
            return 0;
        }
        if (len >= sizeof item) {
            fprintf(stderr, "mmcr theory: option --%s: item '%.*s...' is too long\n", opt, 20, p);
            return 0;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        int64_t v;
        if (mmcr_parse_int64(item, &v) != MMCR_OK) {
            fprintf(stderr, "mmcr theory: option --%s: '%s' is not an integer\n", opt, item);
            return 0;
        }
        if (v < 1 || v > INT_MAX) {
            fprintf(stderr, "mmcr theory: option --%s: %s is out of range [1, %d]\n", opt, item, INT_MAX);
            return 0;
        }
        if (*n >= MAX_LIST) {
            fprintf(stderr, "mmcr theory: option --%s: more than %d values\n", opt, MAX_LIST);
            return 0;
        }
        out[(*n)++] = v;
        if (!comma) return 1;
        p = comma + 1;
    }
}

/* Fails early (before a long Monte Carlo run) when the folder of an output file is not writable. */
static int check_output(const char *opt, const char *path) {
    if (!path[0]) return 1;
    char dir[MMCR_OPT_STRLEN];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "mmcr theory: option --%s: cannot write '%s' (folder '%s': %s)\n", opt, path, dir,
                strerror(errno));
        return 0;
    }
    return 1;
}

static void put_num(const char *key, double v) {
    char buf[64];
    mmcr_format_double(buf, sizeof buf, v);
    printf(",\"%s\":%s", key, buf);
}

typedef struct point {
    mmcr_theory_pred pred;
    mmcr_theory_mc mc;
} point;

static int k_index(const int64_t *ks, int nk, int64_t k) {
    for (int i = 0; i < nk; i++)
        if (ks[i] == k) return i;
    return -1;
}

/* PPE against P/D on log-log axes: the asymptotic curves, the P = D line and the Monte Carlo
 * means with their standard errors. */
static mmcr_status draw_plot(const char *path, const point *pts, int npts, const int64_t *klist, int nk, int mc,
                             mmcr_err *err) {
    int64_t ks[MAX_LIST + 3];
    int nks = 0;
    static const int64_t def_k[3] = {2, 4, 8};
    for (int i = 0; i < 3; i++) ks[nks++] = def_k[i];
    for (int i = 0; i < nk; i++)
        if (klist[i] > 1 && k_index(ks, nks, klist[i]) < 0 && nks < 12) ks[nks++] = klist[i];
    double rmin = 1e-3, rmax = 1e3;
    for (int i = 0; i < npts; i++) {
        double r = (double)pts[i].pred.p / (double)pts[i].pred.d;
        rmin = fmin(rmin, r / 2);
        rmax = fmax(rmax, r * 2);
    }
    enum { NC = 241 };
    double x[NC], y[NC];
    mmcr_status st = MMCR_OK;
    mmcr_plot *pl = mmcr_plot_create(1000, 650, err);
    if (!pl) return MMCR_ERR_NOMEM;
    st = mmcr_plot_set_labels(pl, "Pretraining percent error of uniform embeddings (random-matrix theory)",
                              "P / D  (batch size / embedding dimension)", "PPE = 1 \xe2\x88\x92 \xe2\x80\x96M\xe2\x80\x96* / bound",
                              err);
    mmcr_plot_set_scale(pl, MMCR_PLOT_LOG10, MMCR_PLOT_LOG10);
    mmcr_plot_set_legend(pl, MMCR_LEGEND_AUTO);
    /* Curves: aligned (K = 1 equivalent), then K views at random initialisation. */
    for (int c = 0; c <= nks && st == MMCR_OK; c++) {
        double kk = c == 0 ? 1.0 : (double)ks[c - 1];
        for (int i = 0; i < NC && st == MMCR_OK; i++) {
            double r = pow(10.0, log10(rmin) + (log10(rmax) - log10(rmin)) * i / (NC - 1));
            double g = r < 1 ? r : 1 / r, m;
            st = mmcr_mp_m(g, &m, err);
            x[i] = r;
            y[i] = 1 - m / sqrt(kk);
        }
        if (st != MMCR_OK) break;
        char label[96];
        if (c == 0)
            snprintf(label, sizeof label, "aligned: 1 \xe2\x88\x92 m(\xce\xb3)");
        else
            snprintf(label, sizeof label, "random init, K = %lld: 1 \xe2\x88\x92 m/\xe2\x88\x9aK", (long long)ks[c - 1]);
        mmcr_plot_color col = mmcr_plot_palette(c);
        mmcr_plot_series s = {.label = label, .x = x, .y = y, .n = NC, .line = MMCR_LINE_SOLID, .color = &col};
        st = mmcr_plot_add_series(pl, &s, err);
    }
    /* Monte Carlo means, one series per curve colour. */
    if (mc && st == MMCR_OK) {
        double *mx = mmcr_alloc_or_err((size_t)3 * (size_t)npts * sizeof(double), err, "plot points");
        if (!mx) st = MMCR_ERR_NOMEM;
        for (int c = 0; c <= nks && st == MMCR_OK; c++) {
            double *my = mx + npts, *me = my + npts;
            size_t n = 0;
            for (int i = 0; i < npts; i++) {
                const point *q = &pts[i];
                if (c == 0) {
                    /* Aligned points do not depend on K: one per (P, D). */
                    int dup = 0;
                    for (int j = 0; j < i; j++) dup |= pts[j].pred.p == q->pred.p && pts[j].pred.d == q->pred.d;
                    if (dup) continue;
                    my[n] = q->mc.ppe_mean;
                    me[n] = q->mc.ppe_se;
                } else {
                    if (q->pred.k != ks[c - 1]) continue;
                    my[n] = q->mc.ppe_init_mean;
                    me[n] = q->mc.ppe_init_se;
                }
                mx[n++] = (double)q->pred.p / (double)q->pred.d;
            }
            if (n == 0) continue;
            char label[96];
            if (c == 0)
                snprintf(label, sizeof label, "Monte Carlo, aligned (\xc2\xb1 1 s.e.)");
            else
                snprintf(label, sizeof label, "Monte Carlo, K = %lld", (long long)ks[c - 1]);
            mmcr_plot_color col = mmcr_plot_palette(c);
            mmcr_plot_series s = {.label = label, .x = mx, .y = my, .yerr = me, .n = n, .line = MMCR_LINE_NONE,
                                  .marker = c == 0 ? MMCR_MARKER_CIRCLE : MMCR_MARKER_SQUARE, .marker_size = 8,
                                  .color = &col};
            st = mmcr_plot_add_series(pl, &s, err);
        }
        mmcr_free(mx);
    }
    if (st == MMCR_OK) st = mmcr_plot_add_ref(pl, MMCR_REF_VERTICAL, 1.0, 0, "P = D", err);
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
    mmcr_plot_destroy(&pl);
    return st;
}

/* Aligned PPE over the P x D grid (rows P, columns D), from the first K of each (P, D). */
static mmcr_status draw_heatmap(const char *path, const point *pts, const int64_t *ps, int np, const int64_t *ds,
                                int nd, int nk, int mc, mmcr_err *err) {
    double *z = mmcr_alloc_or_err((size_t)np * (size_t)nd * sizeof(double), err, "heat map");
    char(*rl)[24] = mmcr_alloc_or_err((size_t)(np + nd) * 24, err, "heat map labels");
    const char **lab = mmcr_alloc_or_err((size_t)(np + nd) * sizeof(char *), err, "heat map labels");
    mmcr_status st = MMCR_ERR_NOMEM;
    mmcr_plot *pl = NULL;
    if (!z || !rl || !lab) goto out;
    for (int i = 0; i < np; i++)
        for (int j = 0; j < nd; j++) {
            const point *q = &pts[((size_t)i * nd + j) * nk];
            z[(size_t)i * nd + j] = mc ? q->mc.ppe_mean : q->pred.ppe_aligned;
        }
    for (int i = 0; i < np + nd; i++) {
        snprintf(rl[i], 24, "%lld", (long long)(i < np ? ps[i] : ds[i - np]));
        lab[i] = rl[i];
    }
    /* About 110 x 60 pixels per cell, at least a 6 x 6 table's worth, at most 4000 pixels. */
    int wpx = 220 + 110 * (nd < 6 ? 6 : nd), hpx = 160 + 60 * (np < 6 ? 6 : np);
    pl = mmcr_plot_create(wpx < 4000 ? wpx : 4000, hpx < 4000 ? hpx : 4000, err);
    if (!pl) goto out;
    st = mmcr_plot_set_labels(pl, mc ? "Aligned PPE, Monte Carlo mean" : "Aligned PPE, random-matrix prediction",
                              "D (embedding dimension)", "P (batch size)", err);
    if (st != MMCR_OK) goto out;
    int log_color = 1;
    for (size_t i = 0; i < (size_t)np * nd; i++) log_color &= z[i] > 0;
    mmcr_plot_heatmap h = {.z = z, .rows = np, .cols = nd, .row_labels = lab, .col_labels = lab + np,
                           .annotate = MMCR_ANNOT_SIG, .digits = 3, .colorbar_label = "PPE", .log_color = log_color};
    st = mmcr_plot_set_heatmap(pl, &h, err);
    if (st == MMCR_OK) st = mmcr_plot_write_png(pl, path, err);
out:
    mmcr_plot_destroy(&pl);
    mmcr_free(z);
    mmcr_free(rl);
    mmcr_free(lab);
    return st;
}

int cmd_theory(int argc, char **argv) {
    theory_cfg cfg;
    mmcr_err err = {{0}};
    int want_help = 0;
    if (mmcr_options_defaults(theory_opts, N_OPTS, &cfg, &err) != MMCR_OK ||
        mmcr_options_parse_argv(theory_opts, N_OPTS, &cfg, argc, argv, NULL, 0, NULL, &want_help, &err) != MMCR_OK) {
        fprintf(stderr, "mmcr theory: %s\n", err.msg);
        return 2;
    }
    if (want_help) {
        theory_usage(stdout);
        return 0;
    }
    static int64_t ps[MAX_LIST], ds[MAX_LIST], ks[MAX_LIST];
    int np, nd, nk;
    if (!parse_list("P", cfg.p, ps, &np) || !parse_list("D", cfg.d, ds, &nd) || !parse_list("K", cfg.k, ks, &nk))
        return 2;
    double c2 = -1.0;
    if (cfg.centroid_norm2[0]) {
        if (mmcr_parse_double(cfg.centroid_norm2, &c2) != MMCR_OK || c2 < 0.0 || c2 > 1.0) {
            fprintf(stderr, "mmcr theory: option --centroid-norm2: '%s' is not a number in [0, 1]\n", cfg.centroid_norm2);
            return 2;
        }
    }
    if (!check_output("plot", cfg.plot) || !check_output("heatmap", cfg.heatmap)) return 2;
    if (cfg.monte_carlo == 1) {
        fprintf(stderr, "mmcr theory: option --monte-carlo: 1 sample gives no standard error; use 0 or >= 2\n");
        return 2;
    }
    mmcr_set_threads(cfg.threads);

    size_t npts = (size_t)np * (size_t)nd * (size_t)nk;
    if (npts > 100000) {
        fprintf(stderr, "mmcr theory: the grid has %zu points (P x D x K); the limit is 100000\n", npts);
        return 2;
    }
    point *pts = mmcr_alloc_or_err(npts * sizeof(point), &err, "the grid");
    if (!pts) {
        fprintf(stderr, "mmcr theory: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    size_t idx = 0;
    for (int i = 0; i < np && !rc; i++)
        for (int j = 0; j < nd && !rc; j++)
            for (int l = 0; l < nk && !rc; l++, idx++) {
                point *q = &pts[idx];
                mmcr_status st = mmcr_theory_predict(ps[i], ds[j], ks[l], c2, &q->pred, &err);
                if (st == MMCR_OK && cfg.monte_carlo >= 2)
                    st = mmcr_theory_monte_carlo(ps[i], ds[j], ks[l], cfg.monte_carlo, (uint64_t)cfg.seed, &q->mc, &err);
                if (st != MMCR_OK) {
                    fprintf(stderr, "mmcr theory: %s\n", err.msg);
                    rc = st == MMCR_ERR_ARG ? 2 : 1;
                    break;
                }
                const mmcr_theory_pred *pr = &q->pred;
                printf("{\"P\":%lld,\"D\":%lld,\"K\":%lld", (long long)pr->p, (long long)pr->d, (long long)pr->k);
                put_num("bound", pr->bound);
                put_num("gamma", pr->gamma);
                put_num("m_gamma", pr->m_gamma);
                put_num("ppe_aligned", pr->ppe_aligned);
                put_num("ppe_init", pr->ppe_init);
                put_num("ppe_aligned_finite", pr->ppe_aligned_finite);
                put_num("ppe_init_finite", pr->ppe_init_finite);
                if (c2 >= 0) {
                    put_num("centroid_norm2", c2);
                    put_num("ppe_predicted", pr->ppe_predicted);
                }
                if (cfg.monte_carlo >= 2) {
                    printf(",\"mc_samples\":%d,\"mc_seed\":%d", q->mc.n_samples, cfg.seed);
                    put_num("mc_ppe_mean", q->mc.ppe_mean);
                    put_num("mc_ppe_se", q->mc.ppe_se);
                    put_num("mc_ppe_init_mean", q->mc.ppe_init_mean);
                    put_num("mc_ppe_init_se", q->mc.ppe_init_se);
                    /* Distance of each Monte Carlo mean from the finite-size prediction, in standard errors. */
                    put_num("mc_z_aligned", (q->mc.ppe_mean - pr->ppe_aligned_finite) / q->mc.ppe_se);
                    put_num("mc_z_init", (q->mc.ppe_init_mean - pr->ppe_init_finite) / q->mc.ppe_init_se);
                }
                printf("}\n");
                fflush(stdout);
            }
    if (!rc && cfg.plot[0]) {
        if (draw_plot(cfg.plot, pts, (int)npts, ks, nk, cfg.monte_carlo >= 2, &err) != MMCR_OK) {
            fprintf(stderr, "mmcr theory: --plot: %s\n", err.msg);
            rc = 1;
        } else {
            fprintf(stderr, "mmcr theory: wrote %s\n", cfg.plot);
        }
    }
    if (!rc && cfg.heatmap[0]) {
        if (draw_heatmap(cfg.heatmap, pts, ps, np, ds, nd, nk, cfg.monte_carlo >= 2, &err) != MMCR_OK) {
            fprintf(stderr, "mmcr theory: --heatmap: %s\n", err.msg);
            rc = 1;
        } else {
            fprintf(stderr, "mmcr theory: wrote %s\n", cfg.heatmap);
        }
    }
    if (cfg.plot[0] || cfg.heatmap[0]) mmcr_plot_release_caches();
    mmcr_free(pts);
    return rc;
}
