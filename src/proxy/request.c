/* SPDX-License-Identifier: MIT */
/*
 * The life of one request, driven by libmicrohttpd's callbacks:
 *
 *   request_on_uri       request line parsed: take a pooled request, copy the raw target
 *   request_on_access    1st call: headers complete -> validate, decide the trace context,
 *                        pick the route, start the upstream transfer (or answer an error)
 *                        next calls: request body bytes -> bounded buffer -> curl
 *                        final call: body complete -> queue the response once curl has the
 *                        upstream's headers, else suspend until it has
 *   content reader       response body bytes from the bounded buffer, suspending when empty
 *   request_on_completed the connection is done with the request: cancel the upstream if it
 *                        still runs, write the access-log line, return the request to the pool
 *
 * libmicrohttpd 0.9.75 accepts several things a proxy must not pass on (see
 * ../shared/notes/libmicrohttpd-and-libcurl.md): conflicting Content-Length, odd
 * Transfer-Encodings, header names with spaces, targets with spaces. They are refused here, in
 * the first call, before anything reaches the upstream.
 *
 * Resuming and unpausing never happen inside another library's callback: callbacks only mark the
 * request dirty, and the worker calls request_service after the current batch. That keeps both
 * libraries out of re-entrancy they do not support.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proxy/request.h"
#include "observe/accesslog.h"
#include "config/config.h"
#include "proxy/fresh_conns.h"
#include "common/http_syntax.h"
#include "observe/logline.h"
#include "proxy/route.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "common/addrfmt.h"
#include "common/diag.h"
#include "common/strbuf.h"
#include "common/timefmt.h"

#define BODY_BUFFER_SIZE      (64 * 1024)
#define MAX_TRACESTATE_FIELDS 64
#define MAX_CONNECTION_FIELDS 8
/* How much of a refused request body we read (to be able to answer) before closing instead. */
#define MAX_DISCARDED_BODY_BYTES (4u * 1024 * 1024)

/* --- pool ---------------------------------------------------------------------------- */

static struct request *request_take(struct worker *w)
{
    struct request *req = w->free_requests;

    if (req) {
        w->free_requests = req->next_free;
        char *up = req->up.data, *down = req->down.data;
        struct arena arena = req->arena;
        memset(req, 0, sizeof(*req));
        req->up = (struct bytebuf){.data = up, .cap = BODY_BUFFER_SIZE};
        req->down = (struct bytebuf){.data = down, .cap = BODY_BUFFER_SIZE};
        req->arena = arena;
    } else {
        req = calloc(1, sizeof(*req));
        if (!req)
            return NULL;
        req->up = (struct bytebuf){.data = malloc(BODY_BUFFER_SIZE), .cap = BODY_BUFFER_SIZE};
        req->down = (struct bytebuf){.data = malloc(BODY_BUFFER_SIZE), .cap = BODY_BUFFER_SIZE};
        arena_init(&req->arena, 4096);
        if (!req->up.data || !req->down.data) {
            free(req->up.data);
            free(req->down.data);
            free(req);
            return NULL;
        }
    }
    req->worker = w;
    req->config = w->config;
    req->content_length = 0;
    req->upstream_content_length = -1;
    return req;
}

static void request_release(struct request *req)
{
    struct worker *w = req->worker;
    arena_reset(&req->arena);
    req->next_free = w->free_requests;
    w->free_requests = req;
}

void request_ids_hex(const struct request *req, struct request_ids_hex *ret)
{
    tracehop_hex_format(ret->trace_id, req->hop.trace_id, TRACEHOP_TRACE_ID_SIZE);
    ret->trace_id[TRACEHOP_TRACE_ID_HEX_LEN] = '\0';
    tracehop_hex_format(ret->span_id, req->hop.span_id, TRACEHOP_SPAN_ID_SIZE);
    ret->span_id[TRACEHOP_SPAN_ID_HEX_LEN] = '\0';
}

/* --- errors tracehop answers itself --------------------------------------------------- */

static void set_error(struct request *req, unsigned status, const char *code, const char *outcome,
                      const char *message)
{
    if (req->error_status)
        return; /* the first reason wins */
    req->error_status = status;
    req->error_code = code;
    req->outcome = outcome;
    req->error_message = message;
}

/* False when libmicrohttpd could not add them (out of memory): the caller must not send the
 * response then, since every response carries the trace headers. */
static bool add_trace_headers(struct request *req, struct MHD_Response *resp)
{
    if (!req->config->echo)
        return true;
    return MHD_add_response_header(resp, "traceparent", req->traceparent_out) == MHD_YES &&
           MHD_add_response_header(resp, req->config->request_id_header, req->hop.x_trace_id) ==
               MHD_YES;
}

