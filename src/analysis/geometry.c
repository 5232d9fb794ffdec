/* Geometry of embeddings over several batches (docs/analyses.md): PPE and its random-matrix
 * prediction, centroid norms, alignment and uniformity, the vMF + entropy mutual-information
 * bound, and the singular-value spectrum of the centroid matrix beside Marchenko-Pastur.
 * Everything is computed in double from the float embeddings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/analysis.h"
#include "mmcr/linalg.h"

struct mmcr_geometry {
    int p, k, d, max_batches, batches;
    double *z;          /* P*K x D normalised views of the current batch */
    double *m;          /* P x D centroid matrix of the current batch */
    double *gram;       /* r x r */
    double *eig;        /* r */
    double *eig_ws;
    double *view0;      /* max_batches*P x D: view 0 of every datum */
    double *cdir;       /* max_batches*P x D: centroid directions */
    double *cnorm;      /* max_batches*P: ||mu_n|| */
    double *sorted;     /* scratch for quantiles */
    double *sv_sum;     /* r: sum over batches of the sorted singular values */
    double *sv_mean, *sv_mp;
    double *ppe, *nuc, *cond; /* per batch */
    double pair_sq, pair_dot;
    long pairs;
    long zero_cent;
};

static int rank_of(const mmcr_geometry *g) { return g->p < g->d ? g->p : g->d; }

void mmcr_geometry_destroy(mmcr_geometry **gp) {
    if (!gp || !*gp) return;
    mmcr_geometry *g = *gp;
    mmcr_free(g->z), mmcr_free(g->m), mmcr_free(g->gram), mmcr_free(g->eig), mmcr_free(g->eig_ws);
    mmcr_free(g->view0), mmcr_free(g->cdir), mmcr_free(g->cnorm), mmcr_free(g->sorted);
    mmcr_free(g->sv_sum), mmcr_free(g->sv_mean), mmcr_free(g->sv_mp);
    mmcr_free(g->ppe), mmcr_free(g->nuc), mmcr_free(g->cond);
    free(g);
    *gp = NULL;
}

mmcr_status mmcr_geometry_create(mmcr_geometry **out, int p, int k, int d, int max_batches, mmcr_err *err) {
    *out = NULL;
    if (p < 2 || k < 1 || d < 2 || max_batches < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "geometry needs P >= 2, K >= 1, D >= 2 and at least one batch "
                            "(P=%d, K=%d, D=%d, batches=%d)", p, k, d, max_batches);
    mmcr_geometry *g = calloc(1, sizeof *g);
    if (!g) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
    g->p = p, g->k = k, g->d = d, g->max_batches = max_batches;
    const int r = p < d ? p : d;
    const size_t n = (size_t)max_batches * (size_t)p;
    g->z = mmcr_alloc(sizeof(double) * (size_t)p * k * d);
    g->m = mmcr_alloc(sizeof(double) * (size_t)p * d);
    g->gram = mmcr_alloc(sizeof(double) * (size_t)r * r);
    g->eig = mmcr_alloc(sizeof(double) * (size_t)r);
    g->eig_ws = mmcr_alloc(sizeof(double) * mmcr_sym_eig_ws_size(r));
    g->view0 = mmcr_alloc(sizeof(double) * n * (size_t)d);
    g->cdir = mmcr_alloc(sizeof(double) * n * (size_t)d);
    g->cnorm = mmcr_alloc(sizeof(double) * n);
    g->sorted = mmcr_alloc(sizeof(double) * n);
    g->sv_sum = mmcr_alloc(sizeof(double) * (size_t)r);
    g->sv_mean = mmcr_alloc(sizeof(double) * (size_t)r);
    g->sv_mp = mmcr_alloc(sizeof(double) * (size_t)r);
    g->ppe = mmcr_alloc(sizeof(double) * (size_t)max_batches);
    g->nuc = mmcr_alloc(sizeof(double) * (size_t)max_batches);
    g->cond = mmcr_alloc(sizeof(double) * (size_t)max_batches);
    if (!g->z || !g->m || !g->gram || !g->eig || !g->eig_ws || !g->view0 || !g->cdir || !g->cnorm || !g->sorted ||
        !g->sv_sum || !g->sv_mean || !g->sv_mp || !g->ppe || !g->nuc || !g->cond) {
        mmcr_geometry_destroy(&g);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the geometry of %d batches of %d x %d x %d",
                            max_batches, p, k, d);
    }
    *out = g;
    return MMCR_OK;
}

