/* The gemojione emoji set as image-text pairs: config/index.json gives each emoji's name,
 * keywords and category; assets/png/<UNICODE>.png its 64 x 64 picture. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmcr/json.h"
#include "mmcr/multimodal.h"

static uint64_t fnv1a64(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

int mmcr_emoji_is_test(const char *key, double test_fraction) {
    const uint64_t cut = (uint64_t)(test_fraction * 1e6 + 0.5);
    return fnv1a64(key) % 1000000u < cut;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "<name>, <kw>, <kw>, ..." */
static char *make_caption(const char *name, const mmcr_json *kw) {
    size_t len = strlen(name) + 1;
    size_t nk = kw && kw->type == MMCR_JSON_ARRAY ? kw->n : 0;
    for (size_t i = 0; i < nk; i++)
        if (kw->items[i].type == MMCR_JSON_STRING) len += 2 + strlen(kw->items[i].str);
    char *c = malloc(len);
    if (!c) return NULL;
    size_t o = (size_t)snprintf(c, len, "%s", name);
    for (size_t i = 0; i < nk; i++)
        if (kw->items[i].type == MMCR_JSON_STRING && kw->items[i].str[0])
            o += (size_t)snprintf(c + o, len - o, ", %s", kw->items[i].str);
    /* Line breaks and tabs would not survive a pair file; captions are word bags anyway. */
    for (char *p = c; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == '\r') *p = ' ';
    return c;
}

static void upper(char *s) {
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z') *s = (char)(*s - 'a' + 'A');
}

