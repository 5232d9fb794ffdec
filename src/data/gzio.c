/* Plain-or-gzip reading for the data-set readers. */
#include "data/gzio.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

mmcr_status mmcr_gz_open(gzFile *out, const char *path, mmcr_err *err) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        return mmcr_err_set(err, errno == ENOMEM ? MMCR_ERR_NOMEM : MMCR_ERR_IO, "cannot open '%s': %s", path,
                            errno ? strerror(errno) : "gzopen failed");
    }
    gzbuffer(f, 1u << 17);
    *out = f;
    return MMCR_OK;
}

/* One gzread of at most 1 GiB (its length argument is an unsigned int). Returns bytes read or -1. */
static long gz_read_some(gzFile f, void *buf, size_t n) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int r = gzread(f, buf, chunk);
    return r;
}

mmcr_status mmcr_gz_read_exact(gzFile f, void *buf, size_t n, const char *path, const char *what, mmcr_err *err) {
    size_t got = 0;
    while (got < n) {
        long r = gz_read_some(f, (uint8_t *)buf + got, n - got);
        if (r < 0) {
            int code = 0;
            const char *msg = gzerror(f, &code);
            if (code == Z_ERRNO) msg = strerror(errno);
            if (code == Z_BUF_ERROR)
                return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' is truncated: %s needs %zu bytes, got %zu", path,
                                    what, n, got);
            return mmcr_err_set(err, code == Z_ERRNO ? MMCR_ERR_IO : MMCR_ERR_FORMAT, "cannot read %s of '%s': %s",
                                what, path, msg);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got < n)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' is truncated: %s needs %zu bytes, got %zu", path, what, n,
                            got);
    return MMCR_OK;
}

mmcr_status mmcr_gz_expect_eof(gzFile f, const char *path, mmcr_err *err) {
    uint8_t extra[64];
    long r = gz_read_some(f, extra, sizeof extra);
    if (r > 0) return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' has trailing bytes after the data", path);
    int pending = 0;
    gzerror(f, &pending);
    if (r == 0 && pending == Z_BUF_ERROR)
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' is truncated (gzip stream cut short)", path);
    if (r < 0) {
        int code = 0;
        const char *msg = gzerror(f, &code);
        return mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': damaged after the data: %s", path, msg);
    }
    return MMCR_OK;
}

mmcr_status mmcr_gz_read_all(const char *path, uint8_t **buf, size_t *size, mmcr_err *err) {
    *buf = NULL;
    *size = 0;
    gzFile f = NULL;
    mmcr_status st = mmcr_gz_open(&f, path, err);
    if (st) return st;
    size_t cap = 1u << 20, n = 0;
    uint8_t *b = malloc(cap);
    if (!b) {
        gzclose(f);
        return mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                st = mmcr_err_set(err, MMCR_ERR_NOMEM, "'%s' is too large", path);
                break;
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory reading '%s'", path);
                break;
            }
            b = nb;
            cap *= 2;
        }
        long r = gz_read_some(f, b + n, cap - n);
        if (r < 0) {
            int code = 0;
            const char *msg = gzerror(f, &code);
            if (code == Z_ERRNO) msg = strerror(errno);
            st = mmcr_err_set(err, code == Z_ERRNO ? MMCR_ERR_IO : MMCR_ERR_FORMAT,
                              code == Z_BUF_ERROR ? "'%s' is truncated: %s" : "cannot read '%s': %s", path, msg);
            break;
        }
        if (r == 0) {
            /* A gzip stream cut short reads as a clean end with Z_BUF_ERROR pending. */
            int code = 0;
            gzerror(f, &code);
            if (code == Z_BUF_ERROR)
                st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s' is truncated (gzip stream cut short)", path);
            break;
        }
        n += (size_t)r;
    }
    gzclose(f);
    if (st) {
        free(b);
        return st;
    }
    *buf = b;
    *size = n;
    return MMCR_OK;
}
