/* Image-text pair files: `path<TAB>caption[<TAB>label]`, one pair per line (docs/multimodal.md).
 * Every error names the file and the line, so a bad row in a file of thousands is found at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/io.h"
#include "mmcr/multimodal.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void free_strs(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void mmcr_pairs_free(mmcr_pairs *p) {
    if (!p) return;
    free_strs(p->captions, p->images.n);
    free_strs(p->sources, p->images.n);
    free_strs(p->class_names, p->num_classes);
    mmcr_dataset_free(&p->images);
    memset(p, 0, sizeof *p);
}

int mmcr_pairs_class_index(const mmcr_pairs *p, const char *name) {
    for (int i = 0; i < p->num_classes; i++)
        if (strcmp(p->class_names[i], name) == 0) return i;
    return -1;
}

static int only_space(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n' && *s != '\f' && *s != '\v') return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Growable list of parsed rows before the images are decoded. */
typedef struct rows {
    int n, cap;
    char **path, **caption, **label;
    long *line;
} rows;

static int rows_push(rows *r, char *path, char *caption, char *label, long line) {
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        char **a = realloc(r->path, sizeof(char *) * (size_t)cap);
        if (a) r->path = a;
        char **b = realloc(r->caption, sizeof(char *) * (size_t)cap);
        if (b) r->caption = b;
        char **c = realloc(r->label, sizeof(char *) * (size_t)cap);
        if (c) r->label = c;
        long *d = realloc(r->line, sizeof(long) * (size_t)cap);
        if (d) r->line = d;
        if (!a || !b || !c || !d) return 0;
        r->cap = cap;
    }
    r->path[r->n] = path;
    r->caption[r->n] = caption;
    r->label[r->n] = label;
    r->line[r->n] = line;
    r->n++;
    return 1;
}

static void rows_free(rows *r) {
    for (int i = 0; i < r->n; i++) {
        free(r->path[i]);
        free(r->caption[i]);
        free(r->label[i]);
    }
    free(r->path);
    free(r->caption);
    free(r->label);
    free(r->line);
    memset(r, 0, sizeof *r);
}

/* The pair file's folder joined with a relative path (absolute paths are kept). */
static char *resolve(const char *file, const char *rel) {
    if (rel[0] == '/') return dup_str(rel);
    const char *slash = strrchr(file, '/');
    size_t dl = slash ? (size_t)(slash - file) + 1 : 0;
    size_t rl = strlen(rel);
    char *out = malloc(dl + rl + 1);
    if (!out) return NULL;
    memcpy(out, file, dl);
    memcpy(out + dl, rel, rl + 1);
    return out;
}

static mmcr_status parse_file(rows *r, const char *path, mmcr_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot open pair file '%s': %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int seen_data = 0, has_label = -1;
    mmcr_status st = MMCR_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)len != strlen(line)) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "%s:%ld: the line contains a NUL byte", path, lineno);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (line[0] == '#' || only_space(line)) continue;
        char *field[4] = {0};
        int nf = 0;
        char *p = line;
        for (;;) {
            char *tab = strchr(p, '\t');
            if (nf < 4) field[nf] = p;
            nf++;
            if (!tab) break;
            *tab = '\0';
            p = tab + 1;
        }
        if (!seen_data && nf >= 2 && strcmp(field[0], "path") == 0 && strcmp(field[1], "caption") == 0) {
            seen_data = 1; /* header line */
            continue;
        }
        seen_data = 1;
        if (nf < 2) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "%s:%ld: expected 'path<TAB>caption', found no tab", path,
                              lineno);
            break;
        }
        if (nf > 3) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT,
                              "%s:%ld: %d tab-separated fields, expected 2 or 3 (path, caption, label); captions "
                              "cannot contain tabs", path, lineno, nf);
            break;
        }
        if (only_space(field[0])) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "%s:%ld: empty image path", path, lineno);
            break;
        }
        if (only_space(field[1])) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "%s:%ld: empty caption", path, lineno);
            break;
        }
        if (nf == 3 && only_space(field[2])) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "%s:%ld: empty label (third field)", path, lineno);
            break;
        }
        int lab = nf == 3;
        if (has_label < 0) has_label = lab;
        if (has_label != lab) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "%s:%ld: %s a label but earlier lines %s", path, lineno,
                              lab ? "has" : "lacks", lab ? "do not" : "do");
            break;
        }
        char *rp = resolve(path, field[0]), *cp = dup_str(field[1]), *lp = lab ? dup_str(field[2]) : NULL;
        if (!rp || !cp || (lab && !lp) || !rows_push(r, rp, cp, lp, lineno)) {
            free(rp);
            free(cp);
            free(lp);
            st = mmcr_err_set(err, MMCR_ERR_NOMEM, "%s:%ld: out of memory", path, lineno);
            break;
        }
    }
    if (st == MMCR_OK && ferror(f)) st = mmcr_err_set(err, MMCR_ERR_IO, "error reading '%s'", path);
    if (st == MMCR_OK && r->n == 0) st = mmcr_err_set(err, MMCR_ERR_FORMAT, "%s: no pairs in the file", path);
    free(line);
    fclose(f);
    return st;
}

