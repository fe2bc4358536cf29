/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A growable byte string for building lines and header values. Appends never fail silently:
 * on allocation failure the buffer is marked `oom` and further appends are ignored, so a builder
 * can append freely and check once at the end.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct strbuf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
};

/* Reset length to zero; memory is kept for reuse. */
static inline void strbuf_clear(struct strbuf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data)
        b->data[0] = '\0';
}

/* Free memory; the buffer may be reused afterwards. Accepts a zeroed buffer. */
void strbuf_free(struct strbuf *b);
/* Make room for `extra` more bytes plus a NUL. Returns false (and sets oom) on failure. */
bool strbuf_reserve(struct strbuf *b, size_t extra);
void strbuf_append_slow(struct strbuf *b, const char *s, size_t n);

/* Inline fast path: the access-log builder appends ~60 short pieces per line. */
static inline void strbuf_append(struct strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 <= b->cap && !b->oom) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    strbuf_append_slow(b, s, n);
}

static inline void strbuf_append_str(struct strbuf *b, const char *s)
{
    strbuf_append(b, s, strlen(s));
}

static inline void strbuf_append_char(struct strbuf *b, char c)
{
    strbuf_append(b, &c, 1);
}
void strbuf_append_u64(struct strbuf *b, uint64_t v);
/* Append a JSON string literal (with quotes), escaping per json_escape.h. */
void strbuf_append_json_string(struct strbuf *b, const char *s, size_t n);
/* The same without the quotes, for a string built from several pieces. */
void strbuf_append_json_escaped(struct strbuf *b, const char *s, size_t n);
/* A non-negative number with three decimals ("12.345"; negative as 0), without printf's
 * floating-point path, which shows in profiles of the per-request log line and span. */
void strbuf_append_milli(struct strbuf *b, double v);
