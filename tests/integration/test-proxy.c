/* SPDX-License-Identifier: MIT */
/*
 * Proxying (docs/security.md, Request hygiene and Upstream side; hop-by-hop fields as in RFC 9110
 * 7.6.1): the target byte for byte, methods, bodies both ways, hop-by-hop headers in both
 * directions, repeated headers, X-Forwarded-*, no decompression, no redirect following, keep-alive,
 * and the upstream URL forms of docs/configuration.md (`routes[]`: unix socket, base path). Each
 * request carries a unique X-Test-ID header, which is how its upstream record is found.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

static struct harness_env env;

static void setup(void)
{
    ck_assert_int_eq(harness_env_start(&env, NULL), 0);
}

static void teardown(void)
{
    harness_env_stop(&env);
}

/* A fresh "X-Test-ID: <hex>" line in `line`; the id alone in `id`. */
static void new_test_id(char id[17], char line[40])
{
    harness_random_hex(id, 16);
    snprintf(line, 40, "X-Test-ID: %s", id);
}

/* The upstream record of the request with this test id; fails the test if none arrives. */
static json_t *record_of(const char *id)
{
    json_t *r = harness_echo_record(&env.echo, "X-Test-ID", id);
    ck_assert_msg(r != NULL, "the upstream never received the request with X-Test-ID %s", id);
    return r;
}

/* The access-log line of a response, found by the span id of its traceparent. */
static json_t *log_of(const struct harness_response *rs)
{
    char trace_id[33], span_id[17], flags[3];
    const char *tp = harness_header(rs, "traceparent");

    ck_assert_msg(harness_traceparent_split(tp, trace_id, span_id, flags),
                  "response traceparent '%s' is not valid", tp ? tp : "(none)");
    json_t *line = harness_log_line(&env.daemon, "span_id", span_id);
    ck_assert_msg(line != NULL, "no access-log line with span_id %s", span_id);
    return line;
}

static void assert_ok(const struct harness_response *rs, long status)
{
    ck_assert_msg(rs->result == CURLE_OK, "request failed: %s", rs->error);
    ck_assert_int_eq(rs->status, status);
}

/* --- the request target ------------------------------------------------------------------ */

static const struct {
    const char *target, *path, *query;
} targets[] = {
    {"/a%2Fb/../c?x=1&x=2&y=%20", "/a%2Fb/../c", "x=1&x=2&y=%20"},
    {"/p?&&a&b=&=c&d=%zz;e", "/p", "&&a&b=&=c&d=%zz;e"},
    {"/%7Euser/./x//y?q=%2F%3F&empty=", "/%7Euser/./x//y", "q=%2F%3F&empty="},
    {"/x?a=b?c", "/x", "a=b?c"},
    {"/only/a/path/", "/only/a/path/", NULL},
    {"/caps/%2e%2E/%C3%A9?K=V", "/caps/%2e%2E/%C3%A9", "K=V"},
};

