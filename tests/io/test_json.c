/* JSON reader: values, escapes, numbers, errors with byte offsets, limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/json.h"
#include "test_util.h"

static mmcr_json *parse(const char *s, mmcr_err *e) {
    mmcr_json *v = NULL;
    mmcr_status st = mmcr_json_parse(&v, s, strlen(s), "test.json", e);
    if (st != MMCR_OK) return NULL;
    return v;
}

/* Fails to parse, and the message names the source and the given byte offset. */
static int fails_at(const char *s, long at) {
    mmcr_err e = {{0}};
    mmcr_json *v = NULL;
    mmcr_status st = mmcr_json_parse(&v, s, strlen(s), "test.json", &e);
    if (st == MMCR_OK || v) {
        mmcr_json_free(&v);
        fprintf(stderr, "  parsed but should fail: %s\n", s);
        return 0;
    }
    if (!strstr(e.msg, "test.json")) return 0;
    if (at >= 0) {
        char want[64];
        snprintf(want, sizeof want, "at byte %ld:", at);
        if (!strstr(e.msg, want)) {
            fprintf(stderr, "  '%s' -> '%s' (wanted %s)\n", s, e.msg, want);
            return 0;
        }
    }
    return 1;
}

static void test_values(void) {
    mmcr_err e;
    mmcr_json *v = parse(" {\"a\": [1, -2.5, 3e2, true, false, null, \"x\"], \"b\": {}, \"c\": [], \"\": 0} ", &e);
    CHECK(v != NULL);
    if (!v) return;
    CHECK(v->type == MMCR_JSON_OBJECT && v->n == 4);
    const mmcr_json *a = mmcr_json_get(v, "a");
    CHECK(a && a->type == MMCR_JSON_ARRAY && a->n == 7);
    CHECK(mmcr_json_at(a, 0)->is_int && mmcr_json_at(a, 0)->integer == 1);
    CHECK(mmcr_json_at(a, 1)->number == -2.5 && !mmcr_json_at(a, 1)->is_int);
    int64_t i64 = 0;
    CHECK(mmcr_json_int64(mmcr_json_at(a, 2), &i64) && i64 == 300);
    CHECK(!mmcr_json_int64(mmcr_json_at(a, 1), &i64));
    CHECK(mmcr_json_at(a, 3)->type == MMCR_JSON_BOOL && mmcr_json_at(a, 3)->boolean == 1);
    CHECK(mmcr_json_at(a, 4)->type == MMCR_JSON_BOOL && mmcr_json_at(a, 4)->boolean == 0);
    CHECK(mmcr_json_at(a, 5)->type == MMCR_JSON_NULL);
    CHECK(!strcmp(mmcr_json_string(mmcr_json_at(a, 6)), "x"));
    CHECK(mmcr_json_at(a, 7) == NULL);
    CHECK(mmcr_json_get(v, "b")->type == MMCR_JSON_OBJECT && mmcr_json_get(v, "b")->n == 0);
    CHECK(mmcr_json_get(v, "c")->type == MMCR_JSON_ARRAY && mmcr_json_get(v, "c")->n == 0);
    CHECK(mmcr_json_get(v, "") != NULL);
    CHECK(mmcr_json_get(v, "zz") == NULL);
    CHECK(mmcr_json_get(a, "a") == NULL); /* not an object */
    CHECK(a->offset == 7);
    mmcr_json_free(&v);
    CHECK(v == NULL);

    /* Scalars at top level, large integers, and int64 limits. */
    v = parse("9223372036854775807", &e);
    CHECK(v && v->is_int && v->integer == INT64_MAX);
    mmcr_json_free(&v);
    v = parse("-9223372036854775808", &e);
    CHECK(v && v->is_int && v->integer == INT64_MIN);
    mmcr_json_free(&v);
    v = parse("9223372036854775808", &e); /* one too big: still a number, not an int */
    CHECK(v && !v->is_int && v->number == 9223372036854775808.0);
    mmcr_json_free(&v);
    v = parse("0.1", &e);
    CHECK(v && v->number == 0.1);
    mmcr_json_free(&v);
    v = parse("1E-3", &e);
    CHECK(v && v->number == 1e-3);
    mmcr_json_free(&v);
}

static void test_strings(void) {
    mmcr_err e;
    mmcr_json *v = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"", &e);
    CHECK(v != NULL);
    if (v) {
        const char *want = "a\"b\\c/d\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
        CHECK(v->len == strlen(want) && !memcmp(v->str, want, v->len));
    }
    mmcr_json_free(&v);
    v = parse("\"x\\u0000y\"", &e); /* embedded NUL keeps the length */
    CHECK(v && v->len == 3 && v->str[1] == '\0' && v->str[2] == 'y');
    mmcr_json_free(&v);
    v = parse("\"\xE6\x97\xA5\xE6\x9C\xAC\"", &e); /* raw UTF-8 passes through */
    CHECK(v && v->len == 6);
    mmcr_json_free(&v);
    /* BOM is skipped. */
    v = parse("\xEF\xBB\xBF[1]", &e);
    CHECK(v && v->type == MMCR_JSON_ARRAY);
    mmcr_json_free(&v);
}

