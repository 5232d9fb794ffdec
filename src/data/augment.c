/* Per-view augmentations with torchvision semantics, computed in float [0, 1].
 *
 * Sampling (mmcr_aug_sample) is separate from applying (mmcr_aug_apply): every random number
 * is drawn up front from the view's own stream, in a fixed order, so a view depends only on
 * (config, stream, image). Stage order: random resized crop (or full-image resize) -> flip ->
 * colour jitter -> grayscale -> blur -> solarise -> normalise -> random erasing. */
#include "mmcr/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- configuration ---- */

static void aug_defaults(mmcr_aug_config *a, int out_size) {
    memset(a, 0, sizeof *a);
    a->out_size = out_size;
    a->crop_scale[0] = 0.08f;
    a->crop_scale[1] = 1.0f;
    a->crop_ratio[0] = 3.0f / 4.0f;
    a->crop_ratio[1] = 4.0f / 3.0f;
    a->blur_sigma[0] = 0.1f;
    a->blur_sigma[1] = 2.0f;
    a->erase_scale[0] = 0.02f;
    a->erase_scale[1] = 0.33f;
    a->erase_ratio[0] = 0.3f;
    a->erase_ratio[1] = 3.3f;
    for (int ch = 0; ch < 3; ch++) {
        a->mean[ch] = 0.0f;
        a->std[ch] = 1.0f;
    }
    a->interp = MMCR_INTERP_BILINEAR;
}

void mmcr_aug_config_none(mmcr_aug_config *a, int out_size) { aug_defaults(a, out_size); }

void mmcr_aug_config_cifar(mmcr_aug_config *a, int out_size) {
    aug_defaults(a, out_size);
    a->crop_p = 1.0f;
    a->flip_p = 0.5f;
    a->jitter_p = 0.8f;
    a->brightness = a->contrast = a->saturation = 0.4f;
    a->hue = 0.1f;
    a->gray_p = 0.2f;
    const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2023f, 0.1994f, 0.2010f};
    memcpy(a->mean, mean, sizeof mean);
    memcpy(a->std, std, sizeof std);
}

void mmcr_aug_config_byol(mmcr_aug_config *a, int out_size, int prime) {
    aug_defaults(a, out_size);
    a->crop_p = 1.0f;
    a->flip_p = 0.5f;
    a->jitter_p = 0.8f;
    a->brightness = a->contrast = 0.4f;
    a->saturation = 0.2f;
    a->hue = 0.1f;
    a->gray_p = 0.2f;
    a->blur_p = prime ? 0.1f : 1.0f;
    a->solarize_p = prime ? 0.2f : 0.0f;
    a->interp = MMCR_INTERP_BICUBIC;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(a->mean, mean, sizeof mean);
    memcpy(a->std, std, sizeof std);
}

static int prob_ok(float p) { return p >= 0.0f && p <= 1.0f; }
static int range_ok(const float r[2]) { return r[0] > 0.0f && r[0] <= r[1] && isfinite(r[1]); }

