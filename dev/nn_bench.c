/* Times forward + backward of the encoder + projector for one training batch.
 *
 * Build from the repository root (not part of the CMake build):
 *   cc -O3 -march=x86-64-v2 -mtune=native -fopenmp -Iinclude -Isrc \
 *      -I/usr/include/x86_64-linux-gnu/openblas-openmp dev/nn_bench.c src/nn/*.c src/core/*.c \
 *      -L/usr/lib/x86_64-linux-gnu/openblas-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp \
 *      -lopenblas -llapacke -lm -o nn_bench
 * Run: ./nn_bench [threads=2] [batch=256] [width=16] [image=28] [channels=1] [iters=10] */
#include "mmcr/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Process CPU time: with one thread it is less disturbed by other load than the wall clock. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int batch = argc > 2 ? atoi(argv[2]) : 256;
    mmcr_model_config c;
    mmcr_model_config_default(&c);
    c.width = argc > 3 ? atoi(argv[3]) : 16;
    c.image_size = argc > 4 ? atoi(argv[4]) : 28;
    c.in_channels = argc > 5 ? atoi(argv[5]) : 1;
    int iters = argc > 6 ? atoi(argv[6]) : 10;
    c.proj_hidden = 512;
    c.proj_out = 128;
    mmcr_set_threads(threads);
    mmcr_model *m;
    mmcr_err err;
    if (mmcr_model_create(&m, &c, batch, &err) != MMCR_OK) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 1;
    }
    mmcr_model_init(m, 1);
    size_t nimg = (size_t)batch * c.in_channels * c.image_size * c.image_size;
    float *img = malloc(nimg * sizeof *img), *de = malloc((size_t)batch * c.proj_out * sizeof *de);
    mmcr_rng r;
    mmcr_rng_seed(&r, 1, 2, 3, 4);
    for (size_t i = 0; i < nimg; i++) img[i] = (float)mmcr_rng_uniform(&r);
    for (size_t i = 0; i < (size_t)batch * c.proj_out; i++) de[i] = (float)(1e-3 * mmcr_rng_normal(&r));
    double tf = 0, tb = 0, best = 1e30, cpu = 0;
    for (int it = -2; it < iters; it++) {
        const float *f, *e;
        double c0 = cpu_now(), t0 = mmcr_now();
        mmcr_model_zero_grad(m);
        mmcr_model_forward(m, img, batch, 1, 1, &f, &e);
        double t1 = mmcr_now();
        mmcr_model_backward(m, de);
        double t2 = mmcr_now();
        if (it < 0) continue; /* warm-up */
        cpu += cpu_now() - c0;
        tf += t1 - t0;
        tb += t2 - t1;
        if (t2 - t0 < best) best = t2 - t0;
    }
    double fl = mmcr_model_forward_flops(m) * batch;
    printf("width %d image %dx%dx%d batch %d threads %d params %zu\n", c.width, c.image_size, c.image_size,
           c.in_channels, batch, threads, mmcr_model_num_params(m));
    printf("forward %.1f ms  backward %.1f ms  total %.1f ms (best %.1f ms)  %.1f GFLOP/s (3x forward FLOPs)\n",
           1e3 * tf / iters, 1e3 * tb / iters, 1e3 * (tf + tb) / iters, 1e3 * best, 3 * fl / ((tf + tb) / iters) * 1e-9);
    printf("cpu time %.1f ms per batch (all threads)\n", 1e3 * cpu / iters);
    mmcr_model_destroy(&m);
    free(img), free(de);
    return 0;
}
