/* ReLU. Forward keeps NaN (as torch.relu); backward passes dy where the output is positive. */
#include "mmcr/nn.h"

/* Below this many elements a parallel region costs more than it saves. */
#define RELU_PAR_MIN 65536

void mmcr_relu_forward(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= RELU_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void mmcr_relu_backward(float *dx, const float *dy, const float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= RELU_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i], v = y[i]; /* unconditional loads: the select vectorises */
        dx[i] = v > 0.0f ? g : 0.0f;
    }
}
