/* File formats: .npy arrays, safetensors checkpoints, JSON lines, and atomic writes
 * (temp file in the same folder, fsync, rename: an interrupted write never destroys the
 * previous file). Every reader validates sizes against the real file length. */
#ifndef MMCR_IO_H
#define MMCR_IO_H

#include <stdio.h>

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mmcr_dtype { MMCR_F32, MMCR_F64, MMCR_U8, MMCR_I32, MMCR_I64 } mmcr_dtype;
size_t mmcr_dtype_size(mmcr_dtype t);

/* ---- atomic file writing ---- */
typedef struct mmcr_atomic_file {
    FILE *f;
    char path[4096];
    char tmp[4096];
} mmcr_atomic_file;
mmcr_status mmcr_atomic_open(mmcr_atomic_file *af, const char *path, mmcr_err *err);
/* Flushes, fsyncs, closes and renames onto the target; on any failure removes the temp file. */
mmcr_status mmcr_atomic_commit(mmcr_atomic_file *af, mmcr_err *err);
void mmcr_atomic_abort(mmcr_atomic_file *af);

/* Creates a folder and its missing parents (like mkdir -p); err names the part that failed. */
mmcr_status mmcr_make_dirs(const char *path, mmcr_err *err);

/* ---- .npy (version 1.0/2.0, little-endian, C order) ---- */
typedef struct mmcr_npy {
    mmcr_dtype dtype;
    int ndim;
    int64_t shape[8];
    void *data; /* mmcr_alloc'd; free with mmcr_npy_free */
} mmcr_npy;
mmcr_status mmcr_npy_read(mmcr_npy *out, const char *path, mmcr_err *err);
void mmcr_npy_free(mmcr_npy *a);
mmcr_status mmcr_npy_write(const char *path, mmcr_dtype dtype, int ndim, const int64_t *shape,
                           const void *data, mmcr_err *err);

/* ---- safetensors ---- */
typedef struct mmcr_st_tensor {
    char name[128];
    mmcr_dtype dtype;
    int ndim;
    int64_t shape[8];
    const void *data; /* for writing: caller's memory; for reading: points into the file buffer */
    size_t nbytes;
} mmcr_st_tensor;
/* metadata: NULL-terminated list of key, value, key, value, ... (strings), may be NULL.
 * Names must be unique, non-empty and not "__metadata__"; nbytes must equal the shape's size.
 * The data section is ordered by decreasing element size, so in files written here every
 * tensor is aligned to its element size (the header lists tensors in the caller's order).
 * Written atomically: on failure the previous file at path is untouched. */
mmcr_status mmcr_safetensors_write(const char *path, const mmcr_st_tensor *t, int n,
                                   const char *const *metadata, mmcr_err *err);
typedef struct mmcr_safetensors {
    void *buf; /* whole file */
    size_t size;
    int n;
    mmcr_st_tensor *t;
    int n_meta;
    char **meta_keys, **meta_values;
} mmcr_safetensors;
/* Loads the whole file and validates it (docs/formats.md): header length, JSON, dtypes
 * (F32/F64/U8/I32/I64; others are rejected by name), shapes against byte counts, offsets inside
 * the file, and a data section covered exactly (no overlap, hole or trailing bytes). Tensors
 * keep the header's order; t[i].data points into buf (for files from other writers it may be
 * unaligned: copy with memcpy). On failure *st is empty and needs no free. */
mmcr_status mmcr_safetensors_read(mmcr_safetensors *st, const char *path, mmcr_err *err);
const mmcr_st_tensor *mmcr_safetensors_find(const mmcr_safetensors *st, const char *name);
const char *mmcr_safetensors_meta(const mmcr_safetensors *st, const char *key);
void mmcr_safetensors_free(mmcr_safetensors *st);

#ifdef __cplusplus
}
#endif
#endif
