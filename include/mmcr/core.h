/* mmcr core: status codes, error details, logging, RNG streams, aligned memory, threads.
 *
 * Conventions used by every module of libmmcr:
 *  - functions that can fail because of the user or the environment return mmcr_status and,
 *    when given a non-NULL mmcr_err*, write a one-line human message naming the file/option;
 *  - the library never prints to stdout and never exits; it logs through mmcr_log_fn;
 *  - broken internal invariants use MMCR_ASSERT, which is always compiled in.
 */
#ifndef MMCR_CORE_H
#define MMCR_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mmcr_status {
    MMCR_OK = 0,
    MMCR_ERR_NOMEM,     /* allocation failed */
    MMCR_ERR_IO,        /* open/read/write/rename failed */
    MMCR_ERR_FORMAT,    /* file exists but is malformed or truncated */
    MMCR_ERR_ARG,       /* bad option or argument value, shape mismatch from the caller */
    MMCR_ERR_NONFINITE, /* NaN/Inf in inputs, embeddings, loss or gradients */
    MMCR_ERR_NUMERIC,   /* a decomposition did not converge */
    MMCR_ERR_MPI,       /* distributed runtime failure */
    MMCR_ERR_INTERRUPTED,
    MMCR_STATUS_COUNT
} mmcr_status;

const char *mmcr_status_str(mmcr_status s);

/* Detail for the last failure of a call; pass NULL to ignore. */
typedef struct mmcr_err {
    char msg[512];
} mmcr_err;

/* Sets err->msg (printf-style) if err != NULL and returns s, so a failing path can be
 * written `return mmcr_err_set(err, MMCR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));` */
mmcr_status mmcr_err_set(mmcr_err *err, mmcr_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- logging: the library reports progress through a callback, never stdout ---- */
typedef enum mmcr_log_level { MMCR_LOG_DEBUG, MMCR_LOG_INFO, MMCR_LOG_WARN, MMCR_LOG_ERROR } mmcr_log_level;
typedef void (*mmcr_log_fn)(void *user, mmcr_log_level level, const char *msg);
typedef struct mmcr_logger {
    mmcr_log_fn fn; /* NULL: silent */
    void *user;
} mmcr_logger;
void mmcr_logf(const mmcr_logger *lg, mmcr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- always-on assertions for internal invariants (bugs, not user errors) ---- */
_Noreturn void mmcr_abort(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define MMCR_ASSERT(cond)                                                                    \
    do {                                                                                     \
        if (!(cond)) mmcr_abort(__FILE__, __LINE__, "assertion failed: %s", #cond);         \
    } while (0)

/* ---- explicit RNG streams (xoshiro256**, seeded by splitmix64) ---- */
typedef struct mmcr_rng {
    uint64_t s[4];
} mmcr_rng;
/* Stream for (seed, a, b, c): e.g. (seed, epoch, sample, view) for augmentations, so the
 * draws do not depend on thread schedule or rank count. */
void mmcr_rng_seed(mmcr_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
uint64_t mmcr_rng_u64(mmcr_rng *r);
double mmcr_rng_uniform(mmcr_rng *r);             /* [0, 1) */
double mmcr_rng_normal(mmcr_rng *r);              /* N(0, 1), Box-Muller, no cached state */
uint64_t mmcr_rng_below(mmcr_rng *r, uint64_t n); /* uniform integer in [0, n) */
void mmcr_rng_shuffle_u32(mmcr_rng *r, uint32_t *a, size_t n);

/* ---- aligned memory (64-byte) ---- */
void *mmcr_alloc(size_t bytes);       /* zeroed; NULL on failure */
void *mmcr_alloc_or_err(size_t bytes, mmcr_err *err, const char *what);
void mmcr_free(void *p);

/* ---- threads: one owner (OpenMP); OpenBLAS is the OpenMP build and follows it ---- */
int mmcr_num_cores(void);
void mmcr_set_threads(int n); /* n <= 0: all cores */
int mmcr_get_threads(void);

/* Wall clock in seconds (monotonic). */
double mmcr_now(void);

#ifdef __cplusplus
}
#endif
#endif