/* The JSON body of an error tracehop answers itself (SPEC section 4). */
static void format_error_body(struct request *req, struct strbuf *body)
{
    struct request_ids_hex ids;

    request_ids_hex(req, &ids);
    strbuf_append_str(body, "{\"error\":");
    strbuf_append_json_string(body, req->error_code, strlen(req->error_code));
    strbuf_append_str(body, ",\"message\":");
    strbuf_append_json_string(body, req->error_message, strlen(req->error_message));
    strbuf_append_str(body, ",\"trace_id\":\"");
    strbuf_append_str(body, ids.trace_id);
    strbuf_append_str(body, "\",\"span_id\":\"");
    strbuf_append_str(body, ids.span_id);
    strbuf_append_str(body, "\",\"x_trace_id\":");
    strbuf_append_json_string(body, req->hop.x_trace_id, req->hop.x_trace_id_len);
    strbuf_append_str(body, "}\n");
}

static enum MHD_Result queue_error(struct request *req)
{
    struct strbuf body = {0};

    format_error_body(req, &body);
    if (body.oom) {
        strbuf_free(&body);
        return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_COPY);
    strbuf_free(&body);
    if (!resp)
        return MHD_NO;
    if (MHD_add_response_header(resp, "Content-Type", "application/json") != MHD_YES ||
        MHD_add_response_header(resp, "Cache-Control", "no-store") != MHD_YES ||
        !add_trace_headers(req, resp) ||
        ((req->worker->draining || !req->body_complete) &&
         MHD_add_response_header(resp, "Connection", "close") != MHD_YES)) {
        MHD_destroy_response(resp); /* out of memory: close rather than answer incompletely */
        return MHD_NO;
    }
    enum MHD_Result rc = MHD_queue_response(req->conn, req->error_status, resp);
    MHD_destroy_response(resp);
    req->response_queued = true;
    return rc;
}

/* --- request line and headers --------------------------------------------------------- */

void *request_on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct worker *w = cls;
    struct request *req = request_take(w);

    if (!req)
        return NULL; /* the access handler refuses a request without context */
    req->conn = conn;
    clock_gettime(CLOCK_REALTIME, &req->start_real);
    clock_gettime(CLOCK_MONOTONIC, &req->start_mono);
    /* uri points into MHD's read buffer, which MHD rewrites right after this call. */
    req->target_len = strlen(uri);
    req->target = arena_strndup(&req->arena, uri, req->target_len);
    if (!req->target) {
        request_release(req);
        return NULL;
    }
    const char *q = memchr(req->target, '?', req->target_len);
    req->path_len = q ? (size_t)(q - req->target) : req->target_len;

    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info && info->client_addr)
        addrfmt(req->client_addr, info->client_addr);
    /* The request line is complete: from here the head is timed per request. */
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (sc && sc->socket_context)
        fresh_remove(&w->fresh, sc->socket_context);
    w->active_requests++;
    atomic_store_explicit(&w->metrics.in_flight, (long)w->active_requests, memory_order_relaxed);
    worker_add_live(w, req);
    return req;
}

/* Everything the header scan learns; slices point into MHD's connection memory. */
struct inbound_scan {
    struct request *req;
    struct tracehop_slice traceparent[2];
    size_t traceparent_count;
    struct tracehop_slice tracestate[MAX_TRACESTATE_FIELDS];
    size_t tracestate_count;
    struct tracehop_slice x_trace_id[2];
    size_t x_trace_id_count;
    struct tracehop_slice connection[MAX_CONNECTION_FIELDS];
    size_t connection_count;
    const char *content_length;
    size_t content_length_len;
    size_t content_length_count;
    bool content_length_conflict;
    size_t transfer_encoding_count;
    bool transfer_encoding_chunked;
    size_t host_count;
    const char *forwarded_for;
    size_t forwarded_for_len;
    size_t header_bytes;
    bool bad_name, bad_value, too_large;
    /* Where the raw header block lies in MHD's read buffer (see header_layout_is_clean). */
    uintptr_t layout_cursor, layout_end;
    bool bad_layout;
};

static void slice_push(struct tracehop_slice *list, size_t cap, size_t *count, const char *p,
                       size_t n)
{
    if (*count < cap)
        list[*count] = (struct tracehop_slice){p, n};
    (*count)++;
}

static bool trimmed_equals(const char *v, size_t n, const char *literal)
{
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return http_name_equals(v, n, literal);
}

/* Only line terminators, whitespace and the NULs MHD wrote over ':' and CRLF may lie between
 * what MHD reports as header fields. */
static bool gap_is_clean(uintptr_t from, uintptr_t to)
{
    for (const char *p = (const char *)from; (uintptr_t)p < to; p++)
        if (*p != '\0' && *p != '\r' && *p != '\n' && *p != ' ' && *p != '\t')
            return false;
    return true;
}

