/* Augmentations: parity with torchvision's functional ops (fixture), exact flips and resizes,
 * determinism per stream, empirical stage rates, crop geometry, gray stays gray, tiny sizes. */
#include "mmcr/data.h"
#include "test_util.h"

#include <float.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- fixture ---- */

typedef struct fcase {
    char name[64];
    int c, h, w;
    float *v;
} fcase;

static uint8_t fimg[3 * 7 * 7];
static fcase cases[64];
static int n_cases;

static int load_fixture(void) {
    const char *root = getenv("MMCR_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/augment/ops.txt", root ? root : "tests/fixtures");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open fixture %s\n", path);
        return 0;
    }
    char line[256];
    if (!fgets(line, sizeof line, f)) return fclose(f), 0; /* comment */
    int c, h, w;
    if (fscanf(f, " image %d %d %d", &c, &h, &w) != 3 || c != 3 || h != 7 || w != 7) return fclose(f), 0;
    for (int i = 0; i < 3 * 7 * 7; i++) {
        int v;
        if (fscanf(f, "%d", &v) != 1) return fclose(f), 0;
        fimg[i] = (uint8_t)v;
    }
    while (n_cases < 64) {
        fcase *k = &cases[n_cases];
        if (fscanf(f, " case %63s %d %d %d", k->name, &k->c, &k->h, &k->w) != 4) break;
        size_t n = (size_t)k->c * k->h * k->w;
        k->v = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            if (fscanf(f, "%f", &k->v[i]) != 1) return fclose(f), 0;
        n_cases++;
    }
    fclose(f);
    return n_cases > 0;
}

static const fcase *find_case(const char *name) {
    for (int i = 0; i < n_cases; i++)
        if (strcmp(cases[i].name, name) == 0) return &cases[i];
    return NULL;
}

static void ident_params(mmcr_aug_params *p, int h, int w) {
    memset(p, 0, sizeof *p);
    p->crop_w = w;
    p->crop_h = h;
    p->brightness = p->contrast = p->saturation = 1.0f;
    for (int i = 0; i < 4; i++) p->jitter_order[i] = i;
}

/* Applies p with config a to the fixture image (c = 3, or its first plane as c = 1) and
 * compares with the named torchvision case. */
static void parity(const char *name, const mmcr_aug_config *a, const mmcr_aug_params *p, int c, double tol) {
    const fcase *k = find_case(name);
    CHECK_MSG(k != NULL, "fixture case %s missing", name);
    if (!k) return;
    const int s = a->out_size;
    CHECK(k->c == c && k->h == s && k->w == s);
    float *out = malloc((size_t)c * s * s * sizeof(float));
    void *ws = malloc(mmcr_aug_workspace_bytes(a, c, 7, 7));
    mmcr_aug_apply(a, p, fimg, c, 7, 7, out, ws);
    double worst = 0;
    for (int i = 0; i < c * s * s; i++) {
        double d = fabs((double)out[i] - k->v[i]);
        if (d > worst) worst = d;
    }
    if (getenv("MMCR_TEST_VERBOSE")) printf("%-22s max diff %.3g\n", name, worst);
    CHECK_MSG(worst <= tol, "%s: max |mmcr - torchvision| = %.3g", name, worst);
    free(out);
    free(ws);
}

