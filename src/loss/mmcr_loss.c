/* The MMCR objective: row normalisation, view centroids, nuclear norms and the gradient with
 * respect to the raw embeddings (paper-notes.md §1.2-1.3, §3.1-3.2, §3.5).
 *
 * Everything after reading the input runs in double. Forward also forms the gradient (unless
 * turned off): the normalised views Z are needed only to build it, so the same buffer holds Z
 * and then, datum by datum, dLoss/dY; backward merely copies (or rounds) it out. All buffers are
 * carved out of one block at create time; forward and backward never allocate. */
#include "mmcr/loss.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "mmcr/linalg.h"

#define NORM_EPS 1e-12 /* PyTorch's F.normalize clamp (pitfalls.md entry 19) */

struct mmcr_loss {
    int P, K, D;
    double lambda;
    int compute_grad;
    int nthreads; /* per-thread scratch slots */
    int have_grad;
    void *block;
    size_t bytes;
    double *zg;      /* (P*K) x D: normalised views, then dLoss/dY */
    double *nrm;     /* P*K: ||y|| (NaN marks a non-finite row) */
    double *m;       /* P x D centroids */
    double *q;       /* P x D polar factor of M */
    double *loc;     /* P local nuclear norms */
    double *nuc_ws;  /* mmcr_nuclear_ws_size(P, D) */
    double *thr;     /* nthreads slots of thr_stride doubles */
    size_t thr_stride;
    size_t loc_ws_size; /* mmcr_nuclear_ws_size(K, D) */
};

static size_t round_up8(size_t n) { return (n + 7) & ~(size_t)7; } /* 64-byte regions */

/* n = a * b * c with overflow detection; 0 on overflow. */
static size_t mul3(size_t a, size_t b, size_t c) {
    if (a && b > SIZE_MAX / a) return 0;
    size_t ab = a * b;
    if (ab && c > SIZE_MAX / ab) return 0;
    return ab * c;
}

mmcr_status mmcr_loss_create(mmcr_loss **out, int P, int K, int D, double lambda, mmcr_err *err) {
    MMCR_ASSERT(out);
    *out = NULL;
    if (P < 1 || K < 1 || D < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "MMCR loss: P, K and D must be >= 1 (got P=%d, K=%d, D=%d)", P, K, D);
    if (!isfinite(lambda) || lambda < 0)
        return mmcr_err_set(err, MMCR_ERR_ARG, "MMCR loss: lambda must be a finite number >= 0 (got %g)", lambda);
    size_t pkd = mul3((size_t)P, (size_t)K, (size_t)D);
    if (!pkd || pkd > SIZE_MAX / 64)
        return mmcr_err_set(err, MMCR_ERR_ARG, "MMCR loss: P*K*D = %d*%d*%d is too large", P, K, D);

    mmcr_loss *l = mmcr_alloc(sizeof *l);
    if (!l) return mmcr_err_set(err, MMCR_ERR_NOMEM, "MMCR loss: out of memory");
    l->P = P;
    l->K = K;
    l->D = D;
    l->lambda = lambda;
    l->compute_grad = 1;
    l->nthreads = omp_get_max_threads();
    if (l->nthreads < 1) l->nthreads = 1;
    l->loc_ws_size = mmcr_nuclear_ws_size(K, D);
    l->thr_stride = round_up8(l->loc_ws_size + (size_t)K * D);

    size_t pk = (size_t)P * K, pd = (size_t)P * D;
    size_t sz_zg = round_up8(pkd), sz_nrm = round_up8(pk), sz_m = round_up8(pd), sz_loc = round_up8((size_t)P);
    size_t sz_nuc = round_up8(mmcr_nuclear_ws_size(P, D));
    size_t sz_thr = lambda > 0 ? (size_t)l->nthreads * l->thr_stride : 0;
    size_t total = sz_zg + sz_nrm + 2 * sz_m + sz_loc + sz_nuc + sz_thr;
    l->bytes = total * sizeof(double);
    l->block = mmcr_alloc(l->bytes);
    if (!l->block) {
        mmcr_free(l);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "MMCR loss: out of memory allocating %zu bytes of workspace for P=%d, K=%d, D=%d",
                            total * sizeof(double), P, K, D);
    }
    double *p = l->block;
    l->zg = p; p += sz_zg;
    l->nrm = p; p += sz_nrm;
    l->m = p; p += sz_m;
    l->q = p; p += sz_m;
    l->loc = p; p += sz_loc;
    l->nuc_ws = p; p += sz_nuc;
    l->thr = sz_thr ? p : NULL;
    *out = l;
    return MMCR_OK;
}

