/* SPDX-License-Identifier: MIT */
/*
 * Names and rules follow OpenTelemetry's stable HTTP server span conventions: the name is
 * "{method} {http.route}" (never the raw path, which would make every URL its own span name);
 * http.route is the matched route's path prefix with a "*" (a prefix route matches everything
 * under it, and "/api*" says so where "/api" would read as one path),
 * status stays unset for 4xx on a server span (the client's mistake, not ours) and is Error for
 * 5xx and for exchanges that broke. Values the client controls are cut to
 * SPAN_ATTRIBUTE_VALUE_MAX and escaped; invalid UTF-8 becomes U+FFFD, because OTLP strings
 * must be UTF-8 (the access log keeps the exact bytes, spans need not).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "observe/span_encode.h"
#include "observe/redact.h"
#include "observe/request_summary.h"
#include "tracehop/tracectx.h"
#include "config/config.h"
#include "common/strbuf.h"

/* OTLP enum values (opentelemetry-proto trace.proto). */
#define SPAN_KIND_SERVER      2
#define STATUS_CODE_ERROR     2
#define SPAN_FLAGS_HAS_REMOTE 0x100u /* the IS_REMOTE bit below is meaningful */
#define SPAN_FLAGS_IS_REMOTE  0x200u /* the parent came from another process */

/* The methods the conventions know; any other is recorded as "_OTHER". */
static const char *const known_methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                            "CONNECT", "OPTIONS", "TRACE", "PATCH"};

static bool method_is_known(const char *method)
{
    for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++)
        if (strcmp(method, known_methods[i]) == 0)
            return true;
    return false;
}

/* A string value cut to the limit without splitting a UTF-8 sequence. */
static void bounded_string(struct strbuf *b, const char *s, size_t len)
{
    if (len > SPAN_ATTRIBUTE_VALUE_MAX) {
        len = SPAN_ATTRIBUTE_VALUE_MAX;
        for (int back = 0; back < 3 && len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80; back++)
            len--;
    }
    strbuf_append_json_string(b, s, len);
}

/* Keys are literals: ,{"key":"<key>","value":{"stringValue": ... }} */
#define ATTR_OPEN(b, key, type)                                                                    \
    strbuf_append((b), "{\"key\":\"" key "\",\"value\":{\"" type "\":",                            \
                  sizeof("{\"key\":\"" key "\",\"value\":{\"" type "\":") - 1)

struct attrs {
    struct strbuf *b;
    bool first;
};

static void attr_sep(struct attrs *a)
{
    if (!a->first)
        strbuf_append_char(a->b, ',');
    a->first = false;
}

#define ATTR_STRING(a, key, s, len)                                                                \
    (attr_sep(a), ATTR_OPEN((a)->b, key, "stringValue"), bounded_string((a)->b, (s), (len)),       \
     strbuf_append((a)->b, "}}", 2))

#define ATTR_INT(a, key, v)                                                                        \
    (attr_sep(a), ATTR_OPEN((a)->b, key, "intValue"), strbuf_append_char((a)->b, '"'),             \
     strbuf_append_u64((a)->b, (v)), strbuf_append((a)->b, "\"}}", 3))

#define ATTR_STRING_Z(a, key, s) ATTR_STRING(a, key, (s), strlen(s))

/* A value tracehop made or validated to printable ASCII without '"' and '\\' (a known method,
 * an outcome, a formatted address, a safe X-Trace-ID): copied without the escaping pass. */
#define ATTR_PLAIN(a, key, s, len)                                                                 \
    (attr_sep(a), ATTR_OPEN((a)->b, key, "stringValue"), strbuf_append_char((a)->b, '"'),          \
     strbuf_append((a)->b, (s), (len)), strbuf_append((a)->b, "\"}}", 3))

#define ATTR_PLAIN_Z(a, key, s) ATTR_PLAIN(a, key, (s), strlen(s))

