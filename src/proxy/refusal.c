/* SPDX-License-Identifier: MIT */
/*
 * The request check and the statuses of tracehop's own answers (see refusal.h). The check runs
 * its rules in one fixed order, each a line of the table below, and the first that applies is
 * the answer: the same head always gets the same refusal, whatever else is wrong with it.
 */
#include <string.h>

#include "proxy/refusal.h"
#include "common/http_syntax.h"

#define REFUSE(status, code, outcome, message)                                                     \
    (struct refusal)                                                                               \
    {                                                                                              \
        status, code, outcome, message                                                             \
    }

const struct refusal refusal_no_route = {404, "no_route", "no_route",
                                         "no route matches this request"};
const struct refusal refusal_body_too_large = {
    413, "body_too_large", "too_large", "the request body is larger than limits.max_body_bytes"};
const struct refusal refusal_head_timeout = {
    408, "request_timeout", "bad_request",
    "the request head was not complete within limits.client_header_timeout_ms"};
const struct refusal refusal_upstream_setup = {502, "upstream_setup_failed",
                                               "upstream_connect_failed",
                                               "could not set up the upstream request"};
const struct refusal refusal_out_of_memory = {500, "internal_error", "bad_request",
                                              "out of memory"};
const struct refusal refusal_upgrade = {
    501, "upgrade_not_supported", "upgrade_not_supported",
    "protocol upgrades (WebSocket and others) are not supported"};

bool request_parse_content_length(const char *v, size_t n, int64_t *ret)
{
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return http_parse_length(v, n, ret);
}

/* Only origin-form (no absolute-form, authority-form or '*'), and nothing a backend could read
 * differently: no spaces, controls, non-ASCII bytes or '#'. */
