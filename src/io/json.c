/* Strict recursive-descent JSON parser building a tree (json.h). */
#include "mmcr/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmcr/config.h"

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    int depth;
    const char *what;
    mmcr_err *err;
} parser;

static mmcr_status perr(parser *p, size_t at, const char *msg) {
    return mmcr_err_set(p->err, MMCR_ERR_FORMAT, "%s: JSON error at byte %zu: %s", p->what, at, msg);
}

static mmcr_status pnomem(parser *p) {
    return mmcr_err_set(p->err, MMCR_ERR_NOMEM, "%s: out of memory while parsing JSON", p->what);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static void free_node(mmcr_json *v) {
    if (!v) return;
    free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        free_node(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    memset(v, 0, sizeof *v);
}

void mmcr_json_free(mmcr_json **v) {
    if (!v || !*v) return;
    free_node(*v);
    free(*v);
    *v = NULL;
}

/* Length of a valid UTF-8 sequence starting at s[0] (n bytes available), 0 if invalid:
 * rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t l;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) l = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) l = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) l = 4, cp = c & 0x07;
    else return 0;
    if (n < l) return 0;
    for (size_t i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((l == 3 && cp < 0x800) || (l == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return l;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* p->pos is at the opening quote. The decoded string is never longer than the raw text
 * (\uXXXX: 6 bytes -> at most 3; a surrogate pair: 12 -> 4), so one allocation suffices. */
static mmcr_status parse_string(parser *p, char **out, size_t *out_len) {
    size_t start = p->pos++;
    size_t end = p->pos;
    while (end < p->len && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->len) return perr(p, start, "unterminated string");
    char *o = malloc(end - p->pos + 1);
    if (!o) return pnomem(p);
    size_t k = 0;
    while (p->pos < end) {
        const unsigned char *c = p->s + p->pos;
        if (*c < 0x20) {
            free(o);
            return perr(p, p->pos, "control character in string (must be escaped)");
        }
        if (*c != '\\') {
            size_t l = utf8_seq(c, end - p->pos);
            if (l == 0) {
                free(o);
                return perr(p, p->pos, "invalid UTF-8 in string");
            }
            memcpy(o + k, c, l);
            k += l;
            p->pos += l;
            continue;
        }
        size_t at = p->pos;
        unsigned char e = c[1];
        p->pos += 2;
        switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (end - at < 6 || !hex4(c + 2, &cp)) {
                free(o);
                return perr(p, at, "bad \\u escape (need 4 hex digits)");
            }
            p->pos = at + 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(o);
                return perr(p, at, "lone low surrogate in \\u escape");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p->pos < 6 || c[6] != '\\' || c[7] != 'u' || !hex4(c + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    free(o);
                    return perr(p, at, "high surrogate not followed by a low surrogate \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->pos = at + 12;
            }
            k += put_utf8(o + k, cp);
            break;
        }
        default:
            free(o);
            return perr(p, at, "unknown escape sequence in string");
        }
    }
    o[k] = '\0';
    p->pos = end + 1;
    *out = o;
    *out_len = k;
    return MMCR_OK;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static mmcr_status parse_number(parser *p, mmcr_json *v) {
    size_t start = p->pos, i = p->pos;
    const unsigned char *s = p->s;
    int integral = 1;
    if (i < p->len && s[i] == '-') i++;
    if (i >= p->len || !is_digit(s[i])) return perr(p, start, "invalid number");
    if (s[i] == '0') {
        i++;
        if (i < p->len && is_digit(s[i])) return perr(p, start, "invalid number (leading zero)");
    } else {
        while (i < p->len && is_digit(s[i])) i++;
    }
    if (i < p->len && s[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || !is_digit(s[i])) return perr(p, start, "invalid number (digit expected after '.')");
        while (i < p->len && is_digit(s[i])) i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || !is_digit(s[i])) return perr(p, start, "invalid number (digit expected in exponent)");
        while (i < p->len && is_digit(s[i])) i++;
    }
    size_t l = i - start;
    char stackbuf[64];
    char *buf = l < sizeof stackbuf ? stackbuf : malloc(l + 1);
    if (!buf) return pnomem(p);
    memcpy(buf, s + start, l);
    buf[l] = '\0';
    double d;
    mmcr_status st = mmcr_parse_double(buf, &d);
    int64_t iv;
    int fits = integral && mmcr_parse_int64(buf, &iv) == MMCR_OK;
    if (buf != stackbuf) free(buf);
    if (st != MMCR_OK) return perr(p, start, "number out of range of a double");
    v->type = MMCR_JSON_NUMBER;
    v->number = d;
    v->is_int = fits;
    v->integer = fits ? iv : 0;
    p->pos = i;
    return MMCR_OK;
}

static int match_word(parser *p, const char *w) {
    size_t l = strlen(w);
    if (p->len - p->pos < l || memcmp(p->s + p->pos, w, l)) return 0;
    p->pos += l;
    return 1;
}

static mmcr_status parse_value(parser *p, mmcr_json *v);

/* Grows the items (and keys) arrays of v to hold at least need entries. */
static int grow(mmcr_json *v, size_t *cap, size_t need, int with_keys) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap * 2 : 4;
    mmcr_json *it = realloc(v->items, nc * sizeof *it);
    if (!it) return 0;
    v->items = it;
    if (with_keys) {
        char **k = realloc(v->keys, nc * sizeof *k);
        if (!k) return 0;
        v->keys = k;
        size_t *kl = realloc(v->key_lens, nc * sizeof *kl);
        if (!kl) return 0;
        v->key_lens = kl;
    }
    *cap = nc;
    return 1;
}

