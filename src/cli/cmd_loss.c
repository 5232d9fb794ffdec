/* mmcr loss: the MMCR objective, bound, PPE and (optionally) the gradient of the embeddings in a
 * .npy file. float64 input is computed in float64 end to end; float32 input is widened to double
 * for the whole computation and the gradient is rounded back once. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mmcr/io.h"
#include "mmcr/loss.h"

static void loss_usage(FILE *f) {
    fprintf(f,
            "usage: mmcr loss --views K [--lambda L] [--grad OUT.npy] [--threads N] IN.npy\n"
            "\n"
            "Computes the MMCR objective of the embeddings in IN.npy and prints one JSON object with\n"
            "P, K, D, lambda, global_nuclear_norm, local_term, loss, bound and ppe.\n"
            "\n"
            "  IN.npy          float32 or float64, either (P*K) x D with the K views of each\n"
            "                  datum in consecutive rows, or P x K x D\n"
            "  --views K       views per datum, K >= 1 (optional for a 3-D input: its middle axis)\n"
            "  --lambda L      weight of the local term, L >= 0 (default 0: local term skipped)\n"
            "  --grad OUT.npy  write dLoss/dY, same dtype and shape as the input\n"
            "  --threads N     threads, N >= 1 (default: all cores)\n"
            "  --help          print this help\n"
            "\n"
            "Exit status: 0 on success, 1 on bad input or option values, 2 on usage errors.\n");
}

/* Whole-string numeric parsing: no trailing junk, no overflow. */
static int parse_long(const char *s, long *v) {
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (!*s || *end || errno) return 0;
    *v = x;
    return 1;
}

static int parse_double(const char *s, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(x)) return 0;
    *v = x;
    return 1;
}

#define FAIL(code, ...)                                                                          \
    do {                                                                                         \
        fprintf(stderr, "mmcr loss: ");                                                          \
        fprintf(stderr, __VA_ARGS__);                                                            \
        fputc('\n', stderr);                                                                     \
        rc = (code);                                                                             \
        goto out;                                                                                \
    } while (0)