mmcr_status mmcr_geometry_add_batch(mmcr_geometry *g, const float *y, mmcr_err *err) {
    if (g->batches >= g->max_batches)
        return mmcr_err_set(err, MMCR_ERR_ARG, "geometry: more than the %d batches planned", g->max_batches);
    const int P = g->p, K = g->k, D = g->d, r = rank_of(g);
    const size_t rows = (size_t)P * K;
    for (size_t i = 0; i < rows; i++) {
        const float *yi = y + i * D;
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)yi[j] * yi[j];
        if (!isfinite(s))
            return mmcr_err_set(err, MMCR_ERR_NONFINITE, "geometry: row %zu of the embeddings is not finite", i);
        if (s == 0) return mmcr_err_set(err, MMCR_ERR_ARG, "geometry: row %zu of the embeddings is zero", i);
        const double inv = 1.0 / sqrt(s);
        for (int j = 0; j < D; j++) g->z[i * D + j] = yi[j] * inv;
    }
    const size_t base = (size_t)g->batches * P;
    for (int n = 0; n < P; n++) {
        double *mu = g->m + (size_t)n * D;
        const double *zn = g->z + (size_t)n * K * D;
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int v = 0; v < K; v++) s += zn[(size_t)v * D + j];
            mu[j] = s / K;
        }
        double c2 = 0;
        for (int j = 0; j < D; j++) c2 += mu[j] * mu[j];
        const double cn = sqrt(c2);
        g->cnorm[base + n] = cn;
        memcpy(g->view0 + (base + n) * D, zn, sizeof(double) * (size_t)D);
        double *cd = g->cdir + (base + n) * D;
        if (cn > 0) {
            for (int j = 0; j < D; j++) cd[j] = mu[j] / cn;
        } else {
            /* An exactly cancelling centroid has no direction; use view 0 (counted below). */
            memcpy(cd, zn, sizeof(double) * (size_t)D);
            g->zero_cent++;
        }
        for (int v = 0; v < K; v++)
            for (int w = v + 1; w < K; w++) {
                double sq = 0, dot = 0;
                for (int j = 0; j < D; j++) {
                    const double a = zn[(size_t)v * D + j], b = zn[(size_t)w * D + j];
                    sq += (a - b) * (a - b);
                    dot += a * b;
                }
                g->pair_sq += sq;
                g->pair_dot += dot;
                g->pairs++;
            }
    }
    /* Singular values from the r x r Gram matrix (M M^T for P <= D, M^T M otherwise). */
    if (P <= D) {
        for (int i = 0; i < P; i++)
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int t = 0; t < D; t++) s += g->m[(size_t)i * D + t] * g->m[(size_t)j * D + t];
                g->gram[(size_t)i * r + j] = g->gram[(size_t)j * r + i] = s;
            }
    } else {
        memset(g->gram, 0, sizeof(double) * (size_t)r * r);
        for (int n = 0; n < P; n++) {
            const double *mu = g->m + (size_t)n * D;
            for (int i = 0; i < D; i++)
                for (int j = 0; j <= i; j++) g->gram[(size_t)i * r + j] += mu[i] * mu[j];
        }
        for (int i = 0; i < D; i++)
            for (int j = 0; j < i; j++) g->gram[(size_t)j * r + i] = g->gram[(size_t)i * r + j];
    }
    mmcr_status st = mmcr_sym_eig(g->gram, g->eig, r, g->eig_ws);
    if (st != MMCR_OK) return mmcr_err_set(err, st, "geometry: eigensolver failed on batch %d", g->batches);
    double nuc = 0;
    for (int i = 0; i < r; i++) {
        const double sv = sqrt(fmax(g->eig[r - 1 - i], 0.0)); /* eig ascending -> sv descending */
        g->sv_sum[i] += sv;
        nuc += sv;
    }
    const double bound = mmcr_ppe_bound(P, D);
    const double smin = sqrt(fmax(g->eig[0], 0.0)), smax = sqrt(fmax(g->eig[r - 1], 0.0));
    g->nuc[g->batches] = nuc;
    g->ppe[g->batches] = (bound - nuc) / bound;
    g->cond[g->batches] = smin > 0 ? smax / smin : INFINITY;
    g->batches++;
    return MMCR_OK;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Linear interpolation between order statistics (the "type 7" quantile). */
static double quantile_sorted(const double *s, size_t n, double q) {
    const double h = q * (double)(n - 1);
    const size_t i = (size_t)floor(h);
    if (i + 1 >= n) return s[n - 1];
    return s[i] + (h - (double)i) * (s[i + 1] - s[i]);
}