void mmcr_loss_destroy(mmcr_loss **l) {
    if (!l || !*l) return;
    mmcr_free((*l)->block);
    mmcr_free(*l);
    *l = NULL;
}

size_t mmcr_loss_workspace_bytes(const mmcr_loss *l) { return l ? l->bytes + sizeof *l : 0; }

void mmcr_loss_set_compute_grad(mmcr_loss *l, int on) {
    MMCR_ASSERT(l);
    l->compute_grad = on ? 1 : 0;
    if (!on) l->have_grad = 0;
}

/* Row r: z = y / max(||y||, eps), in double. Returns 0 when the row holds NaN/Inf. The sum of
 * squares can overflow for finite rows with |y| > ~1e154; those are rescaled first. */
#define DEFINE_NORMALISE_ROW(name, T)                                                          \
    static int name(const T *y, double *z, int D, double *nrm_out) {                           \
        double ss = 0.0;                                                                         \
        for (int d = 0; d < D; d++) ss += (double)y[d] * (double)y[d];                           \
        if (!isfinite(ss)) {                                                                     \
            double amax = 0.0;                                                                   \
            for (int d = 0; d < D; d++) {                                                        \
                if (!isfinite((double)y[d])) return 0;                                           \
                amax = fmax(amax, fabs((double)y[d]));                                           \
            }                                                                                    \
            double s2 = 0.0;                                                                     \
            for (int d = 0; d < D; d++) s2 += ((double)y[d] / amax) * ((double)y[d] / amax);     \
            *nrm_out = amax * sqrt(s2);                                                          \
        } else {                                                                                 \
            *nrm_out = sqrt(ss);                                                                 \
        }                                                                                        \
        double den = *nrm_out > NORM_EPS ? *nrm_out : NORM_EPS;                                  \
        for (int d = 0; d < D; d++) z[d] = (double)y[d] / den;                                   \
        return 1;                                                                                \
    }
DEFINE_NORMALISE_ROW(normalise_row_f32, float)
DEFINE_NORMALISE_ROW(normalise_row_f64, double)

/* One view's gradient, in place over its normalised row z: with g = cg q + cl ql (ql may be
 * NULL), dL/dy = (g - z (z.g)) / nr, or g / eps when the norm clamp was active (nr == 0).
 * Constants are hoisted and the dot product keeps four partial sums (a fixed order), so the
 * loops vectorise without -ffast-math. */
static void grad_row(double *z, const double *q, const double *ql, int D, double cg, double cl, double nr) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    int d = 0;
    if (ql) {
        for (; d + 4 <= D; d += 4)
            for (int j = 0; j < 4; j++) s[j] += z[d + j] * (cg * q[d + j] + cl * ql[d + j]);
        for (; d < D; d++) s[0] += z[d] * (cg * q[d] + cl * ql[d]);
    } else {
        for (; d + 4 <= D; d += 4)
            for (int j = 0; j < 4; j++) s[j] += z[d + j] * (cg * q[d + j]);
        for (; d < D; d++) s[0] += z[d] * (cg * q[d]);
    }
    const double dot = nr > 0.0 ? (s[0] + s[1]) + (s[2] + s[3]) : 0.0;
    const double inv = 1.0 / (nr > 0.0 ? nr : NORM_EPS);
    if (ql)
        for (d = 0; d < D; d++) z[d] = ((cg * q[d] + cl * ql[d]) - z[d] * dot) * inv;
    else
        for (d = 0; d < D; d++) z[d] = (cg * q[d] - z[d] * dot) * inv;
}