int cmd_loss(int argc, char **argv) {
    const char *views_s = NULL, *lambda_s = NULL, *grad_path = NULL, *threads_s = NULL, *in_path = NULL;
    int rc = 0;
    mmcr_npy in = {0};
    mmcr_loss *loss = NULL;
    void *grad = NULL;
    mmcr_err err = {{0}};

    int opts_done = 0; /* after "--" every argument is a file name, even one starting with "--" */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && !strcmp(a, "--")) {
            opts_done = 1;
            continue;
        }
        if (!opts_done && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            loss_usage(stdout);
            return 0;
        }
        if (!opts_done && !strncmp(a, "--", 2) && a[2]) {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            const char **slot = NULL;
            if (nlen == 5 && !strncmp(name, "views", 5)) slot = &views_s;
            else if (nlen == 6 && !strncmp(name, "lambda", 6)) slot = &lambda_s;
            else if (nlen == 4 && !strncmp(name, "grad", 4)) slot = &grad_path;
            else if (nlen == 7 && !strncmp(name, "threads", 7)) slot = &threads_s;
            if (!slot) {
                fprintf(stderr, "mmcr loss: unknown option '%s'\n", a);
                loss_usage(stderr);
                return 2;
            }
            if (eq) {
                *slot = eq + 1;
            } else if (i + 1 < argc) {
                *slot = argv[++i];
            } else {
                fprintf(stderr, "mmcr loss: option '%s' needs a value\n", a);
                loss_usage(stderr);
                return 2;
            }
        } else if (!in_path) {
            in_path = a;
        } else {
            fprintf(stderr, "mmcr loss: unexpected argument '%s' (one input file only)\n", a);
            loss_usage(stderr);
            return 2;
        }
    }
    if (!in_path) {
        fprintf(stderr, "mmcr loss: no input file given\n");
        loss_usage(stderr);
        return 2;
    }

    long views = 0;
    if (views_s && (!parse_long(views_s, &views) || views < 1 || views > INT_MAX))
        FAIL(1, "--views must be an integer >= 1 (got '%s')", views_s);
    double lambda = 0.0;
    if (lambda_s && (!parse_double(lambda_s, &lambda) || lambda < 0))
        FAIL(1, "--lambda must be a finite number >= 0 (got '%s')", lambda_s);
    if (threads_s) {
        long nt = 0;
        if (!parse_long(threads_s, &nt) || nt < 1 || nt > 4096)
            FAIL(1, "--threads must be an integer between 1 and 4096 (got '%s')", threads_s);
        mmcr_set_threads((int)nt);
    }

    if (mmcr_npy_read(&in, in_path, &err) != MMCR_OK) FAIL(1, "%s", err.msg);
    if (in.dtype != MMCR_F32 && in.dtype != MMCR_F64)
        FAIL(1, "'%s': embeddings must be float32 or float64", in_path);
    int64_t rows, D, K;
    if (in.ndim == 2) {
        if (!views_s) {
            fprintf(stderr, "mmcr loss: --views is required for a 2-D input ('%s' is %lld x %lld)\n", in_path,
                    (long long)in.shape[0], (long long)in.shape[1]);
            rc = 2;
            goto out;
        }
        rows = in.shape[0];
        D = in.shape[1];
        K = views;
        if (rows % K)
            FAIL(1, "'%s': %lld rows are not divisible by --views %ld", in_path, (long long)rows, views);
    } else if (in.ndim == 3) {
        K = in.shape[1];
        D = in.shape[2];
        rows = in.shape[0] * K;
        if (views_s && views != K)
            FAIL(1, "'%s': --views %ld does not match the input's view axis (%lld)", in_path, views, (long long)K);
    } else {
        FAIL(1, "'%s': expected a 2-D (P*K) x D or 3-D P x K x D array, got %d dimensions", in_path, in.ndim);
    }
    if (rows < 1 || D < 1 || K < 1) FAIL(1, "'%s': the array is empty", in_path);
    int64_t P = rows / K;
    if (P > INT_MAX || D > INT_MAX || K > INT_MAX) FAIL(1, "'%s': the array is too large", in_path);

    if (mmcr_loss_create(&loss, (int)P, (int)K, (int)D, lambda, &err) != MMCR_OK) FAIL(1, "%s", err.msg);
    mmcr_loss_set_compute_grad(loss, grad_path != NULL);
    mmcr_loss_result res;
    mmcr_status st = in.dtype == MMCR_F64 ? mmcr_loss_forward_f64(loss, in.data, &res, &err)
                                          : mmcr_loss_forward_f32(loss, in.data, &res, &err);
    if (st != MMCR_OK) FAIL(1, "'%s': %s", in_path, err.msg);

    if (grad_path) {
        size_t n = (size_t)rows * (size_t)D;
        grad = mmcr_alloc(n * mmcr_dtype_size(in.dtype));
        if (!grad) FAIL(1, "out of memory for the gradient");
        if (in.dtype == MMCR_F64)
            mmcr_loss_backward_f64(loss, grad);
        else
            mmcr_loss_backward_f32(loss, grad);
        if (mmcr_npy_write(grad_path, in.dtype, in.ndim, in.shape, grad, &err) != MMCR_OK) FAIL(1, "%s", err.msg);
    }

    printf("{\"P\": %d, \"K\": %d, \"D\": %d, \"lambda\": %.17g, \"global_nuclear_norm\": %.17g, "
           "\"local_term\": %.17g, \"loss\": %.17g, \"bound\": %.17g, \"ppe\": %.17g}\n",
           res.P, res.K, res.D, res.lambda, res.global_nuclear_norm, res.local_term, res.loss, res.bound, res.ppe);
    if (fflush(stdout) != 0 || ferror(stdout)) FAIL(1, "cannot write to standard output");
out:
    mmcr_free(grad);
    mmcr_loss_destroy(&loss);
    mmcr_npy_free(&in);
    return rc;
}
