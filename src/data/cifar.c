/* CIFAR-10 / CIFAR-100 binary batches: fixed-size records of label byte(s) + 3x32x32 planar
 * pixels (all red, then green, then blue), which is already our c x h x w layout. */
#include "mmcr/data.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "data/gzio.h"

#define CIFAR_PIXELS (3 * 32 * 32)

mmcr_status mmcr_dataset_load_cifar(mmcr_dataset *ds, const char *const *paths, int cifar100, mmcr_err *err) {
    memset(ds, 0, sizeof *ds);
    if (!paths || !paths[0]) return mmcr_err_set(err, MMCR_ERR_ARG, "no CIFAR file given");
    const size_t head = cifar100 ? 2 : 1;
    const size_t rec = head + CIFAR_PIXELS;
    const int classes = cifar100 ? 100 : 10;
    int nfiles = 0;
    while (paths[nfiles]) nfiles++;

    uint8_t **bufs = calloc((size_t)nfiles, sizeof *bufs);
    size_t *sizes = calloc((size_t)nfiles, sizeof *sizes);
    mmcr_status st = MMCR_OK;
    if (!bufs || !sizes) st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory opening CIFAR files");
    /* Validate every file before building the set, so an error names the first bad file. */
    size_t total = 0;
    for (int f = 0; !st && f < nfiles; f++) {
        st = mmcr_gz_read_all(paths[f], &bufs[f], &sizes[f], err);
        if (st) break;
        if (sizes[f] == 0 || sizes[f] % rec != 0) {
            st = mmcr_err_set(err, MMCR_ERR_FORMAT,
                              "'%s' is %zu bytes, not a positive multiple of the %s record size %zu", paths[f],
                              sizes[f], cifar100 ? "CIFAR-100" : "CIFAR-10", rec);
            break;
        }
        const uint8_t *b = bufs[f];
        for (size_t r = 0; r < sizes[f] / rec; r++) {
            int coarse = cifar100 ? b[r * rec] : 0, label = b[r * rec + head - 1];
            if (label >= classes || coarse >= 20) {
                st = mmcr_err_set(err, MMCR_ERR_FORMAT, "'%s': record %zu has label %d (CIFAR-%d has %d classes)",
                                  paths[f], r, label, classes, classes);
                break;
            }
        }
        total += sizes[f] / rec;
    }
    if (!st && total > INT_MAX) st = mmcr_err_set(err, MMCR_ERR_FORMAT, "too many CIFAR records (%zu)", total);
    if (!st) {
        ds->pixels = mmcr_alloc_or_err(total * CIFAR_PIXELS, err, "CIFAR pixels");
        ds->labels = mmcr_alloc_or_err(total * sizeof *ds->labels, err, "CIFAR labels");
        if (!ds->pixels || !ds->labels) st = MMCR_ERR_NOMEM;
    }
    if (!st) {
        size_t i = 0;
        for (int f = 0; f < nfiles; f++) {
            for (size_t r = 0; r < sizes[f] / rec; r++, i++) {
                const uint8_t *b = bufs[f] + r * rec;
                ds->labels[i] = b[head - 1]; /* CIFAR-100: the fine label */
                memcpy(ds->pixels + i * CIFAR_PIXELS, b + head, CIFAR_PIXELS);
            }
        }
        ds->n = (int)total;
        ds->c = 3;
        ds->h = 32;
        ds->w = 32;
        ds->num_classes = classes;
    }
    for (int f = 0; bufs && f < nfiles; f++) free(bufs[f]);
    free(bufs);
    free(sizes);
    if (st) mmcr_dataset_free(ds);
    return st;
}
