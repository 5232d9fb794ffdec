/* How fast would oneDNN run the convolutions of one demo training step?
 *
 * With im2col + OpenBLAS sgemm convolutions the demo step (ResNet-18 width 16, 256 views of
 * 20x20x1) spent about 80 % of its time in them (docs/performance.md). This probe times oneDNN's convolution primitives
 * on the same layer shapes (forward training + backward data + backward weights, memory formats
 * chosen by oneDNN), and separately the reorders a caller that keeps plain NCHW activations
 * between layers would pay (src in, dst out, diff_dst in, diff_src out). Inputs are arbitrary
 * (timing only); each layer's time is the best of 10 repetitions.
 *
 * This probe is what led to src/nn/conv2d_onednn.c (the model's convolutions now run on these
 * kernels). Not part of the build; to run it (libdnnl-dev is a build dependency of libmmcr):
 *   gcc -O2 -std=c11 -fopenmp -Wall -Wextra -Werror dev/onednn_conv_probe.c -ldnnl -o /tmp/probe
 *   /tmp/probe 2     # threads
 */
#define _POSIX_C_SOURCE 200809L
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(x)                                                                                    \
    do {                                                                                            \
        dnnl_status_t s_ = (x);                                                                     \
        if (s_ != dnnl_success) {                                                                   \
            fprintf(stderr, "onednn_conv_probe: %s failed with status %d\n", #x, (int)s_);          \
            exit(1);                                                                                \
        }                                                                                           \
    } while (0)

typedef struct layer {
    int cin, cout, k, stride, side, count; /* count: how many convs of this shape the network has */
} layer;

/* The demo network at 20x20: stem, four stages of two basic blocks, 1x1 stride-2 shortcuts. */
static const layer LAYERS[] = {
    {1, 16, 3, 1, 20, 1},   {16, 16, 3, 1, 20, 4}, {16, 32, 3, 2, 20, 1},  {32, 32, 3, 1, 10, 3},
    {16, 32, 1, 2, 20, 1},  {32, 64, 3, 2, 10, 1}, {64, 64, 3, 1, 5, 3},   {32, 64, 1, 2, 10, 1},
    {64, 128, 3, 2, 5, 1},  {128, 128, 3, 1, 3, 3}, {64, 128, 1, 2, 5, 1},
};

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static dnnl_memory_t memory(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    float *p;
    CHECK(dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_get_data_handle(m, (void **)&p));
    size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000u) / 1000.0f - 0.5f;
    return m;
}

static dnnl_primitive_t primitive(const_dnnl_primitive_desc_t pd) {
    dnnl_primitive_t p;
    CHECK(dnnl_primitive_create(&p, pd));
    return p;
}

static dnnl_primitive_t reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL));
    return primitive(pd);
}

