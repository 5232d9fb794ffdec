/* One table defines every option of a command (style.md practice 11): the same table parses
 * `--key value` / `--key=value` flags and `key = value` config files, range-checks values,
 * rejects unknown keys, generates --help, and prints the effective configuration. */
#ifndef MMCR_CONFIG_H
#define MMCR_CONFIG_H

#include <stdio.h>

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mmcr_opt_type { MMCR_OPT_INT, MMCR_OPT_DOUBLE, MMCR_OPT_STRING, MMCR_OPT_BOOL, MMCR_OPT_CHOICE } mmcr_opt_type;

typedef struct mmcr_option {
    const char *name;     /* long name without dashes, e.g. "lr" */
    mmcr_opt_type type;
    size_t offset;        /* offsetof(struct, field): int, double, char[256] string, int bool, int choice index */
    const char *def;      /* default as text */
    double min, max;      /* numeric range (inclusive) */
    const char *choices;  /* MMCR_OPT_CHOICE: "sgd|lars|adam|adamw" */
    const char *help;
} mmcr_option;

#define MMCR_OPT_STRLEN 256

/* Fill every field from the table defaults. */
mmcr_status mmcr_options_defaults(const mmcr_option *opts, int n, void *cfg, mmcr_err *err);
/* Set one option from text; err names the option and the allowed range. */
mmcr_status mmcr_options_set(const mmcr_option *opts, int n, void *cfg, const char *name, const char *value, mmcr_err *err);
/* Parse a `key = value` file (# comments). err names the file and line. */
mmcr_status mmcr_options_load_file(const mmcr_option *opts, int n, void *cfg, const char *path, mmcr_err *err);
/* Parse argv: --key value, --key=value, --flag (bool), --config FILE (applied where it
 * appears). Non-option arguments are returned in positional[] (up to max_pos).
 * Sets *want_help when --help/-h is present. */
mmcr_status mmcr_options_parse_argv(const mmcr_option *opts, int n, void *cfg, int argc, char **argv,
                                    char **positional, int max_pos, int *n_pos, int *want_help, mmcr_err *err);
void mmcr_options_help(FILE *f, const mmcr_option *opts, int n);
/* Effective configuration as one JSON object (locale independent). */
void mmcr_options_json(FILE *f, const mmcr_option *opts, int n, const void *cfg);
/* A JSON-escaped copy of s into out. */
void mmcr_json_escape(char *out, size_t cap, const char *s);

#ifdef __cplusplus
}
#endif
#endif
