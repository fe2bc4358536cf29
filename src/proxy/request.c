/* SPDX-License-Identifier: MIT */
/*
 * The life of one request, a straight walk through the rooms of the proxy:
 *
 *   on_request_line  take a pooled request, copy the raw target, pin the config
 *   on_head          one walk over the header fields (what is checked, forwarded, logged),
 *                    the trace context, the request check, the route, the upstream transfer;
 *                    or tracehop's own answer
 *   on_body          request body bytes -> bounded buffer -> the transfer
 *   on_body_end      queue the response once the upstream's head is here, else suspend
 *   read_body        response body bytes from the bounded buffer, suspending when empty
 *   on_completed     cancel what still runs, build the summary for the access log and the
 *                    metrics, unpin the config, return the request to the pool
 *
 * Resuming the inbound side and unpausing the transfer never happen inside either library's
 * callbacks: those only defer the request's service task (loop.h), which does both after the
 * current batch of events.
 *
 * libmicrohttpd 0.9.75 accepts several things a proxy must not pass on: conflicting
 * Content-Length, odd Transfer-Encodings, header names with spaces, targets with spaces (see
 * docs/security.md). They are refused in on_head, before anything reaches the upstream.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/request.h"
#include "proxy/forward_headers.h"
#include "proxy/refusal.h"
#include "proxy/route.h"
#include "proxy/server_timing.h"
#include "proxy/upstream.h"
#include "observe/accesslog.h"
#include "observe/logline.h"
#include "observe/metrics.h"
#include "observe/request_summary.h"
#include "observe/otlp_exporter.h"
#include "config/config.h"
#include "common/addrfmt.h"
#include "common/arena.h"
#include "common/bytebuf.h"
#include "common/diag.h"
#include "common/http_syntax.h"
#include "common/strbuf.h"
#include "common/timefmt.h"

#define BODY_BUFFER_SIZE      (64 * 1024)
#define MAX_TRACESTATE_FIELDS 64
#define MAX_CONNECTION_FIELDS 8
#define MAX_UPGRADE_FIELDS    8
/* How much of a refused upgrade's protocol name the error message quotes. */
#define MAX_QUOTED_PROTOCOL 64
/* How much of a refused request body we read (to be able to answer) before closing instead. */
#define MAX_DISCARDED_BODY_BYTES (4u * 1024 * 1024)
/* Watching a waiting client costs two epoll_ctl calls, so only requests that wait longer than
 * this get it: a fast upstream answers before a hang-up could matter. */
#define WATCH_CLIENT_AFTER_MS    100
#define REQUEST_DIAGS_PER_SECOND 10
/* tracehop's own headers on a response: Content-Type, Cache-Control, traceparent, the request
 * id, Server-Timing, Connection. */
#define OWN_RESPONSE_HEADERS 6

/* Why the inbound connection is suspended, i.e. what must happen before it is resumed. */
enum request_wait {
    WAIT_NONE = 0,
    WAIT_UPLOAD_SPACE, /* request body buffer full: the transfer must drain it */
    WAIT_RESPONSE,     /* request read: upstream response head (or failure) needed */
    WAIT_BODY_DATA,    /* streaming response: more upstream body (or its end) needed */
};

struct request {
    struct inbound_request inbound; /* first: the handlers get a pointer to it */
    struct request_env *env;
    struct request *next_free;             /* env's pool */
    struct request *live_prev, *live_next; /* env's requests in progress */
    struct loop_task service;              /* request_service, deferred */
    const struct config *config;           /* pinned for the request's life */
    const struct route *route;

    /* lifecycle */
    bool started;        /* on_head done */
    bool head_timed_out; /* cut off by limits.client_header_timeout_ms (a 408 was written) */
    bool body_complete;  /* on_body_end reached: the whole request was read */
    bool response_queued;
    enum request_wait wait;
    int64_t wait_since_ms; /* when the current WAIT_RESPONSE began */
    bool client_gone;      /* the client hung up while we waited: close instead of answering */
    bool cut_off;          /* still running when the drain timeout was over */
    bool routed;           /* the routes were looked at (route NULL then: none matched) */

    /* inbound request */
    struct timespec start_real, start_mono;
    char *target; /* raw request target, as received */
    size_t target_len;
    size_t path_len;    /* target up to '?' */
    const char *method; /* arena copy */
    bool is_head;
    bool has_body;
    int64_t content_length; /* -1 = chunked */
    const char *host;
    const char *http_version; /* "1.1" or "1.0" (static), NULL until the head came */
    const char *user_agent;
    const char **logged_headers; /* values of config access_log.fields (NULL = absent) */
    char client_addr[ADDRFMT_MAX];
    uint64_t bytes_received;  /* request body bytes read from the client */
    uint64_t bytes_discarded; /* of which thrown away (refused or already answered) */
    uint64_t bytes_sent;      /* response body bytes handed to the client */

    /* trace context */
    struct tracehop_hop hop;
    char traceparent_out[TRACEHOP_TRACEPARENT_LEN + 1];
    char server_timing[SERVER_TIMING_VALUE_MAX + 1]; /* the value last sent, if any */

    /* tracehop's own answer (status 0 = none) and the access-log outcome (NULL = decided at
     * the end) */
    struct refusal refusal;
    const char *outcome;