/*
 * libmicrohttpd 0.9.75 parses headers in place and mangles two things a proxy must refuse
 * (RFC 9112 5.2, RFC 9110 5.5): an obs-fold continuation line is appended to the header *name*
 * ("X-A: 1" + " b" becomes "X-Ab: 1"), and a NUL ends the value early ("a\0b" becomes "a").
 * Either way bytes of the raw header block are left out of every reported field, and nothing
 * else can leave bytes out: so every byte between consecutive fields must be a terminator or
 * whitespace, and every field must lie inside the block, in order.
 */
static bool header_layout_is_clean(struct inbound_scan *s, const char *name, size_t name_len,
                                   const char *value, size_t value_len)
{
    uintptr_t n = (uintptr_t)name, v = (uintptr_t)value;
    if (n < s->layout_cursor || n + name_len > v || v + value_len > s->layout_end)
        return false;
    if (!gap_is_clean(s->layout_cursor, n) || !gap_is_clean(n + name_len, v))
        return false;
    s->layout_cursor = v + value_len;
    return true;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                   size_t name_len, const char *value, size_t value_len)
{
    struct inbound_scan *s = cls;
    struct request *req = s->req;

    if (!value || !header_layout_is_clean(s, name, name_len, value, value_len)) {
        s->bad_layout = true;
        return MHD_NO;
    }

    s->header_bytes += name_len + value_len + 4;
    if (s->header_bytes > req->config->max_header_bytes) {
        s->too_large = true;
        return MHD_NO;
    }
    if (!http_is_token(name, name_len)) {
        s->bad_name = true;
        return MHD_NO;
    }
    if (!value || !http_is_field_value(value, value_len)) {
        s->bad_value = true;
        return MHD_NO;
    }
    if (http_name_equals(name, name_len, "traceparent")) {
        slice_push(s->traceparent, 2, &s->traceparent_count, value, value_len);
    } else if (http_name_equals(name, name_len, "tracestate")) {
        slice_push(s->tracestate, MAX_TRACESTATE_FIELDS, &s->tracestate_count, value, value_len);
    } else if (http_name_equals(name, name_len, req->config->request_id_header)) {
        slice_push(s->x_trace_id, 2, &s->x_trace_id_count, value, value_len);
    } else if (http_name_equals(name, name_len, "Content-Length")) {
        if (s->content_length_count > 0 &&
            (value_len != s->content_length_len || memcmp(value, s->content_length, value_len)))
            s->content_length_conflict = true;
        s->content_length = value;
        s->content_length_len = value_len;
        s->content_length_count++;
    } else if (http_name_equals(name, name_len, "Transfer-Encoding")) {
        s->transfer_encoding_count++;
        s->transfer_encoding_chunked = trimmed_equals(value, value_len, "chunked");
    } else if (http_name_equals(name, name_len, "Host")) {
        s->host_count++;
        req->host = arena_strndup(&req->arena, value, value_len);
    } else if (http_name_equals(name, name_len, "Connection")) {
        slice_push(s->connection, MAX_CONNECTION_FIELDS, &s->connection_count, value, value_len);
    } else if (http_name_equals(name, name_len, "User-Agent")) {
        req->user_agent = arena_strndup(&req->arena, value, value_len);
    } else if (http_name_equals(name, name_len, "X-Forwarded-For")) {
        s->forwarded_for = value;
        s->forwarded_for_len = value_len;
    }
    (void)kind;
    return MHD_YES;
}

/* Content-Length: 1*DIGIT, no sign, no spaces inside, fits in int64. */
static bool parse_content_length(const char *v, size_t n, int64_t *ret)
{
    int64_t total = 0;
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
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

static bool target_is_acceptable(const char *t, size_t n)
{
    if (n == 0 || t[0] != '/')
        return false; /* only origin-form: no absolute-form, authority-form or '*' */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return false;
    }
    return true;
}

static void decide_trace(struct request *req, struct inbound_scan *s)
{
    struct tracehop_slice invalid_tracestate = {"!", 1};
    struct tracehop_hop_input input = {
        .traceparent = s->traceparent,
        .traceparent_count = s->traceparent_count,
        .tracestate = s->tracestate,
        .tracestate_count = s->tracestate_count,
        .x_trace_id = s->x_trace_id,
        .x_trace_id_count = s->x_trace_id_count,
    };
    struct tracehop_hop_settings settings = {
        .trust_incoming = req->config->trust_incoming,
        .sampling_ratio = req->config->sampling_ratio,
    };

    if (s->traceparent_count > 2)
        input.traceparent_count = 2; /* still "more than one" */
    if (s->x_trace_id_count > 2)
        input.x_trace_id_count = 2;
    if (s->tracestate_count > MAX_TRACESTATE_FIELDS) {
        /* Too many fields to look at: more than 32 members or empty noise; refuse it whole. */
        input.tracestate = &invalid_tracestate;
        input.tracestate_count = 1;
    }
    tracehop_hop_decide(&input, &settings, &req->hop);
    tracehop_traceparent_format(req->traceparent_out, req->hop.trace_id, req->hop.span_id,
                                req->hop.flags);
    req->traceparent_out[TRACEHOP_TRACEPARENT_LEN] = '\0';
}

