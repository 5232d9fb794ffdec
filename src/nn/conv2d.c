/* 2-D convolution on CNHW activations: im2col + GEMM over chunks of whole images.
 *
 * col has K = Cin*k*k rows and one column per output pixel (image-major, as y); each chunk's
 * GEMM writes a column block of y (leading dimension N*Ho*Wo). 1x1 stride-1 convs need no
 * im2col.
 *
 * Chunk size. Small chunks (4 MiB of column matrix) keep im2col's output in cache for the GEMM
 * and measured fastest (about 25% against one whole-batch GEMM on 2 cores). But each chunk costs
 * two to four parallel regions, and with libgomp's default spinning wait policy every region
 * costs a scheduler time slice whenever another process (or a data-loader thread) holds one
 * of the cores: measured 2-4x slower than whole-batch GEMMs on a loaded 2-core machine. So the
 * small chunks are used with one thread, OMP_WAIT_POLICY=passive or a short GOMP_SPINCOUNT; otherwise one GEMM
 * covers up to CONV_COL_MAX floats (the whole batch for the demo network). */
#include "nn/nn_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Chunk of column matrix (floats) when parallel regions are cheap: 4 MiB. */
#ifndef CONV_COL_BUDGET
#define CONV_COL_BUDGET ((size_t)1 << 20)
#endif
/* Largest column matrix of one GEMM otherwise (128 MiB); also what the workspace is sized for. */
#ifndef CONV_COL_MAX
#define CONV_COL_MAX ((size_t)1 << 25)
#endif
/* Below this many column entries a parallel region costs more than it saves. */
#define CONV_PAR_MIN 32768

static int conv_is_pointwise(const mmcr_conv2d_desc *d) { return d->k == 1 && d->stride == 1 && d->pad == 0; }

/* Stride 1 with "same" output size (2p = k - 1), the bulk of ResNet. */
static int conv_is_same(const mmcr_conv2d_desc *d, int h, int w, int ho, int wo) {
    return d->stride == 1 && ho == h && wo == w && 2 * d->pad == d->k - 1;
}

/* Whether waiting OpenMP threads sleep instead of spinning, or spin only briefly (libgomp reads
 * the same variables; the mmcr CLI sets GOMP_SPINCOUNT=3000). */
static int conv_waits_passively(void) {
    const char *v = getenv("OMP_WAIT_POLICY"), *c = getenv("GOMP_SPINCOUNT");
    if (v && (v[0] == 'p' || v[0] == 'P')) return 1;
    return c && *c >= '0' && *c <= '9' && strtol(c, NULL, 10) <= 100000;
}

static int conv_chunk_images(const mmcr_conv2d_desc *d, int n, int ho, int wo, size_t budget) {
    size_t per_image = (size_t)d->cin * (size_t)d->k * (size_t)d->k * (size_t)ho * (size_t)wo;
    size_t c = per_image ? budget / per_image : (size_t)n;
    if (c < 1) c = 1;
    if (c > (size_t)n) c = (size_t)n;
    return (int)c;
}

/* Images per chunk for this call (never more than the workspace, sized with CONV_COL_MAX). */
static int conv_chunk_now(const mmcr_conv2d_desc *d, int n, int ho, int wo) {
    const int cheap_regions = omp_get_max_threads() == 1 || conv_waits_passively();
    return conv_chunk_images(d, n, ho, wo, cheap_regions ? CONV_COL_BUDGET : CONV_COL_MAX);
}

size_t mmcr_conv2d_ws_floats(const mmcr_conv2d_desc *d, int n, int h, int w) {
    if (conv_is_pointwise(d) || n <= 0) return 0;
    int ho = mmcr_conv_out(h, d->k, d->stride, d->pad), wo = mmcr_conv_out(w, d->k, d->stride, d->pad);
    int nc = conv_chunk_images(d, n, ho, wo, CONV_COL_BUDGET > CONV_COL_MAX ? CONV_COL_BUDGET : CONV_COL_MAX);
    return (size_t)d->cin * (size_t)d->k * (size_t)d->k * (size_t)nc * (size_t)ho * (size_t)wo;
}

