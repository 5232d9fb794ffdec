/* xoshiro256** with splitmix64 seeding: small, fast, and every stream explicit. */
#include "mmcr/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mmcr_rng_seed(mmcr_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    /* Mix the stream coordinates one after another so (1,2,3) and (3,2,1) differ. */
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ a; h = splitmix64(&x);
    x = h ^ b; h = splitmix64(&x);
    x = h ^ c; h = splitmix64(&x);
    x = h;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }

uint64_t mmcr_rng_u64(mmcr_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mmcr_rng_uniform(mmcr_rng *r) { return (double)(mmcr_rng_u64(r) >> 11) * 0x1.0p-53; }

double mmcr_rng_normal(mmcr_rng *r) {
    double u1 = mmcr_rng_uniform(r);
    double u2 = mmcr_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t mmcr_rng_below(mmcr_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    /* Lemire's rejection keeps it unbiased. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t v = mmcr_rng_u64(r);
        if (v >= threshold) return v % n;
    }
}

void mmcr_rng_shuffle_u32(mmcr_rng *r, uint32_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)mmcr_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