static mmcr_status parse_array(parser *p, mmcr_json *v) {
    v->type = MMCR_JSON_ARRAY;
    p->pos++;
    size_t cap = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return MMCR_OK;
    }
    for (;;) {
        if (!grow(v, &cap, v->n + 1, 0)) return pnomem(p);
        mmcr_json *it = &v->items[v->n];
        memset(it, 0, sizeof *it);
        v->n++; /* counted before parsing so a failure frees its partial contents */
        mmcr_status st = parse_value(p, it);
        if (st != MMCR_OK) return st;
        skip_ws(p);
        if (p->pos >= p->len) return perr(p, p->pos, "unterminated array");
        unsigned char c = p->s[p->pos++];
        if (c == ']') return MMCR_OK;
        if (c != ',') return perr(p, p->pos - 1, "expected ',' or ']' in array");
    }
}

typedef struct key_ref {
    const char *key;
    size_t len, idx;
} key_ref;

static int cmp_key_ref(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Duplicate member names make lookups ambiguous: reject them (O(n log n) for big headers). */
static mmcr_status check_duplicates(parser *p, const mmcr_json *v) {
    if (v->n < 2) return MMCR_OK;
    key_ref *r = malloc(v->n * sizeof *r);
    if (!r) return pnomem(p);
    for (size_t i = 0; i < v->n; i++) r[i] = (key_ref){v->keys[i], v->key_lens[i], i};
    qsort(r, v->n, sizeof *r, cmp_key_ref);
    for (size_t i = 1; i < v->n; i++) {
        if (r[i].len == r[i - 1].len && !memcmp(r[i].key, r[i - 1].key, r[i].len)) {
            size_t later = r[i].idx; /* ties are ordered by index: this is the second occurrence */
            char msg[200];
            snprintf(msg, sizeof msg, "duplicate object key '%.120s'", v->keys[later]);
            free(r);
            return perr(p, v->items[later].offset, msg);
        }
    }
    free(r);
    return MMCR_OK;
}

static mmcr_status parse_object(parser *p, mmcr_json *v) {
    v->type = MMCR_JSON_OBJECT;
    p->pos++;
    size_t cap = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return MMCR_OK;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"') return perr(p, p->pos, "expected a string key in object");
        if (!grow(v, &cap, v->n + 1, 1)) return pnomem(p);
        char *key;
        size_t kl;
        mmcr_status st = parse_string(p, &key, &kl);
        if (st != MMCR_OK) return st;
        mmcr_json *it = &v->items[v->n];
        memset(it, 0, sizeof *it);
        v->keys[v->n] = key;
        v->key_lens[v->n] = kl;
        v->n++;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') return perr(p, p->pos, "expected ':' after object key");
        p->pos++;
        st = parse_value(p, it);
        if (st != MMCR_OK) return st;
        skip_ws(p);
        if (p->pos >= p->len) return perr(p, p->pos, "unterminated object");
        unsigned char c = p->s[p->pos++];
        if (c == '}') return check_duplicates(p, v);
        if (c != ',') return perr(p, p->pos - 1, "expected ',' or '}' in object");
    }
}