START_TEST(test_request_target_is_forwarded_byte_identical)
{
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.target = targets[_i].target, .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = record_of(id);
    ck_assert_str_eq(harness_json_str(rec, "target"), targets[_i].target);
    json_t *log = log_of(&rs);
    ck_assert_str_eq(harness_json_str(log, "path"), targets[_i].path);
    if (targets[_i].query)
        ck_assert_str_eq(harness_json_str(log, "query"), targets[_i].query);
    else
        ck_assert(harness_json_is_null(log, "query"));
    json_decref(rec);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_request_target_is_forwarded_byte_identical_from_raw_socket)
{
    char id[17], target[128], request[512];
    struct harness_response rs;

    harness_random_hex(id, 16);
    snprintf(target, sizeof(target), "/a%%2Fb/../c?x=1&x=2&y=%%20&raw=%s", id);
    int n = snprintf(request, sizeof(request),
                     "GET %s HTTP/1.1\r\nHost: raw.example\r\nConnection: close\r\n\r\n", target);
    ck_assert_int_eq(harness_raw(env.daemon.port, request, (size_t)n, false, 10000, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    struct harness_field_match m = {"target", target};
    json_t *rec = harness_jsonl_wait_one(env.echo.record_path, harness_match_field, &m);
    ck_assert_msg(rec != NULL, "the upstream never received the target %s byte for byte", target);
    json_decref(rec);
    harness_response_free(&rs);
}
END_TEST

/* --- methods -------------------------------------------------------------------------------- */

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};

START_TEST(test_method_is_forwarded_as_received)
{
    const char *method = methods[_i];
    char id[17], id_line[40], body[64];
    struct harness_response rs;
    bool with_body =
        strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;

    new_test_id(id, id_line);
    snprintf(body, sizeof(body), "payload of %s", method);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.method = method,
                                 .target = "/methods",
                                 .headers = headers,
                                 .body = with_body ? body : NULL,
                                 .body_len = with_body ? strlen(body) : 0};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = record_of(id);
    ck_assert_str_eq(harness_json_str(rec, "method"), method);
    ck_assert_str_eq(harness_json_str(rec, "body"), with_body ? body : "");
    json_t *log = log_of(&rs);
    ck_assert_str_eq(harness_json_str(log, "method"), method);
    ck_assert_int_eq(harness_json_int(log, "status", 0), 200);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(rec);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_head_gets_the_content_length_of_the_get)
{
    char id[17], id_line[40];
    struct harness_response get, head;

    new_test_id(id, id_line);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.target = "/download?bytes=12345"};
    harness_http(env.daemon.port, &rq, &get);
    assert_ok(&get, 200);
    ck_assert_str_eq(harness_header(&get, "Content-Length"), "12345");
    ck_assert_uint_eq(get.body_len, 12345);

    rq = (struct harness_request){
        .method = "HEAD", .target = "/download?bytes=12345", .headers = headers};
    harness_http(env.daemon.port, &rq, &head);
    assert_ok(&head, 200);
    ck_assert_msg(harness_header(&head, "Content-Length") != NULL,
                  "HEAD response has no Content-Length");
    ck_assert_str_eq(harness_header(&head, "Content-Length"), "12345");
    ck_assert_uint_eq(head.body_len, 0);
    json_t *rec = record_of(id);
    ck_assert_str_eq(harness_json_str(rec, "method"), "HEAD");
    json_t *log = log_of(&head);
    ck_assert_str_eq(harness_json_str(log, "method"), "HEAD");
    ck_assert_int_eq(harness_json_int(log, "status", 0), 200);
    json_decref(rec);
    json_decref(log);
    harness_response_free(&get);
    harness_response_free(&head);
}
END_TEST

/* --- bodies ------------------------------------------------------------------------------- */

static void check_upload(bool chunked)
{
    const size_t size = 1024 * 1024 + 17;
    char id[17], id_line[40], hash[17];
    struct harness_response rs;
    char *body = malloc(size);

    ck_assert_ptr_nonnull(body);
    for (size_t i = 0; i < size; i++)
        body[i] = (char)((i * 7919u + (i >> 11)) & 0xff);
    new_test_id(id, id_line);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.method = "POST",
                                 .target = "/upload",
                                 .headers = headers,
                                 .body = body,
                                 .body_len = size,
                                 .chunked = chunked};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    harness_hash_hex(harness_fnv1a64(HARNESS_FNV_OFFSET, body, size), hash);
    json_t *answer = harness_response_json(&rs);
    ck_assert_msg(answer != NULL, "the /upload answer is not JSON: %s", rs.body);
    ck_assert_int_eq(harness_json_int(answer, "bytes", -1), (json_int_t)size);
    ck_assert_str_eq(harness_json_str(answer, "hash"), hash);
    json_t *rec = record_of(id);
    ck_assert_int_eq(harness_json_int(rec, "body_bytes", -1), (json_int_t)size);
    ck_assert_str_eq(harness_json_str(rec, "body_fnv1a64"), hash);
    if (!chunked) {
        ck_assert_str_eq(harness_record_header(rec, "Content-Length"), "1048593");
        ck_assert_ptr_null(harness_record_header(rec, "Transfer-Encoding"));
    }
    json_t *log = log_of(&rs);
    ck_assert_int_eq(harness_json_int(log, "bytes_received", -1), (json_int_t)size);
    json_decref(answer);
    json_decref(rec);
    json_decref(log);
    harness_response_free(&rs);
    free(body);
}

