/* Times one MMCR training step of libmmcr on synthetic input (no data loading), the MMCR
 * objective alone, or cblas_sgemm (the machine's reachable peak), and prints one JSON object.
 * bench/bench.py runs it as a child process per configuration, alternating with the PyTorch
 * twin (bench/torch_step.py), so each process's peak resident memory is its own.
 *
 *   bench_step step  --threads N --in-channels C --image-size S --width W --batch P --views K
 *                    [--conv onednn|gemm]
 *                    --proj-hidden H --proj-out D [--warmup 1] [--steps 3]
 *   bench_step loss  --threads N --P P --K K --D D [--lambda 0] [--warmup 2] [--steps 10]
 *   bench_step sgemm --threads N [--n 2048] [--warmup 1] [--steps 5]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>

#include "mmcr/core.h"
#include "mmcr/loss.h"
#include "mmcr/nn.h"
#include "mmcr/optim.h"

typedef struct bench_args {
    const char *mode;
    const char *conv; /* convolution kernels: onednn (the default) or gemm */
    int threads, in_channels, image_size, width, batch, views, proj_hidden, proj_out;
    int P, K, D, n, warmup, steps;
    double lambda;
} bench_args;

static void usage(void) {
    fprintf(stderr, "usage: bench_step step|loss|sgemm [--threads N] [options]  (see bench/bench_step.c)\n");
    exit(2);
}

static int parse_int(const char *flag, const char *v) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == 0 || *end != 0 || x < 0 || x > 1000000000L) {
        fprintf(stderr, "bench_step: option %s expects a non-negative integer, got '%s'\n", flag, v);
        exit(2);
    }
    return (int)x;
}

