/* SPDX-License-Identifier: MIT */
/*
 * Field order is fixed and the same as the schema table in docs/access-log.md, so that lines
 * are easy to scan by eye. Values that users control (target, headers) go through json_escape,
 * which escapes every control character and replaces invalid UTF-8; values tracehop made
 * (hex ids, numbers) are written directly. The builder is per thread and reused, so a line
 * costs no allocation once the buffer has grown to the usual line size.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "observe/logline.h"
#include "observe/accesslog.h"
#include "observe/redact.h"
#include "observe/request_summary.h"
#include "tracehop/tracectx.h"
#include "config/config.h"
#include "common/json_escape.h"
#include "common/strbuf.h"
#include "common/timefmt.h"

static _Thread_local struct strbuf line;

/* ,"name": in one piece. Names are literals, so the copy has a constant size and inlines: the
 * builder appends ~30 keys per line. */
#define KEY(b, name) strbuf_append((b), ",\"" name "\":", sizeof(",\"" name "\":") - 1)

static const char base64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void append_base64(struct strbuf *b, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char out[4] = {base64_digits[v >> 18 & 63], base64_digits[v >> 12 & 63],
                       i + 1 < n ? base64_digits[v >> 6 & 63] : '=',
                       i + 2 < n ? base64_digits[v & 63] : '='};
        strbuf_append(b, out, 4);
    }
}

/* A client-controlled string value (or null), after its key. Control characters are escaped;
 * bytes that are not UTF-8 become U+FFFD, and then the exact bytes follow in "<name>_raw_b64"
 * (base64), so that nothing is lost and the line stays valid JSON (docs/access-log.md,
 * "Escaping"). */
static void string_value(struct strbuf *b, const char *name, const char *value, size_t len)
{
    bool lossy = false;

    if (!value) {
        strbuf_append(b, "null", 4);
        return;
    }
    if (!strbuf_reserve(b, len * 6 + 2))
        return;
    b->data[b->len++] = '"';
    b->len += json_escape(b->data + b->len, value, len, &lossy);
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
    if (lossy) {
        strbuf_append_str(b, ",\"");
        strbuf_append_str(b, name);
        strbuf_append_str(b, "_raw_b64\":\"");
        append_base64(b, (const unsigned char *)value, len);
        strbuf_append_char(b, '"');
    }
}

/* ,"name":"value" for a client-controlled string (or null); name is a literal. */
#define STRING_FIELD(b, name, value, len) (KEY(b, name), string_value(b, name, value, len))

/* The query with the values of access_log.redact parameters replaced. */
static void query_field(struct strbuf *b, const struct config *c, const char *q, size_t len)
{
    if (!redact_enabled(c)) {
        STRING_FIELD(b, "query", q, len);
        return;
    }
    struct strbuf redacted = {0};
    redact_query(c, q, len, &redacted);
    STRING_FIELD(b, "query", redacted.data ? redacted.data : "", redacted.len);
    strbuf_free(&redacted);
}

/* "request_headers": {"x-tenant": "acme", ...} for access_log.fields (lowercased names). */
static void request_headers_field(struct strbuf *b, const struct request_summary *req)
{
    const struct config *c = req->config;
    if (c->access_log_fields_count == 0 || !req->logged_headers)
        return;
    KEY(b, "request_headers");
    strbuf_append_char(b, '{');
    for (size_t i = 0; i < c->access_log_fields_count; i++) {
        const char *name = c->access_log_fields[i];
        char lower[CONFIG_LOGGED_HEADER_NAME_MAX + 1]; /* the loader keeps names this short */
        size_t n = strlen(name) < sizeof(lower) ? strlen(name) : sizeof(lower) - 1;
        for (size_t k = 0; k < n; k++)
            lower[k] = (char)tolower((unsigned char)name[k]);
        lower[n] = '\0';
        const char *value = req->logged_headers[i];
        if (value && redact_is_listed(c, name, strlen(name)))
            value = REDACTED;
        if (i > 0)
            strbuf_append_char(b, ',');
        strbuf_append_char(b, '"');
        strbuf_append(b, lower, n);
        strbuf_append(b, "\":", 2);
        string_value(b, lower, value, value ? strlen(value) : 0);
    }
    strbuf_append_char(b, '}');
}

/* "<hex digits>" of tracehop-made bytes (ids, flags): never escaped. */
static void hex_value(struct strbuf *b, const uint8_t *bytes, size_t n)
{
    char hex[66];
    size_t len = tracehop_hex_format(hex + 1, bytes, n);
    hex[0] = '"';
    hex[len + 1] = '"';
    strbuf_append(b, hex, len + 2);
}

#define HEX_FIELD(b, name, bytes, n) (KEY(b, name), hex_value(b, bytes, n))

#define MILLISECONDS_FIELD(b, name, ms) (KEY(b, name), strbuf_append_milli(b, ms))
/* A time that may not have happened (negative): then null, never a misleading 0. */
#define MAYBE_MILLISECONDS_FIELD(b, name, ms)                                                      \
    (KEY(b, name), (ms) >= 0 ? strbuf_append_milli(b, ms) : strbuf_append(b, "null", 4))
#define NUMBER_FIELD(b, name, v) (KEY(b, name), strbuf_append_u64(b, v))

/* What happened to the caller's tracestate, when it was not forwarded as it came (NULL). */
static const char *tracestate_status_name(enum tracehop_tracestate_status status)
{
    switch (status) {
    case TRACEHOP_TS_ABSENT:
    case TRACEHOP_TS_OK:
        return NULL;
    case TRACEHOP_TS_DEDUPLICATED:
        return "deduplicated";
    case TRACEHOP_TS_TRUNCATED:
        return "truncated";
    case TRACEHOP_TS_INVALID:
        return "invalid";
    case TRACEHOP_TS_DROPPED:
        return "dropped";
    default:
        return "changed"; /* a result this writer has no name for: at least not silent */
    }
}

