/* SPDX-License-Identifier: MIT */
/*
 * The errors tracehop answers itself (docs/configuration.md, `limits` and `routes[]`;
 * docs/security.md, Request hygiene): 404 no route, 502 upstream refused, 504 upstream timeout,
 * 400/501 for requests it must not pass on (smuggling shapes, bad names, absolute-form), 431
 * headers too large, 413 body too large. Every one must carry traceparent and X-Trace-ID, a JSON
 * body naming the same ids, and a matching access-log line; none may reach the upstream.
 *
 * Malformed requests go through raw sockets, since libcurl would refuse to send most of them.
 *
 * With the upstream down, the per-request warning is collapsed (docs/operations.md,
 * "Diagnostics"): one line with a request's ids, then a "repeated N more times" count.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_HEADER_BYTES 2048
#define MAX_BODY_BYTES   (1024 * 1024)

static struct harness_env env;

static void setup(void)
{
    char config[2048];

    snprintf(
        config, sizeof(config),
        "{\n"
        "  \"limits\": {\"max_header_bytes\": %d, \"max_body_bytes\": %d},\n"
        "  \"routes\": [\n"
        "    {\"name\": \"api\", \"match\": {\"path_prefix\": \"/api\"},\n"
        "     \"upstream\": \"{ECHO}\"},\n"
        "    {\"name\": \"slow\", \"match\": {\"path_prefix\": \"/delay\"},\n"
        "     \"upstream\": \"{ECHO}\", \"timeout_ms\": 300},\n"
        "    {\"name\": \"down\", \"match\": {\"path_prefix\": \"/down\"},\n"
        "     \"upstream\": \"http://127.0.0.1:%u\", \"connect_timeout_ms\": 2000},\n"
        "    {\"match\": {\"path_prefix\": \"/truncate\"}, \"upstream\": \"{ECHO}\"},\n"
        "    {\"match\": {\"path_prefix\": \"/truncate-chunked\"}, \"upstream\": \"{ECHO}\"},\n"
        "    {\"match\": {\"path_prefix\": \"/hang-up\"}, \"upstream\": \"{ECHO}\"},\n"
        "    {\"match\": {\"path_prefix\": \"/download\"}, \"upstream\": \"{ECHO}\"}\n"
        "  ]\n"
        "}\n",
        MAX_HEADER_BYTES, MAX_BODY_BYTES, harness_closed_port());
    ck_assert_int_eq(harness_env_start(&env, config), 0);
}

static void teardown(void)
{
    harness_env_stop(&env);
}

/*
 * Check one error response: status, JSON body {error, message, trace_id, span_id, x_trace_id}
 * agreeing with the traceparent and X-Trace-ID headers, and the access-log line (found by the
 * span id) with this status and outcome. Returns the log line.
 */
static json_t *check_error(const struct harness_response *rs, long status, const char *outcome)
{
    char trace_id[33], span_id[17], flags[3];

    ck_assert_msg(rs->status == status, "expected status %ld, got %ld (%s)", status, rs->status,
                  rs->status ? "" : rs->error);
    const char *tp = harness_header(rs, "traceparent");
    ck_assert_msg(harness_traceparent_split(tp, trace_id, span_id, flags),
                  "%ld response: traceparent header '%s' missing or invalid", status,
                  tp ? tp : "(none)");
    const char *xid = harness_header(rs, "X-Trace-ID");
    ck_assert_msg(xid != NULL, "%ld response without X-Trace-ID", status);

    const char *type = harness_header(rs, "Content-Type");
    ck_assert_msg(type && strncmp(type, "application/json", 16) == 0,
                  "%ld response: Content-Type '%s'", status, type ? type : "(none)");
    json_t *body = harness_response_json(rs);
    ck_assert_msg(body != NULL, "%ld response body is not JSON: %s", status,
                  rs->body ? rs->body : "");
    const char *error = harness_json_str(body, "error");
    const char *message = harness_json_str(body, "message");
    ck_assert_msg(error && *error, "error body lacks \"error\"");
    ck_assert_msg(message && *message, "error body lacks \"message\"");
    ck_assert_str_eq(harness_json_str(body, "trace_id"), trace_id);
    ck_assert_str_eq(harness_json_str(body, "span_id"), span_id);
    ck_assert_str_eq(harness_json_str(body, "x_trace_id"), xid);
    json_decref(body);

    json_t *log = harness_log_line(&env.daemon, "span_id", span_id);
    ck_assert_msg(log != NULL, "no access-log line for the %ld response (span %s)", status,
                  span_id);
    const char *schema = harness_log_schema_error(log);
    ck_assert_msg(schema == NULL, "access-log line of the %ld response: %s", status, schema);
    ck_assert_int_eq(harness_json_int(log, "status", 0), status);
    ck_assert_str_eq(harness_json_str(log, "outcome"), outcome);
    ck_assert_str_eq(harness_json_str(log, "trace_id"), trace_id);
    ck_assert_str_eq(harness_json_str(log, "x_trace_id"), xid);
    ck_assert_str_eq(harness_json_str(log, "trace_flags"), flags);
    /* tracehop's own error body is bytes sent like any other */
    ck_assert_int_eq(harness_json_int(log, "bytes_sent", -1), (json_int_t)rs->body_len);
    return log;
}

