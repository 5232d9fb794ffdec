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

/* The map of channel c from its batch statistics (train) or running statistics (eval); in
 * training also saves mean/invstd and updates the running statistics (m values per channel). */
static bn_map bn_finish(int c, size_t m, double mean, double var, float *save_mean, float *save_invstd,
                        const float *gamma, const float *beta, float *run_mean, float *run_var,
                        const mmcr_bn_desc *d, int train) {
    double invstd;
    if (train) {
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

static bn_map bn_affine(int c, size_t m, const float *x, size_t stride, float *save_mean, float *save_invstd,
                        const float *gamma, const float *beta, float *run_mean, float *run_var,
                        const mmcr_bn_desc *d, int train) {
    double mean = 0.0, var = 0.0;
    if (train) {
        MMCR_ASSERT(m > 1); /* PyTorch refuses one value per channel in training too */
        bn_stats(x, m, stride, &mean, &var);
    }
    return bn_finish(c, m, mean, var, save_mean, save_invstd, gamma, beta, run_mean, run_var, d, train);
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

/* ---- 2-D over the blocked layout (N, C/B, H*W, B) that oneDNN's convolutions use ----
 * B channels (16 for AVX-512 kernels, 8 for AVX2 ones) sit side by side, so every pass runs on
 * whole vectors of channels. Sums are split over a fixed number of batch chunks (not over
 * threads) and added in chunk order: the result does not depend on the thread count. part:
 * NN_BN_PART_DOUBLES(c) doubles of scratch. The per-row kernels work on groups of 8 channels,
 * are written once for a constant B and instantiated for B = 16 and B = 8, each compiled for
 * AVX-512 and AVX2 as well as the baseline and picked at load time (the library's baseline is
 * x86-64-v2, where a double vector has two lanes). */

/* 32- and 64-byte vectors pass between the helpers below, which are always inlined (even at
 * -O0) into the cloned kernels, so they are compiled for the clone's instruction set and no call
 * crosses the AVX-512 / baseline calling-convention boundary GCC's -Wpsabi note is about.
 * (Without always_inline a Debug build called a baseline helper from the AVX-512 clone and read
 * garbage.) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float blk_h __attribute__((vector_size(32)));  /* 8 channels of one position, */
typedef int blk_hi __attribute__((vector_size(32)));
typedef double blk_d __attribute__((vector_size(64))); /* in double */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define BLK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BLK_CLONES
#endif
#define BLK_INLINE static inline __attribute__((always_inline))
#define BLK_G(B) ((B) / 8) /* groups of 8 channels per block */

BLK_INLINE blk_h blk_load(const float *p) {
    blk_h v;
    memcpy(&v, p, sizeof v);
    return v;
}

BLK_INLINE void blk_store(float *p, blk_h v) { memcpy(p, &v, sizeof v); }

BLK_INLINE blk_d blk_wide(const float *p) { return __builtin_convertvector(blk_load(p), blk_d); }

BLK_INLINE blk_h blk_relu(blk_h v) {
    const blk_h zero = {0};
    return (blk_h)((blk_hi)v & ~(v < zero)); /* NaN passes, as torch.relu */
}

BLK_INLINE blk_h blk_mask(blk_h g, const float *r) { /* g where relu output r > 0, else 0 */
    const blk_h zero = {0};
    return (blk_h)((blk_hi)g & (blk_load(r) > zero));
}

static int blk_chunks(int n) { return n < NN_BN_CHUNKS ? n : NN_BN_CHUNKS; }

/* Adds the chunk sums of channel block cb in chunk order: s[l], q[l] for its B channels. */
static void blk_reduce(const double *part, int B, int cb, int nch, double *s, double *q) {
    for (int l = 0; l < B; l++) s[l] = q[l] = 0.0;
    for (int k = 0; k < nch; k++) {
        const double *pk = part + ((size_t)cb * (size_t)nch + (size_t)k) * 2 * (size_t)B;
        for (int l = 0; l < B; l++) {
            s[l] += pk[l];
            q[l] += pk[B + l];
        }
    }
}

/* Sums of (x - shift) and (x - shift)^2 over images [n0, n1) of channel block cb. */
BLK_INLINE void moments_body(const int B, const float *x, int n0, int n1, int cb, int nb, size_t hw,
                             const float *shift, double *s, double *q) {
    blk_d sv[2] = {{0}, {0}}, qv[2] = {{0}, {0}}, h[2];
    for (int j = 0; j < BLK_G(B); j++) h[j] = blk_wide(shift + 8 * j);
    for (int i = n0; i < n1; i++) {
        const float *p = x + ((size_t)i * (size_t)nb + (size_t)cb) * hw * (size_t)B;
        for (size_t t = 0; t < hw; t++, p += B)
            for (int j = 0; j < BLK_G(B); j++) {
                const blk_d a = blk_wide(p + 8 * j) - h[j];
                sv[j] += a;
                qv[j] += a * a;
            }
    }
    for (int j = 0; j < BLK_G(B); j++) {
        memcpy(s + 8 * j, &sv[j], sizeof sv[j]);
        memcpy(q + 8 * j, &qv[j], sizeof qv[j]);
    }
}

/* The four per-channel rows (B floats each) of a block's map or coefficients, as vectors. */
BLK_INLINE void blk_rows(const int B, const float *p, blk_h v[4][2]) {
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < BLK_G(B); j++) v[r][j] = blk_load(p + r * B + 8 * j);
}

/* One row (image i, channel block) of y = act(((x - mh) - ml) * a + b + residual). */
BLK_INLINE void apply_body(const int B, float *y, const float *x, const float *residual, int relu, const float *map,
                           size_t hw) {
    blk_h v4[4][2]; /* mh, ml, a, b */
    blk_rows(B, map, v4);
    for (size_t o = 0; o < hw * (size_t)B; o += (size_t)B)
        for (int j = 0; j < BLK_G(B); j++) {
            blk_h v = ((blk_load(x + o + 8 * j) - v4[0][j]) - v4[1][j]) * v4[2][j] + v4[3][j];
            if (residual) v += blk_load(residual + o + 8 * j);
            blk_store(y + o + 8 * j, relu ? blk_relu(v) : v);
        }
}

/* Sums of g and g * (x - mean) over images [n0, n1) of channel block cb, g = dy masked by relu_y. */
BLK_INLINE void grad_sums_body(const int B, const float *dy, const float *x, const float *relu_y, int n0, int n1,
                               int cb, int nb, size_t hw, const float *mean, double *sg, double *sgx) {
    blk_d sv[2] = {{0}, {0}}, qv[2] = {{0}, {0}}, mu[2];
    for (int j = 0; j < BLK_G(B); j++) mu[j] = blk_wide(mean + 8 * j);
    for (int i = n0; i < n1; i++) {
        const size_t off = ((size_t)i * (size_t)nb + (size_t)cb) * hw * (size_t)B;
        for (size_t t = 0; t < hw; t++)
            for (int j = 0; j < BLK_G(B); j++) {
                const size_t o = off + t * (size_t)B + 8 * (size_t)j;
                const blk_h gh = relu_y ? blk_mask(blk_load(dy + o), relu_y + o) : blk_load(dy + o);
                const blk_d g = __builtin_convertvector(gh, blk_d);
                sv[j] += g;
                qv[j] += g * (blk_wide(x + o) - mu[j]);
            }
    }
    for (int j = 0; j < BLK_G(B); j++) {
        memcpy(sg + 8 * j, &sv[j], sizeof sv[j]);
        memcpy(sgx + 8 * j, &qv[j], sizeof qv[j]);
    }
}

/* One row of dx = a * (g - k1 - (x - mean) * k2), g = dy masked by relu_y. */
BLK_INLINE void apply_grad_body(const int B, float *dx, const float *dy, const float *x, const float *relu_y,
                                const float *coef, size_t hw) {
    blk_h v4[4][2]; /* a, k1, k2, mean */
    blk_rows(B, coef, v4);
    for (size_t o = 0; o < hw * (size_t)B; o += (size_t)B)
        for (int j = 0; j < BLK_G(B); j++) {
            const size_t q = o + 8 * (size_t)j;
            const blk_h g = relu_y ? blk_mask(blk_load(dy + q), relu_y + q) : blk_load(dy + q);
            blk_store(dx + q, v4[0][j] * (g - v4[1][j] - (blk_load(x + q) - v4[3][j]) * v4[2][j]));
        }
}

/* The kernels for one block width B (the clones need a name each). */
#define BLK_INSTANCE(B)                                                                                        \
    BLK_CLONES static void blk_moments##B(const float *x, int n0, int n1, int cb, int nb, size_t hw,           \
                                          const float *shift, double *s, double *q) {                          \
        moments_body(B, x, n0, n1, cb, nb, hw, shift, s, q);                                                   \
    }                                                                                                          \
    BLK_CLONES static void blk_apply##B(float *y, const float *x, const float *residual, int relu,             \
                                        const float *map, size_t hw) {                                         \
        apply_body(B, y, x, residual, relu, map, hw);                                                          \
    }                                                                                                          \
    BLK_CLONES static void blk_grad_sums##B(const float *dy, const float *x, const float *relu_y, int n0,      \
                                            int n1, int cb, int nb, size_t hw, const float *mean, double *sg,  \
                                            double *sgx) {                                                     \
        grad_sums_body(B, dy, x, relu_y, n0, n1, cb, nb, hw, mean, sg, sgx);                                   \
    }                                                                                                          \
    BLK_CLONES static void blk_apply_grad##B(float *dx, const float *dy, const float *x, const float *relu_y,  \
                                             const float *coef, size_t hw) {                                   \
        apply_grad_body(B, dx, dy, x, relu_y, coef, hw);                                                       \
    }
