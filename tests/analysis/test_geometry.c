/* The geometry analyses: log Bessel I against closed forms and GSL, the vMF normaliser and its
 * maximum-likelihood kappa, cap areas, the kNN entropy estimate on laws of known entropy (uniform
 * on S^{D-1}, vMF on S^2), the uniformity of the uniform law, Marchenko-Pastur quantiles, and the
 * geometry accumulator on synthetic embeddings with known PPE, centroid norms and spectrum. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_sf_bessel.h>
#include <gsl/gsl_sf_gamma.h>

#include "mmcr/analysis.h"
#include "test_util.h"

#define PI 3.14159265358979323846

static void unit_gauss(mmcr_rng *r, double *z, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) z[j] = mmcr_rng_normal(r), s += z[j] * z[j];
    s = 1.0 / sqrt(s);
    for (int j = 0; j < d; j++) z[j] *= s;
}

/* vMF on S^2 around e3 (exact inversion of the cosine's law), rotated by nothing. */
static void vmf3(mmcr_rng *r, double kappa, double *z) {
    const double u = mmcr_rng_uniform(r);
    const double w = 1.0 + log(u + (1.0 - u) * exp(-2.0 * kappa)) / kappa;
    const double phi = 2 * PI * mmcr_rng_uniform(r), s = sqrt(fmax(0.0, 1 - w * w));
    z[0] = s * cos(phi), z[1] = s * sin(phi), z[2] = w;
}

static void test_bessel(void) {
    /* I_{1/2}(x) = sqrt(2 / (pi x)) sinh(x). */
    const double xs[] = {1e-4, 0.5, 3.0, 50.0, 700.0};
    for (int i = 0; i < 5; i++) {
        const double x = xs[i];
        const double want = 0.5 * log(2.0 / (PI * x)) + x + log1p(-exp(-2 * x)) - log(2.0);
        CHECK_CLOSE(mmcr_log_bessel_i(0.5, x), want, 1e-12, 1e-12);
    }
    /* The asymptotic branch (nu >= 20) against GSL where GSL's value is representable. */
    const double nus[] = {20, 25, 31.5, 40, 63};
    const double x2[] = {0.5, 5, 30, 100, 1000};
    double worst = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            gsl_sf_result r;
            if (gsl_sf_bessel_Inu_scaled_e(nus[i], x2[j], &r) != 0 || !(r.val > 1e-280)) continue;
            worst = fmax(worst, fabs(mmcr_log_bessel_i(nus[i], x2[j]) - (log(r.val) + x2[j])));
        }
    CHECK_MSG(worst < 1e-9, "Debye expansion vs GSL: worst |log difference| %g", worst);
    /* Far out of double range: the small-x series. */
    const double nu = 255, x = 1e-3;
    const double series = nu * log(x / 2) - lgamma(nu + 1) + log1p(x * x / (4 * (nu + 1)));
    CHECK_CLOSE(mmcr_log_bessel_i(nu, x), series, 1e-9, 1e-12);
    /* Below the switch, GSL (or the series) against the Debye form at nu = 19.5, where its
     * truncation error is still below 1e-8. */
    CHECK_CLOSE(mmcr_log_bessel_i(19.5, 7.0), log(gsl_sf_bessel_Inu_scaled(19.5, 7.0)) + 7.0, 1e-12, 0);
    CHECK_CLOSE(mmcr_log_bessel_i(10, 1e-300), 10 * log(0.5e-300) - lgamma(11.0), 1e-9, 1e-12);
    CHECK(mmcr_log_bessel_i(0, 0) == 0);
    CHECK(isinf(mmcr_log_bessel_i(2, 0)) && mmcr_log_bessel_i(2, 0) < 0);
    CHECK(isnan(mmcr_log_bessel_i(-1, 1)) && isnan(mmcr_log_bessel_i(1, -1)));
}

