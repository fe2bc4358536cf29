/* SPDX-License-Identifier: MIT */
/*
 * The OTLP JSON span of a finished request (src/observe/span_encode.h; docs/tracing.md, "What a
 * span contains"). A request is put together by hand (tests/logline-request.h: the fields the
 * proxy records, summarized as src/proxy/request.c does), encoded, and the text parsed back with
 * jansson (duplicate keys refused). Checked with exact values: ids, flags, name, kind, times,
 * every attribute with its value type, links, status; the Host header split; url.query and its
 * redaction; the cut of long values at a UTF-8 boundary and the escaping of whatever a client
 * sends; the body around the spans (resource and scope); the size of the largest span.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/span_encode.h"
#include "config/config.h"
#include "observe/request_summary.h"
#include "common/strbuf.h"
#include "../logline-request.h"
#include "daemon-test.h"
#include "unit-test.h"

static const char config_json[] =
    "{\"service_name\": \"checkout\","
    " \"access_log\": {\"redact\": [\"token\"]},"
    " \"routes\": [{\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"},"
    "               \"upstream\": \"http://127.0.0.1:9/base\"}]}";

static struct config *config;

static void setup(void)
{
    config = unit_config(config_json);
}

static void teardown(void)
{
    config_free(config);
    config = NULL;
}

#define TRACE_ID_HEX  "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN_ID_HEX   "00f067aa0ba902b7"
#define PARENT_ID_HEX "b7ad6b7169203331"
#define START_NS      "1795312511123456789"
#define END_NS        "1795312512373456789" /* START_NS + 1.25 s */

/* A finished request as request.c leaves it: route "api", upstream answered 200, the trace
 * continued from a sampled caller. Each test changes what it is about. */