    /* upstream */
    struct upstream_transfer *transfer; /* while it runs */
    bool upstream_started, upstream_done;
    bool headers_done; /* the upstream's final head is in `head` */
    struct upstream_outcome upstream_outcome;
    struct timespec upstream_start_mono, upstream_end_mono;
    struct timespec upstream_head_mono; /* when the final head was complete */
    struct response_head head;

    struct bytebuf up;   /* request body on its way to the upstream */
    struct bytebuf down; /* response body on its way to the client */
    struct arena arena;
};

static void request_service(void *data, uint32_t events);

/* A CLOCK_MONOTONIC reading in milliseconds, as loop_now_ms gives them. */
static int64_t mono_ms(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

/* --- the pool: this file alone allocates and frees requests ------------------------------- */

static struct request *request_take(struct request_env *env)
{
    struct request *req = env->free_requests;

    if (req) {
        env->free_requests = req->next_free;
        char *up = req->up.data, *down = req->down.data;
        struct arena arena = req->arena;
        memset(req, 0, offsetof(struct request, head));
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
    req->env = env;
    loop_task_init(&req->service, LOOP_TASK_DEFERRED, request_service, req);
    return req;
}

static void request_release(struct request *req)
{
    struct request_env *env = req->env;
    arena_reset(&req->arena);
    req->next_free = env->free_requests;
    env->free_requests = req;
}

void request_env_init(struct request_env *env, const struct config *config)
{
    config_pins_init(&env->configs, config);
    env->free_requests = NULL;
    env->live_head = NULL;
    env->active = 0;
    env->diag_window_ms = 0;
    env->diag_in_window = env->diag_suppressed = 0;
}

void request_env_destroy(struct request_env *env)
{
    while (env->free_requests) {
        struct request *r = env->free_requests;
        env->free_requests = r->next_free;
        free(r->up.data);
        free(r->down.data);
        arena_free(&r->arena);
        free(r);
    }
    config_pins_destroy(&env->configs);
}

unsigned request_active_count(const struct request_env *env)
{
    return env->active;
}

static void mark_dirty(struct request *req)
{
    loop_defer(req->env->loop, &req->service);
}

static void add_live(struct request *req)
{
    struct request_env *env = req->env;
    req->live_prev = NULL;
    req->live_next = env->live_head;
    if (env->live_head)
        env->live_head->live_prev = req;
    env->live_head = req;
    env->active++;
    atomic_store_explicit(&env->metrics->in_flight, (long)env->active, memory_order_relaxed);
}

static void remove_live(struct request *req)
{
    struct request_env *env = req->env;
    if (req->live_prev)
        req->live_prev->live_next = req->live_next;
    else
        env->live_head = req->live_next;
    if (req->live_next)
        req->live_next->live_prev = req->live_prev;
    req->live_prev = req->live_next = NULL;
    env->active--;
    atomic_store_explicit(&env->metrics->in_flight, (long)env->active, memory_order_relaxed);
}

/* The request's trace and span ids as NUL-terminated lowercase hex, for diagnostics. */
struct ids_hex {
    char trace_id[TRACEHOP_TRACE_ID_HEX_LEN + 1];
    char span_id[TRACEHOP_SPAN_ID_HEX_LEN + 1];
};

static void ids_hex(const struct request *req, struct ids_hex *ret)
{
    tracehop_hex_format(ret->trace_id, req->hop.trace_id, TRACEHOP_TRACE_ID_SIZE);
    ret->trace_id[TRACEHOP_TRACE_ID_HEX_LEN] = '\0';
    tracehop_hex_format(ret->span_id, req->hop.span_id, TRACEHOP_SPAN_ID_SIZE);
    ret->span_id[TRACEHOP_SPAN_ID_HEX_LEN] = '\0';
}

/* --- tracehop's own answers --------------------------------------------------------------- */

static void refuse(struct request *req, const struct refusal *refusal)
{
    if (req->refusal.status)
        return; /* the first reason wins */
    req->refusal = *refusal;
    req->outcome = refusal->outcome;
}

/* traceparent and the request id, when the config echoes them: every response carries them. */
static size_t add_trace_headers(const struct request *req, struct inbound_header *h)
{
    if (!req->config->echo)
        return 0;
    h[0] = (struct inbound_header){"traceparent", req->traceparent_out};
    h[1] = (struct inbound_header){req->config->request_id_header, req->hop.x_trace_id};
    return 2;
}

/*
 * tracehop's Server-Timing field, when the config asks for it (docs/trace-context.md, "11.
 * Server-Timing"): the `trace` metric, the time at tracehop until now (the response head), and
 * the upstream's time until its head. One more field after the upstream's own Server-Timing.
 */
static size_t add_server_timing(struct request *req, struct inbound_header *h)
{
    struct timespec now;
    struct server_timing timing = {.tracehop_ms = -1, .upstream_ms = -1};

    if (req->config->server_timing)
        timing.traceparent = req->traceparent_out;
    if (req->config->server_timing_durations) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        timing.tracehop_ms = timefmt_elapsed_ms(&req->start_mono, &now);
        if (req->headers_done)
            timing.upstream_ms =
                timefmt_elapsed_ms(&req->upstream_start_mono, &req->upstream_head_mono);
    }
    if (server_timing_format(&timing, req->server_timing) == 0)
        return 0;
    h[0] = (struct inbound_header){"Server-Timing", req->server_timing};
    return 1;
}

/* The JSON body of an error tracehop answers itself (docs/security.md). */
static void format_error_body(const struct request *req, struct strbuf *body)
{
    struct ids_hex ids;

    ids_hex(req, &ids);
    strbuf_append_str(body, "{\"error\":");
    strbuf_append_json_string(body, req->refusal.code, strlen(req->refusal.code));
    strbuf_append_str(body, ",\"message\":");
    strbuf_append_json_string(body, req->refusal.message, strlen(req->refusal.message));
    strbuf_append_str(body, ",\"trace_id\":\"");
    strbuf_append_str(body, ids.trace_id);
    strbuf_append_str(body, "\",\"span_id\":\"");
    strbuf_append_str(body, ids.span_id);
    strbuf_append_str(body, "\",\"x_trace_id\":");
    strbuf_append_json_string(body, req->hop.x_trace_id, req->hop.x_trace_id_len);
    strbuf_append_str(body, "}\n");
}

static bool queue_error(struct request *req)
{
    struct inbound_header headers[OWN_RESPONSE_HEADERS];
    size_t n = 0;
    struct strbuf body = {0};

    format_error_body(req, &body);
    if (body.oom) {
        strbuf_free(&body);
        return false;
    }
    headers[n++] = (struct inbound_header){"Content-Type", "application/json"};
    headers[n++] = (struct inbound_header){"Cache-Control", "no-store"};
    n += add_trace_headers(req, headers + n);
    n += add_server_timing(req, headers + n);
    if (req->env->draining || !req->body_complete)
        headers[n++] = (struct inbound_header){"Connection", "close"};
    bool queued =
        inbound_respond(&req->inbound, req->refusal.status, headers, n, body.data, body.len);
    if (queued && !req->is_head)
        req->bytes_sent += body.len; /* our own body counts like the upstream's */
    strbuf_free(&body);
    req->response_queued = true;
    return queued;
}

/* --- the head ----------------------------------------------------------------------------- */

/* Everything the one walk over the header fields learns; slices point into the library's
 * connection memory, valid while the request lives. */
struct head_scan {
    struct request *req;
    struct tracehop_slice traceparent[2];
    size_t traceparent_count;
    struct tracehop_slice tracestate[MAX_TRACESTATE_FIELDS];
    size_t tracestate_count;
    struct tracehop_slice x_trace_id[2];
    size_t x_trace_id_count;
    struct tracehop_slice connection[MAX_CONNECTION_FIELDS];
    size_t connection_count;
    struct tracehop_slice upgrade[MAX_UPGRADE_FIELDS];
    size_t upgrade_count;
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
    bool too_large, bad_name, bad_value, out_of_memory;
    struct header_field *fields; /* every field visited, in order (arena) */
    size_t fields_count, fields_cap;
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

static void keep_field(struct head_scan *s, const struct header_field *f)
{
    if (s->fields_count == s->fields_cap) {
        size_t cap = s->fields_cap ? s->fields_cap * 2 : 32;
        struct header_field *p = arena_alloc(&s->req->arena, cap * sizeof(*p));
        if (!p) {
            s->out_of_memory = true;
            return;
        }
        if (s->fields_count)
            memcpy(p, s->fields, s->fields_count * sizeof(*p));
        s->fields = p;
        s->fields_cap = cap;
    }
    s->fields[s->fields_count++] = *f;
}

/* One field: checked, classified, kept for forwarding and logging. False stops the walk. */
static bool scan_field(void *data, const struct header_field *f)
{
    struct head_scan *s = data;
    struct request *req = s->req;
    const char *name = f->name, *value = f->value;
    size_t name_len = f->name_len, value_len = f->value_len;

    s->header_bytes += name_len + value_len + 4;
    if (s->header_bytes > req->config->max_header_bytes) {
        s->too_large = true;
        return false;
    }
    if (!http_is_token(name, name_len)) {
        s->bad_name = true;
        return false;
    }
    if (!http_is_field_value(value, value_len)) {
        s->bad_value = true;
        return false;
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
    } else if (http_name_equals(name, name_len, "Upgrade")) {
        slice_push(s->upgrade, MAX_UPGRADE_FIELDS, &s->upgrade_count, value, value_len);
    } else if (http_name_equals(name, name_len, "User-Agent")) {
        req->user_agent = arena_strndup(&req->arena, value, value_len);
    } else if (http_name_equals(name, name_len, "X-Forwarded-For")) {
        s->forwarded_for = value;
        s->forwarded_for_len = value_len;
    }
    keep_field(s, f);
    return true;
}

static void decide_trace(struct request *req, const struct head_scan *s)
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
        .sampler = req->config->sampler,
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
    struct head_scan empty = {.req = req};
    decide_trace(req, &empty);
}

/* Copy the fields access_log.fields asks for: the log line is built after the library reused
 * the memory they live in. Several fields of one name are joined with ", " (RFC 9110 5.3). */
struct logged_fields {
    const struct config *config;
    struct strbuf values[CONFIG_MAX_LOGGED_HEADERS]; /* one per configured field */
};

static bool add_logged_field(void *data, const struct header_field *f)
{
    struct logged_fields *l = data;
    for (size_t i = 0; i < l->config->access_log_fields_count; i++) {
        if (!http_name_equals(f->name, f->name_len, l->config->access_log_fields[i]))
            continue;
        if (l->values[i].data)
            strbuf_append_str(&l->values[i], ", ");
        else
            strbuf_reserve(&l->values[i], f->value_len); /* present, even if empty */
        strbuf_append(&l->values[i], f->value, f->value_len);
    }
    return true;
}

/* A refused request is logged with every field access_log.fields names, also those after the
 * field that stopped the walk: its fields are then read once more, as the library parsed them. */
static void capture_logged_headers(struct request *req, const struct head_scan *s, bool walked_all)
{
    struct logged_fields l = {.config = req->config};
    size_t n = req->config->access_log_fields_count; /* config keeps it <= the maximum */

    if (n == 0)
        return;
    req->logged_headers = arena_alloc(&req->arena, n * sizeof(char *));
    if (!req->logged_headers)
        return;
    if (walked_all) {
        for (size_t i = 0; i < s->fields_count; i++)
            add_logged_field(&l, &s->fields[i]);
    } else {
        inbound_each_header(&req->inbound, add_logged_field, &l);
    }
    for (size_t i = 0; i < n; i++) {
        req->logged_headers[i] =
            l.values[i].data ? arena_strndup(&req->arena, l.values[i].data, l.values[i].len) : NULL;
        strbuf_free(&l.values[i]);
    }
}

/*
 * Diagnostics about one request's inbound headers (a rejected traceparent or X-Trace-ID, a
 * request refused with 4xx/5xx), with its trace_id. Rate-limited per worker, because a client
 * can send bad requests as fast as it likes: the rest are counted, and the count is reported.
 */
static void report_inbound_problems(struct request *req)
{
    struct request_env *env = req->env;
    char what[256];
    size_t n = 0;

    if (req->refusal.status)
        n += (size_t)snprintf(what + n, sizeof(what) - n, "answered %u %s; ", req->refusal.status,
                              req->refusal.code);
    if (req->hop.traceparent_error != TRACEHOP_TP_OK && n < sizeof(what))
        n += (size_t)snprintf(what + n, sizeof(what) - n, "traceparent rejected: %s; ",
                              tracehop_traceparent_strerror(req->hop.traceparent_error));
    if (req->hop.x_trace_id_status == TRACEHOP_XID_REJECTED && n < sizeof(what))
        n += (size_t)snprintf(what + n, sizeof(what) - n, "%s rejected (unsafe or repeated); ",
                              req->config->request_id_header);
    if (n == 0)
        return;
    int64_t now = loop_now_ms();
    if (now - env->diag_window_ms >= 1000) {
        if (env->diag_suppressed > 0)
            diag(DIAG_INFO, "worker %u: %u more request diagnostics suppressed in the last second",
                 env->index, env->diag_suppressed);
        env->diag_window_ms = now;
        env->diag_in_window = 0;
        env->diag_suppressed = 0;
    }
    if (++env->diag_in_window > REQUEST_DIAGS_PER_SECOND) {
        env->diag_suppressed++;
        return;
    }
    if (n >= 2 && n < sizeof(what))
        what[n - 2] = '\0'; /* drop the last "; " */
    struct ids_hex ids;
    ids_hex(req, &ids);
    diag_request(DIAG_INFO, ids.trace_id, ids.span_id, "request from %s: %s", req->client_addr,
                 what);
}

/* --- the upstream transfer ---------------------------------------------------------------- */

static void on_upstream_head(void *data)
{
    struct request *req = data;
    req->headers_done = true;
    clock_gettime(CLOCK_MONOTONIC, &req->upstream_head_mono);
    mark_dirty(req);
}

static void on_upstream_body(void *data)
{
    struct request *req = data;
    if (req->inbound.suspended && req->wait == WAIT_BODY_DATA)
        mark_dirty(req);
}

static void on_upload_space(void *data)
{
    struct request *req = data;
    if (req->inbound.suspended && req->wait == WAIT_UPLOAD_SPACE)
        mark_dirty(req);
}

static void on_upstream_done(void *data, const struct upstream_outcome *outcome)
{
    struct request *req = data;

    req->transfer = NULL;
    req->upstream_done = true;
    req->upstream_outcome = *outcome;
    req->upstream_outcome.detail = ""; /* valid during this call only */
    clock_gettime(CLOCK_MONOTONIC, &req->upstream_end_mono);
    if (outcome->error != UPSTREAM_OK) {
        struct ids_hex ids;
        ids_hex(req, &ids);
        diag_request(DIAG_WARN, ids.trace_id, ids.span_id, "upstream %s: %s%s",
                     req->route->upstream.text, outcome->detail,
                     outcome->bad_response
                         ? " (invalid or oversized response header, or an incomplete head)"
                         : "");
    }
    mark_dirty(req);
}

static const struct upstream_callbacks transfer_callbacks = {
    .on_head = on_upstream_head,
    .on_body = on_upstream_body,
    .on_upload_space = on_upload_space,
    .on_done = on_upstream_done,
};

static void cancel_transfer(struct request *req)
{
    if (!req->transfer)
        return;
    upstream_cancel(req->transfer);
    req->transfer = NULL;
    clock_gettime(CLOCK_MONOTONIC, &req->upstream_end_mono);
}

static int start_transfer(struct request *req, const struct head_scan *s)
{
    const struct route *r = req->route;
    size_t target_cap = req->target_len + r->upstream.base_path_len + 2;
    char *target = arena_alloc(&req->arena, target_cap);
    struct forward_request forward = {
        .fields = s->fields,
        .count = s->fields_count,
        .connection = s->connection,
        .connection_count = s->connection_count < MAX_CONNECTION_FIELDS ? s->connection_count
                                                                        : MAX_CONNECTION_FIELDS,
        .request_id_header = req->config->request_id_header,
        .route_headers = r->set_request_headers,
        .route_headers_count = r->set_request_headers_count,
        .traceparent = req->traceparent_out,
        .tracestate = req->hop.tracestate,
        .tracestate_len = req->hop.tracestate_len,
        .x_trace_id = req->hop.x_trace_id,
        .x_trace_id_len = req->hop.x_trace_id_len,
        .forwarded_for = s->forwarded_for,
        .forwarded_for_len = s->forwarded_for_len,
        .client_addr = req->client_addr,
        .host = req->host,
        .has_body = req->has_body,
    };
    struct upstream_spec spec = {
        .url = r->tls.curl_url ? r->tls.curl_url : r->upstream.curl_url, /* tls.server_name */
        .tls = r->upstream.scheme == UPSTREAM_HTTPS ? &r->tls : NULL,
        .unix_path = r->upstream.unix_path,
        .target = target,
        .method = req->method,
        .is_head = req->is_head,
        .has_body = req->has_body,
        .content_length = req->content_length,
        .connect_timeout_ms = r->connect_timeout_ms,
        .timeout_ms = r->timeout_ms,
        .arena = &req->arena,
        .upload = &req->up,
        .download = &req->down,
        .head = &req->head,
    };

    if (!target || !route_upstream_target(r, req->target, req->target_len, target, target_cap))
        return -ENOMEM;
    int rc = forward_request_headers(&forward, &req->arena, (const char ***)&spec.header_lines,
                                     &spec.header_count);
    if (rc < 0)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &req->upstream_start_mono);
    req->upstream_started = true;
    /* unknown unless the transfer ends on its own (a cancelled one reports nothing) */
    req->upstream_outcome.connect_ms = req->upstream_outcome.ttfb_ms = -1;
    rc = upstream_start(req->env->upstream, &spec, &transfer_callbacks, req, &req->transfer);
    if (rc < 0)
        req->upstream_started = false;
    return rc;
}

