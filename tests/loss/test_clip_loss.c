/* CLIP symmetric InfoNCE: loss against an independent double reference (explicit softmax
 * probabilities), closed forms, gradients (embeddings and log scale) against central
 * differences of the reference, symmetry, collapsed and zero rows, non-finite input, clamp. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/multimodal.h"
#include "test_util.h"

/* Reference: loss for float inputs promoted to double. */
static double ref_loss(const double *a, const double *b, int n, int d, double t) {
    double *za = malloc(sizeof(double) * n * d), *zb = malloc(sizeof(double) * n * d);
    for (int i = 0; i < n; i++) {
        double na = 0, nb = 0;
        for (int k = 0; k < d; k++) {
            na += a[i * d + k] * a[i * d + k];
            nb += b[i * d + k] * b[i * d + k];
        }
        na = fmax(sqrt(na), 1e-12);
        nb = fmax(sqrt(nb), 1e-12);
        for (int k = 0; k < d; k++) {
            za[i * d + k] = a[i * d + k] / na;
            zb[i * d + k] = b[i * d + k] / nb;
        }
    }
    double s = exp(t), li = 0, lt = 0;
    for (int i = 0; i < n; i++) {
        /* row i: image i against all texts; column i: text i against all images */
        double den_r = 0, den_c = 0, pos = 0;
        for (int j = 0; j < n; j++) {
            double sr = 0, sc = 0;
            for (int k = 0; k < d; k++) {
                sr += za[i * d + k] * zb[j * d + k];
                sc += za[j * d + k] * zb[i * d + k];
            }
            den_r += exp(s * sr);
            den_c += exp(s * sc);
            if (j == i) pos = sr;
        }
        li += -log(exp(s * pos) / den_r);
        lt += -log(exp(s * pos) / den_c);
    }
    free(za);
    free(zb);
    return 0.5 * (li + lt) / n;
}

static void random_fill(double *x, float *xf, int m, mmcr_rng *r) {
    for (int i = 0; i < m; i++) {
        xf[i] = (float)mmcr_rng_normal(r);
        x[i] = xf[i];
    }
}

static void test_against_reference(int n, int d, double t) {
    mmcr_rng r;
    mmcr_rng_seed(&r, 11, (uint64_t)n, (uint64_t)d, 0);
    double *a = malloc(sizeof(double) * n * d), *b = malloc(sizeof(double) * n * d);
    float *af = malloc(sizeof(float) * n * d), *bf = malloc(sizeof(float) * n * d);
    float *ga = malloc(sizeof(float) * n * d), *gb = malloc(sizeof(float) * n * d);
    random_fill(a, af, n * d, &r);
    random_fill(b, bf, n * d, &r);
    /* Make the pairs related so the loss is not near log n. */
    for (int i = 0; i < n * d; i++) {
        bf[i] = (float)(0.7 * af[i] + 0.5 * bf[i]);
        b[i] = bf[i];
    }
    mmcr_clip_loss *l = NULL;
    mmcr_err err = {{0}};
    CHECK(mmcr_clip_loss_create(&l, n + 3, d, &err) == MMCR_OK);
    mmcr_clip_result res;
    CHECK(mmcr_clip_loss_forward_f32(l, af, bf, n, t, &res, &err) == MMCR_OK);
    double want = ref_loss(a, b, n, d, t);
    CHECK_CLOSE(res.loss, want, 1e-12, 1e-10);
    CHECK_CLOSE(res.scale, exp(t), 0, 1e-15);
    double dt;
    mmcr_clip_loss_backward_f32(l, ga, gb, &dt);
    /* Central differences of the double reference. */
    double maxerr = 0, maxg = 0;
    const double h = 1e-6;
    for (int which = 0; which < 2; which++) {
        double *x = which ? b : a;
        const float *g = which ? gb : ga;
        for (int q = 0; q < n * d; q++) {
            double save = x[q];
            x[q] = save + h;
            double lp = ref_loss(a, b, n, d, t);
            x[q] = save - h;
            double lm = ref_loss(a, b, n, d, t);
            x[q] = save;
            double fd = (lp - lm) / (2 * h);
            maxerr = fmax(maxerr, fabs(fd - g[q]));
            maxg = fmax(maxg, fabs(fd));
        }
    }
    CHECK_MSG(maxerr < 1e-5 * fmax(1.0, maxg) + 1e-6, "n %d d %d: embedding gradient error %g (max |g| %g)", n, d,
              maxerr, maxg);
    double fdt = (ref_loss(a, b, n, d, t + h) - ref_loss(a, b, n, d, t - h)) / (2 * h);
    CHECK_CLOSE(dt, fdt, 1e-7, 1e-5);
    /* Swapping the modalities swaps the directions: same loss, gradients exchanged. */
    mmcr_clip_result rs;
    float *ga2 = malloc(sizeof(float) * n * d), *gb2 = malloc(sizeof(float) * n * d);
    CHECK(mmcr_clip_loss_forward_f32(l, bf, af, n, t, &rs, &err) == MMCR_OK);
    mmcr_clip_loss_backward_f32(l, ga2, gb2, NULL);
    CHECK_CLOSE(rs.loss, res.loss, 1e-12, 1e-12);
    CHECK_CLOSE(rs.loss_i2t, res.loss_t2i, 1e-12, 1e-12);
    double sw = 0;
    for (int q = 0; q < n * d; q++) sw = fmax(sw, fabs(ga2[q] - gb[q]) + fabs(gb2[q] - ga[q]));
    CHECK(sw < 1e-6);
    free(ga2);
    free(gb2);
    mmcr_clip_loss_destroy(&l);
    CHECK(l == NULL);
    free(a);
    free(b);
    free(af);
    free(bf);
    free(ga);
    free(gb);
}

