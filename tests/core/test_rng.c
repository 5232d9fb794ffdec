#include "mmcr/core.h"
#include "test_util.h"

#include <string.h>

int main(void) {
    mmcr_rng a, b, c;
    mmcr_rng_seed(&a, 42, 1, 2, 3);
    mmcr_rng_seed(&b, 42, 1, 2, 3);
    mmcr_rng_seed(&c, 42, 3, 2, 1);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = mmcr_rng_u64(&a), y = mmcr_rng_u64(&b), z = mmcr_rng_u64(&c);
        same &= x == y;
        diff += x != z;
    }
    CHECK(same);
    CHECK(diff > 95);

    /* Uniform mean/variance and normal moments over many draws. */
    mmcr_rng r;
    mmcr_rng_seed(&r, 7, 0, 0, 0);
    double s = 0, s2 = 0, n1 = 0, n2 = 0;
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        double u = mmcr_rng_uniform(&r);
        CHECK(u >= 0.0 && u < 1.0);
        s += u; s2 += u * u;
        double g = mmcr_rng_normal(&r);
        n1 += g; n2 += g * g;
    }
    CHECK_CLOSE(s / N, 0.5, 0.005, 0);
    CHECK_CLOSE(s2 / N - (s / N) * (s / N), 1.0 / 12, 0.002, 0);
    CHECK_CLOSE(n1 / N, 0.0, 0.01, 0);
    CHECK_CLOSE(n2 / N, 1.0, 0.02, 0);

    /* below(): every value reachable, never out of range. */
    int hist[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t v = mmcr_rng_below(&r, 7);
        CHECK(v < 7);
        if (v < 7) hist[v]++;
    }
    for (int i = 0; i < 7; i++) CHECK(hist[i] > 800 && hist[i] < 1200);

    /* shuffle is a permutation */
    uint32_t p[50];
    for (uint32_t i = 0; i < 50; i++) p[i] = i;
    mmcr_rng_shuffle_u32(&r, p, 50);
    int seen[50];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 50; i++) seen[p[i]]++;
    int perm = 1;
    for (int i = 0; i < 50; i++) perm &= seen[i] == 1;
    CHECK(perm);

    CHECK(strcmp(mmcr_status_str(MMCR_OK), "ok") == 0);
    CHECK(strcmp(mmcr_status_str((mmcr_status)999), "unknown status") == 0);
    return test_finish("core_rng");
}
