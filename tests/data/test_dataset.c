/* Data-set helpers: subsets copy the right rows, stats match a direct computation. */
#include "mmcr/data.h"
#include "test_util.h"

#include <string.h>

int main(void) {
    mmcr_dataset ds = {.n = 7, .c = 3, .h = 2, .w = 3, .num_classes = 5};
    const size_t img = 3 * 2 * 3;
    ds.pixels = mmcr_alloc(ds.n * img);
    ds.labels = mmcr_alloc(ds.n * sizeof(int32_t));
    for (int i = 0; i < ds.n; i++) {
        ds.labels[i] = i % 5;
        for (size_t k = 0; k < img; k++) ds.pixels[i * img + k] = (uint8_t)(i * 40 + k * 11 + (k / 6) * 50);
    }

    mmcr_dataset sub;
    mmcr_err err = {{0}};
    const uint32_t idx[4] = {6, 0, 3, 3};
    CHECK(mmcr_dataset_subset(&sub, &ds, idx, 4, &err) == MMCR_OK);
    CHECK(sub.n == 4 && sub.c == 3 && sub.h == 2 && sub.w == 3 && sub.num_classes == 5);
    int same = 1;
    for (int i = 0; i < 4; i++) {
        same &= sub.labels[i] == ds.labels[idx[i]];
        same &= memcmp(sub.pixels + i * img, ds.pixels + idx[i] * img, img) == 0;
    }
    CHECK(same);
    mmcr_dataset_free(&sub);
    mmcr_dataset_free(&sub); /* freeing twice is harmless: free zeroes the struct */

    const uint32_t bad[2] = {1, 7};
    CHECK(mmcr_dataset_subset(&sub, &ds, bad, 2, &err) == MMCR_ERR_ARG);
    CHECK(strstr(err.msg, "7") != NULL);
    CHECK(sub.pixels == NULL);

    /* Unlabelled source -> unlabelled subset. */
    int32_t *labels = ds.labels;
    ds.labels = NULL;
    CHECK(mmcr_dataset_subset(&sub, &ds, idx, 2, &err) == MMCR_OK);
    CHECK(sub.labels == NULL && sub.n == 2);
    mmcr_dataset_free(&sub);
    ds.labels = labels;

    /* Stats: per-channel population mean / std of pixels / 255. */
    float mean[3], sd[3];
    mmcr_dataset_stats(&ds, mean, sd);
    for (int ch = 0; ch < 3; ch++) {
        double s = 0, s2 = 0, cnt = 0;
        for (int i = 0; i < ds.n; i++)
            for (int k = 0; k < 6; k++) {
                double v = ds.pixels[i * img + ch * 6 + k] / 255.0;
                s += v;
                s2 += v * v;
                cnt++;
            }
        double m = s / cnt;
        CHECK_CLOSE(mean[ch], m, 1e-6, 0);
        CHECK_CLOSE(sd[ch], sqrt(s2 / cnt - m * m), 1e-6, 0);
    }
    CHECK(mean[0] != mean[1] && mean[1] != mean[2]); /* channels really are separate */
    mmcr_dataset_free(&ds);
    return test_finish("test_dataset");
}