mmcr_status mmcr_aug_config_check(const mmcr_aug_config *a, int c, mmcr_err *err) {
    if (c != 1 && c != 3) return mmcr_err_set(err, MMCR_ERR_ARG, "images have %d channels (1 or 3 supported)", c);
    if (a->out_size < 1 || a->out_size > 65536)
        return mmcr_err_set(err, MMCR_ERR_ARG, "augmentation output size %d is out of range", a->out_size);
    const float ps[] = {a->crop_p, a->flip_p, a->jitter_p, a->gray_p, a->blur_p, a->solarize_p, a->erase_p};
    const char *names[] = {"crop_p", "flip_p", "jitter_p", "gray_p", "blur_p", "solarize_p", "erase_p"};
    for (int i = 0; i < 7; i++)
        if (!prob_ok(ps[i]))
            return mmcr_err_set(err, MMCR_ERR_ARG, "augmentation %s = %g is not in [0, 1]", names[i], (double)ps[i]);
    if (a->crop_p > 0 && (!range_ok(a->crop_scale) || a->crop_scale[1] > 1.0f || !range_ok(a->crop_ratio)))
        return mmcr_err_set(err, MMCR_ERR_ARG, "crop scale (%g, %g) or ratio (%g, %g) is not a valid range",
                            (double)a->crop_scale[0], (double)a->crop_scale[1], (double)a->crop_ratio[0],
                            (double)a->crop_ratio[1]);
    if (!(a->brightness >= 0 && a->contrast >= 0 && a->saturation >= 0 && a->hue >= 0 && a->hue <= 0.5f))
        return mmcr_err_set(err, MMCR_ERR_ARG, "colour jitter ranges must be >= 0 (hue <= 0.5)");
    if (a->blur_p > 0 && (!range_ok(a->blur_sigma) || a->blur_sigma[1] > 100.0f))
        return mmcr_err_set(err, MMCR_ERR_ARG, "blur sigma range (%g, %g) is not valid (0 < lo <= hi <= 100)",
                            (double)a->blur_sigma[0], (double)a->blur_sigma[1]);
    if (a->blur_kernel < 0 || (a->blur_kernel > 0 && a->blur_kernel % 2 == 0) || a->blur_kernel > 1001)
        return mmcr_err_set(err, MMCR_ERR_ARG, "blur kernel size %d must be 0 (auto) or odd", a->blur_kernel);
    if (a->erase_p > 0 && (!range_ok(a->erase_scale) || a->erase_scale[1] > 1.0f || !range_ok(a->erase_ratio)))
        return mmcr_err_set(err, MMCR_ERR_ARG, "erase scale or ratio is not a valid range");
    if (a->interp != MMCR_INTERP_BILINEAR && a->interp != MMCR_INTERP_BICUBIC)
        return mmcr_err_set(err, MMCR_ERR_ARG, "unknown interpolation %d", a->interp);
    for (int ch = 0; ch < c; ch++)
        if (!(a->std[ch] > 0.0f) || !isfinite(a->mean[ch]))
            return mmcr_err_set(err, MMCR_ERR_ARG, "normalisation std[%d] = %g must be > 0", ch, (double)a->std[ch]);
    return MMCR_OK;
}

/* ---------------------------------------------------------------- sampling ---- */

static double unif(mmcr_rng *r, double lo, double hi) { return lo + (hi - lo) * mmcr_rng_uniform(r); }

/* torchvision RandomResizedCrop.get_params: 10 tries at a random area and log-uniform aspect
 * ratio, then the central crop clamped to the ratio range. Python's round() is half-to-even,
 * which is rint() in the default rounding mode. */
static void crop_params(const mmcr_aug_config *a, mmcr_rng *r, int h, int w, mmcr_aug_params *p) {
    const double area = (double)h * w;
    const double lr0 = log(a->crop_ratio[0]), lr1 = log(a->crop_ratio[1]);
    for (int t = 0; t < 10; t++) {
        double target = area * unif(r, a->crop_scale[0], a->crop_scale[1]);
        double ar = exp(unif(r, lr0, lr1));
        int cw = (int)rint(sqrt(target * ar));
        int chh = (int)rint(sqrt(target / ar));
        if (cw > 0 && cw <= w && chh > 0 && chh <= h) {
            p->crop_y = (int)mmcr_rng_below(r, (uint64_t)(h - chh + 1));
            p->crop_x = (int)mmcr_rng_below(r, (uint64_t)(w - cw + 1));
            p->crop_w = cw;
            p->crop_h = chh;
            return;
        }
    }
    double in_ratio = (double)w / h;
    int cw = w, chh = h;
    if (in_ratio < a->crop_ratio[0]) {
        chh = (int)rint(cw / (double)a->crop_ratio[0]);
    } else if (in_ratio > a->crop_ratio[1]) {
        cw = (int)rint(chh * (double)a->crop_ratio[1]);
    }
    if (chh < 1) chh = 1;
    if (cw < 1) cw = 1;
    if (chh > h) chh = h;
    if (cw > w) cw = w;
    p->crop_w = cw;
    p->crop_h = chh;
    p->crop_y = (h - chh) / 2;
    p->crop_x = (w - cw) / 2;
}