/* Everything after normalisation: centroids, global and local terms, gradient. */
static mmcr_status forward_common(mmcr_loss *l, mmcr_loss_result *res, mmcr_err *err) {
    const int P = l->P, K = l->K, D = l->D;
    const size_t pk = (size_t)P * K;
    const double lambda = l->lambda;
    const int nt = l->nthreads < omp_get_max_threads() ? l->nthreads : omp_get_max_threads();

    /* Non-finite rows: report the first and how many; never drop them (pitfalls.md entry 8). */
    long bad = 0, first_bad = -1, zero_rows = 0;
    for (size_t r = 0; r < pk; r++) {
        if (isnan(l->nrm[r])) {
            if (first_bad < 0) first_bad = (long)r;
            bad++;
        } else if (l->nrm[r] < NORM_EPS) {
            zero_rows++;
        }
    }
    res->zero_rows = zero_rows;
    if (bad) {
        res->first_bad_row = first_bad;
        res->nonfinite_rows = bad;
        return mmcr_err_set(err, MMCR_ERR_NONFINITE,
                            "row %ld (datum %ld, view %ld) of the embeddings is not finite (%ld non-finite row%s)",
                            first_bad, first_bad / K, first_bad % K, bad, bad == 1 ? "" : "s");
    }

    /* Centroids M (P x D) and their mean squared norm. */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < P; n++) {
        double *mu = l->m + (size_t)n * D;
        const double *z = l->zg + (size_t)n * K * D;
        for (int d = 0; d < D; d++) mu[d] = z[d];
        for (int k = 1; k < K; k++)
            for (int d = 0; d < D; d++) mu[d] += z[(size_t)k * D + d];
        for (int d = 0; d < D; d++) mu[d] /= K;
    }
    double msum = 0.0;
    for (size_t i = 0; i < (size_t)P * D; i++) msum += l->m[i] * l->m[i];
    res->mean_centroid_norm2 = msum / P;

    /* Global term. nuclear_norm_ex re-checks finiteness of M and of its Gram matrix. */
    double global = 0.0;
    mmcr_nuclear_info info;
    /* OpenBLAS (OpenMP build) uses omp_get_max_threads() threads per call. A small
     * decomposition is faster on one: LAPACK's tridiagonalisation is a sequence of matrix-vector
     * products whose barriers cost more than the work (at P=256, D=128 on 2 threads: 1.9 ms
     * instead of 1.6). The setting is this thread's own and is restored at once. */
    const int rmin = P < D ? P : D, one_thread = (double)rmin * rmin * (P < D ? D : P) < 3.2e7;
    const int saved_threads = omp_get_max_threads();
    if (one_thread) omp_set_num_threads(1);
    mmcr_status st = mmcr_nuclear_norm_ex(l->m, P, D, NULL, &global, l->compute_grad ? l->q : NULL, l->nuc_ws, &info);
    if (one_thread) omp_set_num_threads(saved_threads);
    res->global_rank = info.rank;
    if (st == MMCR_ERR_NONFINITE)
        return mmcr_err_set(err, st, "the centroid matrix (or its Gram matrix) is not finite");
    if (st != MMCR_OK)
        return mmcr_err_set(err, st, "eigendecomposition of the %dx%d centroid Gram matrix failed: %s",
                            P < D ? P : D, P < D ? P : D, mmcr_status_str(st));

    /* Per datum: local term (lambda > 0) and the gradient, in place over Z.
     * dL/dz_{n,k} = -Q[n]/K + (lambda/P) Q_n[k], Q_n the polar factor of the K x D views;
     * dL/dy = (g - z (z.g)) / ||y||, or g / eps where the norm clamp is active. */
    mmcr_status loc_st = MMCR_OK;
    const int do_grad = l->compute_grad;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < P; n++) {
        double *z = l->zg + (size_t)n * K * D;
        const double *qn = l->q + (size_t)n * D;
        double *qloc = NULL;
        if (lambda > 0) {
            double *slot = l->thr + (size_t)omp_get_thread_num() * l->thr_stride;
            qloc = slot + l->loc_ws_size;
            double nuc_n = 0.0;
            mmcr_status s = mmcr_nuclear_norm_ex(z, K, D, NULL, &nuc_n, do_grad ? qloc : NULL, slot, NULL);
            l->loc[n] = nuc_n;
            if (s != MMCR_OK) {
#pragma omp critical(mmcr_loss_local_status)
                loc_st = s;
                continue;
            }
        }
        if (!do_grad) continue;
        for (int k = 0; k < K; k++) {
            double *zr = z + (size_t)k * D;
            const double *ql = qloc ? qloc + (size_t)k * D : NULL;
            const double nr = l->nrm[(size_t)n * K + k];
            grad_row(zr, qn, ql, D, -1.0 / K, lambda / P, nr > NORM_EPS ? nr : 0.0);
        }
    }
    if (loc_st != MMCR_OK)
        return mmcr_err_set(err, loc_st, "local term: decomposition of a %dx%d view matrix failed: %s", K, D,
                            mmcr_status_str(loc_st));

    double local = 0.0;
    if (lambda > 0) {
        for (int n = 0; n < P; n++) local += l->loc[n]; /* fixed order: same result for any thread count */
        local /= P;
        res->local_eig_solves = P;
    }
    res->global_nuclear_norm = global;
    res->local_term = local;
    res->loss = lambda > 0 ? lambda * local - global : -global;
    res->bound = sqrt((double)P * (double)(P < D ? P : D));
    res->ppe = (res->bound - global) / res->bound;
    if (!isfinite(res->loss) || !isfinite(res->ppe))
        return mmcr_err_set(err, MMCR_ERR_NONFINITE, "the MMCR loss is not finite");
    l->have_grad = do_grad;
    return MMCR_OK;
}