mmcr_status mmcr_geometry_finish(mmcr_geometry *g, int entropy_k, mmcr_geometry_result *res, mmcr_err *err) {
    memset(res, 0, sizeof *res);
    if (g->batches < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "geometry: no batch was added");
    const int P = g->p, K = g->k, D = g->d, r = rank_of(g), B = g->batches;
    const long n = (long)B * P;
    if (entropy_k < 1 || entropy_k >= n)
        return mmcr_err_set(err, MMCR_ERR_ARG, "geometry: entropy k = %d must be in [1, %ld)", entropy_k, n);
    res->p = P, res->k = K, res->d = D, res->batches = B, res->n_data = n;
    res->bound = mmcr_ppe_bound(P, D);
    res->gamma = mmcr_ppe_gamma(P, D);
    mmcr_status st = mmcr_mp_m(res->gamma, &res->m_gamma, err);
    if (st != MMCR_OK) return st;

    double s = 0, s2 = 0, cs = 0, cond = 0;
    for (int b = 0; b < B; b++) s += g->ppe[b], cs += g->nuc[b], cond += g->cond[b];
    res->ppe_mean = s / B;
    res->nuclear_mean = cs / B;
    res->cond_mean = cond / B;
    for (int b = 0; b < B; b++) s2 += (g->ppe[b] - res->ppe_mean) * (g->ppe[b] - res->ppe_mean);
    res->ppe_se = B > 1 ? sqrt(s2 / (B - 1)) / sqrt((double)B) : NAN;

    double c2 = 0;
    for (long i = 0; i < n; i++) c2 += g->cnorm[i] * g->cnorm[i];
    res->centroid_norm2_mean = c2 / (double)n;
    double v = 0;
    for (long i = 0; i < n; i++) {
        const double e = g->cnorm[i] * g->cnorm[i] - res->centroid_norm2_mean;
        v += e * e;
    }
    res->centroid_norm2_std = n > 1 ? sqrt(v / (double)(n - 1)) : 0;
    memcpy(g->sorted, g->cnorm, sizeof(double) * (size_t)n);
    qsort(g->sorted, (size_t)n, sizeof(double), cmp_double);
    res->centroid_norm_min = g->sorted[0];
    res->centroid_norm_q25 = quantile_sorted(g->sorted, (size_t)n, 0.25);
    res->centroid_norm_median = quantile_sorted(g->sorted, (size_t)n, 0.5);
    res->centroid_norm_q75 = quantile_sorted(g->sorted, (size_t)n, 0.75);
    res->centroid_norm_max = g->sorted[n - 1];
    res->centroid_norms = g->cnorm;
    res->ppe_predicted = 1.0 - sqrt(res->centroid_norm2_mean) * res->m_gamma;

    if (K >= 2 && g->pairs > 0) {
        res->align = g->pair_sq / (double)g->pairs;
        res->mean_cos = g->pair_dot / (double)g->pairs;
        res->vmf_kappa = mmcr_vmf_kappa_ml(D, res->mean_cos);
        res->reconstruction = isinf(res->vmf_kappa)
                                  ? INFINITY
                                  : mmcr_vmf_log_norm(D, res->vmf_kappa) + res->vmf_kappa * res->mean_cos;
    } else {
        res->align = res->mean_cos = res->vmf_kappa = res->reconstruction = NAN;
    }

    st = mmcr_sphere_knn_entropy(g->view0, (int)n, D, entropy_k, &res->entropy, &res->unif_views,
                                 &res->entropy_duplicates, err);
    if (st != MMCR_OK) return st;
    st = mmcr_sphere_knn_entropy(g->cdir, (int)n, D, 1, NULL, &res->unif_centroids, NULL, err);
    if (st != MMCR_OK) return st;
    res->entropy_k = entropy_k;
    res->unif_uniform = mmcr_uniformity_uniform(D);
    res->entropy_uniform = mmcr_sphere_log_area(D);
    res->entropy_gap = res->entropy - res->entropy_uniform;
    res->mi_lower_bound = res->reconstruction + res->entropy;

    /* Predicted spectrum: sigma^2 = c * max(P,D)/D * lambda with lambda ~ MP(gamma). */
    res->rank = r;
    res->sv_scale = sqrt(res->centroid_norm2_mean * (double)(P > D ? P : D) / (double)D);
    for (int i = 0; i < r; i++) {
        g->sv_mean[i] = g->sv_sum[i] / B;
        const double q = 1.0 - ((double)i + 0.5) / (double)r;
        g->sv_mp[i] = res->sv_scale * sqrt(fmax(mmcr_mp_quantile(res->gamma, q), 0.0));
    }
    res->sv_mean = g->sv_mean;
    res->sv_mp = g->sv_mp;
    const double sg = sqrt(res->gamma);
    res->cond_mp = sg < 1 ? (1 + sg) / (1 - sg) : INFINITY;
    return MMCR_OK;
}
