/* SPDX-License-Identifier: MIT */
/*
 * Growable strings. Always NUL-terminated after any successful append, so data can be handed to
 * C APIs directly.
 */
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/json_escape.h"

void strbuf_free(struct strbuf *b)
{
    free(b->data);
    *b = (struct strbuf){0};
}

bool strbuf_reserve(struct strbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void strbuf_append_slow(struct strbuf *b, const char *s, size_t n)
{
    if (!strbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void strbuf_append_u64(struct strbuf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    strbuf_append(b, tmp + i, sizeof(tmp) - i);
}

void strbuf_append_json_escaped(struct strbuf *b, const char *s, size_t n)
{
    /* Worst case: every byte becomes "\u00XX" (6 characters). */
    if (!strbuf_reserve(b, n * 6))
        return;
    b->len += json_escape(b->data + b->len, s, n, NULL);
    b->data[b->len] = '\0';
}

void strbuf_append_json_string(struct strbuf *b, const char *s, size_t n)
{
    /* One reservation for the quotes and the text: this runs for most fields of a log line. */
    if (!strbuf_reserve(b, n * 6 + 2))
        return;
    b->data[b->len++] = '"';
    b->len += json_escape(b->data + b->len, s, n, NULL);
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
}

void strbuf_append_milli(struct strbuf *b, double v)
{
    uint64_t thousandths = v > 0 ? (uint64_t)(v * 1000.0 + 0.5) : 0;
    char frac[4] = {'.', (char)('0' + thousandths / 100 % 10), (char)('0' + thousandths / 10 % 10),
                    (char)('0' + thousandths % 10)};
    strbuf_append_u64(b, thousandths / 1000);
    strbuf_append(b, frac, 4);
}
