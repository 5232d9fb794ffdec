/* safetensors files (docs/formats.md, "safetensors"): an 8-byte little-endian header length N,
 * N bytes of JSON header (padded with spaces to a multiple of 8), then the tensor bytes.
 * Writer: atomic (temp file + rename); data ordered by decreasing element size, so every tensor
 * is aligned to its element size inside the file. Reader: the whole file in memory; every
 * offset, dtype and shape is checked against the real file length before any use. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "mmcr/config.h"
#include "mmcr/io.h"
#include "mmcr/json.h"

/* Same bound as the reference implementation: a corrupt length cannot make us parse 2^60 bytes. */
#define ST_MAX_HEADER (100u * 1024u * 1024u)
#define ST_MAX_DIMS 8
/* Metadata key of the CRC-32 (zlib) of the data section, 8 lowercase hex digits. */
#define ST_CRC_KEY "mmcr.data_crc32"

static const char *dtype_name(mmcr_dtype t) {
    switch (t) {
    case MMCR_F32: return "F32";
    case MMCR_F64: return "F64";
    case MMCR_U8: return "U8";
    case MMCR_I32: return "I32";
    case MMCR_I64: return "I64";
    }
    return NULL;
}

static int dtype_from_name(const char *s, mmcr_dtype *out) {
    static const mmcr_dtype all[] = {MMCR_F32, MMCR_F64, MMCR_U8, MMCR_I32, MMCR_I64};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(s, dtype_name(all[i]))) return *out = all[i], 1;
    return 0;
}

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Bytes of a tensor from its shape; 0 and *ok = 0 on overflow. */
static size_t tensor_bytes(mmcr_dtype dt, int ndim, const int64_t *shape, int *ok) {
    size_t b = mmcr_dtype_size(dt);
    *ok = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return *ok = 0, 0;
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && b > SIZE_MAX / d) return *ok = 0, 0;
        b *= (size_t)d;
    }
    return b;
}

/* ---------------- writer ---------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_reserve(sbuf *b, size_t more) {
    if (b->oom || b->n + more + 1 <= b->cap) return;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->n + more + 1) {
        if (nc > SIZE_MAX / 2) {
            b->oom = 1;
            return;
        }
        nc *= 2;
    }
    char *np = realloc(b->p, nc);
    if (!np) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = nc;
}

static void sb_put(sbuf *b, const char *s) {
    size_t l = strlen(s);
    sb_reserve(b, l);
    if (b->oom) return;
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    MMCR_ASSERT(l >= 0 && (size_t)l < sizeof tmp); /* only short numeric fragments go through here */
    sb_put(b, tmp);
}

static void sb_json_string(sbuf *b, const char *s) {
    size_t l = mmcr_json_escape_len(s);
    sb_reserve(b, l + 2);
    if (b->oom) return;
    b->p[b->n++] = '"';
    mmcr_json_escape(b->p + b->n, l + 1, s);
    b->n += l;
    b->p[b->n++] = '"';
    b->p[b->n] = '\0';
}

typedef struct name_ref {
    const char *name;
    int idx;
} name_ref;

static int cmp_name_ref(const void *a, const void *b) {
    const name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Index of a duplicated name among names[0..n) (the later occurrence), or -1; -2 on no memory. */
static int find_duplicate(const char *const *names, int n) {
    if (n < 2) return -1;
    name_ref *r = malloc((size_t)n * sizeof *r);
    if (!r) return -2;
    for (int i = 0; i < n; i++) r[i] = (name_ref){names[i], i};
    qsort(r, (size_t)n, sizeof *r, cmp_name_ref);
    int dup = -1;
    for (int i = 1; i < n && dup < 0; i++)
        if (!strcmp(r[i].name, r[i - 1].name)) dup = r[i].idx;
    free(r);
    return dup;
}

static mmcr_status validate_for_write(const char *path, const mmcr_st_tensor *t, int n, const char *const *metadata,
                                      int *n_meta, mmcr_err *err) {
    if (n < 0 || (n > 0 && !t)) return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': bad tensor list", path);
    for (int i = 0; i < n; i++) {
        const mmcr_st_tensor *x = &t[i];
        if (!memchr(x->name, '\0', sizeof x->name) || x->name[0] == '\0')
            return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': tensor %d has an empty or unterminated name", path, i);
        if (!strcmp(x->name, "__metadata__"))
            return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': '__metadata__' is reserved and cannot name a tensor", path);
        if (!dtype_name(x->dtype)) return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': tensor '%s' has an unknown dtype", path, x->name);
        if (x->ndim < 0 || x->ndim > ST_MAX_DIMS)
            return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': tensor '%s' has %d dimensions (at most %d)", path, x->name, x->ndim,
                                ST_MAX_DIMS);
        int ok;
        size_t nb = tensor_bytes(x->dtype, x->ndim, x->shape, &ok);
        if (!ok) return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': tensor '%s' has a negative or too large shape", path, x->name);
        if (nb != x->nbytes)
            return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': tensor '%s': shape and dtype give %zu bytes but nbytes is %zu", path,
                                x->name, nb, x->nbytes);
        if (nb > 0 && !x->data) return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': tensor '%s' has no data", path, x->name);
    }
    const char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    if (!names) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
    for (int i = 0; i < n; i++) names[i] = t[i].name;
    int dup = find_duplicate(names, n);
    free(names);
    if (dup == -2) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
    if (dup >= 0) return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': two tensors are named '%s'", path, t[dup].name);

    int k = 0;
    while (metadata && metadata[k]) {
        if (!metadata[k + 1])
            return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': metadata key '%s' has no value", path, metadata[k]);
        k += 2;
    }
    *n_meta = k / 2;
    for (int i = 0; i < k / 2; i++)
        if (!strcmp(metadata[2 * i], ST_CRC_KEY))
            return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': metadata key '%s' is reserved (the writer sets it)", path,
                                ST_CRC_KEY);
    if (k > 0) {
        const char **keys = malloc((size_t)(k / 2) * sizeof *keys);
        if (!keys) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
        for (int i = 0; i < k / 2; i++) keys[i] = metadata[2 * i];
        dup = find_duplicate(keys, k / 2);
        free(keys);
        if (dup == -2) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
        if (dup >= 0) return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': metadata key '%s' appears twice", path, metadata[2 * dup]);
    }
    return MMCR_OK;
}

