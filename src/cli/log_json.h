/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A validating, allocation-free scanner for "one JSON object per line", the shape of tracehop's
 * access log. It checks that a line is exactly one well-formed JSON object and reports where
 * the top-level members the caller asked for are, as spans into the line; nothing is copied
 * until the caller decodes a string it needs. Strings may hold any byte >= 0x20 (invalid UTF-8
 * is tolerated here and replaced when decoded); nesting deeper than LOG_JSON_MAX_DEPTH is
 * refused, so hostile input costs bounded stack.
 */
#include <stdbool.h>
#include <stddef.h>

#define LOG_JSON_MAX_DEPTH 64
/* Keys longer than this (after decoding escapes) never match a wanted key. */
#define LOG_JSON_KEY_MAX 64

enum log_json_type {
    LOG_JSON_ABSENT = 0,
    LOG_JSON_NULL,
    LOG_JSON_FALSE,
    LOG_JSON_TRUE,
    LOG_JSON_NUMBER,
    LOG_JSON_STRING,
    LOG_JSON_OBJECT,
    LOG_JSON_ARRAY,
};

/* Where a member's value is in the line. */
struct log_json_value {
    enum log_json_type type;
    const char *ptr; /* a string: the raw bytes between the quotes; otherwise the value's text */
    size_t len;
    bool escaped; /* a string holding a backslash: decode it before comparing */
};

/*
 * Which slot of `values` a top-level key fills: its index, or -1 for a key the caller ignores.
 * `key` is decoded (escapes resolved) and not NUL-terminated.
 */
typedef int (*log_json_key_fn)(const char *key, size_t len);

/*
 * Check that line[0..len) is exactly one JSON object, optionally surrounded by whitespace
 * (a trailing CR included), and fill values[key_index(key)] for each top-level member the
 * callback wants; slots of members that do not occur stay as the caller left them (set them to
 * LOG_JSON_ABSENT first). When a key repeats, the last occurrence wins, as in most parsers.
 * Returns 0, or -EINVAL when the line is not one JSON object (anything else, or nested deeper
 * than LOG_JSON_MAX_DEPTH). On failure the slots may be partly filled.
 */
int log_json_scan_object(const char *line, size_t len, log_json_key_fn key_index,
                         struct log_json_value *values, size_t values_count);

/*
 * Decode a LOG_JSON_STRING value into out, which must hold v->len + 1 bytes (decoding never
 * makes a string longer), and NUL-terminate it. Escapes are resolved, surrogate pairs joined;
 * a lone surrogate and \u0000 become U+FFFD (so the result is a C string). Returns the length.
 */
size_t log_json_decode_string(const struct log_json_value *v, char *out);

/* The value of a LOG_JSON_NUMBER as a double; false for another type or an absurd length. */
bool log_json_number(const struct log_json_value *v, double *ret);