static void test_parity(void) {
    CHECK(load_fixture());
    mmcr_aug_config a;
    mmcr_aug_params p;
    const double tol = 2e-6;

    /* Resampling: PIL-style antialiased bilinear / bicubic (torchvision antialias=True). */
    const struct { const char *name; int interp, s, x, y, w, h; } rs[] = {
        {"resize_bilinear_up", MMCR_INTERP_BILINEAR, 9, 1, 2, 5, 4},
        {"resize_bilinear_down", MMCR_INTERP_BILINEAR, 3, 0, 0, 7, 7},
        {"resize_bilinear_rect", MMCR_INTERP_BILINEAR, 2, 0, 1, 7, 5},
        {"resize_bicubic_up", MMCR_INTERP_BICUBIC, 9, 1, 2, 5, 4},
        {"resize_bicubic_down", MMCR_INTERP_BICUBIC, 3, 0, 0, 7, 7},
    };
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        mmcr_aug_config_none(&a, rs[i].s);
        a.interp = rs[i].interp;
        ident_params(&p, 7, 7);
        p.crop_x = rs[i].x;
        p.crop_y = rs[i].y;
        p.crop_w = rs[i].w;
        p.crop_h = rs[i].h;
        parity(rs[i].name, &a, &p, 3, tol);
    }

    mmcr_aug_config_none(&a, 7);
    a.blur_p = 1.0f;
    a.blur_kernel = 9; /* workspace for radius up to 4 */
    const struct { const char *name; int op; float f; int c; } js[] = {
        {"brightness", 0, 1.3f, 3},       {"contrast", 1, 0.6f, 3},         {"contrast_gray1", 1, 1.5f, 1},
        {"brightness_gray1", 0, 0.7f, 1}, {"saturation_up", 2, 1.4f, 3},    {"saturation_down", 2, 0.3f, 3},
        {"hue_pos", 3, 0.17f, 3},         {"hue_neg", 3, -0.3f, 3},
    };
    for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
        ident_params(&p, 7, 7);
        p.jitter = 1;
        if (js[i].op == 0) p.brightness = js[i].f;
        if (js[i].op == 1) p.contrast = js[i].f;
        if (js[i].op == 2) p.saturation = js[i].f;
        if (js[i].op == 3) p.hue = js[i].f;
        parity(js[i].name, &a, &p, js[i].c, tol);
    }
    ident_params(&p, 7, 7);
    p.gray = 1;
    parity("grayscale", &a, &p, 3, tol);
    ident_params(&p, 7, 7);
    p.blur_sigma = 0.8f;
    p.blur_radius = 2;
    parity("blur_k5", &a, &p, 3, tol);
    p.blur_sigma = 1.7f;
    p.blur_radius = 4;
    parity("blur_k9", &a, &p, 3, tol);
    ident_params(&p, 7, 7);
    p.solarize = 1;
    parity("solarize", &a, &p, 3, tol);

    const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2023f, 0.1994f, 0.2010f};
    memcpy(a.mean, mean, sizeof mean);
    memcpy(a.std, sd, sizeof sd);
    ident_params(&p, 7, 7);
    parity("normalize", &a, &p, 3, 1e-5);

    ident_params(&p, 7, 7);
    p.flip = 1;
    p.jitter = 1;
    const int order[4] = {3, 1, 0, 2};
    memcpy(p.jitter_order, order, sizeof order);
    p.hue = 0.05f;
    p.contrast = 1.2f;
    p.brightness = 0.8f;
    p.saturation = 0.5f;
    p.blur_sigma = 0.5f;
    p.blur_radius = 1;
    p.solarize = 1;
    p.erase = 1;
    p.erase_x = 2;
    p.erase_y = 1;
    p.erase_w = 2;
    p.erase_h = 3;
    parity("chain", &a, &p, 3, 1e-5);
}

/* ---------------------------------------------------------------- exact cases ---- */

static void fill_pattern(uint8_t *img, int c, int h, int w, int seed) {
    for (int i = 0; i < c * h * w; i++) img[i] = (uint8_t)((i * 37 + seed * 101 + (i * i) % 13) & 255);
}

