/* safetensors: round trip with metadata, layout of what we write, a hand-made file in the
 * reference layout, corrupt files (truncated, bad header length, bad JSON, bad dtype, offsets
 * outside the file, overlaps, holes), writer argument checks, and atomic replacement. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mmcr/io.h"
#include "test_util.h"

static char dir[64];

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static size_t file_bytes(const char *path, unsigned char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *out = malloc((size_t)n + 1);
    size_t got = fread(*out, 1, (size_t)n, f);
    fclose(f);
    return got;
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* A file with the given header text (padded to 8 with spaces unless raw_len says otherwise)
 * followed by data_len bytes 0, 1, 2, ... */
static void write_raw(const char *path, const char *header, size_t data_len, uint64_t hlen_override) {
    size_t hl = strlen(header), padded = (hl + 7) / 8 * 8;
    size_t total = 8 + padded + data_len;
    unsigned char *b = malloc(total);
    uint64_t hlen = hlen_override ? hlen_override : padded;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, header, hl);
    memset(b + 8 + hl, ' ', padded - hl);
    for (size_t i = 0; i < data_len; i++) b[8 + padded + i] = (unsigned char)i;
    write_bytes(path, b, total);
    free(b);
}

/* Reading fails with status want, and the message names the file and contains needle. */
static int read_fails(const char *path, mmcr_status want, const char *needle) {
    mmcr_safetensors st;
    mmcr_err e = {{0}};
    mmcr_status s = mmcr_safetensors_read(&st, path, &e);
    int ok = s == want && strstr(e.msg, path) && (!needle || strstr(e.msg, needle));
    if (!ok) fprintf(stderr, "  read '%s': status %d (want %d), message '%s' (want '%s')\n", path, s, want, e.msg, needle ? needle : "");
    if (s == MMCR_OK) mmcr_safetensors_free(&st);
    CHECK(st.buf == NULL && st.t == NULL); /* nothing left allocated on failure */
    return ok;
}

