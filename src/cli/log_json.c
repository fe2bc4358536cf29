/* SPDX-License-Identifier: MIT */
/*
 * The JSON-lines scanner of `tracehop logs` (contracts in log_json.h).
 *
 * Why not jansson: the reader sees every line of logs that reach gigabytes, and only needs a
 * dozen top-level members of each. Building a tree per line (an allocation per value) would
 * dominate the run time; this scanner validates the grammar of RFC 8259 in one pass over the
 * bytes, records spans, and allocates nothing. It is recursive descent with an explicit depth
 * limit, so a line of a million '[' costs a refusal, not a stack overflow. Every read is bounds
 * checked against `end`; the input need not be NUL-terminated.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/log_json.h"
#include "common/http_syntax.h"

/* Bytes that end the fast path inside a string: the quote, the backslash and C0 controls. */
static const uint8_t string_stop[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Whether any of the 8 bytes of w is '"', '\\' or below 0x20 (the classic SWAR tests). */
static bool word_has_stop(uint64_t w)
{
    uint64_t quote = w ^ (ONES * '"'), backslash = w ^ (ONES * '\\');
    uint64_t zero_quote = (quote - ONES) & ~quote;
    uint64_t zero_backslash = (backslash - ONES) & ~backslash;
    uint64_t below_space = (w - ONES * 0x20) & ~w;
    return ((zero_quote | zero_backslash | below_space) & HIGHS) != 0;
}

/* p is at the opening quote. Returns the position after the closing quote, or NULL. */
static const char *scan_string(const char *p, const char *end, bool *ret_escaped)
{
    p++;
    for (;;) {
        /* Eight bytes at a time through the plain part: most of a log line is string bytes. */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, sizeof(w));
            if (word_has_stop(w))
                break;
            p += 8;
        }
        while (p < end && !string_stop[(unsigned char)*p])
            p++;
        if (p >= end)
            return NULL;
        if (*p == '"')
            return p + 1;
        if (*p != '\\')
            return NULL; /* a raw control character */
        *ret_escaped = true;
        if (++p >= end)
            return NULL;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p++;
            break;
        case 'u':
            if (end - p < 5 || http_hexdig_value(p[1]) < 0 || http_hexdig_value(p[2]) < 0 ||
                http_hexdig_value(p[3]) < 0 || http_hexdig_value(p[4]) < 0)
                return NULL;
            p += 5;
            break;
        default:
            return NULL;
        }
    }
}

static const char *scan_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    return p;
}

static const char *scan_literal(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0)
        return NULL;
    return p + n;
}

static const char *scan_value(const char *p, const char *end, int depth,
                              struct log_json_value *out);

/* p is at '{'. Members are only validated: nested objects are never recorded. */
static const char *scan_nested_object(const char *p, const char *end, int depth)
{
    p = skip_space(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        bool escaped = false;
        if (p >= end || *p != '"' || !(p = scan_string(p, end, &escaped)))
            return NULL;
        p = skip_space(p, end);
        if (p >= end || *p != ':')
            return NULL;
        p = scan_value(skip_space(p + 1, end), end, depth, NULL);
        if (!p)
            return NULL;
        p = skip_space(p, end);
        if (p < end && *p == '}')
            return p + 1;
        if (p >= end || *p != ',')
            return NULL;
        p = skip_space(p + 1, end);
    }
}

static const char *scan_array(const char *p, const char *end, int depth)
{
    p = skip_space(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        p = scan_value(p, end, depth, NULL);
        if (!p)
            return NULL;
        p = skip_space(p, end);
        if (p < end && *p == ']')
            return p + 1;
        if (p >= end || *p != ',')
            return NULL;
        p = skip_space(p + 1, end);
    }
}

/* One value at p (no leading space). depth counts the containers around it. */
static const char *scan_value(const char *p, const char *end, int depth, struct log_json_value *out)
{
    const char *start = p, *next;
    enum log_json_type type;
    bool escaped = false;

    if (p >= end)
        return NULL;
    switch (*p) {
    case '"':
        next = scan_string(p, end, &escaped);
        type = LOG_JSON_STRING;
        break;
    case '{':
        if (depth >= LOG_JSON_MAX_DEPTH)
            return NULL;
        next = scan_nested_object(p, end, depth + 1);
        type = LOG_JSON_OBJECT;
        break;
    case '[':
        if (depth >= LOG_JSON_MAX_DEPTH)
            return NULL;
        next = scan_array(p, end, depth + 1);
        type = LOG_JSON_ARRAY;
        break;
    case 't':
        next = scan_literal(p, end, "true");
        type = LOG_JSON_TRUE;
        break;
    case 'f':
        next = scan_literal(p, end, "false");
        type = LOG_JSON_FALSE;
        break;
    case 'n':
        next = scan_literal(p, end, "null");
        type = LOG_JSON_NULL;
        break;
    default:
        next = scan_number(p, end);
        type = LOG_JSON_NUMBER;
        break;
    }
    if (!next)
        return NULL;
    if (out) {
        out->type = type;
        out->escaped = escaped;
        if (type == LOG_JSON_STRING) {
            out->ptr = start + 1;
            out->len = (size_t)(next - start) - 2;
        } else {
            out->ptr = start;
            out->len = (size_t)(next - start);
        }
    }
    return next;
}

