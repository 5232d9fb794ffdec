/* NumPy .npy arrays, format versions 1.0 and 2.0 (docs/formats.md, ".npy").
 * Reader: magic, version, header length, the header's Python dict literal (descr, fortran_order,
 * shape; nothing else), and data length == file length - header length, exactly.
 * Writer: version 1.0 (2.0 when the header needs more than 65535 bytes), header padded with spaces
 * and a final newline to a multiple of 64 bytes, written through an atomic file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmcr/io.h"

#define NPY_MAX_HEADER (1u << 20) /* far above anything numpy writes; bounds a corrupt length */

size_t mmcr_dtype_size(mmcr_dtype t) {
    switch (t) {
    case MMCR_F32: return 4;
    case MMCR_F64: return 8;
    case MMCR_U8: return 1;
    case MMCR_I32: return 4;
    case MMCR_I64: return 8;
    }
    return 0;
}

static const char *dtype_descr(mmcr_dtype t) {
    switch (t) {
    case MMCR_F32: return "<f4";
    case MMCR_F64: return "<f8";
    case MMCR_U8: return "|u1";
    case MMCR_I32: return "<i4";
    case MMCR_I64: return "<i8";
    }
    return NULL;
}

static int is_big_endian_host(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 0;
}

static void byteswap(void *data, size_t count, size_t size) {
    unsigned char *p = data;
    for (size_t i = 0; i < count; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* ---- header dict parsing ---- */

typedef struct {
    const char *s, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r')) c->s++;
}

static int accept(cursor *c, char ch) {
    skip_ws(c);
    if (c->s < c->end && *c->s == ch) {
        c->s++;
        return 1;
    }
    return 0;
}

/* A '...' or "..." literal without escapes, into out (cap bytes). */
static int parse_str(cursor *c, char *out, size_t cap) {
    skip_ws(c);
    if (c->s >= c->end || (*c->s != '\'' && *c->s != '"')) return 0;
    char q = *c->s++;
    size_t n = 0;
    while (c->s < c->end && *c->s != q) {
        if (*c->s == '\\' || n + 1 >= cap) return 0;
        out[n++] = *c->s++;
    }
    if (c->s >= c->end) return 0;
    c->s++;
    out[n] = 0;
    return 1;
}

static int parse_word(cursor *c, const char *w) {
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->s) >= n && !memcmp(c->s, w, n)) {
        c->s += n;
        return 1;
    }
    return 0;
}

static int parse_int64(cursor *c, int64_t *v) {
    skip_ws(c);
    if (c->s >= c->end || *c->s < '0' || *c->s > '9') return 0;
    int64_t x = 0;
    while (c->s < c->end && *c->s >= '0' && *c->s <= '9') {
        int dgt = *c->s++ - '0';
        if (x > (INT64_MAX - dgt) / 10) return 0;
        x = x * 10 + dgt;
    }
    if (c->s < c->end && *c->s == 'L') c->s++; /* Python 2 long */
    *v = x;
    return 1;
}

/* (a, b, c) or (a,) or (). */
static int parse_shape(cursor *c, int64_t *shape, int *ndim) {
    if (!accept(c, '(')) return 0;
    *ndim = 0;
    if (accept(c, ')')) return 1;
    for (;;) {
        int64_t v;
        if (*ndim >= 8 || !parse_int64(c, &v)) return 0;
        shape[(*ndim)++] = v;
        if (accept(c, ')')) return *ndim == 1 ? 0 : 1; /* "(5)" is an int, not a tuple */
        if (!accept(c, ',')) return 0;
        if (accept(c, ')')) return 1;
    }
}

static mmcr_status parse_descr(const char *d, mmcr_dtype *t, const char *path, mmcr_err *err) {
    if (strlen(d) == 3 && (d[0] == '<' || d[0] == '|' || d[0] == '>' || d[0] == '=')) {
        const char *k = d + 1;
        int one_byte = !strcmp(k, "u1");
        if (d[0] == '>' && !one_byte)
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': big-endian dtype '%s' is not supported (save it as little-endian '<%s')",
                                path, d, k);
        if (d[0] == '=' || (d[0] == '|' && !one_byte))
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': dtype '%s' has no explicit byte order", path, d);
        if (!strcmp(k, "f4")) *t = MMCR_F32;
        else if (!strcmp(k, "f8")) *t = MMCR_F64;
        else if (one_byte) *t = MMCR_U8;
        else if (!strcmp(k, "i4")) *t = MMCR_I32;
        else if (!strcmp(k, "i8")) *t = MMCR_I64;
        else k = NULL;
        if (k) return MMCR_OK;
    }
    return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': unsupported dtype '%s' (supported: <f4, <f8, |u1, <i4, <i8)", path, d);
}

