/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Which headers cross tracehop, in each direction (docs/security.md "Request hygiene"):
 *   - towards the upstream, the client's fields minus the hop-by-hop ones (RFC 9110 section
 *     7.6.1, and those its Connection header names), minus the ones tracehop manages (trace
 *     context, X-Forwarded-*) and the ones the route sets; then the route's, the trace context
 *     and X-Forwarded-For/-Proto/-Host;
 *   - towards the client, the upstream's fields minus the hop-by-hop ones, Content-Length
 *     (libmicrohttpd frames the body) and, when tracehop echoes its own, the trace headers.
 * Pure: no libraries, no I/O; the lines are built in the caller's arena.
 */
#include <stdbool.h>
#include <stddef.h>

#include "tracehop/tracectx.h"

struct arena;
struct header_setting;
struct response_head;
struct response_header;

/* One inbound header field as received (not NUL-terminated). */
struct header_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct forward_request {
    const struct header_field *fields; /* the client's, in order */
    size_t count;
    const struct tracehop_slice *connection; /* values of the client's Connection fields */
    size_t connection_count;
    const char *request_id_header; /* X-Trace-ID or its configured name */
    const struct header_setting *route_headers;
    size_t route_headers_count;
    const char *traceparent; /* tracehop's, NUL-terminated */
    const char *tracestate;
    size_t tracestate_len;
    const char *x_trace_id;
    size_t x_trace_id_len;
    const char *forwarded_for; /* the client's X-Forwarded-For, or NULL */
    size_t forwarded_for_len;
    const char *client_addr; /* "" when unknown */
    const char *host;        /* the Host field, or NULL */
    bool has_body;
};

/*
 * The upstream request's header lines ("Name: value", or "Name;" for an empty value, as libcurl
 * spells it), ending with "Expect:" (uploads) and "Accept:" (when the client sent none) to stop
 * libcurl adding its own. Returns 0 and the lines, or -ENOMEM.
 */
int forward_request_headers(const struct forward_request *request, struct arena *arena,
                            const char ***ret_lines, size_t *ret_count);

/* Whether a field of the upstream's response head goes to the client. `echo` is whether
 * tracehop writes its own traceparent and request-id header on the response. */
bool forward_response_header(const struct response_head *head, const struct response_header *field,
                             bool echo, const char *request_id_header);