static void decide_trace_without_headers(struct request *req)
{
    struct inbound_scan empty = {.req = req};
    decide_trace(req, &empty);
}

/* Copy the headers access_log.fields asks for: the log line is built after MHD reused the
 * memory they live in. Several fields of one name are joined with ", " (RFC 9110 5.3). */
struct logged_header_scan {
    const struct config *config;
    struct strbuf *values; /* one per configured field */
};

static enum MHD_Result collect_logged_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                             size_t name_len, const char *value, size_t value_len)
{
    struct logged_header_scan *scan = cls;
    (void)kind;
    for (size_t i = 0; i < scan->config->access_log_fields_count; i++) {
        if (!http_name_equals(name, name_len, scan->config->access_log_fields[i]))
            continue;
        if (scan->values[i].data)
            strbuf_append_str(&scan->values[i], ", ");
        else
            strbuf_reserve(&scan->values[i], value_len); /* present, even if empty */
        strbuf_append(&scan->values[i], value ? value : "", value ? value_len : 0);
    }
    return MHD_YES;
}

static void capture_logged_headers(struct request *req)
{
    const struct config *c = req->config;
    struct strbuf values[CONFIG_MAX_LOGGED_HEADERS] = {{0}};
    size_t n = c->access_log_fields_count; /* config keeps it <= CONFIG_MAX_LOGGED_HEADERS */

    if (n == 0)
        return;
    req->logged_headers = arena_alloc(&req->arena, n * sizeof(char *));
    if (!req->logged_headers)
        return;
    struct logged_header_scan scan = {c, values};
    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, collect_logged_header, &scan);
    for (size_t i = 0; i < n; i++) {
        req->logged_headers[i] =
            values[i].data ? arena_strndup(&req->arena, values[i].data, values[i].len) : NULL;
        strbuf_free(&values[i]);
    }
}

#define REQUEST_DIAGS_PER_SECOND 10

/*
 * Diagnostics about one request's inbound headers (a rejected traceparent or X-Trace-ID, a
 * request refused with 4xx/5xx), with its trace_id. Rate-limited per worker, because a client
 * can send bad requests as fast as it likes: the rest are counted, and the count is reported.
 */
static void report_inbound_problems(struct request *req)
{
    struct worker *w = req->worker;
    char what[256];
    size_t n = 0;

    if (req->error_status)
        n += (size_t)snprintf(what + n, sizeof(what) - n, "answered %u %s; ", req->error_status,
                              req->error_code);
    if (req->hop.traceparent_error != TRACEHOP_TP_OK && n < sizeof(what))
        n += (size_t)snprintf(what + n, sizeof(what) - n, "traceparent rejected: %s; ",
                              tracehop_traceparent_strerror(req->hop.traceparent_error));
    if (req->hop.x_trace_id_status == TRACEHOP_XID_REJECTED && n < sizeof(what))
        n += (size_t)snprintf(what + n, sizeof(what) - n, "%s rejected (unsafe or repeated); ",
                              req->config->request_id_header);
    if (n == 0)
        return;
    int64_t now = worker_now_ms();
    if (now - w->diag_window_ms >= 1000) {
        if (w->diag_suppressed > 0)
            diag(DIAG_INFO, "worker %u: %u more request diagnostics suppressed in the last second",
                 w->index, w->diag_suppressed);
        w->diag_window_ms = now;
        w->diag_in_window = 0;
        w->diag_suppressed = 0;
    }
    if (++w->diag_in_window > REQUEST_DIAGS_PER_SECOND) {
        w->diag_suppressed++;
        return;
    }
    if (n >= 2 && n < sizeof(what))
        what[n - 2] = '\0'; /* drop the last "; " */
    struct request_ids_hex ids;
    request_ids_hex(req, &ids);
    diag_request(DIAG_INFO, ids.trace_id, ids.span_id, "request from %s: %s", req->client_addr,
                 what);
}

static enum MHD_Result on_headers(struct request *req, const char *method, const char *version)
{
    /* The request line counts against the header limit too, so that an oversized target
     * gets tracehop's answer (with trace headers) rather than MHD's bare 414. */
    struct inbound_scan scan = {.req = req, .header_bytes = req->target_len};
    int64_t content_length = 0;