static struct logline_request *make_request(const char *target)
{
    struct logline_request *req = calloc(1, sizeof(*req));
    ck_assert_ptr_nonnull(req);
    req->config = config;
    req->route = &config->routes[0];
    req->start_real = (struct timespec){.tv_sec = 1795312511, .tv_nsec = 123456789};
    clock_gettime(CLOCK_MONOTONIC, &req->start_mono);
    req->target = strdup(target);
    ck_assert_ptr_nonnull(req->target);
    req->target_len = strlen(target);
    req->path_len = strcspn(target, "?");
    req->method = "GET";
    unit_hex_to_bytes(TRACE_ID_HEX, req->hop.trace_id, 16);
    unit_hex_to_bytes(SPAN_ID_HEX, req->hop.span_id, 8);
    unit_hex_to_bytes(PARENT_ID_HEX, req->hop.parent_span_id, 8);
    req->hop.has_parent = true;
    req->hop.flags = TRACEHOP_FLAG_SAMPLED | TRACEHOP_FLAG_RANDOM;
    req->hop.origin = TRACEHOP_ORIGIN_TRACEPARENT;
    strcpy(req->hop.tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    req->hop.tracestate_len = strlen(req->hop.tracestate);
    req->hop.tracestate_status = TRACEHOP_TS_OK;
    strcpy(req->hop.x_trace_id, "order-42");
    req->hop.x_trace_id_len = strlen(req->hop.x_trace_id);
    req->hop.x_trace_id_status = TRACEHOP_XID_ACCEPTED;
    req->headers_done = true;
    req->upstream_status = 200;
    req->upstream_started = true;
    req->upstream_start_mono = req->start_mono;
    req->upstream_end_mono = req->start_mono;
    req->upstream_connect_ms = 0.5;
    req->upstream_ttfb_ms = 12.25;
    req->bytes_received = 10;
    req->bytes_sent = 2048;
    strcpy(req->client_addr, "192.0.2.7");
    req->host = "example.com:8080";
    req->http_version = "1.1";
    req->user_agent = "curl/8.0";
    return req;
}

static void free_request(struct logline_request *req)
{
    free(req->target);
    free(req);
}

/* Fail unless every byte of text is printable or non-ASCII: JSON escapes every control. */
static void assert_no_raw_controls(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        ck_assert_msg((unsigned char)text[i] >= 0x20 && text[i] != 0x7f,
                      "raw control byte 0x%02x at %zu", (unsigned char)text[i], i);
}

static json_t *parse(const char *text, size_t len)
{
    json_error_t error;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    ck_assert_msg(root != NULL, "not JSON (%s at %d): %.*s", error.text, error.position, (int)len,
                  text);
    assert_no_raw_controls(text, len);
    return root;
}

/* The summary with fixed durations (1.25 s, upstream 250 ms), as the encoder gets it. */
static void summarize(const struct logline_request *req, unsigned status, const char *outcome,
                      struct request_summary *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    logline_request_summary(req, status, outcome, &now, s);
    s->duration_s = 1.25;
    s->upstream_duration_s = 0.25;
}

/* Encode the span of req and parse it back. */
static json_t *encode(const struct logline_request *req, unsigned status, const char *outcome)
{
    struct request_summary s;
    struct strbuf b = {0};

    summarize(req, status, outcome, &s);
    span_encode(&b, &s);
    ck_assert(!b.oom);
    json_t *span = parse(b.data, b.len);
    ck_assert(json_is_object(span));
    strbuf_free(&b);
    return span;
}

/*
 * The attributes array as an object key -> AnyValue, checking the shape on the way: each entry
 * is exactly {"key","value"}, each value has exactly one member (its type), no key repeats.
 */
static json_t *attributes_of(const json_t *owner)
{
    json_t *array = json_object_get(owner, "attributes");
    json_t *map = json_object();
    size_t i;
    json_t *entry;

    ck_assert(json_is_array(array));
    json_array_foreach(array, i, entry)
    {
        json_t *key = json_object_get(entry, "key"), *value = json_object_get(entry, "value");
        ck_assert_uint_eq(json_object_size(entry), 2);
        ck_assert(json_is_string(key));
        ck_assert(json_is_object(value));
        ck_assert_uint_eq(json_object_size(value), 1);
        ck_assert_msg(!json_object_get(map, json_string_value(key)), "attribute %s twice",
                      json_string_value(key));
        json_object_set(map, json_string_value(key), value);
    }
    return map;
}

static json_t *load_expected(const char *text)
{
    json_error_t error;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    ck_assert_msg(v != NULL, "bad expectation (%s): %s", error.text, text);
    return v;
}

/* Fail unless `actual` equals the JSON text `expected`. */
static void assert_json(const json_t *actual, const char *expected)
{
    json_t *e = load_expected(expected);
    if (!json_equal(actual, e)) {
        char *got = json_dumps(actual, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *want = json_dumps(e, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        ck_abort_msg("got\n  %s\nwant\n  %s", got, want);
    }
    json_decref(e);
}

/* The string value of attribute `key`, NULL when absent; fails when it is not a stringValue. */
static const char *string_attribute(const json_t *span, const char *key, size_t *ret_len)
{
    json_t *map = attributes_of(span);
    json_t *value = json_object_get(map, key);
    const char *s = NULL;

    if (value) {
        json_t *v = json_object_get(value, "stringValue");
        ck_assert_msg(json_is_string(v), "%s is not a stringValue", key);
        s = json_string_value(v);
        if (ret_len)
            *ret_len = json_string_length(v);
    }
    json_decref(map); /* the span still holds the value */
    return s;
}

static void assert_string_attribute(const json_t *span, const char *key, const char *expected)
{
    const char *got = string_attribute(span, key, NULL);
    ck_assert_msg(got != NULL, "no attribute %s", key);
    ck_assert_str_eq(got, expected);
}

static bool has_attribute(const json_t *span, const char *key)
{
    json_t *map = attributes_of(span);
    bool has = json_object_get(map, key) != NULL;
    json_decref(map);
    return has;
}

/* --- a continued trace, a root, a link -------------------------------------------------------- */

START_TEST(test_continued_sampled_trace)
{
    struct logline_request *req = make_request("/api/items?a=1");
    json_t *span = encode(req, 200, "ok");

    /* Every member, exactly: no more, no less. flags 771 = the trace flags 0x03, 0x100
     * (HAS_IS_REMOTE) and 0x200 (IS_REMOTE: the parent is in another process). */
    json_t *attributes = attributes_of(span);
    json_object_del(span, "attributes");
    assert_json(span, "{\"traceId\": \"" TRACE_ID_HEX "\", \"spanId\": \"" SPAN_ID_HEX "\","
                      " \"parentSpanId\": \"" PARENT_ID_HEX "\","
                      " \"traceState\": \"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\","
                      " \"flags\": 771, \"name\": \"GET /api*\", \"kind\": 2,"
                      " \"startTimeUnixNano\": \"" START_NS "\","
                      " \"endTimeUnixNano\": \"" END_NS "\", \"status\": {}}");
    assert_json(attributes, "{"
                            "\"http.request.method\": {\"stringValue\": \"GET\"},"
                            "\"url.path\": {\"stringValue\": \"/api/items\"},"
                            "\"url.query\": {\"stringValue\": \"a=1\"},"
                            "\"url.scheme\": {\"stringValue\": \"http\"},"
                            "\"http.response.status_code\": {\"intValue\": \"200\"},"
                            "\"http.route\": {\"stringValue\": \"/api*\"},"
                            "\"server.address\": {\"stringValue\": \"example.com\"},"
                            "\"server.port\": {\"intValue\": \"8080\"},"
                            "\"client.address\": {\"stringValue\": \"192.0.2.7\"},"
                            "\"user_agent.original\": {\"stringValue\": \"curl/8.0\"},"
                            "\"network.protocol.version\": {\"stringValue\": \"1.1\"},"
                            "\"http.request.body.size\": {\"intValue\": \"10\"},"
                            "\"http.response.body.size\": {\"intValue\": \"2048\"},"
                            "\"tracehop.route\": {\"stringValue\": \"api\"},"
                            "\"tracehop.upstream\": {\"stringValue\": \"http://127.0.0.1:9/base\"},"
                            "\"tracehop.upstream.status_code\": {\"intValue\": \"200\"},"
                            "\"tracehop.upstream.duration_ms\": {\"doubleValue\": 250.0},"
                            "\"tracehop.upstream.connect_ms\": {\"doubleValue\": 0.5},"
                            "\"tracehop.upstream.first_byte_ms\": {\"doubleValue\": 12.25},"
                            "\"tracehop.outcome\": {\"stringValue\": \"ok\"},"
                            "\"tracehop.x_trace_id\": {\"stringValue\": \"order-42\"}"
                            "}");
    json_decref(attributes);
    json_decref(span);
    free_request(req);
}
END_TEST

/* The raw text: ids are lowercase hex of 32 and 16 digits, the times decimal strings. */
START_TEST(test_id_and_time_encoding)
{
    struct logline_request *req = make_request("/api");
    struct request_summary s;
    struct strbuf b = {0};

    unit_hex_to_bytes("ABCDEF0123456789ABCDEF0123456789", req->hop.trace_id, 16);
    unit_hex_to_bytes("FEDCBA9876543210", req->hop.span_id, 8);
    summarize(req, 200, "ok", &s);
    span_encode(&b, &s);
    ck_assert_ptr_nonnull(strstr(b.data, "\"traceId\":\"abcdef0123456789abcdef0123456789\""));
    ck_assert_ptr_nonnull(strstr(b.data, "\"spanId\":\"fedcba9876543210\""));
    ck_assert_ptr_nonnull(strstr(b.data, "\"parentSpanId\":\"" PARENT_ID_HEX "\""));
    ck_assert_ptr_nonnull(strstr(b.data, "\"startTimeUnixNano\":\"" START_NS "\""));
    ck_assert_ptr_nonnull(strstr(b.data, "\"endTimeUnixNano\":\"" END_NS "\""));
    ck_assert_ptr_nonnull(strstr(b.data, "{\"intValue\":\"200\"}"));
    strbuf_free(&b);
    free_request(req);
}
END_TEST

START_TEST(test_root_span)
{
    struct logline_request *req = make_request("/api");
    req->hop.has_parent = false;
    req->hop.origin = TRACEHOP_ORIGIN_NEW;
    req->hop.tracestate[0] = '\0';
    req->hop.tracestate_len = 0;
    req->hop.flags = TRACEHOP_FLAG_SAMPLED | TRACEHOP_FLAG_RANDOM;
    json_t *span = encode(req, 200, "ok");

    ck_assert_ptr_null(json_object_get(span, "parentSpanId"));
    ck_assert_ptr_null(json_object_get(span, "traceState"));
    ck_assert_ptr_null(json_object_get(span, "links"));
    ck_assert_int_eq(json_integer_value(json_object_get(span, "flags")), 0x03 | 0x100);
    json_decref(span);

    /* The flags are the hop's: sampled alone (a caller's UUID as the trace id, no random). */
    req->hop.flags = TRACEHOP_FLAG_SAMPLED;
    span = encode(req, 200, "ok");
    ck_assert_int_eq(json_integer_value(json_object_get(span, "flags")), 0x01 | 0x100);
    json_decref(span);
    free_request(req);
}
END_TEST

/* trust_incoming false: a new trace, and the caller's valid traceparent as a link. */
START_TEST(test_untrusted_caller_is_a_link)
{
    struct logline_request *req = make_request("/api");
    req->hop.has_parent = false;
    req->hop.origin = TRACEHOP_ORIGIN_NEW;
    req->hop.tracestate[0] = '\0';
    req->hop.tracestate_len = 0;
    req->hop.traceparent_present = true;
    req->hop.incoming_valid = true;
    req->hop.incoming.version = 0;
    unit_hex_to_bytes("0af7651916cd43dd8448eb211c80319c", req->hop.incoming.trace_id, 16);
    unit_hex_to_bytes("b9c7c989f97918e1", req->hop.incoming.parent_id, 8);
    req->hop.incoming.flags = 0x01 | 0x80; /* an unknown bit is not carried */
    json_t *span = encode(req, 200, "ok");

    ck_assert_ptr_null(json_object_get(span, "parentSpanId"));
    ck_assert_int_eq(json_integer_value(json_object_get(span, "flags")), 0x03 | 0x100);
    assert_json(json_object_get(span, "links"),
                "[{\"traceId\": \"0af7651916cd43dd8448eb211c80319c\","
                "  \"spanId\": \"b9c7c989f97918e1\", \"flags\": 769}]");
    json_decref(span);

    /* Trusted (the caller is the parent): no link. */
    req->hop.has_parent = true;
    span = encode(req, 200, "ok");
    ck_assert_ptr_null(json_object_get(span, "links"));
    json_decref(span);
    free_request(req);
}
END_TEST

/* --- status and error.type -------------------------------------------------------------------- */

START_TEST(test_upstream_5xx_is_error)
{
    struct logline_request *req = make_request("/api");
    req->upstream_status = 500;
    json_t *span = encode(req, 500, "ok");

    assert_json(json_object_get(span, "status"), "{\"code\": 2}");
    assert_string_attribute(span, "error.type", "500");
    json_decref(span);
    free_request(req);
}
END_TEST

START_TEST(test_tracehop_failure_is_error)
{
    struct logline_request *req = make_request("/api");
    req->headers_done = false; /* no upstream head */
    json_t *span = encode(req, 502, "upstream_connect_failed");

    assert_json(json_object_get(span, "status"),
                "{\"code\": 2, \"message\": \"upstream_connect_failed\"}");
    assert_string_attribute(span, "error.type", "upstream_connect_failed");
    assert_string_attribute(span, "tracehop.outcome", "upstream_connect_failed");
    ck_assert(!has_attribute(span, "tracehop.upstream.status_code"));
    ck_assert(has_attribute(span, "tracehop.upstream.connect_ms"));
    json_decref(span);
    free_request(req);
}
END_TEST

/* No connection and no response byte: no connect or first-byte time, rather than a false 0. */
START_TEST(test_times_that_never_happened_are_left_out)
{
    struct logline_request *req = make_request("/api");
    req->headers_done = false;
    req->upstream_connect_ms = -1;
    req->upstream_ttfb_ms = -1;
    json_t *span = encode(req, 502, "upstream_connect_failed");

    ck_assert(has_attribute(span, "tracehop.upstream.duration_ms"));
    ck_assert(!has_attribute(span, "tracehop.upstream.connect_ms"));
    ck_assert(!has_attribute(span, "tracehop.upstream.first_byte_ms"));
    json_decref(span);
    free_request(req);
}
END_TEST

/* A 4xx on a server span leaves the status unset, even when tracehop answered it itself. */
START_TEST(test_no_route_404)
{
    struct logline_request *req = make_request("/nothing");
    req->route = NULL;
    req->headers_done = false;
    req->upstream_started = false;
    json_t *span = encode(req, 404, "no_route");

    ck_assert_str_eq(json_string_value(json_object_get(span, "name")), "GET");
    assert_json(json_object_get(span, "status"), "{}");
    ck_assert(!has_attribute(span, "error.type"));
    ck_assert(!has_attribute(span, "http.route"));
    ck_assert(!has_attribute(span, "tracehop.route"));
    ck_assert(!has_attribute(span, "tracehop.upstream"));
    ck_assert(!has_attribute(span, "tracehop.upstream.status_code"));
    ck_assert(!has_attribute(span, "tracehop.upstream.duration_ms"));
    ck_assert(!has_attribute(span, "tracehop.upstream.connect_ms"));
    ck_assert(!has_attribute(span, "tracehop.upstream.first_byte_ms"));
    assert_string_attribute(span, "tracehop.outcome", "no_route");
    assert_string_attribute(span, "url.path", "/nothing");
    json_decref(span);
    free_request(req);
}
END_TEST

/* The client went away after a 200 head: the exchange broke, so Error. */
START_TEST(test_client_aborted_is_error)
{
    struct logline_request *req = make_request("/api");
    json_t *span = encode(req, 200, "client_aborted");

    assert_json(json_object_get(span, "status"), "{\"code\": 2, \"message\": \"client_aborted\"}");
    assert_string_attribute(span, "error.type", "client_aborted");
    json_decref(span);
    free_request(req);
}
END_TEST

/* No response at all (status 0): no status code attribute, and Error. */
START_TEST(test_no_response_is_error)
{
    struct logline_request *req = make_request("/api");
    req->headers_done = false;
    json_t *span = encode(req, 0, "client_aborted");

    ck_assert(!has_attribute(span, "http.response.status_code"));
    assert_string_attribute(span, "error.type", "client_aborted");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(span, "status"), "code")),
                     2);
    json_decref(span);
    free_request(req);
}
END_TEST