#define ATTR_MS(a, key, ms)                                                                        \
    (attr_sep(a), ATTR_OPEN((a)->b, key, "doubleValue"), strbuf_append_milli((a)->b, (ms)),        \
     strbuf_append((a)->b, "}}", 2))

static void hex_string(struct strbuf *b, const char *key, const uint8_t *bytes, size_t n)
{
    char hex[2 * TRACEHOP_TRACE_ID_SIZE + 1];
    size_t len = tracehop_hex_format(hex, bytes, n);
    strbuf_append_str(b, key);
    strbuf_append_char(b, '"');
    strbuf_append(b, hex, len);
    strbuf_append_char(b, '"');
}

static void nanos_string(struct strbuf *b, const char *key, uint64_t ns)
{
    strbuf_append_str(b, key);
    strbuf_append_char(b, '"');
    strbuf_append_u64(b, ns);
    strbuf_append_char(b, '"');
}

/* server.address and server.port from the Host header ("name", "name:port", "[v6]:port"). An
 * IPv6 literal is recorded without its brackets, as client.address is and as OpenTelemetry's
 * SDKs split a host and port: the brackets belong to the URI syntax, not to the address. */
static void server_attributes(struct attrs *a, const char *host)
{
    size_t len = strlen(host), name_len = len;
    const char *port = NULL;

    if (host[0] == '[' && memchr(host, ']', len)) {
        const char *close = memchr(host, ']', len);
        if (close[1] == ':')
            port = close + 2;
        host++;
        name_len = (size_t)(close - host);
    } else {
        const char *colon = memchr(host, ':', len);
        if (colon) {
            port = colon + 1;
            name_len = (size_t)(colon - host);
        }
    }
    if (name_len == 0)
        return; /* server.port goes with a server.address */
    ATTR_STRING(a, "server.address", host, name_len);
    if (port && *port && strspn(port, "0123456789") == strlen(port) && strlen(port) <= 5) {
        uint64_t value = 0;
        for (const char *p = port; *p; p++)
            value = value * 10 + (uint64_t)(*p - '0');
        if (value > 0 && value <= 65535)
            ATTR_INT(a, "server.port", value);
    }
}

/* Whether the exchange failed from the server's point of view, and the error.type that says
 * how: tracehop's outcome when it is not "ok", else the status code. */
static bool failed(const struct request_summary *s)
{
    bool broken = s->outcome && strcmp(s->outcome, "ok") != 0 && s->status < 400;
    return s->status == 0 || s->status >= 500 || broken;
}

static void error_type(struct strbuf *b, const struct request_summary *s)
{
    if (s->outcome && strcmp(s->outcome, "ok") != 0) {
        strbuf_append_json_string(b, s->outcome, strlen(s->outcome));
    } else {
        strbuf_append_char(b, '"');
        strbuf_append_u64(b, s->status);
        strbuf_append_char(b, '"');
    }
}

/* "{method} {http.route}", or "{method}" without a route; {method} is "HTTP" for a method the
 * conventions do not know (http.request.method "_OTHER") and when the head never came. */
static void span_name(struct strbuf *b, const struct request_summary *s, bool known)
{
    strbuf_append_char(b, '"');
    strbuf_append_str(b, known ? s->method : "HTTP"); /* a known method: no escaping needed */
    if (s->route_path) {
        strbuf_append_char(b, ' ');
        strbuf_append_json_escaped(b, s->route_path, strlen(s->route_path));
        strbuf_append_char(b, '*');
    }
    strbuf_append_char(b, '"');
}

