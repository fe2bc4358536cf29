/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * HTTP/1.1 syntax checks (RFC 9110 section 5) and header classes. libmicrohttpd accepts header
 * names with spaces and other bytes that curl would send on verbatim, so every name and value
 * that reaches the upstream passes through here first.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
 *         / DIGIT / ALPHA */
bool http_is_tchar(char c);
/* 1*tchar */
bool http_is_token(const char *s, size_t len);
/* field-value: visible ASCII, obs-text (0x80-0xff), SP and HTAB; no other control bytes. */
bool http_is_field_value(const char *s, size_t len);
/* Case-insensitive equality of a length-delimited string with a NUL-terminated literal.
 * Inline so that strlen of a literal folds and most comparisons end at the length check. */
static inline bool http_name_equals(const char *s, size_t len, const char *literal)
{
    return strlen(literal) == len && strncasecmp(s, literal, len) == 0;
}
/* Connection, Keep-Alive, Proxy-Connection, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade. */
bool http_header_is_hop_by_hop(const char *name, size_t len);
/* Headers tracehop sets itself towards the upstream: traceparent, tracestate,
 * X-Forwarded-For/-Proto/-Host, Content-Length and Expect. */
bool http_header_is_managed(const char *name, size_t len);
/* Whether `list` (a Connection header value) names `name` as one of its comma-separated tokens. */
bool http_connection_lists(const char *list, size_t list_len, const char *name, size_t name_len);
/* A Content-Length value without surrounding whitespace: 1*DIGIT, at most 18 digits (so that it
 * fits in int64). Writes *ret only on success. */
bool http_parse_length(const char *v, size_t n, int64_t *ret);
/* The value of an HEXDIG (RFC 5234; either case, as in percent-encoding and JSON's \u
 * escapes), or -1. */
static inline int http_hexdig_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