static void test_flip_and_identity(void) {
    enum { C = 3, S = 6 };
    uint8_t img[C * S * S];
    fill_pattern(img, C, S, S, 1);
    mmcr_aug_config a;
    mmcr_aug_config_none(&a, S);
    float out[C * S * S];
    mmcr_rng r;
    mmcr_rng_seed(&r, 1, 0, 0, 0);
    mmcr_augment(&a, &r, img, C, S, S, out);
    int same = 1;
    for (int i = 0; i < C * S * S; i++) same &= out[i] == (float)img[i] / 255.0f;
    CHECK(same); /* no augmentation at the native size: exact copy */

    a.flip_p = 1.0f;
    mmcr_augment(&a, &r, img, C, S, S, out);
    same = 1;
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                same &= out[(ch * S + y) * S + x] == (float)img[(ch * S + y) * S + (S - 1 - x)] / 255.0f;
    CHECK(same);
    /* Odd width: the middle column stays. */
    uint8_t img5[1 * 2 * 5] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    mmcr_aug_config b;
    mmcr_aug_config_none(&b, 5);
    b.flip_p = 1.0f;
    b.crop_p = 0.0f;
    mmcr_aug_params p;
    ident_params(&p, 2, 5);
    p.flip = 1;
    p.crop_h = 2; /* a 5 x 2 band resized to 5 x 5 keeps columns intact */
    float o5[25];
    void *ws = malloc(mmcr_aug_workspace_bytes(&b, 1, 2, 5));
    mmcr_aug_apply(&b, &p, img5, 1, 2, 5, o5, ws);
    free(ws);
    CHECK(o5[2] > 0 && fabsf(o5[0] - o5[4]) > 0 && o5[0] > o5[4]);
}

static void test_crop_equals_resize(void) {
    enum { C = 3, H = 10, W = 10, S = 7 };
    uint8_t img[C * H * W];
    fill_pattern(img, C, H, W, 2);
    mmcr_aug_config full, crop;
    mmcr_aug_config_none(&full, S);
    mmcr_aug_config_none(&crop, S);
    crop.crop_p = 1.0f;
    crop.crop_scale[0] = crop.crop_scale[1] = 1.0f;
    crop.crop_ratio[0] = crop.crop_ratio[1] = 1.0f;
    float o1[C * S * S], o2[C * S * S];
    for (int seed = 0; seed < 5; seed++) {
        mmcr_rng r1, r2;
        mmcr_rng_seed(&r1, seed, 0, 0, 0);
        mmcr_rng_seed(&r2, seed, 0, 0, 0);
        mmcr_augment(&full, &r1, img, C, H, W, o1);
        mmcr_augment(&crop, &r2, img, C, H, W, o2);
        CHECK(memcmp(o1, o2, sizeof o1) == 0);
    }
    /* Non-square input: every try fails, the fallback is the central square. */
    enum { H2 = 8, W2 = 12 };
    uint8_t img2[C * H2 * W2];
    fill_pattern(img2, C, H2, W2, 3);
    mmcr_aug_params p;
    mmcr_rng r;
    mmcr_rng_seed(&r, 9, 0, 0, 0);
    mmcr_aug_sample(&crop, &r, C, H2, W2, &p);
    CHECK(p.cropped && p.crop_x == 2 && p.crop_y == 0 && p.crop_w == 8 && p.crop_h == 8);
    /* A 3:1 image with ratio (3/4, 4/3): fallback keeps the height, width = round(h * 4/3). */
    mmcr_aug_config tall = crop;
    tall.crop_ratio[0] = 0.75f;
    tall.crop_ratio[1] = 4.0f / 3.0f;
    mmcr_aug_sample(&tall, &r, C, 4, 12, &p);
    CHECK(p.crop_h == 4 && p.crop_w == 5 && p.crop_x == 3 && p.crop_y == 0);
}

/* A constant image stays constant through any crop, resize and blur. */
static void test_constant_preserved(void) {
    enum { C = 3, H = 13, W = 9 };
    uint8_t img[C * H * W];
    for (int i = 0; i < C * H * W; i++) img[i] = (uint8_t)(40 + 60 * (i / (H * W)));
    mmcr_aug_config a;
    mmcr_aug_config_none(&a, 11);
    a.crop_p = 1.0f;
    a.blur_p = 1.0f;
    a.flip_p = 0.5f;
    float out[C * 11 * 11];
    double worst = 0;
    for (int interp = 0; interp < 2; interp++) {
        a.interp = interp;
        for (int seed = 0; seed < 50; seed++) {
            mmcr_rng r;
            mmcr_rng_seed(&r, seed, 1, 2, 3);
            mmcr_augment(&a, &r, img, C, H, W, out);
            for (int ch = 0; ch < C; ch++)
                for (int i = 0; i < 121; i++) {
                    double d = fabs(out[ch * 121 + i] - (40 + 60 * ch) / 255.0);
                    if (d > worst) worst = d;
                }
        }
    }
    CHECK_MSG(worst < 1e-5, "worst %.3g", worst);
}