static bool target_is_acceptable(const char *t, size_t n)
{
    if (n == 0 || t[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return false;
    }
    return true;
}

bool request_check(const struct request_head_facts *f, const struct request_limits *limits,
                   struct request_framing *framing, struct refusal *ret)
{
    int64_t content_length = 0;
    bool length_ok =
        f->content_length_count == 0 ||
        request_parse_content_length(f->content_length, f->content_length_len, &content_length);
    bool http11 = f->version && strcmp(f->version, "HTTP/1.1") == 0;
    bool http10 = f->version && strcmp(f->version, "HTTP/1.0") == 0;

    *framing = (struct request_framing){0};
    if (f->transfer_encoding_count > 0)
        *framing = (struct request_framing){.has_body = true, .content_length = -1};
    else if (f->content_length_count > 0) /* even 0: the upstream gets Content-Length: 0 */
        *framing = (struct request_framing){.has_body = true, .content_length = content_length};

    if (f->out_of_memory)
        *ret = refusal_out_of_memory;
    else if (f->target_len > limits->max_header_bytes)
        *ret = REFUSE(414, "uri_too_long", "too_large",
                      "the request target is longer than limits.max_header_bytes");
    else if (f->too_large)
        *ret = REFUSE(431, "headers_too_large", "too_large",
                      "request header fields are larger than limits.max_header_bytes");
    else if (f->bad_layout)
        *ret = REFUSE(400, "bad_header_syntax", "bad_request",
                      "obsolete line folding or a NUL byte in the request headers");
    else if (f->bad_name)
        *ret = REFUSE(400, "bad_header_name", "bad_request",
                      "a request header name is not a valid token");
    else if (f->bad_value)
        *ret = REFUSE(400, "bad_header_value", "bad_request",
                      "a request header value contains control characters");
    else if (!http_is_token(f->method, strlen(f->method)))
        *ret = REFUSE(400, "bad_method", "bad_request", "the request method is not a token");
    else if (!target_is_acceptable(f->target, f->target_len))
        *ret = REFUSE(400, "bad_target", "bad_request",
                      "the request target must be an origin-form path without spaces, controls, "
                      "non-ASCII bytes or '#'");
    else if (http11 && f->host_count == 0)
        *ret = REFUSE(400, "missing_host", "bad_request", "HTTP/1.1 requests need a Host header");
    else if (f->host_count > 1)
        *ret = REFUSE(400, "duplicate_host", "bad_request", "more than one Host header");
    else if (f->content_length_conflict)
        *ret = REFUSE(400, "conflicting_content_length", "bad_request",
                      "several Content-Length headers with different values");
    else if (!length_ok)
        *ret = REFUSE(400, "bad_content_length", "bad_request",
                      "Content-Length is not a valid length");
    else if (f->transfer_encoding_count > 0 && f->content_length_count > 0)
        *ret = REFUSE(400, "content_length_with_transfer_encoding", "bad_request",
                      "Content-Length together with Transfer-Encoding");
    else if (f->transfer_encoding_count > 1 ||
             (f->transfer_encoding_count == 1 && !f->transfer_encoding_chunked))
        *ret = REFUSE(501, "unsupported_transfer_encoding", "bad_request",
                      "only Transfer-Encoding: chunked is supported");
    else if (f->transfer_encoding_count == 1 && http10)
        *ret = REFUSE(400, "transfer_encoding_in_http10", "bad_request",
                      "Transfer-Encoding in an HTTP/1.0 request");
    else if (limits->max_body_bytes && framing->content_length > 0 &&
             (uint64_t)framing->content_length > limits->max_body_bytes)
        *ret = refusal_body_too_large;
    else
        *ret = (struct refusal){0};
    return ret->status != 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool request_wants_upgrade(const struct request_upgrade_facts *f, struct tracehop_slice *protocol)
{
    bool connection_upgrade = false;

    if (!f->http11)
        return false;
    for (size_t i = 0; i < f->connection_count && !connection_upgrade; i++)
        connection_upgrade =
            http_connection_lists(f->connection[i].ptr, f->connection[i].len, "upgrade", 7);
    if (!connection_upgrade)
        return false; /* an Upgrade field not meant for this hop: dropped like any hop-by-hop */
    for (size_t i = 0; i < f->upgrade_count; i++) {
        const char *v = f->upgrade[i].ptr;
        size_t n = f->upgrade[i].len, k = 0;
        while (k < n) {
            while (k < n && (is_ows(v[k]) || v[k] == ','))
                k++;
            size_t start = k;
            while (k < n && v[k] != ',')
                k++;
            size_t end = k;
            while (end > start && is_ows(v[end - 1]))
                end--;
            if (end == start)
                continue;
            const char *slash = memchr(v + start, '/', end - start);
            size_t name_len = slash ? (size_t)(slash - (v + start)) : end - start;
            if (http_name_equals(v + start, name_len, "h2c"))
                continue; /* RFC 9113 dropped h2c, and a client offering it accepts HTTP/1.1 */
            *protocol = (struct tracehop_slice){v + start, end - start};
            return true;
        }
    }
    return false;
}

struct refusal refusal_for_upstream(enum upstream_error error)
{
    switch (error) {
    case UPSTREAM_TIMEOUT:
        return REFUSE(504, "upstream_timeout", "upstream_timeout",
                      "the upstream did not answer in time");
    case UPSTREAM_CONNECT_FAILED:
        return REFUSE(502, "upstream_connect_failed", "upstream_connect_failed",
                      "could not connect to the upstream");
    case UPSTREAM_TLS_FAILED:
        return REFUSE(502, "upstream_tls_failed", "upstream_tls_failed",
                      "the TLS connection to the upstream failed (handshake or certificate)");
    case UPSTREAM_OK:
    case UPSTREAM_RESET:
        break;
    }
    return REFUSE(502, "upstream_reset", "upstream_reset",
                  "the upstream closed or broke the connection before a complete response");
}

const char *refusal_outcome_of_library_status(unsigned status, bool head_complete)
{
    if (!head_complete) /* refused before its head was complete (headers beyond its buffer) */
        return status == 431 || status == 413 || status == 414 ? "too_large"
               : status                                        ? "bad_request"
                                                               : "client_aborted";
    /* refused in the body (broken chunked framing, an oversized chunk) */
    return status == 413 ? "too_large" : status ? "bad_request" : NULL;
}