static void attributes(struct strbuf *b, const struct request_summary *s, bool known)
{
    const struct tracehop_hop *hop = s->hop;
    struct attrs a = {.b = b, .first = true};

    strbuf_append_str(b, ",\"attributes\":[");
    if (s->method) {
        if (known) {
            ATTR_PLAIN_Z(&a, "http.request.method", s->method);
        } else {
            ATTR_PLAIN_Z(&a, "http.request.method", "_OTHER");
            ATTR_STRING_Z(&a, "http.request.method_original", s->method);
        }
    }
    if (s->target) {
        ATTR_STRING(&a, "url.path", s->target, s->path_len);
        if (s->path_len < s->target_len) {
            const char *q = s->target + s->path_len + 1;
            size_t q_len = s->target_len - s->path_len - 1;
            if (redact_enabled(s->config)) {
                struct strbuf redacted = {0};
                redact_query(s->config, q, q_len, &redacted);
                ATTR_STRING(&a, "url.query", redacted.data ? redacted.data : "", redacted.len);
                strbuf_free(&redacted);
            } else {
                ATTR_STRING(&a, "url.query", q, q_len);
            }
        }
    }
    ATTR_PLAIN_Z(&a, "url.scheme", "http");
    if (s->status)
        ATTR_INT(&a, "http.response.status_code", s->status);
    if (s->route_path) {
        attr_sep(&a);
        ATTR_OPEN(b, "http.route", "stringValue");
        strbuf_append_char(b, '"');
        strbuf_append_json_escaped(b, s->route_path, strlen(s->route_path));
        strbuf_append_str(b, "*\"}}");
    }
    if (s->host)
        server_attributes(&a, s->host);
    if (s->client_addr && s->client_addr[0])
        ATTR_PLAIN_Z(&a, "client.address", s->client_addr);
    if (s->user_agent)
        ATTR_STRING_Z(&a, "user_agent.original", s->user_agent);
    if (s->http_version)
        ATTR_PLAIN_Z(&a, "network.protocol.version", s->http_version);
    if (failed(s)) {
        attr_sep(&a);
        ATTR_OPEN(b, "error.type", "stringValue");
        error_type(b, s);
        strbuf_append(b, "}}", 2);
    }
    ATTR_INT(&a, "http.request.body.size", s->received_bytes);
    ATTR_INT(&a, "http.response.body.size", s->sent_bytes);
    if (s->route_name) {
        ATTR_STRING_Z(&a, "tracehop.route", s->route_name);
        ATTR_STRING_Z(&a, "tracehop.upstream", s->upstream_text);
    }
    if (s->upstream_status >= 0)
        ATTR_INT(&a, "tracehop.upstream.status_code", (uint64_t)s->upstream_status);
    if (s->has_upstream) {
        ATTR_MS(&a, "tracehop.upstream.duration_ms", s->upstream_duration_s * 1000.0);
        if (s->upstream_connect_ms >= 0) /* else there was no connection, or it is not known */
            ATTR_MS(&a, "tracehop.upstream.connect_ms", s->upstream_connect_ms);
        if (s->upstream_ttfb_ms >= 0)
            ATTR_MS(&a, "tracehop.upstream.first_byte_ms", s->upstream_ttfb_ms);
    }
    if (s->outcome)
        ATTR_PLAIN_Z(&a, "tracehop.outcome", s->outcome);
    if (hop->x_trace_id_len > 0)
        ATTR_PLAIN(&a, "tracehop.x_trace_id", hop->x_trace_id, hop->x_trace_id_len);
    strbuf_append_char(b, ']');
}

