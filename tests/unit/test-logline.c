/* SPDX-License-Identifier: MIT */
/*
 * The access-log line (src/observe/logline.h; docs/access-log.md, "Fields"): a request is
 * put together by hand (tests/logline-request.h: the fields the proxy records, summarized as
 * src/proxy/request.c does) and written to an access log, which
 * is a file sink in a temporary directory; logline_write builds the line and the test reads it
 * back and parses it. Checked: every always-present field with its JSON type and value, null
 * parent at a root, query redaction, request_headers, and the reversible escaping of invalid
 * UTF-8 (U+FFFD in the field, the exact bytes in "<name>_raw_b64").
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/accesslog.h"
#include "config/config.h"
#include "observe/logline.h"
#include "observe/request_summary.h"
#include "../logline-request.h"
#include "../promtool-check.h" /* promtool_dir, promtool_slurp */
#include "daemon-test.h"
#include "unit-test.h"

static const char config_json[] =
    "{\"service_name\": \"checkout\","
    " \"access_log\": {\"fields\": [\"X-Tenant\", \"Authorization\", \"X-Missing\"],"
    "                 \"redact\": [\"token\", \"authorization\"]},"
    " \"routes\": [{\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"},"
    "               \"upstream\": \"http://127.0.0.1:9/base\"}]}";

static char dir[512];
static char log_path[600];
static struct config *config;
static struct accesslog *accesslog;

static void setup(void)
{
    promtool_dir(dir, sizeof(dir));
    snprintf(log_path, sizeof(log_path), "%s/access.log", dir);
    config = unit_config(config_json);
    ck_assert_int_eq(accesslog_open(log_path, 1 << 20, &accesslog), 0);
}

static void teardown(void)
{
    accesslog = accesslog_close(accesslog);
    config_free(config);
    config = NULL;
    logline_thread_cleanup();
    promtool_dir_remove(dir);
}

static const uint8_t trace_id[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                     0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t span_id[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t parent_id[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};

static const char *logged_headers[] = {"acme", "Bearer secret-token", NULL};

/* A finished request as request.c leaves it: routed, upstream answered 201, root of a trace. */
static struct logline_request *make_request(const char *target)
{
    struct logline_request *req = calloc(1, sizeof(*req));
    ck_assert_ptr_nonnull(req);
    req->config = config;
    req->route = &config->routes[0];
    req->start_real = (struct timespec){.tv_sec = 1795312511, .tv_nsec = 123456789};
    clock_gettime(CLOCK_MONOTONIC, &req->start_mono);
    req->start_mono.tv_sec -= 1; /* the request took a little over a second */
    req->target = strdup(target);
    req->target_len = strlen(target);
    req->path_len = strcspn(target, "?");
    req->method = "GET";
    memcpy(req->hop.trace_id, trace_id, 16);
    memcpy(req->hop.span_id, span_id, 8);
    req->hop.has_parent = false;
    req->hop.flags = 0x01;
    strcpy(req->hop.x_trace_id, "order-42");
    req->hop.x_trace_id_len = strlen(req->hop.x_trace_id);
    req->hop.x_trace_id_status = TRACEHOP_XID_ACCEPTED;
    req->headers_done = true;
    req->upstream_status = 201;
    req->upstream_started = true;
    req->upstream_start_mono = req->start_mono;
    req->upstream_end_mono = req->start_mono;
    req->upstream_end_mono.tv_nsec += 250000000; /* 250 ms */
    if (req->upstream_end_mono.tv_nsec >= 1000000000) {
        req->upstream_end_mono.tv_sec++;
        req->upstream_end_mono.tv_nsec -= 1000000000;
    }
    req->upstream_connect_ms = 0.5;
    req->upstream_ttfb_ms = 12.25;
    req->bytes_received = 10;
    req->bytes_sent = 2048;
    strcpy(req->client_addr, "127.0.0.1");
    req->user_agent = "curl/8.0";
    req->logged_headers = logged_headers;
    return req;
}

static void free_request(struct logline_request *req)
{
    free(req->target);
    free(req);
}

/* Write the line, flush the sink, and return the one line the file holds (parsed). */
static json_t *write_and_read(struct logline_request *req, unsigned status, const char *outcome,
                              char **ret_raw)
{
    struct request_summary summary;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    logline_request_summary(req, status, outcome, &now, &summary);
    logline_write(accesslog, &summary);
    accesslog = accesslog_close(accesslog);
    char *text = promtool_slurp(log_path);
    size_t len = strlen(text);
    ck_assert_msg(len > 0 && text[len - 1] == '\n', "no complete line: %s", text);
    ck_assert_msg(memchr(text, '\n', len) == text + len - 1, "more than one line: %s", text);
    for (size_t i = 0; i < len - 1; i++)
        ck_assert_msg((unsigned char)text[i] >= 0x20 && text[i] != 0x7f,
                      "raw control byte 0x%02x at %zu", (unsigned char)text[i], i);
    json_error_t error;
    json_t *line = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    ck_assert_msg(line != NULL, "not JSON (%s): %s", error.text, text);
    ck_assert(json_is_object(line));
    if (ret_raw)
        *ret_raw = text;
    else
        free(text);
    return line;
}

/* The test's own base64 decoder (RFC 4648, with padding). */
static size_t base64_decode(const char *in, uint8_t *out)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    unsigned bits = 0, value = 0;

    for (const char *p = in; *p && *p != '='; p++) {
        const char *d = strchr(digits, *p);
        ck_assert_msg(d != NULL && *p != '\0', "not base64: %s", in);
        value = value << 6 | (unsigned)(d - digits);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(value >> bits);
        }
    }
    ck_assert_msg(strlen(in) % 4 == 0, "base64 without padding: %s", in);
    return n;
}