static const dnnl_memory_desc_t *md_of(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

int main(int argc, char **argv) {
    const int n = 256, reps = 10;
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1) threads = 1;
    omp_set_num_threads(threads);
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    double total_conv = 0.0, total_reorder = 0.0;
    for (size_t li = 0; li < sizeof LAYERS / sizeof LAYERS[0]; li++) {
        const layer l = LAYERS[li];
        const int pad = l.k / 2, out = (l.side + 2 * pad - l.k) / l.stride + 1;
        dnnl_dims_t src_dims = {n, l.cin, l.side, l.side}, w_dims = {l.cout, l.cin, l.k, l.k};
        dnnl_dims_t dst_dims = {n, l.cout, out, out}, strides = {l.stride, l.stride}, pads = {pad, pad};
        dnnl_memory_desc_t src_any, w_any, dst_any, src_plain, dst_plain;
        CHECK(dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims, dnnl_f32, dnnl_format_tag_any));
        CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, dnnl_f32, dnnl_format_tag_any));
        CHECK(dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dnnl_format_tag_any));
        CHECK(dnnl_memory_desc_init_by_tag(&src_plain, 4, src_dims, dnnl_f32, dnnl_nchw));
        CHECK(dnnl_memory_desc_init_by_tag(&dst_plain, 4, dst_dims, dnnl_f32, dnnl_nchw));

        dnnl_convolution_desc_t fwd_d, bwd_data_d, bwd_w_d;
        dnnl_primitive_desc_t fwd_pd, bwd_data_pd, bwd_w_pd;
        CHECK(dnnl_convolution_forward_desc_init(&fwd_d, dnnl_forward_training, dnnl_convolution_direct, &src_any,
                                                 &w_any, NULL, &dst_any, strides, pads, pads));
        CHECK(dnnl_primitive_desc_create(&fwd_pd, &fwd_d, NULL, engine, NULL));
        CHECK(dnnl_convolution_backward_data_desc_init(&bwd_data_d, dnnl_convolution_direct, &src_any, &w_any,
                                                       &dst_any, strides, pads, pads));
        CHECK(dnnl_primitive_desc_create(&bwd_data_pd, &bwd_data_d, NULL, engine, fwd_pd));
        CHECK(dnnl_convolution_backward_weights_desc_init(&bwd_w_d, dnnl_convolution_direct, &src_any, &w_any,
                                                          NULL, &dst_any, strides, pads, pads));
        CHECK(dnnl_primitive_desc_create(&bwd_w_pd, &bwd_w_d, NULL, engine, fwd_pd));

        dnnl_memory_t src = memory(md_of(fwd_pd, dnnl_query_src_md));
        dnnl_memory_t w = memory(md_of(fwd_pd, dnnl_query_weights_md));
        dnnl_memory_t dst = memory(md_of(fwd_pd, dnnl_query_dst_md));
        dnnl_memory_t diff_src = memory(md_of(bwd_data_pd, dnnl_query_diff_src_md));
        dnnl_memory_t diff_dst = memory(md_of(bwd_data_pd, dnnl_query_diff_dst_md));
        dnnl_memory_t w_bd = memory(md_of(bwd_data_pd, dnnl_query_weights_md));
        dnnl_memory_t src_bw = memory(md_of(bwd_w_pd, dnnl_query_src_md));
        dnnl_memory_t diff_dst_bw = memory(md_of(bwd_w_pd, dnnl_query_diff_dst_md));
        dnnl_memory_t diff_w = memory(md_of(bwd_w_pd, dnnl_query_diff_weights_md));
        dnnl_memory_t src_p = memory(&src_plain), dst_p = memory(&dst_plain);

        dnnl_primitive_t fwd = primitive(fwd_pd), bwd_data = primitive(bwd_data_pd), bwd_w = primitive(bwd_w_pd);
        dnnl_primitive_t r_src = reorder(&src_plain, md_of(fwd_pd, dnnl_query_src_md));
        dnnl_primitive_t r_dst = reorder(md_of(fwd_pd, dnnl_query_dst_md), &dst_plain);
        dnnl_primitive_t r_ddst = reorder(&dst_plain, md_of(bwd_data_pd, dnnl_query_diff_dst_md));
        dnnl_primitive_t r_dsrc = reorder(md_of(bwd_data_pd, dnnl_query_diff_src_md), &src_plain);

        dnnl_exec_arg_t a_fwd[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}};
        dnnl_exec_arg_t a_bd[] = {{DNNL_ARG_DIFF_SRC, diff_src}, {DNNL_ARG_WEIGHTS, w_bd}, {DNNL_ARG_DIFF_DST, diff_dst}};
        dnnl_exec_arg_t a_bw[] = {{DNNL_ARG_SRC, src_bw}, {DNNL_ARG_DIFF_WEIGHTS, diff_w}, {DNNL_ARG_DIFF_DST, diff_dst_bw}};
        dnnl_exec_arg_t a_r1[] = {{DNNL_ARG_FROM, src_p}, {DNNL_ARG_TO, src}};
        dnnl_exec_arg_t a_r2[] = {{DNNL_ARG_FROM, dst}, {DNNL_ARG_TO, dst_p}};
        dnnl_exec_arg_t a_r3[] = {{DNNL_ARG_FROM, dst_p}, {DNNL_ARG_TO, diff_dst}};
        dnnl_exec_arg_t a_r4[] = {{DNNL_ARG_FROM, diff_src}, {DNNL_ARG_TO, src_p}};

        double best_conv = 1e30, best_reorder = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = seconds();
            CHECK(dnnl_primitive_execute(fwd, stream, 3, a_fwd));
            CHECK(dnnl_primitive_execute(bwd_data, stream, 3, a_bd));
            CHECK(dnnl_primitive_execute(bwd_w, stream, 3, a_bw));
            CHECK(dnnl_stream_wait(stream));
            double t1 = seconds();
            CHECK(dnnl_primitive_execute(r_src, stream, 2, a_r1));
            CHECK(dnnl_primitive_execute(r_dst, stream, 2, a_r2));
            CHECK(dnnl_primitive_execute(r_ddst, stream, 2, a_r3));
            CHECK(dnnl_primitive_execute(r_dsrc, stream, 2, a_r4));
            CHECK(dnnl_stream_wait(stream));
            double t2 = seconds();
            if (t1 - t0 < best_conv) best_conv = t1 - t0;
            if (t2 - t1 < best_reorder) best_reorder = t2 - t1;
        }
        double gflop = 6.0 * n * l.cout * l.cin * l.k * l.k * out * out / 1e9; /* fwd + 2 bwd GEMMs */
        printf("conv %3d->%3d k%d s%d %2dx%-2d x%d: fwd+bwd %7.2f ms (%5.1f GFLOP/s), NCHW reorders %6.2f ms\n",
               l.cin, l.cout, l.k, l.stride, l.side, l.side, l.count, 1e3 * best_conv * l.count, gflop / best_conv,
               1e3 * best_reorder * l.count);
        total_conv += best_conv * l.count;
        total_reorder += best_reorder * l.count;
        /* Leaked on purpose: a short-lived probe. */
    }
    printf("%d thread(s): every convolution of one demo step: oneDNN %.1f ms, plus NCHW reorders %.1f ms\n", threads,
           1e3 * total_conv, 1e3 * total_reorder);
    return 0;
}
