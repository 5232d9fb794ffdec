/* The multimodal engine on synthetic pairs (coloured shapes, captions "<colour> <shape> ..."):
 * MMCR's interleaved rows against the centroid formula, MMCR and CLIP training (loss goes down,
 * held-out retrieval above chance, learned temperature), determinism, results and checkpoint
 * round trips, and configuration errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmcr/loss.h"
#include "mmcr/multimodal.h"
#include "test_util.h"

static const char *const colours[4] = {"red", "green", "blue", "yellow"};
static const uint8_t rgb[4][3] = {{220, 30, 30}, {30, 170, 60}, {40, 60, 220}, {235, 200, 20}};
static const char *const shapes[3] = {"square", "disc", "bar"};
static const char *const places[4] = {"left", "right", "top", "bottom"};

static char *dup_str(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

/* n pairs (colour, shape, place) cycling through the combinations from offset; label = colour. */
static void make_pairs(mmcr_pairs *p, int n, int offset) {
    const int S = 16;
    memset(p, 0, sizeof *p);
    p->images.n = n;
    p->images.c = 3;
    p->images.h = p->images.w = S;
    p->images.pixels = mmcr_alloc((size_t)n * 3 * S * S);
    p->images.labels = mmcr_alloc(sizeof(int32_t) * (size_t)n);
    p->images.num_classes = p->num_classes = 4;
    p->captions = calloc((size_t)n, sizeof(char *));
    p->sources = calloc((size_t)n, sizeof(char *));
    /* class names sorted, as the readers produce them */
    static const char *const sorted[4] = {"blue", "green", "red", "yellow"};
    p->class_names = calloc(4, sizeof(char *));
    for (int c = 0; c < 4; c++) p->class_names[c] = dup_str(sorted[c]);
    for (int i = 0; i < n; i++) {
        int k = i + offset, col = k % 4, sh = (k / 4) % 3, pl = (k / 12) % 4;
        char cap[96];
        snprintf(cap, sizeof cap, "a %s %s at the %s", colours[col], shapes[sh], places[pl]);
        p->captions[i] = dup_str(cap);
        p->sources[i] = dup_str("synthetic");
        for (int c = 0; c < 4; c++)
            if (!strcmp(sorted[c], colours[col])) p->images.labels[i] = c;
        uint8_t *img = p->images.pixels + (size_t)i * 3 * S * S;
        int cx = pl == 0 ? 5 : pl == 1 ? 10 : 8, cy = pl == 2 ? 5 : pl == 3 ? 10 : 8;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int dx = x - cx, dy = y - cy, in;
                if (sh == 0) in = abs(dx) <= 3 && abs(dy) <= 3;
                else if (sh == 1) in = dx * dx + dy * dy <= 12;
                else in = abs(dx) <= 5 && abs(dy) <= 1;
                for (int c = 0; c < 3; c++) img[(size_t)c * S * S + (size_t)y * S + x] = in ? rgb[col][c] : 255;
            }
    }
}

static void tiny_config(mmcr_mm_config *cfg, int method, const char *out) {
    int n;
    const mmcr_option *opts = mmcr_mm_options(&n);
    MMCR_ASSERT(mmcr_options_defaults(opts, n, cfg, NULL) == MMCR_OK);
    cfg->method = method;
    cfg->image_size = 16;
    cfg->width = 4;
    cfg->proj_hidden = 32;
    cfg->dim = 16;
    cfg->text_embed = 16;
    cfg->text_hidden = 32;
    cfg->batch = 16;
    cfg->epochs = 12;
    cfg->warmup_epochs = 0;
    cfg->lr = 3e-3;
    cfg->threads = 1;
    cfg->quiet = 1;
    cfg->log_every = 1;
    snprintf(cfg->out, sizeof cfg->out, "%s", out);
    snprintf(cfg->prompt, sizeof cfg->prompt, "a {} shape");
}

/* First and last "loss" of a metrics.jsonl file. */
static int first_last_loss(const char *path, double *first, double *last) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"loss\":");
        if (!p) continue;
        double v = strtod(p + 7, NULL);
        if (n++ == 0) *first = v;
        *last = v;
    }
    fclose(f);
    return n;
}

