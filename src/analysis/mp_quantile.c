/* Distribution function and quantiles of the unit-mean Marchenko-Pastur law (ratio gamma in
 * (0, 1]), for the predicted singular-value spectrum of a centroid matrix (docs/analyses.md).
 *
 * With x(t) = a + (b - a) sin^2(t/2), t in [0, pi], the mass below x(t) is
 *   F(t) = (2/pi) int_0^t sin^2(u) / x(u) du
 * (the substitution of mmcr_mp_moment). The integrand is smooth but, for gamma just below 1,
 * changes on the scale sqrt(a) near u = 0; dyadic sub-intervals towards 0 with a 20-point
 * Gauss-Legendre rule on each resolve it for every gamma. Quantiles: safeguarded Newton in t. */
#include <math.h>

#include <gsl/gsl_integration.h>

#include "mmcr/analysis.h"

#define PI 3.14159265358979323846
#define LEVELS 48

typedef struct mp_ctx {
    double a, bma; /* a and b - a */
} mp_ctx;

static double integrand(double u, void *p) {
    const mp_ctx *c = p;
    const double s = sin(0.5 * u), su = sin(u);
    const double x = c->a + c->bma * s * s;
    return x > 0 ? su * su / x : 4.0 * cos(0.5 * u) * cos(0.5 * u) / c->bma; /* the u -> 0 limit at a = 0 */
}

static double mass_below_t(const mp_ctx *c, double t, const gsl_integration_glfixed_table *tab) {
    if (t <= 0) return 0.0;
    gsl_function f = {integrand, (void *)c};
    /* Dyadic intervals down to well below the scale 2 sqrt(a / (b - a)) of the edge feature;
     * at a = 0 (gamma = 1) the integrand is cos^2(u/2) and one interval is exact. */
    const double floor_t = c->a > 0 ? 0.01 * 2.0 * sqrt(c->a / c->bma) : t;
    double sum = 0, hi = t;
    for (int l = 0; l < LEVELS && hi > floor_t; l++) {
        sum += gsl_integration_glfixed(&f, 0.5 * hi, hi, tab);
        hi *= 0.5;
    }
    sum += gsl_integration_glfixed(&f, 0.0, hi, tab);
    return sum * 2.0 / PI;
}

static int setup(double gamma, mp_ctx *c) {
    if (!(gamma > 0) || !(gamma <= 1)) return 0;
    double a, b;
    mmcr_mp_support(gamma, &a, &b);
    c->a = a;
    c->bma = b - a;
    return 1;
}

double mmcr_mp_cdf(double gamma, double x) {
    mp_ctx c;
    if (!setup(gamma, &c) || isnan(x)) return NAN;
    if (x <= c.a) return 0.0;
    if (x >= c.a + c.bma) return 1.0;
    gsl_integration_glfixed_table *tab = gsl_integration_glfixed_table_alloc(20);
    if (!tab) return NAN;
    const double t = 2.0 * asin(sqrt((x - c.a) / c.bma));
    double v = mass_below_t(&c, t, tab);
    gsl_integration_glfixed_table_free(tab);
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

double mmcr_mp_quantile(double gamma, double q) {
    mp_ctx c;
    if (!setup(gamma, &c) || !(q >= 0) || !(q <= 1)) return NAN;
    if (q == 0) return c.a;
    if (q == 1) return c.a + c.bma;
    gsl_integration_glfixed_table *tab = gsl_integration_glfixed_table_alloc(20);
    if (!tab) return NAN;
    /* F is increasing in t, with F'(t) = (2/pi) sin^2(t) / x(t): Newton steps in t, kept inside
     * a shrinking bracket (bisection when a step leaves it). */
    double lo = 0, hi = PI, t = PI * q;
    for (int it = 0; it < 200; it++) {
        const double f = mass_below_t(&c, t, tab) - q;
        if (f < 0)
            lo = t;
        else
            hi = t;
        const double st = sin(t), sh = sin(0.5 * t);
        const double deriv = 2.0 / PI * st * st / (c.a + c.bma * sh * sh);
        double next = deriv > 0 ? t - f / deriv : -1.0;
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        const double step = fabs(next - t);
        t = next;
        if (step < 1e-15 || hi - lo < 1e-15) break;
    }
    gsl_integration_glfixed_table_free(tab);
    const double s = sin(0.5 * t);
    return c.a + c.bma * s * s;
}