/* --- method and name -------------------------------------------------------------------------- */

START_TEST(test_unknown_method)
{
    struct logline_request *req = make_request("/api");
    req->method = "PURGE";
    req->route = NULL;
    json_t *span = encode(req, 404, "no_route");

    ck_assert_str_eq(json_string_value(json_object_get(span, "name")), "HTTP");
    assert_string_attribute(span, "http.request.method", "_OTHER");
    assert_string_attribute(span, "http.request.method_original", "PURGE");
    json_decref(span);

    /* With a route the name keeps it: "{method} {http.route}" with {method} "HTTP". */
    req->route = &config->routes[0];
    span = encode(req, 200, "ok");
    ck_assert_str_eq(json_string_value(json_object_get(span, "name")), "HTTP /api*");
    json_decref(span);

    /* Methods are case-sensitive: "get" is not GET. */
    req->method = "get";
    span = encode(req, 200, "ok");
    ck_assert_str_eq(json_string_value(json_object_get(span, "name")), "HTTP /api*");
    assert_string_attribute(span, "http.request.method", "_OTHER");
    assert_string_attribute(span, "http.request.method_original", "get");
    json_decref(span);

    /* A known method has no method_original. */
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
        char name[32];
        req->method = known[i];
        span = encode(req, 200, "ok");
        snprintf(name, sizeof(name), "%s /api*", known[i]);
        ck_assert_str_eq(json_string_value(json_object_get(span, "name")), name);
        assert_string_attribute(span, "http.request.method", known[i]);
        ck_assert(!has_attribute(span, "http.request.method_original"));
        json_decref(span);
    }
    free_request(req);
}
END_TEST