static const char *str(json_t *line, const char *key)
{
    json_t *v = json_object_get(line, key);
    ck_assert_msg(json_is_string(v), "%s is not a string", key);
    return json_string_value(v);
}

static void assert_null(json_t *line, const char *key)
{
    json_t *v = json_object_get(line, key);
    ck_assert_msg(v != NULL, "%s is missing", key);
    ck_assert_msg(json_is_null(v), "%s is not null", key);
}

/* Every always-present field of docs/access-log.md ("Always present") with its JSON type:
 * s string, S string or null, i integer, I integer or null, n number, N number or null. */
static const struct {
    const char *key;
    const char *types;
} schema[] = {
    {"time", "s"},
    {"service", "s"},
    {"trace_id", "s"},
    {"span_id", "s"},
    {"parent_span_id", "S"},
    {"trace_flags", "s"},
    {"x_trace_id", "s"},
    {"method", "s"},
    {"path", "s"},
    {"query", "S"},
    {"status", "I"},
    {"duration_ms", "n"},
    {"route", "S"},
    {"upstream", "S"},
    {"upstream_status", "I"},
    {"upstream_duration_ms", "N"},
    {"bytes_received", "i"},
    {"bytes_sent", "i"},
    {"client_addr", "S"},
    {"user_agent", "S"},
    {"outcome", "s"},
};

static void assert_schema(json_t *line)
{
    for (size_t i = 0; i < ARRAY_SIZE(schema); i++) {
        json_t *v = json_object_get(line, schema[i].key);
        const char *t = schema[i].types;
        ck_assert_msg(v != NULL, "field %s is missing", schema[i].key);
        bool ok = (t[0] == 's' && json_is_string(v)) ||
                  (t[0] == 'S' && (json_is_string(v) || json_is_null(v))) ||
                  (t[0] == 'i' && json_is_integer(v)) ||
                  (t[0] == 'I' && (json_is_integer(v) || json_is_null(v))) ||
                  (t[0] == 'n' && json_is_number(v)) ||
                  (t[0] == 'N' && (json_is_number(v) || json_is_null(v)));
        ck_assert_msg(ok, "field %s has the wrong JSON type (expected %s)", schema[i].key, t);
    }
}