static void test_round_trip(void) {
    char path[128];
    path_of(path, sizeof path, "model.safetensors");
    float w[6] = {1.5f, -2, 3, 4, 5, 6.25f};
    unsigned char u[5] = {1, 2, 3, 255, 0};
    int64_t step = 123456789012345LL;
    double d[2] = {0.1, -1e300};
    int32_t i32[3] = {-1, 0, 7};
    mmcr_st_tensor t[6];
    memset(t, 0, sizeof t);
    snprintf(t[0].name, sizeof t[0].name, "rng.state");
    t[0].dtype = MMCR_U8, t[0].ndim = 1, t[0].shape[0] = 5, t[0].data = u, t[0].nbytes = 5;
    snprintf(t[1].name, sizeof t[1].name, "encoder.conv1.weight");
    t[1].dtype = MMCR_F32, t[1].ndim = 2, t[1].shape[0] = 2, t[1].shape[1] = 3, t[1].data = w, t[1].nbytes = 24;
    snprintf(t[2].name, sizeof t[2].name, "step");
    t[2].dtype = MMCR_I64, t[2].ndim = 0, t[2].data = &step, t[2].nbytes = 8;
    snprintf(t[3].name, sizeof t[3].name, "stats \"q\"");
    t[3].dtype = MMCR_F64, t[3].ndim = 1, t[3].shape[0] = 2, t[3].data = d, t[3].nbytes = 16;
    snprintf(t[4].name, sizeof t[4].name, "empty");
    t[4].dtype = MMCR_F32, t[4].ndim = 2, t[4].shape[0] = 0, t[4].shape[1] = 4, t[4].data = NULL, t[4].nbytes = 0;
    snprintf(t[5].name, sizeof t[5].name, "labels");
    t[5].dtype = MMCR_I32, t[5].ndim = 1, t[5].shape[0] = 3, t[5].data = i32, t[5].nbytes = 12;
    const char *meta[] = {"format", "mmcr-checkpoint", "config", "{\"lr\": 0.1,\n \"name\": \"caf\xC3\xA9\\\\\"}", "empty", "",
                          NULL};
    mmcr_err e;
    CHECK(mmcr_safetensors_write(path, t, 6, meta, &e) == MMCR_OK);

    /* Layout: little-endian length, multiple of 8, '{' first, space padding. */
    unsigned char *raw = NULL;
    size_t n = file_bytes(path, &raw);
    CHECK(n > 8);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)raw[i] << (8 * i);
    CHECK(hl % 8 == 0 && raw[8] == '{');
    CHECK(n == 8 + hl + 24 + 5 + 8 + 16 + 12);
    size_t last = 8 + hl - 1;
    while (raw[last] == ' ') last--;
    CHECK(raw[last] == '}');
    free(raw);

    mmcr_safetensors st;
    CHECK(mmcr_safetensors_read(&st, path, &e) == MMCR_OK);
    CHECK(st.n == 6 && st.n_meta == 4); /* 3 given + the writer's CRC-32 */
    for (int i = 0; i < 6 && st.n == 6; i++) {
        CHECK(!strcmp(st.t[i].name, t[i].name)); /* header order is kept */
        CHECK(st.t[i].dtype == t[i].dtype && st.t[i].ndim == t[i].ndim && st.t[i].nbytes == t[i].nbytes);
        for (int k = 0; k < t[i].ndim; k++) CHECK(st.t[i].shape[k] == t[i].shape[k]);
        if (t[i].nbytes) CHECK(!memcmp(st.t[i].data, t[i].data, t[i].nbytes));
        /* Our files keep every tensor aligned to its element size. */
        CHECK((uintptr_t)st.t[i].data % mmcr_dtype_size(t[i].dtype) == 0);
    }
    CHECK(mmcr_safetensors_find(&st, "step") && *(const int64_t *)mmcr_safetensors_find(&st, "step")->data == step);
    CHECK(mmcr_safetensors_find(&st, "nope") == NULL);
    CHECK(!strcmp(mmcr_safetensors_meta(&st, "format"), "mmcr-checkpoint"));
    CHECK(!strcmp(mmcr_safetensors_meta(&st, "config"), meta[3]));
    CHECK(!strcmp(mmcr_safetensors_meta(&st, "empty"), ""));
    CHECK(mmcr_safetensors_meta(&st, "missing") == NULL);
    mmcr_safetensors_free(&st);
    mmcr_safetensors_free(&st); /* twice is harmless */

    /* A flipped bit in the tensor data is caught by the CRC-32 and named as corruption. */
    raw = NULL;
    n = file_bytes(path, &raw);
    CHECK(n > 8 + hl);
    if (raw && n > 8 + hl) {
        raw[8 + hl + 3] ^= 0x10;
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(raw, 1, n, f) == n);
        if (f) fclose(f);
        CHECK(mmcr_safetensors_read(&st, path, &e) == MMCR_ERR_FORMAT);
        CHECK(strstr(e.msg, "corrupt") && strstr(e.msg, path));
    }
    free(raw);
    /* The CRC key belongs to the writer. */
    const char *own[] = {"mmcr.data_crc32", "0", NULL};
    CHECK(mmcr_safetensors_write(path, NULL, 0, own, &e) == MMCR_ERR_ARG && strstr(e.msg, "reserved"));

    /* No tensors, no metadata: only the CRC-32 of the empty data section. */
    CHECK(mmcr_safetensors_write(path, NULL, 0, NULL, &e) == MMCR_OK);
    raw = NULL;
    CHECK(file_bytes(path, &raw) % 8 == 0);
    free(raw);
    CHECK(mmcr_safetensors_read(&st, path, &e) == MMCR_OK && st.n == 0 && st.n_meta == 1);
    CHECK(mmcr_safetensors_meta(&st, "mmcr.data_crc32") && !strcmp(mmcr_safetensors_meta(&st, "mmcr.data_crc32"), "00000000"));
    mmcr_safetensors_free(&st);
    remove(path);
}

/* A file laid out as other writers do: keys in any order, whitespace, __metadata__ last,
 * unknown fields ignored, data order different from header order. */
static void test_foreign(void) {
    char path[128];
    path_of(path, sizeof path, "foreign.safetensors");
    write_raw(path,
              "{ \"b\" : {\"shape\": [2], \"dtype\": \"U8\", \"data_offsets\": [8, 10]},\n"
              "  \"a\": {\"dtype\":\"F32\",\"data_offsets\":[0,8],\"shape\":[1,2],\"extra\":null},"
              "  \"__metadata__\": {\"k\": \"v\\u00e9\"}}",
              10, 0);
    mmcr_safetensors st;
    mmcr_err e;
    CHECK(mmcr_safetensors_read(&st, path, &e) == MMCR_OK);
    CHECK(st.n == 2 && !strcmp(st.t[0].name, "b") && !strcmp(st.t[1].name, "a"));
    if (st.n == 2) {
        const unsigned char *bb = st.t[0].data;
        CHECK(bb[0] == 8 && bb[1] == 9 && st.t[0].nbytes == 2);
        CHECK(st.t[1].ndim == 2 && st.t[1].shape[1] == 2 && ((const unsigned char *)st.t[1].data)[7] == 7);
    }
    CHECK(st.n_meta == 1 && !strcmp(mmcr_safetensors_meta(&st, "k"), "v\xC3\xA9"));
    mmcr_safetensors_free(&st);
    remove(path);
}

