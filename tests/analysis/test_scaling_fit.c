/* The scaling-law fit PPE(C) = E + a C^-alpha: exact recovery without noise, recovery within
 * the reported uncertainties with noise, calibrated standard errors over many noisy repeats,
 * the fixed-floor variant, the held-out prediction, and argument errors. */
#include <math.h>
#include <stdio.h>

#include "mmcr/analysis.h"
#include "test_util.h"

static const double E0 = 0.13, A0 = 0.35, ALPHA0 = 0.4, CREF = 3000; /* PPE = E0 + A0 (C/CREF)^-ALPHA0 */

static double law(double c) { return E0 + A0 * pow(c / CREF, -ALPHA0); }

int main(void) {
    mmcr_err err;
    enum { N = 11 };
    double c[N], y[N];
    for (int i = 0; i < N; i++) c[i] = 3200.0 * pow(2.0, 0.5 * i); /* 25 ... 800 steps of 64 x 2 */

    /* Noise-free data: the parameters come back to rounding. */
    for (int i = 0; i < N; i++) y[i] = law(c[i]);
    mmcr_scaling_fit f;
    CHECK(mmcr_scaling_fit_power(c, y, N, NAN, &f, &err) == MMCR_OK);
    CHECK_CLOSE(f.e, E0, 1e-8, 0);
    CHECK_CLOSE(f.alpha, ALPHA0, 1e-7, 0);
    CHECK_CLOSE(f.a_raw, A0 * pow(CREF, ALPHA0), 0, 1e-6);
    CHECK_CLOSE(mmcr_scaling_predict(&f, 1e6), law(1e6), 1e-9, 0);
    CHECK(f.n == N && f.dof == N - 3 && !f.fixed_floor && f.rms < 1e-9);

    /* Noisy data (sd 0.002, about the measurement noise of 5 fresh batches): the truth lies
     * within 3 reported standard errors, and the held-out predictions of the two largest C
     * are within 3 %. */
    mmcr_rng r;
    mmcr_rng_seed(&r, 2024, 0, 0, 0);
    for (int i = 0; i < N; i++) y[i] = law(c[i]) + 0.002 * mmcr_rng_normal(&r);
    CHECK(mmcr_scaling_fit_power(c, y, N, NAN, &f, &err) == MMCR_OK);
    printf("noisy fit: E = %.4f +- %.4f, a_raw = %.4g, alpha = %.3f +- %.3f, rms %.4f\n", f.e, f.e_se, f.a_raw, f.alpha,
           f.alpha_se, f.rms);
    CHECK(f.e_se > 0 && f.alpha_se > 0 && f.a_se > 0);
    CHECK_MSG(fabs(f.e - E0) < 3 * f.e_se, "E = %g +- %g vs %g", f.e, f.e_se, E0);
    CHECK_MSG(fabs(f.alpha - ALPHA0) < 3 * f.alpha_se, "alpha = %g +- %g vs %g", f.alpha, f.alpha_se, ALPHA0);
    mmcr_scaling_fit h;
    double hc[2], hp[2], hm[2], he[2];
    CHECK(mmcr_scaling_holdout(c, y, N, 2, NAN, &h, hc, hp, hm, he, &err) == MMCR_OK);
    CHECK(h.n == N - 2 && hc[0] == c[N - 2] && hc[1] == c[N - 1]);
    for (int k = 0; k < 2; k++) {
        printf("held out C = %g: predicted %.4f, measured %.4f (%+.2f %%)\n", hc[k], hp[k], hm[k], 100 * he[k]);
        CHECK(fabs(he[k]) < 0.03);
        CHECK_CLOSE(hm[k], y[N - 2 + k], 0, 0);
    }

    /* Calibration: over 300 noisy data sets, the spread of alpha matches the mean reported
     * standard error within 35 % (the covariance is a linearisation). */
    {
        const int R = 300;
        double s = 0, s2 = 0, se = 0;
        int ok = 0;
        for (int t = 0; t < R; t++) {
            mmcr_rng_seed(&r, 77, (uint64_t)t, 0, 0);
            for (int i = 0; i < N; i++) y[i] = law(c[i]) + 0.002 * mmcr_rng_normal(&r);
            if (mmcr_scaling_fit_power(c, y, N, NAN, &f, &err) != MMCR_OK) continue;
            s += f.alpha, s2 += f.alpha * f.alpha, se += f.alpha_se, ok++;
        }
        const double mean = s / ok, sd = sqrt(s2 / ok - mean * mean), mse = se / ok;
        printf("alpha over %d repeats: mean %.4f, sd %.4f, mean reported se %.4f\n", ok, mean, sd, mse);
        CHECK(ok == R);
        CHECK_CLOSE(mse, sd, 0, 0.35);
        CHECK_CLOSE(mean, ALPHA0, 0.03, 0);
    }

    /* Repeats at the same C (seeds) are fine, and the held-out check pools them. */
    {
        double cc[2 * N], yy[2 * N];
        mmcr_rng_seed(&r, 5, 0, 0, 0);
        for (int i = 0; i < 2 * N; i++) cc[i] = c[i / 2], yy[i] = law(c[i / 2]) + 0.002 * mmcr_rng_normal(&r);
        CHECK(mmcr_scaling_holdout(cc, yy, 2 * N, 2, NAN, &h, hc, hp, hm, he, &err) == MMCR_OK);
        CHECK(h.n == 2 * N - 4);
        CHECK_CLOSE(hm[1], 0.5 * (yy[2 * N - 2] + yy[2 * N - 1]), 1e-15, 0);
    }

    /* A fixed floor: two parameters. */
    for (int i = 0; i < N; i++) y[i] = law(c[i]);
    CHECK(mmcr_scaling_fit_power(c, y, N, E0, &f, &err) == MMCR_OK);
    CHECK(f.fixed_floor && f.dof == N - 2 && f.e == E0 && f.e_se == 0);
    CHECK_CLOSE(f.alpha, ALPHA0, 1e-7, 0);
    /* A wrong floor still fits, worse. */
    mmcr_scaling_fit g;
    CHECK(mmcr_scaling_fit_power(c, y, N, 0.0, &g, &err) == MMCR_OK);
    CHECK(g.rms > 1e-4);

    /* Three points, three parameters: exact, no uncertainty. */
    CHECK(mmcr_scaling_fit_power(c, y, 3, NAN, &f, &err) == MMCR_OK);
    CHECK(f.dof == 0 && isnan(f.alpha_se));

    /* Errors. */
    CHECK(mmcr_scaling_fit_power(c, y, 2, NAN, &f, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_scaling_fit_power(c, y, 1, 0.1, &f, &err) == MMCR_ERR_ARG);
    double bad[3] = {100, -1, 300};
    CHECK(mmcr_scaling_fit_power(bad, y, 3, NAN, &f, &err) == MMCR_ERR_ARG);
    double ynan[3] = {0.2, NAN, 0.1};
    CHECK(mmcr_scaling_fit_power(c, ynan, 3, NAN, &f, &err) == MMCR_ERR_ARG);
    double same[4] = {5, 5, 6, 6};
    CHECK(mmcr_scaling_holdout(same, y, 4, 2, NAN, &h, NULL, NULL, NULL, NULL, &err) == MMCR_ERR_ARG);
    return test_finish("analysis_scaling_fit");
}