/* ---------------------------------------------------------------- random stages ---- */

static void full_config(mmcr_aug_config *a, int s) {
    mmcr_aug_config_cifar(a, s);
    a->blur_p = 0.5f;
    a->solarize_p = 0.3f;
    a->erase_p = 0.5f;
}

static void test_range_and_determinism(void) {
    enum { C = 3, H = 20, W = 17, S = 12 };
    uint8_t img[C * H * W];
    fill_pattern(img, C, H, W, 4);
    mmcr_aug_config a;
    full_config(&a, S);
    mmcr_err err;
    CHECK(mmcr_aug_config_check(&a, C, &err) == MMCR_OK);
    float o1[C * S * S], o2[C * S * S];
    int in_range = 1, det = 1, differ = 0;
    for (int i = 0; i < 300; i++) {
        mmcr_rng r1, r2, r3;
        mmcr_rng_seed(&r1, 5, 0, (uint64_t)i, 0);
        mmcr_rng_seed(&r2, 5, 0, (uint64_t)i, 0);
        mmcr_augment(&a, &r1, img, C, H, W, o1);
        mmcr_augment(&a, &r2, img, C, H, W, o2);
        det &= memcmp(o1, o2, sizeof o1) == 0;
        mmcr_rng_seed(&r3, 5, 0, (uint64_t)i, 1);
        mmcr_augment(&a, &r3, img, C, H, W, o2);
        differ += memcmp(o1, o2, sizeof o1) != 0;
        for (int ch = 0; ch < C; ch++) {
            float lo = (0.0f - a.mean[ch]) / a.std[ch] - 1e-5f, hi = (1.0f - a.mean[ch]) / a.std[ch] + 1e-5f;
            for (int k = 0; k < S * S; k++) {
                float v = o1[ch * S * S + k];
                in_range &= isfinite(v) && v >= lo && v <= hi;
            }
        }
    }
    CHECK(det);
    CHECK(differ >= 295);
    CHECK(in_range);
}

/* |rate - p| within 4.5 standard errors (and exact at p = 0 or 1). */
static void check_rate(const char *what, int hits, int n, double p) {
    double rate = (double)hits / n, se = sqrt(p * (1 - p) / n);
    CHECK_MSG(fabs(rate - p) <= 4.5 * se + 1e-12, "%s: rate %.4f vs p %.4f (se %.4f)", what, rate, p, se);
}

