/* CLIP's symmetric InfoNCE with a learnable temperature (through the log of the logit scale).
 * Normalisation as the MMCR loss (divide by max(||y||, 1e-12)); similarities, softmaxes and
 * gradients in double; workspace allocated at create. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/multimodal.h"

#define NORM_EPS 1e-12

struct mmcr_clip_loss {
    int max_n, d, n;
    double log_scale;
    double *za, *zb, *na, *nb; /* normalised rows (n x d) and their raw norms (n) */
    double *s;                 /* similarities (n x n), then dL/dS in place */
    double *lse_row, *lse_col; /* log-sum-exp of each row / column of the logits */
    double *dza, *dzb;         /* dL/dz (n x d) */
    float *da, *db;            /* gradients of the last forward */
    double dt;
};

void mmcr_clip_loss_destroy(mmcr_clip_loss **pl) {
    if (!pl || !*pl) return;
    mmcr_clip_loss *l = *pl;
    mmcr_free(l->za);
    mmcr_free(l->zb);
    mmcr_free(l->na);
    mmcr_free(l->nb);
    mmcr_free(l->s);
    mmcr_free(l->lse_row);
    mmcr_free(l->lse_col);
    mmcr_free(l->dza);
    mmcr_free(l->dzb);
    mmcr_free(l->da);
    mmcr_free(l->db);
    free(l);
    *pl = NULL;
}

mmcr_status mmcr_clip_loss_create(mmcr_clip_loss **out, int max_n, int d, mmcr_err *err) {
    *out = NULL;
    if (max_n < 1 || d < 1 || max_n > 65536)
        return mmcr_err_set(err, MMCR_ERR_ARG, "CLIP loss: bad sizes (batch %d, dimension %d)", max_n, d);
    mmcr_clip_loss *l = calloc(1, sizeof *l);
    if (!l) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the CLIP loss");
    l->max_n = max_n;
    l->d = d;
    const size_t nd = (size_t)max_n * (size_t)d, nn = (size_t)max_n * (size_t)max_n;
    l->za = mmcr_alloc(sizeof(double) * nd);
    l->zb = mmcr_alloc(sizeof(double) * nd);
    l->na = mmcr_alloc(sizeof(double) * (size_t)max_n);
    l->nb = mmcr_alloc(sizeof(double) * (size_t)max_n);
    l->s = mmcr_alloc(sizeof(double) * nn);
    l->lse_row = mmcr_alloc(sizeof(double) * (size_t)max_n);
    l->lse_col = mmcr_alloc(sizeof(double) * (size_t)max_n);
    l->dza = mmcr_alloc(sizeof(double) * nd);
    l->dzb = mmcr_alloc(sizeof(double) * nd);
    l->da = mmcr_alloc(sizeof(float) * nd);
    l->db = mmcr_alloc(sizeof(float) * nd);
    if (!l->za || !l->zb || !l->na || !l->nb || !l->s || !l->lse_row || !l->lse_col || !l->dza || !l->dzb || !l->da || !l->db) {
        mmcr_clip_loss_destroy(&l);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the CLIP loss workspace (batch %d)", max_n);
    }
    *out = l;
    return MMCR_OK;
}

double mmcr_clip_clamp_log_scale(double t) {
    if (isnan(t)) return t;
    return t < 0 ? 0 : t > MMCR_CLIP_LOG_SCALE_MAX ? MMCR_CLIP_LOG_SCALE_MAX : t;
}

/* Normalises n rows of x into z, norms into nrm; returns the first non-finite row or -1. */
static long normalise(const float *x, int n, int d, double *z, double *nrm) {
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)r[j] * (double)r[j];
        if (!isfinite(s)) return i;
        double nv = sqrt(s);
        nrm[i] = nv;
        double inv = 1.0 / (nv > NORM_EPS ? nv : NORM_EPS);
        for (int j = 0; j < d; j++) z[(size_t)i * (size_t)d + (size_t)j] = (double)r[j] * inv;
    }
    return -1;
}

/* dL/dx from dL/dz for z = x / max(||x||, eps). */
static void norm_backward(float *dx, const double *dz, const double *z, const double *nrm, int n, int d) {
    for (int i = 0; i < n; i++) {
        const double *g = dz + (size_t)i * (size_t)d, *zi = z + (size_t)i * (size_t)d;
        float *o = dx + (size_t)i * (size_t)d;
        if (nrm[i] > NORM_EPS) {
            double dot = 0;
            for (int j = 0; j < d; j++) dot += g[j] * zi[j];
            for (int j = 0; j < d; j++) o[j] = (float)((g[j] - zi[j] * dot) / nrm[i]);
        } else {
            for (int j = 0; j < d; j++) o[j] = (float)(g[j] / NORM_EPS);
        }
    }
}