/* The head never came: no method, no version; the name is "HTTP". */
START_TEST(test_no_head)
{
    struct logline_request *req = make_request("/api");
    req->method = NULL;
    req->route = NULL;
    req->http_version = NULL;
    req->host = NULL;
    req->user_agent = NULL;
    req->headers_done = false;
    req->upstream_started = false;
    json_t *span = encode(req, 408, "bad_request");

    ck_assert_str_eq(json_string_value(json_object_get(span, "name")), "HTTP");
    ck_assert(!has_attribute(span, "http.request.method"));
    ck_assert(!has_attribute(span, "network.protocol.version"));
    ck_assert(!has_attribute(span, "server.address"));
    ck_assert(!has_attribute(span, "user_agent.original"));
    json_decref(span);
    free_request(req);
}
END_TEST

/* --- url.query -------------------------------------------------------------------------------- */

START_TEST(test_query_redacted)
{
    struct logline_request *req = make_request("/api/items?token=s3cret&a=1&TOKEN=x&tokens=kept");
    json_t *span = encode(req, 200, "ok");

    assert_string_attribute(span, "url.path", "/api/items");
    assert_string_attribute(span, "url.query", "token=[REDACTED]&a=1&TOKEN=[REDACTED]&tokens=kept");
    json_decref(span);
    free_request(req);

    req = make_request("/api/items");
    span = encode(req, 200, "ok");
    ck_assert(!has_attribute(span, "url.query"));
    json_decref(span);
    free_request(req);

    /* A '?' with nothing after it is an empty query, which was received. */
    req = make_request("/api/items?");
    span = encode(req, 200, "ok");
    assert_string_attribute(span, "url.query", "");
    json_decref(span);
    free_request(req);
}
END_TEST