static void test_corrupt(void) {
    char path[128], good[128];
    path_of(path, sizeof path, "bad.safetensors");
    path_of(good, sizeof good, "good.safetensors");
    float w[4] = {1, 2, 3, 4};
    mmcr_st_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "w");
    t.dtype = MMCR_F32, t.ndim = 1, t.shape[0] = 4, t.data = w, t.nbytes = 16;
    mmcr_err e;
    CHECK(mmcr_safetensors_write(good, &t, 1, NULL, &e) == MMCR_OK);
    unsigned char *raw = NULL;
    size_t n = file_bytes(good, &raw);

    /* Truncated data, truncated header, empty file. */
    write_bytes(path, raw, n - 1);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "outside"));
    write_bytes(path, raw, 20);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "header length"));
    write_bytes(path, raw, 5);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "too short"));
    write_bytes(path, raw, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "too short"));
    /* Extra bytes after the last tensor. */
    unsigned char *big = malloc(n + 4);
    memcpy(big, raw, n);
    memset(big + n, 0, 4);
    write_bytes(path, big, n + 4);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "data bytes"));
    free(big);
    /* Bad header length: huge, zero, and longer than the file. */
    unsigned char *c = malloc(n);
    memcpy(c, raw, n);
    for (int i = 0; i < 8; i++) c[i] = 0xff;
    write_bytes(path, c, n);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "header length"));
    memset(c, 0, 8);
    write_bytes(path, c, n);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "header length"));
    memcpy(c, raw, n);
    c[0] = (unsigned char)(n - 7);
    write_bytes(path, c, n);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "header length"));
    /* Not JSON at all / broken JSON in the header. */
    memcpy(c, raw, n);
    c[8] = '[';
    write_bytes(path, c, n);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "'{'"));
    memcpy(c, raw, n);
    char *colon = memchr(c + 9, ':', 20);
    *colon = ';';
    write_bytes(path, c, n);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "JSON error at byte"));
    /* Wrong dtype (same length, so the header length stays valid). */
    memcpy(c, raw, n);
    char *dt = memchr(c + 8, 'F', n - 8);
    dt[1] = '1', dt[2] = '6';
    write_bytes(path, c, n);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "F16"));
    free(c);
    free(raw);

    /* Hand-made headers. */
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,1000]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "outside"));
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "need 12 bytes"));
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "data_offsets"));
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "overlap"));
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "unused bytes"));
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "duplicate"));
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "shape"));
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "shape"));
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "need"));
    write_raw(path, "{\"w\":{\"shape\":[4],\"data_offsets\":[0,16]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "dtype"));
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "data_offsets"));
    write_raw(path, "{\"w\":[1,2]}", 0, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "not an object"));
    write_raw(path, "{\"__metadata__\":{\"k\":1}}", 0, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "not a string"));
    write_raw(path, "{\"__metadata__\":[]}", 0, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "__metadata__"));
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} trailing", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "JSON error"));
    write_raw(path, "{}", 16, 0);
    CHECK(read_fails(path, MMCR_ERR_FORMAT, "data bytes"));
    remove(path);
    CHECK(read_fails(path, MMCR_ERR_IO, NULL));
    CHECK(read_fails(dir, MMCR_ERR_IO, NULL)); /* a directory */
    remove(good);
}