/* torchvision RandomErasing.get_params on the S x S output (note h and w swap roles vs the crop). */
static void erase_params(const mmcr_aug_config *a, mmcr_rng *r, int s, mmcr_aug_params *p) {
    const double area = (double)s * s;
    const double lr0 = log(a->erase_ratio[0]), lr1 = log(a->erase_ratio[1]);
    for (int t = 0; t < 10; t++) {
        double target = area * unif(r, a->erase_scale[0], a->erase_scale[1]);
        double ar = exp(unif(r, lr0, lr1));
        int eh = (int)rint(sqrt(target * ar));
        int ew = (int)rint(sqrt(target / ar));
        if (!(eh < s && ew < s)) continue;
        p->erase_y = (int)mmcr_rng_below(r, (uint64_t)(s - eh + 1));
        p->erase_x = (int)mmcr_rng_below(r, (uint64_t)(s - ew + 1));
        p->erase_h = eh;
        p->erase_w = ew;
        p->erase = eh > 0 && ew > 0;
        return;
    }
}

static int blur_radius_for(const mmcr_aug_config *a, double sigma) {
    if (a->blur_kernel > 0) return (a->blur_kernel - 1) / 2;
    return (int)ceil(3.0 * sigma);
}

void mmcr_aug_sample(const mmcr_aug_config *a, mmcr_rng *rng, int c, int h, int w, mmcr_aug_params *p) {
    MMCR_ASSERT(h >= 1 && w >= 1 && a->out_size >= 1);
    memset(p, 0, sizeof *p);
    p->crop_w = w;
    p->crop_h = h;
    p->brightness = p->contrast = p->saturation = 1.0f;
    for (int i = 0; i < 4; i++) p->jitter_order[i] = i;

    /* One "apply?" draw per stage, always, so the stream layout does not depend on the outcome. */
    if (mmcr_rng_uniform(rng) < a->crop_p) {
        p->cropped = 1;
        crop_params(a, rng, h, w, p);
    }
    p->flip = mmcr_rng_uniform(rng) < a->flip_p;
    if (mmcr_rng_uniform(rng) < a->jitter_p) {
        /* ColorJitter.get_params: a random order, then each enabled factor. */
        p->jitter = 1;
        uint32_t order[4] = {0, 1, 2, 3};
        mmcr_rng_shuffle_u32(rng, order, 4);
        for (int i = 0; i < 4; i++) p->jitter_order[i] = (int)order[i];
        if (a->brightness > 0) p->brightness = (float)unif(rng, fmax(0.0, 1.0 - a->brightness), 1.0 + a->brightness);
        if (a->contrast > 0) p->contrast = (float)unif(rng, fmax(0.0, 1.0 - a->contrast), 1.0 + a->contrast);
        if (a->saturation > 0)
            p->saturation = (float)unif(rng, fmax(0.0, 1.0 - a->saturation), 1.0 + a->saturation);
        if (a->hue > 0) p->hue = (float)unif(rng, -a->hue, a->hue);
    }
    p->gray = mmcr_rng_uniform(rng) < a->gray_p && c == 3;
    if (mmcr_rng_uniform(rng) < a->blur_p) {
        p->blur_sigma = (float)unif(rng, a->blur_sigma[0], a->blur_sigma[1]);
        p->blur_radius = blur_radius_for(a, p->blur_sigma);
    }
    p->solarize = mmcr_rng_uniform(rng) < a->solarize_p;
    if (mmcr_rng_uniform(rng) < a->erase_p) erase_params(a, rng, a->out_size, p);
}

/* ---------------------------------------------------------------- workspace ---- */

typedef struct ws_layout {
    size_t tmp, wx, wy, ix, iy, kern, total; /* byte offsets */
    int taps, rmax;
} ws_layout;

static double filter_support(int interp) { return interp == MMCR_INTERP_BICUBIC ? 2.0 : 1.0; }

static size_t align64(size_t b) { return (b + 63) & ~(size_t)63; }