START_TEST(test_query_without_redaction)
{
    struct config *plain = unit_config("{\"routes\": [{\"name\": \"api\","
                                       " \"match\": {\"path_prefix\": \"/api\"},"
                                       " \"upstream\": \"http://127.0.0.1:9\"}]}");
    struct logline_request *req = make_request("/api?token=s3cret");
    req->config = plain;
    req->route = &plain->routes[0];
    json_t *span = encode(req, 200, "ok");

    assert_string_attribute(span, "url.query", "token=s3cret");
    json_decref(span);
    free_request(req);
    config_free(plain);
}
END_TEST

/* --- server.address and server.port from Host ------------------------------------------------- */

static const struct host_vector {
    const char *host;
    const char *address; /* NULL: absent */
    const char *port;    /* NULL: absent */
} host_vectors[] = {
    {"example.com:8080", "example.com", "8080"},
    {"example.com", "example.com", NULL},
    {"[::1]:9000", "::1", "9000"},
    {"[2001:db8::1]", "2001:db8::1", NULL},
    {"[::1]", "::1", NULL},
    {"[::1]x", "::1", NULL},
    {"host:99999", "host", NULL},
    {"host:65535", "host", "65535"},
    {"host:65536", "host", NULL},
    {"host:0", "host", NULL},
    {"host:080", "host", "80"},
    {"host:", "host", NULL},
    {"host:8o", "host", NULL},
    {"host:123456", "host", NULL},
    {"192.0.2.1:443", "192.0.2.1", "443"},
    {":8080", NULL, NULL}, /* no port without an address */
    {"", NULL, NULL},
    {NULL, NULL, NULL},
};

START_TEST(test_host)
{
    const struct host_vector *v = &host_vectors[_i];
    struct logline_request *req = make_request("/api");
    req->host = v->host;
    json_t *span = encode(req, 200, "ok");
    json_t *map = attributes_of(span);
    json_t *address = json_object_get(map, "server.address");
    json_t *port = json_object_get(map, "server.port");

    if (v->address) {
        ck_assert_msg(address != NULL, "%s: no server.address", v->host);
        ck_assert_str_eq(json_string_value(json_object_get(address, "stringValue")), v->address);
    } else {
        ck_assert_msg(address == NULL, "%s: server.address", v->host);
    }
    if (v->port) {
        ck_assert_msg(port != NULL, "%s: no server.port", v->host);
        ck_assert_str_eq(json_string_value(json_object_get(port, "intValue")), v->port);
    } else {
        ck_assert_msg(port == NULL, "%s: server.port", v->host);
    }
    json_decref(map);
    json_decref(span);
    free_request(req);
}
END_TEST

/* --- long values, invalid UTF-8, controls ----------------------------------------------------- */

/* A path of `total` bytes: '/', then 'a's, then the UTF-8 character `ch` starting at byte
 * `at`, then 'b's. */
static char *path_with(size_t total, size_t at, const char *ch)
{
    char *p = malloc(total + 1);
    ck_assert_ptr_nonnull(p);
    memset(p, 'a', at);
    p[0] = '/';
    memcpy(p + at, ch, strlen(ch));
    memset(p + at + strlen(ch), 'b', total - at - strlen(ch));
    p[total] = '\0';
    return p;
}