BLK_INSTANCE(16)
BLK_INSTANCE(8)

static void blk_moments(int B, const float *x, int n0, int n1, int cb, int nb, size_t hw, const float *shift,
                        double *s, double *q) {
    (B == 16 ? blk_moments16 : blk_moments8)(x, n0, n1, cb, nb, hw, shift, s, q);
}
static void blk_apply(int B, float *y, const float *x, const float *residual, int relu, const float *map,
                      size_t hw) {
    (B == 16 ? blk_apply16 : blk_apply8)(y, x, residual, relu, map, hw);
}
static void blk_grad_sums(int B, const float *dy, const float *x, const float *relu_y, int n0, int n1, int cb,
                          int nb, size_t hw, const float *mean, double *sg, double *sgx) {
    (B == 16 ? blk_grad_sums16 : blk_grad_sums8)(dy, x, relu_y, n0, n1, cb, nb, hw, mean, sg, sgx);
}
static void blk_apply_grad(int B, float *dx, const float *dy, const float *x, const float *relu_y,
                           const float *coef, size_t hw) {
    (B == 16 ? blk_apply_grad16 : blk_apply_grad8)(dx, dy, x, relu_y, coef, hw);
}

static void blk_put_map(float *map, int B, int c, bn_map p) {
    float *mp = map + (size_t)(c / B) * 4 * (size_t)B;
    const int l = c % B;
    mp[l] = p.mh, mp[B + l] = p.ml, mp[2 * B + l] = p.a, mp[3 * B + l] = p.b;
}

