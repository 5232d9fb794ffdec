/* Option table: defaults, argv forms, config files, strict numbers, ranges, choices,
 * unknown keys with suggestions, help text and the effective-configuration JSON. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/config.h"
#include "test_util.h"

typedef struct tcfg {
    int epochs;
    double lr;
    char out[MMCR_OPT_STRLEN];
    int verbose;
    int optimizer;
    int batch_size;
    double wd;
} tcfg;

static const mmcr_option opts[] = {
    {"epochs", MMCR_OPT_INT, offsetof(tcfg, epochs), "10", 1, 100000, NULL, "training epochs"},
    {"lr", MMCR_OPT_DOUBLE, offsetof(tcfg, lr), "0.001", 0, 10, NULL, "base learning rate"},
    {"out", MMCR_OPT_STRING, offsetof(tcfg, out), "runs/a b", 0, 0, NULL, "output folder"},
    {"verbose", MMCR_OPT_BOOL, offsetof(tcfg, verbose), "0", 0, 0, NULL, "log more"},
    {"optimizer", MMCR_OPT_CHOICE, offsetof(tcfg, optimizer), "adam", 0, 0, "sgd|lars|adam|adamw", "optimiser"},
    {"batch-size", MMCR_OPT_INT, offsetof(tcfg, batch_size), "32", 1, 4096, NULL, "images per step"},
    {"wd", MMCR_OPT_DOUBLE, offsetof(tcfg, wd), "-1e-6", 0, 0, NULL, "weight decay (no range)"},
};
static const int nopts = (int)(sizeof opts / sizeof opts[0]);

static mmcr_status parse(tcfg *c, mmcr_err *e, int argc, const char **argv, char **pos, int *npos, int *help) {
    return mmcr_options_parse_argv(opts, nopts, c, argc, (char **)argv, pos, 4, npos, help, e);
}

static void test_defaults(void) {
    tcfg c;
    memset(&c, 0x5a, sizeof c);
    mmcr_err e;
    CHECK(mmcr_options_defaults(opts, nopts, &c, &e) == MMCR_OK);
    CHECK(c.epochs == 10 && c.lr == 0.001 && !strcmp(c.out, "runs/a b") && c.verbose == 0);
    CHECK(c.optimizer == 2 && c.batch_size == 32 && c.wd == -1e-6);
    /* A broken default is reported, not silently used. */
    mmcr_option bad = opts[0];
    bad.def = "0";
    CHECK(mmcr_options_defaults(&bad, 1, &c, &e) == MMCR_ERR_ARG && strstr(e.msg, "default") && strstr(e.msg, "--epochs"));
}

static void test_argv(void) {
    tcfg c;
    mmcr_err e;
    char *pos[4];
    int np, help;
    mmcr_options_defaults(opts, nopts, &c, &e);
    const char *a1[] = {"train", "--epochs", "5", "data.bin", "--lr=0.5", "--verbose", "--optimizer", "lars",
                        "--out=x=y", "--batch-size", "-0", "second", "--", "--epochs"};
    mmcr_status st = parse(&c, &e, 14, a1, pos, &np, &help);
    CHECK(st == MMCR_ERR_ARG && strstr(e.msg, "--batch-size")); /* -0 parses as 0 < 1 */
    const char *a2[] = {"train", "--epochs", "5", "data.bin", "--lr=0.5", "--verbose", "--optimizer", "lars",
                        "--out=x=y", "--batch-size", "+64", "second", "--", "--epochs"};
    st = parse(&c, &e, 14, a2, pos, &np, &help);
    CHECK(st == MMCR_OK);
    CHECK(c.epochs == 5 && c.lr == 0.5 && c.verbose == 1 && c.optimizer == 1 && !strcmp(c.out, "x=y") && c.batch_size == 64);
    CHECK(np == 3 && help == 0);
    CHECK(np == 3 && !strcmp(pos[0], "data.bin") && !strcmp(pos[1], "second") && !strcmp(pos[2], "--epochs"));

    const char *a3[] = {"train", "--no-verbose", "--verbose=true"};
    c.verbose = 0;
    CHECK(parse(&c, &e, 2, a3, pos, &np, &help) == MMCR_OK && c.verbose == 0);
    CHECK(parse(&c, &e, 3, a3, pos, &np, &help) == MMCR_OK && c.verbose == 1);
    const char *a4[] = {"train", "--verbose=0"};
    CHECK(parse(&c, &e, 2, a4, pos, &np, &help) == MMCR_OK && c.verbose == 0);
    const char *a5[] = {"train", "--verbose=maybe"};
    CHECK(parse(&c, &e, 2, a5, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "--verbose"));
    const char *a6[] = {"train", "--no-lr"};
    CHECK(parse(&c, &e, 2, a6, pos, &np, &help) == MMCR_ERR_ARG);

    /* Help wins over everything, even bad options. */
    const char *h[] = {"train", "--bogus", "-h"};
    CHECK(parse(&c, &e, 3, h, pos, &np, &help) == MMCR_OK && help == 1);
    const char *h2[] = {"train", "--", "--help"};
    CHECK(parse(&c, &e, 3, h2, pos, &np, &help) == MMCR_OK && help == 0 && np == 1);

    /* Missing value, short options, too many positionals, negative values. */
    const char *m1[] = {"train", "--epochs"};
    CHECK(parse(&c, &e, 2, m1, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "--epochs") && strstr(e.msg, "value"));
    const char *m2[] = {"train", "-x"};
    CHECK(parse(&c, &e, 2, m2, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "-x"));
    const char *m3[] = {"train", "a", "b", "c", "d", "e"};
    CHECK(parse(&c, &e, 6, m3, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "'e'"));
    const char *m4[] = {"train", "--wd", "-3.5e-2"};
    CHECK(parse(&c, &e, 3, m4, pos, &np, &help) == MMCR_OK && c.wd == -3.5e-2);
    const char *m5[] = {"train", "--lr="};
    CHECK(parse(&c, &e, 2, m5, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "--lr"));
    const char *m6[] = {"train", "--out", ""};
    CHECK(parse(&c, &e, 3, m6, pos, &np, &help) == MMCR_OK && c.out[0] == '\0');
}