static void test_interleaving(void) {
    /* MMCR on (image, text) rows interleaved datum-major = the centroid formula of the PPE. */
    enum { P = 12, D = 7 };
    float img[P * D], txt[P * D], y[2 * P * D];
    mmcr_rng r;
    mmcr_rng_seed(&r, 1, 2, 3, 4);
    for (int i = 0; i < P * D; i++) {
        img[i] = (float)mmcr_rng_normal(&r);
        txt[i] = (float)(0.5 * img[i] + mmcr_rng_normal(&r));
    }
    for (int i = 0; i < P; i++) {
        memcpy(y + (2 * i) * D, img + i * D, sizeof(float) * D);
        memcpy(y + (2 * i + 1) * D, txt + i * D, sizeof(float) * D);
    }
    mmcr_loss *l = NULL;
    mmcr_err err;
    CHECK(mmcr_loss_create(&l, P, 2, D, 0.0, &err) == MMCR_OK);
    mmcr_loss_result res;
    CHECK(mmcr_loss_forward_f32(l, y, &res, &err) == MMCR_OK);
    double ppe, nuc;
    CHECK(mmcr_multimodal_ppe(img, txt, P, D, &ppe, &nuc, &err) == MMCR_OK);
    CHECK_CLOSE(nuc, res.global_nuclear_norm, 1e-9, 1e-9);
    CHECK_CLOSE(ppe, res.ppe, 1e-9, 1e-9);
    mmcr_loss_destroy(&l);
}

