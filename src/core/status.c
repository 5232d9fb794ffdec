/* Status strings, error details, logging, aborts. */
#include "mmcr/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const status_names[MMCR_STATUS_COUNT] = {
    [MMCR_OK] = "ok",
    [MMCR_ERR_NOMEM] = "out of memory",
    [MMCR_ERR_IO] = "I/O error",
    [MMCR_ERR_FORMAT] = "malformed file",
    [MMCR_ERR_ARG] = "invalid argument",
    [MMCR_ERR_NONFINITE] = "non-finite value",
    [MMCR_ERR_NUMERIC] = "numerical failure",
    [MMCR_ERR_MPI] = "MPI failure",
    [MMCR_ERR_INTERRUPTED] = "interrupted",
};

const char *mmcr_status_str(mmcr_status s) {
    if ((int)s < 0 || s >= MMCR_STATUS_COUNT) return "unknown status";
    return status_names[s];
}

mmcr_status mmcr_err_set(mmcr_err *err, mmcr_status s, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

void mmcr_logf(const mmcr_logger *lg, mmcr_log_level level, const char *fmt, ...) {
    if (!lg || !lg->fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    lg->fn(lg->user, level, buf);
}

_Noreturn void mmcr_abort(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mmcr: internal error at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}
