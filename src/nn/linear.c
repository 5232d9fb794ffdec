/* Fully connected layer on row-major (N x In) inputs, weights (Out x In) as torch.nn.Linear. */
#include "mmcr/nn.h"

#include <cblas.h>

void mmcr_linear_forward(float *y, const float *x, const float *wt, const float *bias, int n, int in, int out) {
    /* y = x W^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, wt, in, 0.0f, y, out);
    if (!bias) return;
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * (size_t)out;
        for (int o = 0; o < out; o++) row[o] += bias[o];
    }
}

void mmcr_linear_backward(float *dx, float *dwt, float *dbias, const float *dy, const float *x, const float *wt,
                          int n, int in, int out) {
    /* dW += dY^T x */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dwt, in);
    if (dbias) {
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (int i = 0; i < n; i++) s += (double)dy[(size_t)i * (size_t)out + (size_t)o];
            dbias[o] += (float)s;
        }
    }
    /* dx = dY W */
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, wt, in, 0.0f, dx, in);
}