static void test_train(int method, const char *dir, mmcr_pairs *tr, mmcr_pairs *te) {
    mmcr_mm_config cfg;
    char out[300];
    snprintf(out, sizeof out, "%s/%s", dir, method ? "clip" : "mmcr");
    tiny_config(&cfg, method, out);
    mmcr_mm_metrics m, m2;
    mmcr_err err = {{0}};
    double t0 = mmcr_now();
    mmcr_status st = mmcr_mm_train(&cfg, tr, te, NULL, &m, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    if (st != MMCR_OK) return;
    printf("%s: %.2f s, %ld steps, loss %.4f, R@1 %.3f/%.3f R@5 %.3f/%.3f, zero-shot %.3f, ppe %.3f, gap %.3f, scale %.2f\n",
           method ? "clip" : "mmcr", mmcr_now() - t0, m.steps, m.final_loss, m.r_i2t[0], m.r_t2i[0], m.r_i2t[1],
           m.r_t2i[1], m.zero_shot, m.ppe, m.modality_gap, m.scale);
    CHECK(m.steps == 12 * (tr->images.n / 16));
    CHECK(m.n_test == te->images.n && m.num_classes == 4);
    CHECK_CLOSE(m.chance[0], 1.0 / te->images.n, 1e-15, 0);
    /* Loss goes down (MMCR: more negative; CLIP: below log P). */
    char mp[400];
    double first = 0, last = 0;
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", out);
    CHECK(first_last_loss(mp, &first, &last) == (int)m.steps);
    CHECK_MSG(last < first - 0.05 * fabs(first), "loss %g -> %g", first, last);
    /* Learned something that transfers to held-out pairs. */
    CHECK_MSG(m.r_i2t[1] > 2 * m.chance[1] && m.r_t2i[1] > 2 * m.chance[1], "recall@5 %g / %g vs chance %g",
              m.r_i2t[1], m.r_t2i[1], m.chance[1]);
    CHECK(isfinite(m.ppe) && m.ppe > 0 && m.ppe < 1 && isfinite(m.modality_gap));
    if (method == MMCR_MM_METHOD_CLIP) {
        CHECK(m.scale >= 1.0 && m.scale <= 100.0 && fabs(m.scale - 1 / 0.07) > 1e-3);
    } else {
        CHECK(isnan(m.scale));
    }
    /* results.json and the checkpoint reproduce the metrics. */
    snprintf(mp, sizeof mp, "%s/results.json", out);
    CHECK(mmcr_mm_read_results(mp, &m2, &err) == MMCR_OK);
    CHECK(m2.r_i2t[2] == m.r_i2t[2] && m2.r_t2i[0] == m.r_t2i[0] && m2.ppe == m.ppe && m2.steps == m.steps);
    CHECK(m2.num_classes == 4 && m2.zero_shot_per_class[3] == m.zero_shot_per_class[3]);
    snprintf(mp, sizeof mp, "%s/checkpoint.safetensors", out);
    CHECK(mmcr_mm_eval_checkpoint(mp, te, NULL, &m2, &err) == MMCR_OK);
    CHECK(m2.r_i2t[0] == m.r_i2t[0] && m2.r_t2i[2] == m.r_t2i[2] && m2.zero_shot == m.zero_shot);
    CHECK_CLOSE(m2.ppe, m.ppe, 1e-12, 1e-9);
    mmcr_mm_config back;
    CHECK(mmcr_mm_checkpoint_config(mp, &back, &err) == MMCR_OK);
    CHECK(back.method == method && back.dim == 16 && back.batch == 16 && back.epochs == 12 &&
          strcmp(back.prompt, "a {} shape") == 0 && back.lr == cfg.lr);
    /* Same seed, same run (no output folder this time). */
    cfg.out[0] = '\0';
    CHECK(mmcr_mm_train(&cfg, tr, te, NULL, &m2, &err) == MMCR_OK);
    CHECK_CLOSE(m2.final_loss, m.final_loss, 1e-12, 1e-6);
    CHECK(m2.r_i2t[1] == m.r_i2t[1]);
}

static void test_errors(const char *dir, mmcr_pairs *tr, mmcr_pairs *te) {
    mmcr_mm_config cfg;
    mmcr_mm_metrics m;
    mmcr_err err = {{0}};
    tiny_config(&cfg, MMCR_MM_METHOD_CLIP, "");
    cfg.image_views = 2;
    cfg.augment = 1;
    CHECK(mmcr_mm_train(&cfg, tr, te, NULL, &m, &err) == MMCR_ERR_ARG);
    CHECK(strstr(err.msg, "image-views") != NULL);
    tiny_config(&cfg, MMCR_MM_METHOD_MMCR, "");
    cfg.image_views = 2;
    CHECK(mmcr_mm_train(&cfg, tr, te, NULL, &m, &err) == MMCR_ERR_ARG);
    CHECK(strstr(err.msg, "augment") != NULL);
    tiny_config(&cfg, MMCR_MM_METHOD_MMCR, "");
    cfg.batch = 100;
    CHECK(mmcr_mm_train(&cfg, tr, te, NULL, &m, &err) == MMCR_ERR_ARG);
    tiny_config(&cfg, MMCR_MM_METHOD_MMCR, "");
    cfg.image_size = 32;
    CHECK(mmcr_mm_train(&cfg, tr, te, NULL, &m, &err) == MMCR_ERR_ARG);
    /* K = 3: two augmented image views and the caption. */
    tiny_config(&cfg, MMCR_MM_METHOD_MMCR, "");
    cfg.image_views = 2;
    cfg.augment = 1;
    cfg.epochs = 2;
    mmcr_status st = mmcr_mm_train(&cfg, tr, te, NULL, &m, &err);
    CHECK_MSG(st == MMCR_OK, "%s", err.msg);
    CHECK(st != MMCR_OK || isfinite(m.final_loss));
    char p[300];
    snprintf(p, sizeof p, "%s/none.json", dir);
    CHECK(mmcr_mm_read_results(p, &m, &err) == MMCR_ERR_IO);
    CHECK(mmcr_mm_eval_checkpoint(p, te, NULL, &m, &err) != MMCR_OK);
}

int main(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s/mmcr_mm_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    mmcr_pairs tr, te;
    make_pairs(&tr, 48, 0);
    make_pairs(&te, 16, 48); /* the same combinations at other places: held-out pairs */
    test_interleaving();
    test_train(MMCR_MM_METHOD_MMCR, dir, &tr, &te);
    test_train(MMCR_MM_METHOD_CLIP, dir, &tr, &te);
    test_errors(dir, &tr, &te);
    mmcr_pairs_free(&tr);
    mmcr_pairs_free(&te);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_multimodal");
}