/* Sorted unique labels -> class_names and per-pair indices. */
static mmcr_status build_classes(mmcr_pairs *out, char **labels, int n, mmcr_err *err) {
    char **sorted = malloc(sizeof(char *) * (size_t)n);
    if (!sorted) return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the class list");
    memcpy(sorted, labels, sizeof(char *) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(char *), cmp_str);
    int nc = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || strcmp(sorted[i], sorted[i - 1]) != 0) sorted[nc++] = sorted[i];
    out->class_names = calloc((size_t)nc, sizeof(char *));
    out->images.labels = mmcr_alloc(sizeof(int32_t) * (size_t)n);
    if (!out->class_names || !out->images.labels) {
        free(sorted);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the class list");
    }
    out->num_classes = nc;
    for (int i = 0; i < nc; i++)
        if (!(out->class_names[i] = dup_str(sorted[i]))) {
            free(sorted);
            return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory for the class list");
        }
    free(sorted);
    out->images.num_classes = nc;
    for (int i = 0; i < n; i++) {
        /* Binary search in the sorted class names. */
        int lo = 0, hi = nc - 1, found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2, c = strcmp(labels[i], out->class_names[mid]);
            if (c == 0) {
                found = mid;
                break;
            }
            if (c < 0) hi = mid - 1;
            else lo = mid + 1;
        }
        MMCR_ASSERT(found >= 0);
        out->images.labels[i] = found;
    }
    return MMCR_OK;
}

mmcr_status mmcr_pairs_load_tsv(mmcr_pairs *out, const char *path, int image_size, const mmcr_logger *log,
                                mmcr_err *err) {
    memset(out, 0, sizeof *out);
    if (image_size < 1 || image_size > 4096)
        return mmcr_err_set(err, MMCR_ERR_ARG, "image size %d is outside [1, 4096]", image_size);
    rows r = {0};
    mmcr_status st = parse_file(&r, path, err);
    if (st != MMCR_OK) goto fail;
    const int n = r.n;
    const size_t img_bytes = (size_t)3 * (size_t)image_size * (size_t)image_size;
    out->images.pixels = mmcr_alloc((size_t)n * img_bytes);
    out->captions = calloc((size_t)n, sizeof(char *));
    out->sources = calloc((size_t)n, sizeof(char *));
    if (!out->images.pixels || !out->captions || !out->sources) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "%s: out of memory for %d images", path, n);
        goto fail;
    }
    out->images.c = 3;
    out->images.h = out->images.w = image_size;
    for (int i = 0; i < n; i++) {
        mmcr_image im;
        mmcr_err e2 = {{0}};
        st = mmcr_image_load(&im, r.path[i], &e2);
        if (st == MMCR_OK) st = mmcr_image_resize_square(im.pixels, 3, im.h, im.w, out->images.pixels + (size_t)i * img_bytes,
                                                         image_size, &e2);
        mmcr_image_free(&im);
        if (st != MMCR_OK) {
            mmcr_err_set(err, st, "%s:%ld: %s", path, r.line[i], e2.msg);
            goto fail;
        }
        /* Ownership moves from the row list to the pairs. */
        out->captions[i] = r.caption[i];
        out->sources[i] = r.path[i];
        r.caption[i] = r.path[i] = NULL;
        out->images.n = i + 1;
    }
    if (r.label[0]) {
        st = build_classes(out, r.label, n, err);
        if (st != MMCR_OK) goto fail;
    }
    mmcr_logf(log, MMCR_LOG_INFO, "read %d pairs from '%s' (%d classes)", n, path, out->num_classes);
    rows_free(&r);
    return MMCR_OK;