static void test_write_args(void) {
    char path[128];
    path_of(path, sizeof path, "args.safetensors");
    float w[4] = {0};
    mmcr_st_tensor t[2];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 2; i++) {
        snprintf(t[i].name, sizeof t[i].name, "w");
        t[i].dtype = MMCR_F32, t[i].ndim = 1, t[i].shape[0] = 4, t[i].data = w, t[i].nbytes = 16;
    }
    mmcr_err e;
    CHECK(mmcr_safetensors_write(path, t, 2, NULL, &e) == MMCR_ERR_ARG && strstr(e.msg, "'w'"));
    snprintf(t[1].name, sizeof t[1].name, "v");
    t[1].nbytes = 12;
    CHECK(mmcr_safetensors_write(path, t, 2, NULL, &e) == MMCR_ERR_ARG && strstr(e.msg, "'v'"));
    t[1].nbytes = 16;
    t[1].ndim = 9;
    CHECK(mmcr_safetensors_write(path, t, 2, NULL, &e) == MMCR_ERR_ARG);
    t[1].ndim = 1;
    t[1].shape[0] = -4;
    CHECK(mmcr_safetensors_write(path, t, 2, NULL, &e) == MMCR_ERR_ARG);
    t[1].shape[0] = 4;
    t[1].data = NULL;
    CHECK(mmcr_safetensors_write(path, t, 2, NULL, &e) == MMCR_ERR_ARG && strstr(e.msg, "no data"));
    t[1].data = w;
    snprintf(t[1].name, sizeof t[1].name, "__metadata__");
    CHECK(mmcr_safetensors_write(path, t, 2, NULL, &e) == MMCR_ERR_ARG && strstr(e.msg, "reserved"));
    snprintf(t[1].name, sizeof t[1].name, "v");
    const char *odd[] = {"a", "1", "b", NULL};
    CHECK(mmcr_safetensors_write(path, t, 2, odd, &e) == MMCR_ERR_ARG && strstr(e.msg, "'b'"));
    const char *dup[] = {"a", "1", "a", "2", NULL};
    CHECK(mmcr_safetensors_write(path, t, 2, dup, &e) == MMCR_ERR_ARG && strstr(e.msg, "twice"));
    t[1].dtype = (mmcr_dtype)42;
    CHECK(mmcr_safetensors_write(path, t, 2, NULL, &e) == MMCR_ERR_ARG && strstr(e.msg, "dtype"));
    FILE *f = fopen(path, "r");
    CHECK(f == NULL); /* nothing was written by the failed calls */
    if (f) fclose(f);
}

static int count_temp_files(const char *prefix) {
    DIR *d = opendir(dir);
    int k = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (!strncmp(de->d_name, prefix, strlen(prefix)) && strstr(de->d_name, ".tmp.")) k++;
    if (d) closedir(d);
    return k;
}

static void test_atomic(void) {
    char path[128];
    path_of(path, sizeof path, "ckpt.safetensors");
    mmcr_err e;
    /* A folder that does not exist: an I/O error naming the file. */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
    CHECK(mmcr_safetensors_write(nodir, NULL, 0, NULL, &e) == MMCR_ERR_IO && strstr(e.msg, nodir));

    /* An existing good checkpoint... */
    float small[4] = {1, 2, 3, 4};
    mmcr_st_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "w");
    t.dtype = MMCR_F32, t.ndim = 1, t.shape[0] = 4, t.data = small, t.nbytes = 16;
    const char *meta[] = {"epoch", "3", NULL};
    CHECK(mmcr_safetensors_write(path, &t, 1, meta, &e) == MMCR_OK);
    unsigned char *before = NULL;
    size_t nb = file_bytes(path, &before);

    /* ...survives a write that fails part-way (the file-size limit stops it after 64 KiB). */
    size_t big_n = 1 << 20;
    float *big = calloc(big_n, sizeof(float));
    mmcr_st_tensor tb = t;
    tb.shape[0] = (int64_t)big_n, tb.data = big, tb.nbytes = big_n * sizeof(float);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    mmcr_status st = mmcr_safetensors_write(path, &tb, 1, meta, &e);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    CHECK(st == MMCR_ERR_IO && strstr(e.msg, path) != NULL);
    unsigned char *after = NULL;
    size_t na = file_bytes(path, &after);
    CHECK(na == nb && !memcmp(before, after, nb));
    CHECK(count_temp_files("ckpt.safetensors") == 0); /* the partial temp file is gone */
    mmcr_safetensors s;
    CHECK(mmcr_safetensors_read(&s, path, &e) == MMCR_OK && !strcmp(mmcr_safetensors_meta(&s, "epoch"), "3"));
    mmcr_safetensors_free(&s);

    /* Without the limit the same write replaces the file. */
    CHECK(mmcr_safetensors_write(path, &tb, 1, NULL, &e) == MMCR_OK);
    CHECK(mmcr_safetensors_read(&s, path, &e) == MMCR_OK && s.n == 1 && s.t[0].nbytes == tb.nbytes && s.n_meta == 1);
    mmcr_safetensors_free(&s);
    free(before);
    free(after);
    free(big);
    remove(path);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/mmcr_test_st_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_foreign();
    test_corrupt();
    test_write_args();
    test_atomic();
    CHECK(count_temp_files("") == 0);
    CHECK(rmdir(dir) == 0); /* every test cleaned up after itself */
    return test_finish("test_safetensors");
}
