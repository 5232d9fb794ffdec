/* The option table: one description of every option drives argv and config-file parsing,
 * range checks, --help and the effective-configuration JSON (style.md practice 11). */
#include "mmcr/config.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- strict number parsing ---------------- */

/* Length of the decimal-number prefix of s ([+-]digits[.digits][e[+-]digits], at least one
 * mantissa digit), or 0 if s does not start with one. */
static size_t decimal_prefix(const char *s, int *is_integer) {
    size_t i = 0, mant = 0;
    *is_integer = 1;
    if (s[i] == '+' || s[i] == '-') i++;
    while (isdigit((unsigned char)s[i])) i++, mant++;
    if (s[i] == '.') {
        *is_integer = 0;
        i++;
        while (isdigit((unsigned char)s[i])) i++, mant++;
    }
    if (mant == 0) return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1, ed = 0;
        if (s[j] == '+' || s[j] == '-') j++;
        while (isdigit((unsigned char)s[j])) j++, ed++;
        if (ed == 0) return 0; /* "1e": a dangling exponent makes the whole string invalid */
        *is_integer = 0;
        i = j;
    }
    return i;
}

mmcr_status mmcr_parse_double(const char *s, double *out) {
    int is_int;
    if (!s) return MMCR_ERR_ARG;
    size_t len = decimal_prefix(s, &is_int);
    if (len == 0 || s[len] != '\0') return MMCR_ERR_ARG;
    /* strtod follows LC_NUMERIC; swap '.' for the locale's decimal point so "0.5" always
     * means one half, whatever locale the host program set. */
    const char *dp = localeconv()->decimal_point;
    size_t dpl = (dp && dp[0]) ? strlen(dp) : 1;
    char stackbuf[128];
    size_t need = len * dpl + 1;
    char *buf = need <= sizeof stackbuf ? stackbuf : malloc(need);
    if (!buf) return MMCR_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' && dp && dp[0]) {
            memcpy(buf + k, dp, dpl);
            k += dpl;
        } else {
            buf[k++] = s[i];
        }
    }
    buf[k] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    int ok = end == buf + k && isfinite(v);
    if (buf != stackbuf) free(buf);
    if (!ok) return MMCR_ERR_ARG; /* ERANGE underflow gives a finite tiny value: accepted */
    *out = v;
    return MMCR_OK;
}

mmcr_status mmcr_parse_int64(const char *s, int64_t *out) {
    int is_int;
    if (!s) return MMCR_ERR_ARG;
    size_t len = decimal_prefix(s, &is_int);
    if (len == 0 || s[len] != '\0' || !is_int) return MMCR_ERR_ARG;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0') return MMCR_ERR_ARG;
    *out = (int64_t)v;
    return MMCR_OK;
}

void mmcr_format_double(char *out, size_t cap, double v) {
    if (cap == 0) return;
    if (!isfinite(v)) {
        snprintf(out, cap, "null");
        return;
    }
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.17g", v);
    /* Replace whatever the locale used as decimal point by '.'. */
    size_t k = 0;
    for (size_t i = 0; tmp[i] && k + 1 < cap; i++) {
        char c = tmp[i];
        if (isdigit((unsigned char)c) || c == '-' || c == '+' || c == 'e' || c == 'E') {
            out[k++] = c;
        } else if (k == 0 || out[k - 1] != '.') {
            out[k++] = '.'; /* a (possibly multi-byte) decimal point becomes one '.' */
        }
    }
    out[k] = '\0';
}

/* ---------------- JSON escaping ---------------- */

/* Escaped form of one byte into e (at most 7 bytes incl. NUL); returns its length. */
static size_t escape_byte(unsigned char c, char e[8]) {
    switch (c) {
    case '"': return (size_t)snprintf(e, 8, "\\\"");
    case '\\': return (size_t)snprintf(e, 8, "\\\\");
    case '\b': return (size_t)snprintf(e, 8, "\\b");
    case '\f': return (size_t)snprintf(e, 8, "\\f");
    case '\n': return (size_t)snprintf(e, 8, "\\n");
    case '\r': return (size_t)snprintf(e, 8, "\\r");
    case '\t': return (size_t)snprintf(e, 8, "\\t");
    default:
        if (c < 0x20 || c == 0x7f) return (size_t)snprintf(e, 8, "\\u%04x", (unsigned)c);
        e[0] = (char)c;
        e[1] = '\0';
        return 1;
    }
}

size_t mmcr_json_escape_len(const char *s) {
    size_t n = 0;
    char e[8];
    for (; s && *s; s++) n += escape_byte((unsigned char)*s, e);
    return n;
}

