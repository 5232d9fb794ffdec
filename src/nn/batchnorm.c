/* Batch norm with PyTorch semantics: biased batch variance to normalise, unbiased variance into
 * the running variance, r = (1 - momentum) r + momentum * batch, invstd = 1 / sqrt(var + eps).
 *
 * Statistics are accumulated in double, in vector lanes (GCC/Clang vector extensions, so the
 * reductions vectorise without -ffast-math and give the same result at every vector width),
 * on data shifted by the channel's first value so that sum-of-squares minus squared mean does
 * not cancel. Channels are independent, so OpenMP splits over channels. */
#include "nn/nn_internal.h"

#include <math.h>
#include <string.h>

/* Below this many elements a parallel region costs more than it saves. */
#define BN_PAR_MIN 32768

typedef float bn_v4f __attribute__((vector_size(16)));
typedef int bn_v4i __attribute__((vector_size(16)));
typedef double bn_v4d __attribute__((vector_size(32)));

static inline bn_v4f bn_load(const float *p) {
    bn_v4f v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}

static inline double bn_hsum(const bn_v4d *a, const bn_v4d *b) {
    bn_v4d t = *a + *b;
    return (t[0] + t[1]) + (t[2] + t[3]);
}

/* Mean and biased variance of x[0..m) with stride 'stride'. */
static void bn_stats(const float *x, size_t m, size_t stride, double *mean, double *var) {
    const double shift = (double)x[0];
    double ss = 0.0, qq = 0.0;
    size_t i = 0;
    if (stride == 1) {
        bn_v4d s0 = {0, 0, 0, 0}, s1 = s0, q0 = s0, q1 = s0;
        for (; i + 8 <= m; i += 8) {
            bn_v4d a = __builtin_convertvector(bn_load(x + i), bn_v4d) - shift;
            bn_v4d b = __builtin_convertvector(bn_load(x + i + 4), bn_v4d) - shift;
            s0 += a;
            s1 += b;
            q0 += a * a;
            q1 += b * b;
        }
        ss = bn_hsum(&s0, &s1);
        qq = bn_hsum(&q0, &q1);
    }
    for (; i < m; i++) {
        double t = (double)x[i * stride] - shift;
        ss += t;
        qq += t * t;
    }
    double mu = ss / (double)m;
    double v = qq / (double)m - mu * mu;
    *mean = shift + mu;
    *var = v > 0.0 ? v : 0.0;
}

/* Per-channel affine map y = ((x - mh) - ml) * a + b, updating the running stats in training.
 * The mean is split into float hi + lo parts so that a large mean relative to the spread does
 * not cancel in float (x - mh is exact for x near the mean). */
typedef struct bn_map {
    float mh, ml, a, b;
} bn_map;

static bn_map bn_affine(int c, size_t m, const float *x, size_t stride, float *save_mean, float *save_invstd,
                        const float *gamma, const float *beta, float *run_mean, float *run_var,
                        const mmcr_bn_desc *d, int train) {
    double mean, invstd;
    if (train) {
        double var;
        MMCR_ASSERT(m > 1); /* PyTorch refuses one value per channel in training too */
        bn_stats(x, m, stride, &mean, &var);
        invstd = 1.0 / sqrt(var + (double)d->eps);
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        if (run_mean && run_var) {
            const double mom = (double)d->momentum;
            run_mean[c] = (float)((1.0 - mom) * (double)run_mean[c] + mom * mean);
            run_var[c] = (float)((1.0 - mom) * (double)run_var[c] + mom * var * (double)m / (double)(m - 1));
        }
    } else {
        mean = (double)run_mean[c];
        invstd = 1.0 / sqrt((double)run_var[c] + (double)d->eps);
    }
    bn_map mp;
    mp.mh = (float)mean;
    mp.ml = (float)(mean - (double)mp.mh);
    mp.a = (float)((gamma ? (double)gamma[c] : 1.0) * invstd);
    mp.b = beta ? beta[c] : 0.0f;
    return mp;
}

