/* .npy reader/writer and atomic files: round trips for every dtype and 0-3 dimensions, byte-exact
 * header layout, corrupt/truncated/foreign files with clear errors, and atomic replacement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmcr/io.h"
#include "test_util.h"

static char tmpdir[256];

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    MMCR_ASSERT(f);
    MMCR_ASSERT(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static size_t read_bytes(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* A v1 file with the given header text (padded to 64 with spaces + '\n') and data bytes. */
static size_t make_npy(unsigned char *out, int version, const char *dict, const void *data, size_t nbytes) {
    size_t pre = version == 1 ? 10 : 12, dl = strlen(dict), hl = dl + 1;
    hl += (64 - (pre + hl) % 64) % 64;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)version;
    out[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) out[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(out + pre, dict, dl);
    memset(out + pre + dl, ' ', hl - dl - 1);
    out[pre + hl - 1] = '\n';
    if (nbytes) memcpy(out + pre + hl, data, nbytes);
    return pre + hl + nbytes;
}

static mmcr_status read_expect(const char *path, mmcr_status want, const char *needle) {
    mmcr_npy a;
    mmcr_err err = {{0}};
    mmcr_status st = mmcr_npy_read(&a, path, &err);
    CHECK_MSG(st == want, "%s: status %s, want %s (%s)", path, mmcr_status_str(st), mmcr_status_str(want), err.msg);
    if (st != MMCR_OK) {
        CHECK(a.data == NULL);
        CHECK_MSG(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
        if (needle) CHECK_MSG(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    }
    mmcr_npy_free(&a);
    return st;
}

static void test_round_trips(void) {
    const mmcr_dtype types[] = {MMCR_F32, MMCR_F64, MMCR_U8, MMCR_I32, MMCR_I64};
    const int64_t shapes[][3] = {{0, 0, 0}, {7, 0, 0}, {3, 5, 0}, {2, 3, 4}, {0, 4, 0}};
    const int ndims[] = {0, 1, 2, 3, 2};
    unsigned char src[256], file[2048];
    for (int i = 0; i < 256; i++) src[i] = (unsigned char)(i * 37 + 11);
    for (int t = 0; t < 5; t++) {
        for (int s = 0; s < 5; s++) {
            const char *p = tpath("rt.npy");
            mmcr_err err;
            CHECK_MSG(mmcr_npy_write(p, types[t], ndims[s], shapes[s], src, &err) == MMCR_OK, "%s", err.msg);
            mmcr_npy a;
            CHECK_MSG(mmcr_npy_read(&a, p, &err) == MMCR_OK, "%s", err.msg);
            CHECK(a.dtype == types[t] && a.ndim == ndims[s]);
            size_t count = 1;
            for (int d = 0; d < ndims[s]; d++) {
                CHECK(a.shape[d] == shapes[s][d]);
                count *= (size_t)shapes[s][d];
            }
            size_t nb = count * mmcr_dtype_size(types[t]);
            CHECK(nb <= sizeof src);
            CHECK(a.data != NULL && memcmp(a.data, src, nb) == 0);
            /* header padded so that data starts on a 64-byte boundary, file size exact */
            size_t fn = read_bytes(p, file, sizeof file);
            CHECK(fn >= 64 && (fn - nb) % 64 == 0 && file[fn - nb - 1] == '\n');
            mmcr_npy_free(&a);
            CHECK(a.data == NULL);
        }
    }
    /* exact header text, as numpy writes it */
    const int64_t sh[] = {24, 5};
    double d[120] = {0};
    CHECK(mmcr_npy_write(tpath("h.npy"), MMCR_F64, 2, sh, d, NULL) == MMCR_OK);
    size_t fn = read_bytes(tpath("h.npy"), file, sizeof file);
    CHECK(fn == 128 + 960);
    CHECK(memcmp(file, "\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (24, 5), }", 10 + 60) == 0);
    const int64_t sh1[] = {5};
    CHECK(mmcr_npy_write(tpath("h1.npy"), MMCR_U8, 1, sh1, src, NULL) == MMCR_OK);
    fn = read_bytes(tpath("h1.npy"), file, sizeof file);
    CHECK(strstr((char *)file + 10, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }") == (char *)file + 10);
    CHECK(mmcr_dtype_size(MMCR_F32) == 4 && mmcr_dtype_size(MMCR_F64) == 8 && mmcr_dtype_size(MMCR_U8) == 1 &&
          mmcr_dtype_size(MMCR_I32) == 4 && mmcr_dtype_size(MMCR_I64) == 8);
}

/* Headers written by other tools: key order, spacing, version 2, no trailing comma. */
static void test_foreign_headers(void) {
    unsigned char f[1024];
    float v[6] = {1, 2, 3, 4, 5, 6};
    size_t n = make_npy(f, 2, "{'shape':(2,3),'fortran_order':False,'descr':'<f4'}", v, sizeof v);
    write_bytes(tpath("v2.npy"), f, n);
    mmcr_npy a;
    mmcr_err err;
    CHECK_MSG(mmcr_npy_read(&a, tpath("v2.npy"), &err) == MMCR_OK, "%s", err.msg);
    CHECK(a.dtype == MMCR_F32 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && ((float *)a.data)[5] == 6.0f);
    mmcr_npy_free(&a);
    n = make_npy(f, 1, "{\"descr\": \"<i8\", \"fortran_order\": False, \"shape\": (1, ), }", v, 8);
    write_bytes(tpath("dq.npy"), f, n);
    CHECK(read_expect(tpath("dq.npy"), MMCR_OK, NULL) == MMCR_OK);
    /* the fixtures' own files */
    const char *fx = getenv("MMCR_FIXTURES");
    if (fx) {
        char p[1024];
        snprintf(p, sizeof p, "%s/mmcr-loss/p8_k2_d16/y.npy", fx);
        CHECK_MSG(mmcr_npy_read(&a, p, &err) == MMCR_OK, "%s", err.msg);
        CHECK(a.dtype == MMCR_F64 && a.ndim == 2 && a.shape[0] == 16 && a.shape[1] == 16);
        mmcr_npy_free(&a);
    }
}

static void test_corrupt(void) {
    unsigned char f[1024], g[1024];
    double v[4] = {1, 2, 3, 4};
    size_t n = make_npy(f, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", v, sizeof v);

    read_expect(tpath("missing.npy"), MMCR_ERR_IO, "cannot open");
    write_bytes(tpath("empty.npy"), f, 0);
    read_expect(tpath("empty.npy"), MMCR_ERR_FORMAT, "not a .npy");
    memcpy(g, f, n);
    g[1] = 'X';
    write_bytes(tpath("magic.npy"), g, n);
    read_expect(tpath("magic.npy"), MMCR_ERR_FORMAT, "magic");
    write_bytes(tpath("text.npy"), "hello world, not numpy", 22);
    read_expect(tpath("text.npy"), MMCR_ERR_FORMAT, "magic");
    memcpy(g, f, n);
    g[6] = 3;
    write_bytes(tpath("ver.npy"), g, n);
    read_expect(tpath("ver.npy"), MMCR_ERR_FORMAT, "version");
    /* truncated: in the header, and in the data */
    write_bytes(tpath("trunc_h.npy"), f, 40);
    read_expect(tpath("trunc_h.npy"), MMCR_ERR_FORMAT, "truncated");
    write_bytes(tpath("trunc_d.npy"), f, n - 3);
    read_expect(tpath("trunc_d.npy"), MMCR_ERR_FORMAT, "truncated");
    /* trailing bytes */
    memcpy(g, f, n);
    g[n] = 0;
    write_bytes(tpath("trail.npy"), g, n + 1);
    read_expect(tpath("trail.npy"), MMCR_ERR_FORMAT, "trailing");
    /* header length beyond the file */
    memcpy(g, f, n);
    g[8] = 0xff;
    g[9] = 0x7f;
    write_bytes(tpath("hlen.npy"), g, n);
    read_expect(tpath("hlen.npy"), MMCR_ERR_FORMAT, "header");

    struct {
        const char *dict, *needle;
        mmcr_status st;
    } cases[] = {
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", "fortran_order", MMCR_ERR_FORMAT},
        {"{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }", "big-endian", MMCR_ERR_FORMAT},
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (2, 1), }", "dtype", MMCR_ERR_FORMAT},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (16,), }", "dtype", MMCR_ERR_FORMAT},
        {"{'descr': '|f8', 'fortran_order': False, 'shape': (2, 2), }", "byte order", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'shape': (2, 2), }", "fortran_order", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", "unexpected key", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, -2), }", "malformed", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2 2), }", "malformed", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4), }", "malformed", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2, 2), }", "malformed", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), } junk", "malformed", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", "truncated", MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", "overflow",
         MMCR_ERR_FORMAT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", "malformed", MMCR_ERR_FORMAT},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (8,), }", NULL, MMCR_OK}, /* same bytes, other dtype */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        n = make_npy(g, 1, cases[i].dict, v, sizeof v);
        write_bytes(tpath("case.npy"), g, n);
        read_expect(tpath("case.npy"), cases[i].st, cases[i].needle);
    }
}