static mmcr_status parse_value(parser *p, mmcr_json *v) {
    skip_ws(p);
    v->offset = p->pos;
    if (p->pos >= p->len) return perr(p, p->pos, "unexpected end of input, expected a value");
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{':
    case '[': {
        if (++p->depth > MMCR_JSON_MAX_DEPTH) return perr(p, p->pos, "nesting deeper than the limit");
        mmcr_status st = c == '{' ? parse_object(p, v) : parse_array(p, v);
        p->depth--;
        return st;
    }
    case '"': v->type = MMCR_JSON_STRING; return parse_string(p, &v->str, &v->len);
    case 't':
        if (!match_word(p, "true")) break;
        v->type = MMCR_JSON_BOOL;
        v->boolean = 1;
        return MMCR_OK;
    case 'f':
        if (!match_word(p, "false")) break;
        v->type = MMCR_JSON_BOOL;
        return MMCR_OK;
    case 'n':
        if (!match_word(p, "null")) break;
        v->type = MMCR_JSON_NULL;
        return MMCR_OK;
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, v);
        break;
    }
    return perr(p, p->pos, "unexpected character, expected a value");
}

mmcr_status mmcr_json_parse(mmcr_json **out, const char *text, size_t len, const char *what, mmcr_err *err) {
    *out = NULL;
    parser p = {(const unsigned char *)text, len, 0, 0, what ? what : "JSON", err};
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) p.pos = 3;
    mmcr_json *root = calloc(1, sizeof *root);
    if (!root) return pnomem(&p);
    mmcr_status st = parse_value(&p, root);
    if (st == MMCR_OK) {
        skip_ws(&p);
        if (p.pos != p.len) st = perr(&p, p.pos, "unexpected data after the JSON value");
    }
    if (st != MMCR_OK) {
        mmcr_json_free(&root);
        return st;
    }
    *out = root;
    return MMCR_OK;
}

mmcr_status mmcr_json_parse_file(mmcr_json **out, const char *path, mmcr_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mmcr_err_set(err, MMCR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    mmcr_status st = MMCR_OK;
    while (buf) {
        if (n == cap) {
            char *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (!buf) st = mmcr_err_set(err, MMCR_ERR_NOMEM, "out of memory reading '%s'", path);
    else if (ferror(f)) st = mmcr_err_set(err, MMCR_ERR_IO, "error reading '%s'", path);
    fclose(f);
    if (st == MMCR_OK) st = mmcr_json_parse(out, buf, n, path, err);
    free(buf);
    return st;
}

const char *mmcr_json_type_name(mmcr_json_type t) {
    switch (t) {
    case MMCR_JSON_NULL: return "null";
    case MMCR_JSON_BOOL: return "boolean";
    case MMCR_JSON_NUMBER: return "number";
    case MMCR_JSON_STRING: return "string";
    case MMCR_JSON_ARRAY: return "array";
    case MMCR_JSON_OBJECT: return "object";
    }
    return "?";
}

const mmcr_json *mmcr_json_get(const mmcr_json *v, const char *key) {
    if (!v || v->type != MMCR_JSON_OBJECT || !key) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < v->n; i++)
        if (v->key_lens[i] == kl && !memcmp(v->keys[i], key, kl)) return &v->items[i];
    return NULL;
}

const mmcr_json *mmcr_json_at(const mmcr_json *v, size_t i) {
    if (!v || v->type != MMCR_JSON_ARRAY || i >= v->n) return NULL;
    return &v->items[i];
}

const char *mmcr_json_string(const mmcr_json *v) { return v && v->type == MMCR_JSON_STRING ? v->str : NULL; }

int mmcr_json_int64(const mmcr_json *v, int64_t *out) {
    if (!v || v->type != MMCR_JSON_NUMBER) return 0;
    if (v->is_int) {
        *out = v->integer;
        return 1;
    }
    /* 2^63 is exactly representable; the range is [-2^63, 2^63). */
    if (v->number != floor(v->number) || v->number < -9223372036854775808.0 || v->number >= 9223372036854775808.0)
        return 0;
    *out = (int64_t)v->number;
    return 1;
}