/* Output columns [ox0, ox1) whose input column ox*s - p + kx lies inside [0, w). */
static void conv_valid_range(int wo, int w, int s, int p, int kx, int *ox0, int *ox1) {
    int lo = p - kx; /* need ox*s >= lo */
    int a = lo <= 0 ? 0 : (lo + s - 1) / s;
    int hi = w - 1 + p - kx; /* need ox*s <= hi */
    int b = hi < 0 ? 0 : hi / s + 1;
    if (b > wo) b = wo;
    if (a > b) a = b;
    *ox0 = a;
    *ox1 = b;
}

/* "Same" stride-1 convs: in CNHW the images of one channel are contiguous, so a column-matrix
 * row is the channel's chunk shifted by (ky - p) * w + (kx - p) as one long vectorisable copy;
 * only the positions whose source pixel lies in the padding (which the flat shift wraps into a
 * neighbouring row or image) are then cleared. */

/* Zeroes the positions of one column-matrix row (nc planes of h x w) whose source pixel
 * (oy + dy, ox + dx) is outside the image. */
static void same_clear_border(float *row, int nc, int h, int w, int dy, int dx) {
    const size_t hw = (size_t)h * (size_t)w;
    /* Invalid output rows: the first -dy (dy < 0) or the last dy (dy > 0) rows of each plane. */
    const int nrows = dy < 0 ? -dy : dy, rfirst = dy < 0 ? 0 : h - dy;
    /* Invalid output columns, likewise. */
    const int ncols = dx < 0 ? -dx : dx, cfirst = dx < 0 ? 0 : w - dx;
    for (int i = 0; i < nc; i++) {
        float *pl = row + (size_t)i * hw;
        if (nrows) {
            float *z = pl + (size_t)rfirst * (size_t)w;
            for (size_t t = 0; t < (size_t)nrows * (size_t)w; t++) z[t] = 0.0f;
        }
        /* Columns: a strided store per row; k = 3 makes this one float per row. */
        for (int c = 0; c < ncols; c++) {
            float *z = pl + cfirst + c;
            for (int oy = 0; oy < h; oy++) z[(size_t)oy * (size_t)w] = 0.0f;
        }
    }
}

static void im2col_same(float *col, const float *x, const mmcr_conv2d_desc *d, int n, int h, int w, int n0,
                        int nc) {
    const int k = d->k, p = d->pad, rows = d->cin * k * k;
    const size_t hw = (size_t)h * (size_t)w;
    const ptrdiff_t len = (ptrdiff_t)((size_t)nc * hw);
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)len >= CONV_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const int ci = r / (k * k), ky = (r / k) % k, kx = r % k;
        const float *src = x + ((size_t)ci * (size_t)n + (size_t)n0) * hw;
        float *dst = col + (size_t)r * (size_t)len;
        const ptrdiff_t off = (ptrdiff_t)(ky - p) * w + (kx - p);
        /* Source index j + off must stay inside this chunk; outside it is padding anyway. */
        const ptrdiff_t j0 = off < 0 ? -off : 0, j1 = off > 0 ? len - off : len;
        for (ptrdiff_t j = 0; j < j0; j++) dst[j] = 0.0f;
        for (ptrdiff_t j = j0; j < j1; j++) dst[j] = src[j + off];
        for (ptrdiff_t j = j1 > j0 ? j1 : j0; j < len; j++) dst[j] = 0.0f;
        same_clear_border(dst, nc, h, w, ky - p, kx - p);
    }
}

/* Inverse of im2col_same: dx (+)= shifted rows of dcol. The border positions of dcol are
 * cleared first (dcol is scratch), so the flat shifted add never wraps a value across rows. */