static void test_vmf(void) {
    CHECK_CLOSE(mmcr_sphere_log_area(2), log(2 * PI), 1e-13, 0);
    CHECK_CLOSE(mmcr_sphere_log_area(3), log(4 * PI), 1e-13, 0);
    CHECK_CLOSE(mmcr_sphere_log_area(4), log(2 * PI * PI), 1e-13, 0);
    /* D = 3: C = kappa / (4 pi sinh kappa), A = coth kappa - 1/kappa. */
    const double ks[] = {1e-3, 0.5, 2.0, 10.0, 300.0};
    for (int i = 0; i < 5; i++) {
        const double k = ks[i];
        const double lsinh = k + log1p(-exp(-2 * k)) - log(2.0);
        CHECK_CLOSE(mmcr_vmf_log_norm(3, k), log(k) - log(4 * PI) - lsinh, 1e-9, 1e-12);
        CHECK_CLOSE(mmcr_vmf_mean_cos(3, k), 1.0 / tanh(k) - 1.0 / k, 1e-9, 1e-9);
    }
    CHECK_CLOSE(mmcr_vmf_log_norm(128, 0.0), -mmcr_sphere_log_area(128), 1e-12, 0);
    /* kappa -> 0 is continuous with the uniform law. */
    CHECK_CLOSE(mmcr_vmf_log_norm(128, 1e-6), -mmcr_sphere_log_area(128), 1e-6, 0);
    /* ML kappa inverts A_D for small and large D. */
    const int ds[] = {2, 3, 10, 128, 512};
    const double kk[] = {0.01, 1.0, 30.0, 1000.0, 1e5};
    double worst = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            const double a = mmcr_vmf_mean_cos(ds[i], kk[j]);
            if (!(a > 0 && a < 1)) continue;
            worst = fmax(worst, fabs(mmcr_vmf_kappa_ml(ds[i], a) - kk[j]) / kk[j]);
        }
    /* At kappa = 1e5, 1 - A ~ 1e-5 comes from a difference of logs of size 1e5: ~1e-6 relative. */
    CHECK_MSG(worst < 1e-5, "ML kappa round trip: worst relative error %g", worst);
    CHECK(mmcr_vmf_kappa_ml(16, -0.1) == 0 && isinf(mmcr_vmf_kappa_ml(16, 1.0)));
    /* Increasing in kappa, A < 1, and the large-kappa asymptote 1 - (D-1)/(2 kappa). */
    CHECK(mmcr_vmf_mean_cos(64, 10) < mmcr_vmf_mean_cos(64, 20));
    CHECK_CLOSE(1 - mmcr_vmf_mean_cos(64, 1e6), 63.0 / 2e6, 0, 1e-3);
}

static void test_caps(void) {
    const double as[] = {0.5, 1.5, 10, 63.5};
    const double xs[] = {0.01, 0.3, 0.7, 0.99};
    double worst = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            worst = fmax(worst, fabs(mmcr_log_beta_inc(as[i], 0.5, xs[j]) - log(gsl_sf_beta_inc(as[i], 0.5, xs[j]))));
    CHECK_MSG(worst < 1e-11, "log incomplete beta vs GSL: %g", worst);
    const double th[] = {1e-5, 1e-3, 0.3, 1.2, PI / 2, 2.0, 3.0};
    for (int i = 0; i < 7; i++) {
        const double t = th[i];
        /* Closed forms, written without cancellation: 1 - cos t = 2 sin^2(t/2), and
         * t - sin t cos t = t - sin(2t)/2 by its series for small t. */
        const double d4 = t < 1e-2 ? (2.0 / 3.0) * t * t * t * (1 - t * t / 5.0) : t - sin(t) * cos(t);
        CHECK_CLOSE(mmcr_sphere_log_cap(2, t), log(t / PI), 1e-12, 0);
        CHECK_CLOSE(mmcr_sphere_log_cap(3, t), log(sin(0.5 * t) * sin(0.5 * t)), 1e-9, 1e-9);
        CHECK_CLOSE(mmcr_sphere_log_cap(4, t), log(d4 / PI), 1e-9, 1e-9);
    }
    /* Hemisphere = 1/2 in every dimension; tiny caps in D = 512 stay finite. */
    CHECK_CLOSE(mmcr_sphere_log_cap(512, PI / 2), log(0.5), 1e-12, 0);
    CHECK(isfinite(mmcr_sphere_log_cap(512, 1e-3)) && mmcr_sphere_log_cap(512, 1e-3) < -3000);
}