static mmcr_status parse_header(const char *h, size_t len, mmcr_npy *out, const char *path, mmcr_err *err) {
    cursor c = {h, h + len};
    char descr[64] = "";
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    if (!accept(&c, '{')) goto bad;
    while (!accept(&c, '}')) {
        char key[64];
        if (!parse_str(&c, key, sizeof key) || !accept(&c, ':')) goto bad;
        if (!strcmp(key, "descr")) {
            if (have_descr || !parse_str(&c, descr, sizeof descr)) goto bad;
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran) goto bad;
            if (parse_word(&c, "True")) fortran = 1;
            else if (parse_word(&c, "False")) fortran = 0;
            else goto bad;
            have_fortran = 1;
        } else if (!strcmp(key, "shape")) {
            if (have_shape || !parse_shape(&c, out->shape, &out->ndim)) goto bad;
            have_shape = 1;
        } else {
            return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': unexpected key '%s' in the .npy header", path, key);
        }
        if (accept(&c, ',')) continue;
        if (!accept(&c, '}')) goto bad;
        break;
    }
    skip_ws(&c);
    if (c.s != c.end) goto bad;
    if (!have_descr || !have_fortran || !have_shape)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': the .npy header lacks '%s'", path,
                            !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    if (fortran)
        return mmcr_err_set(err, MMCR_ERR_FORMAT,
                            "'%s': fortran_order True is not supported (save a C-contiguous array, e.g. np.ascontiguousarray)", path);
    return parse_descr(descr, &out->dtype, path, err);
bad:
    return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': malformed .npy header near offset %ld", path, (long)(c.s - h));
}

/* ---- reading ---- */

mmcr_status mmcr_npy_read(mmcr_npy *out, const char *path, mmcr_err *err) {
    MMCR_ASSERT(out && path);
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    mmcr_status st = MMCR_OK;
    char *hdr = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = mmcr_err_set(err, MMCR_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = mmcr_err_set(err, MMCR_ERR_IO, "'%s' is not a regular file", path);
        goto done;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char pre[12];
    if (fsize < 10 || fread(pre, 1, 10, f) != 10) {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': not a .npy file (only %llu bytes)", path, (unsigned long long)fsize);
        goto done;
    }
    if (memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': not a .npy file (bad magic)", path);
        goto done;
    }
    uint64_t hlen, hstart;
    if (pre[6] == 1) {
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
        hstart = 10;
    } else if (pre[6] == 2) {
        if (fsize < 12 || fread(pre + 10, 1, 2, f) != 2) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': truncated .npy preamble", path);
            goto done;
        }
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        hstart = 12;
    } else {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': unsupported .npy format version %d.%d (supported: 1.0, 2.0)", path, pre[6],
                          pre[7]);
        goto done;
    }
    if (hlen > NPY_MAX_HEADER || hstart + hlen > fsize) {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': truncated .npy header (header length %llu, file size %llu)", path,
                          (unsigned long long)hlen, (unsigned long long)fsize);
        goto done;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        st = mmcr_err_set(err, MMCR_ERR_IO, "'%s': read error in the header", path);
        goto done;
    }
    hdr[hlen] = 0;
    for (uint64_t i = 0; i < hlen; i++)
        if ((unsigned char)hdr[i] >= 0x80 || hdr[i] == 0) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': the .npy header is not ASCII text", path);
            goto done;
        }
    st = parse_header(hdr, hlen, out, path, err);
    if (st != MMCR_OK) goto done;

    size_t esize = mmcr_dtype_size(out->dtype);
    uint64_t count = 1;
    for (int i = 0; i < out->ndim; i++) {
        uint64_t d = (uint64_t)out->shape[i];
        if (d && count > UINT64_MAX / d) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': the shape's element count overflows", path);
            goto done;
        }
        count *= d;
    }
    uint64_t data_len = fsize - hstart - hlen;
    if (count > UINT64_MAX / esize || count * esize != data_len) {
        st = mmcr_err_set(err, MMCR_ERR_FORMAT,
                          "'%s': the header describes %llu elements of %zu bytes but the file holds %llu data bytes (%s)", path,
                          (unsigned long long)count, esize, (unsigned long long)data_len,
                          count * esize > data_len ? "truncated" : "trailing bytes");
        goto done;
    }
    if (data_len > SIZE_MAX) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s' is too large for this machine", path);
        goto done;
    }
    out->data = mmcr_alloc((size_t)data_len);
    if (!out->data) {
        st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory allocating %llu bytes for '%s'", (unsigned long long)data_len, path);
        goto done;
    }
    if (data_len && fread(out->data, 1, (size_t)data_len, f) != (size_t)data_len) {
        st = mmcr_err_set(err, MMCR_ERR_IO, "'%s': read error in the data", path);
        goto done;
    }
    if (is_big_endian_host() && esize > 1) byteswap(out->data, (size_t)count, esize);