START_TEST(test_content_length_body_arrives_identical)
{
    check_upload(false);
}
END_TEST

START_TEST(test_chunked_body_arrives_identical)
{
    check_upload(true);
}
END_TEST

START_TEST(test_small_chunked_body_arrives_identical)
{
    static const char body[] = "hello, chunked world";
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.method = "PUT",
                                 .target = "/echo",
                                 .headers = headers,
                                 .body = body,
                                 .body_len = sizeof(body) - 1,
                                 .chunked = true};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = record_of(id);
    ck_assert_str_eq(harness_json_str(rec, "body"), body);
    json_decref(rec);
    harness_response_free(&rs);
}
END_TEST

static void check_download(const char *target, uint64_t size, bool with_length)
{
    struct harness_response rs;
    struct harness_request rq = {.target = target, .discard_body = true};

    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    ck_assert_uint_eq(rs.body_len, size);
    ck_assert_msg(rs.body_hash == harness_pattern_hash(size), "%s: body differs", target);
    if (with_length) {
        ck_assert_ptr_nonnull(harness_header(&rs, "Content-Length"));
        ck_assert_uint_eq(strtoull(harness_header(&rs, "Content-Length"), NULL, 10), size);
    }
    json_t *log = log_of(&rs);
    ck_assert_int_eq(harness_json_int(log, "bytes_sent", -1), (json_int_t)size);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(log);
    harness_response_free(&rs);
}

START_TEST(test_content_length_response_body_arrives_identical)
{
    check_download("/download?bytes=3000001", 3000001, true);
}
END_TEST

START_TEST(test_chunked_response_body_arrives_identical)
{
    check_download("/download-chunked?bytes=3000001", 3000001, false);
}
END_TEST

/* --- headers -------------------------------------------------------------------------------- */