static void test_entropy(void) {
    mmcr_rng r;
    mmcr_err err;
    const int n = 2000;
    double *z = malloc(sizeof(double) * (size_t)n * 64);
    /* Uniform on S^{D-1}: the estimate is unbiased; its sd is about sqrt(psi'(1) / n) = 0.03. */
    const int ds[] = {3, 8, 32};
    for (int t = 0; t < 3; t++) {
        const int d = ds[t];
        mmcr_rng_seed(&r, 11, (uint64_t)d, 0, 0);
        for (int i = 0; i < n; i++) unit_gauss(&r, z + (size_t)i * d, d);
        double h, u;
        long dup;
        CHECK(mmcr_sphere_knn_entropy(z, n, d, 1, &h, &u, &dup, &err) == MMCR_OK);
        printf("uniform D=%d: entropy %.4f (log area %.4f), uniformity %.4f (exact %.4f)\n", d, h,
               mmcr_sphere_log_area(d), u, mmcr_uniformity_uniform(d));
        CHECK_CLOSE(h, mmcr_sphere_log_area(d), 0.12, 0);
        CHECK_CLOSE(u, mmcr_uniformity_uniform(d), 0.03, 0);
        CHECK(dup == 0);
        double h3;
        CHECK(mmcr_sphere_knn_entropy(z, n, d, 3, &h3, NULL, NULL, &err) == MMCR_OK);
        CHECK_CLOSE(h3, mmcr_sphere_log_area(d), 0.12, 0);
    }
    /* D = 3 uniformity in closed form: E exp(4u), u ~ U[-1, 1]. */
    CHECK_CLOSE(mmcr_uniformity_uniform(3), -4 + log(sinh(4.0) / 4.0), 1e-12, 0);
    /* vMF on S^2 with kappa = 10: H = -log C_3(kappa) - kappa A_3(kappa). */
    mmcr_rng_seed(&r, 12, 0, 0, 0);
    for (int i = 0; i < n; i++) vmf3(&r, 10.0, z + (size_t)i * 3);
    double h;
    CHECK(mmcr_sphere_knn_entropy(z, n, 3, 1, &h, NULL, NULL, &err) == MMCR_OK);
    const double hv = -mmcr_vmf_log_norm(3, 10.0) - 10.0 * mmcr_vmf_mean_cos(3, 10.0);
    printf("vMF kappa=10 on S^2: entropy %.4f (exact %.4f)\n", h, hv);
    CHECK_CLOSE(h, hv, 0.12, 0);
    /* Duplicated points: -inf, counted. */
    memcpy(z + 3, z, sizeof(double) * 3);
    long dup = 0;
    CHECK(mmcr_sphere_knn_entropy(z, 50, 3, 1, &h, NULL, &dup, &err) == MMCR_OK);
    CHECK(isinf(h) && h < 0 && dup == 2);
    CHECK(mmcr_sphere_knn_entropy(z, 3, 3, 3, &h, NULL, NULL, &err) == MMCR_ERR_ARG);
    free(z);
}

static void test_mp_quantiles(void) {
    const double gs[] = {0.01, 0.25, 0.5, 0.9, 0.99, 0.9999, 1.0};
    for (int i = 0; i < 7; i++) {
        const double g = gs[i];
        double a, b, m;
        mmcr_mp_support(g, &a, &b);
        CHECK_CLOSE(mmcr_mp_cdf(g, b), 1.0, 0, 0);
        CHECK_CLOSE(mmcr_mp_cdf(g, b * (1 - 1e-12)), 1.0, 1e-10, 0);
        CHECK(mmcr_mp_cdf(g, a) == 0);
        double prev = 0;
        int mono = 1;
        for (int k = 1; k < 100; k++) {
            const double x = a + (b - a) * k / 100.0, f = mmcr_mp_cdf(g, x);
            mono &= f >= prev;
            prev = f;
        }
        CHECK(mono);
        /* Quantiles invert the cdf, and E sqrt(lambda) = int_0^1 sqrt(Q(q)) dq = m(gamma). */
        const double qs[] = {0.001, 0.1, 0.5, 0.9, 0.999};
        for (int k = 0; k < 5; k++) CHECK_CLOSE(mmcr_mp_cdf(g, mmcr_mp_quantile(g, qs[k])), qs[k], 1e-10, 0);
        const int nq = 2000;
        double s = 0;
        for (int k = 0; k < nq; k++) s += sqrt(mmcr_mp_quantile(g, (k + 0.5) / nq));
        CHECK(mmcr_mp_m(g, &m, NULL) == MMCR_OK);
        CHECK_CLOSE(s / nq, m, 5e-5, 0);
    }
    /* gamma = 1: F(1) = 1/3 + sqrt(3) / (2 pi). */
    CHECK_CLOSE(mmcr_mp_cdf(1.0, 1.0), 1.0 / 3.0 + sqrt(3.0) / (2 * PI), 1e-12, 0);
    CHECK(isnan(mmcr_mp_cdf(0, 1)) && isnan(mmcr_mp_quantile(1.5, 0.5)) && isnan(mmcr_mp_quantile(0.5, 2)));
}