START_TEST(test_root_request_every_field)
{
    struct logline_request *req = make_request("/api/items?token=s3cret&a=1&TOKEN=x&b&tokens=kept");
    json_t *line = write_and_read(req, 200, "ok", NULL);

    assert_schema(line);
    ck_assert_str_eq(str(line, "time"), "2026-11-22T01:55:11.123Z"); /* the start, not the end */
    ck_assert_str_eq(str(line, "service"), "checkout");
    ck_assert_str_eq(str(line, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(str(line, "span_id"), "00f067aa0ba902b7");
    assert_null(line, "parent_span_id"); /* the trace started here */
    ck_assert_str_eq(str(line, "trace_flags"), "01");
    ck_assert_str_eq(str(line, "x_trace_id"), "order-42");
    ck_assert_str_eq(str(line, "method"), "GET");
    ck_assert_str_eq(str(line, "path"), "/api/items");
    ck_assert_str_eq(str(line, "query"), "token=[REDACTED]&a=1&TOKEN=[REDACTED]&b&tokens=kept");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "status")), 200);
    double duration = json_number_value(json_object_get(line, "duration_ms"));
    ck_assert_msg(duration >= 1000 && duration < 60000, "duration_ms %.3f", duration);
    ck_assert_str_eq(str(line, "route"), "api");
    ck_assert_str_eq(str(line, "upstream"), "http://127.0.0.1:9/base");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "upstream_status")), 201);
    double upstream = json_number_value(json_object_get(line, "upstream_duration_ms"));
    ck_assert_msg(upstream > 249.999 && upstream < 250.001, "upstream_duration_ms %.3f", upstream);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "bytes_received")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "bytes_sent")), 2048);
    ck_assert_str_eq(str(line, "client_addr"), "127.0.0.1");
    ck_assert_str_eq(str(line, "user_agent"), "curl/8.0");
    ck_assert_str_eq(str(line, "outcome"), "ok");

    json_t *headers = json_object_get(line, "request_headers");
    ck_assert_msg(json_is_object(headers), "request_headers is not an object");
    ck_assert_uint_eq(json_object_size(headers), 3);
    ck_assert_str_eq(json_string_value(json_object_get(headers, "x-tenant")), "acme");
    ck_assert_str_eq(json_string_value(json_object_get(headers, "authorization")), "[REDACTED]");
    ck_assert(json_is_null(json_object_get(headers, "x-missing")));
    /* Nothing was lossy, so no _raw_b64 member. */
    const char *key;
    json_t *value;
    json_object_foreach(line, key, value)
    {
        ck_assert_msg(strstr(key, "_raw_b64") == NULL, "unexpected %s", key);
    }
    json_decref(line);
    free_request(req);
}
END_TEST

START_TEST(test_continued_trace_has_parent_and_null_query)
{
    struct logline_request *req = make_request("/api");
    req->hop.has_parent = true;
    memcpy(req->hop.parent_span_id, parent_id, 8);
    req->hop.flags = 0x00;
    json_t *line = write_and_read(req, 204, "ok", NULL);

    assert_schema(line);
    ck_assert_str_eq(str(line, "parent_span_id"), "b7ad6b7169203331");
    ck_assert_str_eq(str(line, "trace_flags"), "00");
    ck_assert_str_eq(str(line, "path"), "/api");
    assert_null(line, "query");
    json_decref(line);
    free_request(req);
}
END_TEST

/* An empty query ("/api?") is a query, not none. */
START_TEST(test_empty_query)
{
    struct logline_request *req = make_request("/api?");
    json_t *line = write_and_read(req, 200, "ok", NULL);

    ck_assert_str_eq(str(line, "path"), "/api");
    ck_assert_str_eq(str(line, "query"), "");
    json_decref(line);
    free_request(req);
}
END_TEST