static void col2im_same(float *dx, float *dcol, const mmcr_conv2d_desc *d, int n, int h, int w, int n0, int nc,
                        int accumulate) {
    const int k = d->k, p = d->pad;
    const size_t hw = (size_t)h * (size_t)w;
    const ptrdiff_t len = (ptrdiff_t)((size_t)nc * hw);
#pragma omp parallel for schedule(static) if ((size_t)d->cin * k * k * (size_t)len >= CONV_PAR_MIN)
    for (int ci = 0; ci < d->cin; ci++) {
        float *dst = dx + ((size_t)ci * (size_t)n + (size_t)n0) * hw;
        /* Without accumulation the centre tap (zero shift, no border) is copied, not added,
         * which saves clearing dx first. */
        const float *centre = dcol + (size_t)((ci * k + p) * k + p) * (size_t)len;
        if (accumulate) {
            for (ptrdiff_t j = 0; j < len; j++) dst[j] += centre[j];
        } else {
            for (ptrdiff_t j = 0; j < len; j++) dst[j] = centre[j];
        }
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                if (ky == p && kx == p) continue;
                float *row = dcol + (size_t)((ci * k + ky) * k + kx) * (size_t)len;
                const ptrdiff_t off = (ptrdiff_t)(ky - p) * w + (kx - p);
                const ptrdiff_t j0 = off < 0 ? -off : 0, j1 = off > 0 ? len - off : len;
                same_clear_border(row, nc, h, w, ky - p, kx - p);
                for (ptrdiff_t j = j0; j < j1; j++) dst[j + off] += row[j];
            }
    }
}

/* col (K x nc*Ho*Wo) from images [n0, n0+nc) of x (Cin, N, H, W). */
static void im2col_chunk(float *col, const float *x, const mmcr_conv2d_desc *d, int n, int h, int w,
                         int ho, int wo, int n0, int nc) {
    if (conv_is_same(d, h, w, ho, wo)) {
        im2col_same(col, x, d, n, h, w, n0, nc);
        return;
    }
    const int k = d->k, s = d->stride, p = d->pad, rows = d->cin * k * k;
    const size_t hw = (size_t)h * (size_t)w, howo = (size_t)ho * (size_t)wo, ld = (size_t)nc * howo;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)rows * ld >= CONV_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < nc; i++) {
            const int ci = r / (k * k), ky = (r / k) % k, kx = r % k;
            const float *src = x + ((size_t)ci * (size_t)n + (size_t)(n0 + i)) * hw;
            float *dst = col + (size_t)r * ld + (size_t)i * howo;
            int ox0, ox1;
            conv_valid_range(wo, w, s, p, kx, &ox0, &ox1);
            const int off = kx - p; /* input column = ox * s + off, inside the row for [ox0, ox1) */
            for (int oy = 0; oy < ho; oy++) {
                float *drow = dst + (size_t)oy * (size_t)wo;
                const int iy = oy * s - p + ky;
                if (iy < 0 || iy >= h) {
                    for (int ox = 0; ox < wo; ox++) drow[ox] = 0.0f;
                    continue;
                }
                const float *srow = src + (size_t)iy * (size_t)w;
                for (int ox = 0; ox < ox0; ox++) drow[ox] = 0.0f;
                /* Plain loops, not memcpy: rows are short and the call would dominate. */
                if (s == 1) {
                    for (int ox = ox0; ox < ox1; ox++) drow[ox] = srow[ox + off];
                } else {
                    for (int ox = ox0; ox < ox1; ox++) drow[ox] = srow[ox * s + off];
                }
                for (int ox = ox1; ox < wo; ox++) drow[ox] = 0.0f;
            }
        }
    }
}