/*
 * A request to switch protocols (WebSocket, ...) is refused with 501 rather than forwarded with
 * its Upgrade field dropped, which would turn it into a plain request the application answers
 * as such (docs/security.md). WebSocket pass-through would start here.
 */
static void refuse_upgrade(struct request *req, const struct head_scan *s)
{
    struct tracehop_slice protocol;
    struct request_upgrade_facts facts = {
        .http11 = strcmp(req->http_version, "1.1") == 0,
        .upgrade = s->upgrade,
        .upgrade_count =
            s->upgrade_count < MAX_UPGRADE_FIELDS ? s->upgrade_count : MAX_UPGRADE_FIELDS,
        .connection = s->connection,
        .connection_count = s->connection_count < MAX_CONNECTION_FIELDS ? s->connection_count
                                                                        : MAX_CONNECTION_FIELDS,
    };

    if (!request_wants_upgrade(&facts, &protocol))
        return;
    struct refusal refusal = refusal_upgrade;
    char message[160];
    int quoted = protocol.len < MAX_QUOTED_PROTOCOL ? (int)protocol.len : MAX_QUOTED_PROTOCOL;
    snprintf(message, sizeof(message),
             "the upgrade to \"%.*s\" is not supported: tracehop proxies plain HTTP requests only",
             quoted, protocol.ptr);
    const char *copy = arena_strndup(&req->arena, message, strlen(message));
    if (copy)
        refusal.message = copy;
    refuse(req, &refusal);
}