/* A request that got no response and no route: the fields that do not apply are null. */
START_TEST(test_unrouted_request_without_response)
{
    struct logline_request *req = make_request("/nothing");
    req->route = NULL;
    req->headers_done = false;
    req->upstream_started = false;
    req->user_agent = NULL;
    req->client_addr[0] = '\0';
    json_t *line = write_and_read(req, 0, "client_aborted", NULL);

    assert_schema(line);
    assert_null(line, "status");
    assert_null(line, "route");
    assert_null(line, "upstream");
    assert_null(line, "upstream_status");
    assert_null(line, "upstream_duration_ms");
    assert_null(line, "user_agent");
    assert_null(line, "client_addr");
    ck_assert_str_eq(str(line, "outcome"), "client_aborted");
    json_decref(line);
    free_request(req);
}
END_TEST

/* An upstream exchange that never connected (or got no response byte): those times are null,
 * never 0 (0.000 means a reused connection). */
START_TEST(test_times_that_never_happened_are_null)
{
    struct logline_request *req = make_request("/api");
    req->headers_done = false;
    req->upstream_connect_ms = -1;
    req->upstream_ttfb_ms = -1;
    json_t *line = write_and_read(req, 502, "upstream_connect_failed", NULL);

    assert_schema(line);
    ck_assert(json_is_number(json_object_get(line, "upstream_duration_ms")));
    assert_null(line, "upstream_connect_ms");
    assert_null(line, "upstream_ttfb_ms");
    json_decref(line);
    free_request(req);
}
END_TEST

/* A tracestate not forwarded as it came is named in the log; one that was is not mentioned. */
static const struct {
    enum tracehop_tracestate_status status;
    const char *logged; /* NULL: no member */
} tracestate_statuses[] = {
    {TRACEHOP_TS_ABSENT, NULL},
    {TRACEHOP_TS_OK, NULL},
    {TRACEHOP_TS_TRUNCATED, "truncated"},
    {TRACEHOP_TS_INVALID, "invalid"},
    {TRACEHOP_TS_DROPPED, "dropped"},
    {TRACEHOP_TS_DEDUPLICATED, "deduplicated"},
    {(enum tracehop_tracestate_status)99, "changed"}, /* a result added later */
};

START_TEST(test_tracestate_status)
{
    struct logline_request *req = make_request("/api");
    req->hop.tracestate_status = tracestate_statuses[_i].status;
    json_t *line = write_and_read(req, 200, "ok", NULL);

    assert_schema(line);
    json_t *v = json_object_get(line, "tracestate_status");
    if (tracestate_statuses[_i].logged)
        ck_assert_str_eq(json_string_value(v), tracestate_statuses[_i].logged);
    else
        ck_assert_ptr_null(v);
    json_decref(line);
    free_request(req);
}
END_TEST

/* A reused connection (connect 0.000) that got no response byte. */
START_TEST(test_reused_connection_without_a_byte)
{
    struct logline_request *req = make_request("/api");
    req->headers_done = false;
    req->upstream_connect_ms = 0;
    req->upstream_ttfb_ms = -1;
    json_t *line = write_and_read(req, 504, "upstream_timeout", NULL);
    ck_assert(json_is_number(json_object_get(line, "upstream_connect_ms")));
    ck_assert(json_number_value(json_object_get(line, "upstream_connect_ms")) == 0);
    assert_null(line, "upstream_ttfb_ms");
    json_decref(line);
    free_request(req);
}
END_TEST

