/* A tiny test harness: CHECK records failures and keeps going; test_finish() prints
 * "N passed, M failed" and returns the process exit code (non-zero on any failure). */
#ifndef MMCR_TEST_UTIL_H
#define MMCR_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int test_passed_, test_failed_;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            test_passed_++;                                                          \
        } else {                                                                     \
            test_failed_++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                         \
    do {                                                                             \
        if (cond) {                                                                  \
            test_passed_++;                                                          \
        } else {                                                                     \
            test_failed_++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, atol, rtol)                                                \
    do {                                                                             \
        double a_ = (double)(a), b_ = (double)(b);                                   \
        int ok_ = fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_);                       \
        CHECK_MSG(ok_, "%s = %.17g vs %s = %.17g", #a, a_, #b, b_);                  \
    } while (0)

static inline int test_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

#endif