static void test_numbers(void) {
    tcfg c;
    mmcr_err e;
    mmcr_options_defaults(opts, nopts, &c, &e);
    static const char *bad_num[] = {"1e", "", " 1", "1 ", "0x10", "inf", "nan", "1.2.3", "e5", "-", "1e+", "1,5", "1e400"};
    for (size_t i = 0; i < sizeof bad_num / sizeof bad_num[0]; i++) {
        mmcr_status st = mmcr_options_set(opts, nopts, &c, "lr", bad_num[i], &e);
        CHECK_MSG(st == MMCR_ERR_ARG && strstr(e.msg, "--lr"), "value '%s' accepted or bad message '%s'", bad_num[i], e.msg);
    }
    CHECK(c.lr == 0.001); /* failures leave the field unchanged */
    static const char *bad_int[] = {"1e", "1.0", "5x", "", "99999999999999999999", "1e3", "0x1f"};
    for (size_t i = 0; i < sizeof bad_int / sizeof bad_int[0]; i++) {
        mmcr_status st = mmcr_options_set(opts, nopts, &c, "epochs", bad_int[i], &e);
        CHECK_MSG(st == MMCR_ERR_ARG && strstr(e.msg, "--epochs"), "value '%s'", bad_int[i]);
    }
    CHECK(mmcr_options_set(opts, nopts, &c, "lr", ".5", &e) == MMCR_OK && c.lr == 0.5);
    CHECK(mmcr_options_set(opts, nopts, &c, "lr", "5.", &e) == MMCR_OK && c.lr == 5.0);
    CHECK(mmcr_options_set(opts, nopts, &c, "lr", "1E-3", &e) == MMCR_OK && c.lr == 1e-3);
    /* Range: inclusive ends accepted, the message gives the range. */
    CHECK(mmcr_options_set(opts, nopts, &c, "lr", "10", &e) == MMCR_OK && c.lr == 10);
    CHECK(mmcr_options_set(opts, nopts, &c, "lr", "0", &e) == MMCR_OK && c.lr == 0);
    CHECK(mmcr_options_set(opts, nopts, &c, "lr", "10.000001", &e) == MMCR_ERR_ARG);
    CHECK(strstr(e.msg, "--lr") && strstr(e.msg, "[0, 10]"));
    CHECK(mmcr_options_set(opts, nopts, &c, "epochs", "100001", &e) == MMCR_ERR_ARG && strstr(e.msg, "[1, 100000]"));
    CHECK(mmcr_options_set(opts, nopts, &c, "epochs", "100000", &e) == MMCR_OK && c.epochs == 100000);
    CHECK(mmcr_options_set(opts, nopts, &c, "wd", "1e300", &e) == MMCR_OK && c.wd == 1e300);
    /* Choices. */
    CHECK(mmcr_options_set(opts, nopts, &c, "optimizer", "adamw", &e) == MMCR_OK && c.optimizer == 3);
    CHECK(mmcr_options_set(opts, nopts, &c, "optimizer", "ada", &e) == MMCR_ERR_ARG);
    CHECK(strstr(e.msg, "--optimizer") && strstr(e.msg, "sgd|lars|adam|adamw"));
    CHECK(mmcr_options_set(opts, nopts, &c, "optimizer", "sgd", &e) == MMCR_OK && c.optimizer == 0);
    /* Strings longer than the field. */
    char longs[MMCR_OPT_STRLEN + 1];
    memset(longs, 'a', MMCR_OPT_STRLEN);
    longs[MMCR_OPT_STRLEN] = '\0';
    CHECK(mmcr_options_set(opts, nopts, &c, "out", longs, &e) == MMCR_ERR_ARG && strstr(e.msg, "--out"));
    longs[MMCR_OPT_STRLEN - 1] = '\0';
    CHECK(mmcr_options_set(opts, nopts, &c, "out", longs, &e) == MMCR_OK && strlen(c.out) == MMCR_OPT_STRLEN - 1);

    /* The low-level helpers. */
    double d;
    int64_t i;
    CHECK(mmcr_parse_double("-0.25e1", &d) == MMCR_OK && d == -2.5);
    CHECK(mmcr_parse_double("1e-400", &d) == MMCR_OK && d == 0.0); /* underflow is harmless */
    CHECK(mmcr_parse_int64("-9223372036854775808", &i) == MMCR_OK && i == INT64_MIN);
    CHECK(mmcr_parse_int64("9223372036854775808", &i) == MMCR_ERR_ARG);
    char buf[64];
    mmcr_format_double(buf, sizeof buf, 0.1);
    CHECK(!strcmp(buf, "0.10000000000000001"));
    mmcr_format_double(buf, sizeof buf, -1e-300);
    CHECK(mmcr_parse_double(buf, &d) == MMCR_OK && d == -1e-300);
    mmcr_format_double(buf, sizeof buf, 1.0 / 0.0);
    CHECK(!strcmp(buf, "null"));
}