/* --- inbound handlers --------------------------------------------------------------------- */

static struct inbound_request *on_request_line(void *client, void *connection, const char *target,
                                               const struct sockaddr *client_addr)
{
    struct request_env *env = client;
    struct request *req = request_take(env);

    (void)connection;
    if (!req)
        return NULL;
    clock_gettime(CLOCK_REALTIME, &req->start_real);
    clock_gettime(CLOCK_MONOTONIC, &req->start_mono);
    /* target points into the library's read buffer, which it rewrites right after this call. */
    req->target_len = strlen(target);
    req->target = arena_strndup(&req->arena, target, req->target_len);
    if (!req->target) {
        request_release(req);
        return NULL;
    }
    const char *q = memchr(req->target, '?', req->target_len);
    req->path_len = q ? (size_t)(q - req->target) : req->target_len;
    if (client_addr)
        addrfmt(req->client_addr, client_addr);
    req->config = config_pins_take(&env->configs);
    req->content_length = 0;
    add_live(req);
    return &req->inbound;
}

static struct request *request_of(struct inbound_request *r)
{
    return (struct request *)r; /* the first member */
}

static bool on_head(struct inbound_request *r, const char *method, const char *version)
{
    struct request *req = request_of(r);
    /* The request line counts against the header limit too, so that an oversized target
     * gets tracehop's answer (with trace headers) rather than the library's bare 414. */
    struct head_scan scan = {.req = req, .header_bytes = req->target_len};
    struct refusal refusal;
    struct request_framing framing;

    req->started = true;
    req->method = arena_strndup(&req->arena, method, strlen(method));
    req->is_head = strcmp(method, "HEAD") == 0;
    req->http_version = strcmp(version, "HTTP/1.0") == 0 ? "1.0" : "1.1";
    bool layout_clean = inbound_walk_headers(r, method, version, scan_field, &scan);
    decide_trace(req, &scan);
    bool walked_all = layout_clean && !scan.too_large && !scan.bad_name && !scan.bad_value;
    capture_logged_headers(req, &scan, walked_all);

    struct request_head_facts facts = {
        .out_of_memory = !req->method || !req->target || scan.out_of_memory,
        .method = method,
        .version = version,
        .target = req->target,
        .target_len = req->target_len,
        .too_large = scan.too_large,
        .bad_layout = !layout_clean,
        .bad_name = scan.bad_name,
        .bad_value = scan.bad_value,
        .host_count = scan.host_count,
        .content_length_count = scan.content_length_count,
        .content_length_conflict = scan.content_length_conflict,
        .content_length = scan.content_length,
        .content_length_len = scan.content_length_len,
        .transfer_encoding_count = scan.transfer_encoding_count,
        .transfer_encoding_chunked = scan.transfer_encoding_chunked,
    };
    struct request_limits limits = {req->config->max_header_bytes, req->config->max_body_bytes};
    if (request_check(&facts, &limits, &framing, &refusal))
        refuse(req, &refusal);
    req->has_body = framing.has_body;
    req->content_length = framing.content_length;
    if (!req->refusal.status) {
        req->route = route_match(req->config, req->target, req->path_len, req->host,
                                 req->host ? strlen(req->host) : 0, method);
        req->routed = true;
        if (!req->route)
            refuse(req, &refusal_no_route);
        else
            refuse_upgrade(req, &scan);
    }
    report_inbound_problems(req);
    if (req->refusal.status)
        return queue_error(req);
    if (start_transfer(req, &scan) < 0) {
        refuse(req, &refusal_upstream_setup);
        return queue_error(req);
    }
    return true;
}

