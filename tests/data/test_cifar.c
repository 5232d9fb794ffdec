/* CIFAR-10/100 binary reader: records, concatenation of files, gzip, and size/label errors. */
#include "mmcr/data.h"
#include "test_util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define PIX 3072

static char dir[64];
static char made[16][512];
static int n_made;

static const char *tpath(const char *name) {
    MMCR_ASSERT(n_made < 16);
    snprintf(made[n_made], sizeof made[0], "%s/%s", dir, name);
    return made[n_made++];
}

static uint8_t pixel(int rec, int k) { return (uint8_t)(rec * 13 + k * 7 + (k >> 10)); }

/* n records numbered from first; head = 1 (CIFAR-10) or 2 (CIFAR-100); extra bytes appended. */
static void write_cifar(const char *path, int first, int n, int head, int extra, int gz, int bad_label) {
    size_t rec = (size_t)head + PIX, size = (size_t)n * rec + (size_t)extra;
    uint8_t *b = calloc(size ? size : 1, 1);
    MMCR_ASSERT(b);
    for (int r = 0; r < n; r++) {
        uint8_t *p = b + (size_t)r * rec;
        int i = first + r;
        if (head == 2) {
            p[0] = (uint8_t)(i % 20);
            p[1] = (uint8_t)((i * 7) % 100);
        } else {
            p[0] = (uint8_t)(i % 10);
        }
        for (int k = 0; k < PIX; k++) p[head + k] = pixel(i, k);
    }
    if (bad_label) b[head - 1] = head == 2 ? 100 : 10;
    if (gz) {
        gzFile g = gzopen(path, "wb");
        MMCR_ASSERT(g);
        MMCR_ASSERT(gzwrite(g, b, (unsigned)size) == (int)size);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        MMCR_ASSERT(f);
        MMCR_ASSERT(fwrite(b, 1, size, f) == size);
        fclose(f);
    }
    free(b);
}

static int check_records(const mmcr_dataset *ds, int n, int cifar100) {
    if (ds->n != n || ds->c != 3 || ds->h != 32 || ds->w != 32 || !ds->labels) return 0;
    if (ds->num_classes != (cifar100 ? 100 : 10)) return 0;
    for (int i = 0; i < n; i++) {
        if (ds->labels[i] != (cifar100 ? (i * 7) % 100 : i % 10)) return 0;
        for (int k = 0; k < PIX; k++)
            if (ds->pixels[(size_t)i * PIX + k] != pixel(i, k)) return 0;
    }
    return 1;
}

static void expect_error(const char *const *paths, int cifar100, const char *named) {
    mmcr_dataset ds;
    mmcr_err err = {{0}};
    mmcr_status st = mmcr_dataset_load_cifar(&ds, paths, cifar100, &err);
    CHECK_MSG(st == MMCR_ERR_FORMAT || st == MMCR_ERR_IO, "status %s", mmcr_status_str(st));
    CHECK_MSG(strstr(err.msg, named) != NULL, "message '%s' does not name '%s'", err.msg, named);
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", "/tmp/mmcr_cifar_XXXXXX");
    MMCR_ASSERT(mkdtemp(dir));
    mmcr_dataset ds;
    mmcr_err err = {{0}};

    /* CIFAR-10: one file, then two files concatenated (one of them gzip). */
    const char *a = tpath("data_batch_1.bin"), *b = tpath("data_batch_2.bin.gz");
    write_cifar(a, 0, 5, 1, 0, 0, 0);
    write_cifar(b, 5, 3, 1, 0, 1, 0);
    const char *one[] = {a, NULL}, *two[] = {a, b, NULL};
    CHECK(mmcr_dataset_load_cifar(&ds, one, 0, &err) == MMCR_OK);
    CHECK(check_records(&ds, 5, 0));
    mmcr_dataset_free(&ds);
    CHECK(mmcr_dataset_load_cifar(&ds, two, 0, &err) == MMCR_OK);
    CHECK(check_records(&ds, 8, 0));
    mmcr_dataset_free(&ds);

    /* CIFAR-100: coarse + fine, the fine label is kept. */
    const char *c = tpath("train.bin");
    write_cifar(c, 0, 6, 2, 0, 0, 0);
    const char *hundred[] = {c, NULL};
    CHECK(mmcr_dataset_load_cifar(&ds, hundred, 1, &err) == MMCR_OK);
    CHECK(check_records(&ds, 6, 1));
    mmcr_dataset_free(&ds);

    /* A CIFAR-100 file read as CIFAR-10: 6 * 3074 bytes is not a multiple of 3073. */
    expect_error(hundred, 0, c);
    /* One byte too many, an empty file, a bad label, a missing file (named even when second). */
    const char *d = tpath("extra.bin"), *e = tpath("empty.bin"), *f = tpath("badlabel.bin");
    write_cifar(d, 0, 2, 1, 1, 0, 0);
    write_cifar(e, 0, 0, 1, 0, 0, 0);
    write_cifar(f, 0, 2, 2, 0, 0, 1);
    const char *pd[] = {a, d, NULL}, *pe[] = {e, NULL}, *pf[] = {f, NULL};
    expect_error(pd, 0, d);
    expect_error(pe, 0, e);
    expect_error(pf, 1, f);
    const char *g = tpath("missing.bin");
    const char *pg[] = {a, g, NULL};
    expect_error(pg, 0, g);
    /* A truncated gzip stream. */
    const char *h = tpath("cut.bin.gz");
    write_cifar(h, 0, 4, 1, 0, 1, 0);
    CHECK(truncate(h, 200) == 0);
    const char *ph[] = {h, NULL};
    expect_error(ph, 0, h);
    /* No files at all. */
    const char *none[] = {NULL};
    CHECK(mmcr_dataset_load_cifar(&ds, none, 0, &err) == MMCR_ERR_ARG);

    for (int i = 0; i < n_made; i++) unlink(made[i]);
    CHECK(rmdir(dir) == 0);
    return test_finish("test_cifar");
}