    req->started = true;
    req->method = arena_strndup(&req->arena, method, strlen(method));
    req->is_head = strcmp(method, "HEAD") == 0;
    const union MHD_ConnectionInfo *size_info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    /* The request line starts MHD's read buffer (method, target and version, split in place);
     * the header fields follow it, up to header_size bytes from the start. */
    scan.layout_cursor = (uintptr_t)version + strlen(version);
    scan.layout_end = size_info ? (uintptr_t)method + size_info->header_size : 0;
    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, scan_header, &scan);
    if (!scan.bad_layout && !gap_is_clean(scan.layout_cursor, scan.layout_end))
        scan.bad_layout = true; /* a fold or NUL in the last field */
    decide_trace(req, &scan);
    capture_logged_headers(req);

    if (!req->method || !req->target)
        set_error(req, 500, "internal_error", "bad_request", "out of memory");
    if (req->target_len > req->config->max_header_bytes)
        set_error(req, 414, "uri_too_long", "too_large",
                  "the request target is longer than limits.max_header_bytes");
    if (scan.too_large)
        set_error(req, 431, "headers_too_large", "too_large",
                  "request header fields are larger than limits.max_header_bytes");
    if (scan.bad_layout)
        set_error(req, 400, "bad_header_syntax", "bad_request",
                  "obsolete line folding or a NUL byte in the request headers");
    if (scan.bad_name)
        set_error(req, 400, "bad_header_name", "bad_request",
                  "a request header name is not a valid token");
    if (scan.bad_value)
        set_error(req, 400, "bad_header_value", "bad_request",
                  "a request header value contains control characters");
    if (!http_is_token(method, strlen(method)))
        set_error(req, 400, "bad_method", "bad_request", "the request method is not a token");
    if (!target_is_acceptable(req->target, req->target_len))
        set_error(req, 400, "bad_target", "bad_request",
                  "the request target must be an origin-form path without spaces, controls, "
                  "non-ASCII bytes or '#'");
    if (strcmp(version, "HTTP/1.1") == 0 && scan.host_count == 0)
        set_error(req, 400, "missing_host", "bad_request", "HTTP/1.1 requests need a Host header");
    if (scan.host_count > 1)
        set_error(req, 400, "duplicate_host", "bad_request", "more than one Host header");
    if (scan.content_length_conflict)
        set_error(req, 400, "conflicting_content_length", "bad_request",
                  "several Content-Length headers with different values");
    if (scan.content_length_count > 0 &&
        !parse_content_length(scan.content_length, scan.content_length_len, &content_length))
        set_error(req, 400, "bad_content_length", "bad_request",
                  "Content-Length is not a valid length");
    if (scan.transfer_encoding_count > 0 && scan.content_length_count > 0)
        set_error(req, 400, "content_length_with_transfer_encoding", "bad_request",
                  "Content-Length together with Transfer-Encoding");
    if (scan.transfer_encoding_count > 1 ||
        (scan.transfer_encoding_count == 1 && !scan.transfer_encoding_chunked))
        set_error(req, 501, "unsupported_transfer_encoding", "bad_request",
                  "only Transfer-Encoding: chunked is supported");
    if (scan.transfer_encoding_count == 1 && strcmp(version, "HTTP/1.0") == 0)
        set_error(req, 400, "transfer_encoding_in_http10", "bad_request",
                  "Transfer-Encoding in an HTTP/1.0 request");

    if (scan.transfer_encoding_count > 0) {
        req->has_body = true;
        req->content_length = -1;
    } else if (scan.content_length_count > 0) {
        req->has_body = true; /* even 0: the upstream gets Content-Length: 0 */
        req->content_length = content_length;
    }
    size_t max_body = req->config->max_body_bytes;
    if (max_body && req->content_length > 0 && (uint64_t)req->content_length > max_body)
        set_error(req, 413, "body_too_large", "too_large",
                  "the request body is larger than limits.max_body_bytes");

    if (!req->error_status) {
        req->route = route_match(req->config, req->target, req->path_len, req->host,
                                 req->host ? strlen(req->host) : 0, method);
        if (!req->route)
            set_error(req, 404, "no_route", "no_route", "no route matches this request");
    }
    report_inbound_problems(req);
    if (req->error_status)
        return queue_error(req);

    struct upstream_request_info info = {
        .connection = scan.connection,
        .connection_count = scan.connection_count < MAX_CONNECTION_FIELDS ? scan.connection_count
                                                                          : MAX_CONNECTION_FIELDS,
        .forwarded_for = scan.forwarded_for,
        .forwarded_for_len = scan.forwarded_for_len,
    };
    int rc = upstream_start(req, &info);
    if (rc < 0) {
        set_error(req, 502, "upstream_setup_failed", "upstream_connect_failed",
                  "could not set up the upstream request");
        return queue_error(req);
    }
    return MHD_YES;
}