mmcr_status mmcr_clip_loss_forward_f32(mmcr_clip_loss *l, const float *a, const float *b, int n, double log_scale,
                                       mmcr_clip_result *res, mmcr_err *err) {
    mmcr_clip_result r = {0};
    r.n = n;
    r.first_bad_row = -1;
    if (n < 1 || n > l->max_n) {
        if (res) *res = r;
        return mmcr_err_set(err, MMCR_ERR_ARG, "CLIP loss: batch of %d, allowed 1..%d", n, l->max_n);
    }
    const int d = l->d;
    long bad = normalise(a, n, d, l->za, l->na);
    if (bad < 0) {
        bad = normalise(b, n, d, l->zb, l->nb);
        if (bad >= 0) bad += n;
    }
    if (bad >= 0 || !isfinite(log_scale)) {
        r.first_bad_row = bad;
        if (res) *res = r;
        if (bad < 0) return mmcr_err_set(err, MMCR_ERR_NONFINITE, "CLIP loss: the log scale is not finite");
        return mmcr_err_set(err, MMCR_ERR_NONFINITE, "row %ld of the %s embeddings is not finite",
                            bad < n ? bad : bad - n, bad < n ? "image" : "text");
    }
    const double scale = exp(log_scale);
    double *S = l->s;
    /* S = za zb^T */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0, l->za, d, l->zb, d, 0.0, S, n);
    /* log-sum-exp of the logits per row (image -> text) and per column (text -> image). */
    double li2t = 0, lt2i = 0, pos = 0;
    int ok_i2t = 0, ok_t2i = 0;
    for (int i = 0; i < n; i++) {
        double mr = -INFINITY, mc = -INFINITY;
        for (int j = 0; j < n; j++) {
            mr = fmax(mr, S[(size_t)i * (size_t)n + (size_t)j]);
            mc = fmax(mc, S[(size_t)j * (size_t)n + (size_t)i]);
        }
        double sr = 0, sc = 0;
        int beat_r = 0, beat_c = 0;
        const double sii = S[(size_t)i * (size_t)n + (size_t)i];
        for (int j = 0; j < n; j++) {
            double vr = S[(size_t)i * (size_t)n + (size_t)j], vc = S[(size_t)j * (size_t)n + (size_t)i];
            sr += exp(scale * (vr - mr));
            sc += exp(scale * (vc - mc));
            if (j != i) {
                beat_r += vr >= sii;
                beat_c += vc >= sii;
            }
        }
        l->lse_row[i] = scale * mr + log(sr);
        l->lse_col[i] = scale * mc + log(sc);
        li2t += l->lse_row[i] - scale * sii;
        lt2i += l->lse_col[i] - scale * sii;
        pos += sii;
        ok_i2t += beat_r == 0;
        ok_t2i += beat_c == 0;
    }
    r.loss_i2t = li2t / n;
    r.loss_t2i = lt2i / n;
    r.loss = 0.5 * (r.loss_i2t + r.loss_t2i);
    r.scale = scale;
    r.acc_i2t = (double)ok_i2t / n;
    r.acc_t2i = (double)ok_t2i / n;
    r.mean_pos_sim = pos / n;
    /* dL/dlogit_ij = (P_ij + Q_ij - 2 delta_ij) / (2n); dt = sum dL/dlogit_ij * logit_ij; dS = scale dL/dlogit.
     * S is overwritten in place by dS. */
    double dt = 0;
    const double c = 0.5 / n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double *sij = &S[(size_t)i * (size_t)n + (size_t)j];
            double logit = scale * *sij;
            double g = c * (exp(logit - l->lse_row[i]) + exp(logit - l->lse_col[j]) - (i == j ? 2.0 : 0.0));
            dt += g * logit;
            *sij = scale * g;
        }
    l->dt = dt;
    /* dza = dS zb, dzb = dS^T za, then through the normalisation. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, 1.0, S, n, l->zb, d, 0.0, l->dza, d);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, n, 1.0, S, n, l->za, d, 0.0, l->dzb, d);
    norm_backward(l->da, l->dza, l->za, l->na, n, d);
    norm_backward(l->db, l->dzb, l->zb, l->nb, n, d);
    l->n = n;
    l->log_scale = log_scale;
    if (res) *res = r;
    return MMCR_OK;
}

void mmcr_clip_loss_backward_f32(const mmcr_clip_loss *l, float *da, float *db, double *d_log_scale) {
    MMCR_ASSERT(l->n > 0);
    const size_t nd = (size_t)l->n * (size_t)l->d;
    if (da) memcpy(da, l->da, sizeof(float) * nd);
    if (db) memcpy(db, l->db, sizeof(float) * nd);
    if (d_log_scale) *d_log_scale = l->dt;
}
