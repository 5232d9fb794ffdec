/* IDX reader: exact round trip (plain and gzip), every malformed-file error names the file,
 * and the real Fashion-MNIST files when they are installed. */
#include "mmcr/data.h"
#include "test_util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];
static char made[32][512];
static int n_made;

static const char *tpath(const char *name) {
    MMCR_ASSERT(n_made < 32);
    snprintf(made[n_made], sizeof made[0], "%s/%s", dir, name);
    return made[n_made++];
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes bytes plainly or gzip-compressed; cut > 0 drops that many bytes from the end of the
 * file on disk (for the gzip case: of the compressed stream). */
static void write_file(const char *path, const uint8_t *b, size_t n, int gz, size_t cut) {
    if (!gz) {
        FILE *f = fopen(path, "wb");
        MMCR_ASSERT(f);
        MMCR_ASSERT(fwrite(b, 1, n - cut, f) == n - cut);
        fclose(f);
        return;
    }
    gzFile g = gzopen(path, "wb");
    MMCR_ASSERT(g);
    MMCR_ASSERT(gzwrite(g, b, (unsigned)n) == (int)n);
    gzclose(g);
    if (cut) {
        struct stat st;
        MMCR_ASSERT(stat(path, &st) == 0);
        MMCR_ASSERT(truncate(path, st.st_size - (off_t)cut) == 0);
    }
}

/* An IDX image file: magic, n, h, w, pixels; extra bytes appended when extra > 0. */
static size_t make_images(uint8_t *buf, uint32_t magic, int n, int h, int w, int extra) {
    put_be32(buf, magic);
    put_be32(buf + 4, (uint32_t)n);
    put_be32(buf + 8, (uint32_t)h);
    put_be32(buf + 12, (uint32_t)w);
    size_t k = 16;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) buf[k++] = (uint8_t)(i * 31 + y * 7 + x * 3);
    for (int e = 0; e < extra; e++) buf[k++] = 0xAB;
    return k;
}

static size_t make_labels(uint8_t *buf, int n) {
    put_be32(buf, 0x00000801);
    put_be32(buf + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) buf[8 + i] = (uint8_t)((i * 3) % 7);
    return 8 + (size_t)n;
}

static int check_content(const mmcr_dataset *ds, int n, int h, int w) {
    if (ds->n != n || ds->c != 1 || ds->h != h || ds->w != w || !ds->labels || ds->num_classes != 7) return 0;
    for (int i = 0; i < n; i++) {
        if (ds->labels[i] != (i * 3) % 7) return 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (ds->pixels[((size_t)i * h + y) * w + x] != (uint8_t)(i * 31 + y * 7 + x * 3)) return 0;
    }
    return 1;
}