/* --- request body --------------------------------------------------------------------- */

static void suspend(struct request *req, enum request_wait why)
{
    if (why == WAIT_RESPONSE && req->wait != WAIT_RESPONSE)
        req->wait_since_ms = worker_now_ms();
    req->wait = why;
    if (!req->suspended) {
        req->suspended = true;
        MHD_suspend_connection(req->conn);
    }
}

static enum MHD_Result on_body_data(struct request *req, const char *data, size_t *size)
{
    size_t max_body = req->config->max_body_bytes;

    if (max_body && !req->error_status && req->bytes_received + *size > max_body) {
        /* A chunked body over the limit. MHD can only answer once the request is read, so
         * stop the upstream and discard the rest; the 413 goes out at the final call. */
        set_error(req, 413, "body_too_large", "too_large",
                  "the request body is larger than limits.max_body_bytes");
        upstream_cancel(req);
    }
    if (req->upstream_done || req->error_status) {
        /* The upstream already answered or failed, or we refuse the request: read and discard
         * the rest of the body, but only so much: a client that keeps sending is cut off. */
        req->bytes_received += *size;
        req->bytes_discarded += *size;
        *size = 0;
        if (req->bytes_discarded > MAX_DISCARDED_BODY_BYTES)
            return MHD_NO;
        return MHD_YES;
    }
    size_t taken = bytebuf_put(&req->up, data, *size);
    req->bytes_received += taken;
    *size -= taken;
    if (taken > 0 && req->read_paused)
        worker_mark_dirty(req->worker, req);
    if (*size > 0)
        suspend(req, WAIT_UPLOAD_SPACE); /* MHD offers the rest again after the resume */
    return MHD_YES;
}

/* --- response ------------------------------------------------------------------------- */

static ssize_t read_response_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct request *req = cls;
    size_t n = bytebuf_take(&req->down, buf, max);

    (void)pos;
    if (req->worker->stopping)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n > 0) {
        req->bytes_sent += n;
        if (req->write_paused)
            worker_mark_dirty(req->worker, req);
        return (ssize_t)n;
    }
    if (req->upstream_done) {
        if (req->upstream_result == CURLE_OK)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!req->outcome) {
            struct upstream_failure f;
            upstream_classify(req->upstream_result, &f);
            req->outcome = f.outcome;
        }
        /* Abort: never a silently short body. MHD closes the socket on its next run, so make
         * that run happen now rather than on the idle tick. */
        req->worker->mhd_needs_run = true;
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    /* Returning 0 without suspending makes MHD 0.9.75 busy-loop on this connection. */
    suspend(req, WAIT_BODY_DATA);
    return 0;
}

static bool response_header_is_forwarded(const struct request *req, const struct response_header *h)
{
    if (http_header_is_hop_by_hop(h->name, h->name_len) ||
        http_name_equals(h->name, h->name_len, "Content-Length"))
        return false;
    if (req->config->echo &&
        (http_name_equals(h->name, h->name_len, "traceparent") ||
         http_name_equals(h->name, h->name_len, req->config->request_id_header)))
        return false;
    /* Headers the upstream's Connection header names are hop-by-hop too. */
    for (size_t i = 0; i < req->response_headers_count; i++) {
        const struct response_header *c = &req->response_headers[i];
        if (http_name_equals(c->name, c->name_len, "Connection") &&
            http_connection_lists(c->value, strlen(c->value), h->name, h->name_len))
            return false;
    }
    return true;
}

static enum MHD_Result queue_upstream_response(struct request *req)
{
    struct MHD_Response *resp;
    size_t copied = 0;
    bool complete = req->upstream_done && req->upstream_result == CURLE_OK;
    uint64_t size = req->upstream_content_length >= 0 ? (uint64_t)req->upstream_content_length
                                                      : MHD_SIZE_UNKNOWN;

