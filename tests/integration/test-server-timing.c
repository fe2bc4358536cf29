/* SPDX-License-Identifier: MIT */
/*
 * The Server-Timing field of docs/trace-context.md, "11. Server-Timing", on the wire: with
 * trace.server_timing the response carries `trace;desc=00-<trace-id>-<tracehop's span>-<flags>`,
 * the same span the upstream received as its parent and the access log names; with
 * trace.server_timing_durations also `tracehop;dur=` and `upstream;dur=`; an upstream's own
 * Server-Timing fields come through unchanged, before tracehop's; tracehop's own error answers
 * (a 502 here, the 408 of a head that never ends) carry the `trace` metric too; and with the
 * defaults nothing of it is sent.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

#define HEAD_TIMEOUT_MS 1000
#define RAW_WAIT_MS     5000

static struct harness_env env;

/* Routes: /down to a closed port (502), everything else to the echo upstream. */
static void start_with(const char *trace_json)
{
    char config[1024];

    snprintf(config, sizeof(config),
             "{\"trace\": %s,\n"
             " \"limits\": {\"client_header_timeout_ms\": %d, \"client_timeout_ms\": 5000},\n"
             " \"routes\": [{\"name\": \"down\", \"match\": {\"path_prefix\": \"/down\"},\n"
             "              \"upstream\": \"http://127.0.0.1:%u\"},\n"
             "             {\"upstream\": \"{ECHO}\"}]}\n",
             trace_json, HEAD_TIMEOUT_MS, harness_closed_port());
    ck_assert_int_eq(harness_env_start(&env, config), 0);
}

static void setup_all(void)
{
    start_with("{\"server_timing\": true, \"server_timing_durations\": true}");
}

static void setup_trace_only(void)
{
    start_with("{\"server_timing\": true}");
}

static void setup_defaults(void)
{
    start_with("{}");
}

static void teardown(void)
{
    harness_env_stop(&env);
}

/* The values of every Server-Timing field of a response, in order. */
static size_t server_timing_fields(const struct harness_response *rs, const char **out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < rs->headers_count && n < max; i++)
        if (strcasecmp(rs->headers[i].name, "Server-Timing") == 0)
            out[n++] = rs->headers[i].value;
    return n;
}

/* GET `path` (unique) plus `query`; *ret_log gets the access-log line of it. */
static void get(const char *path, const char *query, struct harness_response *rs, json_t **ret_log)
{
    const char *headers[] = {"User-Agent: tracehop-integration/1", NULL};
    char target[256];

    snprintf(target, sizeof(target), "%s%s", path, query);
    struct harness_request rq = {.target = target, .headers = headers};
    harness_http(env.daemon.port, &rq, rs);
    ck_assert_msg(rs->result == CURLE_OK, "request failed: %s", rs->error);
    *ret_log = harness_log_line(&env.daemon, "path", path);
    ck_assert_msg(*ret_log != NULL, "no access-log line for %s", path);
}

/* The `trace` metric names the span of the log line: "trace;desc=00-<trace>-<span>-<flags>". */
static void assert_trace_metric(const char *metric, json_t *log)
{
    char expected[128];

    snprintf(expected, sizeof(expected), "trace;desc=00-%s-%s-%s",
             harness_json_str(log, "trace_id"), harness_json_str(log, "span_id"),
             harness_json_str(log, "trace_flags"));
    ck_assert_msg(strncmp(metric, expected, strlen(expected)) == 0,
                  "Server-Timing '%s' does not start with '%s'", metric, expected);
}

/* The number after "<name>;dur=" in value, or -1 when the metric is absent. */
static double duration_of(const char *value, const char *name)
{
    char key[32];
    const char *p;
    char *end;

    snprintf(key, sizeof(key), "%s;dur=", name);
    p = strstr(value, key);
    if (!p)
        return -1;
    double ms = strtod(p + strlen(key), &end);
    ck_assert_msg(end != p + strlen(key) && (*end == '\0' || *end == ','),
                  "'%s' has no number after %s", value, key);
    return ms;
}

static void unique_target(char *out, size_t size, const char *prefix)
{
    char id[17];

    harness_random_hex(id, 16);
    snprintf(out, size, "%s%s", prefix, id);
}