static void result_init(const mmcr_loss *l, mmcr_loss_result *res) {
    memset(res, 0, sizeof *res);
    res->P = l->P;
    res->K = l->K;
    res->D = l->D;
    res->lambda = l->lambda;
    res->first_bad_row = -1;
}

#define DEFINE_FORWARD(name, T, normalise)                                                      \
    mmcr_status name(mmcr_loss *l, const T *y, mmcr_loss_result *res, mmcr_err *err) {          \
        MMCR_ASSERT(l && y && res);                                                              \
        result_init(l, res);                                                                     \
        l->have_grad = 0;                                                                        \
        const long rows = (long)l->P * l->K;                                                     \
        const int D = l->D;                                                                      \
        const int nt = l->nthreads < omp_get_max_threads() ? l->nthreads : omp_get_max_threads(); \
        _Pragma("omp parallel for num_threads(nt) schedule(static)") for (long r = 0; r < rows; r++) { \
            double nr = 0.0;                                                                     \
            if (normalise(y + (size_t)r * D, l->zg + (size_t)r * D, D, &nr))                     \
                l->nrm[r] = nr;                                                                  \
            else                                                                                 \
                l->nrm[r] = NAN;                                                                 \
        }                                                                                        \
        return forward_common(l, res, err);                                                      \
    }
DEFINE_FORWARD(mmcr_loss_forward_f32, float, normalise_row_f32)
DEFINE_FORWARD(mmcr_loss_forward_f64, double, normalise_row_f64)

void mmcr_loss_backward_f64(const mmcr_loss *l, double *dy) {
    MMCR_ASSERT(l && dy);
    MMCR_ASSERT(l->have_grad); /* a successful forward with the gradient on must come first */
    memcpy(dy, l->zg, (size_t)l->P * l->K * l->D * sizeof *dy);
}

void mmcr_loss_backward_f32(const mmcr_loss *l, float *dy) {
    MMCR_ASSERT(l && dy);
    MMCR_ASSERT(l->have_grad);
    size_t n = (size_t)l->P * l->K * l->D;
    for (size_t i = 0; i < n; i++) dy[i] = (float)l->zg[i]; /* one rounding of the double gradient */
}
