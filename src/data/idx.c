/* IDX readers (MNIST / Fashion-MNIST): big-endian header, unsigned-byte payload, plain or gzip. */
#include "mmcr/data.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data/gzio.h"

#define IDX_UBYTE 0x08

/* Reads the magic and ndim big-endian dimensions; checks type ubyte and the expected rank. */
static mmcr_status idx_header(gzFile f, const char *path, int ndim, const char *kind, uint32_t *dims, mmcr_err *err) {
    uint8_t h[4 + 4 * 3];
    mmcr_status st = mmcr_gz_read_exact(f, h, 4, path, "the IDX magic", err);
    if (st) return st;
    uint32_t magic = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    uint32_t want = (uint32_t)IDX_UBYTE << 8 | (uint32_t)ndim;
    if (magic != want)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' is not an IDX %s file (magic 0x%08x, expected 0x%08x)", path,
                            kind, magic, want);
    st = mmcr_gz_read_exact(f, h + 4, 4 * (size_t)ndim, path, "the IDX dimensions", err);
    if (st) return st;
    for (int d = 0; d < ndim; d++) {
        const uint8_t *b = h + 4 + 4 * d;
        dims[d] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (dims[d] == 0 || dims[d] > INT_MAX)
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': IDX dimension %d is %u (must be 1..%d)", path, d,
                                dims[d], INT_MAX);
    }
    return MMCR_OK;
}

static mmcr_status load_images(mmcr_dataset *ds, const char *path, mmcr_err *err) {
    gzFile f = NULL;
    mmcr_status st = mmcr_gz_open(&f, path, err);
    if (st) return st;
    uint32_t d[3];
    st = idx_header(f, path, 3, "images", d, err);
    if (!st) {
        uint64_t bytes = (uint64_t)d[0] * d[1] * d[2]; /* each <= 2^31: no overflow before the check */
        if ((uint64_t)d[1] * d[2] > INT_MAX || bytes > (uint64_t)SIZE_MAX / 2) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': %u images of %ux%u is too large", path, d[0], d[1], d[2]);
        } else {
            ds->pixels = mmcr_alloc_or_err((size_t)bytes, err, path);
            if (!ds->pixels) st = MMCR_ERR_NOMEM;
        }
        if (!st) st = mmcr_gz_read_exact(f, ds->pixels, (size_t)bytes, path, "the image data", err);
        if (!st) st = mmcr_gz_expect_eof(f, path, err);
        if (!st) {
            ds->n = (int)d[0];
            ds->c = 1;
            ds->h = (int)d[1];
            ds->w = (int)d[2];
        }
    }
    gzclose(f);
    return st;
}

static mmcr_status load_labels(mmcr_dataset *ds, const char *path, const char *images_path, mmcr_err *err) {
    gzFile f = NULL;
    mmcr_status st = mmcr_gz_open(&f, path, err);
    if (st) return st;
    uint32_t n = 0;
    uint8_t *raw = NULL;
    st = idx_header(f, path, 1, "labels", &n, err);
    if (!st && (int)n != ds->n)
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' has %u labels but '%s' has %d images", path, n, images_path,
                          ds->n);
    if (!st) {
        raw = mmcr_alloc_or_err(n, err, path);
        ds->labels = mmcr_alloc_or_err((size_t)n * sizeof *ds->labels, err, path);
        if (!raw || !ds->labels) st = MMCR_ERR_NOMEM;
    }
    if (!st) st = mmcr_gz_read_exact(f, raw, n, path, "the label data", err);
    if (!st) st = mmcr_gz_expect_eof(f, path, err);
    if (!st) {
        int maxl = 0;
        for (uint32_t i = 0; i < n; i++) {
            ds->labels[i] = raw[i];
            if (raw[i] > maxl) maxl = raw[i];
        }
        ds->num_classes = maxl + 1;
    }
    mmcr_free(raw);
    gzclose(f);
    return st;
}

mmcr_status mmcr_dataset_load_idx(mmcr_dataset *ds, const char *images_path, const char *labels_path, mmcr_err *err) {
    memset(ds, 0, sizeof *ds);
    if (!images_path) return mmcr_err_set(err, MMCR_ERR_ARG, "no IDX images file given");
    mmcr_status st = load_images(ds, images_path, err);
    if (!st && labels_path) st = load_labels(ds, labels_path, images_path, err);
    if (st) mmcr_dataset_free(ds);
    return st;
}

/* dir/<prefix>-<kind>-ubyte.gz, else dir/<prefix>-<kind>-ubyte; the gzip name when neither exists. */
static mmcr_status mnist_path(char *out, size_t cap, const char *dir, const char *prefix, const char *kind,
                              mmcr_err *err) {
    int n = snprintf(out, cap, "%s/%s-%s-ubyte.gz", dir, prefix, kind);
    if (n < 0 || (size_t)n >= cap) return mmcr_err_set(err, MMCR_ERR_ARG, "data directory path too long: '%s'", dir);
    if (access(out, R_OK) == 0) return MMCR_OK;
    out[n - 3] = '\0';
    if (access(out, R_OK) == 0) return MMCR_OK;
    return mmcr_err_set(err, MMCR_ERR_IO, "cannot find '%s' or '%s.gz' for the %s %s", out, out, prefix, kind);
}

mmcr_status mmcr_dataset_load_mnist_dir(mmcr_dataset *ds, const char *dir, const char *split, mmcr_err *err) {
    memset(ds, 0, sizeof *ds);
    const char *prefix;
    if (split && strcmp(split, "train") == 0) prefix = "train";
    else if (split && strcmp(split, "test") == 0) prefix = "t10k";
    else return mmcr_err_set(err, MMCR_ERR_ARG, "unknown split '%s' (expected train or test)", split ? split : "");
    char img[4096], lab[4096];
    mmcr_status st = mnist_path(img, sizeof img, dir, prefix, "images-idx3", err);
    if (!st) st = mnist_path(lab, sizeof lab, dir, prefix, "labels-idx1", err);
    if (st) return st;
    return mmcr_dataset_load_idx(ds, img, lab, err);
}
