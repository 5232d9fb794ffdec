/* A small, strict JSON reader (RFC 8259): the whole text becomes a tree of mmcr_json values.
 * Used for safetensors headers and data-set index files. Errors name the source and the byte
 * offset. Writing JSON is done with mmcr_json_escape / mmcr_format_double (config.h). */
#ifndef MMCR_JSON_H
#define MMCR_JSON_H

#include "mmcr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mmcr_json_type {
    MMCR_JSON_NULL,
    MMCR_JSON_BOOL,
    MMCR_JSON_NUMBER,
    MMCR_JSON_STRING,
    MMCR_JSON_ARRAY,
    MMCR_JSON_OBJECT
} mmcr_json_type;

typedef struct mmcr_json {
    mmcr_json_type type;
    size_t offset;          /* byte offset of the value in the parsed text */
    int boolean;            /* BOOL */
    double number;          /* NUMBER (always set) */
    int is_int;             /* NUMBER written without fraction or exponent and fitting int64 */
    int64_t integer;        /* NUMBER when is_int */
    char *str;              /* STRING: decoded UTF-8, NUL-terminated (may contain NUL via \u0000) */
    size_t len;             /* STRING: bytes, without the terminator */
    size_t n;               /* ARRAY / OBJECT: number of elements / members */
    struct mmcr_json *items; /* ARRAY elements or OBJECT member values, in document order */
    char **keys;            /* OBJECT: member names (decoded, NUL-terminated); names are unique */
    size_t *key_lens;
} mmcr_json;

/* Nesting deeper than this is rejected (protects the recursive parser's stack). */
#define MMCR_JSON_MAX_DEPTH 128

/* Parses text[0..len) (a UTF-8 BOM is skipped; whitespace may surround the value; anything else
 * after it is an error). what names the source in messages (a file name). Rejects invalid
 * UTF-8, control characters in strings, lone surrogates, duplicate object keys, numbers that
 * overflow a double, and nesting deeper than MMCR_JSON_MAX_DEPTH. *out is NULL on failure. */
mmcr_status mmcr_json_parse(mmcr_json **out, const char *text, size_t len, const char *what, mmcr_err *err);
/* Reads and parses a whole file. */
mmcr_status mmcr_json_parse_file(mmcr_json **out, const char *path, mmcr_err *err);
void mmcr_json_free(mmcr_json **v);

const char *mmcr_json_type_name(mmcr_json_type t);
/* Member called key of an object (NULL if v is not an object or has no such member). */
const mmcr_json *mmcr_json_get(const mmcr_json *v, const char *key);
/* Element i of an array (NULL if v is not an array or i is out of range). */
const mmcr_json *mmcr_json_at(const mmcr_json *v, size_t i);
/* The string of a STRING value, or NULL. */
const char *mmcr_json_string(const mmcr_json *v);
/* 1 and *out if v is a NUMBER holding an integer in int64 range (1e3 and 2.0 count), else 0. */
int mmcr_json_int64(const mmcr_json *v, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