/* The load fails with status want and the message names path. */
static void expect_error(const char *img, const char *lab, mmcr_status want, const char *path) {
    mmcr_dataset ds;
    mmcr_err err = {{0}};
    mmcr_status st = mmcr_dataset_load_idx(&ds, img, lab, &err);
    CHECK_MSG(st == want, "status %s, expected %s (%s)", mmcr_status_str(st), mmcr_status_str(want), err.msg);
    CHECK_MSG(strstr(err.msg, path) != NULL, "message '%s' does not name '%s'", err.msg, path);
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", "/tmp/mmcr_idx_XXXXXX");
    MMCR_ASSERT(mkdtemp(dir));
    enum { N = 9, H = 3, W = 5 };
    static uint8_t img[16 + N * H * W + 8], lab[8 + N + 8];
    size_t ni = make_images(img, 0x00000803, N, H, W, 0), nl = make_labels(lab, N);

    const char *img_plain = tpath("img-plain"), *lab_plain = tpath("lab-plain");
    const char *img_gz = tpath("img.gz"), *lab_gz = tpath("lab-gz-without-suffix");
    write_file(img_plain, img, ni, 0, 0);
    write_file(lab_plain, lab, nl, 0, 0);
    write_file(img_gz, img, ni, 1, 0);
    write_file(lab_gz, lab, nl, 1, 0);

    /* Exact round trip, whatever the compression (detected by content, not by name). */
    mmcr_dataset ds;
    mmcr_err err = {{0}};
    CHECK(mmcr_dataset_load_idx(&ds, img_plain, lab_plain, &err) == MMCR_OK);
    CHECK(check_content(&ds, N, H, W));
    mmcr_dataset_free(&ds);
    CHECK(ds.pixels == NULL && ds.n == 0);
    CHECK(mmcr_dataset_load_idx(&ds, img_gz, lab_gz, &err) == MMCR_OK);
    CHECK(check_content(&ds, N, H, W));
    mmcr_dataset_free(&ds);
    CHECK(mmcr_dataset_load_idx(&ds, img_gz, lab_plain, &err) == MMCR_OK);
    CHECK(check_content(&ds, N, H, W));
    mmcr_dataset_free(&ds);
    /* Unlabelled. */
    CHECK(mmcr_dataset_load_idx(&ds, img_plain, NULL, &err) == MMCR_OK);
    CHECK(ds.n == N && ds.labels == NULL);
    mmcr_dataset_free(&ds);

    /* Truncated: in the pixel data, in the header, and a gzip stream cut short. */
    const char *t1 = tpath("trunc-data"), *t2 = tpath("trunc-head"), *t3 = tpath("trunc.gz");
    write_file(t1, img, ni, 0, 1);
    write_file(t2, img, 10, 0, 0);
    write_file(t3, img, ni, 1, 6);
    expect_error(t1, lab_plain, MMCR_ERR_FORMAT, t1);
    expect_error(t2, lab_plain, MMCR_ERR_FORMAT, t2);
    expect_error(t3, lab_plain, MMCR_ERR_FORMAT, t3);
    const char *t4 = tpath("trunc-lab");
    write_file(t4, lab, nl, 0, 2);
    expect_error(img_plain, t4, MMCR_ERR_FORMAT, t4);

    /* Wrong magic: labels given as images and the other way round; a 4-d magic. */
    expect_error(lab_plain, lab_plain, MMCR_ERR_FORMAT, lab_plain);
    expect_error(img_plain, img_plain, MMCR_ERR_FORMAT, img_plain);
    static uint8_t bad[16 + N * H * W];
    size_t nb = make_images(bad, 0x00000804, N, H, W, 0);
    const char *t5 = tpath("magic4");
    write_file(t5, bad, nb, 0, 0);
    expect_error(t5, lab_plain, MMCR_ERR_FORMAT, t5);
    /* A zero dimension. */
    nb = make_images(bad, 0x00000803, N, 0, W, 0);
    const char *t6 = tpath("zero-dim");
    write_file(t6, bad, nb, 0, 0);
    expect_error(t6, lab_plain, MMCR_ERR_FORMAT, t6);
    /* Trailing garbage after the data. */
    static uint8_t longer[16 + N * H * W + 8];
    size_t nlong = make_images(longer, 0x00000803, N, H, W, 3);
    const char *t7 = tpath("trailing");
    write_file(t7, longer, nlong, 0, 0);
    expect_error(t7, lab_plain, MMCR_ERR_FORMAT, t7);

    /* Counts differ between images and labels: both files named. */
    static uint8_t lab_short[8 + N];
    size_t nls = make_labels(lab_short, N - 1);
    const char *t8 = tpath("labels-short");
    write_file(t8, lab_short, nls, 0, 0);
    expect_error(img_plain, t8, MMCR_ERR_FORMAT, t8);
    expect_error(img_plain, t8, MMCR_ERR_FORMAT, img_plain);

    /* Missing file. */
    const char *missing = tpath("does-not-exist");
    expect_error(missing, lab_plain, MMCR_ERR_IO, missing);

    /* Directory layout: train as .gz, test plain. */
    const char *tr_i = tpath("train-images-idx3-ubyte.gz"), *tr_l = tpath("train-labels-idx1-ubyte.gz");
    const char *te_i = tpath("t10k-images-idx3-ubyte"), *te_l = tpath("t10k-labels-idx1-ubyte");
    write_file(tr_i, img, ni, 1, 0);
    write_file(tr_l, lab, nl, 1, 0);
    write_file(te_i, img, ni, 0, 0);
    write_file(te_l, lab, nl, 0, 0);
    CHECK(mmcr_dataset_load_mnist_dir(&ds, dir, "train", &err) == MMCR_OK);
    CHECK(check_content(&ds, N, H, W));
    mmcr_dataset_free(&ds);
    CHECK(mmcr_dataset_load_mnist_dir(&ds, dir, "test", &err) == MMCR_OK);
    CHECK(check_content(&ds, N, H, W));
    mmcr_dataset_free(&ds);
    CHECK(mmcr_dataset_load_mnist_dir(&ds, dir, "valid", &err) == MMCR_ERR_ARG);
    CHECK(strstr(err.msg, "valid") != NULL);
    CHECK(mmcr_dataset_load_mnist_dir(&ds, "/nonexistent-mmcr-dir", "train", &err) == MMCR_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent-mmcr-dir/train-images-idx3-ubyte") != NULL);

    for (int i = 0; i < n_made; i++) unlink(made[i]);
    CHECK(rmdir(dir) == 0);

    /* The real Fashion-MNIST, when installed. */
    const char *fm = "/usr/share/datasets/fashion-mnist";
    if (access(fm, R_OK) == 0) {
        const int want_n[2] = {60000, 10000};
        const char *splits[2] = {"train", "test"};
        for (int s = 0; s < 2; s++) {
            mmcr_status st = mmcr_dataset_load_mnist_dir(&ds, fm, splits[s], &err);
            CHECK_MSG(st == MMCR_OK, "%s", err.msg);
            if (st) continue;
            CHECK(ds.n == want_n[s] && ds.c == 1 && ds.h == 28 && ds.w == 28 && ds.num_classes == 10);
            int hist[10] = {0}, bad_label = 0;
            for (int i = 0; i < ds.n; i++) {
                if (ds.labels[i] < 0 || ds.labels[i] > 9) bad_label = 1;
                else hist[ds.labels[i]]++;
            }
            CHECK(!bad_label);
            for (int k = 0; k < 10; k++) CHECK(hist[k] == want_n[s] / 10); /* balanced classes */
            float mean, sd;
            mmcr_dataset_stats(&ds, &mean, &sd);
            if (s == 0) { /* the published Fashion-MNIST training statistics */
                CHECK_CLOSE(mean, 0.2860, 5e-4, 0);
                CHECK_CLOSE(sd, 0.3530, 5e-4, 0);
            }
            mmcr_dataset_free(&ds);
        }
    } else {
        printf("fashion-mnist not installed: real-data checks skipped\n");
    }
    return test_finish("test_idx");
}
