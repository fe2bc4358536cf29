/* SPDX-License-Identifier: MIT */
/*
 * struct harness_response (contracts in harness.h): the status, headers and body of one HTTP
 * response, however it arrived. The libcurl client (harness-http.c) and the raw-socket parsers
 * (harness-socket.c) fill it through the same three helpers (harness-internal.h); the tests read
 * it through the lookups here. A body is hashed (FNV-1a 64) as it arrives, and kept unless the
 * request said to discard it.
 */
#include "harness-internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void harness_response_add_header(struct harness_response *rs, const char *name, size_t name_len,
                                 const char *value, size_t value_len)
{
    while (value_len > 0 && (*value == ' ' || *value == '\t'))
        value++, value_len--;
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    struct harness_header *h =
        realloc(rs->headers, (rs->headers_count + 1) * sizeof(struct harness_header));
    if (!h)
        return;
    rs->headers = h;
    h[rs->headers_count].name = strndup(name, name_len);
    h[rs->headers_count].value = strndup(value, value_len);
    rs->headers_count++;
}

void harness_response_clear_headers(struct harness_response *rs)
{
    for (size_t i = 0; i < rs->headers_count; i++) {
        free(rs->headers[i].name);
        free(rs->headers[i].value);
    }
    free(rs->headers);
    rs->headers = NULL;
    rs->headers_count = 0;
}

void harness_response_add_body(struct harness_response *rs, const char *data, size_t len, bool keep)
{
    rs->body_hash = harness_fnv1a64(rs->body_hash, data, len);
    if (keep) {
        char *bigger = realloc(rs->body, rs->body_len + len + 1);
        if (!bigger)
            return;
        rs->body = bigger;
        memcpy(rs->body + rs->body_len, data, len);
        rs->body[rs->body_len + len] = '\0';
    }
    rs->body_len += len;
}

void harness_response_free(struct harness_response *rs)
{
    harness_response_clear_headers(rs);
    free(rs->body);
    rs->body = NULL;
}

const char *harness_header(const struct harness_response *rs, const char *name)
{
    for (size_t i = 0; i < rs->headers_count; i++)
        if (strcasecmp(rs->headers[i].name, name) == 0)
            return rs->headers[i].value;
    return NULL;
}

size_t harness_header_count(const struct harness_response *rs, const char *name)
{
    size_t count = 0;
    for (size_t i = 0; i < rs->headers_count; i++)
        if (strcasecmp(rs->headers[i].name, name) == 0)
            count++;
    return count;
}

json_t *harness_response_json(const struct harness_response *rs)
{
    if (!rs->body)
        return NULL;
    return json_loadb(rs->body, rs->body_len, 0, NULL);
}