static void suspend(struct request *req, enum request_wait why)
{
    if (why == WAIT_RESPONSE && req->wait != WAIT_RESPONSE)
        req->wait_since_ms = loop_now_ms();
    req->wait = why;
    inbound_suspend(&req->inbound);
}

static bool on_body(struct inbound_request *r, const char *data, size_t *size)
{
    struct request *req = request_of(r);
    size_t max_body = req->config->max_body_bytes;

    if (max_body && !req->refusal.status && req->bytes_received + *size > max_body) {
        /* A chunked body over the limit. The answer can only go out once the request is read,
         * so stop the upstream and discard the rest; the 413 goes out at the end. */
        refuse(req, &refusal_body_too_large);
        cancel_transfer(req);
    }
    if (req->upstream_done || req->refusal.status) {
        /* The upstream already answered or failed, or we refuse the request: read and discard
         * the rest of the body, but only so much: a client that keeps sending is cut off. */
        req->bytes_received += *size;
        req->bytes_discarded += *size;
        *size = 0;
        return req->bytes_discarded <= MAX_DISCARDED_BODY_BYTES;
    }
    size_t taken = bytebuf_put(&req->up, data, *size);
    req->bytes_received += taken;
    *size -= taken;
    if (taken > 0 && req->transfer && upstream_is_paused(req->transfer))
        mark_dirty(req); /* the transfer waits for these */
    if (*size > 0)
        suspend(req, WAIT_UPLOAD_SPACE); /* the rest is offered again after the resume */
    return true;
}