static void test_rates(void) {
    mmcr_aug_config a;
    mmcr_aug_config_cifar(&a, 32);
    a.crop_p = 0.6f;
    a.flip_p = 0.5f;
    a.jitter_p = 0.8f;
    a.gray_p = 0.2f;
    a.blur_p = 0.3f;
    a.solarize_p = 0.15f;
    a.erase_p = 0.4f;
    a.erase_scale[1] = 0.1f; /* small enough that the 10 tries always find a box */
    a.erase_ratio[0] = 0.5f;
    a.erase_ratio[1] = 2.0f;
    const int N = 20000;
    int crop = 0, flip = 0, jit = 0, gray = 0, blur = 0, sol = 0, er = 0;
    double sig_sum = 0;
    int sig_ok = 1, perm_ok = 1, fac_ok = 1;
    for (int i = 0; i < N; i++) {
        mmcr_rng r;
        mmcr_rng_seed(&r, 77, 3, (uint64_t)i, 0);
        mmcr_aug_params p;
        mmcr_aug_sample(&a, &r, 3, 32, 32, &p);
        crop += p.cropped;
        flip += p.flip;
        jit += p.jitter;
        gray += p.gray;
        sol += p.solarize;
        er += p.erase;
        if (p.blur_sigma > 0) {
            blur++;
            sig_sum += p.blur_sigma;
            sig_ok &= p.blur_sigma >= 0.1f && p.blur_sigma <= 2.0f && p.blur_radius == (int)ceil(3.0 * p.blur_sigma);
        }
        if (p.jitter) {
            int seen = 0;
            for (int k = 0; k < 4; k++) seen |= 1 << p.jitter_order[k];
            perm_ok &= seen == 15;
            fac_ok &= p.brightness >= 0.6f && p.brightness <= 1.4f && p.contrast >= 0.6f && p.contrast <= 1.4f &&
                      p.saturation >= 0.6f && p.saturation <= 1.4f && fabsf(p.hue) <= 0.1f;
        }
    }
    check_rate("crop", crop, N, 0.6);
    check_rate("flip", flip, N, 0.5);
    check_rate("jitter", jit, N, 0.8);
    check_rate("gray", gray, N, 0.2);
    check_rate("blur", blur, N, 0.3);
    check_rate("solarize", sol, N, 0.15);
    check_rate("erase", er, N, 0.4);
    CHECK(sig_ok && perm_ok && fac_ok);
    CHECK_CLOSE(sig_sum / blur, 1.05, 0.03, 0); /* sigma ~ U[0.1, 2] */

    /* The same rates seen on the outputs, one stage enabled at a time. */
    enum { C = 3, S = 8 };
    uint8_t img[C * S * S];
    fill_pattern(img, C, S, S, 5);
    for (int i = 0; i < C * S * S; i++) img[i] = (uint8_t)(128 + img[i] / 3); /* all >= 0.5: solarise shows */
    float base[C * S * S], out[C * S * S];
    mmcr_aug_config none;
    mmcr_aug_config_none(&none, S);
    mmcr_rng r0;
    mmcr_rng_seed(&r0, 0, 0, 0, 0);
    mmcr_augment(&none, &r0, img, C, S, S, base);
    const char *names[5] = {"flip (output)", "jitter (output)", "gray (output)", "blur (output)", "solarize (output)"};
    const double ps[5] = {0.35, 0.7, 0.25, 0.45, 0.1};
    const int M = 4000;
    void *ws = malloc(mmcr_aug_workspace_bytes(&a, C, S, S));
    for (int st = 0; st < 5; st++) {
        mmcr_aug_config b = none;
        if (st == 0) b.flip_p = (float)ps[st];
        if (st == 1) { b.jitter_p = (float)ps[st]; b.brightness = 0.4f; }
        if (st == 2) b.gray_p = (float)ps[st];
        if (st == 3) b.blur_p = (float)ps[st];
        if (st == 4) b.solarize_p = (float)ps[st];
        int hits = 0;
        for (int i = 0; i < M; i++) {
            mmcr_rng r;
            mmcr_rng_seed(&r, 11, (uint64_t)st, (uint64_t)i, 0);
            mmcr_augment_ws(&b, &r, img, C, S, S, out, ws);
            hits += memcmp(out, base, sizeof out) != 0;
        }
        check_rate(names[st], hits, M, ps[st]);
    }
    /* Erasing shows as exact zeros (the normalised image has none). */
    mmcr_aug_config e = none;
    e.mean[0] = e.mean[1] = e.mean[2] = 0.1f;
    e.erase_p = 0.3f;
    e.erase_scale[1] = 0.1f;
    e.erase_ratio[0] = 0.5f;
    e.erase_ratio[1] = 2.0f;
    int hits = 0;
    for (int i = 0; i < M; i++) {
        mmcr_rng r;
        mmcr_rng_seed(&r, 12, 0, (uint64_t)i, 0);
        mmcr_augment_ws(&e, &r, img, C, S, S, out, ws);
        int zeros = 0;
        for (int k = 0; k < C * S * S; k++) zeros += out[k] == 0.0f;
        hits += zeros > 0;
    }
    check_rate("erase (output)", hits, M, 0.3);
    free(ws);
}