static void test_unknown(void) {
    tcfg c;
    mmcr_err e;
    mmcr_options_defaults(opts, nopts, &c, &e);
    CHECK(mmcr_options_set(opts, nopts, &c, "lrr", "1", &e) == MMCR_ERR_ARG);
    CHECK(strstr(e.msg, "'--lrr'") && strstr(e.msg, "did you mean '--lr'"));
    char *pos[4];
    int np, help;
    const char *a[] = {"train", "--batchsize", "3"};
    CHECK(parse(&c, &e, 3, a, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "did you mean '--batch-size'"));
    const char *b[] = {"train", "--optimiser=sgd"};
    CHECK(parse(&c, &e, 2, b, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "did you mean '--optimizer'"));
    const char *d[] = {"train", "--zzzzzzzzzz"};
    CHECK(parse(&c, &e, 2, d, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "zzzzzzzzzz") && !strstr(e.msg, "did you mean"));
    const char *f[] = {"train", "--batch", "3"}; /* prefix suggestion */
    CHECK(parse(&c, &e, 3, f, pos, &np, &help) == MMCR_ERR_ARG && strstr(e.msg, "did you mean '--batch-size'"));
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_file(void) {
    char path[] = "/tmp/mmcr_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    fclose(fdopen(fd, "w"));
    write_file(path, "# a comment\n\n  epochs = 7\nlr=0.25   # trailing comment\nout = \"my run # 1\"\r\n"
                     "verbose = true\noptimizer = sgd\n");
    tcfg c;
    mmcr_err e;
    mmcr_options_defaults(opts, nopts, &c, &e);
    CHECK(mmcr_options_load_file(opts, nopts, &c, path, &e) == MMCR_OK);
    CHECK(c.epochs == 7 && c.lr == 0.25 && !strcmp(c.out, "my run # 1") && c.verbose == 1 && c.optimizer == 0);

    /* --config is applied in place: later flags win, earlier ones are overridden. */
    char *pos[4];
    int np, help;
    mmcr_options_defaults(opts, nopts, &c, &e);
    const char *a[] = {"train", "--epochs", "3", "--config", path, "--lr", "0.5"};
    CHECK(parse(&c, &e, 7, a, pos, &np, &help) == MMCR_OK && c.epochs == 7 && c.lr == 0.5);
    char eqarg[64];
    snprintf(eqarg, sizeof eqarg, "--config=%s", path);
    const char *a2[] = {"train", eqarg, "--epochs=9"};
    CHECK(parse(&c, &e, 3, a2, pos, &np, &help) == MMCR_OK && c.epochs == 9 && c.lr == 0.25);

    /* Errors name the file and line. */
    char want[128];
    write_file(path, "epochs = 7\n\nlearning_rate = 0.1\n");
    CHECK(mmcr_options_load_file(opts, nopts, &c, path, &e) == MMCR_ERR_ARG);
    snprintf(want, sizeof want, "%s:3:", path);
    CHECK(strstr(e.msg, want) && strstr(e.msg, "learning_rate"));
    write_file(path, "lr = 1e\n");
    CHECK(mmcr_options_load_file(opts, nopts, &c, path, &e) == MMCR_ERR_ARG);
    snprintf(want, sizeof want, "%s:1:", path);
    CHECK(strstr(e.msg, want) && strstr(e.msg, "--lr") && strstr(e.msg, "1e"));
    write_file(path, "epochs 7\n");
    CHECK(mmcr_options_load_file(opts, nopts, &c, path, &e) == MMCR_ERR_ARG && strstr(e.msg, want));
    write_file(path, "out = \"a\" b\n");
    CHECK(mmcr_options_load_file(opts, nopts, &c, path, &e) == MMCR_ERR_ARG && strstr(e.msg, want));
    write_file(path, "epochs = 0\n");
    CHECK(mmcr_options_load_file(opts, nopts, &c, path, &e) == MMCR_ERR_ARG && strstr(e.msg, "out of range"));
    remove(path);
    CHECK(mmcr_options_load_file(opts, nopts, &c, path, &e) == MMCR_ERR_IO && strstr(e.msg, path));
    const char *a3[] = {"train", "--config", path};
    CHECK(parse(&c, &e, 3, a3, pos, &np, &help) == MMCR_ERR_IO);
    const char *a4[] = {"train", "--config"};
    CHECK(parse(&c, &e, 2, a4, pos, &np, &help) == MMCR_ERR_ARG);
}

static char *capture(void (*fn)(FILE *, const void *), const void *arg) {
    FILE *f = tmpfile();
    fn(f, arg);
    long n = ftell(f);
    rewind(f);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
    fclose(f);
    return s;
}

static void help_fn(FILE *f, const void *arg) {
    (void)arg;
    mmcr_options_help(f, opts, nopts);
}
static void json_fn(FILE *f, const void *arg) { mmcr_options_json(f, opts, nopts, arg); }

static void test_help_json(void) {
    char *h = capture(help_fn, NULL);
    for (int i = 0; i < nopts; i++) {
        char want[80];
        snprintf(want, sizeof want, "--%s", opts[i].name);
        CHECK_MSG(strstr(h, want) != NULL, "help lacks %s", want);
        CHECK(strstr(h, opts[i].help) != NULL);
    }
    CHECK(strstr(h, "--no-verbose") && strstr(h, "sgd|lars|adam|adamw") && strstr(h, "[1, 100000]") && strstr(h, "--config"));
    CHECK(strstr(h, "default 0.001") != NULL);
    free(h);

    tcfg c;
    mmcr_err e;
    mmcr_options_defaults(opts, nopts, &c, &e);
    mmcr_options_set(opts, nopts, &c, "out", "a\"b\\c\nd", &e);
    mmcr_options_set(opts, nopts, &c, "lr", "0.1", &e);
    char *j = capture(json_fn, &c);
    CHECK(strstr(j, "\"epochs\": 10") != NULL);
    CHECK(strstr(j, "\"lr\": 0.10000000000000001") != NULL);
    CHECK(strstr(j, "\"out\": \"a\\\"b\\\\c\\nd\"") != NULL);
    CHECK(strstr(j, "\"verbose\": false") != NULL);
    CHECK(strstr(j, "\"optimizer\": \"adam\"") != NULL);
    CHECK(strstr(j, "\"wd\": -9.9999999999999995e-07") != NULL);
    CHECK(j[0] == '{' && j[strlen(j) - 2] == '}');
    free(j);

    char esc[16];
    mmcr_json_escape(esc, sizeof esc, "ab\x01\"");
    CHECK(!strcmp(esc, "ab\\u0001\\\""));
    CHECK(mmcr_json_escape_len("ab\x01\"") == 10);
    mmcr_json_escape(esc, 6, "ab\x01\""); /* truncated at a whole escape */
    CHECK(!strcmp(esc, "ab"));
}

int main(void) {
    test_defaults();
    test_argv();
    test_numbers();
    test_unknown();
    test_file();
    test_help_json();
    return test_finish("test_config");
}