START_TEST(test_hop_by_hop_request_headers_are_not_forwarded)
{
    static const char *const dropped[] = {
        "Connection", "X-Custom", "Keep-Alive",          "TE",
        "Trailer",    "Upgrade",  "Proxy-Authorization", "Proxy-Connection",
    };
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line,
                             "Connection: keep-alive, X-Custom",
                             "X-Custom: secret",
                             "Keep-Alive: timeout=5",
                             "TE: trailers",
                             "Trailer: X-Checksum",
                             "Upgrade: websocket",
                             "Proxy-Authorization: Basic Zm9vOmJhcg==",
                             "Proxy-Connection: keep-alive",
                             "X-End-To-End: kept",
                             NULL};
    struct harness_request rq = {.target = "/hop-by-hop", .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = record_of(id);
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        ck_assert_msg(harness_record_header(rec, dropped[i]) == NULL,
                      "hop-by-hop request header %s reached the upstream as '%s'", dropped[i],
                      harness_record_header(rec, dropped[i]));
    ck_assert_str_eq(harness_record_header(rec, "X-End-To-End"), "kept");
    json_decref(rec);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_connection_close_and_what_it_lists_are_not_forwarded)
{
    char id[17], request[512];
    struct harness_response rs;

    harness_random_hex(id, 16);
    int n = snprintf(request, sizeof(request),
                     "GET /conn-close HTTP/1.1\r\nHost: a.example\r\nX-Test-ID: %s\r\n"
                     "Connection: close, X-Secret\r\nX-Secret: 1\r\n\r\n",
                     id);
    ck_assert_int_eq(harness_raw(env.daemon.port, request, (size_t)n, false, 10000, &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    json_t *rec = record_of(id);
    ck_assert_msg(harness_record_header(rec, "Connection") == NULL,
                  "Connection reached the upstream as '%s'",
                  harness_record_header(rec, "Connection"));
    ck_assert_ptr_null(harness_record_header(rec, "X-Secret"));
    json_decref(rec);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_hop_by_hop_response_headers_are_dropped)
{
    static const char *const dropped[] = {"X-Drop", "Keep-Alive", "Upgrade", "Proxy-Connection"};
    struct harness_response rs;
    struct harness_request rq = {
        .target = "/headers-out?Connection=close%2C%20X-Drop&X-Drop=1&Keep-Alive=timeout%3D5"
                  "&Upgrade=h2c&Proxy-Connection=keep-alive&X-Keep=1",
    };

    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        ck_assert_msg(harness_header(&rs, dropped[i]) == NULL,
                      "hop-by-hop response header %s reached the client as '%s'", dropped[i],
                      harness_header(&rs, dropped[i]));
    ck_assert_str_eq(harness_header(&rs, "X-Keep"), "1");
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_repeated_set_cookie_headers_are_kept_in_order)
{
    struct harness_response rs;
    struct harness_request rq = {.target = "/cookies"};
    const char *cookies[2];
    size_t n = 0;

    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    ck_assert_uint_eq(harness_header_count(&rs, "Set-Cookie"), 2);
    for (size_t i = 0; i < rs.headers_count; i++)
        if (strcasecmp(rs.headers[i].name, "Set-Cookie") == 0 && n < 2)
            cookies[n++] = rs.headers[i].value;
    ck_assert_str_eq(cookies[0], "a=1");
    ck_assert_str_eq(cookies[1], "b=2");
    ck_assert_str_eq(harness_header(&rs, "X-Upstream"), "echo");
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_x_forwarded_headers_are_set)
{
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line,
                             "X-Forwarded-For: 203.0.113.7",
                             "Host: app.example:8080",
                             "X-Forwarded-Proto: https",
                             "X-Forwarded-Host: evil.example",
                             NULL};
    struct harness_request rq = {.target = "/forwarded", .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = record_of(id);
    ck_assert_uint_eq(harness_record_header_count(rec, "X-Forwarded-For"), 1);
    ck_assert_str_eq(harness_record_header(rec, "X-Forwarded-For"), "203.0.113.7, 127.0.0.1");
    ck_assert_uint_eq(harness_record_header_count(rec, "X-Forwarded-Proto"), 1);
    ck_assert_str_eq(harness_record_header(rec, "X-Forwarded-Proto"), "http");
    ck_assert_uint_eq(harness_record_header_count(rec, "X-Forwarded-Host"), 1);
    ck_assert_str_eq(harness_record_header(rec, "X-Forwarded-Host"), "app.example:8080");
    json_decref(rec);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_x_forwarded_for_is_the_client_when_none_was_sent)
{
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.target = "/forwarded", .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = record_of(id);
    ck_assert_str_eq(harness_record_header(rec, "X-Forwarded-For"), "127.0.0.1");
    ck_assert_str_eq(harness_record_header(rec, "X-Forwarded-Proto"), "http");
    ck_assert_str_eq(harness_record_header(rec, "X-Forwarded-Host"),
                     harness_record_header(rec, "Host"));
    json_t *log = log_of(&rs);
    ck_assert_str_eq(harness_json_str(log, "client_addr"), "127.0.0.1");
    json_decref(rec);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_content_encoding_is_passed_through_undecoded)
{
    static const unsigned char gzip_body[] = {
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb,
        0x48, 0xcd, 0xc9, 0xc9, 0xd7, 0x51, 0x48, 0xaf, 0xca, 0x2c, 0xe0,
        0x02, 0x00, 0x86, 0x1f, 0x82, 0xa4, 0x0c, 0x00, 0x00, 0x00,
    };
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line, "Accept-Encoding: gzip", NULL};
    struct harness_request rq = {.target = "/gzip", .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    ck_assert_str_eq(harness_header(&rs, "Content-Encoding"), "gzip");
    ck_assert_uint_eq(rs.body_len, sizeof(gzip_body));
    ck_assert_msg(memcmp(rs.body, gzip_body, sizeof(gzip_body)) == 0,
                  "the gzip body was changed on the way");
    json_t *rec = record_of(id);
    ck_assert_str_eq(harness_record_header(rec, "Accept-Encoding"), "gzip");
    json_decref(rec);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_redirect_is_returned_not_followed)
{
    char id[17], id_line[40];
    struct harness_response rs;
    struct harness_field_match m = {"X-Test-ID", id};

    new_test_id(id, id_line);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.target = "/status/302", .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 302);
    ck_assert_str_eq(harness_header(&rs, "Location"), "/status/200");
    json_t *rec = record_of(id);
    /* The record was written before the upstream answered: a followed redirect would be here. */
    json_t *all =
        harness_jsonl_wait(env.echo.record_path, harness_match_record_header, &m, 1, 1000, NULL);
    ck_assert_uint_eq(json_array_size(all), 1);
    json_t *log = log_of(&rs);
    ck_assert_int_eq(harness_json_int(log, "status", 0), 302);
    ck_assert_int_eq(harness_json_int(log, "upstream_status", 0), 302);
    json_decref(all);
    json_decref(rec);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

static const long passed_statuses[] = {201, 204, 304, 404, 418, 500, 503};

START_TEST(test_upstream_status_is_passed_through)
{
    char target[32];
    struct harness_response rs;
    long status = passed_statuses[_i];

    snprintf(target, sizeof(target), "/status/%ld", status);
    struct harness_request rq = {.target = target};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, status);
    ck_assert_ptr_nonnull(harness_header(&rs, "traceparent"));
    json_t *log = log_of(&rs);
    ck_assert_int_eq(harness_json_int(log, "status", 0), status);
    ck_assert_int_eq(harness_json_int(log, "upstream_status", 0), status);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_keep_alive_serves_several_requests_on_one_connection)
{
    static const struct {
        const char *method, *target, *body;
        uint64_t body_len;
    } steps[] = {
        {"GET", "/keep-alive/1", NULL, 0},
        {"POST", "/upload", "some body bytes", 15},
        {"HEAD", "/download?bytes=100", NULL, 0},
        {"GET", "/download-chunked?bytes=5000", NULL, 5000},
        {"DELETE", "/keep-alive/2", NULL, 0},
        {"GET", "/download?bytes=100", NULL, 100},
    };
    CURL *easy = curl_easy_init();
    long first_port = 0;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct harness_response rs;
        struct harness_request rq = {.method = steps[i].method,
                                     .target = steps[i].target,
                                     .body = steps[i].body,
                                     .body_len = steps[i].body ? strlen(steps[i].body) : 0};
        harness_http_on(easy, env.daemon.port, &rq, &rs);
        assert_ok(&rs, 200);
        if (i == 0) {
            first_port = rs.local_port;
            ck_assert_int_eq(rs.connects, 1);
        } else {
            ck_assert_msg(rs.connects == 0 && rs.local_port == first_port,
                          "request %zu (%s %s) opened a new connection", i, steps[i].method,
                          steps[i].target);
        }
        if (steps[i].body_len && !steps[i].body)
            ck_assert_uint_eq(rs.body_len, steps[i].body_len);
        harness_response_free(&rs);
    }
    curl_easy_cleanup(easy);
}
END_TEST