static void test_crop_geometry(void) {
    mmcr_aug_config a;
    mmcr_aug_config_none(&a, 16);
    a.crop_p = 1.0f;
    a.crop_scale[0] = 0.2f;
    a.crop_scale[1] = 0.6f;
    const int H = 48, W = 64, N = 5000;
    int ok = 1, fallback = 0;
    double sum = 0;
    for (int i = 0; i < N; i++) {
        mmcr_rng r;
        mmcr_rng_seed(&r, 3, 0, (uint64_t)i, 0);
        mmcr_aug_params p;
        mmcr_aug_sample(&a, &r, 3, H, W, &p);
        ok &= p.crop_x >= 0 && p.crop_y >= 0 && p.crop_x + p.crop_w <= W && p.crop_y + p.crop_h <= H;
        double frac = (double)p.crop_w * p.crop_h / (H * W);
        /* rounding w and h to integers moves the area by at most (w + h) / 2 + 1/4 pixels */
        double slack = (0.5 * (p.crop_w + p.crop_h) + 0.25) / (H * W);
        if (p.crop_w == W && p.crop_h == H) fallback++;
        else ok &= frac >= 0.2 - slack && frac <= 0.6 + slack;
        double ar = (double)p.crop_w / p.crop_h, ars = 0.5 / p.crop_h * (1 + ar);
        ok &= ar >= 0.75 - ars && ar <= 4.0 / 3.0 + ars;
        sum += frac;
    }
    CHECK(ok);
    CHECK(fallback < N / 100);
    CHECK(sum / N > 0.36 && sum / N < 0.41);
}

static void test_gray_stays_gray(void) {
    enum { C = 3, S = 9 };
    uint8_t img[C * S * S];
    for (int i = 0; i < S * S; i++) img[i] = img[S * S + i] = img[2 * S * S + i] = (uint8_t)(i * 29 % 256);
    mmcr_aug_config a;
    mmcr_aug_config_none(&a, S);
    a.jitter_p = 1.0f;
    a.brightness = a.contrast = 0.4f;
    a.saturation = 0.9f;
    a.hue = 0.5f;
    float out[C * S * S];
    int gray = 1;
    for (int i = 0; i < 500; i++) {
        mmcr_rng r;
        mmcr_rng_seed(&r, 4, 0, (uint64_t)i, 0);
        mmcr_augment(&a, &r, img, C, S, S, out);
        for (int k = 0; k < S * S; k++) gray &= out[k] == out[S * S + k] && out[k] == out[2 * S * S + k];
    }
    CHECK(gray);
    /* One channel: saturation and hue are no-ops, brightness and contrast apply. */
    mmcr_aug_config b;
    mmcr_aug_config_none(&b, S);
    b.jitter_p = 1.0f;
    b.saturation = 0.9f;
    b.hue = 0.5f;
    float base[S * S];
    mmcr_rng r;
    mmcr_rng_seed(&r, 0, 0, 0, 0);
    mmcr_augment(&b, &r, img, 1, S, S, out);
    mmcr_aug_config n;
    mmcr_aug_config_none(&n, S);
    mmcr_augment(&n, &r, img, 1, S, S, base);
    CHECK(memcmp(out, base, sizeof base) == 0);
    b.brightness = 0.5f;
    mmcr_rng_seed(&r, 0, 0, 1, 0);
    mmcr_augment(&b, &r, img, 1, S, S, out);
    CHECK(memcmp(out, base, sizeof base) != 0);
    /* Grayscale on a 1-channel image never triggers. */
    mmcr_aug_params p;
    n.gray_p = 1.0f;
    mmcr_aug_sample(&n, &r, 1, S, S, &p);
    CHECK(!p.gray);
    mmcr_aug_sample(&n, &r, 3, S, S, &p);
    CHECK(p.gray);
}

