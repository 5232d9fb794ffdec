/* Aligned allocation, thread control and the clock. */
#include "mmcr/core.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void *mmcr_alloc(size_t bytes) {
    if (bytes == 0) bytes = 64;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return NULL;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void *mmcr_alloc_or_err(size_t bytes, mmcr_err *err, const char *what) {
    void *p = mmcr_alloc(bytes);
    if (!p) mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void mmcr_free(void *p) { free(p); }

int mmcr_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void mmcr_set_threads(int n) {
    if (n <= 0) n = mmcr_num_cores();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int mmcr_get_threads(void) { return omp_get_max_threads(); }

double mmcr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