int log_json_scan_object(const char *line, size_t len, log_json_key_fn key_index,
                         struct log_json_value *values, size_t values_count)
{
    const char *end = line + len;
    const char *p = skip_space(line, end);

    if (p >= end || *p != '{')
        return -EINVAL;
    p = skip_space(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            bool escaped = false;
            const char *key = p + 1, *after_key;
            if (p >= end || *p != '"' || !(after_key = scan_string(p, end, &escaped)))
                return -EINVAL;
            size_t key_len = (size_t)(after_key - key) - 1;
            int slot = -1;
            if (!escaped) {
                slot = key_index(key, key_len);
            } else if (key_len <= 6 * LOG_JSON_KEY_MAX) {
                char decoded[6 * LOG_JSON_KEY_MAX + 1];
                struct log_json_value k = {LOG_JSON_STRING, key, key_len, true};
                size_t n = log_json_decode_string(&k, decoded);
                if (n <= LOG_JSON_KEY_MAX)
                    slot = key_index(decoded, n);
            }
            p = skip_space(after_key, end);
            if (p >= end || *p != ':')
                return -EINVAL;
            struct log_json_value *out =
                slot >= 0 && (size_t)slot < values_count ? &values[slot] : NULL;
            p = scan_value(skip_space(p + 1, end), end, 1, out);
            if (!p)
                return -EINVAL;
            p = skip_space(p, end);
            if (p < end && *p == '}') {
                p++;
                break;
            }
            if (p >= end || *p != ',')
                return -EINVAL;
            p = skip_space(p + 1, end);
        }
    }
    return skip_space(p, end) == end ? 0 : -EINVAL;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static unsigned hex4(const char *p)
{
    return (unsigned)(http_hexdig_value(p[0]) << 12 | http_hexdig_value(p[1]) << 8 |
                      http_hexdig_value(p[2]) << 4 | http_hexdig_value(p[3]));
}

size_t log_json_decode_string(const struct log_json_value *v, char *out)
{
    const char *p = v->ptr, *end = v->ptr + v->len;
    char *w = out;

    if (!v->escaped) {
        memcpy(out, v->ptr, v->len);
        out[v->len] = '\0';
        return v->len;
    }
    while (p < end) {
        const char *backslash = memchr(p, '\\', (size_t)(end - p));
        size_t plain = backslash ? (size_t)(backslash - p) : (size_t)(end - p);
        memcpy(w, p, plain);
        w += plain;
        p += plain;
        if (p >= end || end - p < 2)
            break; /* a validated string never ends in a lone backslash */
        char c = p[1];
        p += 2;
        switch (c) {
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u': {
            if (end - p < 4)
                goto out;
            unsigned cp = hex4(p);
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned low = hex4(p + 2);
                if (low >= 0xdc00 && low <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                    p += 6;
                }
            }
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                cp = 0xfffd;
            w += put_utf8(w, cp);
            break;
        }
        default: /* '"', '\\', '/' */
            *w++ = c;
            break;
        }
    }
out:
    *w = '\0';
    return (size_t)(w - out);
}

/*
 * The common numbers of a log line ("12.345", "502") without strtod: at most 15 significant
 * digits fit a double exactly, and dividing by an exact power of ten rounds once, so the result
 * is the correctly rounded value strtod would give. Anything else takes the slow path.
 */
static bool simple_decimal(const char *p, size_t len, double *ret)
{
    static const double powers[] = {1,   1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    const char *end = p + len;
    bool negative = p < end && *p == '-';
    uint64_t mantissa = 0;
    unsigned digits = 0, decimals = 0;

    p += negative;
    for (; p < end && is_digit(*p); p++, digits++)
        mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    if (p < end && *p == '.') {
        for (p++; p < end && is_digit(*p); p++, digits++, decimals++)
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    }
    if (p != end || digits == 0 || digits > 15)
        return false;
    double v = (double)mantissa / powers[decimals];
    *ret = negative ? -v : v;
    return true;
}

bool log_json_number(const struct log_json_value *v, double *ret)
{
    char text[64];

    if (v->type != LOG_JSON_NUMBER || v->len == 0)
        return false;
    if (simple_decimal(v->ptr, v->len, ret))
        return true;
    if (v->len >= sizeof(text))
        return false;
    memcpy(text, v->ptr, v->len);
    text[v->len] = '\0';
    *ret = strtod(text, NULL);
    return true;
}