START_TEST(test_trace_metric_and_durations_name_tracehops_span)
{
    char target[64];
    struct harness_response rs;
    json_t *log;
    const char *st[4];

    unique_target(target, sizeof(target), "/st/");
    get(target, "", &rs, &log);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_uint_eq(server_timing_fields(&rs, st, 4), 1);
    assert_trace_metric(st[0], log);
    /* the span the upstream saw as its parent, and the echoed traceparent */
    struct harness_field_match m = {"target", target};
    json_t *record = harness_jsonl_wait_one(env.echo.record_path, harness_match_field, &m);
    ck_assert_ptr_nonnull(record);
    const char *up_tp = harness_record_header(record, "traceparent");
    ck_assert_msg(strncmp(st[0] + strlen("trace;desc="), up_tp, 55) == 0,
                  "Server-Timing '%s', upstream traceparent '%s'", st[0], up_tp);
    ck_assert_str_eq(harness_header(&rs, "traceparent"), up_tp);
    double total = duration_of(st[0], "tracehop"), upstream = duration_of(st[0], "upstream");
    ck_assert_msg(total >= 0 && upstream >= 0, "durations missing in '%s'", st[0]);
    /* the upstream's time lies within tracehop's */
    ck_assert_msg(upstream <= total, "upstream %.3f ms > tracehop %.3f ms", upstream, total);
    json_decref(record);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_upstream_server_timing_is_kept_before_tracehops)
{
    char target[64];
    struct harness_response rs;
    json_t *log;
    const char *st[4];

    unique_target(target, sizeof(target), "/headers-out/");
    get(target, "?Server-Timing=app%3Bdur%3D5&Server-Timing=db%3Bdesc%3D%22primary%22", &rs, &log);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_uint_eq(server_timing_fields(&rs, st, 4), 3);
    ck_assert_str_eq(st[0], "app;dur=5");
    ck_assert_str_eq(st[1], "db;desc=\"primary\"");
    assert_trace_metric(st[2], log);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_refusal_carries_trace_metric_without_upstream_duration)
{
    char target[64];
    struct harness_response rs;
    json_t *log;
    const char *st[4];

    unique_target(target, sizeof(target), "/down/");
    get(target, "", &rs, &log);
    ck_assert_int_eq(rs.status, 502);
    ck_assert_uint_eq(server_timing_fields(&rs, st, 4), 1);
    assert_trace_metric(st[0], log);
    ck_assert_msg(duration_of(st[0], "tracehop") >= 0, "no tracehop duration in '%s'", st[0]);
    ck_assert_msg(duration_of(st[0], "upstream") < 0,
                  "an upstream duration without an upstream answer: '%s'", st[0]);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

/* The 408 tracehop writes itself when a head never ends carries the metric too. */
START_TEST(test_head_timeout_408_carries_trace_metric)
{
    static const char partial[] = "GET /st/never-finished HTTP/1.1\r\nHost: a.example\r\n";
    struct harness_conn c;
    struct harness_response rs;
    const char *st[4];

    ck_assert_int_eq(harness_conn_open(&c, env.daemon.port, RAW_WAIT_MS), 0);
    ck_assert_int_eq(harness_conn_send(&c, partial, sizeof(partial) - 1, RAW_WAIT_MS), 0);
    harness_conn_read_response(&c, false, HEAD_TIMEOUT_MS + RAW_WAIT_MS, &rs);
    ck_assert_msg(rs.status == 408, "got %ld (%s)", rs.status, rs.error);
    ck_assert_uint_eq(server_timing_fields(&rs, st, 4), 1);
    const char *tp = harness_header(&rs, "traceparent");
    ck_assert_ptr_nonnull(tp);
    ck_assert_msg(strncmp(st[0], "trace;desc=", 11) == 0 && strncmp(st[0] + 11, tp, 55) == 0,
                  "Server-Timing '%s', traceparent '%s'", st[0], tp);
    harness_response_free(&rs);
    harness_conn_close(&c);
}
END_TEST

START_TEST(test_trace_only_is_exactly_the_trace_metric)
{
    char target[64], expected[128];
    struct harness_response rs;
    json_t *log;
    const char *st[4];

    unique_target(target, sizeof(target), "/st/");
    get(target, "", &rs, &log);
    ck_assert_uint_eq(server_timing_fields(&rs, st, 4), 1);
    snprintf(expected, sizeof(expected), "trace;desc=%s", harness_header(&rs, "traceparent"));
    ck_assert_str_eq(st[0], expected);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

START_TEST(test_defaults_send_no_server_timing)
{
    char target[64];
    struct harness_response rs;
    json_t *log;
    const char *st[4];

    unique_target(target, sizeof(target), "/st/");
    get(target, "", &rs, &log);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_uint_eq(server_timing_fields(&rs, st, 4), 0);
    json_decref(log);
    harness_response_free(&rs);

    unique_target(target, sizeof(target), "/headers-out/");
    get(target, "?Server-Timing=app%3Bdur%3D5", &rs, &log);
    ck_assert_uint_eq(server_timing_fields(&rs, st, 4), 1);
    ck_assert_str_eq(st[0], "app;dur=5");
    json_decref(log);
    harness_response_free(&rs);

    unique_target(target, sizeof(target), "/down/");
    get(target, "", &rs, &log);
    ck_assert_int_eq(rs.status, 502);
    ck_assert_uint_eq(server_timing_fields(&rs, st, 4), 0);
    json_decref(log);
    harness_response_free(&rs);
}
END_TEST

static Suite *server_timing_suite(void)
{
    Suite *s = suite_create("server-timing");
    TCase *tc = tcase_create("trace_and_durations");

    tcase_add_unchecked_fixture(tc, setup_all, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_trace_metric_and_durations_name_tracehops_span);
    tcase_add_test(tc, test_upstream_server_timing_is_kept_before_tracehops);
    tcase_add_test(tc, test_refusal_carries_trace_metric_without_upstream_duration);
    tcase_add_test(tc, test_head_timeout_408_carries_trace_metric);
    suite_add_tcase(s, tc);

    tc = tcase_create("trace_only");
    tcase_add_unchecked_fixture(tc, setup_trace_only, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_trace_only_is_exactly_the_trace_metric);
    suite_add_tcase(s, tc);

    tc = tcase_create("defaults");
    tcase_add_unchecked_fixture(tc, setup_defaults, teardown);
    harness_tcase_timeout(tc, 60);
    tcase_add_test(tc, test_defaults_send_no_server_timing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return harness_run_suite(server_timing_suite());
}
