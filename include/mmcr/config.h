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
/* Range rule: INT and DOUBLE values must lie in [min, max]; min == max == 0 means "no range"
 * (only the type's limits). DOUBLE values must be finite. BOOL accepts 1|0|true|false (also
 * yes|no|on|off), STRING must be shorter than MMCR_OPT_STRLEN, CHOICE must be one of `choices`. */

#define MMCR_OPT_STRLEN 256

/* Fill every field from the table defaults. */
mmcr_status mmcr_options_defaults(const mmcr_option *opts, int n, void *cfg, mmcr_err *err);
/* Set one option from text; err names the option and the allowed range. */
mmcr_status mmcr_options_set(const mmcr_option *opts, int n, void *cfg, const char *name, const char *value, mmcr_err *err);
/* Parse a `key = value` file (# comments). err names the file and line. */
mmcr_status mmcr_options_load_file(const mmcr_option *opts, int n, void *cfg, const char *path, mmcr_err *err);
/* Parse argv: --key value, --key=value, --flag (bool), --no-flag (bool, sets 0),
 * --config FILE / --config=FILE (applied where it appears, so later flags override it),
 * "--" ends the options. argv[0] is the command name and is skipped. Non-option arguments
 * are returned in positional[] (up to max_pos, pointers into argv). When --help or -h is
 * present, *want_help is set and nothing else is parsed (so help works next to bad options). */
mmcr_status mmcr_options_parse_argv(const mmcr_option *opts, int n, void *cfg, int argc, char **argv,
                                    char **positional, int max_pos, int *n_pos, int *want_help, mmcr_err *err);
void mmcr_options_help(FILE *f, const mmcr_option *opts, int n);
/* Effective configuration as one JSON object (locale independent). */
void mmcr_options_json(FILE *f, const mmcr_option *opts, int n, const void *cfg);
/* A JSON-escaped copy of s into out (without the quotes), always NUL-terminated; truncated at
 * a whole escape sequence if cap is too small (mmcr_json_escape_len tells the size needed). */
void mmcr_json_escape(char *out, size_t cap, const char *s);
/* Bytes of the escaped form of s, without the terminating NUL. */
size_t mmcr_json_escape_len(const char *s);

/* The entry called name, or NULL. */
const mmcr_option *mmcr_options_find(const mmcr_option *opts, int n, const char *name);

/* Strict, locale-independent number parsing: the whole string must be a decimal number
 * ([+-]digits[.digits][e[+-]digits]; no spaces, hex, inf or nan); MMCR_ERR_ARG otherwise or
 * when the value overflows (double: not finite; int64: out of range). No message is set. */
mmcr_status mmcr_parse_double(const char *s, double *out);
mmcr_status mmcr_parse_int64(const char *s, int64_t *out);
/* "%.17g" (round-trips every double) with '.' as the decimal point whatever the locale;
 * non-finite values are written as null, "inf" or "-inf" never appear. */
void mmcr_format_double(char *out, size_t cap, double v);

#ifdef __cplusplus
}
#endif
#endif