void mmcr_json_escape(char *out, size_t cap, const char *s) {
    if (cap == 0) return;
    size_t k = 0;
    char e[8];
    for (; s && *s; s++) {
        size_t l = escape_byte((unsigned char)*s, e);
        if (k + l + 1 > cap) break;
        memcpy(out + k, e, l);
        k += l;
    }
    out[k] = '\0';
}

/* ---------------- the table ---------------- */

const mmcr_option *mmcr_options_find(const mmcr_option *opts, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, name)) return &opts[i];
    return NULL;
}

static const char *type_name(mmcr_opt_type t) {
    switch (t) {
    case MMCR_OPT_INT: return "int";
    case MMCR_OPT_DOUBLE: return "float";
    case MMCR_OPT_STRING: return "string";
    case MMCR_OPT_BOOL: return "bool";
    case MMCR_OPT_CHOICE: return "choice";
    }
    return "?";
}

static int has_range(const mmcr_option *o) { return !(o->min == 0 && o->max == 0); }

/* Index of word (length len) in the '|'-separated list, or -1. */
static int choice_index(const char *choices, const char *word) {
    if (!choices) return -1;
    size_t wl = strlen(word);
    int idx = 0;
    const char *p = choices;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == wl && !strncmp(p, word, l)) return idx;
        if (!bar) return -1;
        p = bar + 1;
        idx++;
    }
}

/* Copies the idx-th choice into out; empty if there is none. */
static void choice_name(const char *choices, int idx, char *out, size_t cap) {
    out[0] = '\0';
    if (!choices || idx < 0) return;
    const char *p = choices;
    for (int i = 0; i < idx; i++) {
        p = strchr(p, '|');
        if (!p) return;
        p++;
    }
    const char *bar = strchr(p, '|');
    size_t l = bar ? (size_t)(bar - p) : strlen(p);
    if (l >= cap) l = cap - 1;
    memcpy(out, p, l);
    out[l] = '\0';
}

static int parse_bool(const char *v, int *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcmp(v, yes[i])) return *out = 1, 1;
        if (!strcmp(v, no[i])) return *out = 0, 1;
    }
    return 0;
}

static void fmt_num(char *out, size_t cap, double v) { mmcr_format_double(out, cap, v); }

static mmcr_status set_value(const mmcr_option *o, void *cfg, const char *value, mmcr_err *err) {
    char *field = (char *)cfg + o->offset;
    char a[64], b[64];
    if (!value) return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s needs a value", o->name);
    switch (o->type) {
    case MMCR_OPT_INT: {
        int64_t v;
        if (mmcr_parse_int64(value, &v) != MMCR_OK)
            return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s: '%s' is not an integer", o->name, value);
        double lo = has_range(o) ? o->min : (double)INT32_MIN, hi = has_range(o) ? o->max : (double)INT32_MAX;
        if (lo < (double)INT32_MIN) lo = (double)INT32_MIN;
        if (hi > (double)INT32_MAX) hi = (double)INT32_MAX;
        if ((double)v < lo || (double)v > hi) {
            fmt_num(a, sizeof a, lo);
            fmt_num(b, sizeof b, hi);
            return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s: %s is out of range [%s, %s]", o->name, value, a, b);
        }
        *(int *)field = (int)v;
        return MMCR_OK;
    }
    case MMCR_OPT_DOUBLE: {
        double v;
        if (mmcr_parse_double(value, &v) != MMCR_OK)
            return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s: '%s' is not a finite decimal number", o->name, value);
        if (has_range(o) && (v < o->min || v > o->max)) {
            fmt_num(a, sizeof a, o->min);
            fmt_num(b, sizeof b, o->max);
            return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s: %s is out of range [%s, %s]", o->name, value, a, b);
        }
        *(double *)field = v;
        return MMCR_OK;
    }
    case MMCR_OPT_STRING: {
        size_t l = strlen(value);
        if (l >= MMCR_OPT_STRLEN)
            return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s: value is %zu bytes long, the limit is %d", o->name, l,
                                MMCR_OPT_STRLEN - 1);
        memcpy(field, value, l + 1);
        return MMCR_OK;
    }
    case MMCR_OPT_BOOL: {
        int v;
        if (!parse_bool(value, &v))
            return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s: '%s' is not a boolean (use 1|0|true|false)", o->name, value);
        *(int *)field = v;
        return MMCR_OK;
    }
    case MMCR_OPT_CHOICE: {
        int idx = choice_index(o->choices, value);
        if (idx < 0)
            return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s: '%s' is not one of %s", o->name, value,
                                o->choices ? o->choices : "(none)");
        *(int *)field = idx;
        return MMCR_OK;
    }
    }
    return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s: unknown option type", o->name);
}