/* dx images [n0, n0+nc) (+)= col2im(dcol). Each thread owns whole (channel, image) planes. */
static void col2im_chunk(float *dx, float *dcol, const mmcr_conv2d_desc *d, int n, int h, int w,
                         int ho, int wo, int n0, int nc, int accumulate) {
    if (conv_is_same(d, h, w, ho, wo)) {
        col2im_same(dx, dcol, d, n, h, w, n0, nc, accumulate);
        return;
    }
    const int k = d->k, s = d->stride, p = d->pad;
    const size_t hw = (size_t)h * (size_t)w, howo = (size_t)ho * (size_t)wo, ld = (size_t)nc * howo;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)d->cin * k * k * ld >= CONV_PAR_MIN)
    for (int ci = 0; ci < d->cin; ci++) {
        for (int i = 0; i < nc; i++) {
            float *dst = dx + ((size_t)ci * (size_t)n + (size_t)(n0 + i)) * hw;
            if (!accumulate) memset(dst, 0, hw * sizeof(float));
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    const int r = (ci * k + ky) * k + kx;
                    const float *src = dcol + (size_t)r * ld + (size_t)i * howo;
                    int ox0, ox1;
                    conv_valid_range(wo, w, s, p, kx, &ox0, &ox1);
                    for (int oy = 0; oy < ho; oy++) {
                        const int iy = oy * s - p + ky;
                        if (iy < 0 || iy >= h) continue;
                        float *drow = dst + (size_t)iy * (size_t)w;
                        const float *srow = src + (size_t)oy * (size_t)wo;
                        if (s == 1) {
                            float *dd = drow + (ox0 - p + kx);
                            const float *ss = srow + ox0;
                            for (int j = 0; j < ox1 - ox0; j++) dd[j] += ss[j];
                        } else {
                            for (int ox = ox0; ox < ox1; ox++) drow[ox * s - p + kx] += srow[ox];
                        }
                    }
                }
            }
        }
    }
}

void mmcr_conv2d_forward(float *y, const float *x, const float *wt, const mmcr_conv2d_desc *d,
                         int n, int h, int w, float *ws) {
    const int ho = mmcr_conv_out(h, d->k, d->stride, d->pad), wo = mmcr_conv_out(w, d->k, d->stride, d->pad);
    const int kk = d->cin * d->k * d->k;
    const size_t howo = (size_t)ho * (size_t)wo, mtot = (size_t)n * howo;
    MMCR_ASSERT(ho > 0 && wo > 0 && n > 0);
    if (conv_is_pointwise(d)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->cout, (int)mtot, d->cin, 1.0f, wt, d->cin,
                    x, (int)mtot, 0.0f, y, (int)mtot);
        return;
    }
    const int nc = conv_chunk_now(d, n, ho, wo);
    for (int n0 = 0; n0 < n; n0 += nc) {
        const int cur = n - n0 < nc ? n - n0 : nc;
        const int mc = (int)((size_t)cur * howo);
        im2col_chunk(ws, x, d, n, h, w, ho, wo, n0, cur);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->cout, mc, kk, 1.0f, wt, kk, ws, mc, 0.0f,
                    y + (size_t)n0 * howo, (int)mtot);
    }
}

void mmcr_conv2d_backward_acc(float *dx, float *dwt, const float *dy, const float *x, const float *wt,
                              const mmcr_conv2d_desc *d, int n, int h, int w, float *ws, int accumulate_dx) {
    const int ho = mmcr_conv_out(h, d->k, d->stride, d->pad), wo = mmcr_conv_out(w, d->k, d->stride, d->pad);
    const int kk = d->cin * d->k * d->k;
    const size_t howo = (size_t)ho * (size_t)wo, mtot = (size_t)n * howo;
    MMCR_ASSERT(ho > 0 && wo > 0 && n > 0);
    if (conv_is_pointwise(d)) {
        /* dW += dY x^T ; dx = W^T dY */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d->cout, d->cin, (int)mtot, 1.0f, dy, (int)mtot,
                    x, (int)mtot, 1.0f, dwt, d->cin);
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d->cin, (int)mtot, d->cout, 1.0f, wt, d->cin,
                        dy, (int)mtot, accumulate_dx ? 1.0f : 0.0f, dx, (int)mtot);
        return;
    }
    const int nc = conv_chunk_now(d, n, ho, wo);
    for (int n0 = 0; n0 < n; n0 += nc) {
        const int cur = n - n0 < nc ? n - n0 : nc;
        const int mc = (int)((size_t)cur * howo);
        const float *dyc = dy + (size_t)n0 * howo;
        im2col_chunk(ws, x, d, n, h, w, ho, wo, n0, cur);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d->cout, kk, mc, 1.0f, dyc, (int)mtot, ws, mc, 1.0f,
                    dwt, kk);
        if (dx) {
            /* The column matrix is dead after the dW GEMM: reuse it for dcol. */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, mc, d->cout, 1.0f, wt, kk, dyc, (int)mtot,
                        0.0f, ws, mc);
            col2im_chunk(dx, ws, d, n, h, w, ho, wo, n0, cur, accumulate_dx);
        }
    }
}

