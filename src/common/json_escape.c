/* SPDX-License-Identifier: MIT */
/*
 * JSON string escaping for lines that people read in terminals and machines parse: nothing that
 * a terminal interprets (C0, DEL, C1) survives, and nothing invalid reaches a strict parser.
 * Hand-written rather than jansson's dumper because it runs for every field of every access-log
 * line and needs no allocation.
 */
#include <stdint.h>
#include <string.h>

#include "common/json_escape.h"

static const char hex_digits[16] = "0123456789abcdef";

static size_t write_u_escape(char *out, unsigned cp)
{
    out[0] = '\\';
    out[1] = 'u';
    out[2] = hex_digits[(cp >> 12) & 0xf];
    out[3] = hex_digits[(cp >> 8) & 0xf];
    out[4] = hex_digits[(cp >> 4) & 0xf];
    out[5] = hex_digits[cp & 0xf];
    return 6;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not valid UTF-8. */
static size_t utf8_sequence_length(const unsigned char *s, size_t n, unsigned *ret_cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp, min;

    if (c < 0x80) {
        *ret_cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *ret_cp = cp;
    return len;
}

bool utf8_is_valid(const char *s, size_t n)
{
    const unsigned char *in = (const unsigned char *)s;
    unsigned cp;

    for (size_t i = 0, len; i < n; i += len)
        if ((len = utf8_sequence_length(in + i, n - i, &cp)) == 0)
            return false;
    return true;
}

size_t json_escape(char *out, const char *s, size_t n, bool *ret_lossy)
{
    const unsigned char *in = (const unsigned char *)s;
    char *w = out;
    size_t i = 0;

    while (i < n) {
        /* Fast path: copy a run of bytes that need nothing (almost every byte of a log). */
        size_t run = i;
        while (run < n && in[run] >= 0x20 && in[run] < 0x7f && in[run] != '"' && in[run] != '\\')
            run++;
        if (run > i) {
            memcpy(w, in + i, run - i);
            w += run - i;
            i = run;
            continue;
        }
        unsigned char c = in[i];
        switch (c) {
        case '"':
            *w++ = '\\', *w++ = '"';
            i++;
            continue;
        case '\\':
            *w++ = '\\', *w++ = '\\';
            i++;
            continue;
        case '\n':
            *w++ = '\\', *w++ = 'n';
            i++;
            continue;
        case '\r':
            *w++ = '\\', *w++ = 'r';
            i++;
            continue;
        case '\t':
            *w++ = '\\', *w++ = 't';
            i++;
            continue;
        default:
            break;
        }
        if (c < 0x80) { /* remaining C0 controls and DEL */
            w += write_u_escape(w, c);
            i++;
            continue;
        }
        unsigned cp;
        size_t len = utf8_sequence_length(in + i, n - i, &cp);
        if (len == 0) {
            /* U+FFFD REPLACEMENT CHARACTER, three bytes in UTF-8. */
            *w++ = (char)0xef, *w++ = (char)0xbf, *w++ = (char)0xbd;
            if (ret_lossy)
                *ret_lossy = true;
            i++;
            continue;
        }
        if (cp <= 0x9f) { /* C1 controls */
            w += write_u_escape(w, cp);
        } else {
            for (size_t k = 0; k < len; k++)
                *w++ = (char)in[i + k];
        }
        i += len;
    }
    return (size_t)(w - out);
}
