/* Conversions between CNHW planes and the blocked layout (N, C/B, H*W, B) of the oneDNN path.
 * The model never needs them on its hot path (it stays in one layout per pass); tests use them to
 * compare the blocked ops with the CNHW reference ops. */
#include "nn/nn_internal.h"

void nn_cnhw_to_blocked(float *dst, const float *src, int c, int n, size_t hw, int B) {
    const int nb = c / B;
    for (int i = 0; i < n; i++)
        for (int cb = 0; cb < nb; cb++)
            for (size_t t = 0; t < hw; t++)
                for (int l = 0; l < B; l++)
                    dst[(((size_t)i * (size_t)nb + (size_t)cb) * hw + t) * (size_t)B + (size_t)l] =
                        src[((size_t)(cb * B + l) * (size_t)n + (size_t)i) * hw + t];
}

void nn_blocked_to_cnhw(float *dst, const float *src, int c, int n, size_t hw, int B) {
    const int nb = c / B;
    for (int i = 0; i < n; i++)
        for (int cb = 0; cb < nb; cb++)
            for (size_t t = 0; t < hw; t++)
                for (int l = 0; l < B; l++)
                    dst[((size_t)(cb * B + l) * (size_t)n + (size_t)i) * hw + t] =
                        src[(((size_t)i * (size_t)nb + (size_t)cb) * hw + t) * (size_t)B + (size_t)l];
}
