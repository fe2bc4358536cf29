/* SPDX-License-Identifier: MIT */
/*
 * RFC 9110 token and field-value rules, and which headers are per-connection (hop-by-hop) or
 * owned by tracehop. A proxy that forwards a header it should have consumed lets a client speak
 * to the upstream's connection handling directly (request smuggling, connection upgrades).
 */
#include <string.h>
#include <strings.h>

#include "common/http_syntax.h"

bool http_is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool http_is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!http_is_tchar(s[i]))
            return false;
    return true;
}

bool http_is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

bool http_header_is_hop_by_hop(const char *name, size_t len)
{
    return http_name_equals(name, len, "Connection") || http_name_equals(name, len, "Keep-Alive") ||
           (len >= 6 && strncasecmp(name, "Proxy-", 6) == 0) || http_name_equals(name, len, "TE") ||
           http_name_equals(name, len, "Trailer") ||
           http_name_equals(name, len, "Transfer-Encoding") ||
           http_name_equals(name, len, "Upgrade");
}

bool http_header_is_managed(const char *name, size_t len)
{
    return http_name_equals(name, len, "traceparent") ||
           http_name_equals(name, len, "tracestate") ||
           http_name_equals(name, len, "X-Forwarded-For") ||
           http_name_equals(name, len, "X-Forwarded-Proto") ||
           http_name_equals(name, len, "X-Forwarded-Host") ||
           http_name_equals(name, len, "Content-Length") || http_name_equals(name, len, "Expect");
}

bool http_connection_lists(const char *list, size_t list_len, const char *name, size_t name_len)
{
    size_t i = 0;
    while (i < list_len) {
        while (i < list_len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < list_len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end > start && end - start == name_len &&
            strncasecmp(list + start, name, name_len) == 0)
            return true;
    }
    return false;
}

bool http_parse_length(const char *v, size_t n, int64_t *ret)
{
    int64_t total = 0;
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        total = total * 10 + (v[i] - '0');
    }
    *ret = total;
    return true;
}