/* Every stage at tiny sizes; buffers are sized exactly so a sanitizer build sees any overrun. */
static void test_tiny(void) {
    const int sizes[][3] = {{1, 1, 1}, {3, 1, 1}, {3, 2, 3}, {1, 3, 2}, {3, 2, 3}, {3, 1, 5}};
    const int outs[] = {1, 2, 5};
    int ok = 1;
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++)
        for (size_t o = 0; o < 3; o++) {
            int c = sizes[t][0], h = sizes[t][1], w = sizes[t][2], s = outs[o];
            uint8_t *img = malloc((size_t)c * h * w);
            fill_pattern(img, c, h, w, (int)t);
            float *out = malloc((size_t)c * s * s * sizeof(float));
            for (int interp = 0; interp < 2; interp++) {
                mmcr_aug_config a;
                full_config(&a, s);
                a.interp = interp;
                a.blur_p = 1.0f;
                a.blur_sigma[1] = 3.0f; /* radius 9 >> the image: reflection wraps */
                a.erase_p = 1.0f;
                for (int i = 0; i < 200; i++) {
                    mmcr_rng r;
                    mmcr_rng_seed(&r, 8, t, o, (uint64_t)i);
                    mmcr_augment(&a, &r, img, c, h, w, out);
                    for (int k = 0; k < c * s * s; k++) ok &= isfinite(out[k]) && fabsf(out[k]) < 10.0f;
                }
            }
            free(img);
            free(out);
        }
    CHECK(ok);
}

static void test_to_float_and_check(void) {
    mmcr_dataset ds = {.n = 5, .c = 3, .h = 6, .w = 4};
    ds.pixels = malloc(5 * 3 * 6 * 4);
    fill_pattern(ds.pixels, 5 * 3, 6, 4, 6);
    mmcr_aug_config a;
    full_config(&a, 5); /* random stages are ignored by the evaluation transform */
    float *got = malloc(3 * 3 * 25 * sizeof(float)), want[3 * 25];
    mmcr_dataset_to_float(&ds, 1, 3, &a, got);
    mmcr_aug_params p;
    ident_params(&p, 6, 4);
    void *ws = malloc(mmcr_aug_workspace_bytes(&a, 3, 6, 4));
    int same = 1;
    for (int i = 0; i < 3; i++) {
        mmcr_aug_apply(&a, &p, ds.pixels + (size_t)(1 + i) * 72, 3, 6, 4, want, ws);
        same &= memcmp(got + i * 75, want, sizeof want) == 0;
    }
    CHECK(same);
    free(ws);
    free(got);
    free(ds.pixels);

    mmcr_err err;
    mmcr_aug_config b;
    mmcr_aug_config_none(&b, 8);
    CHECK(mmcr_aug_config_check(&b, 1, &err) == MMCR_OK);
    CHECK(mmcr_aug_config_check(&b, 2, &err) == MMCR_ERR_ARG);
    b.flip_p = 1.5f;
    CHECK(mmcr_aug_config_check(&b, 3, &err) == MMCR_ERR_ARG && strstr(err.msg, "flip_p"));
    mmcr_aug_config_none(&b, 8);
    b.std[2] = 0.0f;
    CHECK(mmcr_aug_config_check(&b, 3, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_aug_config_check(&b, 1, &err) == MMCR_OK); /* std[2] unused with one channel */
    mmcr_aug_config_none(&b, 8);
    b.crop_p = 1.0f;
    b.crop_scale[0] = 0.9f;
    b.crop_scale[1] = 0.5f;
    CHECK(mmcr_aug_config_check(&b, 3, &err) == MMCR_ERR_ARG);
    mmcr_aug_config_none(&b, 8);
    b.blur_kernel = 4;
    CHECK(mmcr_aug_config_check(&b, 3, &err) == MMCR_ERR_ARG);
    mmcr_aug_config_byol(&b, 16, 1);
    CHECK(mmcr_aug_config_check(&b, 3, &err) == MMCR_OK && b.blur_p < 0.2f && b.solarize_p > 0.1f);
    mmcr_aug_config_byol(&b, 16, 0);
    CHECK(b.blur_p == 1.0f && b.solarize_p == 0.0f && b.interp == MMCR_INTERP_BICUBIC);
}

int main(void) {
    test_parity();
    test_flip_and_identity();
    test_crop_equals_resize();
    test_constant_preserved();
    test_range_and_determinism();
    test_rates();
    test_crop_geometry();
    test_gray_stays_gray();
    test_tiny();
    test_to_float_and_check();
    for (int i = 0; i < n_cases; i++) free(cases[i].v);
    return test_finish("test_augment");
}