static void test_atomic(void) {
    mmcr_err err;
    const char *p = tpath("atomic.bin");
    unsigned char buf[64];
    write_bytes(p, "old content", 11);
    /* commit replaces the content */
    mmcr_atomic_file af;
    CHECK(mmcr_atomic_open(&af, p, &err) == MMCR_OK);
    CHECK(strncmp(af.tmp, p, strlen(p)) == 0); /* temp file next to the target */
    fputs("new", af.f);
    CHECK(read_bytes(p, buf, sizeof buf) == 11); /* untouched until commit */
    CHECK(mmcr_atomic_commit(&af, &err) == MMCR_OK);
    CHECK(read_bytes(p, buf, sizeof buf) == 3 && memcmp(buf, "new", 3) == 0);
    CHECK(access(af.tmp, F_OK) != 0 || af.tmp[0] == 0);
    /* abort leaves the old file and no temp file */
    CHECK(mmcr_atomic_open(&af, p, &err) == MMCR_OK);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", af.tmp);
    fputs("partial", af.f);
    mmcr_atomic_abort(&af);
    CHECK(read_bytes(p, buf, sizeof buf) == 3 && memcmp(buf, "new", 3) == 0);
    CHECK(access(tmp, F_OK) != 0);
    /* a temp file that vanished before commit (as if the write failed): error, old file intact */
    CHECK(mmcr_atomic_open(&af, p, &err) == MMCR_OK);
    snprintf(tmp, sizeof tmp, "%s", af.tmp);
    fputs("lost", af.f);
    unlink(tmp);
    CHECK(mmcr_atomic_commit(&af, &err) == MMCR_ERR_IO);
    CHECK(strstr(err.msg, p) != NULL);
    CHECK(read_bytes(p, buf, sizeof buf) == 3 && memcmp(buf, "new", 3) == 0);
    /* a missing folder: clear error, nothing created */
    const char *bad = tpath("no/such/dir/out.npy");
    CHECK(mmcr_atomic_open(&af, bad, &err) == MMCR_ERR_IO);
    CHECK(strstr(err.msg, bad) != NULL);
    const int64_t sh[] = {2};
    double v[2] = {1, 2};
    CHECK(mmcr_npy_write(bad, MMCR_F64, 1, sh, v, &err) == MMCR_ERR_IO);
    CHECK(strstr(err.msg, bad) != NULL);
    CHECK(access(bad, F_OK) != 0);
    /* npy_write over an existing file replaces it atomically */
    CHECK(mmcr_npy_write(p, MMCR_F64, 1, sh, v, &err) == MMCR_OK);
    mmcr_npy a;
    CHECK(mmcr_npy_read(&a, p, &err) == MMCR_OK && ((double *)a.data)[1] == 2.0);
    mmcr_npy_free(&a);
    /* invalid writes */
    const int64_t neg[] = {-1};
    CHECK(mmcr_npy_write(p, MMCR_F64, 1, neg, v, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_npy_write(p, MMCR_F64, 9, sh, v, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_atomic_commit(&af, &err) == MMCR_ERR_ARG); /* not open */
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mmcr_test_npy_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trips();
    test_foreign_headers();
    test_corrupt();
    test_atomic();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_npy");
}