static void ws_plan(const mmcr_aug_config *a, int c, int h, int w, ws_layout *L) {
    const int s = a->out_size;
    const int maxdim = h > w ? h : w;
    double support = filter_support(a->interp) * fmax(1.0, (double)maxdim / s);
    double taps = ceil(2.0 * support) + 2.0;
    L->taps = taps < maxdim ? (int)taps : maxdim;
    L->rmax = 0;
    if (a->blur_p > 0) L->rmax = blur_radius_for(a, fmax(a->blur_sigma[0], a->blur_sigma[1]));
    size_t tmp_f = (size_t)c * h * s;
    if (tmp_f < (size_t)s * s) tmp_f = (size_t)s * s;
    size_t off = 0;
    L->tmp = off; off += align64(tmp_f * sizeof(float));
    L->wx = off; off += align64((size_t)s * L->taps * sizeof(float));
    L->wy = off; off += align64((size_t)s * L->taps * sizeof(float));
    L->ix = off; off += align64((size_t)s * 2 * sizeof(int));
    L->iy = off; off += align64((size_t)s * 2 * sizeof(int));
    L->kern = off; off += align64((size_t)(2 * L->rmax + 1) * sizeof(float));
    L->total = off;
}

size_t mmcr_aug_workspace_bytes(const mmcr_aug_config *a, int c, int h, int w) {
    ws_layout L;
    ws_plan(a, c, h, w, &L);
    return L.total;
}

/* ---------------------------------------------------------------- resampling ---- */

static double filter_eval(int interp, double x) {
    x = fabs(x);
    if (interp == MMCR_INTERP_BICUBIC) {
        const double k = -0.5; /* PIL's bicubic */
        if (x < 1.0) return ((k + 2.0) * x - (k + 3.0)) * x * x + 1.0;
        if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * k;
        return 0.0;
    }
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* PIL-style coefficients: output pixel i of out_n samples the input (length in_n) around its
 * centre (i + 0.5) * in_n / out_n with the filter stretched by the downscale factor
 * (antialiasing); taps outside the input are dropped and the weights renormalised. For
 * upsampling this is exactly half-pixel bilinear/bicubic with clamped borders. */
static void resample_coeffs(int interp, int in_n, int out_n, int taps, double gain, int *range, float *wts) {
    const double scale = (double)in_n / out_n;
    const double fscale = fmax(1.0, scale);
    const double support = filter_support(interp) * fscale;
    for (int i = 0; i < out_n; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_n) hi = in_n;
        int cnt = hi - lo;
        MMCR_ASSERT(cnt >= 1 && cnt <= taps);
        double sum = 0.0;
        for (int k = 0; k < cnt; k++) sum += filter_eval(interp, (k + lo - center + 0.5) / fscale);
        for (int k = 0; k < cnt; k++) {
            double wk = filter_eval(interp, (k + lo - center + 0.5) / fscale);
            wts[(size_t)i * taps + k] = (float)(sum != 0.0 ? gain * wk / sum : 0.0);
        }
        range[2 * i] = lo;
        range[2 * i + 1] = cnt;
    }
}

static float clamp01(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }

/* Crop region of src (uint8) -> dst (c x S x S floats in [0, 1]). */
static void resize_region(const mmcr_aug_config *a, const ws_layout *L, uint8_t *work, const uint8_t *src, int c,
                          int h, int w, int x0, int y0, int cw, int chh, float *dst) {
    const int s = a->out_size;
    const size_t plane = (size_t)s * s;
    if (cw == s && chh == s) { /* same size: an exact copy, no filtering */
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < s; y++) {
                const uint8_t *row = src + ((size_t)ch * h + y0 + y) * w + x0;
                float *out = dst + ch * plane + (size_t)y * s;
                for (int x = 0; x < s; x++) out[x] = (float)row[x] / 255.0f;
            }
        return;
    }
    float *tmp = (float *)(work + L->tmp), *wx = (float *)(work + L->wx), *wy = (float *)(work + L->wy);
    int *ix = (int *)(work + L->ix), *iy = (int *)(work + L->iy);
    resample_coeffs(a->interp, cw, s, L->taps, 1.0 / 255.0, ix, wx); /* the horizontal pass also scales to [0, 1] */
    resample_coeffs(a->interp, chh, s, L->taps, 1.0, iy, wy);
    /* Horizontal pass: c x chh x S. */
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < chh; y++) {
            const uint8_t *row = src + ((size_t)ch * h + y0 + y) * w + x0;
            float *out = tmp + ((size_t)ch * chh + y) * s;
            for (int j = 0; j < s; j++) {
                const float *wj = wx + (size_t)j * L->taps;
                const uint8_t *r = row + ix[2 * j];
                float acc = 0.0f;
                for (int k = 0; k < ix[2 * j + 1]; k++) acc += wj[k] * (float)r[k];
                out[j] = acc;
            }
        }
    /* Vertical pass into dst, rows accumulated so the inner loop runs along x. */
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < s; i++) {
            float *out = dst + ch * plane + (size_t)i * s;
            const float *wi = wy + (size_t)i * L->taps;
            for (int j = 0; j < s; j++) out[j] = 0.0f;
            for (int k = 0; k < iy[2 * i + 1]; k++) {
                const float *in = tmp + ((size_t)ch * chh + iy[2 * i] + k) * s;
                const float wk = wi[k];
                for (int j = 0; j < s; j++) out[j] += wk * in[j];
            }
            for (int j = 0; j < s; j++) out[j] = clamp01(out[j]); /* bicubic overshoots */
        }
}

/* ---------------------------------------------------------------- colour ---- */

