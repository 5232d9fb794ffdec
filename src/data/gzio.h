/* Internal to the data layer: reading plain or gzip files (zlib detects which by the magic
 * bytes, not the file name) with errors that name the file. */
#ifndef MMCR_DATA_GZIO_H
#define MMCR_DATA_GZIO_H

#include <zlib.h>

#include "mmcr/core.h"

/* Opens path for reading; MMCR_ERR_IO naming the file on failure. */
mmcr_status mmcr_gz_open(gzFile *out, const char *path, mmcr_err *err);
/* Reads exactly n bytes; a short read is MMCR_ERR_FORMAT ("truncated") naming path and what. */
mmcr_status mmcr_gz_read_exact(gzFile f, void *buf, size_t n, const char *path, const char *what, mmcr_err *err);
/* MMCR_OK when the stream is at its end, MMCR_ERR_FORMAT (trailing bytes) otherwise. */
mmcr_status mmcr_gz_expect_eof(gzFile f, const char *path, mmcr_err *err);
/* Whole (decompressed) content into *buf (malloc'd, caller frees) and *size. */
mmcr_status mmcr_gz_read_all(const char *path, uint8_t **buf, size_t *size, mmcr_err *err);

#endif