    if (req->is_head || req->upstream_status == 204 || req->upstream_status == 304) {
        resp = MHD_create_response_from_callback(req->is_head ? size : 0, 4096, read_response_body,
                                                 req, NULL);
    } else if (complete) {
        /* The whole body is here (the usual small response): one copy, headers and body go
         * out in one sendmsg. */
        copied = bytebuf_len(&req->down);
        resp = MHD_create_response_from_buffer(copied, req->down.data + req->down.head,
                                               MHD_RESPMEM_MUST_COPY);
        bytebuf_clear(&req->down);
    } else {
        req->streaming = true;
        resp = MHD_create_response_from_callback(size, 32 * 1024, read_response_body, req, NULL);
    }
    if (!resp)
        return MHD_NO;
    for (size_t i = 0; i < req->response_headers_count; i++) {
        struct response_header *h = &req->response_headers[i];
        if (!response_header_is_forwarded(req, h))
            continue;
        /* MHD needs NUL-terminated names; the arena copy has one after name_len. */
        char *name = (char *)h->name;
        char saved = name[h->name_len];
        name[h->name_len] = '\0';
        enum MHD_Result added = MHD_add_response_header(resp, name, h->value);
        name[h->name_len] = saved;
        if (added != MHD_YES) {
            MHD_destroy_response(resp); /* out of memory: never a response missing a header */
            return MHD_NO;
        }
    }
    if (!add_trace_headers(req, resp) ||
        (req->worker->draining &&
         MHD_add_response_header(resp, "Connection", "close") != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)req->upstream_status, resp);
    MHD_destroy_response(resp);
    req->response_queued = true;
    if (rc == MHD_YES)
        req->bytes_sent += copied;
    return rc;
}

/* The whole request has been read: answer now if we can, else wait for the upstream. */
static enum MHD_Result try_respond(struct request *req)
{
    if (req->response_queued)
        return MHD_YES;
    if (req->client_gone)
        return MHD_NO; /* nobody to answer: let MHD close and report the abort */
    if (req->error_status)
        return queue_error(req);
    if (req->headers_done)
        return queue_upstream_response(req);
    if (req->upstream_done) {
        struct upstream_failure f;
        upstream_classify(req->upstream_result, &f);
        set_error(req, f.status, f.code, f.outcome, f.message);
        return queue_error(req);
    }
    suspend(req, WAIT_RESPONSE);
    return MHD_YES;
}

enum MHD_Result request_on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct request *req = *con_cls;

    (void)cls;
    (void)url; /* decoded and cut at '?': useless for a proxy; we use the raw target */
    if (!req || req->worker->stopping)
        return MHD_NO;
    if (!req->started)
        return on_headers(req, method, version);
    if (*upload_data_size > 0)
        return on_body_data(req, upload_data, upload_data_size);
    if (!req->body_complete) {
        req->body_complete = true;
        if (req->read_paused)
            worker_mark_dirty(req->worker, req); /* let curl see the end of the body */
    }
    (void)conn;
    return try_respond(req);
}

/* --- driven by the worker ------------------------------------------------------------- */

static bool ready_to_resume(const struct request *req)
{
    switch (req->wait) {
    case WAIT_UPLOAD_SPACE:
        return bytebuf_space(&req->up) > 0 || req->upstream_done;
    case WAIT_RESPONSE:
        return req->headers_done || req->upstream_done || req->client_gone;
    case WAIT_BODY_DATA:
        return bytebuf_len(&req->down) > 0 || req->upstream_done;
    case WAIT_NONE:
        return false;
    }
    return false;
}

void request_service(struct request *req)
{
    if (req->upstream_active) {
        if (req->read_paused && (bytebuf_len(&req->up) > 0 || req->body_complete)) {
            req->read_paused = false;
            curl_easy_pause(req->easy, CURLPAUSE_CONT);
        }
        if (req->upstream_active && req->write_paused &&
            bytebuf_space(&req->down) >= CURL_MAX_WRITE_SIZE) {
            req->write_paused = false;
            curl_easy_pause(req->easy, CURLPAUSE_CONT);
        }
    }
    if (req->suspended && ready_to_resume(req)) {
        worker_unwatch_client(req->worker, req); /* MHD watches the socket again */
        req->suspended = false;
        req->wait = WAIT_NONE;
        MHD_resume_connection(req->conn);
        req->worker->mhd_needs_run = true;
    }
}

/*
 * The request line came, the rest of the head did not within limits.client_header_timeout_ms:
 * a slowloris client, or one stuck mid-request. libmicrohttpd only knows an idle timeout (a
 * byte every few seconds keeps a connection forever) and offers no way to answer before the
 * head is complete, so tracehop writes the 408 itself - nothing else has been sent on this
 * connection for this request - and shuts the socket down; libmicrohttpd then sees the end of
 * the stream, closes the connection and reports the request completed, which logs it.
 */