void mmcr_bn_forward_blocked(float *y, float *save_mean, float *save_invstd, const float *x, const float *gamma,
                             const float *beta, float *run_mean, float *run_var, const mmcr_bn_desc *d, int n,
                             size_t hw, int B, int train, const float *residual, int relu, double *part) {
    MMCR_ASSERT((B == 8 || B == 16) && d->c % B == 0);
    const int nb = d->c / B, nch = blk_chunks(n);
    const size_t m = (size_t)n * hw, total = (size_t)d->c * m, bs = (size_t)B;
    /* Per-channel map (mh, ml, a, b), B channels at a time, in part once the sums are used:
     * the map of block cb overwrites only the sums of blocks <= cb. */
    float *map = (float *)part;
    if (train) {
        MMCR_ASSERT(m > 1);
#pragma omp parallel for schedule(static) if (total >= BN_PAR_MIN)
        for (int it = 0; it < nb * nch; it++) {
            const int cb = it / nch, k = it % nch;
            blk_moments(B, x, (int)((long)k * n / nch), (int)((long)(k + 1) * n / nch), cb, nb, hw,
                        x + (size_t)cb * hw * bs, part + (size_t)it * 2 * bs, part + (size_t)it * 2 * bs + bs);
        }
        for (int cb = 0; cb < nb; cb++) {
            double mean[NN_BLK_MAX], var[NN_BLK_MAX], ss[NN_BLK_MAX], qq[NN_BLK_MAX];
            blk_reduce(part, B, cb, nch, ss, qq);
            for (int l = 0; l < B; l++) {
                const double mu = ss[l] / (double)m, v = qq[l] / (double)m - mu * mu;
                mean[l] = (double)x[(size_t)cb * hw * bs + (size_t)l] + mu; /* the shift was x[0] */
                var[l] = v > 0.0 ? v : 0.0;
            }
            for (int l = 0; l < B; l++)
                blk_put_map(map, B, cb * B + l,
                            bn_finish(cb * B + l, m, mean[l], var[l], save_mean, save_invstd, gamma, beta, run_mean,
                                      run_var, d, 1));
        }
    } else {
        for (int c = 0; c < d->c; c++)
            blk_put_map(map, B, c,
                        bn_finish(c, m, 0.0, 0.0, save_mean, save_invstd, gamma, beta, run_mean, run_var, d, 0));
    }
#pragma omp parallel for schedule(static) if (total >= BN_PAR_MIN)
    for (long r = 0; r < (long)n * nb; r++) {
        const size_t off = (size_t)r * hw * bs;
        blk_apply(B, y + off, x + off, residual ? residual + off : NULL, relu, map + (size_t)(r % nb) * 4 * bs, hw);
    }
}

