/* Global average pooling from CNHW planes (or the blocked layout of the oneDNN path) to
 * row-major (N x C) features. */
#include "mmcr/nn.h"
#include "nn/nn_internal.h"

void mmcr_gap_forward(float *y, const float *x, int c, int n, int hw) {
    const double inv = 1.0 / (double)hw;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)c * (size_t)n * (size_t)hw >= 32768)
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)ch * (size_t)n + (size_t)i) * (size_t)hw;
            double s = 0.0;
            for (int t = 0; t < hw; t++) s += (double)p[t];
            y[(size_t)i * (size_t)c + (size_t)ch] = (float)(s * inv);
        }
}

void mmcr_gap_backward(float *dx, const float *dy, int c, int n, int hw) {
    const float inv = 1.0f / (float)hw;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)c * (size_t)n * (size_t)hw >= 32768)
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < n; i++) {
            float *p = dx + ((size_t)ch * (size_t)n + (size_t)i) * (size_t)hw;
            const float g = dy[(size_t)i * (size_t)c + (size_t)ch] * inv;
            for (int t = 0; t < hw; t++) p[t] = g;
        }
}

void mmcr_gap_forward_blocked(float *y, const float *x, int c, int n, int hw, int B) {
    const double inv = 1.0 / (double)hw;
    const int nb = c / B;
#pragma omp parallel for schedule(static) if ((size_t)c * (size_t)n * (size_t)hw >= 32768)
    for (long r = 0; r < (long)n * nb; r++) {
        const float *p = x + (size_t)r * (size_t)hw * (size_t)B;
        double s[NN_BLK_MAX] = {0};
        for (int t = 0; t < hw; t++)
            for (int l = 0; l < B; l++) s[l] += (double)p[(size_t)t * (size_t)B + (size_t)l];
        float *out = y + (size_t)(r / nb) * (size_t)c + (size_t)(r % nb) * (size_t)B;
        for (int l = 0; l < B; l++) out[l] = (float)(s[l] * inv);
    }
}

void mmcr_gap_backward_blocked(float *dx, const float *dy, int c, int n, int hw, int B) {
    const float inv = 1.0f / (float)hw;
    const int nb = c / B;
#pragma omp parallel for schedule(static) if ((size_t)c * (size_t)n * (size_t)hw >= 32768)
    for (long r = 0; r < (long)n * nb; r++) {
        float *p = dx + (size_t)r * (size_t)hw * (size_t)B;
        const float *g = dy + (size_t)(r / nb) * (size_t)c + (size_t)(r % nb) * (size_t)B;
        for (int t = 0; t < hw; t++)
            for (int l = 0; l < B; l++) p[(size_t)t * (size_t)B + (size_t)l] = g[l] * inv;
    }
}
