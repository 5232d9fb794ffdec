/* Synthetic IDX data sets for end-to-end tests: 10 classes of noisy 16x16 prototypes, written
 * in the Fashion-MNIST file layout so the real loaders read them. */
#ifndef MMCR_TEST_IDX_UTIL_H
#define MMCR_TEST_IDX_UTIL_H

#include <stdio.h>

#include "mmcr/core.h"

static void put_be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* Writes dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte with n images of 16x16. */
static void write_split(const char *dir, const char *prefix, int n, uint64_t seed) {
    char p[512];
    mmcr_rng r;
    mmcr_rng_seed(&r, 99, 0, 0, 0); /* prototypes shared by both splits */
    static unsigned char proto[10][256];
    for (int c = 0; c < 10; c++)
        for (int i = 0; i < 256; i++) proto[c][i] = (unsigned char)(mmcr_rng_uniform(&r) < 0.3 ? 220 : 20);
    mmcr_rng_seed(&r, seed, 1, 0, 0);
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *fi = fopen(p, "wb");
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, prefix);
    FILE *fl = fopen(p, "wb");
    put_be32(fi, 0x803), put_be32(fi, (uint32_t)n), put_be32(fi, 16), put_be32(fi, 16);
    put_be32(fl, 0x801), put_be32(fl, (uint32_t)n);
    for (int k = 0; k < n; k++) {
        unsigned char c = (unsigned char)(k % 10), img[256];
        for (int i = 0; i < 256; i++) {
            double v = proto[c][i] + 40.0 * mmcr_rng_normal(&r);
            img[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        fwrite(img, 1, 256, fi);
        fwrite(&c, 1, 1, fl);
    }
    fclose(fi);
    fclose(fl);
}

#endif