void mmcr_bn_backward_blocked(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                              const float *save_mean, const float *save_invstd, const float *gamma,
                              const mmcr_bn_desc *d, int n, size_t hw, int B, const float *relu_y, double *part) {
    MMCR_ASSERT((B == 8 || B == 16) && d->c % B == 0);
    const int nb = d->c / B, nch = blk_chunks(n);
    const size_t m = (size_t)n * hw, total = (size_t)d->c * m, bs = (size_t)B;
#pragma omp parallel for schedule(static) if (total >= BN_PAR_MIN)
    for (int it = 0; it < nb * nch; it++) {
        const int cb = it / nch, k = it % nch;
        blk_grad_sums(B, dy, x, relu_y, (int)((long)k * n / nch), (int)((long)(k + 1) * n / nch), cb, nb, hw,
                      save_mean + (size_t)cb * bs, part + (size_t)it * 2 * bs, part + (size_t)it * 2 * bs + bs);
    }
    /* Per-channel (a, k1, k2, mean) as in the CNHW version, in part once the sums are used. */
    float *coef = (float *)part;
    for (int cb = 0; cb < nb; cb++) {
        double sgs[NN_BLK_MAX], sgxs[NN_BLK_MAX];
        blk_reduce(part, B, cb, nch, sgs, sgxs);
        float *cp = coef + (size_t)cb * 4 * bs;
        for (int l = 0; l < B; l++) {
            const int c = cb * B + l;
            const double invstd = (double)save_invstd[c];
            dgamma[c] += (float)(sgxs[l] * invstd);
            dbeta[c] += (float)sgs[l];
            cp[l] = (float)((double)gamma[c] * invstd);
            cp[B + l] = (float)(sgs[l] / (double)m);
            cp[2 * B + l] = (float)(sgxs[l] * invstd * invstd / (double)m);
            cp[3 * B + l] = save_mean[c];
        }
    }
#pragma omp parallel for schedule(static) if (total >= BN_PAR_MIN)
    for (long r = 0; r < (long)n * nb; r++) {
        const size_t off = (size_t)r * hw * bs;
        blk_apply_grad(B, dx + off, dy + off, x + off, relu_y ? relu_y + off : NULL, coef + (size_t)(r % nb) * 4 * bs,
                       hw);
    }
}