/* --- the response ------------------------------------------------------------------------- */

static ssize_t read_body(void *data, char *buf, size_t max)
{
    struct request *req = data;
    size_t n = bytebuf_take(&req->down, buf, max);

    if (n > 0) {
        req->bytes_sent += n;
        if (req->transfer && upstream_is_paused(req->transfer))
            mark_dirty(req); /* the transfer waits for the space */
        return (ssize_t)n;
    }
    if (req->upstream_done) {
        if (req->upstream_outcome.error == UPSTREAM_OK)
            return INBOUND_STREAM_END;
        if (!req->outcome)
            req->outcome = refusal_for_upstream(req->upstream_outcome.error).outcome;
        return INBOUND_STREAM_ABORT; /* never a silently short body */
    }
    suspend(req, WAIT_BODY_DATA);
    return 0;
}

static bool queue_upstream_response(struct request *req)
{
    struct inbound_header headers[RESPONSE_HEAD_MAX_FIELDS + OWN_RESPONSE_HEADERS];
    size_t n = 0;
    bool queued;
    size_t copied = 0;
    bool complete = req->upstream_done && req->upstream_outcome.error == UPSTREAM_OK;
    uint64_t size =
        req->head.content_length >= 0 ? (uint64_t)req->head.content_length : INBOUND_SIZE_UNKNOWN;

    for (size_t i = 0; i < req->head.count; i++) {
        const struct response_header *h = &req->head.fields[i];
        if (forward_response_header(&req->head, h, req->config->echo,
                                    req->config->request_id_header))
            headers[n++] = (struct inbound_header){h->name, h->value};
    }
    n += add_trace_headers(req, headers + n);
    n += add_server_timing(req, headers + n);
    if (req->env->draining)
        headers[n++] = (struct inbound_header){"Connection", "close"};

    unsigned status = (unsigned)req->head.status;
    if (req->is_head || status == 204 || status == 304) {
        queued = inbound_respond_stream(&req->inbound, status, headers, n, req->is_head ? size : 0,
                                        4096, read_body, req);
    } else if (complete) {
        /* The whole body is here (the usual small response): one copy, head and body go out in
         * one sendmsg. */
        copied = bytebuf_len(&req->down);
        queued = inbound_respond(&req->inbound, status, headers, n, req->down.data + req->down.head,
                                 copied);
        bytebuf_clear(&req->down);
    } else {
        queued = inbound_respond_stream(&req->inbound, status, headers, n, size, 32 * 1024,
                                        read_body, req);
    }
    req->response_queued = true;
    if (queued)
        req->bytes_sent += copied;
    return queued;
}