/* Views of P data: view k = normalise(x_n + noise * e_nk), x_n uniform directions. */
static void make_batch(mmcr_rng *r, int p, int k, int d, double noise, float *y, double *scratch) {
    for (int n = 0; n < p; n++) {
        unit_gauss(r, scratch, d);
        for (int v = 0; v < k; v++)
            for (int j = 0; j < d; j++)
                y[((size_t)n * k + v) * d + j] = (float)(scratch[j] + noise * mmcr_rng_normal(r) / sqrt((double)d));
    }
}

static void test_accumulator(void) {
    mmcr_err err;
    mmcr_rng r;
    double scratch[512];
    /* Aligned, uniform rows (noise 0): norms 1, align 0, PPE = the Monte Carlo value, spectrum
     * on the MP quantiles. */
    {
        const int P = 64, K = 2, D = 256, B = 8;
        mmcr_geometry *g = NULL;
        CHECK(mmcr_geometry_create(&g, P, K, D, B, &err) == MMCR_OK);
        float *y = malloc(sizeof(float) * (size_t)P * K * D);
        mmcr_rng_seed(&r, 5, 0, 0, 0);
        for (int b = 0; b < B; b++) {
            make_batch(&r, P, K, D, 0.0, y, scratch);
            CHECK(mmcr_geometry_add_batch(g, y, &err) == MMCR_OK);
        }
        mmcr_geometry_result res;
        CHECK(mmcr_geometry_finish(g, 1, &res, &err) == MMCR_OK);
        printf("aligned P=%d D=%d: ppe %.4f +- %.4f (paper-notes MC 0.0319), predicted %.4f, c %.6f, align %.2g\n", P, D,
               res.ppe_mean, res.ppe_se, res.ppe_predicted, res.centroid_norm2_mean, res.align);
        CHECK_CLOSE(res.ppe_mean, 0.0319, 0.002, 0);
        CHECK_CLOSE(res.centroid_norm2_mean, 1.0, 1e-6, 0);
        CHECK_CLOSE(res.align, 0.0, 1e-6, 0);
        CHECK_CLOSE(res.bound, 64.0, 0, 0);
        CHECK_CLOSE(res.ppe_predicted, 1 - res.m_gamma, 1e-6, 0);
        CHECK_CLOSE(res.unif_views, mmcr_uniformity_uniform(D), 0.02, 0);
        CHECK_CLOSE(res.sv_scale, 1.0, 1e-6, 0);
        /* Middle of the spectrum within 3 % of the MP quantiles (the edges fluctuate more). */
        double worst = 0;
        for (int i = res.rank / 8; i < res.rank * 7 / 8; i++)
            worst = fmax(worst, fabs(res.sv_mean[i] - res.sv_mp[i]) / res.sv_mp[i]);
        CHECK_MSG(worst < 0.03, "spectrum vs MP quantiles: worst relative gap %g", worst);
        CHECK_CLOSE(res.cond_mean, res.cond_mp, 0, 0.15);
        CHECK(res.n_data == P * B && res.rank == P);
        free(y);
        mmcr_geometry_destroy(&g);
        CHECK(g == NULL);
    }
    /* Independent uniform views (K = 4, P > D): E||mu||^2 = 1/K, PPE = 1 - m/sqrt(K), kappa = 0,
     * reconstruction = -log area, so the MI bound is about 0. */
    {
        const int P = 128, K = 4, D = 32, B = 4;
        mmcr_geometry *g = NULL;
        CHECK(mmcr_geometry_create(&g, P, K, D, B, &err) == MMCR_OK);
        float *y = malloc(sizeof(float) * (size_t)P * K * D);
        mmcr_rng_seed(&r, 6, 0, 0, 0);
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < P * K; i++) {
                unit_gauss(&r, scratch, D);
                for (int j = 0; j < D; j++) y[(size_t)i * D + j] = (float)scratch[j];
            }
            CHECK(mmcr_geometry_add_batch(g, y, &err) == MMCR_OK);
        }
        mmcr_geometry_result res;
        CHECK(mmcr_geometry_finish(g, 1, &res, &err) == MMCR_OK);
        printf("independent K=4: ppe %.4f (init model %.4f), c %.4f, mean cos %.4f, kappa %.3g, MI bound %.3f\n",
               res.ppe_mean, 1 - res.m_gamma / 2, res.centroid_norm2_mean, res.mean_cos, res.vmf_kappa,
               res.mi_lower_bound);
        CHECK_CLOSE(res.centroid_norm2_mean, 0.25, 0.01, 0);
        CHECK_CLOSE(res.ppe_mean, 1 - res.m_gamma / 2, 0.01, 0);
        CHECK_CLOSE(res.mean_cos, 0.0, 0.01, 0);
        CHECK(res.vmf_kappa < 1.0);
        CHECK_CLOSE(res.mi_lower_bound, 0.0, 0.25, 0);
        CHECK_CLOSE(res.align, 2.0, 0.02, 0);
        /* The spectrum scale for P > D: sqrt(c P / D). */
        CHECK_CLOSE(res.sv_scale, sqrt(res.centroid_norm2_mean * P / D), 1e-12, 0);
        free(y);
        mmcr_geometry_destroy(&g);
    }
    /* Claim 8: as the views get more aligned, the MI lower bound grows and the PPE falls. */
    {
        const int P = 64, K = 2, D = 16, B = 4;
        const double noises[] = {2.0, 1.0, 0.5, 0.25};
        double prev_mi = -INFINITY, prev_ppe = INFINITY;
        int mono = 1;
        float *y = malloc(sizeof(float) * (size_t)P * K * D);
        for (int t = 0; t < 4; t++) {
            mmcr_geometry *g = NULL;
            CHECK(mmcr_geometry_create(&g, P, K, D, B, &err) == MMCR_OK);
            mmcr_rng_seed(&r, 7, (uint64_t)t, 0, 0);
            for (int b = 0; b < B; b++) {
                make_batch(&r, P, K, D, noises[t], y, scratch);
                CHECK(mmcr_geometry_add_batch(g, y, &err) == MMCR_OK);
            }
            mmcr_geometry_result res;
            CHECK(mmcr_geometry_finish(g, 2, &res, &err) == MMCR_OK);
            printf("noise %.2f: ppe %.4f, c %.3f, kappa %.2f, recon %.2f, entropy %.2f, MI bound %.2f\n", noises[t],
                   res.ppe_mean, res.centroid_norm2_mean, res.vmf_kappa, res.reconstruction, res.entropy,
                   res.mi_lower_bound);
            mono &= res.mi_lower_bound > prev_mi && res.ppe_mean < prev_ppe;
            prev_mi = res.mi_lower_bound, prev_ppe = res.ppe_mean;
            mmcr_geometry_destroy(&g);
        }
        CHECK_MSG(mono, "MI bound not increasing / PPE not decreasing with alignment");
        free(y);
    }
    /* Errors. */
    {
        mmcr_geometry *g = NULL;
        CHECK(mmcr_geometry_create(&g, 1, 2, 8, 1, &err) == MMCR_ERR_ARG && g == NULL);
        CHECK(mmcr_geometry_create(&g, 4, 2, 8, 1, &err) == MMCR_OK);
        float y[4 * 2 * 8];
        for (int i = 0; i < 64; i++) y[i] = (float)(i % 5) - 2.0f;
        mmcr_geometry_result res;
        CHECK(mmcr_geometry_finish(g, 1, &res, &err) == MMCR_ERR_ARG); /* no batch yet */
        y[17] = NAN;
        CHECK(mmcr_geometry_add_batch(g, y, &err) == MMCR_ERR_NONFINITE && strstr(err.msg, "row 2") != NULL);
        y[17] = 0;
        for (int j = 0; j < 8; j++) y[3 * 8 + j] = 0;
        CHECK(mmcr_geometry_add_batch(g, y, &err) == MMCR_ERR_ARG && strstr(err.msg, "zero") != NULL);
        y[3 * 8] = 1;
        CHECK(mmcr_geometry_add_batch(g, y, &err) == MMCR_OK);
        CHECK(mmcr_geometry_add_batch(g, y, &err) == MMCR_ERR_ARG); /* past max_batches */
        CHECK(mmcr_geometry_finish(g, 4, &res, &err) == MMCR_ERR_ARG); /* k >= n */
        CHECK(mmcr_geometry_finish(g, 1, &res, &err) == MMCR_OK);
        mmcr_geometry_destroy(&g);
    }
}

int main(void) {
    test_bessel();
    test_vmf();
    test_caps();
    test_entropy();
    test_mp_quantiles();
    test_accumulator();
    return test_finish("analysis_geometry");
}