void mmcr_bn_forward_fused(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                           const float *beta, float *run_mean, float *run_var, const mmcr_bn_desc *d, size_t m,
                           int train, const float *residual, int relu) {
#pragma omp parallel for schedule(static) if ((size_t)d->c * m >= BN_PAR_MIN)
    for (int c = 0; c < d->c; c++) {
        const float *xc = x + (size_t)c * m;
        float *yc = y + (size_t)c * m;
        const bn_map p = bn_affine(c, m, xc, 1, save_mean, save_invstd, gamma, beta, run_mean, run_var, d, train);
        const float mh = p.mh, ml = p.ml, a = p.a, b = p.b;
        if (residual) {
            const float *rc = residual + (size_t)c * m;
            if (relu) {
                for (size_t i = 0; i < m; i++) {
                    float v = ((xc[i] - mh) - ml) * a + b + rc[i];
                    yc[i] = v < 0.0f ? 0.0f : v; /* NaN passes, as torch.relu */
                }
            } else {
                for (size_t i = 0; i < m; i++) yc[i] = ((xc[i] - mh) - ml) * a + b + rc[i];
            }
        } else if (relu) {
            for (size_t i = 0; i < m; i++) {
                float v = ((xc[i] - mh) - ml) * a + b;
                yc[i] = v < 0.0f ? 0.0f : v;
            }
        } else {
            for (size_t i = 0; i < m; i++) yc[i] = ((xc[i] - mh) - ml) * a + b;
        }
    }
}

void mmcr_bn_forward(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                     const float *beta, float *run_mean, float *run_var, const mmcr_bn_desc *d, size_t m, int train) {
    mmcr_bn_forward_fused(y, save_mean, save_invstd, x, gamma, beta, run_mean, run_var, d, m, train, NULL, 0);
}

/* Sums over one channel of g = dy masked by relu_y > 0 (when given): sum g, sum g * (x - mean). */
static void bn_grad_sums(const float *dy, const float *x, const float *relu_y, size_t m, size_t stride,
                         double mean, double *sum_g, double *sum_gx) {
    double ss = 0.0, qq = 0.0;
    size_t i = 0;
    if (stride == 1) {
        const bn_v4f zero = {0, 0, 0, 0};
        bn_v4d s0 = {0, 0, 0, 0}, s1 = s0, q0 = s0, q1 = s0;
        for (; i + 8 <= m; i += 8) {
            bn_v4f g0 = bn_load(dy + i), g1 = bn_load(dy + i + 4);
            if (relu_y) {
                g0 = (bn_v4f)((bn_v4i)g0 & (bn_load(relu_y + i) > zero));
                g1 = (bn_v4f)((bn_v4i)g1 & (bn_load(relu_y + i + 4) > zero));
            }
            bn_v4d a = __builtin_convertvector(g0, bn_v4d), b = __builtin_convertvector(g1, bn_v4d);
            s0 += a;
            s1 += b;
            q0 += a * (__builtin_convertvector(bn_load(x + i), bn_v4d) - mean);
            q1 += b * (__builtin_convertvector(bn_load(x + i + 4), bn_v4d) - mean);
        }
        ss = bn_hsum(&s0, &s1);
        qq = bn_hsum(&q0, &q1);
    }
    for (; i < m; i++) {
        size_t t = i * stride;
        float g = dy[t];
        if (relu_y && !(relu_y[t] > 0.0f)) g = 0.0f;
        ss += (double)g;
        qq += (double)g * ((double)x[t] - mean);
    }
    *sum_g = ss;
    *sum_gx = qq;
}

