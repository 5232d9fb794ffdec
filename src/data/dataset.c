/* In-memory data sets: subsets, freeing, per-channel statistics. */
#include "mmcr/data.h"

#include <math.h>
#include <string.h>

mmcr_status mmcr_dataset_subset(mmcr_dataset *out, const mmcr_dataset *src, const uint32_t *idx, int n,
                                mmcr_err *err) {
    memset(out, 0, sizeof *out);
    if (n < 0) return mmcr_err_set(err, MMCR_ERR_ARG, "subset size %d is negative", n);
    for (int i = 0; i < n; i++)
        if (idx[i] >= (uint32_t)src->n)
            return mmcr_err_set(err, MMCR_ERR_ARG, "subset index %u at position %d is outside the data set (n = %d)",
                                idx[i], i, src->n);
    const size_t img = (size_t)src->c * src->h * src->w;
    out->pixels = mmcr_alloc_or_err((size_t)n * img, err, "subset pixels");
    if (!out->pixels) return MMCR_ERR_NOMEM;
    if (src->labels) {
        out->labels = mmcr_alloc_or_err((size_t)n * sizeof *out->labels, err, "subset labels");
        if (!out->labels) {
            mmcr_dataset_free(out);
            return MMCR_ERR_NOMEM;
        }
    }
    for (int i = 0; i < n; i++) {
        memcpy(out->pixels + (size_t)i * img, src->pixels + (size_t)idx[i] * img, img);
        if (src->labels) out->labels[i] = src->labels[idx[i]];
    }
    out->n = n;
    out->c = src->c;
    out->h = src->h;
    out->w = src->w;
    out->num_classes = src->num_classes;
    return MMCR_OK;
}

void mmcr_dataset_free(mmcr_dataset *ds) {
    if (!ds) return;
    mmcr_free(ds->pixels);
    mmcr_free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void mmcr_dataset_stats(const mmcr_dataset *ds, float *mean, float *std) {
    const size_t plane = (size_t)ds->h * ds->w;
    for (int ch = 0; ch < ds->c; ch++) {
        /* Integer sums are exact: 255^2 * 2^40 pixels still fits in 64 bits. */
        uint64_t s = 0, s2 = 0;
        for (int i = 0; i < ds->n; i++) {
            const uint8_t *p = ds->pixels + ((size_t)i * ds->c + ch) * plane;
            uint64_t a = 0, a2 = 0;
            for (size_t k = 0; k < plane; k++) {
                a += p[k];
                a2 += (uint64_t)p[k] * p[k];
            }
            s += a;
            s2 += a2;
        }
        double cnt = (double)ds->n * (double)plane;
        double m = cnt > 0 ? (double)s / cnt : 0.0;
        double var = cnt > 0 ? (double)s2 / cnt - m * m : 0.0;
        mean[ch] = (float)(m / 255.0);
        std[ch] = (float)(sqrt(var > 0 ? var : 0.0) / 255.0);
    }
}