static void test_errors(void) {
    CHECK(fails_at("", 0));
    CHECK(fails_at("   ", 3));
    CHECK(fails_at("{\"a\":1,}", 7));
    CHECK(fails_at("[1,2", 4));
    CHECK(fails_at("[1 2]", 3));
    CHECK(fails_at("{\"a\" 1}", 5));
    CHECK(fails_at("{1:2}", 1));
    CHECK(fails_at("{\"a\":1} x", 8));
    CHECK(fails_at("\"abc", 0));
    CHECK(fails_at("\"a\x01\"", 2));
    CHECK(fails_at("\"\\x\"", 1));
    CHECK(fails_at("\"\\u12G4\"", 1));
    CHECK(fails_at("\"\\ud800\"", 1));      /* lone high surrogate */
    CHECK(fails_at("\"\\udc00\"", 1));      /* lone low surrogate */
    CHECK(fails_at("\"\\ud800\\u0041\"", 1));
    CHECK(fails_at("\"\xC0\xAF\"", 1));    /* overlong */
    CHECK(fails_at("\"\xED\xA0\x80\"", 1)); /* encoded surrogate */
    CHECK(fails_at("\"\xFF\"", 1));
    CHECK(fails_at("01", 0));
    CHECK(fails_at("1.", 0));
    CHECK(fails_at("1e", 0));
    CHECK(fails_at("-", 0));
    CHECK(fails_at("+1", 0));
    CHECK(fails_at(".5", 0));
    CHECK(fails_at("1e999", 0));
    CHECK(fails_at("NaN", 0));
    CHECK(fails_at("tru", 0));
    CHECK(fails_at("nul", 0));
    CHECK(fails_at("{\"k\":1,\"j\":2,\"k\":3}", 17)); /* duplicate key: offset of the second value */
    CHECK(fails_at("[1,[2,{\"a\":[}]]]", 12));

    /* Depth limit: MMCR_JSON_MAX_DEPTH levels parse, one more does not. */
    char deep[2 * MMCR_JSON_MAX_DEPTH + 8];
    int d = MMCR_JSON_MAX_DEPTH;
    for (int i = 0; i < d; i++) deep[i] = '[', deep[2 * d - 1 - i] = ']';
    deep[2 * d] = '\0';
    mmcr_err e;
    mmcr_json *v = parse(deep, &e);
    CHECK(v != NULL);
    mmcr_json_free(&v);
    d++;
    for (int i = 0; i < d; i++) deep[i] = '[', deep[2 * d - 1 - i] = ']';
    deep[2 * d] = '\0';
    CHECK(fails_at(deep, MMCR_JSON_MAX_DEPTH));
}

/* A large object (many keys, long strings) parses, and the duplicate check scales. */
static void test_large(void) {
    int n = 20000;
    size_t cap = (size_t)n * 40 + 16;
    char *s = malloc(cap);
    size_t k = 0;
    s[k++] = '{';
    for (int i = 0; i < n; i++) k += (size_t)snprintf(s + k, cap - k, "%s\"key%d\": [%d, %d.5]", i ? "," : "", i, i, i);
    s[k++] = '}';
    s[k] = '\0';
    mmcr_err e;
    mmcr_json *v = parse(s, &e);
    CHECK(v && v->n == (size_t)n);
    const mmcr_json *x = mmcr_json_get(v, "key12345");
    CHECK(x && x->n == 2 && x->items[0].integer == 12345 && x->items[1].number == 12345.5);
    mmcr_json_free(&v);
    free(s);
}

static void test_file(void) {
    char path[] = "/tmp/mmcr_test_json_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    fputs("{\"classes\": [\"cat\", \"dog\"],\n \"n\": 2}\n", f);
    fclose(f);
    mmcr_json *v = NULL;
    mmcr_err e;
    CHECK(mmcr_json_parse_file(&v, path, &e) == MMCR_OK);
    CHECK(v && mmcr_json_get(v, "n")->integer == 2);
    CHECK(v && !strcmp(mmcr_json_string(mmcr_json_at(mmcr_json_get(v, "classes"), 1)), "dog"));
    mmcr_json_free(&v);
    f = fopen(path, "w");
    fputs("{\"classes\": [\"cat\" \"dog\"]}", f);
    fclose(f);
    CHECK(mmcr_json_parse_file(&v, path, &e) == MMCR_ERR_FORMAT && v == NULL);
    CHECK(strstr(e.msg, path) != NULL && strstr(e.msg, "byte 19") != NULL);
    remove(path);
    CHECK(mmcr_json_parse_file(&v, path, &e) == MMCR_ERR_IO && strstr(e.msg, path) != NULL);
}

int main(void) {
    test_values();
    test_strings();
    test_errors();
    test_large();
    test_file();
    return test_finish("test_json");
}
