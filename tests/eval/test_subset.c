/* Class-balanced subsets: exact counts, sorted unique indices, seeded, errors name the class. */
#include "mmcr/eval.h"
#include "test_util.h"

#include <string.h>

enum { N = 3000, C = 7 };

int main(void) {
    static int32_t labels[N];
    mmcr_rng r;
    mmcr_rng_seed(&r, 11, 0, 0, 0);
    /* Unbalanced classes: class c has roughly weight (c + 1). */
    for (int i = 0; i < N; i++) {
        int c = 0;
        uint64_t u = mmcr_rng_below(&r, (uint64_t)(C * (C + 1) / 2));
        while (u >= (uint64_t)(c + 1)) {
            u -= (uint64_t)(c + 1);
            c++;
        }
        labels[i] = c;
    }

    static uint32_t a[N], b[N], c2[N];
    int na = -1, nb = -1, nc = -1;
    mmcr_err err;
    CHECK(mmcr_subset_per_class(labels, N, C, 60, 5, a, &na, &err) == MMCR_OK);
    CHECK(na == C * 60);
    int counts[C] = {0};
    int sorted = 1;
    for (int i = 0; i < na; i++) {
        CHECK(a[i] < N);
        if (a[i] < N) counts[labels[a[i]]]++;
        if (i > 0) sorted &= a[i] > a[i - 1]; /* strictly: sorted and unique */
    }
    CHECK(sorted);
    for (int k = 0; k < C; k++) CHECK_MSG(counts[k] == 60, "class %d has %d", k, counts[k]);

    /* Same seed -> same subset; another seed -> a different one. */
    CHECK(mmcr_subset_per_class(labels, N, C, 60, 5, b, &nb, &err) == MMCR_OK);
    CHECK(nb == na && memcmp(a, b, sizeof(uint32_t) * (size_t)na) == 0);
    CHECK(mmcr_subset_per_class(labels, N, C, 60, 6, c2, &nc, &err) == MMCR_OK);
    CHECK(nc == na && memcmp(a, c2, sizeof(uint32_t) * (size_t)na) != 0);

    /* Roughly uniform within a class: over many seeds every member of class 0 gets picked. */
    static int hits[N];
    for (uint64_t s = 0; s < 200; s++) {
        int n = 0;
        CHECK(mmcr_subset_per_class(labels, N, C, 10, s, b, &n, &err) == MMCR_OK);
        for (int i = 0; i < n; i++) hits[b[i]]++;
    }
    int n0 = 0, missed = 0;
    for (int i = 0; i < N; i++)
        if (labels[i] == 0) {
            n0++;
            missed += hits[i] == 0;
        }
    /* Class 0 has about 107 members, each picked with probability 10/107 per draw. */
    CHECK_MSG(missed == 0, "%d of %d class-0 rows never picked", missed, n0);

    /* A class with too few examples: the error names it. */
    int n_small = 0;
    for (int i = 0; i < N; i++) n_small += labels[i] == 0;
    int nn = 123;
    mmcr_status st = mmcr_subset_per_class(labels, N, C, n_small + 1, 1, a, &nn, &err);
    CHECK(st == MMCR_ERR_ARG);
    CHECK(nn == 0);
    CHECK_MSG(strstr(err.msg, "class 0") != NULL, "message: %s", err.msg);
    /* With num_classes = 1, label 1 is out of range. */
    CHECK(mmcr_subset_per_class(labels, N, 1, 1, 1, a, &nn, &err) == MMCR_ERR_ARG);
    CHECK(strstr(err.msg, "outside") != NULL);
    /* Exactly the class size works and takes the whole class. */
    {
        int32_t two[6] = {0, 1, 0, 1, 1, 0};
        uint32_t out[6];
        int no = 0;
        CHECK(mmcr_subset_per_class(two, 6, 2, 3, 9, out, &no, &err) == MMCR_OK);
        CHECK(no == 6);
        for (int i = 0; i < no; i++) CHECK(out[i] == (uint32_t)i);
    }
    CHECK(mmcr_subset_per_class(labels, N, C, 0, 1, a, &nn, &err) == MMCR_ERR_ARG);
    CHECK(mmcr_subset_per_class(NULL, N, C, 1, 1, a, &nn, &err) == MMCR_ERR_ARG);
    return test_finish("eval_subset");
}