/* Edit distance, for "did you mean". Names are short; a 64-wide row suffices. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63) la = 63;
    if (lb > 63) lb = 63;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *closest_name(const mmcr_option *opts, int n, const char *name) {
    const char *best = NULL;
    size_t bd = (size_t)-1;
    for (int i = 0; i < n; i++) {
        size_t d = edit_distance(name, opts[i].name);
        if (d < bd) bd = d, best = opts[i].name;
    }
    size_t l = strlen(name), limit = l / 3 > 2 ? l / 3 : 2;
    /* A prefix ("--batch" for "--batch-size") is also a useful suggestion. */
    if (best && bd > limit) {
        best = NULL;
        for (int i = 0; i < n && l >= 3; i++)
            if (!strncmp(opts[i].name, name, l)) return opts[i].name;
    }
    return best;
}

static mmcr_status unknown_option(const mmcr_option *opts, int n, const char *name, const char *prefix, mmcr_err *err) {
    const char *s = closest_name(opts, n, name);
    if (s) return mmcr_err_set(err, MMCR_ERR_ARG, "unknown option '%s%s' (did you mean '%s%s'?)", prefix, name, prefix, s);
    return mmcr_err_set(err, MMCR_ERR_ARG, "unknown option '%s%s' (see --help)", prefix, name);
}

mmcr_status mmcr_options_defaults(const mmcr_option *opts, int n, void *cfg, mmcr_err *err) {
    for (int i = 0; i < n; i++) {
        mmcr_status st = set_value(&opts[i], cfg, opts[i].def ? opts[i].def : "", err);
        if (st != MMCR_OK) {
            /* A bad default is a bug in the table, but report it rather than abort. */
            char msg[sizeof err->msg];
            if (err) {
                snprintf(msg, sizeof msg, "%s", err->msg);
                mmcr_err_set(err, st, "bad default in option table: %s", msg);
            }
            return st;
        }
    }
    return MMCR_OK;
}

mmcr_status mmcr_options_set(const mmcr_option *opts, int n, void *cfg, const char *name, const char *value, mmcr_err *err) {
    const mmcr_option *o = mmcr_options_find(opts, n, name);
    if (!o) return unknown_option(opts, n, name, "--", err);
    return set_value(o, cfg, value, err);
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t l = strlen(s);
    while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r' || s[l - 1] == '\n')) s[--l] = '\0';
    return s;
}

mmcr_status mmcr_options_load_file(const mmcr_option *opts, int n, void *cfg, const char *path, mmcr_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot open config file '%s': %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    mmcr_status st = MMCR_OK;
    mmcr_err inner;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            st = mmcr_err_set(err, MMCR_ERR_ARG, "%s:%ld: expected 'key = value'", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (val[0] == '"') { /* quoted: keeps spaces and '#'; only a comment may follow */
            char *close = strchr(val + 1, '"');
            char *rest = close ? close + 1 : NULL;
            while (rest && (*rest == ' ' || *rest == '\t')) rest++;
            if (!close || (*rest != '\0' && *rest != '#')) {
                st = mmcr_err_set(err, MMCR_ERR_ARG, "%s:%ld: unterminated quote or text after the closing quote", path, lineno);
                break;
            }
            *close = '\0';
            val++;
        } else { /* a comment after the value must follow whitespace ("lr = 0.1  # base") */
            for (char *c = val; *c; c++)
                if (*c == '#' && (c == val || c[-1] == ' ' || c[-1] == '\t')) {
                    *c = '\0';
                    val = trim(val);
                    break;
                }
        }
        const mmcr_option *o = mmcr_options_find(opts, n, key);
        if (!o) {
            unknown_option(opts, n, key, "", &inner);
            st = mmcr_err_set(err, MMCR_ERR_ARG, "%s:%ld: %s", path, lineno, inner.msg);
            break;
        }
        st = set_value(o, cfg, val, &inner);
        if (st != MMCR_OK) {
            mmcr_err_set(err, st, "%s:%ld: %s", path, lineno, inner.msg);
            break;
        }
    }
    if (st == MMCR_OK && ferror(f)) st = mmcr_err_set(err, MMCR_ERR_IO, "error reading config file '%s'", path);
    free(line);
    fclose(f);
    return st;
}