/* Invalid UTF-8 from the client: U+FFFD in the field and the exact bytes in <name>_raw_b64. */
START_TEST(test_invalid_utf8_is_reversible)
{
    static const char target[] = "/api/\xc3\x28/\xff?q=\xed\xa0\x80";
    static const char agent[] = "agent \xfe\xfe\x01";
    struct logline_request *req = make_request(target);
    req->user_agent = agent;
    static const char *headers[] = {"ac\xe9me", NULL, NULL};
    req->logged_headers = headers;
    char *raw;
    json_t *line = write_and_read(req, 200, "ok", &raw);

    static const struct {
        const char *field;
        const char *decoded;
        const char *bytes;
    } cases[] = {
        {"path", "/api/\xef\xbf\xbd(/\xef\xbf\xbd", "/api/\xc3\x28/\xff"},
        {"query", "q=\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "q=\xed\xa0\x80"},
        {"user_agent", "agent \xef\xbf\xbd\xef\xbf\xbd\x01", agent},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char raw_key[64];
        uint8_t bytes[256];
        ck_assert_str_eq(str(line, cases[i].field), cases[i].decoded);
        snprintf(raw_key, sizeof(raw_key), "%s_raw_b64", cases[i].field);
        json_t *b64 = json_object_get(line, raw_key);
        ck_assert_msg(json_is_string(b64), "%s is missing for %s", raw_key, cases[i].field);
        size_t n = base64_decode(json_string_value(b64), bytes);
        ck_assert_msg(n == strlen(cases[i].bytes) && memcmp(bytes, cases[i].bytes, n) == 0,
                      "%s does not decode to the raw bytes", raw_key);
    }
    /* The same inside request_headers. */
    json_t *rh = json_object_get(line, "request_headers");
    ck_assert_str_eq(json_string_value(json_object_get(rh, "x-tenant")), "ac\xef\xbf\xbdme");
    json_t *b64 = json_object_get(rh, "x-tenant_raw_b64");
    ck_assert_msg(json_is_string(b64), "request_headers has no x-tenant_raw_b64");
    uint8_t bytes[64];
    size_t n = base64_decode(json_string_value(b64), bytes);
    ck_assert(n == 5 && memcmp(bytes, "ac\xe9me", 5) == 0);
    /* The control character stays escaped in the raw line. */
    ck_assert_msg(strstr(raw, "\\u0001") != NULL, "U+0001 is not escaped: %s", raw);
    free(raw);
    json_decref(line);
    free_request(req);
}
END_TEST

/* Control characters and quotes from the client never break the line. */
START_TEST(test_control_characters_escaped)
{
    struct logline_request *req = make_request("/api/\"quoted\"\\x?a=\x1b[31m\r\n{\"fake\":1}");
    req->user_agent = "ua\twith\x7f"
                      "del";
    strcpy(req->hop.x_trace_id, "x\"y");
    req->hop.x_trace_id_len = 3;
    char *raw;
    json_t *line = write_and_read(req, 200, "ok", &raw);

    ck_assert_str_eq(str(line, "path"), "/api/\"quoted\"\\x");
    ck_assert_str_eq(str(line, "query"), "a=\x1b[31m\r\n{\"fake\":1}");
    ck_assert_str_eq(str(line, "user_agent"), "ua\twith\x7f"
                                              "del");
    ck_assert_str_eq(str(line, "x_trace_id"), "x\"y");
    ck_assert_msg(json_object_get(line, "fake") == NULL, "injected a member");
    free(raw);
    json_decref(line);
    free_request(req);
}
END_TEST

static Suite *logline_suite(void)
{
    Suite *s = suite_create("logline");
    TCase *tc = tcase_create("line");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_root_request_every_field);
    tcase_add_test(tc, test_continued_trace_has_parent_and_null_query);
    tcase_add_test(tc, test_empty_query);
    tcase_add_test(tc, test_unrouted_request_without_response);
    tcase_add_test(tc, test_times_that_never_happened_are_null);
    tcase_add_test(tc, test_reused_connection_without_a_byte);
    tcase_add_loop_test(tc, test_tracestate_status, 0, (int)ARRAY_SIZE(tracestate_statuses));
    tcase_add_test(tc, test_invalid_utf8_is_reversible);
    tcase_add_test(tc, test_control_characters_escaped);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(logline_suite());
}