void mmcr_bn_backward_fused(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma,
                            const mmcr_bn_desc *d, size_t m, const float *relu_y) {
#pragma omp parallel for schedule(static) if ((size_t)d->c * m >= BN_PAR_MIN)
    for (int c = 0; c < d->c; c++) {
        const size_t off = (size_t)c * m;
        const float *dyc = dy + off, *xc = x + off, *ryc = relu_y ? relu_y + off : NULL;
        float *dxc = dx + off;
        const double mean = (double)save_mean[c], invstd = (double)save_invstd[c];
        double sg, sgx;
        bn_grad_sums(dyc, xc, ryc, m, 1, mean, &sg, &sgx);
        dgamma[c] += (float)(sgx * invstd);
        dbeta[c] += (float)sg;
        /* dx = gamma*invstd * (g - mean(g) - (x - mean) * invstd^2 * mean(g (x - mean))) */
        const float a = (float)((double)gamma[c] * invstd);
        const float k1 = (float)(sg / (double)m);
        const float k2 = (float)(sgx * invstd * invstd / (double)m);
        const float mu = save_mean[c];
        if (ryc) {
            for (size_t i = 0; i < m; i++) {
                float g = dyc[i], r = ryc[i]; /* unconditional loads: the select vectorises */
                g = r > 0.0f ? g : 0.0f;
                dxc[i] = a * (g - k1 - (xc[i] - mu) * k2);
            }
        } else {
            for (size_t i = 0; i < m; i++) dxc[i] = a * (dyc[i] - k1 - (xc[i] - mu) * k2);
        }
    }
}

void mmcr_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *save_mean, const float *save_invstd, const float *gamma, const mmcr_bn_desc *d,
                      size_t m) {
    mmcr_bn_backward_fused(dx, dgamma, dbeta, dy, x, save_mean, save_invstd, gamma, d, m, NULL);
}

/* ---- 1-D: row-major (N x C); columns are strided but the projector is small ---- */

void mmcr_bn1d_forward_fused(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                             const float *beta, float *run_mean, float *run_var, const mmcr_bn_desc *d, int n,
                             int train, int relu) {
    const size_t cs = (size_t)d->c;
#pragma omp parallel for schedule(static) if (cs * (size_t)n >= BN_PAR_MIN)
    for (int c = 0; c < d->c; c++) {
        const bn_map p =
            bn_affine(c, (size_t)n, x + c, cs, save_mean, save_invstd, gamma, beta, run_mean, run_var, d, train);
        for (int i = 0; i < n; i++) {
            size_t t = (size_t)i * cs + (size_t)c;
            float v = ((x[t] - p.mh) - p.ml) * p.a + p.b;
            y[t] = (relu && v < 0.0f) ? 0.0f : v;
        }
    }
}

void mmcr_bn1d_forward(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                       const float *beta, float *run_mean, float *run_var, const mmcr_bn_desc *d, int n, int train) {
    mmcr_bn1d_forward_fused(y, save_mean, save_invstd, x, gamma, beta, run_mean, run_var, d, n, train, 0);
}

void mmcr_bn1d_backward_fused(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                              const float *save_mean, const float *save_invstd, const float *gamma,
                              const mmcr_bn_desc *d, int n, const float *relu_y) {
    const size_t cs = (size_t)d->c;
#pragma omp parallel for schedule(static) if (cs * (size_t)n >= BN_PAR_MIN)
    for (int c = 0; c < d->c; c++) {
        const double mean = (double)save_mean[c], invstd = (double)save_invstd[c];
        double sg, sgx;
        bn_grad_sums(dy + c, x + c, relu_y ? relu_y + c : NULL, (size_t)n, cs, mean, &sg, &sgx);
        dgamma[c] += (float)(sgx * invstd);
        dbeta[c] += (float)sg;
        const float a = (float)((double)gamma[c] * invstd);
        const float k1 = (float)(sg / (double)n);
        const float k2 = (float)(sgx * invstd * invstd / (double)n);
        const float mu = save_mean[c];
        for (int i = 0; i < n; i++) {
            size_t t = (size_t)i * cs + (size_t)c;
            float g = (relu_y && !(relu_y[t] > 0.0f)) ? 0.0f : dy[t];
            dx[t] = a * (g - k1 - (x[t] - mu) * k2);
        }
    }
}

void mmcr_bn1d_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                        const float *save_mean, const float *save_invstd, const float *gamma, const mmcr_bn_desc *d,
                        int n) {
    mmcr_bn1d_backward_fused(dx, dgamma, dbeta, dy, x, save_mean, save_invstd, gamma, d, n, NULL);
}