mmcr_status mmcr_safetensors_write(const char *path, const mmcr_st_tensor *t, int n, const char *const *metadata,
                                   mmcr_err *err) {
    if (!host_is_little_endian())
        return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': safetensors writing needs a little-endian host", path);
    int n_meta = 0;
    mmcr_status st = validate_for_write(path, t, n, metadata, &n_meta, err);
    if (st != MMCR_OK) return st;

    /* Data order: larger elements first (stable), so offsets stay multiples of element sizes. */
    int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    size_t *begin = malloc((size_t)(n > 0 ? n : 1) * sizeof *begin);
    sbuf h = {0};
    if (!order || !begin) {
        free(order);
        free(begin);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
    }
    int k = 0;
    for (size_t es = 8; es >= 1; es /= 2)
        for (int i = 0; i < n; i++)
            if (mmcr_dtype_size(t[i].dtype) == es) order[k++] = i;
    MMCR_ASSERT(k == n);
    size_t off = 0;
    for (int j = 0; j < n; j++) {
        begin[order[j]] = off;
        off += t[order[j]].nbytes;
    }

    /* CRC-32 of the data section, in the data order, kept in the metadata: a flipped byte in a
     * weight is otherwise undetectable (the format has no checksum of its own). */
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int j = 0; j < n; j++) {
        const unsigned char *p = t[order[j]].data;
        for (size_t left = t[order[j]].nbytes; left > 0;) {
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, p, chunk);
            p += chunk;
            left -= chunk;
        }
    }
    sb_put(&h, "{\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
        sb_json_string(&h, metadata[2 * i]);
        sb_put(&h, ":");
        sb_json_string(&h, metadata[2 * i + 1]);
        sb_put(&h, ",");
    }
    sb_printf(&h, "\"%s\":\"%08lx\"}", ST_CRC_KEY, (unsigned long)crc);
    int first = 0;
    for (int i = 0; i < n; i++) {
        if (!first) sb_put(&h, ",");
        first = 0;
        sb_json_string(&h, t[i].name);
        sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++) sb_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", begin[i], begin[i] + t[i].nbytes);
    }
    sb_put(&h, "}");
    while (!h.oom && h.n % 8 != 0) sb_put(&h, " ");
    if (h.oom || h.n > ST_MAX_HEADER) {
        free(order);
        free(begin);
        free(h.p);
        return h.oom ? mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory building the header", path)
                     : mmcr_err_set(err, MMCR_ERR_ARG, "'%s': header of %zu bytes exceeds the %u-byte limit", path, h.n,
                                    ST_MAX_HEADER);
    }

    mmcr_atomic_file af;
    st = mmcr_atomic_open(&af, path, err);
    if (st == MMCR_OK) {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(((uint64_t)h.n >> (8 * i)) & 0xff);
        int ok = fwrite(len8, 1, 8, af.f) == 8 && fwrite(h.p, 1, h.n, af.f) == h.n;
        for (int j = 0; ok && j < n; j++) {
            const mmcr_st_tensor *x = &t[order[j]];
            if (x->nbytes) ok = fwrite(x->data, 1, x->nbytes, af.f) == x->nbytes;
        }
        if (!ok) {
            int e = errno;
            mmcr_atomic_abort(&af);
            st = mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': %s (the previous file, if any, is unchanged)", path,
                              e ? strerror(e) : "write error");
        } else {
            st = mmcr_atomic_commit(&af, err);
        }
    }
    free(order);
    free(begin);
    free(h.p);
    return st;
}