int logline_format(struct strbuf *b, const struct request_summary *req)
{
    const struct config *c = req->config;
    const struct tracehop_hop *hop = req->hop;
    char time_text[TIMEFMT_RFC3339_MS_LEN + 1];

    timefmt_rfc3339_ms(time_text, &req->start_real);
    strbuf_clear(b);
    strbuf_append_str(b, "{\"time\":\"");
    strbuf_append_str(b, time_text);
    strbuf_append_char(b, '"');
    KEY(b, "service");
    strbuf_append_json_string(b, c->service_name, strlen(c->service_name));
    HEX_FIELD(b, "trace_id", hop->trace_id, TRACEHOP_TRACE_ID_SIZE);
    HEX_FIELD(b, "span_id", hop->span_id, TRACEHOP_SPAN_ID_SIZE);
    if (hop->has_parent)
        HEX_FIELD(b, "parent_span_id", hop->parent_span_id, TRACEHOP_SPAN_ID_SIZE);
    else
        STRING_FIELD(b, "parent_span_id", NULL, 0);
    HEX_FIELD(b, "trace_flags", &hop->flags, 1);
    STRING_FIELD(b, "x_trace_id", hop->x_trace_id, hop->x_trace_id_len);
    STRING_FIELD(b, "method", req->method, req->method ? strlen(req->method) : 0);
    STRING_FIELD(b, "path", req->target, req->target ? req->path_len : 0);
    if (req->target && req->path_len < req->target_len)
        query_field(b, c, req->target + req->path_len + 1, req->target_len - req->path_len - 1);
    else
        STRING_FIELD(b, "query", NULL, 0);
    KEY(b, "status");
    if (req->status)
        strbuf_append_u64(b, req->status);
    else
        strbuf_append_str(b, "null");
    MILLISECONDS_FIELD(b, "duration_ms", req->duration_s * 1000.0);
    if (req->route_name) {
        STRING_FIELD(b, "route", req->route_name, strlen(req->route_name));
        STRING_FIELD(b, "upstream", req->upstream_text, strlen(req->upstream_text));
    } else {
        STRING_FIELD(b, "route", NULL, 0);
        STRING_FIELD(b, "upstream", NULL, 0);
    }
    KEY(b, "upstream_status");
    if (req->upstream_status >= 0)
        strbuf_append_u64(b, (uint64_t)req->upstream_status);
    else
        strbuf_append_str(b, "null");
    if (req->has_upstream) {
        MILLISECONDS_FIELD(b, "upstream_duration_ms", req->upstream_duration_s * 1000.0);
        MAYBE_MILLISECONDS_FIELD(b, "upstream_connect_ms", req->upstream_connect_ms);
        MAYBE_MILLISECONDS_FIELD(b, "upstream_ttfb_ms", req->upstream_ttfb_ms);
    } else {
        STRING_FIELD(b, "upstream_duration_ms", NULL, 0);
        STRING_FIELD(b, "upstream_connect_ms", NULL, 0);
        STRING_FIELD(b, "upstream_ttfb_ms", NULL, 0);
    }
    NUMBER_FIELD(b, "bytes_received", req->received_bytes);
    NUMBER_FIELD(b, "bytes_sent", req->sent_bytes);
    STRING_FIELD(b, "client_addr",
                 req->client_addr && req->client_addr[0] ? req->client_addr : NULL,
                 req->client_addr ? strlen(req->client_addr) : 0);
    STRING_FIELD(b, "user_agent", req->user_agent, req->user_agent ? strlen(req->user_agent) : 0);
    request_headers_field(b, req);
    KEY(b, "outcome");
    strbuf_append_char(b, '"');
    strbuf_append_str(b, req->outcome);
    strbuf_append_char(b, '"');
    if (hop->x_trace_id_status == TRACEHOP_XID_REJECTED) {
        KEY(b, "x_trace_id_rejected");
        strbuf_append_str(b, "true");
    }
    if (hop->traceparent_error != TRACEHOP_TP_OK) {
        const char *why = tracehop_traceparent_strerror(hop->traceparent_error);
        STRING_FIELD(b, "traceparent_rejected", why, strlen(why));
    }
    const char *tracestate_status = tracestate_status_name(hop->tracestate_status);
    if (tracestate_status)
        STRING_FIELD(b, "tracestate_status", tracestate_status, strlen(tracestate_status));
    if (hop->incoming_valid && !c->trust_incoming) {
        HEX_FIELD(b, "incoming_trace_id", hop->incoming.trace_id, TRACEHOP_TRACE_ID_SIZE);
        HEX_FIELD(b, "incoming_parent_span_id", hop->incoming.parent_id, TRACEHOP_SPAN_ID_SIZE);
    }
    if (hop->x_trace_id_status == TRACEHOP_XID_NOT_TRUSTED)
        STRING_FIELD(b, "incoming_x_trace_id", hop->incoming_x_trace_id,
                     strlen(hop->incoming_x_trace_id));
    strbuf_append_str(b, "}\n");
    return b->oom ? -ENOMEM : 0;
}

void logline_write(struct accesslog *log, const struct request_summary *summary)
{
    if (logline_format(&line, summary) < 0) {
        accesslog_count_lost(log); /* never silently: counted with the dropped lines */
        return;
    }
    accesslog_submit(log, line.data, line.len);
}

void logline_thread_cleanup(void)
{
    strbuf_free(&line);
}