static void test_closed_forms(void) {
    mmcr_clip_loss *l = NULL;
    mmcr_err err = {{0}};
    CHECK(mmcr_clip_loss_create(&l, 4, 3, &err) == MMCR_OK);
    /* Two orthogonal perfectly aligned pairs, scaled rows: S = I, CE = log(1 + e^-s). */
    float a[6] = {2, 0, 0, 0, 5, 0}, b[6] = {7, 0, 0, 0, 0.5f, 0};
    mmcr_clip_result res;
    double t = 1.5, s = exp(1.5);
    CHECK(mmcr_clip_loss_forward_f32(l, a, b, 2, t, &res, &err) == MMCR_OK);
    CHECK_CLOSE(res.loss, log1p(exp(-s)), 1e-14, 1e-12);
    CHECK(res.acc_i2t == 1.0 && res.acc_t2i == 1.0);
    CHECK_CLOSE(res.mean_pos_sim, 1.0, 1e-12, 0);
    /* Collapsed: every row the same -> loss log n, in-batch accuracy 0 (ties are misses). */
    float c[12] = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3};
    CHECK(mmcr_clip_loss_forward_f32(l, c, c, 4, MMCR_CLIP_LOG_SCALE_INIT, &res, &err) == MMCR_OK);
    CHECK_CLOSE(res.loss, log(4.0), 1e-12, 1e-12);
    CHECK(res.acc_i2t == 0.0 && res.acc_t2i == 0.0);
    float ga[12], gb[12];
    double dt;
    mmcr_clip_loss_backward_f32(l, ga, gb, &dt);
    double gs = 0;
    for (int i = 0; i < 12; i++) gs += fabs(ga[i]) + fabs(gb[i]);
    CHECK(gs < 1e-9 && fabs(dt) < 1e-12);
    /* A zero row stays finite. */
    float z[6] = {0, 0, 0, 1, 1, 0};
    CHECK(mmcr_clip_loss_forward_f32(l, z, a, 2, 1.0, &res, &err) == MMCR_OK);
    mmcr_clip_loss_backward_f32(l, ga, gb, &dt);
    int fin = isfinite(res.loss) && isfinite(dt);
    for (int i = 0; i < 6; i++) fin &= isfinite(ga[i]) && isfinite(gb[i]);
    CHECK(fin);
    /* Non-finite input names the row and the side. */
    float nf[6] = {1, 0, 0, 0, NAN, 0};
    CHECK(mmcr_clip_loss_forward_f32(l, a, nf, 2, 1.0, &res, &err) == MMCR_ERR_NONFINITE);
    CHECK(res.first_bad_row == 3);
    CHECK_MSG(strstr(err.msg, "row 1") && strstr(err.msg, "text"), "%s", err.msg);
    CHECK(mmcr_clip_loss_forward_f32(l, a, b, 2, INFINITY, &res, &err) == MMCR_ERR_NONFINITE);
    CHECK(mmcr_clip_loss_forward_f32(l, a, b, 5, 1.0, &res, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_clip_loss_forward_f32(l, a, b, 0, 1.0, &res, &err) == MMCR_ERR_ARG);
    mmcr_clip_loss_destroy(&l);
    CHECK(mmcr_clip_loss_create(&l, 0, 3, &err) == MMCR_ERR_ARG);

    CHECK(mmcr_clip_clamp_log_scale(5.0) == MMCR_CLIP_LOG_SCALE_MAX);
    CHECK(mmcr_clip_clamp_log_scale(-0.5) == 0.0);
    CHECK(mmcr_clip_clamp_log_scale(2.0) == 2.0);
    CHECK_CLOSE(exp(MMCR_CLIP_LOG_SCALE_INIT), 1 / 0.07, 0, 1e-14);
    CHECK_CLOSE(exp(MMCR_CLIP_LOG_SCALE_MAX), 100.0, 0, 1e-14);
}

int main(void) {
    mmcr_set_threads(1);
    test_against_reference(5, 4, MMCR_CLIP_LOG_SCALE_INIT);
    test_against_reference(7, 3, 0.3);
    test_against_reference(1, 6, 2.0);
    test_closed_forms();
    return test_finish("test_clip_loss");
}