static const struct cut_vector {
    size_t at;      /* where the multi-byte character starts */
    const char *ch; /* the character */
    size_t kept;    /* bytes of url.path after the cut */
} cut_vectors[] = {
    {SPAN_ATTRIBUTE_VALUE_MAX - 1, "\xc3\xa9", SPAN_ATTRIBUTE_VALUE_MAX - 1},         /* é */
    {SPAN_ATTRIBUTE_VALUE_MAX - 2, "\xc3\xa9", SPAN_ATTRIBUTE_VALUE_MAX},             /* fits */
    {SPAN_ATTRIBUTE_VALUE_MAX - 1, "\xe2\x82\xac", SPAN_ATTRIBUTE_VALUE_MAX - 1},     /* € */
    {SPAN_ATTRIBUTE_VALUE_MAX - 2, "\xe2\x82\xac", SPAN_ATTRIBUTE_VALUE_MAX - 2},     /* € */
    {SPAN_ATTRIBUTE_VALUE_MAX - 3, "\xe2\x82\xac", SPAN_ATTRIBUTE_VALUE_MAX},         /* fits */
    {SPAN_ATTRIBUTE_VALUE_MAX - 1, "\xf0\x9f\x98\x80", SPAN_ATTRIBUTE_VALUE_MAX - 1}, /* 😀 */
    {SPAN_ATTRIBUTE_VALUE_MAX - 2, "\xf0\x9f\x98\x80", SPAN_ATTRIBUTE_VALUE_MAX - 2},
    {SPAN_ATTRIBUTE_VALUE_MAX - 3, "\xf0\x9f\x98\x80", SPAN_ATTRIBUTE_VALUE_MAX - 3},
    {SPAN_ATTRIBUTE_VALUE_MAX - 4, "\xf0\x9f\x98\x80", SPAN_ATTRIBUTE_VALUE_MAX},
};

START_TEST(test_long_path_cut_at_character)
{
    const struct cut_vector *v = &cut_vectors[_i];
    char *target = path_with(10 * 1024, v->at, v->ch);
    struct logline_request *req = make_request(target);
    json_t *span = encode(req, 200, "ok");
    size_t len = 0;
    const char *path = string_attribute(span, "url.path", &len);

    ck_assert_ptr_nonnull(path);
    ck_assert_uint_eq(len, v->kept);
    ck_assert(memcmp(path, target, len) == 0);
    json_decref(span);
    free_request(req);
    free(target);
}
END_TEST

/* Every value a client sends is cut: the query, the user agent, the Host, an unknown method. */
START_TEST(test_every_client_value_is_cut)
{
    char *big = malloc(10 * 1024 + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'q', 10 * 1024);
    big[10 * 1024] = '\0';
    char *target = malloc(10 * 1024 + 8);
    ck_assert_ptr_nonnull(target);
    snprintf(target, 10 * 1024 + 8, "/api?%s", big);
    struct logline_request *req = make_request(target);
    req->user_agent = big;
    req->host = big;
    req->method = big;
    json_t *span = encode(req, 200, "ok");
    static const char *const keys[] = {"url.query", "user_agent.original", "server.address",
                                       "http.request.method_original"};

    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        size_t len = 0;
        const char *value = string_attribute(span, keys[i], &len);
        ck_assert_msg(value != NULL, "no %s", keys[i]);
        ck_assert_msg(len == SPAN_ATTRIBUTE_VALUE_MAX, "%s: %zu bytes", keys[i], len);
    }
    json_decref(span);
    free_request(req);
    free(target);
    free(big);
}
END_TEST