done:
    free(hdr);
    fclose(f);
    if (st != MMCR_OK) mmcr_npy_free(out);
    return st;
}

void mmcr_npy_free(mmcr_npy *a) {
    if (!a) return;
    mmcr_free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- writing ---- */

mmcr_status mmcr_npy_write(const char *path, mmcr_dtype dtype, int ndim, const int64_t *shape, const void *data,
                           mmcr_err *err) {
    MMCR_ASSERT(path);
    const char *descr = dtype_descr(dtype);
    if (!descr) return mmcr_err_set(err, MMCR_ERR_ARG, "cannot write '%s': unknown dtype %d", path, (int)dtype);
    if (ndim < 0 || ndim > 8 || (ndim > 0 && !shape))
        return mmcr_err_set(err, MMCR_ERR_ARG, "cannot write '%s': ndim must be 0..8 (got %d)", path, ndim);
    size_t esize = mmcr_dtype_size(dtype), count = 1;
    char dims[8 * 24 + 8];
    size_t pos = 0;
    dims[pos++] = '(';
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return mmcr_err_set(err, MMCR_ERR_ARG, "cannot write '%s': negative dimension %lld", path, (long long)shape[i]);
        if (shape[i] && count > SIZE_MAX / (size_t)shape[i])
            return mmcr_err_set(err, MMCR_ERR_ARG, "cannot write '%s': the shape's element count overflows", path);
        count *= (size_t)shape[i];
        pos += (size_t)snprintf(dims + pos, sizeof dims - pos, i ? ", %lld" : "%lld", (long long)shape[i]);
    }
    if (ndim == 1) dims[pos++] = ',';
    dims[pos++] = ')';
    dims[pos] = 0;
    if (count > SIZE_MAX / esize) return mmcr_err_set(err, MMCR_ERR_ARG, "cannot write '%s': too many bytes", path);
    size_t nbytes = count * esize;
    if (nbytes && !data) return mmcr_err_set(err, MMCR_ERR_ARG, "cannot write '%s': no data", path);

    char dict[512];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, dims);
    MMCR_ASSERT(dl > 0 && (size_t)dl < sizeof dict);
    /* Pad with spaces and end with '\n' so that data starts on a 64-byte boundary. */
    size_t pre = 10, hlen = (size_t)dl + 1;
    hlen += (64 - (pre + hlen) % 64) % 64;
    int version = 1;
    if (hlen > 65535) {
        version = 2;
        pre = 12;
        hlen = (size_t)dl + 1;
        hlen += (64 - (pre + hlen) % 64) % 64;
    }
    unsigned char head[12 + 600];
    MMCR_ASSERT(pre + hlen <= sizeof head);
    memcpy(head, "\x93NUMPY", 6);
    head[6] = (unsigned char)version;
    head[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) head[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(head + pre, dict, (size_t)dl);
    memset(head + pre + dl, ' ', hlen - (size_t)dl - 1);
    head[pre + hlen - 1] = '\n';

    mmcr_atomic_file af;
    mmcr_status st = mmcr_atomic_open(&af, path, err);
    if (st != MMCR_OK) return st;
    int ok = fwrite(head, 1, pre + hlen, af.f) == pre + hlen;
    if (ok && nbytes) {
        if (is_big_endian_host() && esize > 1) {
            /* Rare path: swap through a bounce buffer in chunks. */
            unsigned char buf[1 << 14];
            size_t per = sizeof buf / esize;
            for (size_t i = 0; ok && i < count; i += per) {
                size_t nn = count - i < per ? count - i : per;
                memcpy(buf, (const unsigned char *)data + i * esize, nn * esize);
                byteswap(buf, nn, esize);
                ok = fwrite(buf, esize, nn, af.f) == nn;
            }
        } else {
            ok = fwrite(data, 1, nbytes, af.f) == nbytes;
        }
    }
    if (!ok) {
        int e = errno;
        mmcr_atomic_abort(&af);
        return mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }
    return mmcr_atomic_commit(&af, err);
}
