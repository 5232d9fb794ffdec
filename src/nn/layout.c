/* Conversions between CNHW planes and the blocked layout (N, C/B, H*W, B) of the oneDNN path.
 * The model never needs them on its hot path (it stays in one layout per pass); tests use them to
 * compare the blocked ops with the CNHW reference ops. */
#include "nn/nn_internal.h"

/* One loop nest for both directions: element (i, channel cb*B + l, t) in each layout. */
static void convert(float *dst, const float *src, int c, int n, size_t hw, int B, int to_blocked) {
    const int nb = c / B;
    for (int i = 0; i < n; i++)
        for (int cb = 0; cb < nb; cb++)
            for (size_t t = 0; t < hw; t++)
                for (int l = 0; l < B; l++) {
                    const size_t pb = (((size_t)i * (size_t)nb + (size_t)cb) * hw + t) * (size_t)B + (size_t)l;
                    const size_t pc = ((size_t)(cb * B + l) * (size_t)n + (size_t)i) * hw + t;
                    if (to_blocked)
                        dst[pb] = src[pc];
                    else
                        dst[pc] = src[pb];
                }
}

void nn_cnhw_to_blocked(float *dst, const float *src, int c, int n, size_t hw, int B) {
    convert(dst, src, c, n, hw, B, 1);
}

void nn_blocked_to_cnhw(float *dst, const float *src, int c, int n, size_t hw, int B) {
    convert(dst, src, c, n, hw, B, 0);
}