/* Invalid UTF-8 becomes U+FFFD, controls are escaped; the text is always valid JSON. */
START_TEST(test_escaping)
{
    struct logline_request *req =
        make_request("/api/\"quoted\"\\x\xff\xc3(?q=\x1b[31m\r\n{\"fake\":1}\x7f\xc2\x85");
    req->user_agent = "bad\xff\xfe ctl\x01\t\x1b[31m \"q\" \\ \xed\xa0\x80 ok\xe2\x82\xac";
    req->host = "evil\"host\n:80";
    json_t *span = encode(req, 200, "ok");

    assert_string_attribute(span, "url.path", "/api/\"quoted\"\\x\xef\xbf\xbd\xef\xbf\xbd(");
    assert_string_attribute(span, "url.query", "q=\x1b[31m\r\n{\"fake\":1}\x7f\xc2\x85");
    assert_string_attribute(span, "user_agent.original",
                            "bad\xef\xbf\xbd\xef\xbf\xbd ctl\x01\t\x1b[31m \"q\" \\ "
                            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok\xe2\x82\xac");
    assert_string_attribute(span, "server.address", "evil\"host\n");
    json_decref(span);
    free_request(req);
}
END_TEST

/*
 * The memory bound docs/tracing.md ("Memory") states: the exporter encodes each span into one
 * buffer that starts with room for its node header and 2 KiB of text (src/observe/otlp_exporter.c)
 * and grows by doubling. With every value a client controls at its cut and made of bytes that
 * escape to six characters each, the buffer stays within 64 KiB; a usual span stays within 4 KiB.
 */
#define EXPORTER_NODE_RESERVE                                                                      \
    (64 + 2048) /* a node header (at most 64 bytes) and SPAN_TEXT_RESERVE */

static size_t encoded_capacity(const struct logline_request *req, size_t *ret_len)
{
    struct request_summary s;
    struct strbuf b = {0};

    summarize(req, 200, "ok", &s);
    ck_assert(strbuf_reserve(&b, EXPORTER_NODE_RESERVE));
    span_encode(&b, &s);
    ck_assert(!b.oom);
    size_t cap = b.cap;
    *ret_len = b.len;
    json_decref(parse(b.data, b.len));
    strbuf_free(&b);
    return cap;
}

START_TEST(test_largest_span)
{
    static const char fills[] = {'a', '\x01', '\xff', '"'};
    const size_t n = 10 * 1024;
    size_t len;

    for (size_t f = 0; f < ARRAY_SIZE(fills); f++) {
        char *big = malloc(n + 1);
        char *target = malloc(2 * n + 8);
        ck_assert(big && target);
        memset(big, fills[f], n);
        big[n] = '\0';
        snprintf(target, 2 * n + 8, "/api%s?%s", big, big);
        struct logline_request *req = make_request(target);
        req->user_agent = big;
        req->host = big;
        req->method = big;
        memset(req->hop.x_trace_id, 'x', TRACEHOP_X_TRACE_ID_MAX);
        req->hop.x_trace_id[TRACEHOP_X_TRACE_ID_MAX] = '\0';
        req->hop.x_trace_id_len = TRACEHOP_X_TRACE_ID_MAX;
        memset(req->hop.tracestate, 'a', TRACEHOP_TRACESTATE_MAX);
        req->hop.tracestate[TRACEHOP_TRACESTATE_MAX] = '\0';
        req->hop.tracestate_len = TRACEHOP_TRACESTATE_MAX;
        size_t cap = encoded_capacity(req, &len);
        ck_assert_msg(cap <= 64 * 1024, "fill 0x%02x: %zu bytes (%zu of text)",
                      (unsigned char)fills[f], cap, len);
        free_request(req);
        free(target);
        free(big);
    }

    struct logline_request *usual = make_request("/api/items/12345?page=2&sort=desc");
    usual->user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/120.0.0.0 Safari/537.36";
    ck_assert_uint_le(encoded_capacity(usual, &len), 4 * 1024);
    free_request(usual);
}
END_TEST

/* --- the body: resource and scope ------------------------------------------------------------- */

/* Set resource attributes by hand (the loader's key may not exist yet); free with the config
 * through free_resource. */
static void set_resource(struct config *c, const char *const *pairs, size_t count)
{
    c->otlp.resource_attributes = calloc(count, sizeof(struct header_setting));
    ck_assert_ptr_nonnull(c->otlp.resource_attributes);
    for (size_t i = 0; i < count; i++) {
        struct header_setting *r = &c->otlp.resource_attributes[i];
        r->name = strdup(pairs[2 * i]);
        r->value = strdup(pairs[2 * i + 1]);
        size_t size = strlen(r->name) + strlen(r->value) + 3;
        r->line = malloc(size);
        ck_assert(r->name && r->value && r->line);
        snprintf(r->line, size, "%s: %s", r->name, r->value);
    }
    c->otlp.resource_attributes_count = count;
}

static void free_resource(struct config *c)
{
    for (size_t i = 0; i < c->otlp.resource_attributes_count; i++) {
        free(c->otlp.resource_attributes[i].name);
        free(c->otlp.resource_attributes[i].value);
        free(c->otlp.resource_attributes[i].line);
    }
    free(c->otlp.resource_attributes);
    c->otlp.resource_attributes = NULL;
    c->otlp.resource_attributes_count = 0;
}

#define INSTANCE_ID "7c9f2f3e-5d1a-4b7e-9a57-2f1f3c2d0e11"

/* The body of a batch of `spans` spans, as the exporter builds it, parsed. */
static json_t *encode_body(struct logline_request *req, unsigned spans)
{
    struct strbuf b = {0};
    struct request_summary s;

    span_encode_body_open(&b, config, INSTANCE_ID, "1.2.3");
    summarize(req, 200, "ok", &s);
    for (unsigned i = 0; i < spans; i++) {
        if (i > 0)
            strbuf_append_char(&b, ',');
        span_encode(&b, &s);
    }
    strbuf_append_str(&b, SPAN_ENCODE_BODY_CLOSE);
    ck_assert(!b.oom);
    json_t *body = parse(b.data, b.len);
    strbuf_free(&b);
    return body;
}

/* The one resource's attributes and the one scope's spans, checking the shape around them. */
static json_t *resource_attributes(const json_t *body, size_t spans)
{
    json_t *resource_spans = json_object_get(body, "resourceSpans");
    ck_assert_uint_eq(json_object_size(body), 1);
    ck_assert(json_is_array(resource_spans));
    ck_assert_uint_eq(json_array_size(resource_spans), 1);
    json_t *rs = json_array_get(resource_spans, 0);
    ck_assert_uint_eq(json_object_size(rs), 2);
    json_t *resource = json_object_get(rs, "resource");
    ck_assert_uint_eq(json_object_size(resource), 1);
    json_t *scope_spans = json_object_get(rs, "scopeSpans");
    ck_assert(json_is_array(scope_spans));
    ck_assert_uint_eq(json_array_size(scope_spans), 1);
    json_t *ss = json_array_get(scope_spans, 0);
    ck_assert_uint_eq(json_object_size(ss), 2);
    assert_json(json_object_get(ss, "scope"), "{\"name\": \"tracehop\", \"version\": \"1.2.3\"}");
    json_t *array = json_object_get(ss, "spans");
    ck_assert(json_is_array(array));
    ck_assert_uint_eq(json_array_size(array), spans);
    for (size_t i = 0; i < spans; i++)
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(array, i), "spanId")),
                         SPAN_ID_HEX);
    return attributes_of(resource);
}