void mmcr_conv2d_backward(float *dx, float *dwt, const float *dy, const float *x, const float *wt,
                          const mmcr_conv2d_desc *d, int n, int h, int w, float *ws) {
    mmcr_conv2d_backward_acc(dx, dwt, dy, x, wt, d, n, h, w, ws, 0);
}

/* ---- references: direct loops with double accumulation ---- */

void mmcr_conv2d_forward_ref(float *y, const float *x, const float *wt, const mmcr_conv2d_desc *d, int n, int h,
                             int w) {
    const int k = d->k, s = d->stride, p = d->pad;
    const int ho = mmcr_conv_out(h, k, s, p), wo = mmcr_conv_out(w, k, s, p);
    for (int co = 0; co < d->cout; co++)
        for (int i = 0; i < n; i++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double acc = 0.0;
                    for (int ci = 0; ci < d->cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                acc += (double)wt[((size_t)(co * d->cin + ci) * k + ky) * k + kx] *
                                       (double)x[(((size_t)ci * n + i) * h + iy) * w + ix];
                            }
                    y[(((size_t)co * n + i) * ho + oy) * wo + ox] = (float)acc;
                }
}

void mmcr_conv2d_backward_ref(float *dx, float *dwt, const float *dy, const float *x, const float *wt,
                              const mmcr_conv2d_desc *d, int n, int h, int w) {
    const int k = d->k, s = d->stride, p = d->pad;
    const int ho = mmcr_conv_out(h, k, s, p), wo = mmcr_conv_out(w, k, s, p);
    /* dW[co,ci,ky,kx] += sum over (i, oy, ox) of dy * x */
    for (int co = 0; co < d->cout; co++)
        for (int ci = 0; ci < d->cin; ci++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    double acc = 0.0;
                    for (int i = 0; i < n; i++)
                        for (int oy = 0; oy < ho; oy++)
                            for (int ox = 0; ox < wo; ox++) {
                                int iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                acc += (double)dy[(((size_t)co * n + i) * ho + oy) * wo + ox] *
                                       (double)x[(((size_t)ci * n + i) * h + iy) * w + ix];
                            }
                    dwt[((size_t)(co * d->cin + ci) * k + ky) * k + kx] += (float)acc;
                }
    if (!dx) return;
    /* dx[ci,i,iy,ix] = sum over (co, ky, kx) with a matching output pixel of W * dy */
    for (int ci = 0; ci < d->cin; ci++)
        for (int i = 0; i < n; i++)
            for (int iy = 0; iy < h; iy++)
                for (int ix = 0; ix < w; ix++) {
                    double acc = 0.0;
                    for (int co = 0; co < d->cout; co++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int ty = iy + p - ky, tx = ix + p - kx;
                                if (ty < 0 || tx < 0 || ty % s || tx % s) continue;
                                int oy = ty / s, ox = tx / s;
                                if (oy >= ho || ox >= wo) continue;
                                acc += (double)wt[((size_t)(co * d->cin + ci) * k + ky) * k + kx] *
                                       (double)dy[(((size_t)co * n + i) * ho + oy) * wo + ox];
                            }
                    dx[(((size_t)ci * n + i) * h + iy) * w + ix] = (float)acc;
                }
}