fail:
    /* The caption/source arrays are filled up to images.n; mmcr_pairs_free frees those. */
    rows_free(&r);
    mmcr_pairs_free(out);
    return st;
}

mmcr_status mmcr_pairs_subset(mmcr_pairs *out, const mmcr_pairs *src, const uint32_t *idx, int n, mmcr_err *err) {
    memset(out, 0, sizeof *out);
    mmcr_status st = mmcr_dataset_subset(&out->images, &src->images, idx, n, err);
    if (st != MMCR_OK) return st;
    int ok = 1;
    out->captions = calloc((size_t)(n ? n : 1), sizeof(char *));
    out->sources = calloc((size_t)(n ? n : 1), sizeof(char *));
    ok = out->captions && out->sources;
    for (int i = 0; ok && i < n; i++) {
        out->captions[i] = dup_str(src->captions[idx[i]]);
        out->sources[i] = dup_str(src->sources[idx[i]]);
        ok = out->captions[i] && out->sources[i];
    }
    if (ok && src->num_classes > 0) {
        out->class_names = calloc((size_t)src->num_classes, sizeof(char *));
        ok = out->class_names != NULL;
        if (ok) out->num_classes = src->num_classes;
        for (int i = 0; ok && i < src->num_classes; i++) ok = (out->class_names[i] = dup_str(src->class_names[i])) != NULL;
    }
    if (!ok) {
        mmcr_pairs_free(out);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory copying %d pairs", n);
    }
    return MMCR_OK;
}

mmcr_status mmcr_pairs_write_tsv(const mmcr_pairs *p, const char *path, mmcr_err *err) {
    for (int i = 0; i < p->images.n; i++) {
        if (strpbrk(p->captions[i], "\t\n\r"))
            return mmcr_err_set(err, MMCR_ERR_ARG, "pair %d: the caption holds a tab or line break, which the "
                                "pair-file format cannot store", i);
        if (strpbrk(p->sources[i], "\t\n\r"))
            return mmcr_err_set(err, MMCR_ERR_ARG, "pair %d: the image path holds a tab or line break", i);
    }
    mmcr_atomic_file af;
    mmcr_status st = mmcr_atomic_open(&af, path, err);
    if (st != MMCR_OK) return st;
    const int lab = p->images.labels != NULL && p->num_classes > 0;
    fprintf(af.f, "# image-text pairs: path<TAB>caption%s (docs/multimodal.md)\n", lab ? "<TAB>label" : "");
    fprintf(af.f, "path\tcaption%s\n", lab ? "\tlabel" : "");
    for (int i = 0; i < p->images.n; i++) {
        /* A leading '#' would read back as a comment. */
        const char *pre = p->sources[i][0] == '#' ? "./" : "";
        fprintf(af.f, "%s%s\t%s", pre, p->sources[i], p->captions[i]);
        if (lab) fprintf(af.f, "\t%s", p->class_names[p->images.labels[i]]);
        fputc('\n', af.f);
    }
    return mmcr_atomic_commit(&af, err);
}