START_TEST(test_upstream_trace_headers_are_replaced_by_tracehops)
{
    char id[17], id_line[40], up_trace[33], up_span[17], up_flags[3];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line, "X-Trace-ID: from-the-client", NULL};
    struct harness_request rq = {
        .target = "/headers-out?traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"
                  "-01&X-Trace-ID=from-the-upstream",
        .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = record_of(id);
    const char *sent = harness_record_header(rec, "traceparent");
    ck_assert(harness_traceparent_split(sent, up_trace, up_span, up_flags));
    ck_assert_uint_eq(harness_header_count(&rs, "traceparent"), 1);
    ck_assert_str_eq(harness_header(&rs, "traceparent"), sent);
    ck_assert_uint_eq(harness_header_count(&rs, "X-Trace-ID"), 1);
    ck_assert_str_eq(harness_header(&rs, "X-Trace-ID"), "from-the-client");
    json_decref(rec);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_expect_100_continue_is_not_forwarded)
{
    const size_t size = 256 * 1024;
    char id[17], id_line[40], hash[17];
    struct harness_response rs;
    char *body = malloc(size);

    ck_assert_ptr_nonnull(body);
    memset(body, 'e', size);
    new_test_id(id, id_line);
    const char *headers[] = {id_line, "Expect: 100-continue", NULL};
    struct harness_request rq = {
        .method = "POST", .target = "/upload", .headers = headers, .body = body, .body_len = size};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = record_of(id);
    ck_assert_msg(harness_record_header(rec, "Expect") == NULL,
                  "Expect reached the upstream as '%s'", harness_record_header(rec, "Expect"));
    harness_hash_hex(harness_fnv1a64(HARNESS_FNV_OFFSET, body, size), hash);
    ck_assert_str_eq(harness_json_str(rec, "body_fnv1a64"), hash);
    json_decref(rec);
    harness_response_free(&rs);
    free(body);
}
END_TEST