/* ---------------- reader ---------------- */

static mmcr_status read_whole(const char *path, void **buf, size_t *size, mmcr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return mmcr_err_set(err, MMCR_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    if ((off_t)n != sb.st_size) {
        fclose(f);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s' is too large to load", path);
    }
    void *b = mmcr_alloc_or_err(n, err, path);
    if (!b) {
        fclose(f);
        return MMCR_ERR_NOMEM;
    }
    size_t got = n ? fread(b, 1, n, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (got != n || bad) {
        mmcr_free(b);
        return mmcr_err_set(err, MMCR_ERR_IO, "error reading '%s' (%zu of %zu bytes)", path, got, n);
    }
    *buf = b;
    *size = n;
    return MMCR_OK;
}

/* Reads a non-negative integer array (at most max elements) into out. */
static int int_array(const mmcr_json *v, int64_t *out, int max, int *count) {
    if (!v || v->type != MMCR_JSON_ARRAY || v->n > (size_t)max) return 0;
    for (size_t i = 0; i < v->n; i++)
        if (!mmcr_json_int64(&v->items[i], &out[i]) || out[i] < 0) return 0;
    *count = (int)v->n;
    return 1;
}

typedef struct span {
    uint64_t begin, end;
    int idx;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static mmcr_status parse_header(mmcr_safetensors *st, const char *path, const mmcr_json *root, const unsigned char *data,
                                size_t data_size, span *spans, mmcr_err *err) {
    int ti = 0;
    for (size_t m = 0; m < root->n; m++) {
        const char *key = root->keys[m];
        const mmcr_json *v = &root->items[m];
        if (!strcmp(key, "__metadata__")) {
            if (v->type != MMCR_JSON_OBJECT)
                return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': __metadata__ is a %s, not an object", path, mmcr_json_type_name(v->type));
            st->meta_keys = calloc(v->n ? v->n : 1, sizeof(char *));
            st->meta_values = calloc(v->n ? v->n : 1, sizeof(char *));
            if (!st->meta_keys || !st->meta_values) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
            for (size_t i = 0; i < v->n; i++) {
                if (v->items[i].type != MMCR_JSON_STRING)
                    return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': metadata value of '%.100s' is a %s, not a string", path,
                                        v->keys[i], mmcr_json_type_name(v->items[i].type));
                st->meta_keys[i] = strdup(v->keys[i]);
                st->meta_values[i] = strdup(v->items[i].str);
                st->n_meta = (int)i + 1;
                if (!st->meta_keys[i] || !st->meta_values[i]) return mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
            }
            continue;
        }
        mmcr_st_tensor *x = &st->t[ti];
        if (root->key_lens[m] == 0 || root->key_lens[m] >= sizeof x->name || strlen(key) != root->key_lens[m])
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': tensor name '%.100s' is empty, longer than %zu bytes or contains NUL",
                                path, key, sizeof x->name - 1);
        memcpy(x->name, key, root->key_lens[m] + 1);
        if (v->type != MMCR_JSON_OBJECT)
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': entry '%s' is a %s, not an object", path, key, mmcr_json_type_name(v->type));
        const char *dt = mmcr_json_string(mmcr_json_get(v, "dtype"));
        if (!dt) return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': tensor '%s' has no \"dtype\" string", path, key);
        if (!dtype_from_name(dt, &x->dtype))
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': tensor '%s' has dtype '%.20s'; supported: F32, F64, U8, I32, I64", path,
                                key, dt);
        if (!int_array(mmcr_json_get(v, "shape"), x->shape, ST_MAX_DIMS, &x->ndim))
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': tensor '%s' needs \"shape\": an array of at most %d non-negative integers",
                                path, key, ST_MAX_DIMS);
        int64_t off[2];
        int noff = 0;
        if (!int_array(mmcr_json_get(v, "data_offsets"), off, 2, &noff) || noff != 2)
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': tensor '%s' needs \"data_offsets\": [begin, end], non-negative integers",
                                path, key);
        if (off[0] > off[1] || (uint64_t)off[1] > (uint64_t)data_size)
            return mmcr_err_set(err, MMCR_ERR_FORMAT,
                                "'%s': tensor '%s' has data_offsets [%lld, %lld] outside the %zu data bytes of the file (truncated?)",
                                path, key, (long long)off[0], (long long)off[1], data_size);
        int ok;
        size_t nb = tensor_bytes(x->dtype, x->ndim, x->shape, &ok);
        if (!ok || nb != (size_t)(off[1] - off[0]))
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': tensor '%s': shape and dtype %s need %zu bytes but data_offsets span %lld",
                                path, key, dt, ok ? nb : (size_t)0, (long long)(off[1] - off[0]));
        x->nbytes = nb;
        x->data = data + off[0];
        spans[ti] = (span){(uint64_t)off[0], (uint64_t)off[1], ti};
        ti++;
    }
    MMCR_ASSERT(ti == st->n);
    /* The data section must be covered exactly: no overlaps, no holes, nothing after the end. */
    qsort(spans, (size_t)st->n, sizeof *spans, cmp_span);
    uint64_t pos = 0;
    for (int i = 0; i < st->n; i++) {
        if (spans[i].begin < pos)
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': tensors '%s' and '%s' overlap in the data section", path,
                                st->t[spans[i - 1].idx].name, st->t[spans[i].idx].name);
        if (spans[i].begin > pos)
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': %llu unused bytes before tensor '%s'", path,
                                (unsigned long long)(spans[i].begin - pos), st->t[spans[i].idx].name);
        pos = spans[i].end;
    }
    if (pos != data_size)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': the header describes %llu data bytes but the file holds %zu", path,
                            (unsigned long long)pos, data_size);
    return MMCR_OK;
}