void span_encode(struct strbuf *b, const struct request_summary *s)
{
    const struct tracehop_hop *hop = s->hop;
    bool known = s->method && method_is_known(s->method);
    uint64_t start_ns =
        (uint64_t)s->start_real.tv_sec * 1000000000u + (uint64_t)s->start_real.tv_nsec;
    uint64_t duration_ns = s->duration_s > 0 ? (uint64_t)(s->duration_s * 1e9) : 0;
    unsigned flags =
        hop->flags | SPAN_FLAGS_HAS_REMOTE | (hop->has_parent ? SPAN_FLAGS_IS_REMOTE : 0);

    hex_string(b, "{\"traceId\":", hop->trace_id, TRACEHOP_TRACE_ID_SIZE);
    hex_string(b, ",\"spanId\":", hop->span_id, TRACEHOP_SPAN_ID_SIZE);
    if (hop->has_parent)
        hex_string(b, ",\"parentSpanId\":", hop->parent_span_id, TRACEHOP_SPAN_ID_SIZE);
    if (hop->tracestate_len > 0) {
        strbuf_append_str(b, ",\"traceState\":");
        strbuf_append_json_string(b, hop->tracestate, hop->tracestate_len);
    }
    strbuf_append_str(b, ",\"flags\":");
    strbuf_append_u64(b, flags);
    strbuf_append_str(b, ",\"name\":");
    span_name(b, s, known);
    strbuf_append_str(b, ",\"kind\":2");
    nanos_string(b, ",\"startTimeUnixNano\":", start_ns);
    nanos_string(b, ",\"endTimeUnixNano\":", start_ns + duration_ns);
    attributes(b, s, known);
    /* A hop that does not trust its caller starts a new trace; the caller's span is kept as a
     * link, so that the trace view can still lead from one to the other. */
    if (hop->incoming_valid && !hop->has_parent) {
        hex_string(b, ",\"links\":[{\"traceId\":", hop->incoming.trace_id, TRACEHOP_TRACE_ID_SIZE);
        hex_string(b, ",\"spanId\":", hop->incoming.parent_id, TRACEHOP_SPAN_ID_SIZE);
        strbuf_append_str(b, ",\"flags\":");
        strbuf_append_u64(b, (hop->incoming.flags & TRACEHOP_FLAGS_KNOWN) | SPAN_FLAGS_HAS_REMOTE |
                                 SPAN_FLAGS_IS_REMOTE);
        strbuf_append_str(b, "}]");
    }
    if (failed(s) && s->outcome && strcmp(s->outcome, "ok") != 0) {
        strbuf_append_str(b, ",\"status\":{\"code\":2,\"message\":");
        error_type(b, s);
        strbuf_append_str(b, "}}");
    } else if (failed(s)) {
        /* The status code says it all: the conventions leave the description unset. */
        strbuf_append_str(b, ",\"status\":{\"code\":2}}");
    } else {
        strbuf_append_str(b, ",\"status\":{}}");
    }
}

static bool resource_has(const struct config *c, const char *key)
{
    for (size_t i = 0; i < c->otlp.resource_attributes_count; i++)
        if (strcmp(c->otlp.resource_attributes[i].name, key) == 0)
            return true;
    return false;
}

void span_encode_body_open(struct strbuf *b, const struct config *c, const char *instance_id,
                           const char *version)
{
    struct attrs a = {.b = b, .first = true};

    strbuf_append_str(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    ATTR_STRING_Z(&a, "service.name", c->service_name);
    if (!resource_has(c, "service.instance.id"))
        ATTR_STRING_Z(&a, "service.instance.id", instance_id);
    if (!resource_has(c, "service.version"))
        ATTR_STRING_Z(&a, "service.version", version);
    if (!resource_has(c, "telemetry.sdk.name"))
        ATTR_STRING_Z(&a, "telemetry.sdk.name", "tracehop");
    if (!resource_has(c, "telemetry.sdk.language"))
        ATTR_STRING_Z(&a, "telemetry.sdk.language", "c");
    if (!resource_has(c, "telemetry.sdk.version"))
        ATTR_STRING_Z(&a, "telemetry.sdk.version", version);
    for (size_t i = 0; i < c->otlp.resource_attributes_count; i++) {
        const struct header_setting *r = &c->otlp.resource_attributes[i];
        if (strcmp(r->name, "service.name") == 0)
            continue; /* service_name is the one place the name is set */
        attr_sep(&a);
        strbuf_append_str(b, "{\"key\":");
        strbuf_append_json_string(b, r->name, strlen(r->name));
        strbuf_append_str(b, ",\"value\":{\"stringValue\":");
        strbuf_append_json_string(b, r->value, strlen(r->value));
        strbuf_append_str(b, "}}");
    }
    strbuf_append_str(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"tracehop\",\"version\":");
    strbuf_append_json_string(b, version, strlen(version));
    strbuf_append_str(b, "},\"spans\":[");
}