/* The whole request has been read: answer now if we can, else wait for the upstream. */
static bool on_body_end(struct inbound_request *r)
{
    struct request *req = request_of(r);

    if (!req->body_complete) {
        req->body_complete = true;
        if (req->transfer) {
            upstream_upload_complete(req->transfer);
            if (upstream_is_paused(req->transfer))
                mark_dirty(req); /* let the transfer see the end of the body */
        }
    }
    if (req->response_queued)
        return true;
    if (req->client_gone)
        return false; /* nobody to answer: let the connection close and report the abort */
    if (req->refusal.status)
        return queue_error(req);
    if (req->headers_done)
        return queue_upstream_response(req);
    if (req->upstream_done) {
        struct refusal failed = refusal_for_upstream(req->upstream_outcome.error);
        refuse(req, &failed);
        return queue_error(req);
    }
    suspend(req, WAIT_RESPONSE);
    return true;
}

/* --- driven by the loop ------------------------------------------------------------------- */

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

/* The deferred service task: let the transfer move, resume the inbound side when its wait is
 * over. */
static void request_service(void *data, uint32_t events)
{
    struct request *req = data;

    (void)events;
    if (req->transfer)
        upstream_resume(req->transfer); /* its callbacks may defer this task again */
    if (req->inbound.suspended && ready_to_resume(req)) {
        req->wait = WAIT_NONE;
        inbound_resume(&req->inbound);
    }
}

static void on_client_hangup(void *data, uint32_t events)
{
    struct request *req = data;

    (void)events;
    inbound_unwatch_hangup(&req->inbound);
    req->client_gone = true;
    if (!req->outcome)
        req->outcome = "client_aborted";
    cancel_transfer(req); /* the upstream's work is for nobody now */
    mark_dirty(req);
}

/*
 * The request line came, the rest of the head did not within limits.client_header_timeout_ms:
 * a slowloris client, or one stuck mid-request. libmicrohttpd only knows an idle timeout (a
 * byte every few seconds keeps a connection forever) and offers no way to answer before the
 * head is complete, so tracehop writes the 408 itself - nothing else has been sent on this
 * connection for this request - and shuts the socket down; libmicrohttpd then sees the end of
 * the stream, closes the connection and reports the request completed, which logs it.
 */
static void answer_head_timeout(struct request *req)
{
    struct strbuf body = {0}, head = {0};

    req->head_timed_out = true;
    decide_trace_without_headers(req);
    refuse(req, &refusal_head_timeout);
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
    struct inbound_header timing;
    if (add_server_timing(req, &timing)) {
        strbuf_append_str(&head, "Server-Timing: ");
        strbuf_append_str(&head, timing.value);
        strbuf_append_str(&head, "\r\n");
    }
    char length[48];
    snprintf(length, sizeof(length), "Content-Length: %zu\r\n\r\n", body.len);
    strbuf_append_str(&head, length);
    strbuf_append(&head, body.data, body.len);
    bool built = !head.oom && !body.oom; /* else only the shutdown: the client learns it so */
    if (inbound_write_and_close(&req->inbound, built ? head.data : "", built ? head.len : 0) &&
        built)
        req->bytes_sent += body.len;
    strbuf_free(&head);
    strbuf_free(&body);
}

void request_housekeeping(struct request_env *env, int64_t now)
{
    for (struct request *r = env->live_head; r; r = r->live_next) {
        if (!r->started && !r->head_timed_out &&
            now - mono_ms(&r->start_mono) >= r->config->client_header_timeout_ms)
            answer_head_timeout(r);
        else if (r->inbound.suspended && r->wait == WAIT_RESPONSE &&
                 !r->inbound.hangup_watch.watched &&
                 now - r->wait_since_ms >= WATCH_CLIENT_AFTER_MS)
            inbound_watch_hangup(&r->inbound, on_client_hangup, r);
    }
}