START_TEST(test_body_resource_and_scope)
{
    static const char *const pairs[] = {"deployment.environment.name", "prod"};
    set_resource(config, pairs, 1);
    struct logline_request *req = make_request("/api");

    for (unsigned spans = 1; spans <= 3; spans++) {
        json_t *body = encode_body(req, spans);
        json_t *attributes = resource_attributes(body, spans);
        assert_json(attributes, "{"
                                "\"service.name\": {\"stringValue\": \"checkout\"},"
                                "\"service.instance.id\": {\"stringValue\": \"" INSTANCE_ID "\"},"
                                "\"service.version\": {\"stringValue\": \"1.2.3\"},"
                                "\"telemetry.sdk.name\": {\"stringValue\": \"tracehop\"},"
                                "\"telemetry.sdk.language\": {\"stringValue\": \"c\"},"
                                "\"telemetry.sdk.version\": {\"stringValue\": \"1.2.3\"},"
                                "\"deployment.environment.name\": {\"stringValue\": \"prod\"}"
                                "}");
        json_decref(attributes);
        json_decref(body);
    }
    free_request(req);
    free_resource(config);
}
END_TEST

/* A configured key replaces tracehop's value (each key once); service.name is service_name's. */
START_TEST(test_body_resource_replaces)
{
    static const char *const pairs[] = {
        "service.version",     "9.9-site",    "service.name",          "ignored",
        "service.instance.id", "pod-7",       "telemetry.sdk.version", "patched",
        "quote\"key",          "line\nvalue",
    };
    set_resource(config, pairs, ARRAY_SIZE(pairs) / 2);
    struct logline_request *req = make_request("/api");
    json_t *body = encode_body(req, 1);
    json_t *attributes = resource_attributes(body, 1);

    assert_json(attributes, "{"
                            "\"service.name\": {\"stringValue\": \"checkout\"},"
                            "\"service.instance.id\": {\"stringValue\": \"pod-7\"},"
                            "\"service.version\": {\"stringValue\": \"9.9-site\"},"
                            "\"telemetry.sdk.name\": {\"stringValue\": \"tracehop\"},"
                            "\"telemetry.sdk.language\": {\"stringValue\": \"c\"},"
                            "\"telemetry.sdk.version\": {\"stringValue\": \"patched\"},"
                            "\"quote\\\"key\": {\"stringValue\": \"line\\nvalue\"}"
                            "}");
    json_decref(attributes);
    json_decref(body);
    free_request(req);
    free_resource(config);
}
END_TEST

static Suite *span_encode_suite(void)
{
    Suite *s = suite_create("span_encode");
    TCase *tc = tcase_create("span");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_continued_sampled_trace);
    tcase_add_test(tc, test_id_and_time_encoding);
    tcase_add_test(tc, test_root_span);
    tcase_add_test(tc, test_untrusted_caller_is_a_link);
    tcase_add_test(tc, test_upstream_5xx_is_error);
    tcase_add_test(tc, test_tracehop_failure_is_error);
    tcase_add_test(tc, test_times_that_never_happened_are_left_out);
    tcase_add_test(tc, test_no_route_404);
    tcase_add_test(tc, test_client_aborted_is_error);
    tcase_add_test(tc, test_no_response_is_error);
    tcase_add_test(tc, test_unknown_method);
    tcase_add_test(tc, test_no_head);
    tcase_add_test(tc, test_query_redacted);
    tcase_add_test(tc, test_query_without_redaction);
    tcase_add_loop_test(tc, test_host, 0, ARRAY_SIZE(host_vectors));
    tcase_add_loop_test(tc, test_long_path_cut_at_character, 0, ARRAY_SIZE(cut_vectors));
    tcase_add_test(tc, test_every_client_value_is_cut);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_largest_span);
    tcase_add_test(tc, test_body_resource_and_scope);
    tcase_add_test(tc, test_body_resource_replaces);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(span_encode_suite());
}