mmcr_status mmcr_emoji_load(mmcr_pairs *train, mmcr_pairs *test, const char *dir, int image_size,
                            double test_fraction, mmcr_emoji_info *info, const mmcr_logger *log, mmcr_err *err) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    mmcr_emoji_info inf = {0};
    if (!(test_fraction > 0 && test_fraction < 1))
        return mmcr_err_set(err, MMCR_ERR_ARG, "emoji test fraction %g is outside (0, 1)", test_fraction);
    if (image_size < 1 || image_size > 4096)
        return mmcr_err_set(err, MMCR_ERR_ARG, "image size %d is outside [1, 4096]", image_size);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config/index.json", dir) >= sizeof path)
        return mmcr_err_set(err, MMCR_ERR_ARG, "emoji folder name is too long");
    mmcr_json *root = NULL;
    mmcr_status st = mmcr_json_parse_file(&root, path, err);
    if (st != MMCR_OK) {
        if (st == MMCR_ERR_IO && err) {
            char prev[sizeof err->msg];
            memcpy(prev, err->msg, sizeof prev);
            mmcr_err_set(err, st, "%.300s (the emoji folder must hold config/index.json and assets/png/, as the "
                         "Debian package ruby-gemojione installs them)", prev);
        }
        return st;
    }
    if (root->type != MMCR_JSON_OBJECT) {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': expected a JSON object of emoji, found %s", path,
                          mmcr_json_type_name(root->type));
        mmcr_json_free(&root);
        return st;
    }
    const int n_all = (int)root->n;
    inf.entries = n_all;
    mmcr_pairs all = {0};
    const size_t img_bytes = (size_t)3 * (size_t)image_size * (size_t)image_size;
    char **cats = calloc((size_t)n_all + 1, sizeof(char *));
    uint8_t *is_test = calloc((size_t)n_all + 1, 1);
    all.captions = calloc((size_t)n_all + 1, sizeof(char *));
    all.sources = calloc((size_t)n_all + 1, sizeof(char *));
    all.images.pixels = mmcr_alloc((size_t)(n_all ? n_all : 1) * img_bytes);
    all.images.labels = mmcr_alloc(sizeof(int32_t) * ((size_t)n_all + 1));
    if (!cats || !is_test || !all.captions || !all.sources || !all.images.pixels || !all.images.labels) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for %d emoji", n_all);
        goto done;
    }
    all.images.c = 3;
    all.images.h = all.images.w = image_size;
    int n = 0;
    for (int i = 0; i < n_all; i++) {
        const mmcr_json *e = &root->items[i];
        const char *key = root->keys[i];
        const char *uni = mmcr_json_string(mmcr_json_get(e, "unicode"));
        const char *name = mmcr_json_string(mmcr_json_get(e, "name"));
        const char *cat = mmcr_json_string(mmcr_json_get(e, "category"));
        if (!uni || !uni[0] || !name || !name[0] || !cat || !cat[0] || strchr(uni, '/')) {
            inf.skipped_bad++;
            continue;
        }
        char file[4096], u[256];
        snprintf(u, sizeof u, "%s", uni);
        upper(u);
        if ((size_t)snprintf(file, sizeof file, "%s/assets/png/%s.png", dir, u) >= sizeof file) {
            inf.skipped_bad++;
            continue;
        }
        if (access(file, R_OK) != 0) {
            inf.skipped_missing++;
            continue;
        }
        mmcr_image im;
        mmcr_err e2 = {{0}};
        mmcr_status s2 = mmcr_image_load(&im, file, &e2);
        if (s2 == MMCR_OK)
            s2 = mmcr_image_resize_square(im.pixels, 3, im.h, im.w, all.images.pixels + (size_t)n * img_bytes,
                                          image_size, &e2);
        mmcr_image_free(&im);
        if (s2 == MMCR_ERR_NOMEM) {
            st = mmcr_err_set(err, s2, "%s", e2.msg);
            goto done;
        }
        if (s2 != MMCR_OK) {
            mmcr_logf(log, MMCR_LOG_WARN, "emoji '%s' skipped: %s", key, e2.msg);
            inf.skipped_bad++;
            continue;
        }
        all.captions[n] = make_caption(name, mmcr_json_get(e, "keywords"));
        size_t fl = strlen(file) + 1;
        all.sources[n] = malloc(fl);
        cats[n] = malloc(strlen(cat) + 1);
        if (!all.captions[n] || !all.sources[n] || !cats[n]) {
            all.images.n = n + 1;
            st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for emoji captions");
            goto done;
        }
        memcpy(all.sources[n], file, fl);
        memcpy(cats[n], cat, strlen(cat) + 1);
        is_test[n] = (uint8_t)mmcr_emoji_is_test(key, test_fraction);
        n++;
        all.images.n = n;
    }
    if (n == 0) {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': no usable emoji (%d entries, %d without a PNG)", path, n_all,
                          inf.skipped_missing);
        goto done;
    }
    /* Classes: the sorted distinct categories of the usable entries. */
    {
        char **sorted = malloc(sizeof(char *) * (size_t)n);
        if (!sorted) {
            st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(sorted, cats, sizeof(char *) * (size_t)n);
        qsort(sorted, (size_t)n, sizeof(char *), cmp_str);
        int nc = 0;
        for (int i = 0; i < n; i++)
            if (i == 0 || strcmp(sorted[i], sorted[nc - 1]) != 0) sorted[nc++] = sorted[i];
        all.class_names = calloc((size_t)nc, sizeof(char *));
        if (!all.class_names) {
            free(sorted);
            st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
            goto done;
        }
        all.num_classes = all.images.num_classes = nc;
        for (int c = 0; c < nc; c++) {
            all.class_names[c] = malloc(strlen(sorted[c]) + 1);
            if (!all.class_names[c]) {
                free(sorted);
                st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
                goto done;
            }
            strcpy(all.class_names[c], sorted[c]);
        }
        free(sorted);
        for (int i = 0; i < n; i++) all.images.labels[i] = mmcr_pairs_class_index(&all, cats[i]);
    }
    {
        uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)(n > 0 ? n : 1));
        if (!idx) {
            st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory");
            goto done;
        }
        int ntr = 0, nte = 0;
        for (int i = 0; i < n; i++)
            if (!is_test[i]) idx[ntr++] = (uint32_t)i;
        for (int i = 0; i < n; i++)
            if (is_test[i]) idx[ntr + nte++] = (uint32_t)i;
        if (ntr == 0 || nte == 0) {
            free(idx);
            st = mmcr_err_set(err, MMCR_ERR_ARG, "emoji split with test fraction %g leaves %d training and %d test "
                              "pairs", test_fraction, ntr, nte);
            goto done;
        }
        st = mmcr_pairs_subset(train, &all, idx, ntr, err);
        if (st == MMCR_OK) st = mmcr_pairs_subset(test, &all, idx + ntr, nte, err);
        free(idx);
        if (st != MMCR_OK) goto done;
        inf.n_train = ntr;
        inf.n_test = nte;
    }
    mmcr_logf(log, MMCR_LOG_INFO,
              "emoji: %d entries, %d usable (%d skipped without a PNG, %d unusable), %d classes; split %d train / "
              "%d held out", inf.entries, n, inf.skipped_missing, inf.skipped_bad, all.num_classes, inf.n_train,
              inf.n_test);
done:
    if (cats)
        for (int i = 0; i < n_all; i++) free(cats[i]);
    free(cats);
    free(is_test);
    mmcr_pairs_free(&all);
    mmcr_json_free(&root);
    if (st != MMCR_OK) {
        mmcr_pairs_free(train);
        mmcr_pairs_free(test);
    }
    if (info) *info = inf;
    return st;
}