mmcr_status mmcr_safetensors_read(mmcr_safetensors *st, const char *path, mmcr_err *err) {
    memset(st, 0, sizeof *st);
    if (!host_is_little_endian())
        return mmcr_err_set(err, MMCR_ERR_ARG, "'%s': safetensors reading needs a little-endian host", path);
    mmcr_status s = read_whole(path, &st->buf, &st->size, err);
    if (s != MMCR_OK) return s;
    const unsigned char *b = st->buf;
    if (st->size < 8) {
        s = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': %zu bytes is too short for a safetensors file (8-byte header length)", path,
                         st->size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)b[i] << (8 * i);
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > st->size - 8) {
        s = mmcr_err_set(err, MMCR_ERR_FORMAT,
                         "'%s': bad header length %llu (file holds %zu bytes; limit %u): not a safetensors file, or truncated",
                         path, (unsigned long long)hlen, st->size, ST_MAX_HEADER);
        goto fail;
    }
    if (b[8] != '{') {
        s = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': the header does not start with '{': not a safetensors file", path);
        goto fail;
    }
    char what[4200];
    snprintf(what, sizeof what, "'%s' header", path);
    mmcr_json *root = NULL;
    s = mmcr_json_parse(&root, (const char *)b + 8, (size_t)hlen, what, err);
    if (s != MMCR_OK) goto fail;
    if (root->type != MMCR_JSON_OBJECT) {
        mmcr_json_free(&root);
        s = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': the header is not a JSON object", path);
        goto fail;
    }
    int nt = 0;
    for (size_t m = 0; m < root->n; m++) nt += strcmp(root->keys[m], "__metadata__") != 0;
    st->n = nt;
    st->t = calloc((size_t)(nt ? nt : 1), sizeof *st->t);
    span *spans = malloc((size_t)(nt ? nt : 1) * sizeof *spans);
    if (!st->t || !spans) {
        free(spans);
        mmcr_json_free(&root);
        s = mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s': out of memory", path);
        goto fail;
    }
    size_t data_start = 8 + (size_t)hlen;
    s = parse_header(st, path, root, b + data_start, st->size - data_start, spans, err);
    free(spans);
    mmcr_json_free(&root);
    if (s != MMCR_OK) goto fail;
    const char *want = mmcr_safetensors_meta(st, ST_CRC_KEY);
    if (want) { /* files from other writers have none: nothing to check */
        uLong crc = crc32(0L, Z_NULL, 0);
        const unsigned char *p = b + data_start;
        for (size_t left = st->size - data_start; left > 0;) {
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, p, chunk);
            p += chunk;
            left -= chunk;
        }
        char got[16];
        snprintf(got, sizeof got, "%08lx", (unsigned long)crc);
        if (strcmp(got, want) != 0) {
            s = mmcr_err_set(err, MMCR_ERR_FORMAT,
                             "'%s': the tensor data is corrupt (CRC-32 %s, the header recorded %s)", path, got, want);
            goto fail;
        }
    }
    return MMCR_OK;
fail:
    mmcr_safetensors_free(st);
    return s;
}

const mmcr_st_tensor *mmcr_safetensors_find(const mmcr_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->t[i].name, name)) return &st->t[i];
    return NULL;
}

const char *mmcr_safetensors_meta(const mmcr_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

void mmcr_safetensors_free(mmcr_safetensors *st) {
    if (!st) return;
    mmcr_free(st->buf);
    free(st->t);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    memset(st, 0, sizeof *st);
}