START_TEST(test_http_1_0_client_gets_a_complete_body)
{
    static const char request[] = "GET /download-chunked?bytes=5000 HTTP/1.0\r\n\r\n";
    struct harness_response rs;

    ck_assert_int_eq(harness_raw(env.daemon.port, request, sizeof(request) - 1, false, 10000, &rs),
                     0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_msg(harness_header(&rs, "Transfer-Encoding") == NULL,
                  "chunked framing sent to an HTTP/1.0 client");
    ck_assert_uint_eq(rs.body_len, 5000);
    ck_assert(rs.body_hash == harness_pattern_hash(5000));
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_odd_bytes_in_headers_keep_the_log_line_valid_json)
{
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    /* Invalid UTF-8 and a JSON-significant quote and backslash in logged values. */
    const char *headers[] = {id_line, "User-Agent: bad\xff\xfe \"quoted\" back\\slash", NULL};
    struct harness_request rq = {.target = "/odd-bytes?q=%22%5C", .headers = headers};
    harness_http(env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *log = log_of(&rs); /* found only if the line parses as JSON */
    const char *ua = harness_json_str(log, "user_agent");
    ck_assert_ptr_nonnull(ua);
    ck_assert_msg(strstr(ua, "\"quoted\" back\\slash") != NULL, "user_agent logged as '%s'", ua);
    ck_assert_str_eq(harness_json_str(log, "query"), "q=%22%5C");
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

/* --- upstream URL forms ------------------------------------------------------------------ */

static struct harness_env unix_env;

static void unix_setup(void)
{
    ck_assert_int_eq(harness_tmpdir(unix_env.dir, sizeof(unix_env.dir)), 0);
    ck_assert_int_eq(harness_echo_start(&unix_env.echo, unix_env.dir, true), 0);
    const char *args[] = {"--upstream", unix_env.echo.url, NULL};
    ck_assert_int_eq(harness_daemon_start(&unix_env.daemon, unix_env.dir, NULL, NULL, args), 0);
}

static void unix_teardown(void)
{
    harness_env_stop(&unix_env);
}

START_TEST(test_unix_socket_upstream)
{
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.method = "POST",
                                 .target = "/over/unix?x=1",
                                 .headers = headers,
                                 .body = "via a unix socket",
                                 .body_len = 17};
    harness_http(unix_env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = harness_echo_record(&unix_env.echo, "X-Test-ID", id);
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(harness_json_str(rec, "target"), "/over/unix?x=1");
    ck_assert_str_eq(harness_json_str(rec, "body"), "via a unix socket");
    json_t *log = harness_log_line(&unix_env.daemon, "path", "/over/unix");
    ck_assert_ptr_nonnull(log);
    ck_assert_str_eq(harness_json_str(log, "upstream"), unix_env.echo.url);
    ck_assert_str_eq(harness_json_str(log, "outcome"), "ok");
    json_decref(rec);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

static struct harness_env base_env;

static void base_setup(void)
{
    ck_assert_int_eq(harness_env_start(&base_env, "{\"routes\": [{\"name\": \"based\", "
                                                  "\"upstream\": \"{ECHO}/base/\"}]}"),
                     0);
}

static void base_teardown(void)
{
    harness_env_stop(&base_env);
}

START_TEST(test_upstream_base_path_is_prepended)
{
    char id[17], id_line[40];
    struct harness_response rs;

    new_test_id(id, id_line);
    const char *headers[] = {id_line, NULL};
    struct harness_request rq = {.target = "/x/%2F?y=1", .headers = headers};
    harness_http(base_env.daemon.port, &rq, &rs);
    assert_ok(&rs, 200);
    json_t *rec = harness_echo_record(&base_env.echo, "X-Test-ID", id);
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(harness_json_str(rec, "target"), "/base/x/%2F?y=1");
    json_decref(rec);
    harness_response_free(&rs);
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxying");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_loop_test(tc, test_request_target_is_forwarded_byte_identical, 0,
                        (int)(sizeof(targets) / sizeof(targets[0])));
    tcase_add_test(tc, test_request_target_is_forwarded_byte_identical_from_raw_socket);
    tcase_add_loop_test(tc, test_method_is_forwarded_as_received, 0,
                        (int)(sizeof(methods) / sizeof(methods[0])));
    tcase_add_test(tc, test_head_gets_the_content_length_of_the_get);
    tcase_add_test(tc, test_content_length_body_arrives_identical);
    tcase_add_test(tc, test_chunked_body_arrives_identical);
    tcase_add_test(tc, test_small_chunked_body_arrives_identical);
    tcase_add_test(tc, test_content_length_response_body_arrives_identical);
    tcase_add_test(tc, test_chunked_response_body_arrives_identical);
    tcase_add_test(tc, test_hop_by_hop_request_headers_are_not_forwarded);
    tcase_add_test(tc, test_connection_close_and_what_it_lists_are_not_forwarded);
    tcase_add_test(tc, test_hop_by_hop_response_headers_are_dropped);
    tcase_add_test(tc, test_repeated_set_cookie_headers_are_kept_in_order);
    tcase_add_test(tc, test_x_forwarded_headers_are_set);
    tcase_add_test(tc, test_x_forwarded_for_is_the_client_when_none_was_sent);
    tcase_add_test(tc, test_content_encoding_is_passed_through_undecoded);
    tcase_add_test(tc, test_redirect_is_returned_not_followed);
    tcase_add_loop_test(tc, test_upstream_status_is_passed_through, 0,
                        (int)(sizeof(passed_statuses) / sizeof(passed_statuses[0])));
    tcase_add_test(tc, test_keep_alive_serves_several_requests_on_one_connection);
    tcase_add_test(tc, test_upstream_trace_headers_are_replaced_by_tracehops);
    tcase_add_test(tc, test_expect_100_continue_is_not_forwarded);
    tcase_add_test(tc, test_http_1_0_client_gets_a_complete_body);
    tcase_add_test(tc, test_odd_bytes_in_headers_keep_the_log_line_valid_json);
    suite_add_tcase(s, tc);

    tc = tcase_create("unix_socket_upstream");
    tcase_add_unchecked_fixture(tc, unix_setup, unix_teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_unix_socket_upstream);
    suite_add_tcase(s, tc);

    tc = tcase_create("upstream_base_path");
    tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_upstream_base_path_is_prepended);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(proxy_suite());
}