mmcr_status mmcr_options_parse_argv(const mmcr_option *opts, int n, void *cfg, int argc, char **argv,
                                    char **positional, int max_pos, int *n_pos, int *want_help, mmcr_err *err) {
    if (n_pos) *n_pos = 0;
    if (want_help) *want_help = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (want_help) *want_help = 1;
            return MMCR_OK;
        }
    }
    int np = 0, opts_done = 0;
    char name[128];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && !strcmp(a, "--")) {
            opts_done = 1;
            continue;
        }
        if (opts_done || a[0] != '-' || a[1] == '\0') {
            if (np >= max_pos || !positional)
                return mmcr_err_set(err, MMCR_ERR_ARG, "unexpected argument '%s' (at most %d allowed)", a, max_pos);
            positional[np++] = argv[i];
            if (n_pos) *n_pos = np;
            continue;
        }
        if (a[1] != '-') return mmcr_err_set(err, MMCR_ERR_ARG, "unknown option '%s' (options are --name; see --help)", a);
        const char *body = a + 2, *eq = strchr(body, '=');
        size_t nl = eq ? (size_t)(eq - body) : strlen(body);
        if (nl == 0 || nl >= sizeof name) return mmcr_err_set(err, MMCR_ERR_ARG, "bad option '%s'", a);
        memcpy(name, body, nl);
        name[nl] = '\0';
        const char *value = eq ? eq + 1 : NULL;
        if (!strcmp(name, "config") && !mmcr_options_find(opts, n, "config")) {
            if (!value) {
                if (i + 1 >= argc) return mmcr_err_set(err, MMCR_ERR_ARG, "option --config needs a file name");
                value = argv[++i];
            }
            mmcr_status st = mmcr_options_load_file(opts, n, cfg, value, err);
            if (st != MMCR_OK) return st;
            continue;
        }
        const mmcr_option *o = mmcr_options_find(opts, n, name);
        if (!o && !value && !strncmp(name, "no-", 3)) {
            const mmcr_option *b = mmcr_options_find(opts, n, name + 3);
            if (b && b->type == MMCR_OPT_BOOL) {
                *(int *)((char *)cfg + b->offset) = 0;
                continue;
            }
        }
        if (!o) return unknown_option(opts, n, name, "--", err);
        if (!value) {
            if (o->type == MMCR_OPT_BOOL) {
                value = "1";
            } else {
                if (i + 1 >= argc) return mmcr_err_set(err, MMCR_ERR_ARG, "option --%s needs a value", name);
                value = argv[++i];
            }
        }
        mmcr_status st = set_value(o, cfg, value, err);
        if (st != MMCR_OK) return st;
    }
    return MMCR_OK;
}

void mmcr_options_help(FILE *f, const mmcr_option *opts, int n) {
    char a[64], b[64], head[160];
    for (int i = 0; i < n; i++) {
        const mmcr_option *o = &opts[i];
        if (o->type == MMCR_OPT_BOOL)
            snprintf(head, sizeof head, "--%s, --no-%s", o->name, o->name);
        else
            snprintf(head, sizeof head, "--%s <%s>", o->name, o->type == MMCR_OPT_CHOICE ? "name" : type_name(o->type));
        fprintf(f, "  %-28s %s", head, o->help ? o->help : "");
        fprintf(f, " [%s; default %s", type_name(o->type), (o->def && o->def[0]) ? o->def : "\"\"");
        if ((o->type == MMCR_OPT_INT || o->type == MMCR_OPT_DOUBLE) && has_range(o)) {
            fmt_num(a, sizeof a, o->min);
            fmt_num(b, sizeof b, o->max);
            fprintf(f, "; range [%s, %s]", a, b);
        }
        if (o->type == MMCR_OPT_CHOICE) fprintf(f, "; one of %s", o->choices ? o->choices : "");
        fprintf(f, "]\n");
    }
    fprintf(f, "  %-28s %s\n", "--config <file>", "read 'key = value' lines (# comments) from a file, in place");
    fprintf(f, "  %-28s %s\n", "--help, -h", "print this help");
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    char e[8];
    for (; s && *s; s++) {
        escape_byte((unsigned char)*s, e);
        fputs(e, f);
    }
    fputc('"', f);
}

void mmcr_options_json(FILE *f, const mmcr_option *opts, int n, const void *cfg) {
    char num[64], ch[MMCR_OPT_STRLEN];
    fputs("{", f);
    for (int i = 0; i < n; i++) {
        const mmcr_option *o = &opts[i];
        const char *field = (const char *)cfg + o->offset;
        fputs(i ? ",\n  " : "\n  ", f);
        json_string(f, o->name);
        fputs(": ", f);
        switch (o->type) {
        case MMCR_OPT_INT: fprintf(f, "%d", *(const int *)field); break;
        case MMCR_OPT_DOUBLE:
            mmcr_format_double(num, sizeof num, *(const double *)field);
            fputs(num, f);
            break;
        case MMCR_OPT_STRING: {
            /* The field is a char[MMCR_OPT_STRLEN]; never read past it even if unterminated. */
            memcpy(ch, field, sizeof ch);
            ch[sizeof ch - 1] = '\0';
            json_string(f, ch);
            break;
        }
        case MMCR_OPT_BOOL: fputs(*(const int *)field ? "true" : "false", f); break;
        case MMCR_OPT_CHOICE:
            choice_name(o->choices, *(const int *)field, ch, sizeof ch);
            json_string(f, ch);
            break;
        }
    }
    fputs(n ? "\n}\n" : "}\n", f);
}