static float gray_of(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

static void adjust_brightness(float *x, size_t n, float f) {
    for (size_t i = 0; i < n; i++) x[i] = clamp01(f * x[i]);
}

static void adjust_contrast(float *x, int c, size_t plane, float f) {
    /* Blend with the mean of the grayscale image (a scalar), as torchvision. */
    double m = 0.0;
    if (c == 3) {
        for (size_t i = 0; i < plane; i++) m += gray_of(x[i], x[plane + i], x[2 * plane + i]);
    } else {
        for (size_t i = 0; i < plane; i++) m += x[i];
    }
    const float mean = (float)(m / (double)plane);
    const float g = (1.0f - f) * mean;
    for (size_t i = 0; i < (size_t)c * plane; i++) x[i] = clamp01(f * x[i] + g);
}

static void adjust_saturation(float *x, size_t plane, float f) {
    for (size_t i = 0; i < plane; i++) {
        float gr = gray_of(x[i], x[plane + i], x[2 * plane + i]);
        for (int ch = 0; ch < 3; ch++) x[ch * plane + i] = clamp01(f * x[ch * plane + i] + (1.0f - f) * gr);
    }
}

/* torchvision's tensor rgb -> hsv -> rgb with the hue shifted modulo 1. */
static void adjust_hue(float *x, size_t plane, float shift) {
    for (size_t i = 0; i < plane; i++) {
        float r = x[i], g = x[plane + i], b = x[2 * plane + i];
        /* Plain comparisons: inputs are finite, and fmaxf/fminf are library calls here. */
        float maxc = r > g ? r : g, minc = r < g ? r : g;
        maxc = b > maxc ? b : maxc;
        minc = b < minc ? b : minc;
        int eqc = maxc == minc;
        float cr = maxc - minc;
        float s = cr / (eqc ? 1.0f : maxc);
        float crd = eqc ? 1.0f : cr;
        float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
        float hh;
        if (maxc == r) hh = bc - gc;
        else if (maxc == g) hh = 2.0f + rc - bc;
        else hh = 4.0f + gc - rc;
        /* x mod 1 for x > 0, as x - floor(x): exact, and the same value fmodf gives. */
        hh = hh / 6.0f + 1.0f;
        hh -= floorf(hh);
        hh += shift + 1.0f; /* shift in [-0.5, 0.5] */
        hh -= floorf(hh);
        float v = maxc;
        float h6 = hh * 6.0f;
        float fi = floorf(h6);
        float f = h6 - fi;
        int sector = ((int)fi % 6 + 6) % 6;
        float p = clamp01(v * (1.0f - s));
        float q = clamp01(v * (1.0f - s * f));
        float t = clamp01(v * (1.0f - s * (1.0f - f)));
        float o[3];
        switch (sector) {
        case 0: o[0] = v; o[1] = t; o[2] = p; break;
        case 1: o[0] = q; o[1] = v; o[2] = p; break;
        case 2: o[0] = p; o[1] = v; o[2] = t; break;
        case 3: o[0] = p; o[1] = q; o[2] = v; break;
        case 4: o[0] = t; o[1] = p; o[2] = v; break;
        default: o[0] = v; o[1] = p; o[2] = q; break;
        }
        x[i] = o[0];
        x[plane + i] = o[1];
        x[2 * plane + i] = o[2];
    }
}

/* ---------------------------------------------------------------- blur ---- */

/* torch 'reflect' padding (edge not repeated), extended periodically for any offset. */
static int reflect_index(int i, int n) {
    if (n == 1) return 0;
    const int period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

static void gaussian_blur(float *x, int c, int s, float sigma, int radius, float *kern, float *tmp) {
    /* torchvision: taps at integer offsets -r..r, exp(-0.5 (d / sigma)^2), normalised. */
    double sum = 0.0;
    for (int k = -radius; k <= radius; k++) {
        double d = k / (double)sigma;
        kern[k + radius] = (float)exp(-0.5 * d * d);
        sum += kern[k + radius];
    }
    for (int k = 0; k <= 2 * radius; k++) kern[k] = (float)(kern[k] / sum);
    const size_t plane = (size_t)s * s;
    for (int ch = 0; ch < c; ch++) {
        float *img = x + ch * plane;
        for (int y = 0; y < s; y++) {
            const float *row = img + (size_t)y * s;
            float *out = tmp + (size_t)y * s;
            for (int j = 0; j < s; j++) {
                float acc = 0.0f;
                if (j - radius >= 0 && j + radius < s) {
                    for (int k = -radius; k <= radius; k++) acc += kern[k + radius] * row[j + k];
                } else {
                    for (int k = -radius; k <= radius; k++) acc += kern[k + radius] * row[reflect_index(j + k, s)];
                }
                out[j] = acc;
            }
        }
        for (int y = 0; y < s; y++) {
            float *out = img + (size_t)y * s;
            for (int j = 0; j < s; j++) out[j] = 0.0f;
            for (int k = -radius; k <= radius; k++) {
                const float *in = tmp + (size_t)reflect_index(y + k, s) * s;
                const float wk = kern[k + radius];
                for (int j = 0; j < s; j++) out[j] += wk * in[j];
            }
        }
    }
}

/* ---------------------------------------------------------------- apply ---- */

void mmcr_aug_apply(const mmcr_aug_config *a, const mmcr_aug_params *p, const uint8_t *src, int c, int h, int w,
                    float *dst, void *work) {
    MMCR_ASSERT(c == 1 || c == 3);
    MMCR_ASSERT(p->crop_x >= 0 && p->crop_y >= 0 && p->crop_w >= 1 && p->crop_h >= 1 &&
                p->crop_x + p->crop_w <= w && p->crop_y + p->crop_h <= h);
    ws_layout L;
    ws_plan(a, c, h, w, &L);
    const int s = a->out_size;
    const size_t plane = (size_t)s * s;
    uint8_t *ws = work;
    resize_region(a, &L, ws, src, c, h, w, p->crop_x, p->crop_y, p->crop_w, p->crop_h, dst);

    if (p->flip)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < s; y++) {
                float *row = dst + ch * plane + (size_t)y * s;
                for (int i = 0, j = s - 1; i < j; i++, j--) {
                    float t = row[i];
                    row[i] = row[j];
                    row[j] = t;
                }
            }
    if (p->jitter)
        for (int k = 0; k < 4; k++) {
            switch (p->jitter_order[k]) {
            case 0:
                if (p->brightness != 1.0f) adjust_brightness(dst, (size_t)c * plane, p->brightness);
                break;
            case 1:
                if (p->contrast != 1.0f) adjust_contrast(dst, c, plane, p->contrast);
                break;
            case 2: /* saturation and hue leave 1-channel images unchanged (torchvision) */
                if (c == 3 && p->saturation != 1.0f) adjust_saturation(dst, plane, p->saturation);
                break;
            default:
                if (c == 3 && p->hue != 0.0f) adjust_hue(dst, plane, p->hue);
                break;
            }
        }
    if (p->gray && c == 3)
        for (size_t i = 0; i < plane; i++) {
            float g = gray_of(dst[i], dst[plane + i], dst[2 * plane + i]);
            dst[i] = dst[plane + i] = dst[2 * plane + i] = g;
        }
    if (p->blur_sigma > 0.0f && p->blur_radius > 0) {
        MMCR_ASSERT(p->blur_radius <= L.rmax);
        gaussian_blur(dst, c, s, p->blur_sigma, p->blur_radius, (float *)(ws + L.kern), (float *)(ws + L.tmp));
    }
    if (p->solarize)
        for (size_t i = 0; i < (size_t)c * plane; i++)
            if (dst[i] >= 0.5f) dst[i] = 1.0f - dst[i];
    for (int ch = 0; ch < c; ch++) {
        const float m = a->mean[ch], sd = a->std[ch];
        float *x = dst + ch * plane;
        for (size_t i = 0; i < plane; i++) x[i] = (x[i] - m) / sd;
    }
    if (p->erase) {
        MMCR_ASSERT(p->erase_x >= 0 && p->erase_y >= 0 && p->erase_x + p->erase_w <= s &&
                    p->erase_y + p->erase_h <= s);
        for (int ch = 0; ch < c; ch++)
            for (int y = p->erase_y; y < p->erase_y + p->erase_h; y++)
                memset(dst + ch * plane + (size_t)y * s + p->erase_x, 0, (size_t)p->erase_w * sizeof(float));
    }
}

void mmcr_augment_ws(const mmcr_aug_config *a, mmcr_rng *rng, const uint8_t *src, int c, int h, int w, float *dst,
                     void *work) {
    mmcr_aug_params p;
    mmcr_aug_sample(a, rng, c, h, w, &p);
    mmcr_aug_apply(a, &p, src, c, h, w, dst, work);
}

void mmcr_augment(const mmcr_aug_config *a, mmcr_rng *rng, const uint8_t *src, int c, int h, int w, float *dst) {
    void *work = mmcr_alloc(mmcr_aug_workspace_bytes(a, c, h, w));
    MMCR_ASSERT(work != NULL);
    mmcr_augment_ws(a, rng, src, c, h, w, dst, work);
    mmcr_free(work);
}

void mmcr_dataset_to_float(const mmcr_dataset *ds, int start, int count, const mmcr_aug_config *a, float *dst) {
    MMCR_ASSERT(start >= 0 && count >= 0 && start + count <= ds->n);
    const size_t img = (size_t)ds->c * ds->h * ds->w;
    const size_t out = (size_t)ds->c * a->out_size * a->out_size;
    mmcr_aug_config det = *a; /* the deterministic part only: full image, normalised */
    det.blur_p = 0.0f;
    mmcr_aug_params p;
    memset(&p, 0, sizeof p);
    p.crop_w = ds->w;
    p.crop_h = ds->h;
    p.brightness = p.contrast = p.saturation = 1.0f;
    const size_t wsb = mmcr_aug_workspace_bytes(&det, ds->c, ds->h, ds->w);
#pragma omp parallel
    {
        void *work = mmcr_alloc(wsb);
        MMCR_ASSERT(work != NULL);
#pragma omp for schedule(static)
        for (int i = 0; i < count; i++)
            mmcr_aug_apply(&det, &p, ds->pixels + (size_t)(start + i) * img, ds->c, ds->h, ds->w,
                           dst + (size_t)i * out, work);
        mmcr_free(work);
    }
}