static void parse(bench_args *a, int argc, char **argv) {
    if (argc < 2) usage();
    *a = (bench_args){.mode = argv[1], .conv = "onednn", .threads = 1, .in_channels = 1, .image_size = 28, .width = 16,
                      .batch = 128, .views = 2, .proj_hidden = 512, .proj_out = 128, .P = 256, .K = 2, .D = 128,
                      .n = 2048, .warmup = -1, .steps = -1, .lambda = 0};
    for (int i = 2; i < argc; i += 2) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(f, "--conv")) {
            if (strcmp(v, "onednn") && strcmp(v, "gemm")) {
                fprintf(stderr, "bench_step: --conv expects onednn or gemm, got '%s'\n", v);
                exit(2);
            }
            a->conv = v;
            continue;
        }
        if (!strcmp(f, "--lambda")) {
            a->lambda = strtod(v, NULL);
            continue;
        }
        struct { const char *flag; int *dst; } t[] = {
            {"--threads", &a->threads}, {"--in-channels", &a->in_channels}, {"--image-size", &a->image_size},
            {"--width", &a->width}, {"--batch", &a->batch}, {"--views", &a->views},
            {"--proj-hidden", &a->proj_hidden}, {"--proj-out", &a->proj_out}, {"--P", &a->P}, {"--K", &a->K},
            {"--D", &a->D}, {"--n", &a->n}, {"--warmup", &a->warmup}, {"--steps", &a->steps}};
        size_t j;
        for (j = 0; j < sizeof t / sizeof t[0]; j++)
            if (!strcmp(f, t[j].flag)) break;
        if (j == sizeof t / sizeof t[0]) {
            fprintf(stderr, "bench_step: unknown option '%s'\n", f);
            exit(2);
        }
        *t[j].dst = parse_int(f, v);
    }
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(const double *v, int n) {
    double *s = malloc(sizeof *s * (size_t)n);
    if (!s) return v[0];
    memcpy(s, v, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* Peak resident memory of this process in KiB: VmHWM from /proc/self/status. ru_maxrss is the
 * fallback only: Linux carries the parent's high-water mark across fork + exec into it. */
static long maxrss_kb(void) {
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld", &kb) == 1) break;
        fclose(f);
    }
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb;
}

static void print_times(const double *ms, int n) {
    printf("\"ms\":[");
    for (int i = 0; i < n; i++) printf("%s%.3f", i ? "," : "", ms[i]);
    printf("],\"median_ms\":%.4f", median(ms, n));
}

static void fill_normal(float *x, size_t n, uint64_t seed) {
    mmcr_rng r;
    mmcr_rng_seed(&r, seed, 0, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)mmcr_rng_normal(&r);
}

static void die(const char *what, mmcr_status st, const mmcr_err *err) {
    fprintf(stderr, "bench_step: %s failed: %s (%s)\n", what, mmcr_status_str(st), err->msg);
    exit(1);
}

/* One training step as the trainer does it: zero grads, forward of all P*K views, MMCR loss,
 * backward, Adam update. */
static int bench_train_step(const bench_args *a) {
    mmcr_err err = {{0}};
    mmcr_model_config mc;
    mmcr_model_config_default(&mc);
    mc.in_channels = a->in_channels;
    mc.image_size = a->image_size;
    mc.width = a->width;
    mc.proj_hidden = a->proj_hidden;
    mc.proj_out = a->proj_out;
    const int nviews = a->batch * a->views;
    mmcr_model *m = NULL;
    mmcr_status st = mmcr_model_create(&m, &mc, nviews, &err);
    if (st != MMCR_OK) die("mmcr_model_create", st, &err);
    st = mmcr_model_set_conv_backend(m, strcmp(a->conv, "gemm") ? MMCR_CONV_ONEDNN : MMCR_CONV_GEMM);
    if (st != MMCR_OK) {
        fprintf(stderr, "bench_step: --conv %s is not available in this build\n", a->conv);
        exit(2);
    }
    mmcr_model_init(m, 0);
    const int D = mmcr_model_embed_dim(m);
    mmcr_loss *loss = NULL;
    st = mmcr_loss_create(&loss, a->batch, a->views, D, a->lambda, &err);
    if (st != MMCR_OK) die("mmcr_loss_create", st, &err);
    mmcr_optim_config oc;
    mmcr_optim_config_default(&oc, MMCR_OPTIM_ADAM);
    oc.lr = 2e-3;
    oc.weight_decay = 1e-6;
    int nt = mmcr_model_num_tensors(m);
    mmcr_tensor_info *ti = malloc(sizeof *ti * (size_t)nt);
    size_t nimg = (size_t)nviews * (size_t)a->in_channels * (size_t)a->image_size * (size_t)a->image_size;
    float *images = mmcr_alloc(sizeof(float) * nimg);
    float *dy = mmcr_alloc(sizeof(float) * (size_t)nviews * (size_t)D);
    if (!ti || !images || !dy) {
        fprintf(stderr, "bench_step: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nt; i++) ti[i] = *mmcr_model_tensor(m, i);
    mmcr_optim *opt = NULL;
    st = mmcr_optim_create(&opt, &oc, mmcr_model_num_params(m), ti, nt, &err);
    if (st != MMCR_OK) die("mmcr_optim_create", st, &err);
    fill_normal(images, nimg, 1);

    const int total = a->warmup + a->steps;
    double *ms = malloc(sizeof *ms * (size_t)(total > 0 ? total : 1));
    double last_loss = 0;
    for (int s = 0; s < total; s++) {
        double t0 = mmcr_now();
        const float *feat, *emb;
        mmcr_loss_result res;
        mmcr_model_zero_grad(m);
        st = mmcr_model_forward(m, images, nviews, 1, 1, &feat, &emb);
        if (st != MMCR_OK) die("mmcr_model_forward", st, &err);
        st = mmcr_loss_forward_f32(loss, emb, &res, &err);
        if (st != MMCR_OK) die("mmcr_loss_forward_f32", st, &err);
        mmcr_loss_backward_f32(loss, dy);
        mmcr_model_backward(m, dy);
        mmcr_optim_step(opt, mmcr_model_params(m), mmcr_model_grads(m), oc.lr);
        ms[s] = 1e3 * (mmcr_now() - t0);
        last_loss = res.loss;
    }
    const double fwd = mmcr_model_forward_flops(m);
    printf("{\"side\":\"mmcr\",\"mode\":\"step\",\"conv\":\"%s\",\"threads\":%d,\"views\":%d,\"params\":%zu,",
           mmcr_conv_backend_name(mmcr_model_get_conv_backend(m)), mmcr_get_threads(),
           nviews, mmcr_model_num_params(m));
    print_times(ms + a->warmup, a->steps);
    printf(",\"forward_flops_per_view\":%.6g,\"last_loss\":%.6g,\"maxrss_kb\":%ld}\n", fwd, last_loss, maxrss_kb());
    free(ms);
    free(ti);
    mmcr_free(images);
    mmcr_free(dy);
    mmcr_optim_destroy(&opt);
    mmcr_loss_destroy(&loss);
    mmcr_model_destroy(&m);
    return 0;
}

static int bench_loss(const bench_args *a) {
    mmcr_err err = {{0}};
    mmcr_loss *loss = NULL;
    mmcr_status st = mmcr_loss_create(&loss, a->P, a->K, a->D, a->lambda, &err);
    if (st != MMCR_OK) die("mmcr_loss_create", st, &err);
    size_t n = (size_t)a->P * (size_t)a->K * (size_t)a->D;
    float *y = mmcr_alloc(sizeof(float) * n), *dy = mmcr_alloc(sizeof(float) * n);
    if (!y || !dy) {
        fprintf(stderr, "bench_step: out of memory\n");
        return 1;
    }
    fill_normal(y, n, 2);
    const int total = a->warmup + a->steps;
    double *ms = malloc(sizeof *ms * (size_t)(total > 0 ? total : 1));
    mmcr_loss_result res;
    for (int s = 0; s < total; s++) {
        double t0 = mmcr_now();
        st = mmcr_loss_forward_f32(loss, y, &res, &err);
        if (st != MMCR_OK) die("mmcr_loss_forward_f32", st, &err);
        mmcr_loss_backward_f32(loss, dy);
        ms[s] = 1e3 * (mmcr_now() - t0);
    }
    printf("{\"side\":\"mmcr\",\"mode\":\"loss\",\"threads\":%d,\"P\":%d,\"K\":%d,\"D\":%d,\"lambda\":%g,",
           mmcr_get_threads(), a->P, a->K, a->D, a->lambda);
    print_times(ms + a->warmup, a->steps);
    printf(",\"loss\":%.9g,\"maxrss_kb\":%ld}\n", res.loss, maxrss_kb());
    free(ms);
    mmcr_free(y);
    mmcr_free(dy);
    mmcr_loss_destroy(&loss);
    return 0;
}

static int bench_sgemm(const bench_args *a) {
    const size_t n = (size_t)a->n;
    float *A = mmcr_alloc(sizeof(float) * n * n), *B = mmcr_alloc(sizeof(float) * n * n);
    float *C = mmcr_alloc(sizeof(float) * n * n);
    if (!A || !B || !C) {
        fprintf(stderr, "bench_step: out of memory\n");
        return 1;
    }
    fill_normal(A, n * n, 3);
    fill_normal(B, n * n, 4);
    const int total = a->warmup + a->steps;
    double *ms = malloc(sizeof *ms * (size_t)(total > 0 ? total : 1));
    for (int s = 0; s < total; s++) {
        double t0 = mmcr_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->n, a->n, a->n, 1.0f, A, a->n, B, a->n, 0.0f, C,
                    a->n);
        ms[s] = 1e3 * (mmcr_now() - t0);
    }
    double med = median(ms + a->warmup, a->steps);
    printf("{\"side\":\"mmcr\",\"mode\":\"sgemm\",\"threads\":%d,\"n\":%d,", mmcr_get_threads(), a->n);
    print_times(ms + a->warmup, a->steps);
    printf(",\"gflops\":%.3f,\"maxrss_kb\":%ld}\n", 2.0 * (double)n * (double)n * (double)n / (med * 1e-3) / 1e9,
           maxrss_kb());
    free(ms);
    mmcr_free(A);
    mmcr_free(B);
    mmcr_free(C);
    return 0;
}

int main(int argc, char **argv) {
    bench_args a;
    parse(&a, argc, argv);
    mmcr_set_threads(a.threads);
    int is_step = !strcmp(a.mode, "step"), is_loss = !strcmp(a.mode, "loss"), is_gemm = !strcmp(a.mode, "sgemm");
    if (!is_step && !is_loss && !is_gemm) usage();
    if (a.warmup < 0) a.warmup = is_loss ? 2 : 1;
    if (a.steps < 1) a.steps = is_loss ? 10 : is_step ? 3 : 5;
    if (is_step) return bench_train_step(&a);
    if (is_loss) return bench_loss(&a);
    return bench_sgemm(&a);
}