void request_on_head_timeout(struct request *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct strbuf body = {0}, head = {0};

    if (req->started || req->head_timed_out || !info)
        return;
    req->head_timed_out = true;
    decide_trace_without_headers(req);
    set_error(req, 408, "request_timeout", "bad_request",
              "the request head was not complete within limits.client_header_timeout_ms");
    format_error_body(req, &body);
    strbuf_append_str(&head, "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                             "Cache-Control: no-store\r\nConnection: close\r\n");
    if (req->config->echo) {
        strbuf_append_str(&head, "traceparent: ");
        strbuf_append_str(&head, req->traceparent_out);
        strbuf_append_str(&head, "\r\n");
        strbuf_append_str(&head, req->config->request_id_header);
        strbuf_append_str(&head, ": ");
        strbuf_append(&head, req->hop.x_trace_id, req->hop.x_trace_id_len);
        strbuf_append_str(&head, "\r\n");
    }
    char length[48];
    snprintf(length, sizeof(length), "Content-Length: %zu\r\n\r\n", body.len);
    strbuf_append_str(&head, length);
    strbuf_append(&head, body.data, body.len);
    /* Best effort: the socket buffer of a connection that sent us this little is empty. */
    if (!head.oom && !body.oom &&
        send(info->connect_fd, head.data, head.len, MSG_DONTWAIT | MSG_NOSIGNAL) ==
            (ssize_t)head.len)
        req->bytes_sent += body.len;
    shutdown(info->connect_fd, SHUT_RDWR);
    strbuf_free(&head);
    strbuf_free(&body);
}

void request_on_client_gone(struct request *req)
{
    req->client_gone = true;
    if (!req->outcome)
        req->outcome = "client_aborted";
    upstream_cancel(req); /* the upstream's work is for nobody now */
    worker_mark_dirty(req->worker, req);
}

void request_on_upstream_done(struct request *req, CURLcode result)
{
    req->upstream_done = true;
    req->upstream_result = result;
    if (req->header_overflow) /* we aborted it: the upstream's answer was not valid HTTP */
        req->upstream_result = CURLE_WEIRD_SERVER_REPLY;
    worker_mark_dirty(req->worker, req);
}

/* --- the end ---------------------------------------------------------------------------- */

static const char *final_outcome(struct request *req, enum MHD_RequestTerminationCode toe)
{
    if (req->outcome)
        return req->outcome;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        return "client_aborted";
    if (req->upstream_done && req->upstream_result != CURLE_OK) {
        struct upstream_failure f;
        upstream_classify(req->upstream_result, &f);
        return f.outcome;
    }
    return "ok";
}

static void count_request(struct request *req, unsigned status, const char *outcome)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct metrics_request m = {
        .route_slot = req->route ? req->route->metrics_slot : 0,
        .method = req->method,
        .status = status,
        .outcome = outcome,
        .duration_s = timefmt_elapsed_ms(&req->start_mono, &now) / 1000.0,
        .has_upstream = req->upstream_started,
        .upstream_duration_s =
            timefmt_elapsed_ms(&req->upstream_start_mono, &req->upstream_end_mono) / 1000.0,
        .trace_id = req->hop.trace_id,
        .span_id = req->hop.span_id,
        .sampled = (req->hop.flags & TRACEHOP_FLAG_SAMPLED) != 0,
        .received_bytes = req->bytes_received,
        .sent_bytes = req->bytes_sent,
    };
    metrics_count_request(&req->worker->metrics, &m);
}

void request_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct worker *w = cls;
    struct request *req = *con_cls;
    unsigned status;

    if (!req)
        return;
    *con_cls = NULL;
    if (req->head_timed_out) {
        status = req->error_status; /* written by request_on_head_timeout */
    } else if (!req->started) {
        /* MHD refused the request itself (e.g. headers beyond its buffer): log it anyway. */
        decide_trace_without_headers(req);
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        status = info ? info->http_status : 0;
        req->outcome = status == 431 || status == 413 || status == 414 ? "too_large"
                       : status                                        ? "bad_request"
                                                                       : "client_aborted";
    } else if (req->error_status && req->response_queued) {
        status = req->error_status;
    } else if (req->response_queued) {
        status = (unsigned)req->upstream_status;
    } else {
        /* No response of ours: MHD may still have refused the body itself (broken chunked
         * framing, an oversized chunk); log what went on the wire, else null. */
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        status = info ? info->http_status : 0;
        if (status && !req->outcome)
            req->outcome = status == 413 ? "too_large" : "bad_request";
    }
    if (req->upstream_active)
        upstream_cancel(req);
    if (req->upstream_started && !req->upstream_end_mono.tv_sec)
        clock_gettime(CLOCK_MONOTONIC, &req->upstream_end_mono);
    const char *outcome = final_outcome(req, toe);
    logline_write(req, status, outcome);
    count_request(req, status, outcome);
    if (req->upstream_headers)
        req->upstream_headers = NULL; /* arena-owned */
    worker_unwatch_client(w, req);
    if (req->dirty)
        worker_forget_dirty(w, req);
    worker_remove_live(w, req);
    w->active_requests--;
    atomic_store_explicit(&w->metrics.in_flight, (long)w->active_requests, memory_order_relaxed);
    if (req->config != w->config)
        worker_config_released(w, req->config);
    request_release(req);
}
