/* Seeded class-balanced subsets (e.g. the 1 %-labels protocol: 60 examples per class). */
#include "mmcr/eval.h"

#include <string.h>

/* Stream tag so subset draws never coincide with other users of the same seed. */
#define SUBSET_STREAM 0x5b5e7c1a55ull

mmcr_status mmcr_subset_per_class(const int32_t *labels, int n, int num_classes, int per_class,
                                  uint64_t seed, uint32_t *idx_out, int *n_out, mmcr_err *err) {
    if (n_out) *n_out = 0;
    if (!labels || !idx_out || !n_out)
        return mmcr_err_set(err, MMCR_ERR_ARG, "subset: labels, idx_out and n_out must not be NULL");
    if (n < 1) return mmcr_err_set(err, MMCR_ERR_ARG, "subset: n = %d, need at least 1 label", n);
    if (num_classes < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "subset: num_classes = %d, need at least 1", num_classes);
    if (per_class < 1)
        return mmcr_err_set(err, MMCR_ERR_ARG, "subset: per_class = %d, need at least 1", per_class);
    if ((int64_t)num_classes * per_class > (int64_t)n)
        return mmcr_err_set(err, MMCR_ERR_ARG,
                            "subset: %d classes x %d per class exceeds the %d labels", num_classes,
                            per_class, n);

    int64_t *count = mmcr_alloc_or_err(sizeof(int64_t) * ((size_t)num_classes + 1), err, "subset counts");
    uint32_t *bucket = mmcr_alloc_or_err(sizeof(uint32_t) * (size_t)n, err, "subset buckets");
    unsigned char *pick = mmcr_alloc_or_err((size_t)n, err, "subset marks");
    mmcr_status st = MMCR_OK;
    if (!count || !bucket || !pick) {
        st = MMCR_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= num_classes) {
            st = mmcr_err_set(err, MMCR_ERR_ARG, "subset: label %d of row %d is outside [0, %d)",
                              (int)labels[i], i, num_classes);
            goto done;
        }
        count[labels[i] + 1]++;
    }
    for (int c = 0; c < num_classes; c++) {
        if (count[c + 1] < per_class) {
            st = mmcr_err_set(err, MMCR_ERR_ARG,
                              "subset: class %d has %lld examples, fewer than the %d requested",
                              c, (long long)count[c + 1], per_class);
            goto done;
        }
    }
    /* Counting sort: bucket holds the indices of class c, ascending, in [count[c], count[c+1]). */
    for (int c = 0; c < num_classes; c++) count[c + 1] += count[c];
    {
        int64_t *fill = mmcr_alloc_or_err(sizeof(int64_t) * (size_t)num_classes, err, "subset fill");
        if (!fill) {
            st = MMCR_ERR_NOMEM;
            goto done;
        }
        memcpy(fill, count, sizeof(int64_t) * (size_t)num_classes);
        for (int i = 0; i < n; i++) bucket[fill[labels[i]]++] = (uint32_t)i;
        mmcr_free(fill);
    }
    /* One stream per class, so a class's draw does not depend on the other classes. Partial
     * Fisher-Yates: the first per_class slots of the bucket become a uniform sample. */
    for (int c = 0; c < num_classes; c++) {
        mmcr_rng r;
        mmcr_rng_seed(&r, seed, SUBSET_STREAM, (uint64_t)c, 0);
        uint32_t *b = bucket + count[c];
        uint64_t m = (uint64_t)(count[c + 1] - count[c]);
        for (uint64_t j = 0; j < (uint64_t)per_class; j++) {
            uint64_t s = j + mmcr_rng_below(&r, m - j);
            uint32_t t = b[j];
            b[j] = b[s];
            b[s] = t;
            pick[b[j]] = 1;
        }
    }
    /* Scanning the marks yields the indices sorted ascending. */
    int k = 0;
    for (int i = 0; i < n; i++)
        if (pick[i]) idx_out[k++] = (uint32_t)i;
    MMCR_ASSERT(k == num_classes * per_class);
    *n_out = k;
done:
    mmcr_free(count);
    mmcr_free(bucket);
    mmcr_free(pick);
    return st;
}