void request_cut_off_all(struct request_env *env)
{
    for (struct request *r = env->live_head; r; r = r->live_next)
        if (!r->outcome && !r->client_gone) /* not already ending for a reason of its own */
            r->cut_off = true;
}

void request_resume_all(struct request_env *env)
{
    for (struct request *r = env->live_head; r; r = r->live_next)
        inbound_resume(&r->inbound);
}

/* --- the end ------------------------------------------------------------------------------ */

static const char *final_outcome(const struct request *req, bool complete)
{
    if (req->cut_off && !complete)
        return "shutdown";
    if (req->outcome)
        return req->outcome;
    if (!complete)
        return "client_aborted";
    if (req->upstream_done && req->upstream_outcome.error != UPSTREAM_OK)
        return refusal_for_upstream(req->upstream_outcome.error).outcome;
    return "ok";
}

/* The status that went to the client: tracehop's own, the upstream's, or the one the library
 * sent itself (with the outcome that goes with it). */
static unsigned final_status(struct request *req, unsigned library_status)
{
    if (req->head_timed_out)
        return req->refusal.status; /* written by answer_head_timeout */
    if (!req->started) {
        /* The library refused the request itself (e.g. headers beyond its buffer): log it. */
        decide_trace_without_headers(req);
        if (!req->cut_off)
            req->outcome = refusal_outcome_of_library_status(library_status, false);
        return library_status;
    }
    if (req->refusal.status && req->response_queued)
        return req->refusal.status;
    if (req->response_queued)
        return (unsigned)req->head.status;
    /* No response of ours: the library may still have refused the body itself (broken chunked
     * framing, an oversized chunk); log what went on the wire, else null. */
    if (library_status && !req->outcome)
        req->outcome = refusal_outcome_of_library_status(library_status, true);
    return library_status;
}

static void summarize(const struct request *req, unsigned status, const char *outcome,
                      bool complete, struct request_summary *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    *s = (struct request_summary){
        .config = req->config,
        .start_real = req->start_real,
        .duration_s = timefmt_elapsed_ms(&req->start_mono, &now) / 1000.0,
        .hop = &req->hop,
        .trace_id = req->hop.trace_id,
        .span_id = req->hop.span_id,
        .sampled = (req->hop.flags & TRACEHOP_FLAG_SAMPLED) != 0,
        .method = req->method,
        .target = req->target,
        .target_len = req->target_len,
        .path_len = req->path_len,
        .client_addr = req->client_addr,
        .host = req->host,
        .http_version = req->http_version,
        .user_agent = req->user_agent,
        .logged_headers = req->logged_headers,
        .status = status,
        .outcome = outcome,
        /* An upstream response that was queued but did not complete was cut off after its
         * status line (upstream broke off, client left, shutdown). Our own answers go out in
         * one piece, also when the connection is closed after them (Connection: close). */
        .response_broken = !complete && req->response_queued && !req->refusal.status && status,
        .route_slot = req->route    ? req->route->metrics_slot
                      : req->routed ? 0 /* no_route */
                                    : ROUTE_SLOT_REFUSED,
        .route_name = req->route ? req->route->name : NULL,
        .route_path = req->route ? req->route->path_prefix : NULL,
        .upstream_text = req->route ? req->route->upstream.text : NULL,
        .upstream_status = req->headers_done ? req->head.status : -1,
        .has_upstream = req->upstream_started,
        .upstream_duration_s =
            timefmt_elapsed_ms(&req->upstream_start_mono, &req->upstream_end_mono) / 1000.0,
        .upstream_connect_ms = req->upstream_outcome.connect_ms,
        .upstream_ttfb_ms = req->upstream_outcome.ttfb_ms,
        .received_bytes = req->bytes_received,
        .sent_bytes = req->bytes_sent,
    };
}

/* The end of every request, however it went: cancel what still runs, build the one summary the
 * access log and the metrics consume, unpin the config, return the request to the pool. */
static void request_finish(struct request *req, bool complete, unsigned library_status)
{
    struct request_env *env = req->env;
    struct request_summary summary;

    unsigned status = final_status(req, library_status);
    cancel_transfer(req);
    if (req->upstream_started && !req->upstream_end_mono.tv_sec)
        clock_gettime(CLOCK_MONOTONIC, &req->upstream_end_mono);
    summarize(req, status, final_outcome(req, complete), complete, &summary);
    if (strcmp(summary.outcome, "shutdown") == 0)
        env->cut_off++;
    logline_write(env->accesslog, &summary);
    metrics_count_request(env->metrics, &summary);
    otlp_exporter_submit(env->exporter, &summary);
    loop_cancel(env->loop, &req->service);
    remove_live(req);
    config_pins_release(&env->configs, req->config);
    request_release(req);
}

static void on_completed(struct inbound_request *r, bool complete, unsigned library_status)
{
    request_finish(request_of(r), complete, library_status);
}

const struct inbound_handlers request_handlers = {
    .on_request_line = on_request_line,
    .on_head = on_head,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_completed = on_completed,
};