/*
 * Assert that no request whose target contains `id` reached the upstream. A sentinel request
 * sent afterwards is waited for first, so that anything forwarded earlier has been recorded.
 */
static void assert_never_reached_upstream(const char *id)
{
    char sentinel[64], sentinel_id[17];
    struct harness_response rs;
    size_t i;
    json_t *rec;

    harness_random_hex(sentinel_id, 16);
    snprintf(sentinel, sizeof(sentinel), "/api/sentinel-%s", sentinel_id);
    struct harness_request rq = {.target = sentinel};
    harness_http(env.daemon.port, &rq, &rs);
    ck_assert_int_eq(rs.status, 200);
    harness_response_free(&rs);
    struct harness_field_match m = {"target", sentinel};
    json_t *seen = harness_jsonl_wait_one(env.echo.record_path, harness_match_field, &m);
    ck_assert_ptr_nonnull(seen);
    json_decref(seen);

    json_t *all = harness_jsonl_read(env.echo.record_path);
    json_array_foreach(all, i, rec)
    {
        const char *target = harness_json_str(rec, "target");
        ck_assert_msg(!target || !strstr(target, id), "the upstream received %s", target);
    }
    json_decref(all);
}

/* --- errors about routing and the upstream ----------------------------------------------- */

START_TEST(test_no_route_is_404_with_trace_headers)
{
    char id[17], target[64], trace_id[33], parent_id[17], tp[80];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/nothing/%s", id);
    harness_random_hex(trace_id, 32);
    harness_random_hex(parent_id, 16);
    snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", trace_id, parent_id);
    const char *headers[] = {tp, "X-Trace-ID: caller-chose-this", NULL};
    struct harness_request rq = {.target = target, .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    json_t *log = check_error(&rs, 404, "no_route");
    /* The error continues the caller's trace like any other response. */
    ck_assert_str_eq(harness_json_str(log, "trace_id"), trace_id);
    ck_assert_str_eq(harness_json_str(log, "parent_span_id"), parent_id);
    ck_assert_str_eq(harness_header(&rs, "X-Trace-ID"), "caller-chose-this");
    ck_assert_str_eq(harness_json_str(log, "path"), target);
    ck_assert(harness_json_is_null(log, "route"));
    ck_assert(harness_json_is_null(log, "upstream_status"));
    json_decref(log);
    harness_response_free(&rs);
    assert_never_reached_upstream(id);
}
END_TEST

START_TEST(test_upstream_refused_is_502)
{
    char id[17], target[64];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/down/%s", id);
    struct harness_request rq = {.target = target};
    harness_http(env.daemon.port, &rq, &rs);
    json_t *log = check_error(&rs, 502, "upstream_connect_failed");
    ck_assert_str_eq(harness_json_str(log, "route"), "down");
    ck_assert(harness_json_is_null(log, "upstream_status"));
    /* No connection, no response byte: null, not a misleading 0 */
    ck_assert(!harness_json_is_null(log, "upstream_duration_ms"));
    ck_assert(harness_json_is_null(log, "upstream_connect_ms"));
    ck_assert(harness_json_is_null(log, "upstream_ttfb_ms"));
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_upstream_timeout_is_504)
{
    char id[17], target[64];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/delay/3000?id=%s", id);
    struct harness_request rq = {.target = target};
    harness_http(env.daemon.port, &rq, &rs);
    ck_assert_msg(rs.total_s < 2.5, "the 504 took %.3f s for a 300 ms route timeout", rs.total_s);
    json_t *log = check_error(&rs, 504, "upstream_timeout");
    ck_assert_str_eq(harness_json_str(log, "route"), "slow");
    double duration = json_number_value(json_object_get(log, "duration_ms"));
    ck_assert_msg(duration >= 250 && duration < 2500, "duration_ms %.3f for a 300 ms timeout",
                  duration);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

/* --- the upstream failing ---------------------------------------------------------------- */

START_TEST(test_upstream_hanging_up_before_a_response_is_502)
{
    char id[17], target[64];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/hang-up?id=%s", id);
    struct harness_request rq = {.target = target};
    harness_http(env.daemon.port, &rq, &rs);
    json_t *log = check_error(&rs, 502, "upstream_reset");
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

/*
 * The upstream breaks the connection after 300000 of the body bytes it announced. The client
 * must not get a response that looks complete: either a 502 (if tracehop saw the failure
 * before it started answering) or an aborted connection. The log says upstream_reset.
 */
static void check_truncated(const char *target)
{
    struct harness_response rs;
    struct harness_request rq = {.target = target, .discard_body = true};

    harness_http(env.daemon.port, &rq, &rs);
    if (rs.result == CURLE_OK) {
        ck_assert_msg(rs.status != 200,
                      "%s: a truncated upstream body reached the client as a "
                      "complete 200 response of %zu bytes",
                      target, rs.body_len);
        json_t *log = check_error(&rs, 502, "upstream_reset");
        json_decref(log);
    } else {
        ck_assert_msg(rs.body_len <= 300000, "%s: %zu bytes arrived, the upstream sent 300000",
                      target, rs.body_len);
        json_t *log = harness_log_line(&env.daemon, "query", strchr(target, '?') + 1);
        ck_assert_msg(log != NULL, "%s: no access-log line", target);
        ck_assert_str_eq(harness_json_str(log, "outcome"), "upstream_reset");
        json_decref(log);
    }
    harness_response_free(&rs);
}

START_TEST(test_upstream_truncating_a_content_length_body_is_not_passed_off_as_complete)
{
    char id[17], target[96];

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/truncate?bytes=1000000&after=300000&id=%s", id);
    check_truncated(target);
}
END_TEST

START_TEST(test_upstream_truncating_a_chunked_body_is_not_passed_off_as_complete)
{
    char id[17], target[96];

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/truncate-chunked?after=300000&id=%s", id);
    check_truncated(target);
}
END_TEST

START_TEST(test_client_hanging_up_mid_response_is_logged_as_client_aborted)
{
    char id[17], target[96], trace_id[33], span_id[17], flags[3];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/download?bytes=104857600&id=%s", id);
    struct harness_request rq = {
        .target = target, .discard_body = true, .abort_after_bytes = 1024 * 1024};
    harness_http(env.daemon.port, &rq, &rs);
    ck_assert_int_eq(rs.result, CURLE_WRITE_ERROR);
    ck_assert(
        harness_traceparent_split(harness_header(&rs, "traceparent"), trace_id, span_id, flags));
    json_t *log = harness_log_line(&env.daemon, "span_id", span_id);
    ck_assert_msg(log != NULL, "no access-log line for the aborted download");
    ck_assert_str_eq(harness_json_str(log, "outcome"), "client_aborted");
    ck_assert_msg(harness_json_int(log, "bytes_sent", -1) < 104857600,
                  "bytes_sent says the whole body went out");
    json_decref(log);
    harness_response_free(&rs);

    /* The daemon is still fine. */
    struct harness_request again = {.target = "/download?bytes=1000"};
    harness_http(env.daemon.port, &again, &rs);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_uint_eq(rs.body_len, 1000);
    harness_response_free(&rs);
}
END_TEST

/* --- requests tracehop must not pass on -------------------------------------------------- */

static const struct {
    const char *name;
    const char *request; /* {ID}: replaced by a unique id, part of the target */
    long status;
} bad_requests[] = {
    {"conflicting Content-Length",
     "POST /api/cl-{ID} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n"
     "Content-Length: 6\r\n\r\nhello!",
     400},
    {"Transfer-Encoding: gzip, chunked",
     "POST /api/te-{ID} HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     "5\r\nhello\r\n0\r\n\r\n",
     501},
    {"Content-Length with Transfer-Encoding",
     "POST /api/clte-{ID} HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n"
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400},
    {"header name with a space", "GET /api/name-{ID} HTTP/1.1\r\nHost: a.example\r\nX Y: z\r\n\r\n",
     400},
    {"absolute-form target",
     "GET http://a.example/api/abs-{ID} HTTP/1.1\r\nHost: a.example\r\n\r\n", 400},
    {"space in the target", "GET /api/sp-{ID}/a b HTTP/1.1\r\nHost: a.example\r\n\r\n", 400},
    {"HTTP/1.1 without Host", "GET /api/nohost-{ID} HTTP/1.1\r\nX-A: 1\r\n\r\n", 400},
    {"obsolete line folding",
     "GET /api/fold-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Fold: a\r\n  b\r\nX-After: 1\r\n\r\n",
     400},
    {"obsolete line folding in the last field",
     "GET /api/fold-last-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Fold: a\r\n\tb\r\n\r\n", 400},
    {"NUL in a header value",
     "GET /api/nul-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Nul: a{NUL}b\r\n\r\n", 400},
    {"DEL in a header value",
     "GET /api/del-{ID} HTTP/1.1\r\nHost: a.example\r\nX-Del: a\x7f\r\n\r\n", 400},
    {"CONNECT", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nX-Id: {ID}\r\n\r\n", 400},
    {"asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: a.example\r\nX-Id: {ID}\r\n\r\n", 400},
};

START_TEST(test_malformed_request_is_refused)
{
    char id[17], request[512];
    struct harness_response rs;

    harness_random_hex(id, 16);
    size_t n = 0;
    for (const char *p = bad_requests[_i].request; *p && n + 17 < sizeof(request);) {
        if (strncmp(p, "{ID}", 4) == 0) {
            memcpy(request + n, id, 16);
            n += 16;
            p += 4;
        } else if (strncmp(p, "{NUL}", 5) == 0) {
            request[n++] = '\0';
            p += 5;
        } else {
            request[n++] = *p++;
        }
    }
    int rc = harness_raw(env.daemon.port, request, n, false, 10000, &rs);
    ck_assert_msg(rc == 0, "%s: no response (%s)", bad_requests[_i].name, rs.error);
    ck_assert_msg(rs.status == bad_requests[_i].status, "%s: expected %ld, got %ld",
                  bad_requests[_i].name, bad_requests[_i].status, rs.status);
    json_t *log = check_error(&rs, bad_requests[_i].status, "bad_request");
    json_decref(log);
    harness_response_free(&rs);
    assert_never_reached_upstream(id);
}
END_TEST

/* --- protocol upgrades ---------------------------------------------------------------------- */

/* A WebSocket handshake gets tracehop's 501, never a plain 200 from an application that did not
 * see its Upgrade field; the upstream never sees it. */
START_TEST(test_websocket_handshake_is_refused_with_501)
{
    char id[17], request[512];
    struct harness_response rs;

    harness_random_hex(id, 16);
    int n = snprintf(request, sizeof(request),
                     "GET /api/ws-%s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     id);
    int rc = harness_raw(env.daemon.port, request, (size_t)n, false, 10000, &rs);
    ck_assert_msg(rc == 0, "no response (%s)", rs.error);
    ck_assert_msg(harness_header(&rs, "Upgrade") == NULL, "an Upgrade header in the 501");
    json_t *body = harness_response_json(&rs);
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(harness_json_str(body, "error"), "upgrade_not_supported");
    ck_assert_msg(strstr(harness_json_str(body, "message"), "\"websocket\""),
                  "the message does not name the protocol: %s", harness_json_str(body, "message"));
    json_decref(body);
    json_t *log = check_error(&rs, 501, "upgrade_not_supported");
    ck_assert_str_eq(harness_json_str(log, "route"), "api");
    ck_assert(harness_json_is_null(log, "upstream_status"));
    json_decref(log);
    harness_response_free(&rs);
    assert_never_reached_upstream(id);
}
END_TEST

/* An offer of cleartext HTTP/2 (curl --http2 on http://) is ignored as RFC 9110 allows: the
 * request is answered over HTTP/1.1, and the upstream sees neither Upgrade nor HTTP2-Settings. */
START_TEST(test_h2c_upgrade_offer_is_ignored)
{
    char id[17], request[512];
    struct harness_response rs;

    harness_random_hex(id, 16);
    int n = snprintf(request, sizeof(request),
                     "GET /api/h2c HTTP/1.1\r\nHost: x\r\nX-Test-ID: %s\r\n"
                     "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                     "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
                     id);
    int rc = harness_raw(env.daemon.port, request, (size_t)n, false, 10000, &rs);
    ck_assert_msg(rc == 0, "no response (%s)", rs.error);
    ck_assert_int_eq(rs.status, 200);
    harness_response_free(&rs);
    json_t *rec = harness_echo_record(&env.echo, "X-Test-ID", id);
    ck_assert_ptr_nonnull(rec);
    ck_assert_ptr_null(harness_record_header(rec, "Upgrade"));
    ck_assert_ptr_null(harness_record_header(rec, "HTTP2-Settings"));
    json_decref(rec);
}
END_TEST

/* --- limits --------------------------------------------------------------------------------- */

/* A request with one header of `value_len` bytes; the status and outcome tracehop must give. */
static void check_big_header(size_t value_len)
{
    char id[17], target[64];
    struct harness_response rs;
    char *big = malloc(value_len + 16);

    ck_assert_ptr_nonnull(big);
    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/big-header-%s", id);
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'x', value_len);
    big[7 + value_len] = '\0';
    const char *headers[] = {big, NULL};
    struct harness_request rq = {.target = target, .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    json_t *log = check_error(&rs, 431, "too_large");
    json_decref(log);
    harness_response_free(&rs);
    free(big);
    assert_never_reached_upstream(id);
}

START_TEST(test_headers_over_max_header_bytes_are_431)
{
    check_big_header(MAX_HEADER_BYTES + 1000);
}
END_TEST

START_TEST(test_headers_beyond_mhd_buffer_get_mhd_431_and_a_log_line)
{
    /*
     * Known limit (docs/security.md): headers larger than libmicrohttpd's connection buffer
     * (limits.max_header_bytes + 8 KiB) are answered by libmicrohttpd itself: a bare 431 with
     * no trace headers. tracehop still writes the access-log line and a diagnostic.
     */
    char id[17], target[64];
    struct harness_response rs;
    const size_t value_len = 40000;
    char *big = malloc(value_len + 16);

    ck_assert_ptr_nonnull(big);
    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/huge-header-%s", id);
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'x', value_len);
    big[7 + value_len] = '\0';
    const char *headers[] = {big, NULL};
    struct harness_request rq = {.target = target, .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    ck_assert_int_eq(rs.status, 431);
    char path[64];
    snprintf(path, sizeof(path), "/api/huge-header-%s", id);
    json_t *log = harness_log_line(&env.daemon, "path", path);
    ck_assert_msg(log != NULL, "no access-log line for the 431");
    ck_assert_str_eq(harness_json_str(log, "outcome"), "too_large");
    ck_assert_int_eq(harness_json_int(log, "status", 0), 431);
    json_decref(log);
    struct harness_field_match diag = {"message", "libmicrohttpd answered a request itself"};
    json_t *line =
        harness_jsonl_wait_one(env.daemon.stderr_path, harness_match_field_prefix, &diag);
    ck_assert_msg(line != NULL, "no diagnostic for libmicrohttpd's own 431");
    json_decref(line);
    harness_response_free(&rs);
    free(big);
    assert_never_reached_upstream(id);
}
END_TEST

START_TEST(test_target_beyond_mhd_buffer_is_refused_with_a_diagnostic)
{
    /*
     * Known limit (docs/security.md): a request line larger than libmicrohttpd's buffer is
     * refused by libmicrohttpd before any callback (414, no trace headers, no access-log
     * line). tracehop reports it as a diagnostic on stderr; it never reaches the upstream.
     */
    const size_t target_len = 40000; /* beyond libmicrohttpd's connection buffer */
    char id[17];
    struct harness_response rs;
    char *request = malloc(target_len + 128);

    ck_assert_ptr_nonnull(request);
    harness_random_hex(id, 16);
    int n = sprintf(request, "GET /api/long-%s?q=", id);
    memset(request + n, 'q', target_len);
    n += (int)target_len;
    n += sprintf(request + n, " HTTP/1.1\r\nHost: a.example\r\n\r\n");
    ck_assert_int_eq(harness_raw(env.daemon.port, request, (size_t)n, false, 10000, &rs), 0);
    ck_assert_int_eq(rs.status, 414);
    struct harness_field_match diag = {"message", "libmicrohttpd answered a request itself"};
    json_t *line =
        harness_jsonl_wait_one(env.daemon.stderr_path, harness_match_field_prefix, &diag);
    ck_assert_msg(line != NULL, "no diagnostic for libmicrohttpd's own 414");
    json_decref(line);
    harness_response_free(&rs);
    free(request);
    assert_never_reached_upstream(id);
}
END_TEST

START_TEST(test_content_length_over_max_body_bytes_is_413)
{
    char id[17], request[512];
    struct harness_response rs;

    harness_random_hex(id, 16);
    /* Headers only: tracehop must answer from the declared length, without reading a body. */
    int n = snprintf(request, sizeof(request),
                     "POST /api/big-body-%s HTTP/1.1\r\nHost: a.example\r\n"
                     "Content-Length: %d\r\n\r\n",
                     id, MAX_BODY_BYTES + 1);
    ck_assert_int_eq(harness_raw(env.daemon.port, request, (size_t)n, false, 10000, &rs), 0);
    json_t *log = check_error(&rs, 413, "too_large");
    json_decref(log);
    harness_response_free(&rs);
    assert_never_reached_upstream(id);
}
END_TEST

START_TEST(test_content_length_over_max_body_bytes_is_413_before_100_continue)
{
    char id[17], target[64];
    struct harness_response rs;
    size_t size = MAX_BODY_BYTES + 1;
    char *body = calloc(1, size);

    ck_assert_ptr_nonnull(body);
    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/api/expect-%s", id);
    const char *headers[] = {"Expect: 100-continue", NULL};
    struct harness_request rq = {
        .method = "POST", .target = target, .headers = headers, .body = body, .body_len = size};
    harness_http(env.daemon.port, &rq, &rs);
    json_t *log = check_error(&rs, 413, "too_large");
    json_decref(log);
    harness_response_free(&rs);
    free(body);
    assert_never_reached_upstream(id);
}
END_TEST

START_TEST(test_chunked_body_over_max_body_bytes_is_413)
{
    const size_t chunk = 64 * 1024, chunks = 24; /* 1.5 MiB against a 1 MiB limit */
    char id[17], head[256];
    struct harness_response rs;

    harness_random_hex(id, 16);
    int n = snprintf(head, sizeof(head),
                     "POST /api/big-chunked-%s HTTP/1.1\r\nHost: a.example\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     id);
    size_t cap = (size_t)n + chunks * (chunk + 16) + 8, len = (size_t)n;
    char *request = malloc(cap);
    ck_assert_ptr_nonnull(request);
    memcpy(request, head, (size_t)n);
    for (size_t i = 0; i < chunks; i++) {
        len += (size_t)snprintf(request + len, cap - len, "%zx\r\n", chunk);
        memset(request + len, 'b', chunk);
        len += chunk;
        memcpy(request + len, "\r\n", 2);
        len += 2;
    }
    memcpy(request + len, "0\r\n\r\n", 5);
    len += 5;
    int rc = harness_raw(env.daemon.port, request, len, false, 10000, &rs);
    ck_assert_msg(rc == 0, "no response to a chunked body over limits.max_body_bytes: %s",
                  rs.error);
    json_t *log = check_error(&rs, 413, "too_large");
    json_decref(log);
    harness_response_free(&rs);
    free(request);
}
END_TEST

/* Every request to a dead upstream is accounted for on stderr: printed once per interval (with a
 * trace_id), the rest counted; the count comes out at the latest when the daemon stops. */
START_TEST(test_upstream_down_warning_is_collapsed)
{
    enum { REQUESTS = 20 };
    struct harness_env down = {0};
    char config[512], warning[128];
    unsigned port = harness_closed_port();

    snprintf(config, sizeof(config),
             "{\"limits\": {\"drain_delay_ms\": 0},"
             " \"routes\": [{\"name\": \"down\", \"upstream\": \"http://127.0.0.1:%u\"}]}",
             port);
    ck_assert_int_eq(harness_env_start(&down, config), 0);
    for (int i = 0; i < REQUESTS; i++) {
        struct harness_request rq = {.target = "/down"};
        struct harness_response rs;
        harness_http(down.daemon.port, &rq, &rs);
        ck_assert_int_eq(rs.status, 502);
        harness_response_free(&rs);
    }
    ck_assert_int_eq(harness_daemon_stop(&down.daemon), 0);

    snprintf(warning, sizeof(warning), "upstream http://127.0.0.1:%u: ", port);
    json_t *lines = harness_jsonl_read(down.daemon.stderr_path);
    unsigned long printed = 0, suppressed = 0, count_lines = 0;
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line)
    {
        const char *message = harness_json_str(line, "message");
        const char *repeated = message ? strstr(message, "\" repeated ") : NULL;
        if (message && strncmp(message, warning, strlen(warning)) == 0) {
            ck_assert_str_eq(harness_json_str(line, "level"), "warn");
            ck_assert_msg(harness_is_lower_hex(harness_json_str(line, "trace_id"), 32),
                          "a printed warning without its trace_id");
            printed++;
        } else if (message && message[0] == '"' &&
                   strncmp(message + 1, warning, strlen(warning)) == 0 && repeated) {
            unsigned long n = strtoul(repeated + strlen("\" repeated "), NULL, 10);
            ck_assert_msg(strstr(repeated, " (suppressed)") != NULL, "%s", message);
            suppressed += n;
            count_lines++;
        }
    }
    if (printed + suppressed != REQUESTS || count_lines == 0)
        harness_daemon_dump_stderr(&down.daemon);
    ck_assert_uint_eq(printed + suppressed, REQUESTS);
    ck_assert_uint_ge(count_lines, 1);
    ck_assert_uint_lt(printed, REQUESTS);
    json_decref(lines);
    harness_env_stop(&down);
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("tracehop_answers_itself");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_no_route_is_404_with_trace_headers);
    tcase_add_test(tc, test_upstream_refused_is_502);
    tcase_add_test(tc, test_upstream_timeout_is_504);
    tcase_add_test(tc, test_upstream_hanging_up_before_a_response_is_502);
    tcase_add_test(tc,
                   test_upstream_truncating_a_content_length_body_is_not_passed_off_as_complete);
    tcase_add_test(tc, test_upstream_truncating_a_chunked_body_is_not_passed_off_as_complete);
    tcase_add_test(tc, test_client_hanging_up_mid_response_is_logged_as_client_aborted);
    tcase_add_loop_test(tc, test_malformed_request_is_refused, 0,
                        (int)(sizeof(bad_requests) / sizeof(bad_requests[0])));
    tcase_add_test(tc, test_websocket_handshake_is_refused_with_501);
    tcase_add_test(tc, test_h2c_upgrade_offer_is_ignored);
    tcase_add_test(tc, test_headers_over_max_header_bytes_are_431);
    tcase_add_test(tc, test_headers_beyond_mhd_buffer_get_mhd_431_and_a_log_line);
    tcase_add_test(tc, test_target_beyond_mhd_buffer_is_refused_with_a_diagnostic);
    tcase_add_test(tc, test_content_length_over_max_body_bytes_is_413);
    tcase_add_test(tc, test_content_length_over_max_body_bytes_is_413_before_100_continue);
    tcase_add_test(tc, test_chunked_body_over_max_body_bytes_is_413);
    suite_add_tcase(s, tc);

    tc = tcase_create("collapsed_diagnostics");
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_upstream_down_warning_is_collapsed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(errors_suite());
}
